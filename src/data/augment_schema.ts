/**
 * Paired-augmentation pipelines as JSON, with Albumentations' names, parameters, defaults and Compose / OneOf
 * semantics (Albumentations 1.3, A. Buslaev et al., Information 2020). `parseAugmentSpec` validates a spec and
 * fills in defaults; errors name the transform, the parameter, what was expected and what was given.
 *
 * Units follow Albumentations on uint8 images (what the mouse photos are), mapped to this library's [0, 1] floats:
 * - border `value`, RGBShift shifts, GaussNoise `var_limit`/`mean`: 0..255 units, divided by 255 (variance by 255²);
 * - HueSaturationValue: OpenCV's uint8 HSV units: hue in 0..180 (2° per unit), so a hue shift h turns the hue by
 *   2h degrees; saturation and value shifts in 0..255 units, divided by 255;
 * - RandomBrightnessContrast, RandomGamma, geometric limits: unitless, exactly as Albumentations.
 * Browser-safe.
 */
import { ShapeError } from '../runtime/errors.js';

/** OpenCV border modes (cv2.BORDER_*), by name. cv2's integer codes are accepted too. */
export type BorderMode = 'constant' | 'replicate' | 'reflect' | 'wrap' | 'reflect_101';
const BORDER_CODES: Record<number, BorderMode> = { 0: 'constant', 1: 'replicate', 2: 'reflect', 3: 'wrap', 4: 'reflect_101' };
const BORDER_NAMES: readonly BorderMode[] = ['constant', 'replicate', 'reflect', 'wrap', 'reflect_101'];

/** Options shared by the warping transforms (cv2.warpAffine / cv2.remap arguments). */
export interface WarpOptions {
  /** Only bilinear (cv2.INTER_LINEAR = 1) is implemented. */
  interpolation: 'bilinear';
  border_mode: BorderMode;
  /** Fill for border_mode 'constant' in 0..255 units, one value or one per channel of A. */
  value: number[];
  /** Fill for B (Albumentations' mask_value); defaults to `value`. */
  mask_value: number[] | null;
}

export type Range = [number, number];

export interface HorizontalFlipSpec { name: 'HorizontalFlip'; p: number }
export interface VerticalFlipSpec { name: 'VerticalFlip'; p: number }
export interface RotateSpec extends WarpOptions { name: 'Rotate'; p: number; limit: Range }
export interface ShiftScaleRotateSpec extends WarpOptions {
  name: 'ShiftScaleRotate';
  p: number;
  shift_limit_x: Range;
  shift_limit_y: Range;
  /** As given (unbiased): the scale factor is 1 + uniform(scale_limit), Albumentations' `to_tuple(scale_limit, bias=1.0)`. */
  scale_limit: Range;
  rotate_limit: Range;
}
export interface RandomResizedCropSpec { name: 'RandomResizedCrop'; p: number; height: number; width: number; scale: Range; ratio: Range; interpolation: 'bilinear' }
export interface GridDistortionSpec extends WarpOptions { name: 'GridDistortion'; p: number; num_steps: number; distort_limit: Range }
export interface RandomBrightnessContrastSpec { name: 'RandomBrightnessContrast'; p: number; brightness_limit: Range; contrast_limit: Range; brightness_by_max: boolean }
export interface RandomGammaSpec { name: 'RandomGamma'; p: number; gamma_limit: Range }
export interface HueSaturationValueSpec { name: 'HueSaturationValue'; p: number; hue_shift_limit: Range; sat_shift_limit: Range; val_shift_limit: Range }
export interface RGBShiftSpec { name: 'RGBShift'; p: number; r_shift_limit: Range; g_shift_limit: Range; b_shift_limit: Range }
export interface GaussNoiseSpec { name: 'GaussNoise'; p: number; var_limit: Range; mean: number; per_channel: boolean }
export interface GaussianBlurSpec { name: 'GaussianBlur'; p: number; blur_limit: Range; sigma_limit: Range }
export interface OneOfSpec { name: 'OneOf'; p: number; transforms: TransformSpec[] }
export interface ComposeSpec { name: 'Compose'; p: number; transforms: TransformSpec[] }

export type GeometricSpec = HorizontalFlipSpec | VerticalFlipSpec | RotateSpec | ShiftScaleRotateSpec | RandomResizedCropSpec | GridDistortionSpec;
export type PhotometricSpec = RandomBrightnessContrastSpec | RandomGammaSpec | HueSaturationValueSpec | RGBShiftSpec | GaussNoiseSpec | GaussianBlurSpec;
export type LeafSpec = GeometricSpec | PhotometricSpec;
export type TransformSpec = LeafSpec | OneOfSpec | ComposeSpec;

/** A validated pipeline: the top level is a Compose. */
export interface AugmentSpec { transforms: TransformSpec[]; p: number }

/** Transforms that move pixels: applied identically to A and B. */
export const GEOMETRIC_TRANSFORMS = ['HorizontalFlip', 'VerticalFlip', 'Rotate', 'ShiftScaleRotate', 'RandomResizedCrop', 'GridDistortion'] as const;
/** Transforms that change colours: applied to the photo (A) only. */
export const PHOTOMETRIC_TRANSFORMS = ['RandomBrightnessContrast', 'RandomGamma', 'HueSaturationValue', 'RGBShift', 'GaussNoise', 'GaussianBlur'] as const;
const GROUPS = ['OneOf', 'Compose'] as const;
const ALL_NAMES: readonly string[] = [...GEOMETRIC_TRANSFORMS, ...PHOTOMETRIC_TRANSFORMS, ...GROUPS];

/** Largest Gaussian kernel accepted (taps per axis); keeps the per-sample weight table small. */
export const MAX_BLUR_KSIZE = 63;

export function isGeometric(t: TransformSpec): t is GeometricSpec {
  return (GEOMETRIC_TRANSFORMS as readonly string[]).includes(t.name);
}

/** A spec that does not validate. `transform` and `parameter` say where; the message says expected vs actual. */
export class AugmentSpecError extends ShapeError {
  constructor(
    readonly transform: string,
    readonly parameter: string,
    expected: unknown,
    actual: unknown,
  ) {
    super(transform, parameter, expected, actual);
  }
}

// ------------------------------------------------------------------ value readers

type Json = Record<string, unknown>;

function show(v: unknown): string {
  if (typeof v === 'string') return JSON.stringify(v);
  try {
    return JSON.stringify(v) ?? String(v);
  } catch {
    return String(v);
  }
}

class Reader {
  private readonly used = new Set<string>(['name']);
  constructor(
    readonly obj: Json,
    readonly transform: string,
    readonly path: string,
  ) {}

  fail(param: string, expected: string, actual: unknown): never {
    throw new AugmentSpecError(this.transform, `${this.path}.${param}`, expected, show(actual));
  }

  raw(param: string): unknown {
    this.used.add(param);
    return this.obj[param];
  }

  num(param: string, def: number | undefined, o: { min?: number; max?: number; int?: boolean; gt?: number } = {}): number {
    const v = this.raw(param) ?? def;
    const want = describeNum(o);
    if (v === undefined) throw new AugmentSpecError(this.transform, `${this.path}.${param}`, `${want} (required)`, 'nothing');
    if (typeof v !== 'number' || !Number.isFinite(v)) this.fail(param, want, v);
    if ((o.int && !Number.isInteger(v)) || (o.min !== undefined && v < o.min) || (o.max !== undefined && v > o.max) || (o.gt !== undefined && v <= o.gt)) {
      this.fail(param, want, v);
    }
    return v;
  }

  bool(param: string, def: boolean): boolean {
    const v = this.raw(param) ?? def;
    if (typeof v !== 'boolean') this.fail(param, 'true or false', v);
    return v;
  }

  /**
   * A (lo, hi) range as Albumentations' `to_tuple`: a scalar x becomes (-x, x) (or (low, x) when `low` is given),
   * then the bounds are checked on the range plus `bias`. Returns the range without the bias.
   */
  range(param: string, def: number | Range, o: { low?: number; bias?: number; min?: number; max?: number; gt?: number } = {}): Range {
    const v = this.raw(param) ?? def;
    let r: Range;
    const bounds = describeNum(o).replace(/^a number ?/, '');
    const each = o.bias ? `${o.bias} + each` : 'each';
    const want = `a number${o.low === undefined ? ' x (for [-x, x])' : ` x (for [${o.low}, x])`} or [lo, hi] with lo <= hi${bounds ? `, ${each} ${bounds}` : ''}`;
    if (typeof v === 'number' && Number.isFinite(v)) {
      if (o.low === undefined && v < 0) this.fail(param, want, v);
      r = o.low === undefined ? [-v, v] : [Math.min(o.low, v), Math.max(o.low, v)];
    } else if (Array.isArray(v) && v.length === 2 && v.every((x) => typeof x === 'number' && Number.isFinite(x)) && v[0] <= v[1]) {
      r = [v[0], v[1]];
    } else {
      this.fail(param, want, v);
    }
    // Bounds apply to the biased values (e.g. a scale factor 1 + s must be > 0); the range is returned unbiased.
    const b = o.bias ?? 0;
    for (const x of [r[0] + b, r[1] + b]) {
      if ((o.min !== undefined && x < o.min) || (o.max !== undefined && x > o.max) || (o.gt !== undefined && x <= o.gt)) this.fail(param, want, v);
    }
    return r;
  }

  oneOf<T extends string>(param: string, def: T, names: readonly T[], codes: Record<number, T> = {}): T {
    const v = this.raw(param) ?? def;
    if (typeof v === 'number' && codes[v] !== undefined) return codes[v];
    if (typeof v === 'string' && (names as readonly string[]).includes(v.toLowerCase())) return v.toLowerCase() as T;
    const codeList = Object.entries(codes).map(([k, n]) => `${k} (${n})`);
    this.fail(param, `one of ${names.join(', ')}${codeList.length ? ` or cv2 code ${codeList.join(', ')}` : ''}`, v);
  }

  p(def: number): number {
    const always = this.raw('always_apply');
    if (always !== undefined && typeof always !== 'boolean') this.fail('always_apply', 'true or false', always);
    const p = this.num('p', def, { min: 0, max: 1 });
    return always ? 1 : p;
  }

  /** Albumentations raises on unknown keyword arguments; so do we (it catches typos like `rotate_limt`). */
  finish(): void {
    for (const k of Object.keys(this.obj)) {
      if (!this.used.has(k)) {
        const known = ['p', ...[...this.used].filter((u) => !['name', 'p', 'always_apply'].includes(u))];
        this.fail(k, `a known parameter (${this.transform} takes ${[...known, 'always_apply'].join(', ')})`, this.obj[k]);
      }
    }
  }
}

function describeNum(o: { min?: number; max?: number; int?: boolean; gt?: number }): string {
  const parts: string[] = [];
  if (o.gt !== undefined) parts.push(`> ${o.gt}`);
  if (o.min !== undefined) parts.push(`>= ${o.min}`);
  if (o.max !== undefined) parts.push(`<= ${o.max}`);
  return `${o.int ? 'an integer' : 'a number'}${parts.length ? ' ' + parts.join(' and ') : ''}`;
}

function fillValue(r: Reader, param: string, def: number | null): number[] | null {
  const v = r.raw(param);
  if (v === undefined || v === null) return def === null ? null : [def];
  const ok = (x: unknown) => typeof x === 'number' && Number.isFinite(x) && x >= 0 && x <= 255;
  if (ok(v)) return [v as number];
  if (Array.isArray(v) && v.length >= 1 && v.length <= 4 && v.every(ok)) return [...(v as number[])];
  r.fail(param, 'a number in 0..255 or an array of 1 to 4 such numbers (one per channel)', v);
}

function warpOptions(r: Reader): WarpOptions {
  const interp = r.raw('interpolation') ?? 1;
  if (!(interp === 1 || interp === 'bilinear' || interp === 'linear')) {
    r.fail('interpolation', "'bilinear' (cv2.INTER_LINEAR = 1; the only interpolation implemented)", interp);
  }
  return {
    interpolation: 'bilinear',
    border_mode: r.oneOf('border_mode', 'reflect_101', BORDER_NAMES, BORDER_CODES),
    value: fillValue(r, 'value', 0)!,
    mask_value: fillValue(r, 'mask_value', null),
  };
}

function interpolationOnly(r: Reader): 'bilinear' {
  const interp = r.raw('interpolation') ?? 1;
  if (!(interp === 1 || interp === 'bilinear' || interp === 'linear')) {
    r.fail('interpolation', "'bilinear' (cv2.INTER_LINEAR = 1; the only interpolation implemented)", interp);
  }
  return 'bilinear';
}

// ------------------------------------------------------------------ transforms


function parseTransform(v: unknown, path: string): TransformSpec {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new AugmentSpecError('parseAugmentSpec', path, 'an object with a "name"', show(v));
  const obj = v as Json;
  const name = obj.name;
  if (typeof name !== 'string' || !ALL_NAMES.includes(name)) {
    throw new AugmentSpecError('parseAugmentSpec', `${path}.name`, `one of ${ALL_NAMES.join(', ')}`, show(name));
  }
  const r: Reader = new Reader(obj, name, path);
  let t: TransformSpec;
  switch (name) {
    case 'HorizontalFlip':
    case 'VerticalFlip':
      t = { name, p: r.p(0.5) };
      break;
    case 'Rotate':
      t = { name, p: r.p(0.5), limit: r.range('limit', 90, { min: -360, max: 360 }), ...warpOptions(r) };
      break;
    case 'ShiftScaleRotate': {
      // Albumentations: shift_limit_x / _y default to shift_limit.
      const shiftOpts = { min: -1, max: 1 };
      const shift = r.range('shift_limit', 0.0625, shiftOpts);
      const shift_limit_x = r.raw('shift_limit_x') == null ? shift : r.range('shift_limit_x', 0, shiftOpts);
      const shift_limit_y = r.raw('shift_limit_y') == null ? shift : r.range('shift_limit_y', 0, shiftOpts);
      t = {
        name,
        p: r.p(0.5),
        shift_limit_x,
        shift_limit_y,
        scale_limit: r.range('scale_limit', 0.1, { bias: 1, gt: 0 }),
        rotate_limit: r.range('rotate_limit', 45, { min: -360, max: 360 }),
        ...warpOptions(r),
      };
      break;
    }
    case 'RandomResizedCrop': {
      const height = r.num('height', undefined, { int: true, min: 1 });
      const width = r.num('width', undefined, { int: true, min: 1 });
      const scale = r.range('scale', [0.08, 1], { gt: 0, max: 1 });
      const ratio = r.range('ratio', [3 / 4, 4 / 3], { gt: 0 });
      t = { name, p: r.p(1), height, width, scale, ratio, interpolation: interpolationOnly(r) };
      break;
    }
    case 'GridDistortion':
      t = {
        name,
        p: r.p(0.5),
        num_steps: r.num('num_steps', 5, { int: true, min: 1 }),
        // Steps are 1 + uniform(distort_limit); each must stay > 0.
        distort_limit: r.range('distort_limit', 0.3, { bias: 1, gt: 0 }),
        ...warpOptions(r),
      };
      break;
    case 'RandomBrightnessContrast':
      t = {
        name,
        p: r.p(0.5),
        brightness_limit: r.range('brightness_limit', 0.2, { min: -1, max: 1 }),
        contrast_limit: r.range('contrast_limit', 0.2, { min: -1, max: 10 }),
        brightness_by_max: r.bool('brightness_by_max', true),
      };
      break;
    case 'RandomGamma':
      t = { name, p: r.p(0.5), gamma_limit: r.range('gamma_limit', [80, 120], { gt: 0 }) };
      break;
    case 'HueSaturationValue':
      t = {
        name,
        p: r.p(0.5),
        hue_shift_limit: r.range('hue_shift_limit', 20, { min: -180, max: 180 }),
        sat_shift_limit: r.range('sat_shift_limit', 30, { min: -255, max: 255 }),
        val_shift_limit: r.range('val_shift_limit', 20, { min: -255, max: 255 }),
      };
      break;
    case 'RGBShift':
      t = {
        name,
        p: r.p(0.5),
        r_shift_limit: r.range('r_shift_limit', 20, { min: -255, max: 255 }),
        g_shift_limit: r.range('g_shift_limit', 20, { min: -255, max: 255 }),
        b_shift_limit: r.range('b_shift_limit', 20, { min: -255, max: 255 }),
      };
      break;
    case 'GaussNoise':
      t = {
        name,
        p: r.p(0.5),
        var_limit: r.range('var_limit', [10, 50], { low: 0, min: 0 }),
        mean: r.num('mean', 0, { min: -255, max: 255 }),
        per_channel: r.bool('per_channel', true),
      };
      break;
    case 'GaussianBlur': {
      let blur = r.range('blur_limit', [3, 7], { low: 0, min: 0, max: MAX_BLUR_KSIZE });
      const sigma = r.range('sigma_limit', 0, { low: 0, min: 0, max: 10 });
      // Albumentations: with both lower limits 0 the kernel size starts at 3.
      if (blur[0] === 0 && sigma[0] === 0) blur = [Math.max(3, blur[0]), blur[1]];
      for (const k of blur) {
        if (k !== 0 && k % 2 !== 1) r.fail('blur_limit', 'odd kernel sizes (or 0: size from sigma)', blur);
      }
      if (blur[1] === 0 && sigma[1] === 0) r.fail('sigma_limit', 'a positive upper limit when blur_limit is 0', sigma);
      t = { name, p: r.p(0.5), blur_limit: blur, sigma_limit: sigma };
      break;
    }
    default: {
      // OneOf, Compose
      const list = r.raw('transforms');
      if (!Array.isArray(list)) r.fail('transforms', 'an array of transforms', list);
      const transforms = list.map((c, i) => parseTransform(c, `${path}.transforms[${i}]`));
      const p = r.p(name === 'OneOf' ? 0.5 : 1);
      if (name === 'OneOf' && transforms.length > 0 && transforms.every((c) => c.p === 0)) {
        r.fail('transforms', 'at least one child with p > 0 (OneOf picks children with probability proportional to p)', transforms.map((c) => c.p));
      }
      t = { name: name as 'OneOf' | 'Compose', p, transforms };
    }
  }
  r.finish();
  return t;
}

/**
 * Transforms that change the image size (RandomResizedCrop) must reach every sample, or a batch would mix sizes:
 * they must have p = 1 and sit in Composes with p = 1, never in a OneOf.
 */
function checkSizeChanging(list: readonly TransformSpec[], path: string, always: boolean): void {
  list.forEach((t, i) => {
    const here = `${path}.transforms[${i}]`;
    if (t.name === 'RandomResizedCrop' && (!always || t.p !== 1)) {
      throw new AugmentSpecError(
        'RandomResizedCrop',
        `${here}.p`,
        '1, outside any OneOf and inside Composes with p = 1 (it changes the image size, so every sample must get it)',
        always ? t.p : `p = ${t.p} in a group that does not always apply`,
      );
    }
    if (t.name === 'OneOf' || t.name === 'Compose') checkSizeChanging(t.transforms, here, always && t.name === 'Compose' && t.p === 1);
  });
}

/**
 * Parse and validate a pipeline: `{"transforms": [...], "p"?: 1, "description"?: "..."}` (a JSON string or an object), or a bare array of
 * transforms. Fills in Albumentations' defaults; throws {@link AugmentSpecError} naming the transform and parameter.
 */
export function parseAugmentSpec(json: string | unknown): AugmentSpec {
  let v: unknown = json;
  if (typeof json === 'string') {
    try {
      v = JSON.parse(json);
    } catch (e) {
      throw new AugmentSpecError('parseAugmentSpec', 'JSON', 'valid JSON', (e as Error).message);
    }
  }
  if (Array.isArray(v)) v = { transforms: v };
  if (typeof v !== 'object' || v === null) throw new AugmentSpecError('parseAugmentSpec', 'spec', '{"transforms": [...]}', show(v));
  const obj = { ...(v as Json) };
  // A top-level "description" documents the spec (JSON has no comments); it is not a parameter.
  if (obj.description !== undefined && typeof obj.description !== 'string') throw new AugmentSpecError('parseAugmentSpec', 'spec.description', 'a string', show(obj.description));
  delete obj.description;
  const top = parseTransform({ ...obj, name: 'Compose' }, 'spec');
  const spec = { transforms: (top as ComposeSpec).transforms, p: top.p };
  checkSizeChanging(spec.transforms, 'spec', spec.p === 1);
  return spec;
}

/** The output size of a pipeline for an input of `height` x `width` (the last RandomResizedCrop's, if any). */
export function outputSize(spec: AugmentSpec, height: number, width: number): { height: number; width: number } {
  let out = { height, width };
  const walk = (list: readonly TransformSpec[]) => {
    for (const t of list) {
      if (t.name === 'RandomResizedCrop') out = { height: t.height, width: t.width };
      else if (t.name === 'Compose') walk(t.transforms);
    }
  };
  walk(spec.transforms);
  return out;
}
