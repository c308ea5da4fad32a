// Decoders for the committed metrics fixtures (scripts/fixtures/metrics.py stores arrays as base64 bytes).
import { loadFixture } from '../helpers/fixtures.js';

function bytes(b64: string): Uint8Array {
  const buf = Buffer.from(b64, 'base64');
  return new Uint8Array(buf.buffer.slice(buf.byteOffset, buf.byteOffset + buf.byteLength));
}
export const u8 = (b64: string): Uint8Array => bytes(b64);
export const f64 = (b64: string): Float64Array => new Float64Array(bytes(b64).buffer);
export const u16 = (b64: string): Uint16Array => new Uint16Array(bytes(b64).buffer);

/** Fixture numbers: 'inf' stands for Infinity (JSON has none). */
export const num = (v: number | string): number => (v === 'inf' ? Infinity : v === '-inf' ? -Infinity : Number(v));

export interface ImageRef {
  mse: number;
  nrmse_euclidean: number;
  nrmse_min_max: number;
  nrmse_mean: number;
  psnr: number | string;
  ssim_skimage: number;
  ssim_gaussian?: number;
}
export interface ImageCase {
  name: string;
  n: number;
  c: number;
  h: number;
  w: number;
  scale: number;
  real: string;
  fake: string;
  ref: ImageRef[];
  map_skimage?: string;
  map_gaussian?: string;
}
export const imageCases = (): ImageCase[] => loadFixture<{ cases: ImageCase[] }>('metrics_images').cases;

/** 8-bit planar images as the library sees them: float32(v / 255 * scale). */
export function imagesF32(b64: string, scale: number): Float32Array {
  return Float32Array.from(u8(b64), (v) => (v / 255) * scale);
}

/** Symmetric d x d matrix from its row-major upper triangle. */
export function fromUpper(upper: Float64Array, d: number): Float64Array {
  const m = new Float64Array(d * d);
  let k = 0;
  for (let i = 0; i < d; i++) {
    for (let j = i; j < d; j++) {
      m[i * d + j] = upper[k];
      m[j * d + i] = upper[k++];
    }
  }
  return m;
}
