/**
 * WAEM, the weighted average ensemble metric of the users' paper (Fysikopoulos et al., pix2pix for
 * photograph-to-X-ray mouse images):
 *
 *   WAEM = a / MSE + b / NRMSE + c * PSNR + d * SSIM + e / FID      (higher is better)
 *
 * The paper gives the form and says the best-agreeing weighting "relies to a greater extent on FID", but prints
 * no weights. Defaults here, and a fit of the weights to an expert's ranking of models, are below.
 */
import { Pix2PixError, ShapeError } from '../runtime/errors.js';

/** One model's (mean) metrics. */
export interface MetricSet {
  mse: number;
  nrmse: number;
  psnr: number;
  ssim: number;
  /** Absent (or undefined) when no feature extractor was available: WAEM then drops the FID term. */
  fid?: number;
}

/** WAEM's coefficients a..e (for 1/MSE, 1/NRMSE, PSNR, SSIM, 1/FID). */
export interface WaemWeights {
  a: number;
  b: number;
  c: number;
  d: number;
  e: number;
}

/**
 * Typical values of pix2pix photograph-to-X-ray results (512x1024 mouse images, metrics on [0, 1] pixels).
 * The paper's text reports no numbers (its Fig. 2 plots them), so these are the orders of magnitude of such
 * results: MSE ~ 0.01, NRMSE ~ 0.2, PSNR ~ 20 dB, SSIM ~ 0.7, FID ~ 50. Only their ratios matter for ranking.
 */
export const TYPICAL_METRICS: Readonly<Required<MetricSet>> = Object.freeze({ mse: 0.01, nrmse: 0.2, psnr: 20, ssim: 0.7, fid: 50 });

/** Share of WAEM each term contributes at typical values in the default weights: FID counts twice. */
export const DEFAULT_WAEM_SHARES: readonly number[] = Object.freeze([1 / 6, 1 / 6, 1 / 6, 1 / 6, 2 / 6]);

/** The five terms 1/MSE, 1/NRMSE, PSNR, SSIM, 1/FID (each larger = better). */
export function waemTerms(m: MetricSet): [number, number, number, number, number] {
  return [1 / m.mse, 1 / m.nrmse, m.psnr, m.ssim, m.fid === undefined ? 0 : 1 / m.fid];
}

/**
 * Weights such that, at `typical` metric values, term k contributes `shares[k]` of WAEM
 * (a / MSE_typ = shares[0], so a = shares[0] * MSE_typ, ..., c = shares[2] / PSNR_typ, ...).
 */
export function waemWeightsFromShares(shares: readonly number[], typical: MetricSet = TYPICAL_METRICS): WaemWeights {
  if (shares.length !== 5 || shares.some((s) => !(s >= 0))) throw new ShapeError('waemWeightsFromShares', 'shares', '5 non-negative numbers', `[${shares.join(', ')}]`);
  const t = waemTerms(typical);
  const [a, b, c, d, e] = shares.map((s, k) => s / t[k]);
  return { a, b, c, d, e };
}

/**
 * Default WAEM weights. Reasoning: the five metrics live on unrelated scales (1/MSE ~ 100, PSNR ~ 20, SSIM < 1),
 * so raw equal weights would let 1/MSE drown the rest. Each term is first scaled by its typical value
 * ({@link TYPICAL_METRICS}) so that every metric contributes equally at typical quality; FID's share is then
 * doubled, as the paper found FID the single metric that best matches expert visual inspection (it alone kept
 * improving with augmentation while the pixel metrics dropped), with the pixel metrics settling ties between
 * models of similar FID. Shares 1/6, 1/6, 1/6, 1/6, 2/6 make a typical model score WAEM = 1:
 * a = 0.01/6, b = 0.2/6, c = 1/120, d = 1/4.2, e = 100/6.
 */
export const DEFAULT_WAEM_WEIGHTS: Readonly<WaemWeights> = Object.freeze(waemWeightsFromShares(DEFAULT_WAEM_SHARES));

function checkMetricSet(op: string, m: MetricSet, which: string, needFid = true): void {
  const keys = needFid || m.fid !== undefined ? (['mse', 'nrmse', 'psnr', 'ssim', 'fid'] as const) : (['mse', 'nrmse', 'psnr', 'ssim'] as const);
  for (const k of keys) {
    const v = m[k];
    if (typeof v !== 'number' || Number.isNaN(v)) throw new ShapeError(op, `${which}.${k}`, 'a number', v);
  }
  for (const k of keys.filter((k) => k === 'mse' || k === 'nrmse' || k === 'fid')) {
    if (!(m[k]! >= 0)) throw new ShapeError(op, `${which}.${k} (enters as 1/${k})`, '>= 0', m[k]);
  }
}

/** WAEM with how it was formed. */
export interface WaemResult {
  waem: number;
  /** The weighted terms a/MSE, b/NRMSE, c PSNR, d SSIM, e/FID (the last 0 when FID was dropped). */
  contributions: [number, number, number, number, number];
  /** True when `fid` was absent and the FID term left out. */
  fidDropped: boolean;
  warnings: string[];
}

/**
 * WAEM of one model's metrics with its per-term contributions. Without `fid` the FID term is dropped (the others
 * keep their weights, so such a WAEM is lower than, and not comparable with, one that includes FID) and a warning
 * says so.
 */
export function computeWaem(m: MetricSet, w: WaemWeights = DEFAULT_WAEM_WEIGHTS): WaemResult {
  checkMetricSet('waem', m, 'metrics', false);
  for (const k of ['a', 'b', 'c', 'd', 'e'] as const) {
    if (!Number.isFinite(w[k])) throw new ShapeError('waem', `weight ${k}`, 'a finite number', w[k]);
  }
  const t = waemTerms(m);
  const ws = [w.a, w.b, w.c, w.d, w.e];
  const fidDropped = m.fid === undefined;
  const contributions = t.map((v, k) => (k === 4 && fidDropped ? 0 : ws[k] * v)) as WaemResult['contributions'];
  const warnings = fidDropped ? ['waem: no FID (no feature extractor): the FID term e/FID is dropped, so this WAEM is not comparable with one that includes FID'] : [];
  return { waem: contributions.reduce((s, v) => s + v, 0), contributions, fidDropped, warnings };
}

/**
 * WAEM of one model's metrics (higher is better). An exact match (MSE, NRMSE or FID of 0) gives Infinity, as
 * PSNR does for identical images. Without `fid` the FID term is dropped (see {@link computeWaem}, which reports it).
 */
export function waem(m: MetricSet, w: WaemWeights = DEFAULT_WAEM_WEIGHTS): number {
  return computeWaem(m, w).waem;
}

/** Kendall's tau-a between a score vector (higher = better) and a ranking (indices best to worst). */
export function kendallTau(scores: readonly number[], ranking: readonly number[]): number {
  let concordant = 0;
  let discordant = 0;
  for (let p = 0; p < ranking.length; p++) {
    for (let q = p + 1; q < ranking.length; q++) {
      const diff = scores[ranking[p]] - scores[ranking[q]];
      if (diff > 0) concordant++;
      else if (diff < 0) discordant++;
    }
  }
  const pairs = (ranking.length * (ranking.length - 1)) / 2;
  return pairs ? (concordant - discordant) / pairs : 1;
}

export interface WaemFit {
  /** Fitted WAEM coefficients, scaled so a model with {@link TYPICAL_METRICS} scores 1. */
  weights: WaemWeights;
  /** The fitted non-negative weights of the standardised terms (sum 1): each metric's relative importance. */
  shares: number[];
  /** Kendall tau between the fitted WAEM and the expert ranking (1 = identical order). */
  kendallTau: number;
  /** Final mean pairwise logistic loss. */
  loss: number;
}

export interface WaemFitOptions {
  /** Projected-gradient iterations per temperature. Default 400. */
  iterations?: number;
}

/** Euclidean projection onto the probability simplex (Duchi et al. 2008). */
function projectSimplex(v: number[]): number[] {
  const u = [...v].sort((x, y) => y - x);
  let css = 0;
  let theta = 0;
  for (let i = 0; i < u.length; i++) {
    css += u[i];
    const t = (css - 1) / (i + 1);
    if (u[i] - t > 0) theta = t;
  }
  return v.map((x) => Math.max(x - theta, 0));
}

/**
 * Non-negative WAEM weights that best agree with an expert's ranking of models (indices best to worst; a subset
 * of the models may be ranked). Each term (1/MSE, 1/NRMSE, PSNR, SSIM, 1/FID) is standardised across the models
 * (z-score), so weights compare importance rather than units; the weights live on the simplex (>= 0, sum 1) and
 * minimise the mean logistic loss log(1 + exp(-(s_better - s_worse) / T)) over every ranked pair, by projected
 * gradient descent with T annealed 1 -> 0.01 (a smooth stand-in for maximising Kendall tau), from the centre and
 * from each vertex; the start with the best (tau, loss) wins. Returned raw weights rank models identically.
 */
export function fitWaemWeights(models: readonly MetricSet[], expertRanking: readonly number[], opts: WaemFitOptions = {}): WaemFit {
  const op = 'fitWaemWeights';
  if (models.length < 2) throw new ShapeError(op, 'models', '>= 2', models.length);
  models.forEach((m, i) => checkMetricSet(op, m, `models[${i}]`));
  if (expertRanking.length < 2) throw new ShapeError(op, 'expertRanking length', '>= 2 ranked models', expertRanking.length);
  const seen = new Set<number>();
  for (const i of expertRanking) {
    if (!Number.isInteger(i) || i < 0 || i >= models.length) throw new ShapeError(op, 'expertRanking entry', `a model index in 0..${models.length - 1}`, i);
    if (seen.has(i)) throw new Pix2PixError(op, `expertRanking lists model ${i} twice`);
    seen.add(i);
  }
  const terms = models.map(waemTerms);
  for (const [i, t] of terms.entries()) {
    if (t.some((v) => !Number.isFinite(v))) throw new Pix2PixError(op, `models[${i}] has MSE, NRMSE or FID of 0 (an infinite WAEM term): cannot fit weights`);
  }
  const K = 5;
  const mean = Array.from({ length: K }, (_, k) => terms.reduce((s, t) => s + t[k], 0) / terms.length);
  const std = Array.from({ length: K }, (_, k) => Math.sqrt(terms.reduce((s, t) => s + (t[k] - mean[k]) ** 2, 0) / terms.length));
  const z = terms.map((t) => t.map((v, k) => (std[k] > 0 ? (v - mean[k]) / std[k] : 0)));
  // Ranked pairs as feature differences: better minus worse.
  const diffs: number[][] = [];
  for (let p = 0; p < expertRanking.length; p++) {
    for (let q = p + 1; q < expertRanking.length; q++) diffs.push(z[expertRanking[p]].map((v, k) => v - z[expertRanking[q]][k]));
  }
  const lossAndGrad = (w: number[], temp: number): { loss: number; grad: number[] } => {
    let loss = 0;
    const grad = new Array(K).fill(0);
    for (const d of diffs) {
      const margin = d.reduce((s, v, k) => s + v * w[k], 0) / temp;
      // softplus(-margin), stable; d/dmargin = -sigmoid(-margin).
      loss += margin > 0 ? Math.log1p(Math.exp(-margin)) : -margin + Math.log1p(Math.exp(margin));
      const g = -1 / (1 + Math.exp(margin));
      for (let k = 0; k < K; k++) grad[k] += (g * d[k]) / temp;
    }
    return { loss: loss / diffs.length, grad: grad.map((g) => g / diffs.length) };
  };
  const scoresOf = (w: number[]) => z.map((f) => f.reduce((s, v, k) => s + v * w[k], 0));
  const iterations = opts.iterations ?? 400;
  const starts = [new Array(K).fill(1 / K), ...Array.from({ length: K }, (_, k) => Array.from({ length: K }, (_, j) => (j === k ? 1 : 0)))];
  let best: { w: number[]; tau: number; loss: number } | null = null;
  for (const start of starts) {
    let w = start;
    let loss = 0;
    for (const temp of [1, 0.3, 0.1, 0.03, 0.01]) {
      // Step ~ temp: the loss's curvature grows as 1 / temp^2 while gradients grow as 1 / temp.
      const step = 0.5 * temp;
      for (let it = 0; it < iterations; it++) {
        const r = lossAndGrad(w, temp);
        w = projectSimplex(w.map((v, k) => v - step * r.grad[k]));
      }
      loss = lossAndGrad(w, temp).loss;
    }
    const tau = kendallTau(scoresOf(w), expertRanking);
    if (!best || tau > best.tau || (tau === best.tau && loss < best.loss)) best = { w, tau, loss };
  }
  const shares = best!.w;
  // Back to raw terms: score = sum_k w_k (t_k - mean_k) / std_k ranks like sum_k (w_k / std_k) t_k.
  const raw = shares.map((s, k) => (std[k] > 0 ? s / std[k] : 0));
  const typical = waemTerms(TYPICAL_METRICS);
  const atTypical = raw.reduce((s, r, k) => s + r * typical[k], 0);
  const scale = atTypical > 0 ? 1 / atTypical : 1;
  const [a, b, c, d, e] = raw.map((r) => r * scale);
  return { weights: { a, b, c, d, e }, shares, kendallTau: best!.tau, loss: best!.loss };
}
