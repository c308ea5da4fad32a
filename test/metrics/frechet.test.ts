import { describe, it, expect, afterAll } from 'vitest';
import { testContext } from '../helpers/gpu.js';
import { expectClose } from '../helpers/compare.js';
import { loadFixture } from '../helpers/fixtures.js';
import { Rng } from '../../src/runtime/random.js';
import type { GpuContext } from '../../src/runtime/context.js';
import type { Tensor } from '../../src/runtime/tensor.js';
import { cholesky, symmetricEigen, symmetricEigenvalues, sqrtSymmetricPsd, matmul } from '../../src/metrics/linalg.js';
import { computeFid, featureStatistics, fid, fidFromFeatures, fidFromStatistics, frechetDistance, frechetDistanceFromFeatures } from '../../src/metrics/frechet.js';
import type { FeatureExtractor } from '../../src/metrics/features.js';
import { f64, u16, fromUpper } from './metrics_fixtures.js';

interface FrechetCase {
  name: string;
  n: number;
  d: number;
  x1_u16_over_256: string;
  x2_u16_over_256: string;
  mu1: string;
  mu2: string;
  sigma1_upper: string;
  sigma2_upper: string;
  fid: number;
}
const fx = loadFixture<{ cases: FrechetCase[]; mixed: { name: string; first: [number, number]; second: [number, number]; fid: number }[] }>('metrics_frechet');
const features = (b64: string) => Float32Array.from(u16(b64), (q) => q / 256);
const stats = (c: FrechetCase, set: number) => ({
  mu: f64(set === 0 ? c.mu1 : c.mu2),
  sigma: fromUpper(f64(set === 0 ? c.sigma1_upper : c.sigma2_upper), c.d),
});

function randomSymmetric(rng: Rng, n: number): Float64Array {
  const a = new Float64Array(n * n);
  for (let i = 0; i < n; i++) for (let j = 0; j <= i; j++) a[i * n + j] = a[j * n + i] = rng.normal();
  return a;
}
function transpose(a: Float64Array, n: number): Float64Array {
  const t = new Float64Array(n * n);
  for (let i = 0; i < n; i++) for (let j = 0; j < n; j++) t[j * n + i] = a[i * n + j];
  return t;
}

describe('linalg (float64)', () => {
  it('symmetric eigen: A V = V diag(lambda) and V orthonormal, odd sizes and an already-diagonal matrix', () => {
    const rng = new Rng(3);
    for (const n of [1, 2, 3, 17, 40]) {
      for (const a of [randomSymmetric(rng, n), Float64Array.from({ length: n * n }, (_, k) => (k % (n + 1) === 0 ? k : 0))]) {
        const { values, vt } = symmetricEigen(a, n);
        const v = transpose(vt, n);
        const av = matmul(a, v, n);
        const vl = Float64Array.from(v, (x, k) => x * values[k % n]);
        expectClose(av, vl, { atol: 1e-12 * n, rtol: 0, label: `A V = V L (n=${n})` });
        const eye = Float64Array.from({ length: n * n }, (_, k) => (k % (n + 1) === 0 ? 1 : 0));
        expectClose(matmul(vt, v, n), eye, { atol: 1e-13 * n, rtol: 0, label: `V^T V = I (n=${n})` });
        const sorted = (x: Float64Array) => Array.from(x).sort((p, q) => p - q);
        expectClose(sorted(symmetricEigenvalues(a, n)), sorted(values), { atol: 1e-12 * n, rtol: 0, label: 'values-only path' });
      }
    }
  });
  it('cholesky: L L^T = A for a definite matrix, null for a singular one; sqrt of a PSD matrix squares back', () => {
    const rng = new Rng(5);
    const n = 12;
    const b = randomSymmetric(rng, n);
    const a = matmul(b, transpose(b, n), n); // PSD, almost surely definite
    const l = cholesky(a, n)!;
    expectClose(matmul(l, transpose(l, n), n), a, { atol: 1e-12, rtol: 1e-12, label: 'L L^T' });
    const singular = Float64Array.from(a);
    for (let j = 0; j < n; j++) singular[3 * n + j] = singular[j * n + 3] = 0;
    expect(cholesky(singular, n)).toBeNull();
    const { root } = sqrtSymmetricPsd(singular, n);
    expectClose(matmul(root, root, n), singular, { atol: 1e-10, rtol: 1e-10, label: 'sqrt(A)^2' });
  });
});

describe('Fréchet distance (float64) vs pytorch-fid / scipy.linalg.sqrtm', () => {
  for (const c of fx.cases) {
    it(`${c.name}`, () => {
      const a = stats(c, 0);
      const b = stats(c, 1);
      const r = frechetDistance(a.mu, a.sigma, b.mu, b.sigma);
      const rel = Math.abs(r.distance - c.fid) / c.fid;
      console.log(`${c.name}: ${r.distance} vs pytorch-fid ${c.fid} (rel ${rel.toExponential(2)}, method ${r.method})`);
      expect(rel).toBeLessThan(1e-6);
      expect(r.method).toBe(c.n > c.d ? 'cholesky-sigma1' : 'eigen-sqrt-sigma1');
    });
  }
  for (const m of fx.mixed) {
    it(`${m.name}: one singular covariance`, () => {
      const a = stats(fx.cases[m.first[0]], m.first[1]);
      const b = stats(fx.cases[m.second[0]], m.second[1]);
      const r = frechetDistance(a.mu, a.sigma, b.mu, b.sigma);
      const rel = Math.abs(r.distance - m.fid) / m.fid;
      console.log(`${m.name}: rel ${rel.toExponential(2)}, method ${r.method}`);
      expect(rel).toBeLessThan(1e-6);
      expect(r.method).toBe(m.name === 'sigma1_singular' ? 'cholesky-sigma2' : 'cholesky-sigma1');
    });
  }
  for (const c of fx.cases) {
    it(`${c.name}: straight from the features (C = A B^T singular values), as fidFromFeatures does for N <= d`, () => {
      const r = frechetDistanceFromFeatures(
        { data: features(c.x1_u16_over_256), rows: c.n, cols: c.d },
        { data: features(c.x2_u16_over_256), rows: c.n, cols: c.d },
      );
      const rel = Math.abs(r.distance - c.fid) / c.fid;
      console.log(`${c.name} (feature-gram): rel ${rel.toExponential(2)}`);
      expect(rel).toBeLessThan(1e-6);
      expect(r.method).toBe('feature-gram');
    });
  }
  it('distance of a distribution to itself is ~0 (tiny negative eigenvalues clamped), singular or not', () => {
    for (const c of fx.cases) {
      const a = stats(c, 0);
      const r = frechetDistance(a.mu, a.sigma, a.mu, a.sigma);
      let tr = 0;
      for (let i = 0; i < c.d; i++) tr += a.sigma[i * c.d + i];
      expect(Math.abs(r.distance), c.name).toBeLessThan(1e-6 * tr);
    }
  });
  it('rejects mismatched sizes and NaN, naming what', () => {
    const c = fx.cases[0];
    const a = stats(c, 0);
    expect(() => frechetDistance(a.mu, a.sigma, a.mu.subarray(1), a.sigma)).toThrow(/frechetDistance: mu2 length: expected 64, got 63/);
    expect(() => frechetDistance(a.mu, a.sigma.subarray(1), a.mu, a.sigma)).toThrow(/sigma1 length \(d x d, d = 64\): expected 4096, got 4095/);
    const bad = Float64Array.from(a.sigma);
    bad[65] = NaN;
    expect(() => frechetDistance(a.mu, a.sigma, a.mu, bad)).toThrow(/sigma2\[1, 1\] is NaN/);
  });
});

describe('feature statistics on the GPU (fp32) vs NumPy mean / np.cov', async () => {
  const ctx = await testContext();
  afterAll(() => ctx.trimPool());
  for (const c of fx.cases) {
    it(`${c.name}: mu, sigma, and the FID computed from them`, async () => {
      const x1 = ctx.tensor([c.n, c.d], features(c.x1_u16_over_256), 'x1');
      const x2 = ctx.tensor([c.n, c.d], features(c.x2_u16_over_256), 'x2');
      const s1 = await featureStatistics(ctx, x1);
      const ref1 = stats(c, 0);
      const maxSigma = ref1.sigma.reduce((m, v) => Math.max(m, Math.abs(v)), 0);
      const muErr = expectClose(s1.mu, ref1.mu, { atol: 0, rtol: 1e-6, label: `${c.name} mu` });
      // Covariance entries near 0 have no meaningful relative error: tolerance relative to the largest entry.
      const sigErr = expectClose(s1.sigma, ref1.sigma, { atol: 2e-6 * maxSigma, rtol: 0, label: `${c.name} sigma` });
      const r = await fidFromFeatures(ctx, x1, x2);
      expect(r.method).toBe(c.n > c.d ? 'cholesky-sigma1' : 'feature-gram');
      const rel = Math.abs(r.fid - c.fid) / c.fid;
      console.log(`${c.name}: GPU stats max |dmu| ${muErr.toExponential(2)}, max |dsigma| ${sigErr.toExponential(2)} (of max ${maxSigma.toFixed(3)}); FID rel err ${rel.toExponential(2)}`);
      expect(rel).toBeLessThan(1e-5);
      // The same from the statistics alone (the d x d route, eigen sqrt when both are singular).
      const fromStats = fidFromStatistics(s1, await featureStatistics(ctx, x2));
      expect(Math.abs(fromStats.fid - c.fid) / c.fid).toBeLessThan(1e-5);
      expect(fromStats.warnings.length).toBe(c.n < c.d ? 2 : 0);
      if (c.n < c.d) {
        expect(s1.warnings[0]).toMatch(/only N=20 feature vectors for d=64 dimensions: the covariance is singular/);
        expect(r.warnings.some((w) => w.startsWith('real: featureStatistics: only N=20'))).toBe(true);
      } else {
        expect(r.warnings).toEqual([]);
      }
      x1.destroy();
      x2.destroy();
    });
  }
  it('rejects one feature vector and non-2-D input', async () => {
    const one = ctx.tensor([1, 8], undefined, 'one');
    await expect(featureStatistics(ctx, one)).rejects.toThrow(/featureStatistics: feature vectors \(N\) for a covariance: expected >= 2, got 1/);
    const img = ctx.tensor([2, 1, 2, 2], undefined, 'img');
    await expect(featureStatistics(ctx, img)).rejects.toThrow(/featureStatistics: features 'img' rank: expected 2 \(\[N, dims\]\), got 4/);
    await expect(fidFromFeatures(ctx, { data: new Float32Array(16), rows: 2, cols: 8 }, { data: new Float32Array(18), rows: 2, cols: 9 })).rejects.toThrow(
      /fidFromFeatures: feature shapes \(same dims\): expected \[N, 8\] and \[M, 8\], got \[2, 8\] and \[2, 9\]/,
    );
    one.destroy();
    img.destroy();
  });
});

/** A test backbone: features = the image's pixels mapped through a fixed random projection (on the CPU). */
function projectionExtractor(dims: number, bad = false): FeatureExtractor {
  return {
    name: bad ? 'broken' : 'projection',
    dims,
    async extract(ctx: GpuContext, images: Tensor): Promise<Tensor> {
      const [n] = images.shape;
      const per = images.size / n;
      const x = await images.read();
      const rng = new Rng(99);
      const proj = Float64Array.from({ length: per * dims }, () => rng.normal());
      const out = new Float32Array(n * dims);
      for (let i = 0; i < n; i++) for (let k = 0; k < dims; k++) for (let p = 0; p < per; p++) out[i * dims + k] += x[i * per + p] * proj[p * dims + k];
      return ctx.tensor(bad ? [n, dims + 1] : [n, dims], bad ? new Float32Array(n * (dims + 1)) : out, 'projected');
    },
    destroy() {},
  };
}

describe('fid() glue with a FeatureExtractor', async () => {
  const ctx = await testContext();
  it('batches are concatenated; equals fidFromFeatures on the same features; a wrong extractor output is named', async () => {
    const rng = new Rng(8);
    const mk = (n: number, shift: number) => ctx.tensor([n, 1, 4, 4], Float32Array.from({ length: n * 16 }, () => Math.min(1, Math.max(0, rng.next() * 0.8 + shift))), 'images');
    const real = [mk(5, 0), mk(7, 0)];
    const fake = mk(12, 0.1);
    const ext = projectionExtractor(6);
    const r = await fid(ctx, ext, real, fake);
    expect(r.real.n).toBe(12);
    const rf = new Float32Array(12 * 6);
    rf.set(await (await ext.extract(ctx, real[0])).read(), 0);
    rf.set(await (await ext.extract(ctx, real[1])).read(), 30);
    const ff = await (await ext.extract(ctx, fake)).read();
    const direct = await fidFromFeatures(ctx, { data: rf, rows: 12, cols: 6 }, { data: ff, rows: 12, cols: 6 });
    expect(r.fid).toBeCloseTo(direct.fid, 10);
    expect(r.fid).toBeGreaterThan(0);
    expect((await computeFid(ctx, ext, real, fake)).fid).toBe(r.fid);
    await expect(fid(ctx, projectionExtractor(6, true), fake, fake)).rejects.toThrow(/broken\.extract: features 'projected' shape: expected \[12, 6\], got \[12, 7\]/);
    for (const t of [...real, fake]) t.destroy();
  });
});
