/**
 * SSIM (Wang, Bovik, Sheikh, Simoncelli 2004, "Image quality assessment: from error visibility to structural
 * similarity") on the GPU for every pair of a batch, in two documented modes that reproduce
 * skimage.metrics.structural_similarity (0.19):
 *
 * - `'skimage'` (default): skimage's defaults — uniform 7x7 window (scipy.ndimage.uniform_filter), sample
 *   covariance NP / (NP - 1) with NP = 49, K1 = 0.01, K2 = 0.03, C = (K L)^2 with L = `dataRange`.
 * - `'gaussian'`: `gaussian_weights=True, sigma=1.5, use_sample_covariance=False` — the paper's 11x11 Gaussian
 *   window (scipy.ndimage.gaussian_filter with truncate 3.5: radius int(3.5 * 1.5 + 0.5) = 5).
 *
 * Both filter with scipy's border mode 'reflect', take the mean of the map after cropping (win - 1) / 2 pixels
 * at every border, and average channels (skimage's channel_axis), which for equal-size channels is the mean
 * over all cropped pixels of all channels.
 */
import shader from '../../shaders/metrics_ssim.wgsl';
import type { Dispatch, GpuContext } from '../runtime/context.js';
import { destroyDispatches } from '../runtime/context.js';
import { ShapeError } from '../runtime/errors.js';
import { EVALUATION_DEFAULTS, SSIM_MODES, type SsimMode } from './defaults.js';
import type { Tensor } from '../runtime/tensor.js';
import { checkImagePair, checkMetricOptions } from './pixel.js';

const TILE = 16; // TILE in shaders/metrics_ssim.wgsl
const WG = 256;
const K1 = 0.01;
const K2 = 0.03;

export type { SsimMode } from './defaults.js';

/** Options of {@link computeSsim}. */
export interface SsimOptions {
  /** Default {@link EVALUATION_DEFAULTS}.ssimMode ('skimage'). */
  mode?: SsimMode;
  /** Data range L of the images (C1 = (0.01 L)^2, C2 = (0.03 L)^2). Default 1, for images in [0, 1]. */
  dataRange?: number;
  /** Also return each pair's full SSIM map (CHW planar, borders included), as skimage's `full=True`. */
  returnMap?: boolean;
}

/** Per-image mean SSIM, and the maps when asked for. */
export interface SsimResult {
  ssim: number[];
  /** Each pair's full SSIM map ([C, H, W] planar, borders included) when `returnMap` was set. */
  maps?: Float32Array[];
}

/** The 1-D filter weights of a mode, as scipy builds them (float64, then stored in f32 for the GPU). */
export function ssimWindow(mode: SsimMode): { weights: Float64Array; winSize: number; covNorm: number } {
  if (mode === 'gaussian') {
    // scipy.ndimage.gaussian_filter1d: radius = int(truncate * sigma + 0.5); exp(-x^2 / (2 sigma^2)), normalised.
    const sigma = 1.5;
    const radius = Math.trunc(3.5 * sigma + 0.5);
    const w = new Float64Array(2 * radius + 1);
    let sum = 0;
    for (let x = -radius; x <= radius; x++) sum += w[x + radius] = Math.exp((-0.5 / (sigma * sigma)) * x * x);
    for (let i = 0; i < w.length; i++) w[i] /= sum;
    // skimage: use_sample_covariance=False in this mode, so no NP / (NP - 1).
    return { weights: w, winSize: w.length, covNorm: 1 };
  }
  const winSize = 7;
  const np = winSize * winSize;
  return { weights: new Float64Array(winSize).fill(1 / winSize), winSize, covNorm: np / (np - 1) };
}

/**
 * Record SSIM for a batch: `sums` ([N]) receives each image's sum of the cropped map over all channels, and
 * `map` ([N, C, H, W], or null to skip it) the full map. Scratch is owned by the returned dispatches.
 */
export function ssimForward(
  ctx: GpuContext,
  sums: Tensor,
  map: Tensor | null,
  real: Tensor,
  fake: Tensor,
  opts: { mode?: SsimMode; dataRange?: number } = {},
): Dispatch[] {
  const op = 'ssim';
  const mode = opts.mode ?? EVALUATION_DEFAULTS.ssimMode;
  if (!SSIM_MODES.includes(mode)) throw new ShapeError(op, 'mode', SSIM_MODES.map((m) => `'${m}'`).join(' | '), `'${String(mode)}'`);
  checkMetricOptions(op, opts);
  const [n, c, h, w] = checkImagePair(ctx, op, real, fake);
  ctx.checkTensor(sums, op, [n], 'sums');
  if (map) ctx.checkTensor(map, op, real.shape, 'map');
  const { weights, winSize, covNorm } = ssimWindow(mode);
  if (h < winSize || w < winSize) {
    // skimage raises the same: the window must fit in the image.
    throw new ShapeError(op, `image size (H x W) for mode '${mode}' (window ${winSize}x${winSize})`, `>= ${winSize}x${winSize}`, `${h}x${w}`);
  }
  const radius = (winSize - 1) / 2;
  const L = opts.dataRange ?? 1;
  const tilesX = Math.ceil(w / TILE);
  const tilesY = Math.ceil(h / TILE);
  const tiles = tilesX * tilesY;
  const planes = n * c;
  const partials = ctx.tensor([planes * tiles], undefined, `${op}.partials`);
  const weightT = ctx.tensor([weights.length], weights, `${op}.weights`);
  // Without a map the binding still needs a buffer (one layout for both cases); it is never written.
  const mapT = map ?? ctx.tensor([1], undefined, `${op}.map(unused)`);
  const u32 = [w, h, planes, radius, radius, tiles, n, c * tiles, map ? 1 : 0];
  const f32 = [covNorm, (K1 * L) ** 2, (K2 * L) ** 2];
  const tile = ctx.kernel({
    op,
    shader,
    entryPoint: 'ssim_tile',
    constants: { WG },
    u32,
    f32,
    bindings: [
      { tensor: mapT, access: 'rw' },
      { tensor: partials, access: 'rw' },
      { tensor: real, access: 'read' },
      { tensor: fake, access: 'read' },
      { tensor: weightT, access: 'read' },
    ],
    workgroups: [tilesX, tilesY, planes],
  })
    .attach(partials)
    .attach(weightT);
  if (!map) tile.attach(mapT);
  const fin = ctx.kernel({
    op,
    shader,
    entryPoint: 'finalize',
    constants: { WG },
    u32,
    f32,
    bindings: [
      { tensor: sums, access: 'rw' },
      { tensor: partials, access: 'rw' },
    ],
    workgroups: ctx.grid(n, 1),
  });
  return [tile, fin];
}

/**
 * Mean SSIM of every pair of a batch ([N, C, H, W], `real` as skimage's im1/reference), per image, as
 * skimage.metrics.structural_similarity in the chosen {@link SsimMode}; optionally the maps.
 * Images must be at least the window (7x7, or 11x11 for 'gaussian').
 */
export async function computeSsim(ctx: GpuContext, real: Tensor, fake: Tensor, opts: SsimOptions = {}): Promise<SsimResult> {
  const [n, c, h, w] = checkImagePair(ctx, 'ssim', real, fake);
  const mode = opts.mode ?? EVALUATION_DEFAULTS.ssimMode;
  const sums = ctx.tensor([n], undefined, 'ssim.sums');
  const map = opts.returnMap ? ctx.tensor(real.shape, undefined, 'ssim.map') : null;
  let ds: Dispatch[] = [];
  try {
    ds = ssimForward(ctx, sums, map, real, fake, { mode, dataRange: opts.dataRange });
    await ctx.run(ds, 'ssim');
    const crop = ssimWindow(mode).winSize - 1;
    const count = c * (h - crop) * (w - crop);
    const result: SsimResult = { ssim: Array.from(await sums.read(), (v) => v / count) };
    if (map) {
      const all = await map.read();
      const per = c * h * w;
      result.maps = Array.from({ length: n }, (_, i) => all.slice(i * per, (i + 1) * per));
    }
    return result;
  } finally {
    destroyDispatches(ds);
    sums.destroy();
    map?.destroy();
  }
}
