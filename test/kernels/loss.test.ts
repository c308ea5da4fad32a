// Mean losses: CPU reference gradients vs finite differences; GPU vs CPU reference (values and grads) on
// 1-element, odd and 1x3x512x1024 inputs, scalar and tensor targets, scale and accumulate; BCE stability
// and NaN; L1's sign(0) = 0; bad input.
import { describe, it, expect, afterAll } from 'vitest';
import { testContext } from '../helpers/gpu.js';
import { expectClose } from '../helpers/compare.js';
import { checkGradient } from '../helpers/gradcheck.js';
import { Rng } from '../../src/runtime/random.js';
import { GpuContext, destroyDispatches } from '../../src/runtime/context.js';
import type { Tensor } from '../../src/runtime/tensor.js';
import { bceWithLogitsForward, bceWithLogitsBackward, mseLossForward, mseLossBackward, l1LossForward, l1LossBackward } from '../../src/kernels/loss.js';
import { lossForwardCpu, lossBackwardCpu, type LossKind } from '../../src/kernels/cpu/loss.js';

const size = (s: readonly number[]) => s.reduce((a, b) => a * b, 1);
const KINDS: LossKind[] = ['bce', 'mse', 'l1'];
const FORWARD = { bce: bceWithLogitsForward, mse: mseLossForward, l1: l1LossForward };
const BACKWARD = { bce: bceWithLogitsBackward, mse: mseLossBackward, l1: l1LossBackward };

describe('loss CPU references vs finite differences', () => {
  for (const kind of KINDS) {
    for (const target of ['scalar', 'tensor'] as const) {
      it(`${kind}, ${target} target, scale 0.5`, () => {
        const rng = new Rng(4);
        const x = Float64Array.from(rng.normals(30, 2)).map((v) => (Math.abs(v) < 1e-3 ? 0.3 : v));
        // L1: keep |x - t| >= 0.1, away from the kink.
        const tgt = target === 'scalar' ? 1 : Float64Array.from(rng.normals(30)).map((v, i) => (kind === 'l1' ? x[i] + Math.sign(v) * (0.1 + Math.abs(v)) : v));
        // The loss is a scalar: f returns [loss] and the weight is the scale.
        checkGradient({ label: kind, x, f: (xx) => [lossForwardCpu(kind, xx, tgt)], analytic: lossBackwardCpu(kind, x, tgt, 0.5), weights: [0.5] });
      });
    }
  }
});

describe('loss GPU vs CPU reference', async () => {
  const ctx = await testContext();
  const own: Tensor[] = [];
  const t = (shape: number[], data?: ArrayLike<number>, label = 't') => {
    const x = ctx.tensor(shape, data, label);
    own.push(x);
    return x;
  };
  afterAll(() => own.forEach((x) => x.destroy()));
  const maxErr: Record<string, number> = {};
  const close = (got: ArrayLike<number>, want: ArrayLike<number>, o: { atol: number; rtol: number; label: string }) => {
    maxErr[o.label] = Math.max(maxErr[o.label] ?? 0, expectClose(got, want, o));
  };

  for (const shape of [[1, 1, 1, 1], [2, 1, 7, 9], [3, 5, 1, 1], [1, 3, 181, 257]]) {
    for (const kind of KINDS) {
      it(`${kind} ${shape.join('x')}: tensor and scalar targets, accumulate and overwrite`, async () => {
        const n = size(shape);
        const rng = new Rng(n + kind.length);
        const xd = rng.normals(n, 4);
        const td = Float32Array.from(rng.normals(n), (v) => (kind === 'bce' ? (v > 0 ? 1 : 0) : v));
        const x = t(shape, xd), target = t(shape, td), loss = t([1]), lossScalar = t([1]);
        const dx = t(shape, new Float32Array(n).fill(1)), dxScalar = t(shape, new Float32Array(n).fill(3));
        const ds = [...FORWARD[kind](ctx, loss, x, target), ...BACKWARD[kind](ctx, dx, x, target, { scale: 0.5, accumulate: true })];
        if (kind !== 'l1') {
          ds.push(...FORWARD[kind](ctx, lossScalar, x, 0));
          ds.push(...BACKWARD[kind](ctx, dxScalar, x, 0, { scale: 100 }));
        }
        await ctx.run(ds);
        // Tree sums in fp32: a few ulps of the total (terms are O(1..20)).
        close(await loss.read(), [lossForwardCpu(kind, xd, td)], { atol: 1e-6, rtol: 2e-6, label: `${kind} loss` });
        close(await dx.read(), lossBackwardCpu(kind, xd, td, 0.5).map((v) => v + 1), { atol: 1e-7, rtol: 1e-5, label: `${kind} dx` });
        if (kind !== 'l1') {
          close(await lossScalar.read(), [lossForwardCpu(kind, xd, 0)], { atol: 1e-6, rtol: 2e-6, label: `${kind} loss` });
          close(await dxScalar.read(), lossBackwardCpu(kind, xd, 0, 100), { atol: 1e-7, rtol: 1e-5, label: `${kind} dx` });
        }
        destroyDispatches(ds);
      });
    }
  }

  it('1x3x512x1024 (a full-size image pair): all three loss values to ~1e-6 relative', async () => {
    const shape = [1, 3, 512, 1024];
    const n = size(shape);
    const rng = new Rng(512);
    // Image-like: prediction and target in [-1, 1], the prediction close to the target.
    const td = Float32Array.from({ length: n }, () => rng.uniform(-1, 1));
    const xd = td.map((v) => Math.max(-1, Math.min(1, v + rng.normal(0, 0.1))));
    const x = t(shape, xd), target = t(shape, td);
    const losses = { bce: t([1]), mse: t([1]), l1: t([1]) };
    const ds = KINDS.flatMap((kind) => FORWARD[kind](ctx, losses[kind], x, target));
    await ctx.run(ds);
    for (const kind of KINDS) {
      // 1.57M terms: a serial fp32 loop would be off by ~1e-3 relative; the tree is a few 1e-7.
      close(await losses[kind].read(), [lossForwardCpu(kind, xd, td)], { atol: 0, rtol: 2e-6, label: `${kind} loss (512x1024x3)` });
    }
    destroyDispatches(ds);
  });

  it('BCE with logits is stable for |logits| = 80 and 1e-9, and propagates NaN', async () => {
    const x = t([4], [80, -80, 0, 1e-9]), xNaN = t([2], [NaN, 1]), loss = t([1]), lossNaN = t([1]), dx = t([4]);
    const ds = [...bceWithLogitsForward(ctx, loss, x, 1), ...bceWithLogitsBackward(ctx, dx, x, 1), ...bceWithLogitsForward(ctx, lossNaN, xNaN, 0)];
    await ctx.run(ds);
    const xs = [80, -80, 0, 1e-9];
    close(await loss.read(), [lossForwardCpu('bce', xs, 1)], { atol: 1e-5, rtol: 1e-6, label: 'bce large' });
    close(await dx.read(), lossBackwardCpu('bce', xs, 1), { atol: 1e-9, rtol: 1e-6, label: 'bce large dx' });
    expect(Number.isNaN((await lossNaN.read())[0])).toBe(true);
    destroyDispatches(ds);
  });

  it('L1 gradient is 0 where x equals the target (sign(0) = 0, as torch)', async () => {
    const x = t([5], [1, 2, 3, -0.5, 0]), target = t([5], [1, 1, 4, -0.5, 0]), dx = t([5], [9, 9, 9, 9, 9]);
    const ds = l1LossBackward(ctx, dx, x, target, { scale: 5 });
    await ctx.run(ds);
    expect(Array.from(await dx.read())).toEqual([0, 1, -1, 0, 0]);
    destroyDispatches(ds);
  });

  it('rejects bad input, naming the op, expected and actual', () => {
    const a = t([2, 3], undefined, 'a'), b = t([3, 2], undefined, 'b'), l2 = t([2], undefined, 'l2'), l = t([1], undefined, 'l');
    expect(() => l1LossForward(ctx, l, a, b)).toThrow(/l1_loss\.forward: target 'b' shape: expected \[2, 3\], got \[3, 2\]/);
    expect(() => mseLossForward(ctx, l2, a, 0)).toThrow(/mse_loss\.forward: out 'l2' shape: expected \[1\], got \[2\]/);
    expect(() => bceWithLogitsForward(ctx, l, a, NaN)).toThrow(/bce_with_logits\.forward: target: expected a finite number, got NaN/);
    expect(() => bceWithLogitsBackward(ctx, a, a, 1)).toThrow(/bce_with_logits\.backward: dx aliasing x or target/);
    expect(() => mseLossBackward(ctx, t([2, 3]), a, 0, { scale: Infinity })).toThrow(/mse_loss\.backward: scale: expected a finite number, got Infinity/);
    expect(() => l1LossBackward(ctx, t([3, 2], undefined, 'dx32'), a, t([2, 3]))).toThrow(/l1_loss\.backward: dx 'dx32' shape: expected \[2, 3\], got \[3, 2\]/);
    const gone = t([2, 3], undefined, 'gone');
    gone.destroy();
    expect(() => l1LossForward(ctx, l, a, gone)).toThrow(/l1_loss\.forward: target 'gone' used after destroy\(\)/);
    expect(() => mseLossBackward(ctx, t([2, 3]), gone, 1)).toThrow(/mse_loss\.backward: x 'gone' used after destroy\(\)/);
    const other = new GpuContext(ctx.device, false);
    const foreign = other.tensor([2, 3], undefined, 'foreign');
    expect(() => bceWithLogitsForward(ctx, l, foreign, 1)).toThrow(/bce_with_logits\.forward: x 'foreign' belongs to another device\/context/);
    expect(() => l1LossBackward(ctx, t([2, 3]), a, foreign)).toThrow(/l1_loss\.backward: target 'foreign' belongs to another device\/context/);
    foreign.destroy();
    other.destroy();
  });

  it('reports its largest errors', () => {
    console.log('losses, max abs error GPU vs float64 CPU:', JSON.stringify(maxErr, (_, v) => (typeof v === 'number' ? Number(v.toExponential(2)) : v)));
  });
});
