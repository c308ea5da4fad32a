import { describe, it, expect } from 'vitest';
import { Rng } from '../../src/runtime/random.js';
import {
  DEFAULT_WAEM_WEIGHTS,
  computeWaem,
  TYPICAL_METRICS,
  fitWaemWeights,
  kendallTau,
  waem,
  waemWeightsFromShares,
  type MetricSet,
  type WaemWeights,
} from '../../src/metrics/waem.js';

/** Plausible pix2pix models: correlated metrics (better models are better on most) plus independent noise. */
function randomModels(rng: Rng, n: number): MetricSet[] {
  return Array.from({ length: n }, () => {
    const quality = rng.next();
    const mse = 0.004 + 0.02 * (1 - quality) * rng.uniform(0.6, 1.4);
    return {
      mse,
      nrmse: Math.sqrt(mse) / rng.uniform(0.4, 0.6),
      psnr: 10 * Math.log10(1 / mse) + rng.normal(0, 0.3),
      ssim: 0.5 + 0.35 * quality * rng.uniform(0.7, 1.3),
      fid: 20 + 120 * (1 - quality) * rng.uniform(0.3, 1.7) + rng.uniform(0, 20),
    };
  });
}
const rankBy = (models: MetricSet[], w: WaemWeights) =>
  models
    .map((m, i) => [waem(m, w), i] as const)
    .sort((p, q) => q[0] - p[0])
    .map(([, i]) => i);

describe('WAEM', () => {
  it('default weights: every term contributes its share at typical values, FID double, total 1', () => {
    const w = DEFAULT_WAEM_WEIGHTS;
    const t = TYPICAL_METRICS;
    expect(w.a / t.mse).toBeCloseTo(1 / 6, 12);
    expect(w.b / t.nrmse).toBeCloseTo(1 / 6, 12);
    expect(w.c * t.psnr).toBeCloseTo(1 / 6, 12);
    expect(w.d * t.ssim).toBeCloseTo(1 / 6, 12);
    expect(w.e / t.fid).toBeCloseTo(2 / 6, 12);
    expect(waem(t)).toBeCloseTo(1, 12);
    // Better on every metric = higher WAEM; halving FID alone moves it by FID's share (2/6 -> 4/6).
    expect(waem({ mse: 0.005, nrmse: 0.1, psnr: 23, ssim: 0.8, fid: 25 })).toBeGreaterThan(1);
    expect(waem({ ...t, fid: 25 }) - waem(t)).toBeCloseTo(2 / 6, 12);
  });

  it('without FID the FID term is dropped and reported', () => {
    const { fid: _fid, ...noFid } = TYPICAL_METRICS;
    const r = computeWaem(noFid);
    expect(r.fidDropped).toBe(true);
    expect(r.contributions[4]).toBe(0);
    expect(r.waem).toBeCloseTo(4 / 6, 12);
    expect(waem(noFid)).toBe(r.waem);
    expect(r.warnings[0]).toMatch(/no FID .* FID term e\/FID is dropped/);
    const full = computeWaem(TYPICAL_METRICS);
    expect(full.fidDropped).toBe(false);
    expect(full.warnings).toEqual([]);
    expect(full.contributions.map((c) => +c.toFixed(12))).toEqual([1 / 6, 1 / 6, 1 / 6, 1 / 6, 2 / 6].map((c) => +c.toFixed(12)));
    expect(() => fitWaemWeights([noFid, TYPICAL_METRICS], [0, 1])).toThrow(/fitWaemWeights: models\[0\]\.fid: expected a number, got undefined/);
  });

  it('rejects NaN and negative error metrics, naming the field', () => {
    expect(() => waem({ ...TYPICAL_METRICS, ssim: NaN })).toThrow(/waem: metrics\.ssim: expected a number, got NaN/);
    expect(() => waem({ ...TYPICAL_METRICS, fid: -1 })).toThrow(/waem: metrics\.fid \(enters as 1\/fid\): expected >= 0, got -1/);
  });

  for (const [label, shares] of [
    ['default (FID emphasised)', [1 / 6, 1 / 6, 1 / 6, 1 / 6, 2 / 6]],
    ['SSIM and FID only', [0, 0, 0, 0.5, 0.5]],
    ['pixel metrics only', [0.4, 0.3, 0.3, 0, 0]],
  ] as const) {
    it(`fitWaemWeights recovers a ranking made by known weights: ${label}`, () => {
      const rng = new Rng(label.length * 7919);
      const models = randomModels(rng, 14);
      const truth = waemWeightsFromShares(shares);
      const ranking = rankBy(models, truth);
      const fit = fitWaemWeights(models, ranking);
      const fitted = rankBy(models, fit.weights);
      expect(fit.kendallTau).toBe(1);
      expect(fitted).toEqual(ranking);
      for (const v of [...Object.values(fit.weights), ...fit.shares]) expect(v).toBeGreaterThanOrEqual(0);
      expect(fit.shares.reduce((s, v) => s + v, 0)).toBeCloseTo(1, 9);
      expect(waem(TYPICAL_METRICS, fit.weights)).toBeCloseTo(1, 9);
    });
  }

  it('fitWaemWeights on an ordering no non-negative weighting produces gives tau < 1, still non-negative', () => {
    const models = randomModels(new Rng(4), 10);
    // Worst by WAEM ranked first: every term would need a negative weight.
    const reversed = rankBy(models, DEFAULT_WAEM_WEIGHTS).reverse();
    const fit = fitWaemWeights(models, reversed);
    expect(fit.kendallTau).toBeLessThan(1);
    for (const v of fit.shares) expect(v).toBeGreaterThanOrEqual(0);
    expect(kendallTau(models.map((m) => waem(m, fit.weights)), reversed)).toBeCloseTo(fit.kendallTau, 12);
  });

  it('fitWaemWeights validates the ranking', () => {
    const models = randomModels(new Rng(1), 3);
    expect(() => fitWaemWeights(models, [0, 0, 1])).toThrow(/fitWaemWeights: expertRanking lists model 0 twice/);
    expect(() => fitWaemWeights(models, [0, 3])).toThrow(/expertRanking entry: expected a model index in 0\.\.2, got 3/);
    expect(() => fitWaemWeights(models, [1])).toThrow(/expertRanking length: expected >= 2 ranked models, got 1/);
  });
});
