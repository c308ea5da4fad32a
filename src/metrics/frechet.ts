/**
 * Fréchet distance between two Gaussians fitted to feature vectors (Heusel et al. 2017, "GANs trained by a two
 * time-scale update rule converge to a local Nash equilibrium": FID with InceptionV3 pool3 features):
 *
 *   d^2 = ||mu1 - mu2||^2 + tr S1 + tr S2 - 2 tr sqrt(S1 S2)
 *
 * pytorch-fid evaluates tr sqrt(S1 S2) with scipy.linalg.sqrtm of the non-symmetric product. Here it is the sum
 * of sqrt(eigenvalues) of a symmetric matrix similar to S1 S2, in float64 on the CPU:
 *   - S1 = L L^T (Cholesky) when S1 is positive definite: eig(L^T S2 L) = eig(S1 S2)   (~1.5 n^3 flops);
 *   - else the same with S2's Cholesky factor (eig(S2 S1) = eig(S1 S2));
 *   - else (both singular, e.g. fewer samples than dimensions) sqrt(S1) S2 sqrt(S1) with sqrt(S1) from a full
 *     symmetric eigendecomposition (~6 n^3 flops; minutes at n = 2048 in JS). When the features themselves are
 *     at hand, {@link frechetDistanceFromFeatures} does that case in N1 N2 d flops, and {@link fidFromFeatures}
 *     uses it whenever N < d.
 * Eigenvalues that rounding leaves slightly negative are clamped to 0. As pytorch-fid, a non-finite result is
 * retried once with eps * I added to both covariances.
 *
 * Feature statistics (mean, covariance) are computed on the GPU in fp32 and promoted to float64.
 */
import shader from '../../shaders/metrics_stats.wgsl';
import type { Dispatch, GpuContext } from '../runtime/context.js';
import { destroyDispatches } from '../runtime/context.js';
import { Pix2PixError, ShapeError } from '../runtime/errors.js';
import type { Tensor } from '../runtime/tensor.js';
import type { FeatureExtractor, FeatureMatrix } from './features.js';
import { cholesky, congruenceLower, matmul, sqrtSymmetricPsd, symmetricEigenvalues } from './linalg.js';

const WG = 256;
const TILE = 16; // TILE in shaders/metrics_stats.wgsl

/** Mean and covariance of N feature vectors of dimension `dims` (float64, sigma row-major dims x dims). */
export interface FeatureStatistics {
  mu: Float64Array;
  sigma: Float64Array;
  n: number;
  dims: number;
  /** E.g. N <= dims: the covariance is singular and the FID biased. */
  warnings: string[];
}

/** How {@link frechetDistance} formed the symmetric matrix whose eigenvalues give tr sqrt(S1 S2). */
export type FrechetMethod = 'cholesky-sigma1' | 'cholesky-sigma2' | 'eigen-sqrt-sigma1' | 'feature-gram';

export interface FrechetResult {
  distance: number;
  method: FrechetMethod;
  /** eps added to both diagonals (0 unless the first attempt was not finite, as pytorch-fid retries). */
  offset: number;
  warnings: string[];
}

export interface FrechetOptions {
  /** Diagonal offset of the retry (pytorch-fid's eps). Default 1e-6. */
  eps?: number;
  /** Called with each warning as well as returning it (e.g. `console.warn`). */
  onWarning?: (message: string) => void;
}

// ------------------------------------------------------------------------------------------ CPU, float64

function checkStats(op: string, mu: Float64Array, sigma: Float64Array, d: number, which: string): void {
  if (mu.length !== d) throw new ShapeError(op, `mu${which} length`, d, mu.length);
  if (sigma.length !== d * d) throw new ShapeError(op, `sigma${which} length (d x d, d = ${d})`, d * d, sigma.length);
  for (let i = 0; i < mu.length; i++) if (!Number.isFinite(mu[i])) throw new Pix2PixError(op, `mu${which}[${i}] is ${mu[i]} (features contain NaN/Inf?)`);
  for (let i = 0; i < sigma.length; i++) {
    if (!Number.isFinite(sigma[i])) throw new Pix2PixError(op, `sigma${which}[${Math.floor(i / d)}, ${i % d}] is ${sigma[i]} (features contain NaN/Inf?)`);
  }
}

/** tr sqrt(S1 S2) and how it was formed. */
function traceSqrtProduct(s1: Float64Array, s2: Float64Array, d: number): { trace: number; method: FrechetMethod; minEigenvalue: number; maxEigenvalue: number } {
  let m: Float64Array;
  let method: FrechetMethod;
  const l1 = cholesky(s1, d);
  const l2 = l1 ? null : cholesky(s2, d);
  if (l1) {
    m = congruenceLower(l1, s2, d);
    method = 'cholesky-sigma1';
  } else if (l2) {
    m = congruenceLower(l2, s1, d);
    method = 'cholesky-sigma2';
  } else {
    const { root } = sqrtSymmetricPsd(s1, d);
    m = matmul(matmul(root, s2, d), root, d);
    method = 'eigen-sqrt-sigma1';
  }
  const ev = symmetricEigenvalues(m, d);
  let trace = 0;
  let minEigenvalue = Infinity;
  let maxEigenvalue = -Infinity;
  for (const v of ev) {
    minEigenvalue = Math.min(minEigenvalue, v);
    maxEigenvalue = Math.max(maxEigenvalue, v);
    trace += Math.sqrt(Math.max(v, 0));
  }
  return { trace, method, minEigenvalue, maxEigenvalue };
}

/**
 * Fréchet distance between N(mu1, sigma1) and N(mu2, sigma2) in float64 (sigmas symmetric, row-major d x d).
 * Equals pytorch-fid's calculate_frechet_distance (scipy.linalg.sqrtm) to ~1e-9 relative on our fixtures.
 */
export function frechetDistance(mu1: Float64Array, sigma1: Float64Array, mu2: Float64Array, sigma2: Float64Array, opts: FrechetOptions = {}): FrechetResult {
  const op = 'frechetDistance';
  const d = mu1.length;
  if (d < 1) throw new ShapeError(op, 'dimension', '>= 1', 0);
  checkStats(op, mu1, sigma1, d, '1');
  checkStats(op, mu2, sigma2, d, '2');
  const warnings: string[] = [];
  const warn = (msg: string) => {
    warnings.push(msg);
    opts.onWarning?.(msg);
  };
  let meanTerm = 0;
  let tr1 = 0;
  let tr2 = 0;
  for (let i = 0; i < d; i++) {
    meanTerm += (mu1[i] - mu2[i]) ** 2;
    tr1 += sigma1[i * d + i];
    tr2 += sigma2[i * d + i];
  }
  let offset = 0;
  let r = traceSqrtProduct(sigma1, sigma2, d);
  if (!Number.isFinite(r.trace)) {
    offset = opts.eps ?? 1e-6;
    warn(`${op}: the product of the covariances is singular (tr sqrt not finite); adding ${offset} to both diagonals, as pytorch-fid does`);
    const a = Float64Array.from(sigma1);
    const b = Float64Array.from(sigma2);
    for (let i = 0; i < d; i++) {
      a[i * d + i] += offset;
      b[i * d + i] += offset;
    }
    r = traceSqrtProduct(a, b, d);
    tr1 += d * offset;
    tr2 += d * offset;
    if (!Number.isFinite(r.trace)) throw new Pix2PixError(op, 'tr sqrt(sigma1 sigma2) is not finite even with the eps offset');
  }
  // Rounding leaves near-zero eigenvalues at about -1e-15 * max; anything far below means a covariance that is
  // not positive semi-definite (not produced by a covariance estimate).
  if (r.minEigenvalue < -1e-8 * Math.max(r.maxEigenvalue, 0)) {
    warn(`${op}: sigma1 sigma2 has a negative eigenvalue ${r.minEigenvalue.toExponential(3)} (max ${r.maxEigenvalue.toExponential(3)}), clamped to 0: are both covariances positive semi-definite?`);
  }
  return { distance: meanTerm + tr1 + tr2 - 2 * r.trace, method: r.method, offset, warnings };
}

/**
 * Fréchet distance straight from two feature sets, float64 on the CPU, for when a covariance is singular
 * (fewer samples than dimensions: e.g. 117 test images against InceptionV3's 2048 dims). With A = Xc1 / sqrt(N1 - 1)
 * and B = Xc2 / sqrt(N2 - 1) (centred rows), S1 = A^T A and S2 = B^T B, so the non-zero eigenvalues of S1 S2 are
 * those of C C^T with C = A B^T (N1 x N2): tr sqrt(S1 S2) is the sum of C's singular values. Cost N1 N2 d +
 * min(N1, N2)^3 instead of d^3 — milliseconds where the d x d eigen route takes minutes in JS.
 */
export function frechetDistanceFromFeatures(real: FeatureMatrix, fake: FeatureMatrix): FrechetResult {
  const op = 'frechetDistanceFromFeatures';
  if (real.cols !== fake.cols) throw new ShapeError(op, 'feature dims (real vs fake)', real.cols, fake.cols);
  const d = real.cols;
  const centred = (f: FeatureMatrix, name: string) => {
    if (f.data.length !== f.rows * d) throw new ShapeError(op, `${name} features data length (rows x cols = ${f.rows} x ${d})`, f.rows * d, f.data.length);
    if (f.rows < 2) throw new ShapeError(op, `${name} feature vectors (N) for a covariance`, '>= 2', f.rows);
    const mu = new Float64Array(d);
    for (let i = 0; i < f.rows; i++) for (let c = 0; c < d; c++) mu[c] += f.data[i * d + c];
    for (let c = 0; c < d; c++) mu[c] /= f.rows;
    const scale = 1 / Math.sqrt(f.rows - 1);
    const x = new Float64Array(f.rows * d);
    let trace = 0;
    for (let i = 0; i < f.rows; i++) {
      for (let c = 0; c < d; c++) {
        const v = (f.data[i * d + c] - mu[c]) * scale;
        if (!Number.isFinite(v)) throw new Pix2PixError(op, `${name} features [${i}, ${c}] is ${f.data[i * d + c]}`);
        x[i * d + c] = v;
        trace += v * v;
      }
    }
    return { mu, x, trace, rows: f.rows };
  };
  let a = centred(real, 'real');
  let b = centred(fake, 'fake');
  let meanTerm = 0;
  for (let c = 0; c < d; c++) meanTerm += (a.mu[c] - b.mu[c]) ** 2;
  const traces = a.trace + b.trace;
  if (a.rows > b.rows) [a, b] = [b, a]; // C C^T of the smaller side
  const m = a.rows;
  const cm = new Float64Array(m * b.rows);
  for (let i = 0; i < m; i++) {
    for (let j = 0; j < b.rows; j++) {
      let dot = 0;
      for (let c = 0; c < d; c++) dot += a.x[i * d + c] * b.x[j * d + c];
      cm[i * b.rows + j] = dot;
    }
  }
  const g = new Float64Array(m * m);
  for (let i = 0; i < m; i++) {
    for (let k = 0; k <= i; k++) {
      let dot = 0;
      for (let j = 0; j < b.rows; j++) dot += cm[i * b.rows + j] * cm[k * b.rows + j];
      g[i * m + k] = g[k * m + i] = dot;
    }
  }
  let trace = 0;
  for (const v of symmetricEigenvalues(g, m)) trace += Math.sqrt(Math.max(v, 0));
  return { distance: meanTerm + traces - 2 * trace, method: 'feature-gram', offset: 0, warnings: [] };
}

// ------------------------------------------------------------------------------------------ GPU statistics

/**
 * Record mean and covariance of `x` ([N, D]) into `mu` ([D]) and `sigma` ([D, D], divisor N - 1), using `xc`
 * ([N, D]) as the centred copy.
 */
export function featureStatisticsForward(ctx: GpuContext, mu: Tensor, sigma: Tensor, xc: Tensor, x: Tensor): Dispatch[] {
  const op = 'featureStatistics';
  ctx.checkTensor(x, op, undefined, 'features');
  if (x.shape.length !== 2) throw new ShapeError(op, `features '${x.label}' rank`, '2 ([N, dims])', x.shape.length);
  const [n, d] = x.shape;
  if (n < 2) throw new ShapeError(op, 'feature vectors (N) for a covariance', '>= 2', n);
  if (d < 1) throw new ShapeError(op, 'feature dims', '>= 1', d);
  ctx.checkTensor(mu, op, [d], 'mu');
  ctx.checkTensor(sigma, op, [d, d], 'sigma');
  ctx.checkTensor(xc, op, [n, d], 'xc');
  const tiles = Math.ceil(d / TILE);
  const u32 = [n, d, tiles];
  const f32 = [1 / n, 1 / (n - 1)];
  return [
    ctx.kernel({ op, shader, entryPoint: 'column_mean', constants: { WG }, u32, f32, bindings: [{ tensor: mu, access: 'rw' }, { tensor: x, access: 'read' }], workgroups: ctx.grid(d, 1) }),
    ctx.kernel({
      op,
      shader,
      entryPoint: 'centre',
      constants: { WG },
      u32,
      f32,
      bindings: [
        { tensor: xc, access: 'rw' },
        { tensor: x, access: 'read' },
        { tensor: mu, access: 'read' },
      ],
      workgroups: ctx.grid(n * d, WG),
    }),
    ctx.kernel({ op, shader, entryPoint: 'covariance', constants: { WG }, u32, f32, bindings: [{ tensor: sigma, access: 'rw' }, { tensor: xc, access: 'read' }], workgroups: [tiles, tiles] }),
  ];
}

/** Warning text when N <= d (singular covariance: FID biased and unstable). */
function fewSamplesWarning(n: number, d: number): string {
  return `featureStatistics: only N=${n} feature vectors for d=${d} dimensions: the covariance is singular (rank <= N - 1 < d), so the FID is biased and noisy; use at least ${d} images`;
}

/**
 * Mean and covariance (np.cov's N - 1 divisor) of feature vectors [N, D] on the GPU in fp32, centred before the
 * product, read back as float64.
 */
export async function featureStatistics(ctx: GpuContext, features: Tensor): Promise<FeatureStatistics> {
  const op = 'featureStatistics';
  ctx.checkTensor(features, op, undefined, 'features');
  if (features.shape.length !== 2) throw new ShapeError(op, `features '${features.label}' rank`, '2 ([N, dims])', features.shape.length);
  const [n, d] = features.shape;
  const mu = ctx.tensor([d], undefined, `${op}.mu`);
  const sigma = ctx.tensor([d, d], undefined, `${op}.sigma`);
  const xc = ctx.tensor([n, d], undefined, `${op}.centred`);
  let ds: Dispatch[] = [];
  try {
    ds = featureStatisticsForward(ctx, mu, sigma, xc, features);
    await ctx.run(ds, op);
    const warnings = n <= d ? [fewSamplesWarning(n, d)] : [];
    return { mu: Float64Array.from(await mu.read()), sigma: Float64Array.from(await sigma.read()), n, dims: d, warnings };
  } finally {
    destroyDispatches(ds);
    for (const t of [mu, sigma, xc]) t.destroy();
  }
}

// ------------------------------------------------------------------------------------------ glue

/** FID and what it was computed from. */
export interface FidResult {
  fid: number;
  method: FrechetMethod;
  warnings: string[];
  real: FeatureStatistics;
  fake: FeatureStatistics;
}

function asTensor(ctx: GpuContext, f: Tensor | FeatureMatrix, label: string): { t: Tensor; owned: boolean } {
  if ('shape' in f) return { t: f, owned: false };
  if (f.data.length !== f.rows * f.cols) throw new ShapeError('fidFromFeatures', `${label} data length (rows x cols)`, f.rows * f.cols, f.data.length);
  return { t: ctx.tensor([f.rows, f.cols], f.data, label), owned: true };
}

/** FID between two feature sets ([N, d] tensors on this context, or matrices read back earlier). */
export async function fidFromFeatures(ctx: GpuContext, realFeats: Tensor | FeatureMatrix, fakeFeats: Tensor | FeatureMatrix, opts: FrechetOptions = {}): Promise<FidResult> {
  const a = asTensor(ctx, realFeats, 'real features');
  const b = asTensor(ctx, fakeFeats, 'fake features');
  try {
    const da = a.t.shape[1];
    const db = b.t.shape[1];
    if (a.t.shape.length !== 2 || b.t.shape.length !== 2 || da !== db) {
      throw new ShapeError('fidFromFeatures', 'feature shapes (same dims)', `[N, ${da}] and [M, ${da}]`, `[${a.t.shape.join(', ')}] and [${b.t.shape.join(', ')}]`);
    }
    const real = await featureStatistics(ctx, a.t);
    const fake = await featureStatistics(ctx, b.t);
    const pre = [...real.warnings.map((w) => `real: ${w}`), ...fake.warnings.map((w) => `fake: ${w}`)];
    for (const w of pre) opts.onWarning?.(w);
    let fd: FrechetResult;
    // A covariance of N samples has rank <= N - 1: Cholesky needs one with N > d.
    if (real.n > real.dims || fake.n > fake.dims) {
      fd = frechetDistance(real.mu, real.sigma, fake.mu, fake.sigma, opts);
    } else {
      // Both covariances singular would send frechetDistance down the d^3 eigen route: use the features.
      const read = async (f: Tensor | FeatureMatrix, t: Tensor): Promise<FeatureMatrix> => ('shape' in f ? { data: await t.read(), rows: t.shape[0], cols: t.shape[1] } : f);
      fd = frechetDistanceFromFeatures(await read(realFeats, a.t), await read(fakeFeats, b.t));
    }
    return { fid: fd.distance, method: fd.method, warnings: [...pre, ...fd.warnings], real, fake };
  } finally {
    if (a.owned) a.t.destroy();
    if (b.owned) b.t.destroy();
  }
}

/** Run an extractor over one or more image batches ([N, C, H, W] in [0, 1]) and read the features back. */
export async function extractFeatures(ctx: GpuContext, extractor: FeatureExtractor, images: Tensor | readonly Tensor[]): Promise<FeatureMatrix> {
  const batches = Array.isArray(images) ? images : [images as Tensor];
  const parts: Float32Array[] = [];
  let rows = 0;
  for (const batch of batches) {
    const feats = await extractor.extract(ctx, batch);
    try {
      const n = batch.shape[0];
      ctx.checkTensor(feats, `${extractor.name}.extract`, [n, extractor.dims], 'features');
      parts.push(await feats.read());
      rows += n;
    } finally {
      feats.destroy();
    }
  }
  const data = new Float32Array(rows * extractor.dims);
  let off = 0;
  for (const p of parts) {
    data.set(p, off);
    off += p.length;
  }
  return { data, rows, cols: extractor.dims };
}

/** FID of two image sets with a feature extractor (InceptionV3 pool3 for the standard FID). */
export async function fid(
  ctx: GpuContext,
  extractor: FeatureExtractor,
  realImages: Tensor | readonly Tensor[],
  fakeImages: Tensor | readonly Tensor[],
  opts: FrechetOptions = {},
): Promise<FidResult> {
  const real = await extractFeatures(ctx, extractor, realImages);
  const fake = await extractFeatures(ctx, extractor, fakeImages);
  return fidFromFeatures(ctx, real, fake, opts);
}

/** The brief's name for {@link fid}: FID of two image sets through a feature extractor. */
export const computeFid = fid;

/**
 * FID from two sets of statistics (e.g. {@link featureStatistics} of real and generated features, or statistics
 * saved earlier), float64. Both sets' warnings (N < d) are carried over, and passed to `onWarning`.
 * With both covariances singular this takes the d^3 eigen route (minutes at d = 2048 in JS): prefer
 * {@link fidFromFeatures} when the features are still at hand.
 */
export function fidFromStatistics(real: FeatureStatistics, fake: FeatureStatistics, opts: FrechetOptions = {}): FidResult {
  if (real.dims !== fake.dims) throw new ShapeError('fidFromStatistics', 'feature dims (real vs fake)', real.dims, fake.dims);
  const pre: string[] = [];
  for (const [name, s] of [['real', real], ['fake', fake]] as const) {
    const w = s.warnings.length ? s.warnings : s.n < s.dims ? [fewSamplesWarning(s.n, s.dims)] : [];
    pre.push(...w.map((m) => `${name}: ${m}`));
  }
  for (const w of pre) opts.onWarning?.(w);
  const fd = frechetDistance(real.mu, real.sigma, fake.mu, fake.sigma, opts);
  return { fid: fd.distance, method: fd.method, warnings: [...pre, ...fd.warnings], real, fake };
}
