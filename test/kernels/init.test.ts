// Seeded initialisers: GPU equals the CPU twin of hash_normal on odd sizes; moments; constant; bad input.
import { describe, it, expect, afterAll } from 'vitest';
import { testContext } from '../helpers/gpu.js';
import { expectClose } from '../helpers/compare.js';
import { GpuContext, destroyDispatches } from '../../src/runtime/context.js';
import type { Tensor } from '../../src/runtime/tensor.js';
import { initNormal, initConstant } from '../../src/kernels/init.js';
import { initNormalCpu, initConstantCpu } from '../../src/kernels/cpu/init.js';

describe('init GPU vs CPU reference', async () => {
  const ctx = await testContext();
  const own: Tensor[] = [];
  const t = (shape: number[], data?: ArrayLike<number>, label = 't') => {
    const x = ctx.tensor(shape, data, label);
    own.push(x);
    return x;
  };
  afterAll(() => own.forEach((x) => x.destroy()));

  for (const [shape, mean, std, seed] of [
    [[1], 0, 1, 0],
    [[64, 3, 4, 4], 0, 0.02, 123],
    [[5, 7, 3], 1, 0.02, 0xffffffff],
    [[300, 257], -0.5, 2, 42],
  ] as const) {
    it(`normal ${shape.join('x')} mean ${mean} std ${std} seed ${seed}`, async () => {
      const w = t([...shape]);
      const ds = initNormal(ctx, w, { mean, std, seed });
      await ctx.run(ds);
      // Box-Muller in fp32: cos(2π u2) is off by ~1e-6 absolute, times the radius sqrt(-2 ln u1) of up
      // to 5.9 (u1 >= 2^-25): ~6e-6 per unit std; measured 6.5e-6 on lavapipe.
      expectClose(await w.read(), initNormalCpu(w.size, mean, std, seed), { atol: 1e-5 * std, rtol: 1e-6, label: 'init normal' });
      destroyDispatches(ds);
    });
  }

  it('normal draws have the requested moments and differ between seeds', async () => {
    const a = t([100_000]), b = t([100_000]);
    const ds = [...initNormal(ctx, a, { std: 0.02, seed: 1 }), ...initNormal(ctx, b, { std: 0.02, seed: 2 })];
    await ctx.run(ds);
    const got = await a.read();
    const mean = got.reduce((s, v) => s + v, 0) / got.length;
    const std = Math.sqrt(got.reduce((s, v) => s + (v - mean) ** 2, 0) / got.length);
    // Standard errors at n = 1e5: mean 6.3e-5, std 4.5e-5; bounds are 5 of them.
    expect(Math.abs(mean)).toBeLessThan(3.2e-4);
    expect(Math.abs(std - 0.02)).toBeLessThan(2.3e-4);
    const other = await b.read();
    expect(other.filter((v, i) => v === got[i]).length).toBeLessThan(10);
    destroyDispatches(ds);
  });

  it('constant', async () => {
    const z = t([3, 5, 7]);
    const ds = [...initConstant(ctx, z, -2.5)];
    await ctx.run(ds);
    expectClose(await z.read(), initConstantCpu(z.size, -2.5), { atol: 0, rtol: 0, label: 'init constant' });
    destroyDispatches(ds);
  });

  it('rejects bad input, naming the op, expected and actual', () => {
    const w = t([4], undefined, 'w');
    expect(() => initNormal(ctx, w, { std: -1, seed: 0 })).toThrow(/init\.normal: std: expected a finite value >= 0, got -1/);
    expect(() => initNormal(ctx, w, { std: NaN, seed: 0 })).toThrow(/init\.normal: std: expected a finite value >= 0, got NaN/);
    expect(() => initNormal(ctx, w, { mean: Infinity, std: 1, seed: 0 })).toThrow(/init\.normal: mean: expected a finite value, got Infinity/);
    expect(() => initNormal(ctx, w, { std: 1, seed: -3 })).toThrow(/init\.normal: seed: expected an integer in \[0, 2\^32\), got -3/);
    expect(() => initConstant(ctx, w, NaN)).toThrow(/init\.constant: value: expected a number, got NaN/);
    const gone = t([4], undefined, 'gone');
    gone.destroy();
    expect(() => initConstant(ctx, gone, 0)).toThrow(/init\.constant: t 'gone' used after destroy\(\)/);
    const other = new GpuContext(ctx.device, false);
    const foreign = other.tensor([4], undefined, 'foreign');
    expect(() => initNormal(ctx, foreign, { std: 1, seed: 0 })).toThrow(/init\.normal: t 'foreign' belongs to another device\/context/);
    foreign.destroy();
    other.destroy();
  });
});
