/**
 * Float64 CPU reference of every augmentation operation (the GPU kernels in shaders/augment_*.wgsl are tested
 * against these), and a CPU path for a whole pipeline: `augmentPairCpu(a, b, draw)` runs the stages `drawSample`
 * produced. Images are planar CHW in [0, 1] (ImageF32 or float64 data). Browser-safe.
 *
 * Formulas:
 * - warps: cv2.warpAffine / cv2.remap with INTER_LINEAR in float (OpenCV itself quantises coordinates to 1/32 px
 *   and weights to 15 bits; this reference and the GPU do not), borders as cv2.borderInterpolate;
 * - resize (RandomResizedCrop): cv2.resize INTER_LINEAR with half-pixel centres, clamped to the crop;
 * - brightness/contrast: y = alpha x + beta (beta scaled by max = 1, or by mean(alpha x) when brightness_by_max is
 *   false), clipped; gamma: y = x^gamma; HSV: OpenCV's float RGB↔HSV (hue in degrees), hue shift mod 360,
 *   saturation and value shifts clipped to [0, 1]; RGB shift: per-channel add, clipped; noise: x + mean + sigma *
 *   hashNormal(seed, index), clipped; Gaussian blur: separable cv2.getGaussianKernel weights, BORDER_REFLECT_101.
 * Photometric operations see the input clipped to [0, 1] (as an 8-bit image always is).
 */
import { hashNormal } from '../runtime/random.js';
import { ShapeError } from '../runtime/errors.js';
import type { BorderMode } from './augment_schema.js';
import type { ColorOp, SampleDraw, WarpOp } from './augment_params.js';

/** A planar CHW image with float64 (or float32) data. */
export interface PlanarImage {
  width: number;
  height: number;
  channels: number;
  data: Float64Array | Float32Array;
}

/** cv2.borderInterpolate: map an index outside [0, len) into it; -1 means "use the constant fill". */
export function borderIndex(p: number, len: number, mode: BorderMode): number {
  if (p >= 0 && p < len) return p;
  switch (mode) {
    case 'constant':
      return -1;
    case 'replicate':
      return p < 0 ? 0 : len - 1;
    case 'wrap':
      return ((p % len) + len) % len;
    case 'reflect': {
      const period = 2 * len;
      const q = ((p % period) + period) % period;
      return q < len ? q : period - 1 - q;
    }
    case 'reflect_101': {
      if (len === 1) return 0;
      const period = 2 * len - 2;
      const q = ((p % period) + period) % period;
      return q < len ? q : period - q;
    }
  }
}

/** Fill value for channel c of C from one value or one per channel; names the transform on a mismatch. */
export function fillFor(values: readonly number[], c: number, channels: number, what: string): number {
  if (values.length === 1) return values[0];
  if (values.length !== channels) throw new ShapeError(what, 'fill value count', `1 or ${channels} (one per channel)`, values.length);
  return values[c];
}

/** Bilinear warp of one image (output size `outW` x `outH`) following {@link WarpOp}. */
export function warpCpu(src: PlanarImage, op: WarpOp, outW: number, outH: number, fill: readonly number[], what = 'warp'): Float64Array {
  const { width: W, height: H, channels: C } = src;
  const [wx, wy, ww, wh] = op.window;
  const m = op.inverse;
  const out = new Float64Array(C * outH * outW);
  const fills = Array.from({ length: C }, (_, c) => fillFor(fill, c, C, what));
  for (let y = 0; y < outH; y++) {
    for (let x = 0; x < outW; x++) {
      const sx = op.mapX ? op.mapX[x] : m[0] * x + m[1] * y + m[2];
      const sy = op.mapY ? op.mapY[y] : m[3] * x + m[4] * y + m[5];
      const x0 = Math.floor(sx);
      const y0 = Math.floor(sy);
      const fx = sx - x0;
      const fy = sy - y0;
      const ix = [borderIndex(x0 - wx, ww, op.border), borderIndex(x0 + 1 - wx, ww, op.border)];
      const iy = [borderIndex(y0 - wy, wh, op.border), borderIndex(y0 + 1 - wy, wh, op.border)];
      for (let c = 0; c < C; c++) {
        const tap = (j: number, i: number) => (iy[j] < 0 || ix[i] < 0 ? fills[c] : src.data[c * H * W + (wy + iy[j]) * W + wx + ix[i]]);
        out[c * outH * outW + y * outW + x] = (1 - fy) * ((1 - fx) * tap(0, 0) + fx * tap(0, 1)) + fy * ((1 - fx) * tap(1, 0) + fx * tap(1, 1));
      }
    }
  }
  return out;
}

const clip01 = (v: number) => (v < 0 ? 0 : v > 1 ? 1 : v);
const FLT_EPSILON = 1.1920928955078125e-7;

/** OpenCV's float RGB → HSV (H in degrees [0, 360), S and V in [0, 1]). */
export function rgbToHsv(r: number, g: number, b: number): [number, number, number] {
  const v = Math.max(r, g, b);
  const vmin = Math.min(r, g, b);
  let diff = v - vmin;
  const s = diff / (Math.abs(v) + FLT_EPSILON);
  diff = 60 / (diff + FLT_EPSILON);
  let h: number;
  if (v === r) h = (g - b) * diff;
  else if (v === g) h = (b - r) * diff + 120;
  else h = (r - g) * diff + 240;
  if (h < 0) h += 360;
  return [h, s, v];
}

/** OpenCV's float HSV → RGB (hue range 360). */
export function hsvToRgb(h: number, s: number, v: number): [number, number, number] {
  if (s === 0) return [v, v, v];
  let hh = h / 60;
  if (hh < 0) while (hh < 0) hh += 6;
  else while (hh >= 6) hh -= 6;
  let sector = Math.floor(hh);
  hh -= sector;
  if (sector < 0 || sector >= 6) {
    sector = 0;
    hh = 0;
  }
  const tab = [v, v * (1 - s), v * (1 - s * hh), v * (1 - s * (1 - hh))];
  // OpenCV's sector table gives (b, g, r) indices into tab.
  const SECTORS = [[1, 3, 0], [1, 0, 2], [3, 0, 1], [0, 2, 1], [0, 1, 3], [2, 1, 0]];
  const [bi, gi, ri] = SECTORS[sector];
  return [tab[ri], tab[gi], tab[bi]];
}

/** One photometric operation on A (planar, [0, 1]); returns a new float64 image. */
export function colorCpu(src: PlanarImage, op: ColorOp, what: string = op.kind): Float64Array {
  const { width: W, height: H, channels: C } = src;
  const plane = W * H;
  const x = Float64Array.from(src.data, clip01);
  const out = new Float64Array(x.length);
  switch (op.kind) {
    case 'brightness_contrast': {
      let shift = op.beta;
      if (!op.byMax) {
        let mean = 0;
        for (const v of x) mean += v;
        shift = op.beta * op.alpha * (mean / x.length);
      }
      for (let i = 0; i < x.length; i++) out[i] = clip01(op.alpha * x[i] + shift);
      break;
    }
    case 'gamma':
      for (let i = 0; i < x.length; i++) out[i] = Math.pow(x[i], op.gamma);
      break;
    case 'hsv':
      if (C === 1) {
        for (let i = 0; i < plane; i++) out[i] = clip01(x[i] + op.val);
        break;
      }
      if (C !== 3) throw new ShapeError(what, 'channels of A', '1 or 3', C);
      for (let i = 0; i < plane; i++) {
        let [h, s, v] = rgbToHsv(x[i], x[plane + i], x[2 * plane + i]);
        h = (((h + op.hue) % 360) + 360) % 360;
        s = clip01(s + op.sat);
        v = clip01(v + op.val);
        const [r, g, b] = hsvToRgb(h, s, v);
        out[i] = clip01(r);
        out[plane + i] = clip01(g);
        out[2 * plane + i] = clip01(b);
      }
      break;
    case 'rgb_shift':
      if (C !== 3) throw new ShapeError(what, 'channels of A', 3, C);
      for (let c = 0; c < 3; c++) for (let i = 0; i < plane; i++) out[c * plane + i] = clip01(x[c * plane + i] + op.shift[c]);
      break;
    case 'noise':
      for (let c = 0; c < C; c++) {
        for (let i = 0; i < plane; i++) {
          const z = hashNormal(op.seed, op.perChannel ? c * plane + i : i);
          out[c * plane + i] = clip01(x[c * plane + i] + op.mean + op.sigma * z);
        }
      }
      break;
    case 'blur': {
      const k = op.ksize;
      const r = (k - 1) >> 1;
      const w = op.weights;
      const tmp = new Float64Array(x.length);
      // Separable: rows then columns (cv2.sepFilter2D order), BORDER_REFLECT_101.
      for (let c = 0; c < C; c++) {
        for (let yy = 0; yy < H; yy++) {
          for (let xx = 0; xx < W; xx++) {
            let s = 0;
            for (let t = 0; t < k; t++) s += w[t] * x[c * plane + yy * W + borderIndex(xx + t - r, W, 'reflect_101')];
            tmp[c * plane + yy * W + xx] = s;
          }
        }
        for (let yy = 0; yy < H; yy++) {
          for (let xx = 0; xx < W; xx++) {
            let s = 0;
            for (let t = 0; t < k; t++) s += w[t] * tmp[c * plane + borderIndex(yy + t - r, H, 'reflect_101') * W + xx];
            out[c * plane + yy * W + xx] = s;
          }
        }
      }
      break;
    }
  }
  return out;
}

/**
 * Run the stages of one drawn sample on a pair (float64 throughout): geometric stages on A and B, photometric on A.
 */
export function augmentPairCpu(a: PlanarImage, b: PlanarImage, draw: SampleDraw): { a: PlanarImage; b: PlanarImage } {
  if (a.width !== b.width || a.height !== b.height) throw new ShapeError('augmentPairCpu', 'B size', `${a.height}x${a.width} (as A)`, `${b.height}x${b.width}`);
  let A: PlanarImage = { ...a, data: Float64Array.from(a.data) };
  let B: PlanarImage = { ...b, data: Float64Array.from(b.data) };
  for (const s of draw.stages) {
    if (!s.applied || !s.op) continue;
    if (A.height !== s.inSize.height || A.width !== s.inSize.width) throw new ShapeError(s.name, 'input size', `${s.inSize.height}x${s.inSize.width}`, `${A.height}x${A.width}`);
    const { width: ow, height: oh } = s.outSize;
    if (s.op.kind === 'warp') {
      A = { width: ow, height: oh, channels: A.channels, data: warpCpu(A, s.op, ow, oh, s.op.fillA, s.name) };
      B = { width: ow, height: oh, channels: B.channels, data: warpCpu(B, s.op, ow, oh, s.op.fillB, s.name) };
    } else {
      A = { ...A, data: colorCpu(A, s.op, s.name) };
    }
  }
  return { a: A, b: B };
}
