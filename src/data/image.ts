/**
 * The in-memory image type shared by data loading, augmentation, metrics and the CLI.
 * Planar CHW float32 with values in [0, 1] (what the metrics take), converted to the networks' [-1, 1]
 * NCHW tensors by {@link imagesToTensorData}. Browser-safe: no Node imports here.
 */
import { ShapeError } from '../runtime/errors.js';

export interface ImageF32 {
  width: number;
  height: number;
  channels: 1 | 3;
  /** CHW planar, length channels * height * width, values in [0, 1]. */
  data: Float32Array;
}

export function createImage(width: number, height: number, channels: 1 | 3, data?: Float32Array): ImageF32 {
  const n = width * height * channels;
  if (data && data.length !== n) throw new ShapeError('createImage', 'data length', n, data.length);
  return { width, height, channels, data: data ?? new Float32Array(n) };
}

/** Pack images of equal size into NCHW data in [-1, 1] (x * 2 - 1), the range pix2pix's tanh output uses. */
export function imagesToTensorData(images: readonly ImageF32[]): { shape: [number, number, number, number]; data: Float32Array } {
  if (images.length === 0) throw new ShapeError('imagesToTensorData', 'image count', '>= 1', 0);
  const { width, height, channels } = images[0];
  const per = width * height * channels;
  const data = new Float32Array(per * images.length);
  images.forEach((im, i) => {
    if (im.width !== width || im.height !== height || im.channels !== channels) {
      throw new ShapeError('imagesToTensorData', `image ${i} size`, `${channels}x${height}x${width}`, `${im.channels}x${im.height}x${im.width}`);
    }
    for (let j = 0; j < per; j++) data[i * per + j] = im.data[j] * 2 - 1;
  });
  return { shape: [images.length, channels, height, width], data };
}

/** Unpack NCHW data in [-1, 1] into images in [0, 1] ((y + 1) / 2, clamped). */
export function tensorDataToImages(shape: readonly number[], data: ArrayLike<number>): ImageF32[] {
  const [n, c, h, w] = shape;
  if (shape.length !== 4 || (c !== 1 && c !== 3)) throw new ShapeError('tensorDataToImages', 'shape', '[N, 1|3, H, W]', `[${shape.join(', ')}]`);
  const per = c * h * w;
  const out: ImageF32[] = [];
  for (let i = 0; i < n; i++) {
    const d = new Float32Array(per);
    for (let j = 0; j < per; j++) d[j] = Math.min(1, Math.max(0, (data[i * per + j] + 1) / 2));
    out.push({ width: w, height: h, channels: c as 1 | 3, data: d });
  }
  return out;
}

/**
 * 8-bit pixel values as the reference's `tensor2im`: (y + 1) / 2 * 255, truncated toward zero
 * (numpy astype(uint8) after clipping happens implicitly for values in [-1, 1]).
 */
export function toUint8Interleaved(im: ImageF32): Uint8Array {
  const { width, height, channels } = im;
  const out = new Uint8Array(width * height * channels);
  const plane = width * height;
  for (let c = 0; c < channels; c++) {
    for (let p = 0; p < plane; p++) {
      const v = Math.trunc(im.data[c * plane + p] * 255);
      out[p * channels + c] = v < 0 ? 0 : v > 255 ? 255 : v;
    }
  }
  return out;
}

/** Crop a region (used to split aligned A|B images and to pad/crop inputs). */
export function cropImage(im: ImageF32, x: number, y: number, width: number, height: number): ImageF32 {
  if (x < 0 || y < 0 || x + width > im.width || y + height > im.height) {
    throw new ShapeError('cropImage', 'region', `inside ${im.width}x${im.height}`, `${width}x${height} at (${x}, ${y})`);
  }
  const out = createImage(width, height, im.channels);
  for (let c = 0; c < im.channels; c++) {
    for (let r = 0; r < height; r++) {
      const src = c * im.width * im.height + (y + r) * im.width + x;
      out.data.set(im.data.subarray(src, src + width), c * width * height + r * width);
    }
  }
  return out;
}

/** Gray → RGB by tiling, RGB → gray by ITU-R 601 luma (what PIL's convert('L') uses). */
export function convertChannels(im: ImageF32, channels: 1 | 3): ImageF32 {
  if (im.channels === channels) return im;
  const plane = im.width * im.height;
  if (channels === 3) {
    const d = new Float32Array(plane * 3);
    for (let c = 0; c < 3; c++) d.set(im.data.subarray(0, plane), c * plane);
    return { ...im, channels: 3, data: d };
  }
  const d = new Float32Array(plane);
  for (let p = 0; p < plane; p++) d[p] = 0.299 * im.data[p] + 0.587 * im.data[plane + p] + 0.114 * im.data[2 * plane + p];
  return { ...im, channels: 1, data: d };
}

/** Place `a` and `b` side by side (the reference's aligned A|B layout); gray is tiled to RGB if the other is RGB. */
export function concatHorizontal(a: ImageF32, b: ImageF32): ImageF32 {
  if (a.height !== b.height) throw new ShapeError('concatHorizontal', 'heights', a.height, b.height);
  const channels = (Math.max(a.channels, b.channels) as 1 | 3);
  const ca = convertChannels(a, channels);
  const cb = convertChannels(b, channels);
  const width = a.width + b.width;
  const out = createImage(width, a.height, channels);
  for (let c = 0; c < channels; c++) {
    for (let r = 0; r < a.height; r++) {
      const dst = c * width * a.height + r * width;
      out.data.set(ca.data.subarray(c * a.width * a.height + r * a.width, c * a.width * a.height + (r + 1) * a.width), dst);
      out.data.set(cb.data.subarray(c * b.width * b.height + r * b.width, c * b.width * b.height + (r + 1) * b.width), dst + a.width);
    }
  }
  return out;
}
