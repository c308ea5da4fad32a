/**
 * The reference data pipeline's preprocessing (`--preprocess resize_and_crop | crop | scale_width | none`,
 * `--load_size`, `--crop_size`, `--no_flip`), applied identically to A and B of a pair on the CPU.
 * Resizing is separable bicubic with PIL's kernel (a = -0.5) and PIL's antialiasing (the kernel widens by
 * the scale factor when shrinking), because the reference resizes with PIL's BICUBIC.
 */
import { createImage, cropImage, type ImageF32 } from '../data/image.js';
import { ShapeError } from '../runtime/errors.js';
import type { Rng } from '../runtime/random.js';

export type Preprocess = 'resize_and_crop' | 'crop' | 'scale_width' | 'none';

export interface PreprocessOptions {
  preprocess: Preprocess;
  loadSize: number;
  cropSize: number;
  flip: boolean;
}

function cubic(x: number): number {
  const a = -0.5;
  x = Math.abs(x);
  if (x < 1) return ((a + 2) * x - (a + 3)) * x * x + 1;
  if (x < 2) return (((x - 5) * x + 8) * x - 4) * a;
  return 0;
}

/** Resampling weights for one axis (PIL's precompute_coeffs): per output index, first source index and weights. */
function axisWeights(inSize: number, outSize: number): { first: Int32Array; weights: Float64Array[] } {
  const scale = inSize / outSize;
  const filterScale = Math.max(scale, 1);
  const support = 2 * filterScale;
  const first = new Int32Array(outSize);
  const weights: Float64Array[] = [];
  for (let i = 0; i < outSize; i++) {
    const center = (i + 0.5) * scale;
    const lo = Math.max(0, Math.floor(center - support + 0.5));
    const hi = Math.min(inSize, Math.floor(center + support + 0.5));
    const w = new Float64Array(hi - lo);
    let sum = 0;
    for (let j = lo; j < hi; j++) {
      const v = cubic((j - center + 0.5) / filterScale);
      w[j - lo] = v;
      sum += v;
    }
    if (sum !== 0) for (let k = 0; k < w.length; k++) w[k] /= sum;
    first[i] = lo;
    weights.push(w);
  }
  return { first, weights };
}

/** Bicubic resize (PIL semantics), values clamped to [0, 1] as 8-bit PIL output would be. */
export function resizeBicubic(im: ImageF32, width: number, height: number): ImageF32 {
  if (width === im.width && height === im.height) return im;
  if (width < 1 || height < 1) throw new ShapeError('resizeBicubic', 'target size', '>= 1x1', `${width}x${height}`);
  const wx = axisWeights(im.width, width);
  const wy = axisWeights(im.height, height);
  const out = createImage(width, height, im.channels);
  const tmp = new Float64Array(im.height * width);
  for (let c = 0; c < im.channels; c++) {
    const src = im.data.subarray(c * im.width * im.height, (c + 1) * im.width * im.height);
    for (let y = 0; y < im.height; y++) {
      for (let x = 0; x < width; x++) {
        const w = wx.weights[x];
        const f = wx.first[x];
        let s = 0;
        for (let k = 0; k < w.length; k++) s += w[k] * src[y * im.width + f + k];
        tmp[y * width + x] = s;
      }
    }
    const dst = out.data.subarray(c * width * height, (c + 1) * width * height);
    for (let y = 0; y < height; y++) {
      const w = wy.weights[y];
      const f = wy.first[y];
      for (let x = 0; x < width; x++) {
        let s = 0;
        for (let k = 0; k < w.length; k++) s += w[k] * tmp[(f + k) * width + x];
        dst[y * width + x] = Math.min(1, Math.max(0, s));
      }
    }
  }
  return out;
}

/** Mirror left-right. */
export function flipHorizontal(im: ImageF32): ImageF32 {
  const out = createImage(im.width, im.height, im.channels);
  for (let c = 0; c < im.channels; c++) {
    for (let y = 0; y < im.height; y++) {
      const row = c * im.width * im.height + y * im.width;
      for (let x = 0; x < im.width; x++) out.data[row + x] = im.data[row + im.width - 1 - x];
    }
  }
  return out;
}

/**
 * The reference's get_params + get_transform for one pair: the same random crop position and flip for
 * A and B. `none` keeps the size (the networks then need sides divisible by 2^numDowns).
 */
export function preprocessPair(a: ImageF32, b: ImageF32, o: PreprocessOptions, rng: Rng): { a: ImageF32; b: ImageF32 } {
  if (a.width !== b.width || a.height !== b.height) {
    throw new ShapeError('preprocessPair', 'B size', `${a.width}x${a.height} (as A)`, `${b.width}x${b.height}`);
  }
  let w = a.width;
  let h = a.height;
  if (o.preprocess === 'resize_and_crop') {
    w = h = o.loadSize;
  } else if (o.preprocess === 'scale_width') {
    // Reference __scale_width: width → load_size, height keeps the aspect ratio, but never below crop_size.
    h = Math.max(Math.round((o.loadSize * a.height) / a.width), o.cropSize);
    w = o.loadSize;
  }
  // Draw the crop position and flip before any work, in a fixed order, so runs are reproducible.
  const crops = o.preprocess === 'crop' || o.preprocess === 'resize_and_crop';
  const cropW = crops ? Math.min(o.cropSize, w) : w;
  const cropH = crops ? Math.min(o.cropSize, h) : h;
  const x0 = rng.int(0, Math.max(0, w - cropW) + 1);
  const y0 = rng.int(0, Math.max(0, h - cropH) + 1);
  const flip = o.flip && rng.next() > 0.5;
  const apply = (im: ImageF32) => {
    let r = resizeBicubic(im, w, h);
    if (crops) r = cropImage(r, x0, y0, cropW, cropH);
    return flip ? flipHorizontal(r) : r;
  };
  return { a: apply(a), b: apply(b) };
}
