// The one-pass loss + gradient ops (bceWithLogitsStep, mseLossStep, l1LossStep; shaders/loss_fused.wgsl):
// one segment or two (a batch of 2: fake against 0, real against 1, each averaged on its own), scalar and
// tensor targets, scale per segment, accumulate, the gradient taken through G's tanh; one workgroup (one
// dispatch) and the two-pass path above LOSS_STEP_ONE_GROUP_MAX elements. The CPU reference (cpu/loss.ts
// lossStepCpu) is checked against central differences first.
import { describe, it, expect, afterAll } from 'vitest';
import { testContext } from '../helpers/gpu.js';
import { expectClose } from '../helpers/compare.js';
import { checkGradient } from '../helpers/gradcheck.js';
import { Rng } from '../../src/runtime/random.js';
import { destroyDispatches } from '../../src/runtime/context.js';
import { ShapeError } from '../../src/runtime/errors.js';
import { bceWithLogitsStep, mseLossStep, l1LossStep, LOSS_STEP_ONE_GROUP_MAX } from '../../src/kernels/loss.js';
import { lossForwardCpu, lossStepCpu } from '../../src/kernels/cpu/loss.js';
import { planMemory } from '../../src/runtime/memory_plan.js';
import { activationForward } from '../../src/kernels/activation.js';

const size = (s: readonly number[]) => s.reduce((a, b) => a * b, 1);

describe('lossStepCpu vs finite differences', () => {
  it('two segments with their own targets and scales (BCE, MSE)', () => {
    for (const kind of ['bce', 'mse'] as const) {
      const x = Float64Array.from(new Rng(2).normals(2 * 15, 2));
      const scales = [0.5, 0.25];
      const analytic = lossStepCpu(kind, x, [0, 1], { scales }).dx;
      const f = (xx: Float64Array) => {
        const h = xx.length / 2;
        return [lossForwardCpu(kind, xx.subarray(0, h), 0), lossForwardCpu(kind, xx.subarray(h), 1)];
      };
      checkGradient({ label: `${kind} two segments`, x, f, analytic, weights: scales });
    }
  });
  it('L1 through tanh: the gradient w.r.t. the pre-activation', () => {
    const rng = new Rng(3);
    const z = Float64Array.from(rng.normals(40));
    const t = Float64Array.from(z, (v) => Math.tanh(v) + (rng.next() < 0.5 ? -0.3 : 0.3));
    const y = z.map(Math.tanh);
    const analytic = lossStepCpu('l1', y, t, { tensorTarget: true, scales: [100], through: 'tanh' }).dx;
    checkGradient({ label: 'l1 through tanh', x: z, f: (zz) => [lossForwardCpu('l1', zz.map(Math.tanh), t)], analytic, weights: [100] });
  });
});

describe('loss + gradient in one pass on the GPU', async () => {
  const ctx = await testContext();
  afterAll(() => ctx.trimPool());

  const shapes = [
    [2, 1, 7, 15], // the batched PatchGAN map of 'small' (N = 2)
    [1, 3, 64, 128], // G's output at 'small': one workgroup
    [2, 3, 75, 91], // 40950 elements: one workgroup, odd
    [1, 3, 160, 170], // 81600 > LOSS_STEP_ONE_GROUP_MAX: two passes
    [2, 3, 130, 111], // 86580, two passes with two segments
  ];
  type Case = { kind: 'bce' | 'mse' | 'l1'; targets: 'one' | 'two' | 'tensor'; through?: 'tanh' | 'relu' | { leaky: number }; accumulate?: boolean };
  const cases: Case[] = [
    { kind: 'bce', targets: 'one' },
    { kind: 'bce', targets: 'two', accumulate: true },
    { kind: 'mse', targets: 'two' },
    { kind: 'mse', targets: 'tensor', through: { leaky: 0.2 } },
    { kind: 'l1', targets: 'tensor', through: 'tanh', accumulate: true },
    { kind: 'l1', targets: 'tensor', through: 'relu' },
  ];
  for (const shape of shapes) {
    for (const c of cases) {
      if (c.targets === 'two' && shape[0] % 2 === 1) continue; // two targets split the batch
      const n = size(shape);
      it(`${c.kind} ${c.targets} target(s)${c.through ? ` through ${JSON.stringify(c.through)}` : ''}${c.accumulate ? ' accumulate' : ''} x${shape.join('x')}`, async () => {
        const rng = new Rng(n + c.kind.length);
        const x = Float64Array.from(rng.normals(n)).map((v) => (c.through === 'tanh' ? Math.tanh(v) : v));
        const tgt = c.targets === 'tensor' ? Float64Array.from(rng.normals(n)).map((v) => (c.through === 'tanh' ? Math.tanh(v) : v)) : null;
        const targets = c.targets === 'one' ? [1] : c.targets === 'two' ? [0, 1] : [];
        const old = c.accumulate ? Float64Array.from(rng.normals(n)) : undefined;
        const scales = c.targets === 'two' ? [0.5, 0.25] : [c.kind === 'l1' ? 100 : 0.5];
        const ref = lossStepCpu(c.kind, x, tgt ?? targets, { tensorTarget: !!tgt, scales, dxOld: old, through: c.through });
        const xT = ctx.tensor(shape, Float32Array.from(x), 'x');
        const tT = tgt ? ctx.tensor(shape, Float32Array.from(tgt), 'target') : null;
        const dx = ctx.tensor(shape, old ? Float32Array.from(old) : new Float32Array(n).fill(NaN), 'dx');
        const loss = ctx.tensor([ref.loss.length], new Float32Array(ref.loss.length).fill(NaN), 'loss');
        const through = c.through === undefined ? undefined : c.through === 'tanh' ? { kind: 'tanh' as const } : c.through === 'relu' ? { kind: 'relu' as const } : { kind: 'leaky_relu' as const, slope: c.through.leaky };
        const o = { scale: scales, accumulate: c.accumulate, through };
        const d = c.kind === 'bce' ? bceWithLogitsStep(ctx, loss, dx, xT, targets, o)
          : c.kind === 'mse' ? mseLossStep(ctx, loss, dx, xT, tT ?? targets, o)
          : l1LossStep(ctx, loss, dx, xT, tT!, o);
        expect(d.length).toBe(n <= LOSS_STEP_ONE_GROUP_MAX ? 1 : 2);
        await ctx.run(d);
        destroyDispatches(d);
        expectClose(await loss.read(), ref.loss, { atol: 1e-5, rtol: 1e-5, label: 'loss' });
        expectClose(await dx.read(), ref.dx, { atol: 1e-6, rtol: 1e-5, label: 'dx' });
        for (const t of [xT, tT, dx, loss]) t?.destroy();
      });
    }
  }

  it('a number target on a planned (transient) x: x is not bound twice (one buffer read_write and read in one dispatch is refused)', async () => {
    for (const shape of [[2, 1, 7, 15], [2, 3, 130, 111]]) { // one workgroup, and the two-pass path
      const n = size(shape);
      const x = Float64Array.from(new Rng(n).normals(n));
      const ref = lossStepCpu('bce', x, [0, 1], { tensorTarget: false, scales: [0.5, 0.5] });
      const xIn = ctx.tensor(shape, Float32Array.from(x), 'x.in');
      const loss = ctx.tensor([2], undefined, 'loss');
      const { list, xT, dx } = ctx.deferAllocations(() => {
        const xT = ctx.scratch(shape, 'x.planned');
        const dx = ctx.scratch(shape, 'dx.planned');
        const copy = activationForward(ctx, xT, xIn, 'leaky_relu', 1); // LeakyReLU with slope 1: a copy that writes the planned x first
        return { list: [...copy, ...bceWithLogitsStep(ctx, loss, dx, xT, [0, 1], { scale: [0.5, 0.5] })], xT, dx };
      });
      const plan = planMemory(ctx, list, { keep: [dx], label: 'loss_step.planned' });
      await ctx.run(list);
      expectClose(await loss.read(), ref.loss, { atol: 1e-5, rtol: 1e-5, label: 'loss' });
      expectClose(await dx.read(), ref.dx, { atol: 1e-6, rtol: 1e-5, label: 'dx' });
      destroyDispatches(list);
      plan.destroy();
      void xT;
      for (const t of [xIn, loss]) t.destroy();
    }
  });

  it('refuses an odd batch for two targets, a wrong loss shape and dx aliasing x', () => {
    const x = ctx.tensor([3, 1, 2, 2], undefined, 'x');
    const dx = ctx.tensor([3, 1, 2, 2], undefined, 'dx');
    const l2 = ctx.tensor([2], undefined, 'loss2');
    const l1 = ctx.tensor([1], undefined, 'loss1');
    expect(() => bceWithLogitsStep(ctx, l2, dx, x, [0, 1])).toThrow(ShapeError);
    expect(() => bceWithLogitsStep(ctx, l2, dx, x, 1)).toThrow(ShapeError);
    expect(() => bceWithLogitsStep(ctx, l1, x, x, 1)).toThrow(/aliasing/);
    for (const t of [x, dx, l1, l2]) t.destroy();
  });
});
