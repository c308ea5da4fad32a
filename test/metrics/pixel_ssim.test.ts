import { describe, it, expect, afterAll } from 'vitest';
import { testContext } from '../helpers/gpu.js';
import { compareClose, expectClose } from '../helpers/compare.js';
import { computePixelMetrics, type NrmseNormalization } from '../../src/metrics/pixel.js';
import { computeSsim, type SsimMode } from '../../src/metrics/ssim.js';
import { imageCases, imagesF32, f64, num } from './metrics_fixtures.js';

// Tolerances, measured on lavapipe against skimage 0.19 in float64 (inputs are float32(v / 255), so part of the
// difference is the inputs' own rounding): the worst relative errors are printed by the last test.
const PIXEL_RTOL = 1e-6; // measured worst 1.1e-7
const SSIM_ATOL = 2e-6; // measured worst 2.4e-7 (absolute)
const worst: Record<string, number> = {};
function track(key: string, actual: number[], expected: number[], atol = 0): void {
  for (let i = 0; i < actual.length; i++) {
    if (!Number.isFinite(expected[i])) continue;
    const rel = Math.abs(actual[i] - expected[i]) / Math.max(Math.abs(expected[i]), atol > 0 ? 1 : 1e-30);
    worst[key] = Math.max(worst[key] ?? 0, rel);
  }
}

describe('pixel metrics and SSIM vs skimage', async () => {
  const ctx = await testContext();
  afterAll(() => ctx.trimPool());
  for (const cs of imageCases()) {
    const shape = [cs.n, cs.c, cs.h, cs.w];
    it(`${cs.name} [${shape.join(', ')}]: MSE, NRMSE (3 norms), PSNR`, async () => {
      const real = ctx.tensor(shape, imagesF32(cs.real, cs.scale), 'real');
      const fake = ctx.tensor(shape, imagesF32(cs.fake, cs.scale), 'fake');
      for (const [norm, key] of [['euclidean', 'nrmse_euclidean'], ['min-max', 'nrmse_min_max'], ['mean', 'nrmse_mean']] as const) {
        const m = await computePixelMetrics(ctx, real, fake, { dataRange: cs.scale, normalization: norm as NrmseNormalization });
        const mse = cs.ref.map((r) => r.mse);
        const nrmse = cs.ref.map((r) => r[key]);
        const psnr = cs.ref.map((r) => num(r.psnr));
        expectClose(m.mse, mse, { atol: 0, rtol: PIXEL_RTOL, label: `${cs.name} mse` });
        expectClose(m.nrmse, nrmse, { atol: 0, rtol: PIXEL_RTOL, label: `${cs.name} nrmse ${norm}` });
        expectClose(m.psnr, psnr, { atol: 0, rtol: PIXEL_RTOL, label: `${cs.name} psnr` });
        track('mse', m.mse, mse);
        track(`nrmse ${norm}`, m.nrmse, nrmse);
        track('psnr', m.psnr, psnr);
      }
      real.destroy();
      fake.destroy();
    });

    for (const mode of ['skimage', 'gaussian'] as SsimMode[]) {
      const key = mode === 'skimage' ? 'ssim_skimage' : 'ssim_gaussian';
      if (cs.ref[0][key] === undefined) continue;
      it(`${cs.name} [${shape.join(', ')}]: SSIM ${mode}`, async () => {
        const real = ctx.tensor(shape, imagesF32(cs.real, cs.scale), 'real');
        const fake = ctx.tensor(shape, imagesF32(cs.fake, cs.scale), 'fake');
        const mapB64 = mode === 'skimage' ? cs.map_skimage : cs.map_gaussian;
        const r = await computeSsim(ctx, real, fake, { mode, dataRange: cs.scale, returnMap: mapB64 !== undefined });
        const expected = cs.ref.map((x) => x[key] as number);
        expectClose(r.ssim, expected, { atol: SSIM_ATOL, rtol: 0, label: `${cs.name} ssim ${mode}` });
        track(`ssim ${mode} (abs)`, r.ssim, expected, 1);
        if (mapB64) {
          // The full map of the last pair, borders included: checks scipy's 'reflect' border handling pixel by pixel.
          const map = r.maps![cs.n - 1];
          const ref = f64(mapB64);
          expectClose(map, ref, { atol: 1e-5, rtol: 0, label: `${cs.name} ssim ${mode} map` });
          track(`ssim ${mode} map (abs)`, Array.from(map), Array.from(ref), 1);
        }
        real.destroy();
        fake.destroy();
      });
    }
  }

  it('identical images: MSE 0, NRMSE 0, PSNR Infinity, SSIM 1 (as skimage)', async () => {
    const cs = imageCases().find((c) => c.name === 'gray_12x11_identical')!;
    const shape = [cs.n, cs.c, cs.h, cs.w];
    const a = ctx.tensor(shape, imagesF32(cs.real, 1), 'a');
    const m = await computePixelMetrics(ctx, a, a);
    expect(m).toEqual({ mse: [0], nrmse: [0], psnr: [Infinity] });
    const s = await computeSsim(ctx, a, a, { mode: 'gaussian' });
    expect(Math.abs(s.ssim[0] - 1)).toBeLessThan(1e-6);
    a.destroy();
  });

  it('a 512x1024 RGB pair (the paper size) matches a float64 CPU sum: tree reductions hold', async () => {
    const h = 512;
    const w = 1024;
    const n = 3 * h * w;
    const t = new Float32Array(n);
    const f = new Float32Array(n);
    for (let i = 0; i < n; i++) {
      t[i] = ((i * 2654435761) % 1000003) / 1000003;
      f[i] = Math.min(1, Math.max(0, t[i] + (((i * 40503) % 997) / 997 - 0.5) * 0.2));
    }
    let sq = 0;
    let tt = 0;
    for (let i = 0; i < n; i++) {
      sq += (t[i] - f[i]) ** 2;
      tt += t[i] * t[i];
    }
    const real = ctx.tensor([1, 3, h, w], t, 'real');
    const fake = ctx.tensor([1, 3, h, w], f, 'fake');
    const m = await computePixelMetrics(ctx, real, fake);
    const mse = sq / n;
    const r = compareClose(m.mse, [mse], { atol: 0, rtol: 1e-6, label: '512x1024 mse' });
    expect(r.ok, r.message).toBe(true);
    expectClose(m.nrmse, [Math.sqrt(mse) / Math.sqrt(tt / n)], { atol: 0, rtol: 1e-6, label: '512x1024 nrmse' });
    track('mse 512x1024x3 (vs f64 sum)', m.mse, [mse]);
    real.destroy();
    fake.destroy();
  });

  it('reports the measured worst errors', () => {
    console.log('worst relative error vs skimage (SSIM: absolute):');
    for (const [k, v] of Object.entries(worst)) console.log(`  ${k.padEnd(34)} ${v.toExponential(2)}`);
    expect(Object.keys(worst).length).toBeGreaterThan(5);
  });
});

describe('pixel metrics and SSIM bad input', async () => {
  const ctx = await testContext();
  it('rejects mismatched shapes, naming op, expected and actual', async () => {
    const a = ctx.tensor([2, 1, 8, 9], undefined, 'real');
    const b = ctx.tensor([2, 1, 9, 8], undefined, 'fake');
    await expect(computePixelMetrics(ctx, a, b)).rejects.toThrow(/pixelMetrics: fake 'fake' shape: expected \[2, 1, 8, 9\], got \[2, 1, 9, 8\]/);
    await expect(computeSsim(ctx, a, b)).rejects.toThrow(/ssim: fake 'fake' shape: expected \[2, 1, 8, 9\], got \[2, 1, 9, 8\]/);
    a.destroy();
    b.destroy();
  });
  it('rejects a non-4-D tensor, a window larger than the image, a bad data range or mode', async () => {
    const flat = ctx.tensor([64], undefined, 'flat');
    await expect(computePixelMetrics(ctx, flat, flat)).rejects.toThrow(/pixelMetrics: real 'flat' rank: expected 4 \(\[N, C, H, W\]\), got 1/);
    const small = ctx.tensor([1, 1, 10, 30], undefined, 'small');
    await expect(computeSsim(ctx, small, small, { mode: 'gaussian' })).rejects.toThrow(/ssim: image size \(H x W\) for mode 'gaussian' \(window 11x11\): expected >= 11x11, got 10x30/);
    await expect(computePixelMetrics(ctx, small, small, { dataRange: 0 })).rejects.toThrow(/dataRange: expected a finite number > 0, got 0/);
    await expect(computeSsim(ctx, small, small, { mode: 'box' as SsimMode })).rejects.toThrow(/ssim: mode: expected 'skimage' \| 'gaussian', got 'box'/);
    await expect(computePixelMetrics(ctx, small, small, { normalization: 'l2' as NrmseNormalization })).rejects.toThrow(/normalization/);
    flat.destroy();
    small.destroy();
  });
});
