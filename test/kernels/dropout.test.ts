// Dropout: CPU reference backward vs finite differences; GPU vs the CPU twin of the seeded mask on many
// shapes and p; reseeding recorded dispatches; keep rate; bad input.
import { describe, it, expect, afterAll } from 'vitest';
import { testContext } from '../helpers/gpu.js';
import { expectClose } from '../helpers/compare.js';
import { checkGradient } from '../helpers/gradcheck.js';
import { Rng } from '../../src/runtime/random.js';
import { GpuContext, destroyDispatches } from '../../src/runtime/context.js';
import type { Tensor } from '../../src/runtime/tensor.js';
import { dropoutForward, dropoutBackward, setDropoutSeed } from '../../src/kernels/dropout.js';
import { initConstant } from '../../src/kernels/init.js';
import { dropoutForwardCpu, dropoutBackwardCpu, dropoutMaskCpu } from '../../src/kernels/cpu/dropout.js';

const size = (s: readonly number[]) => s.reduce((a, b) => a * b, 1);

describe('dropout CPU reference', () => {
  it('backward matches finite differences (the mask is fixed by the seed)', () => {
    const rng = new Rng(3);
    const x = Float64Array.from(rng.normals(50));
    const w = Float64Array.from(rng.normals(50));
    checkGradient({ label: 'dropout dx', x, f: (xx) => dropoutForwardCpu(xx, 0.4, 99), analytic: dropoutBackwardCpu(w, 0.4, 99), weights: w });
  });
  it('drops a fraction p, scales the rest by 1/(1-p), and p = 0 is the identity', () => {
    const mask = dropoutMaskCpu(100_000, 0.3, 5);
    const kept = mask.filter((k) => k !== 0);
    // Binomial(1e5, 0.7): std of the kept fraction 1.4e-3, so 0.01 is 7 standard deviations.
    expect(Math.abs(kept.length / mask.length - 0.7)).toBeLessThan(0.01);
    expect(kept.every((k) => k === 1 / 0.7)).toBe(true);
    expect(dropoutMaskCpu(1000, 0, 5).every((k) => k === 1)).toBe(true);
  });
});

describe('dropout GPU vs CPU reference', async () => {
  const ctx = await testContext();
  const own: Tensor[] = [];
  const t = (shape: number[], data?: ArrayLike<number>, label = 't') => {
    const x = ctx.tensor(shape, data, label);
    own.push(x);
    return x;
  };
  afterAll(() => own.forEach((x) => x.destroy()));

  for (const [shape, p] of [
    [[1, 1, 1, 1], 0.5],
    [[2, 3, 5, 7], 0.5],
    [[3, 5, 1, 1], 0.3],
    [[1, 7, 13, 4], 0],
    [[2, 3, 40, 50], 0.5],
  ] as const) {
    it(`${shape.join('x')} p=${p}: forward, accumulating and overwriting backward`, async () => {
      const n = size(shape);
      const rng = new Rng(n);
      const xd = rng.normals(n), dyd = rng.normals(n);
      const seed = 1000 + n;
      const x = t([...shape], xd), y = t([...shape]), dy = t([...shape], dyd);
      const dxAcc = t([...shape], new Float32Array(n).fill(0.5)), dx = t([...shape], new Float32Array(n).fill(7));
      const ds = [
        ...dropoutForward(ctx, y, x, { p, seed }),
        ...dropoutBackward(ctx, dxAcc, dy, { p, seed, accumulate: true }),
        ...dropoutBackward(ctx, dx, dy, { p, seed }),
      ];
      await ctx.run(ds);
      // The mask is exact (same 24-bit draws); only x * 1/(1-p) rounds: 1 ulp.
      expectClose(await y.read(), dropoutForwardCpu(xd, p, seed), { atol: 0, rtol: 2e-7, label: 'dropout y' });
      expectClose(await dxAcc.read(), dropoutBackwardCpu(dyd, p, seed).map((v) => v + 0.5), { atol: 1e-7, rtol: 2e-7, label: 'dropout dx (accumulate)' });
      expectClose(await dx.read(), dropoutBackwardCpu(dyd, p, seed), { atol: 0, rtol: 2e-7, label: 'dropout dx' });
      destroyDispatches(ds);
    });
  }

  it('setDropoutSeed reseeds recorded forward and backward together, without allocating', async () => {
    const shape = [2, 3, 40, 50];
    const n = size(shape);
    const x = t(shape), y = t(shape), dx = t(shape);
    const init = initConstant(ctx, x, 1);
    const ds = [...dropoutForward(ctx, y, x, { p: 0.5, seed: 7 }), ...dropoutBackward(ctx, dx, x, { p: 0.5, seed: 7 })];
    await ctx.run([...init, ...ds]);
    const mask7 = dropoutMaskCpu(n, 0.5, 7);
    expectClose(await y.read(), mask7, { atol: 0, rtol: 0, label: 'dropout mask, seed 7' });
    const before = ctx.stats.buffersCreated;
    setDropoutSeed(ds, 8);
    await ctx.run(ds);
    expect(ctx.stats.buffersCreated).toBe(before);
    const mask8 = dropoutMaskCpu(n, 0.5, 8);
    expect(mask8.filter((k, i) => k !== mask7[i]).length).toBeGreaterThan(n / 4); // independent masks differ in half
    expectClose(await y.read(), mask8, { atol: 0, rtol: 0, label: 'dropout forward, seed 8' });
    expectClose(await dx.read(), mask8, { atol: 0, rtol: 0, label: 'dropout backward, seed 8' });
    destroyDispatches([...init, ...ds]);
  });

  it('rejects bad input, naming the op, expected and actual', () => {
    const x = t([2, 3], undefined, 'x'), y = t([2, 3], undefined, 'y');
    expect(() => dropoutForward(ctx, y, x, { p: 1, seed: 0 })).toThrow(/dropout\.forward: p: expected a probability in \[0, 1\), got 1/);
    expect(() => dropoutForward(ctx, y, x, { p: -0.1, seed: 0 })).toThrow(/dropout\.forward: p: expected a probability in \[0, 1\), got -0\.1/);
    expect(() => dropoutForward(ctx, y, x, { p: 0.5, seed: -1 })).toThrow(/dropout\.forward: seed: expected an integer in \[0, 2\^32\), got -1/);
    expect(() => dropoutBackward(ctx, y, x, { p: 0.5, seed: 1.5 })).toThrow(/dropout\.backward: seed: expected an integer in \[0, 2\^32\), got 1\.5/);
    expect(() => dropoutForward(ctx, t([3, 2], undefined, 'y32'), x, { p: 0.5, seed: 0 })).toThrow(/dropout\.forward: y 'y32' shape: expected \[2, 3\], got \[3, 2\]/);
    expect(() => dropoutBackward(ctx, x, x, { p: 0.5, seed: 0 })).toThrow(/dropout\.backward: dx aliasing dy/);
    const ds = dropoutForward(ctx, y, x, { p: 0.5, seed: 0 });
    expect(() => setDropoutSeed(ds, 2 ** 32)).toThrow(/setDropoutSeed: seed: expected an integer in \[0, 2\^32\), got 4294967296/);
    const notDropout = initConstant(ctx, x, 0);
    expect(() => setDropoutSeed(notDropout, 1)).toThrow(/setDropoutSeed: dispatch 'init\.constant': expected a dropout dispatch, got init\.constant/);
    destroyDispatches([...ds, ...notDropout]);
    const gone = t([2, 3], undefined, 'gone');
    gone.destroy();
    expect(() => dropoutForward(ctx, y, gone, { p: 0.5, seed: 0 })).toThrow(/dropout\.forward: x 'gone' used after destroy\(\)/);
    const other = new GpuContext(ctx.device, false);
    const foreign = other.tensor([2, 3], undefined, 'foreign');
    expect(() => dropoutBackward(ctx, foreign, x, { p: 0.5, seed: 0 })).toThrow(/dropout\.backward: dx 'foreign' belongs to another device\/context/);
    foreign.destroy();
    other.destroy();
  });
});
