/**
 * Random parameters of an augmentation pipeline, drawn per sample on the CPU (shared by the GPU augmenter and the
 * float64 CPU reference, so both run exactly the same transform).
 *
 * Sample i draws from `Rng(seed ^ pcgHash(i))` (mixed with the epoch when one is given), so a sample's
 * augmentation does not depend on batch order or batch size. The draw order follows Albumentations 1.3: for each
 * transform "apply?" (`u < p`), then its parameters; a OneOf that applies picks one child with probability
 * proportional to the children's p and forces it.
 *
 * Geometry uses OpenCV's pixel convention (pixel centres at integer coordinates, as cv2.warpAffine): a matrix maps a
 * source pixel position to an output position, and the kernels sample the source at `inverse * (x, y, 1)` for each
 * output pixel. Rotations are about the exact image centre ((w-1)/2, (h-1)/2); Albumentations 1.3 and earlier passed
 * (w/2, h/2) to cv2.getRotationMatrix2D, a half-pixel offset (the same for A and B, so pairs stay aligned either way).
 *
 * Every number a kernel reads is rounded to float32 here (Math.fround), so the CPU reference and the GPU start from
 * identical parameters and differ only by float32 arithmetic.
 */
import { mat3d } from 'wgpu-matrix';
import { ShapeError } from '../runtime/errors.js';
import { Rng, pcgHash } from '../runtime/random.js';
import {
  MAX_BLUR_KSIZE,
  type AugmentSpec,
  type BorderMode,
  type GridDistortionSpec,
  type LeafSpec,
  type RandomResizedCropSpec,
  type Range,
  type TransformSpec,
  type WarpOptions,
} from './augment_schema.js';

export interface Size {
  height: number;
  width: number;
}

/** Row-major 2x3 affine matrix [a, b, tx, c, d, ty]: x' = a x + b y + tx, y' = c x + d y + ty (cv2's layout). */
export type Affine = [number, number, number, number, number, number];

/** A resampling of A and B: output pixel (x, y) reads the source at `inverse`(x, y), or at (mapX[x], mapY[y]). */
export interface WarpOp {
  kind: 'warp';
  /** Source → output (cv2's M); absent for remaps. */
  matrix?: Affine;
  /** Output → source, float32-rounded: what the kernel evaluates. */
  inverse: Affine;
  /** Separable remap (GridDistortion): source x for each output column, source y for each output row. */
  mapX?: Float64Array;
  mapY?: Float64Array;
  /** Source region [x, y, width, height] the border mode is relative to (a crop for RandomResizedCrop). */
  window: [number, number, number, number];
  border: BorderMode;
  /** Constant-border fill in [0, 1], for A and for B (one value, or one per channel). */
  fillA: number[];
  fillB: number[];
}

/** A colour change of A only; values in the [0, 1] convention. */
export type ColorOp =
  | { kind: 'brightness_contrast'; alpha: number; beta: number; byMax: boolean }
  | { kind: 'gamma'; gamma: number }
  | { kind: 'hsv'; hue: number; sat: number; val: number }
  | { kind: 'rgb_shift'; shift: [number, number, number] }
  | { kind: 'noise'; sigma: number; mean: number; seed: number; perChannel: boolean }
  | { kind: 'blur'; ksize: number; sigma: number; weights: number[] };

export type StageOp = WarpOp | ColorOp;

/** One leaf transform, in execution order (children of a OneOf are consecutive stages). */
export interface Stage {
  index: number;
  /** Where it sits in the spec, e.g. `spec.transforms[2].transforms[0]`. */
  path: string;
  spec: LeafSpec;
  geometric: boolean;
}

/** What one stage did to one sample. */
export interface StageDraw {
  name: string;
  path: string;
  applied: boolean;
  inSize: Size;
  outSize: Size;
  /** The drawn parameters in Albumentations' terms (angle in degrees, scale, dx, ...), when applied. */
  params?: Record<string, number | number[] | boolean>;
  /** The concrete operation the kernels run, when applied. */
  op?: StageOp;
}

/** Everything drawn for one sample. */
export interface SampleDraw {
  sampleIndex: number;
  epoch: number;
  /** The Rng seed of this sample. */
  seed: number;
  stages: StageDraw[];
}

const GEOMETRIC = new Set(['HorizontalFlip', 'VerticalFlip', 'Rotate', 'ShiftScaleRotate', 'RandomResizedCrop', 'GridDistortion']);

/** The leaf transforms of a spec in execution order. */
export function flattenStages(spec: AugmentSpec): Stage[] {
  const out: Stage[] = [];
  const walk = (list: readonly TransformSpec[], path: string) =>
    list.forEach((t, i) => {
      const here = `${path}.transforms[${i}]`;
      if (t.name === 'OneOf' || t.name === 'Compose') walk(t.transforms, here);
      else out.push({ index: out.length, path: here, spec: t, geometric: GEOMETRIC.has(t.name) });
    });
  walk(spec.transforms, 'spec');
  return out;
}

/** The Rng seed of one sample: `seed ^ pcgHash(sampleIndex)` for epoch 0, the epoch mixed in otherwise. */
export function sampleSeed(seed: number, sampleIndex: number, epoch = 0): number {
  const h = epoch === 0 ? pcgHash(sampleIndex >>> 0) : pcgHash((pcgHash(sampleIndex >>> 0) + Math.imul(epoch >>> 0, 0x9e3779b1)) >>> 0);
  return (seed ^ h) >>> 0;
}

// ------------------------------------------------------------------ matrices (wgpu-matrix, float64)

type M3 = Float64Array;

function toAffine(m: M3): Affine {
  // wgpu-matrix's mat3 is column-major with a padded column stride of 4.
  return [m[0], m[4], m[8], m[1], m[5], m[9]];
}

function fromAffine(a: Affine): M3 {
  return mat3d.create(a[0], a[3], 0, a[1], a[4], 0, a[2], a[5], 1) as M3;
}

/** cv2.getRotationMatrix2D(center, angle, scale): T(c) S(scale) R(-angle) T(-c); positive angles turn counter-clockwise on screen. */
export function rotationMatrix2D(cx: number, cy: number, angleDeg: number, scale: number): Affine {
  const m = mat3d.translation([cx, cy]) as M3;
  mat3d.multiply(m, mat3d.scaling([scale, scale]), m);
  // wgpu-matrix rotates counter-clockwise in a y-up frame; image rows grow downwards, so turn by -angle.
  mat3d.multiply(m, mat3d.rotation((-angleDeg * Math.PI) / 180), m);
  mat3d.multiply(m, mat3d.translation([-cx, -cy]), m);
  return toAffine(m);
}

/** Inverse of an affine map (output → source), through wgpu-matrix. */
export function invertAffine(a: Affine): Affine {
  return toAffine(mat3d.inverse(fromAffine(a)) as M3);
}

/** Apply an affine map to a point. */
export function applyAffine(a: Affine, x: number, y: number): [number, number] {
  return [a[0] * x + a[1] * y + a[2], a[3] * x + a[4] * y + a[5]];
}

const f32 = Math.fround;
const f32Affine = (a: Affine): Affine => a.map(f32) as Affine;

// ------------------------------------------------------------------ drawing

const uniform = (rng: Rng, r: Range) => rng.uniform(r[0], r[1]);

/** Python's round(): half to even (Albumentations' int(round(x))). */
function roundHalfEven(x: number): number {
  const r = Math.round(x);
  return Math.abs(x % 1) === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

function fills(t: WarpOptions): { fillA: number[]; fillB: number[] } {
  const a = t.value.map((v) => f32(v / 255));
  const b = (t.mask_value ?? t.value).map((v) => f32(v / 255));
  return { fillA: a, fillB: b };
}

function affineOp(t: WarpOptions | null, matrix: Affine, size: Size): WarpOp {
  return {
    kind: 'warp',
    matrix,
    inverse: f32Affine(invertAffine(matrix)),
    window: [0, 0, size.width, size.height],
    border: t?.border_mode ?? 'replicate',
    ...(t ? fills(t) : { fillA: [0], fillB: [0] }),
  };
}

/** Albumentations 1.3 RandomResizedCrop.get_params_dependent_on_targets (torchvision's scheme). */
function drawCrop(t: RandomResizedCropSpec, rng: Rng, size: Size): { x: number; y: number; w: number; h: number } {
  const { height: H, width: W } = size;
  const area = H * W;
  for (let attempt = 0; attempt < 10; attempt++) {
    const target = uniform(rng, t.scale) * area;
    const aspect = Math.exp(rng.uniform(Math.log(t.ratio[0]), Math.log(t.ratio[1])));
    const w = roundHalfEven(Math.sqrt(target * aspect));
    const h = roundHalfEven(Math.sqrt(target / aspect));
    if (w > 0 && w <= W && h > 0 && h <= H) {
      const y = rng.int(0, H - h + 1);
      const x = rng.int(0, W - w + 1);
      return { x, y, w, h };
    }
  }
  // Fallback to a central crop with the ratio clamped into range.
  const inRatio = W / H;
  let w = W;
  let h = H;
  if (inRatio < Math.min(...t.ratio)) h = roundHalfEven(w / Math.min(...t.ratio));
  else if (inRatio > Math.max(...t.ratio)) w = roundHalfEven(h * Math.max(...t.ratio));
  return { x: Math.floor((W - w) / 2), y: Math.floor((H - h) / 2), w, h };
}

/** Albumentations 1.3 grid_distortion's per-axis map: piecewise-linear source coordinates (np.linspace segments). */
export function gridAxisMap(length: number, numSteps: number, steps: readonly number[]): Float64Array {
  const step = Math.floor(length / numSteps);
  const out = new Float64Array(length); // np.zeros: a tail the segments do not reach stays 0, as in Albumentations
  let prev = 0;
  for (let idx = 0; idx <= numSteps; idx++) {
    const start = idx * step;
    let end = start + step;
    let cur: number;
    if (end > length) {
      end = length;
      cur = length;
    } else {
      cur = prev + step * steps[idx];
    }
    const n = end - start;
    for (let k = 0; k < n; k++) out[start + k] = n === 1 ? prev : prev + ((cur - prev) * k) / (n - 1);
    prev = cur;
  }
  return out;
}

/** cv2.getGaussianKernel(ksize, sigma): OpenCV's fixed tables for ksize <= 7 with sigma <= 0, else sampled and normalised. */
export function gaussianKernel(ksize: number, sigma: number): number[] {
  const tables: Record<number, number[]> = {
    1: [1],
    3: [0.25, 0.5, 0.25],
    5: [0.0625, 0.25, 0.375, 0.25, 0.0625],
    7: [0.03125, 0.109375, 0.21875, 0.28125, 0.21875, 0.109375, 0.03125],
  };
  if (ksize % 2 === 1 && ksize <= 7 && sigma <= 0) return [...tables[ksize]];
  const s = sigma > 0 ? sigma : ((ksize - 1) * 0.5 - 1) * 0.3 + 0.8;
  const scale2 = -0.5 / (s * s);
  const w: number[] = [];
  let sum = 0;
  for (let i = 0; i < ksize; i++) {
    const x = i - (ksize - 1) * 0.5;
    w.push(Math.exp(scale2 * x * x));
    sum += w[i];
  }
  return w.map((v) => v / sum);
}

/** Kernel size OpenCV derives from sigma when ksize is 0 (cv2.GaussianBlur on 8-bit images: round(6 sigma + 1) | 1). */
export function ksizeFromSigma(sigma: number): number {
  return Math.round(sigma * 3 * 2 + 1) | 1;
}

/** Largest Gaussian kernel a GaussianBlur spec can draw. */
export function maxBlurKsize(blurLimit: Range, sigmaLimit: Range): number {
  const k = Math.max(blurLimit[1], blurLimit[0] === 0 ? ksizeFromSigma(sigmaLimit[1]) : 0);
  return Math.min(k, MAX_BLUR_KSIZE);
}

/** Draw one applied leaf's parameters and build its operation. */
function drawLeaf(t: LeafSpec, rng: Rng, size: Size): { params: StageDraw['params']; op: StageOp; outSize: Size } {
  const { width: W, height: H } = size;
  const cx = (W - 1) / 2;
  const cy = (H - 1) / 2;
  switch (t.name) {
    case 'HorizontalFlip':
      return { params: {}, op: affineOp(null, [-1, 0, W - 1, 0, 1, 0], size), outSize: size };
    case 'VerticalFlip':
      return { params: {}, op: affineOp(null, [1, 0, 0, 0, -1, H - 1], size), outSize: size };
    case 'Rotate': {
      const angle = uniform(rng, t.limit);
      return { params: { angle }, op: affineOp(t, rotationMatrix2D(cx, cy, angle, 1), size), outSize: size };
    }
    case 'ShiftScaleRotate': {
      const angle = uniform(rng, t.rotate_limit);
      const scale = 1 + uniform(rng, t.scale_limit);
      const dx = uniform(rng, t.shift_limit_x);
      const dy = uniform(rng, t.shift_limit_y);
      const m = rotationMatrix2D(cx, cy, angle, scale);
      m[2] += dx * W;
      m[5] += dy * H;
      return { params: { angle, scale, dx, dy }, op: affineOp(t, m, size), outSize: size };
    }
    case 'RandomResizedCrop': {
      const c = drawCrop(t, rng, size);
      // cv2.resize (INTER_LINEAR, half-pixel centres) of the crop: src = x0 + (x + 0.5) * cw / W' - 0.5, clamped to the crop.
      const sx = c.w / t.width;
      const sy = c.h / t.height;
      const inverse: Affine = [sx, 0, c.x + 0.5 * sx - 0.5, 0, sy, c.y + 0.5 * sy - 0.5];
      const op: WarpOp = {
        kind: 'warp',
        matrix: invertAffine(inverse),
        inverse: f32Affine(inverse),
        window: [c.x, c.y, c.w, c.h],
        border: 'replicate',
        fillA: [0],
        fillB: [0],
      };
      return { params: { x: c.x, y: c.y, crop_width: c.w, crop_height: c.h }, op, outSize: { height: t.height, width: t.width } };
    }
    case 'GridDistortion': {
      const g = t as GridDistortionSpec;
      const xsteps = Array.from({ length: g.num_steps + 1 }, () => 1 + uniform(rng, g.distort_limit));
      const ysteps = Array.from({ length: g.num_steps + 1 }, () => 1 + uniform(rng, g.distort_limit));
      const op: WarpOp = {
        kind: 'warp',
        inverse: [1, 0, 0, 0, 1, 0],
        mapX: gridAxisMap(W, g.num_steps, xsteps).map(f32),
        mapY: gridAxisMap(H, g.num_steps, ysteps).map(f32),
        window: [0, 0, W, H],
        border: g.border_mode,
        ...fills(g),
      };
      return { params: { xsteps, ysteps }, op, outSize: size };
    }
    case 'RandomBrightnessContrast': {
      const alpha = 1 + uniform(rng, t.contrast_limit);
      const beta = uniform(rng, t.brightness_limit);
      return { params: { alpha, beta }, op: { kind: 'brightness_contrast', alpha: f32(alpha), beta: f32(beta), byMax: t.brightness_by_max }, outSize: size };
    }
    case 'RandomGamma': {
      const gamma = uniform(rng, t.gamma_limit) / 100;
      return { params: { gamma }, op: { kind: 'gamma', gamma: f32(gamma) }, outSize: size };
    }
    case 'HueSaturationValue': {
      const hue = uniform(rng, t.hue_shift_limit);
      const sat = uniform(rng, t.sat_shift_limit);
      const val = uniform(rng, t.val_shift_limit);
      // OpenCV uint8 HSV units → degrees and [0, 1].
      return { params: { hue_shift: hue, sat_shift: sat, val_shift: val }, op: { kind: 'hsv', hue: f32(hue * 2), sat: f32(sat / 255), val: f32(val / 255) }, outSize: size };
    }
    case 'RGBShift': {
      const r = uniform(rng, t.r_shift_limit);
      const g = uniform(rng, t.g_shift_limit);
      const b = uniform(rng, t.b_shift_limit);
      return { params: { r_shift: r, g_shift: g, b_shift: b }, op: { kind: 'rgb_shift', shift: [f32(r / 255), f32(g / 255), f32(b / 255)] }, outSize: size };
    }
    case 'GaussNoise': {
      const variance = uniform(rng, t.var_limit);
      const seed = rng.int(0, 4294967296);
      const sigma = Math.sqrt(variance);
      return {
        params: { var: variance, sigma, seed },
        op: { kind: 'noise', sigma: f32(sigma / 255), mean: f32(t.mean / 255), seed, perChannel: t.per_channel },
        outSize: size,
      };
    }
    case 'GaussianBlur': {
      // Albumentations 1.3 GaussianBlur.get_params.
      const [lo, hi] = t.blur_limit;
      let ksize = rng.int(lo, hi + 1);
      if (ksize !== 0 && ksize % 2 !== 1) ksize = (ksize + 1) % (hi + 1);
      const sigma = uniform(rng, t.sigma_limit);
      const k = ksize === 0 ? Math.min(ksizeFromSigma(sigma), MAX_BLUR_KSIZE) : ksize;
      return { params: { ksize: k, sigma }, op: { kind: 'blur', ksize: k, sigma, weights: gaussianKernel(k, sigma).map(f32) }, outSize: size };
    }
  }
}

/**
 * Draw the parameters of every stage for one sample whose input is `size`. Not-applied stages are listed with
 * `applied: false`. Deterministic in (seed, sampleIndex, epoch, size).
 */
export function drawSample(spec: AugmentSpec, seed: number, sampleIndex: number, size: Size, epoch = 0): SampleDraw {
  if (!Number.isInteger(sampleIndex) || sampleIndex < 0) throw new ShapeError('augment', 'sampleIndex', 'a non-negative integer', sampleIndex);
  if (!Number.isInteger(size.height) || !Number.isInteger(size.width) || size.height < 1 || size.width < 1) {
    throw new ShapeError('augment', 'image size', 'positive integers', `${size.height}x${size.width}`);
  }
  const s = sampleSeed(seed, sampleIndex, epoch);
  const rng = new Rng(s);
  const stages: StageDraw[] = [];
  let cur = size;

  const visit = (t: TransformSpec, path: string, mode: 'draw' | 'force' | 'skip') => {
    if (t.name === 'Compose' || t.name === 'OneOf') {
      // Albumentations: `force_apply or random.random() < self.p` (a forced group draws nothing).
      const run = mode === 'force' || (mode === 'draw' && rng.next() < t.p);
      if (t.name === 'Compose') {
        // Compose does not force its children: each draws its own p.
        t.transforms.forEach((c, i) => visit(c, `${path}.transforms[${i}]`, run ? 'draw' : 'skip'));
        return;
      }
      // OneOf: pick one child with probability p_i / sum(p) and force it.
      let chosen = -1;
      if (run && t.transforms.length > 0) {
        const total = t.transforms.reduce((a, c) => a + c.p, 0);
        let u = rng.next() * total;
        chosen = t.transforms.findIndex((c) => c.p > 0 && (u -= c.p) < 0);
        // Rounding can leave u >= 0 after the last child: take the last child with weight.
        if (chosen < 0) chosen = t.transforms.map((c) => c.p > 0).lastIndexOf(true);
      }
      t.transforms.forEach((c, i) => visit(c, `${path}.transforms[${i}]`, i === chosen ? 'force' : 'skip'));
      return;
    }
    const applied = mode === 'force' || (mode === 'draw' && rng.next() < t.p);
    if (!applied) {
      stages.push({ name: t.name, path, applied: false, inSize: cur, outSize: cur });
      return;
    }
    const d = drawLeaf(t, rng, cur);
    stages.push({ name: t.name, path, applied: true, inSize: cur, outSize: d.outSize, params: d.params, op: d.op });
    cur = d.outSize;
  };
  visit({ name: 'Compose', p: spec.p, transforms: spec.transforms }, 'spec', 'draw');
  return { sampleIndex, epoch, seed: s, stages };
}
