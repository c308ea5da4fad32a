/**
 * Skeleton recovery: a metric only phantoms can have. The phantom generator knows where every bone is, so a
 * translation can be scored on the one thing the paper cares about and the pixel metrics hide: does the
 * predicted X-ray show the skeleton? The score is the Pearson correlation, inside the body (eroded so the
 * silhouette's edge does not count), between the fine structure (high-pass: image minus its local box mean)
 * of the translation and that of the phantom's bone mask. The photo itself scores about 0 (fur hides the
 * bones), the true X-ray about 0.8; a translation that only learned the grey silhouette scores near 0.
 * Pure TypeScript, browser-safe; O(pixels) per image (box sums by prefix sums).
 */
import { ShapeError } from '../runtime/errors.js';

/** `d` minus its (2r+1)^2 box mean (clipped at the border): keeps ribs and vertebrae, drops the body's bulk. */
export function highPass(d: ArrayLike<number>, width: number, height: number, radius: number): Float64Array {
  const W = width + 1;
  const sum = new Float64Array(W * (height + 1));
  for (let y = 0; y < height; y++) {
    let row = 0;
    for (let x = 0; x < width; x++) {
      row += d[y * width + x];
      sum[(y + 1) * W + x + 1] = sum[y * W + x + 1] + row;
    }
  }
  const out = new Float64Array(width * height);
  for (let y = 0; y < height; y++) {
    const y0 = Math.max(0, y - radius);
    const y1 = Math.min(height, y + radius + 1);
    for (let x = 0; x < width; x++) {
      const x0 = Math.max(0, x - radius);
      const x1 = Math.min(width, x + radius + 1);
      const s = sum[y1 * W + x1] - sum[y0 * W + x1] - sum[y1 * W + x0] + sum[y0 * W + x0];
      out[y * width + x] = d[y * width + x] - s / ((y1 - y0) * (x1 - x0));
    }
  }
  return out;
}

/** Pearson correlation of x and y over the pixel indices `idx` (0 when either is constant there). */
export function maskedCorrelation(x: ArrayLike<number>, y: ArrayLike<number>, idx: ArrayLike<number>): number {
  const n = idx.length;
  if (n === 0) return 0;
  let mx = 0;
  let my = 0;
  for (let i = 0; i < n; i++) {
    mx += x[idx[i]];
    my += y[idx[i]];
  }
  mx /= n;
  my /= n;
  let sxy = 0;
  let sxx = 0;
  let syy = 0;
  for (let i = 0; i < n; i++) {
    const a = x[idx[i]] - mx;
    const b = y[idx[i]] - my;
    sxy += a * b;
    sxx += a * a;
    syy += b * b;
  }
  return sxx > 0 && syy > 0 ? sxy / Math.sqrt(sxx * syy) : 0;
}

/** Pixels whose whole (2e+1)-long horizontal and vertical cross lies inside `mask` (the body minus its rim). */
export function erodedMaskIndices(mask: ArrayLike<number>, width: number, height: number, erode: number): Uint32Array {
  const idx: number[] = [];
  for (let y = erode; y < height - erode; y++) {
    for (let x = erode; x < width - erode; x++) {
      let ok = true;
      for (let d = -erode; d <= erode && ok; d++) if (!(mask[(y + d) * width + x] > 0.5) || !(mask[y * width + x + d] > 0.5)) ok = false;
      if (ok) idx.push(y * width + x);
    }
  }
  return Uint32Array.from(idx);
}

export interface SkeletonScale {
  /** High-pass box radius in pixels. */
  radius: number;
  /** Body-mask erosion in pixels. */
  erode: number;
}

/**
 * The high-pass radius and rim erosion for an image `width` pixels across a 100 mm field of view, fixed in
 * millimetres (0.8 mm box radius, 1.2 mm rim: the radius of a vertebra, a little more than a rib's width), so
 * the score means the same at 64x128 as at 512x1024. At 256 px across: radius 2, erosion 3.
 */
export function skeletonScale(width: number, fieldOfViewMm = 100): SkeletonScale {
  const mm = fieldOfViewMm / width;
  return { radius: Math.max(1, Math.round(0.8 / mm)), erode: Math.max(1, Math.round(1.2 / mm)) };
}

export interface SkeletonTruth {
  width: number;
  height: number;
  /** 1 where bone covers the pixel (the phantom's bone layer). */
  bone: ArrayLike<number>;
  /** 1 inside the animal's silhouette. */
  body: ArrayLike<number>;
}

/**
 * Skeleton recovery of one gray image (a translation, or any X-ray-like image, planar [0, 1]) against the
 * phantom's bone layer: correlation of the high-passed image with the high-passed bone mask inside the eroded
 * body. 1 = the fine structure is exactly the skeleton's, 0 = unrelated (or a flat silhouette).
 */
export function skeletonRecovery(image: { width: number; height: number; data: ArrayLike<number> }, truth: SkeletonTruth, scale: SkeletonScale = skeletonScale(truth.width)): number {
  const { width, height } = truth;
  if (image.width !== width || image.height !== height) throw new ShapeError('skeletonRecovery', 'image size', `${height}x${width} (the phantom's)`, `${image.height}x${image.width}`);
  if (image.data.length < width * height) throw new ShapeError('skeletonRecovery', 'image data length', `>= ${width * height}`, image.data.length);
  const inside = erodedMaskIndices(truth.body, width, height, scale.erode);
  return maskedCorrelation(highPass(image.data, width, height, scale.radius), highPass(truth.bone, width, height, scale.radius), inside);
}
