// Losses, reductions, Adam, dropout, concat and init: CPU references vs finite differences where there is
// a gradient, GPU vs CPU reference on many shapes, and bad input.
import { describe, it, expect } from 'vitest';
import { testContext } from '../helpers/gpu.js';
import { expectClose } from '../helpers/compare.js';
import { checkGradient } from '../helpers/gradcheck.js';
import { Rng } from '../../src/runtime/random.js';
import { destroyDispatches } from '../../src/runtime/context.js';
import type { Tensor } from '../../src/runtime/tensor.js';
import { bceWithLogitsForward, bceWithLogitsBackward, mseLossForward, mseLossBackward, l1LossForward, l1LossBackward } from '../../src/kernels/loss.js';
import { sumForward } from '../../src/kernels/reduce.js';
import { adamStep, updateAdam } from '../../src/kernels/adam.js';
import { dropoutForward, dropoutBackward, setDropoutSeed } from '../../src/kernels/dropout.js';
import { concatChannelsForward, concatChannelsBackward } from '../../src/kernels/concat.js';
import { initNormal, initConstant } from '../../src/kernels/init.js';
import { lossForwardCpu, lossBackwardCpu, type LossKind } from '../../src/kernels/cpu/loss.js';
import { adamStepCpu } from '../../src/kernels/cpu/adam.js';
import { concatChannelsCpu, dropoutMaskCpu, initNormalCpu } from '../../src/kernels/cpu/elementwise.js';

const size = (s: readonly number[]) => s.reduce((a, b) => a * b, 1);

describe('loss CPU references vs finite differences', () => {
  for (const kind of ['bce', 'mse', 'l1'] as LossKind[]) {
    for (const target of ['scalar', 'tensor'] as const) {
      it(`${kind}, ${target} target`, () => {
        const rng = new Rng(4);
        const x = Float64Array.from(rng.normals(30, 2)).map((v) => (Math.abs(v) < 1e-3 ? 0.3 : v));
        const t = target === 'scalar' ? 1 : Float64Array.from(rng.normals(30)).map((v, i) => (kind === 'l1' ? x[i] + Math.sign(v) * (0.1 + Math.abs(v)) : v));
        // Loss is a scalar: weights = [1] and f returns [loss].
        checkGradient({ label: kind, x, f: (xx) => [lossForwardCpu(kind, xx, t)], analytic: lossBackwardCpu(kind, x, t), weights: [1] });
      });
    }
  }
});

describe('loss and reduction GPU vs CPU', async () => {
  const ctx = await testContext();
  const own: Tensor[] = [];
  const t = (shape: number[], data?: ArrayLike<number>) => {
    const x = ctx.tensor(shape, data);
    own.push(x);
    return x;
  };
  // 1 element, odd, and 1x3x181x257 = 139k elements: 136 partial sums in the first pass.
  for (const shape of [[1, 1, 1, 1], [2, 1, 7, 9], [1, 3, 181, 257]]) {
    for (const kind of ['bce', 'mse', 'l1'] as LossKind[]) {
      it(`${kind} ${shape.join('x')}`, async () => {
        const rng = new Rng(size(shape));
        const xd = rng.normals(size(shape), 4);
        const td = Float32Array.from(rng.normals(size(shape)), (v) => (kind === 'bce' ? (v > 0 ? 1 : 0) : v));
        const x = t(shape, xd), target = t(shape, td), loss = t([1]), lossScalar = t([1]);
        const dx = t(shape, new Float32Array(size(shape)).fill(1)), dxs = t(shape);
        const fwd = { bce: bceWithLogitsForward, mse: mseLossForward, l1: l1LossForward }[kind];
        const bwd = { bce: bceWithLogitsBackward, mse: mseLossBackward, l1: l1LossBackward }[kind];
        const ds = [...fwd(ctx, loss, x, target), ...bwd(ctx, dx, x, target, { scale: 0.5, accumulate: true })];
        if (kind !== 'l1') {
          ds.push(...(kind === 'bce' ? bceWithLogitsForward : mseLossForward)(ctx, lossScalar, x, 0));
          ds.push(...(kind === 'bce' ? bceWithLogitsBackward : mseLossBackward)(ctx, dxs, x, 0, { scale: 100 }));
        }
        await ctx.run(ds);
        // Tree sums in fp32: a few ulps of the total.
        expectClose(await loss.read(), [lossForwardCpu(kind, xd, td)], { atol: 1e-6, rtol: 2e-6, label: `${kind} loss` });
        expectClose(await dx.read(), lossBackwardCpu(kind, xd, td, 0.5).map((v) => v + 1), { atol: 1e-7, rtol: 1e-5, label: `${kind} dx` });
        if (kind !== 'l1') {
          expectClose(await lossScalar.read(), [lossForwardCpu(kind, xd, 0)], { atol: 1e-6, rtol: 2e-6, label: `${kind} loss (scalar target)` });
          expectClose(await dxs.read(), lossBackwardCpu(kind, xd, 0, 100), { atol: 1e-7, rtol: 1e-5, label: `${kind} dx (scalar target)` });
        }
        destroyDispatches(ds);
      });
    }
  }

  it('BCE with logits is stable for large logits and propagates NaN', async () => {
    const big = t([3], [80, -80, 0]), x = t([4], [80, -80, 0, NaN]), loss = t([1]);
    const ds = bceWithLogitsForward(ctx, loss, big, 1);
    await ctx.run(ds);
    expectClose(await loss.read(), [lossForwardCpu('bce', [80, -80, 0], 1)], { atol: 1e-5, rtol: 1e-6, label: 'bce large' });
    destroyDispatches(ds);
    const ds2 = bceWithLogitsForward(ctx, loss, x, 0);
    await ctx.run(ds2);
    expect(Number.isNaN((await loss.read())[0])).toBe(true);
    destroyDispatches(ds2);
  });

  it('sum over 2-D grids of partials', async () => {
    const n = 1_100_000; // > 65535 * 4 * ... no: 1075 partials, and a long finalize loop
    const data = new Float32Array(n).map((_, i) => ((i % 17) - 8) / 8);
    const x = t([n], data), out = t([1]);
    const ds = sumForward(ctx, out, x);
    await ctx.run(ds);
    let s = 0;
    for (const v of data) s += v;
    expectClose(await out.read(), [s], { atol: 1e-2, rtol: 1e-6, label: 'sum' });
    destroyDispatches(ds);
  });

  it('rejects bad input', () => {
    const a = t([2, 3]), b = t([3, 2]), l = t([2]);
    expect(() => l1LossForward(ctx, t([1]), a, b)).toThrow(/l1_loss\.forward: target 'tensor' shape: expected \[2, 3\], got \[3, 2\]/);
    expect(() => mseLossForward(ctx, l, a, 0)).toThrow(/mse_loss\.forward: out 'tensor' shape: expected \[1\], got \[2\]/);
    expect(() => bceWithLogitsBackward(ctx, a, a, 1)).toThrow(/dx aliasing x/);
  });

  it('frees its tensors', () => own.forEach((x) => x.destroy()));
});

describe('Adam, dropout, concat, init on the GPU', async () => {
  const ctx = await testContext();
  const own: Tensor[] = [];
  const t = (shape: number[], data?: ArrayLike<number>) => {
    const x = ctx.tensor(shape, data);
    own.push(x);
    return x;
  };

  it('Adam matches the reference over 6 steps with changing lr, replaying one recorded dispatch', async () => {
    const rng = new Rng(9);
    const n = 1001;
    const p0 = Float64Array.from(rng.normals(n));
    const param = t([n], p0), grad = t([n]), m = t([n], new Float32Array(n)), v = t([n], new Float32Array(n));
    const ds = adamStep(ctx, param, grad, m, v, { lr: 2e-4, beta1: 0.5, beta2: 0.999, eps: 1e-8, step: 1 });
    const ref = { p: Float64Array.from(p0), m: new Float64Array(n), v: new Float64Array(n) };
    for (let step = 1; step <= 6; step++) {
      const g = rng.normals(n, 10 ** (step - 3));
      const lr = 2e-4 * (1 - step / 10);
      grad.write(g);
      updateAdam(ds, { lr, step });
      await ctx.run(ds);
      adamStepCpu(ref.p, g, ref.m, ref.v, { lr, beta1: 0.5, beta2: 0.999, eps: 1e-8, step });
    }
    // The update is ~lr per step; fp32 parameters of O(1) hold it to ~1e-7.
    expectClose(await param.read(), ref.p, { atol: 2e-7, rtol: 1e-6, label: 'adam param' });
    expectClose(await m.read(), ref.m, { atol: 1e-9, rtol: 1e-5, label: 'adam m' });
    expectClose(await v.read(), ref.v, { atol: 1e-12, rtol: 1e-5, label: 'adam v' });
    destroyDispatches(ds);
    expect(() => adamStep(ctx, param, grad, m, v, { lr: 1, step: 0 })).toThrow(/adam: step: expected an integer >= 1, got 0/);
    expect(() => adamStep(ctx, param, param, m, v, { lr: 1, step: 1 })).toThrow(/adam\.step: param, grad, m, v: expected four distinct tensors/);
  });

  it('dropout: the CPU mask, scaling, reseeding forward and backward together, keep rate', async () => {
    const shape = [2, 3, 40, 50];
    const n = size(shape);
    const rng = new Rng(1);
    const xd = rng.normals(n);
    const x = t(shape, xd), y = t(shape), dx = t(shape);
    const fwd = dropoutForward(ctx, y, x, { p: 0.5, seed: 7 });
    const bwd = dropoutBackward(ctx, dx, x, { p: 0.5, seed: 7 });
    await ctx.run([...fwd, ...bwd]);
    const mask7 = dropoutMaskCpu(n, 0.5, 7);
    expectClose(await y.read(), mask7.map((k, i) => k * xd[i]), { atol: 1e-6, rtol: 1e-6, label: 'dropout forward' });
    expectClose(await dx.read(), mask7.map((k, i) => k * xd[i]), { atol: 1e-6, rtol: 1e-6, label: 'dropout backward' });
    const kept = mask7.filter((k) => k > 0).length / n;
    expect(Math.abs(kept - 0.5)).toBeLessThan(0.02);
    setDropoutSeed([...fwd, ...bwd], 8);
    await ctx.run([...fwd, ...bwd]);
    const mask8 = dropoutMaskCpu(n, 0.5, 8);
    expect(mask8.some((k, i) => k !== mask7[i])).toBe(true);
    expectClose(await y.read(), mask8.map((k, i) => k * xd[i]), { atol: 1e-6, rtol: 1e-6, label: 'dropout forward, seed 8' });
    expectClose(await dx.read(), mask8.map((k, i) => k * xd[i]), { atol: 1e-6, rtol: 1e-6, label: 'dropout backward, seed 8' });
    destroyDispatches([...fwd, ...bwd]);
    expect(() => dropoutForward(ctx, y, x, { p: 1, seed: 0 })).toThrow(/dropout\.forward: p: expected a probability in \[0, 1\), got 1/);
  });

  for (const [sa, sb] of [
    [[1, 1, 1, 1], [1, 2, 1, 1]],
    [[2, 3, 5, 7], [2, 5, 5, 7]],
  ]) {
    it(`concat and split ${sa.join('x')} + ${sb.join('x')}`, async () => {
      const rng = new Rng(2);
      const ad = rng.normals(size(sa)), bd = rng.normals(size(sb));
      const yShape = [sa[0], sa[1] + sb[1], sa[2], sa[3]];
      const a = t(sa, ad), b = t(sb, bd), y = t(yShape);
      const dyd = rng.normals(size(yShape));
      const dy = t(yShape, dyd), da = t(sa, new Float32Array(size(sa)).fill(1)), db = t(sb);
      const ds = [...concatChannelsForward(ctx, y, a, b), ...concatChannelsBackward(ctx, da, db, dy, { accumulate: false })];
      await ctx.run(ds);
      expectClose(await y.read(), concatChannelsCpu(ad, sa, bd, sb), { atol: 0, rtol: 0, label: 'concat' });
      // The split is the adjoint of concat: da/db are dy's channel slices.
      const [N, Ca, H, W] = sa;
      const Cb = sb[1];
      const daRef: number[] = [];
      const dbRef: number[] = [];
      for (let n0 = 0; n0 < N; n0++) for (let c = 0; c < Ca + Cb; c++) for (let j = 0; j < H * W; j++) (c < Ca ? daRef : dbRef).push(dyd[(n0 * (Ca + Cb) + c) * H * W + j]);
      expectClose(await da.read(), daRef, { atol: 0, rtol: 0, label: 'split a' });
      expectClose(await db.read(), dbRef, { atol: 0, rtol: 0, label: 'split b' });
      destroyDispatches(ds);
      expect(() => concatChannelsForward(ctx, t([1, 2, 3, 3]), a, b)).toThrow(/concat\.forward: y 'tensor' shape/);
    });
  }

  it('init: seeded normal equals the CPU twin; constant', async () => {
    const w = t([64, 3, 4, 4]);
    const z = t([17]);
    const ds = [...initNormal(ctx, w, { std: 0.02, seed: 123 }), ...initConstant(ctx, z, 1)];
    await ctx.run(ds);
    const ref = initNormalCpu(w.size, 0, 0.02, 123);
    // Box-Muller in fp32 (log, sqrt, cos): ~1e-6 relative on N(0, 1), i.e. ~2e-8 at std 0.02.
    expectClose(await w.read(), ref, { atol: 1e-7, rtol: 1e-5, label: 'init normal' });
    const got = await w.read();
    const mean = got.reduce((s, v) => s + v, 0) / got.length;
    const std = Math.sqrt(got.reduce((s, v) => s + (v - mean) ** 2, 0) / got.length);
    expect(Math.abs(mean)).toBeLessThan(0.002);
    expect(Math.abs(std - 0.02)).toBeLessThan(0.002);
    expect(Array.from(await z.read()).every((v) => v === 1)).toBe(true);
    destroyDispatches(ds);
  });

  it('frees its tensors', () => own.forEach((x) => x.destroy()));
});
