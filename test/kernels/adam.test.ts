// Adam: the CPU reference against Adam's closed-form first step; GPU vs CPU over steps with changing lr
// and gradient scales, replaying one recorded dispatch without allocation; bad input. Parity with
// torch.optim.Adam itself is in norm_loss_adam_parity.test.ts.
import { describe, it, expect, afterAll } from 'vitest';
import { testContext } from '../helpers/gpu.js';
import { expectClose } from '../helpers/compare.js';
import { Rng } from '../../src/runtime/random.js';
import { GpuContext, destroyDispatches } from '../../src/runtime/context.js';
import type { Tensor } from '../../src/runtime/tensor.js';
import { adamStep, updateAdam } from '../../src/kernels/adam.js';
import { initConstant } from '../../src/kernels/init.js';
import { adamStepCpu } from '../../src/kernels/cpu/adam.js';

describe('Adam CPU reference', () => {
  it('first step moves each parameter by lr * g / (|g| + eps) (bias corrections cancel the (1 - beta) factors)', () => {
    const g = [3, -0.5, 1e-9, 0];
    const p = new Float64Array(4), m = new Float64Array(4), v = new Float64Array(4);
    adamStepCpu(p, g, m, v, { lr: 0.1, beta1: 0.5, beta2: 0.999, eps: 1e-8, step: 1 });
    expectClose(p, g.map((gi) => (-0.1 * gi) / (Math.abs(gi) + 1e-8)), { atol: 1e-15, rtol: 1e-12, label: 'adam step 1' });
    expectClose(m, g.map((gi) => 0.5 * gi), { atol: 0, rtol: 1e-15, label: 'm' });
    expectClose(v, g.map((gi) => 0.001 * gi * gi), { atol: 0, rtol: 1e-12, label: 'v' });
  });
});

describe('Adam GPU vs CPU reference', async () => {
  const ctx = await testContext();
  const own: Tensor[] = [];
  const t = (shape: number[], data?: ArrayLike<number>, label = 't') => {
    const x = ctx.tensor(shape, data, label);
    own.push(x);
    return x;
  };
  afterAll(() => own.forEach((x) => x.destroy()));

  for (const [shape, beta1, beta2] of [
    [[1], 0.9, 0.999],
    [[1001], 0.5, 0.999],
    [[64, 3, 4, 4], 0.5, 0.999],
    [[2, 3, 5, 6], 0.9, 0.999],
  ] as const) {
    it(`${shape.join('x')} betas ${beta1}/${beta2}: 6 steps with changing lr, one recorded dispatch, no allocation`, async () => {
      const n = shape.reduce((a: number, b: number) => a * b, 1);
      const rng = new Rng(n);
      const p0 = Float64Array.from(rng.normals(n));
      const param = t([...shape], p0), grad = t([...shape]), m = t([...shape]), v = t([...shape]);
      const zero = [...initConstant(ctx, m, 0), ...initConstant(ctx, v, 0)];
      await ctx.run(zero);
      const ds = adamStep(ctx, param, grad, m, v, { lr: 2e-4, beta1, beta2, eps: 1e-8, step: 1 });
      // n a multiple of 4: the vec4 entry point (4 elements per thread); else one element per thread.
      expect(ds[0].pipeline.label).toContain(n % 4 === 0 ? '.main4.' : '.main.');
      const ref = { p: Float64Array.from(p0), m: new Float64Array(n), v: new Float64Array(n) };
      const buffersBefore = ctx.stats.buffersCreated;
      for (let step = 1; step <= 6; step++) {
        // Gradient scales from 1e-2 to 1e3: the update is scale-free, the moments are not.
        const g = rng.normals(n, 10 ** (step - 3));
        const lr = 2e-4 * (1 - step / 10); // the linear decay pix2pix uses
        grad.write(g);
        updateAdam(ds, { lr, step });
        await ctx.run(ds);
        adamStepCpu(ref.p, g, ref.m, ref.v, { lr, beta1, beta2, eps: 1e-8, step });
      }
      expect(ctx.stats.buffersCreated).toBe(buffersBefore);
      // Each step moves a parameter by ~lr; fp32 parameters of O(1) resolve that to ~1e-7 (an ulp at 1
      // is 1.2e-7), so 6 steps stay within a couple of ulps.
      expectClose(await param.read(), ref.p, { atol: 3e-7, rtol: 1e-6, label: 'adam param' });
      expectClose(await m.read(), ref.m, { atol: 1e-9, rtol: 1e-5, label: 'adam m' });
      expectClose(await v.read(), ref.v, { atol: 1e-12, rtol: 1e-5, label: 'adam v' });
      destroyDispatches([...zero, ...ds]);
    });
  }

  it('rejects bad input, naming the op, expected and actual', () => {
    const p = t([5], undefined, 'p'), g = t([5], undefined, 'g'), m = t([5], undefined, 'm'), v = t([5], undefined, 'v');
    expect(() => adamStep(ctx, p, g, m, v, { lr: 1e-3, step: 0 })).toThrow(/adam: step: expected an integer >= 1, got 0/);
    expect(() => adamStep(ctx, p, g, m, v, { lr: 1e-3, step: 1.5 })).toThrow(/adam: step: expected an integer >= 1, got 1\.5/);
    expect(() => adamStep(ctx, p, g, m, v, { lr: -1, step: 1 })).toThrow(/adam: lr: expected a finite value >= 0, got -1/);
    expect(() => adamStep(ctx, p, g, m, v, { lr: 1e-3, step: 1, beta1: 1 })).toThrow(/adam\.step: beta1: expected a value in \[0, 1\), got 1/);
    expect(() => adamStep(ctx, p, g, m, v, { lr: 1e-3, step: 1, beta2: -0.1 })).toThrow(/adam\.step: beta2: expected a value in \[0, 1\), got -0\.1/);
    expect(() => adamStep(ctx, p, g, m, v, { lr: 1e-3, step: 1, eps: -1 })).toThrow(/adam\.step: eps: expected a finite value >= 0, got -1/);
    expect(() => adamStep(ctx, p, p, m, v, { lr: 1e-3, step: 1 })).toThrow(/adam\.step: param, grad, m, v: expected four distinct tensors, got aliased tensors/);
    expect(() => adamStep(ctx, p, t([6], undefined, 'g6'), m, v, { lr: 1e-3, step: 1 })).toThrow(/adam\.step: grad 'g6' shape: expected \[5\], got \[6\]/);
    const ds = adamStep(ctx, p, g, m, v, { lr: 1e-3, step: 1 });
    expect(() => updateAdam(ds, { lr: 1e-3, step: 0 })).toThrow(/adam: step: expected an integer >= 1, got 0/);
    const notAdam = initConstant(ctx, p, 0);
    expect(() => updateAdam(notAdam, { lr: 1e-3, step: 1 })).toThrow(/updateAdam: dispatch 'init\.constant': expected an adam\.step dispatch, got init\.constant/);
    destroyDispatches([...ds, ...notAdam]);
    const gone = t([5], undefined, 'gone');
    gone.destroy();
    expect(() => adamStep(ctx, p, g, gone, v, { lr: 1e-3, step: 1 })).toThrow(/adam\.step: m 'gone' used after destroy\(\)/);
    const other = new GpuContext(ctx.device, false);
    const foreign = other.tensor([5], undefined, 'foreign');
    expect(() => adamStep(ctx, p, g, m, foreign, { lr: 1e-3, step: 1 })).toThrow(/adam\.step: v 'foreign' belongs to another device\/context/);
    foreign.destroy();
    other.destroy();
  });
});
