/**
 * Pixel metrics on the GPU, per image pair of a batch: MSE, NRMSE and PSNR exactly as scikit-image 0.19
 * defines them (skimage.metrics.mean_squared_error / normalized_root_mse / peak_signal_noise_ratio), with
 * `real` as image_true and `fake` as image_test. The GPU reduces five per-image sums in fp32 trees; the
 * closing formulas run in float64 on the CPU.
 */
import shader from '../../shaders/metrics_pixel.wgsl';
import type { Dispatch, GpuContext } from '../runtime/context.js';
import { destroyDispatches } from '../runtime/context.js';
import { ShapeError } from '../runtime/errors.js';
import type { Tensor } from '../runtime/tensor.js';

const WG = 256;
const ITEMS = 4; // elements per thread in pass 1 (ITEMS in shaders/metrics_pixel.wgsl)
const STATS = 5; // sum (t - f)^2, sum t^2, sum t, min t, max t

/** NRMSE denominators, as skimage.metrics.normalized_root_mse's `normalization`. */
export type NrmseNormalization = 'euclidean' | 'min-max' | 'mean';

/** Options of {@link computePixelMetrics}. */
export interface PixelMetricsOptions {
  /** PSNR's data range (max possible value minus min). Default 1, for images in [0, 1]. */
  dataRange?: number;
  /** NRMSE denominator: 'euclidean' sqrt(mean(t^2)) (skimage's default), 'min-max' max(t) - min(t), 'mean' mean(t). */
  normalization?: NrmseNormalization;
}

/** Per-image results, index i for pair i of the batch. */
export interface PixelMetrics {
  mse: number[];
  nrmse: number[];
  /** Infinity where the images are identical (skimage divides by zero there too). */
  psnr: number[];
}

/** The raw per-image sums the kernel produces; {@link pixelMetricsFromStats} turns them into metrics. */
export interface PixelStats {
  /** Elements per image (C * H * W). */
  count: number;
  sumSqDiff: number;
  sumSqTrue: number;
  sumTrue: number;
  minTrue: number;
  maxTrue: number;
}

/**
 * Validate a batch of image pairs for a metric: both [N, C, H, W] with the same shape, N >= 1 and a non-empty
 * image. Errors name the op and both shapes.
 */
export function checkImagePair(ctx: GpuContext, op: string, real: Tensor, fake: Tensor): [number, number, number, number] {
  ctx.checkTensor(real, op, undefined, 'real');
  ctx.checkTensor(fake, op, undefined, 'fake');
  if (real.shape.length !== 4) throw new ShapeError(op, `real '${real.label}' rank`, '4 ([N, C, H, W])', real.shape.length);
  ctx.checkTensor(fake, op, real.shape, 'fake');
  const [n, c, h, w] = real.shape;
  if (n * c * h * w === 0) throw new ShapeError(op, 'real/fake shape', 'no zero dimension', `[${real.shape.join(', ')}]`);
  return [n, c, h, w];
}

/**
 * Record the two reduction passes: `stats` ([N, 5]) receives per image sum (t - f)^2, sum t^2, sum t, min t,
 * max t. The partials are scratch owned by the returned dispatches.
 */
export function pixelStatsForward(ctx: GpuContext, stats: Tensor, real: Tensor, fake: Tensor): Dispatch[] {
  const op = 'pixelMetrics';
  const [n, c, h, w] = checkImagePair(ctx, op, real, fake);
  ctx.checkTensor(stats, op, [n, STATS], 'stats');
  const perImage = c * h * w;
  const chunks = Math.ceil(perImage / (WG * ITEMS));
  const partials = ctx.tensor([n * chunks * STATS], undefined, `${op}.partials`);
  const u32 = [perImage, chunks, n];
  const pass1 = ctx.kernel({
    op,
    shader,
    entryPoint: 'partial',
    constants: { WG },
    u32,
    bindings: [
      { tensor: partials, access: 'rw' },
      { tensor: real, access: 'read' },
      { tensor: fake, access: 'read' },
    ],
    workgroups: ctx.grid(n * chunks, 1),
  }).attach(partials);
  const pass2 = ctx.kernel({
    op,
    shader,
    entryPoint: 'finalize',
    constants: { WG },
    u32,
    bindings: [
      { tensor: stats, access: 'rw' },
      { tensor: partials, access: 'read' },
    ],
    workgroups: ctx.grid(n, 1),
  });
  return [pass1, pass2];
}

/** Unpack the [N, 5] statistics read back from {@link pixelStatsForward}. */
export function unpackPixelStats(data: ArrayLike<number>, count: number): PixelStats[] {
  const out: PixelStats[] = [];
  for (let i = 0; i * STATS < data.length; i++) {
    const s = i * STATS;
    out.push({ count, sumSqDiff: data[s], sumSqTrue: data[s + 1], sumTrue: data[s + 2], minTrue: data[s + 3], maxTrue: data[s + 4] });
  }
  return out;
}

/**
 * MSE, NRMSE and PSNR from per-image sums, in float64, with skimage's formulas:
 * mse = mean((t - f)^2); nrmse = sqrt(mse) / denom with denom sqrt(mean(t^2)) | max(t) - min(t) | mean(t);
 * psnr = 10 log10(dataRange^2 / mse).
 */
export function pixelMetricsFromStats(stats: readonly PixelStats[], opts: PixelMetricsOptions = {}): PixelMetrics {
  const dataRange = opts.dataRange ?? 1;
  const norm = opts.normalization ?? 'euclidean';
  const out: PixelMetrics = { mse: [], nrmse: [], psnr: [] };
  for (const s of stats) {
    const mse = s.sumSqDiff / s.count;
    const denom = norm === 'euclidean' ? Math.sqrt(s.sumSqTrue / s.count) : norm === 'min-max' ? s.maxTrue - s.minTrue : s.sumTrue / s.count;
    out.mse.push(mse);
    out.nrmse.push(Math.sqrt(mse) / denom);
    out.psnr.push(10 * Math.log10((dataRange * dataRange) / mse));
  }
  return out;
}

export function checkMetricOptions(op: string, opts: { dataRange?: number; normalization?: string }): void {
  if (opts.dataRange !== undefined && !(Number.isFinite(opts.dataRange) && opts.dataRange > 0)) {
    throw new ShapeError(op, 'dataRange', 'a finite number > 0', opts.dataRange);
  }
  if (opts.normalization !== undefined && !['euclidean', 'min-max', 'mean'].includes(opts.normalization)) {
    throw new ShapeError(op, 'normalization', "'euclidean' | 'min-max' | 'mean'", `'${opts.normalization}'`);
  }
}

/**
 * MSE, NRMSE and PSNR for every pair of a batch on the GPU, matching skimage.metrics with `real` as image_true.
 * Both tensors are [N, C, H, W] (any C; values in [0, 1] unless `dataRange` says otherwise). One submit, one
 * readback of N * 5 floats.
 */
export async function computePixelMetrics(ctx: GpuContext, real: Tensor, fake: Tensor, opts: PixelMetricsOptions = {}): Promise<PixelMetrics> {
  checkMetricOptions('pixelMetrics', opts);
  const [n, c, h, w] = checkImagePair(ctx, 'pixelMetrics', real, fake);
  const stats = ctx.tensor([n, STATS], undefined, 'pixelMetrics.stats');
  const ds = pixelStatsForward(ctx, stats, real, fake);
  try {
    await ctx.run(ds, 'pixelMetrics');
    return pixelMetricsFromStats(unpackPixelStats(await stats.read(), c * h * w), opts);
  } finally {
    destroyDispatches(ds);
    stats.destroy();
  }
}
