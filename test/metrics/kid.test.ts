import { describe, it, expect } from 'vitest';
import { loadFixture } from '../helpers/fixtures.js';
import { kid, kidSubsets } from '../../src/metrics/kid.js';
import { u16 } from './metrics_fixtures.js';

interface KidCase {
  subsets: number;
  size: number;
  seed: number;
  indices: [number[], number[]][];
  mean: number;
  std: number;
  first: number;
}
const fx = loadFixture<{ n1: number; n2: number; d: number; x1_u16_over_256: string; x2_u16_over_256: string; cases: KidCase[] }>('metrics_kid');
const real = { data: Float64Array.from(u16(fx.x1_u16_over_256), (q) => q / 256), rows: fx.n1, cols: fx.d };
const fake = { data: Float64Array.from(u16(fx.x2_u16_over_256), (q) => q / 256), rows: fx.n2, cols: fx.d };

describe('KID vs a NumPy port of torch-fidelity mmd2 on the same subsets', () => {
  for (const c of fx.cases) {
    it(`${c.subsets} subsets of ${c.size}, seed ${c.seed}`, () => {
      // The fixture's indices come from a Python port of our sampler (mulberry32 + partial Fisher-Yates).
      const subsets = kidSubsets(c.seed, fx.n1, fx.n2, c.subsets, c.size);
      expect(subsets.map(([a, b]) => [Array.from(a), Array.from(b)])).toEqual(c.indices);
      const r = kid(real, fake, { subsets: c.subsets, subsetSize: c.size, seed: c.seed });
      const relMean = Math.abs(r.mean - c.mean) / Math.abs(c.mean);
      const relStd = c.std === 0 ? Math.abs(r.std) : Math.abs(r.std - c.std) / c.std;
      console.log(`KID ${c.subsets}x${c.size}: mean ${r.mean} (rel err ${relMean.toExponential(2)}), std ${r.std} (rel err ${relStd.toExponential(2)})`);
      expect(relMean).toBeLessThan(1e-10);
      expect(relStd).toBeLessThan(1e-8);
      expect(Math.abs(r.values[0] - c.first) / Math.abs(c.first)).toBeLessThan(1e-10);
    });
  }
  it('defaults: 100 subsets of min(N_real, N_fake, 1000), seed 0', () => {
    const r = kid(real, fake);
    expect([r.subsets, r.subsetSize]).toEqual([100, Math.min(fx.n1, fx.n2)]);
    const explicit = kid(real, fake, { subsets: 100, subsetSize: 45, seed: 0, degree: 3, gamma: 1 / fx.d, coef0: 1 });
    expect(r.values).toEqual(explicit.values);
    expect(kid(real, fake, { seed: 1 }).mean).not.toBe(r.mean); // the seed matters
  });
  it('is ~0 in expectation for two halves of one distribution and larger for a shifted one', () => {
    const half = (off: number) => ({ data: real.data.subarray(off * fx.d, (off + 30) * fx.d), rows: 30, cols: fx.d });
    const same = kid(half(0), half(30), { subsets: 50, subsetSize: 20 });
    const shifted = { data: Float64Array.from(half(30).data, (v) => v + 0.3), rows: 30, cols: fx.d };
    const diff = kid(half(0), shifted, { subsets: 50, subsetSize: 20 });
    expect(Math.abs(same.mean)).toBeLessThan(3 * same.std + 1e-12);
    expect(diff.mean).toBeGreaterThan(10 * Math.abs(same.mean));
  });
  it('rejects bad sizes and NaN, naming what and why', () => {
    expect(() => kid(real, fake, { subsetSize: 46 })).toThrow(/kid: subset size \(samples drawn without replacement\): expected <= min\(N_real, N_fake\) = 45, got 46/);
    expect(() => kid(real, fake, { subsetSize: 1 })).toThrow(/m >= 2/);
    expect(() => kid(real, { data: fake.data.subarray(0, 45 * 31), rows: 45, cols: 31 })).toThrow(/kid: feature dims \(real vs fake\): expected 32, got 31/);
    const nan = { ...fake, data: Float64Array.from(fake.data) };
    nan.data[40] = NaN;
    expect(() => kid(real, nan)).toThrow(/kid: fake features \[1, 8\]: expected a finite number, got NaN/);
  });
});
