// Batch norm: CPU reference vs finite differences (training and eval); GPU vs CPU reference on odd,
// non-square, batched, 1x1 and long maps, with and without affine / running statistics; eval mode;
// N*H*W = 1 refused in training as torch; bad input.
import { describe, it, expect, afterAll } from 'vitest';
import { testContext } from '../helpers/gpu.js';
import { expectClose } from '../helpers/compare.js';
import { checkGradient } from '../helpers/gradcheck.js';
import { Rng } from '../../src/runtime/random.js';
import { GpuContext, destroyDispatches } from '../../src/runtime/context.js';
import type { Tensor } from '../../src/runtime/tensor.js';
import { batchNormForward, batchNormBackward } from '../../src/kernels/batch_norm.js';
import { batchNormForwardCpu, batchNormBackwardCpu } from '../../src/kernels/cpu/batch_norm.js';

const size = (s: readonly number[]) => s.reduce((a, b) => a * b, 1);

describe('batch norm CPU reference vs finite differences', () => {
  for (const [shape, training, affine] of [
    [[2, 3, 3, 4], true, true],
    [[3, 2, 1, 1], true, false],
    [[1, 3, 2, 3], true, true],
    [[2, 3, 3, 4], false, true],
    [[1, 2, 1, 1], false, true],
  ] as const) {
    it(`${shape.join('x')} ${training ? 'training' : 'eval'} affine ${affine}`, () => {
      const rng = new Rng(size(shape) + (training ? 3 : 0));
      const C = shape[1];
      const x = Float64Array.from(rng.normals(size(shape), 1.5));
      const w = Float64Array.from(rng.normals(size(shape)));
      const gamma = affine ? Float64Array.from(rng.normals(C), (v) => v + 1) : null;
      const beta = affine ? Float64Array.from(rng.normals(C)) : null;
      const rm = Float64Array.from(rng.normals(C, 0.3));
      const rv = Float64Array.from(rng.normals(C), (v) => Math.abs(v) + 0.5);
      const fwd = (xx: ArrayLike<number>, g: ArrayLike<number> | null, b: ArrayLike<number> | null) => batchNormForwardCpu(xx, shape, g, b, rm, rv, { training }).y;
      const saved = batchNormForwardCpu(x, shape, gamma, beta, rm, rv, { training });
      const grads = batchNormBackwardCpu(w, x, shape, saved.mean, saved.rstd, gamma, { training });
      checkGradient({ label: 'batch_norm dx', x, f: (xx) => fwd(xx, gamma, beta), analytic: grads.dx, weights: w });
      if (gamma && beta) {
        checkGradient({ label: 'batch_norm dgamma', x: gamma, f: (g) => fwd(x, g, beta), analytic: grads.dgamma, weights: w });
        checkGradient({ label: 'batch_norm dbeta', x: beta, f: (b) => fwd(x, gamma, b), analytic: grads.dbeta, weights: w });
      }
    });
  }

  it('running statistics: unbiased variance, momentum; refuses N*H*W = 1 in training', () => {
    // Channel 0 holds 1, 2, 3, 4 over (N=2, W=2): mean 2.5, biased var 1.25, unbiased 5/3.
    const r = batchNormForwardCpu([1, 2, 3, 4], [2, 1, 1, 2], null, null, [1], [2], { training: true, momentum: 0.25 });
    expectClose(r.runningMean!, [0.75 * 1 + 0.25 * 2.5], { atol: 1e-15, rtol: 0, label: 'running mean' });
    expectClose(r.runningVar!, [0.75 * 2 + 0.25 * (5 / 3)], { atol: 1e-15, rtol: 0, label: 'running var' });
    expectClose(r.rstd, [1 / Math.sqrt(1.25 + 1e-5)], { atol: 1e-15, rtol: 0, label: 'rstd (biased)' });
    expect(() => batchNormForwardCpu([1, 2], [1, 2, 1, 1], null, null, null, null, { training: true })).toThrow(/more than 1 value per channel/);
  });
});

// Channels' N*H*W > 1 (training); odd, non-square, batch > 1, channels not multiples of 4, 1x1 maps with
// N > 1, and a long channel (4 * 128 * 256 = 131k values spread over 4 strided rows).
const TRAIN_SHAPES = [
  [2, 1, 1, 1],
  [2, 3, 5, 7],
  [3, 5, 1, 1],
  [1, 7, 13, 4],
  [2, 3, 9, 2],
  [4, 2, 128, 256],
];

describe('batch norm GPU vs CPU reference', async () => {
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

  for (const shape of TRAIN_SHAPES) {
    for (const affine of [true, false]) {
      it(`training ${shape.join('x')} affine ${affine}: y, running statistics, accumulated gradients`, async () => {
        const rng = new Rng(size(shape) + (affine ? 5 : 6));
        const C = shape[1];
        const xd = rng.normals(size(shape), 2).map((v) => v - 3);
        const dyd = rng.normals(size(shape));
        const gd = affine ? rng.normals(C).map((v) => v + 1) : null;
        const bd = affine ? rng.normals(C) : null;
        const rmd = rng.normals(C, 0.1);
        const rvd = rng.normals(C).map((v) => Math.abs(v) + 0.5);
        const x = t(shape, xd), y = t(shape), mean = t([C]), rstd = t([C]), rm = t([C], rmd), rv = t([C], rvd);
        const gamma = gd ? t([C], gd) : null, beta = bd ? t([C], bd) : null;
        const dy = t(shape, dyd), dx = t(shape, new Float32Array(size(shape)).fill(-1));
        const dgamma = affine ? t([C], new Float32Array(C).fill(2)) : null, dbeta = affine ? t([C], new Float32Array(C).fill(2)) : null;
        const ds = [
          ...batchNormForward(ctx, y, mean, rstd, x, gamma, beta, rm, rv, { training: true, momentum: 0.1 }),
          ...batchNormBackward(ctx, dx, dgamma, dbeta, dy, x, mean, rstd, gamma, { training: true, accumulate: true }),
        ];
        await ctx.run(ds);
        const ref = batchNormForwardCpu(xd, shape, gd, bd, rmd, rvd, { training: true, momentum: 0.1 });
        const g = batchNormBackwardCpu(dyd, xd, shape, ref.mean, ref.rstd, gd, { training: true });
        close(await y.read(), ref.y, { atol: 2e-5, rtol: 1e-4, label: 'y' });
        close(await mean.read(), ref.mean, { atol: 1e-5, rtol: 1e-5, label: 'mean' });
        close(await rstd.read(), ref.rstd, { atol: 1e-5, rtol: 1e-4, label: 'rstd' });
        close(await rm.read(), ref.runningMean!, { atol: 1e-6, rtol: 1e-5, label: 'running_mean' });
        close(await rv.read(), ref.runningVar!, { atol: 1e-6, rtol: 1e-5, label: 'running_var' });
        close(await dx.read(), g.dx.map((v) => v - 1), { atol: 1e-4, rtol: 1e-3, label: 'dx' });
        if (dgamma && dbeta) {
          // Sums of N*H*W products of O(1): absolute error grows with the count.
          close(await dgamma.read(), g.dgamma.map((v) => v + 2), { atol: 2e-3, rtol: 1e-4, label: 'dgamma' });
          close(await dbeta.read(), g.dbeta.map((v) => v + 2), { atol: 2e-3, rtol: 1e-4, label: 'dbeta' });
        }
        destroyDispatches(ds);
      });
    }
  }

  // D's real pass writes a fresh dx but adds to the parameter gradients of its fake pass: one launch with a flag
  // each (and the reverse), on the one-thread-per-channel kernels (2x5x3x3) and the tree kernels (4x2x128x256).
  for (const shape of [[2, 5, 3, 3], [4, 2, 128, 256]]) {
    for (const [accumulate, accumulateParams] of [[false, true], [true, false]]) {
      it(`training ${shape.join('x')}: accumulate dx ${accumulate}, dgamma/dbeta ${accumulateParams}`, async () => {
        const rng = new Rng(size(shape) + (accumulate ? 1 : 2));
        const C = shape[1];
        const xd = rng.normals(size(shape), 2), dyd = rng.normals(size(shape)), gd = rng.normals(C).map((v) => v + 1), bd = rng.normals(C);
        const x = t(shape, xd), y = t(shape), mean = t([C]), rstd = t([C]), gamma = t([C], gd), beta = t([C], bd), rm = t([C]), rv = t([C], new Float32Array(C).fill(1));
        const dy = t(shape, dyd), dx = t(shape, new Float32Array(size(shape)).fill(-1));
        const dgamma = t([C], new Float32Array(C).fill(2)), dbeta = t([C], new Float32Array(C).fill(2));
        const ds = [
          ...batchNormForward(ctx, y, mean, rstd, x, gamma, beta, rm, rv, { training: true }),
          ...batchNormBackward(ctx, dx, dgamma, dbeta, dy, x, mean, rstd, gamma, { training: true, accumulate, accumulateParams }),
        ];
        await ctx.run(ds);
        const ref = batchNormForwardCpu(xd, shape, gd, bd, new Float64Array(C), new Float64Array(C).fill(1), { training: true });
        const g = batchNormBackwardCpu(dyd, xd, shape, ref.mean, ref.rstd, gd, { training: true });
        close(await dx.read(), accumulate ? g.dx.map((v) => v - 1) : g.dx, { atol: 1e-4, rtol: 1e-3, label: 'dx' });
        close(await dgamma.read(), accumulateParams ? g.dgamma.map((v) => v + 2) : g.dgamma, { atol: 2e-3, rtol: 1e-4, label: 'dgamma' });
        close(await dbeta.read(), accumulateParams ? g.dbeta.map((v) => v + 2) : g.dbeta, { atol: 2e-3, rtol: 1e-4, label: 'dbeta' });
        close(await rm.read(), ref.runningMean!, { atol: 1e-6, rtol: 1e-5, label: 'running_mean' });
        close(await rv.read(), ref.runningVar!, { atol: 1e-6, rtol: 1e-5, label: 'running_var' });
        destroyDispatches(ds);
      });
    }
  }

  it('small channels: one launch forward (with the running statistics) and one backward (with dgamma and dbeta)', () => {
    // A launch, not its arithmetic, is what the per-channel kernels cost on lavapipe (norm.wgsl's header).
    const shape = [1, 8, 16, 32];
    const x = t(shape), y = t(shape), mean = t([8]), rstd = t([8]), gamma = t([8]), beta = t([8]), rm = t([8]), rv = t([8]);
    const dy = t(shape), dx = t(shape), dgamma = t([8]), dbeta = t([8]);
    const fwd = batchNormForward(ctx, y, mean, rstd, x, gamma, beta, rm, rv, { training: true });
    const bwd = batchNormBackward(ctx, dx, dgamma, dbeta, dy, x, mean, rstd, gamma, { training: true, accumulate: false, accumulateParams: true });
    expect(fwd.map((d) => d.op)).toEqual(['batch_norm.forward']);
    expect(bwd.map((d) => d.op)).toEqual(['batch_norm.backward']);
    destroyDispatches([...fwd, ...bwd]);
  });

  it('training without running statistics normalises with the batch and overwrites gradients', async () => {
    const shape = [2, 3, 4, 5];
    const rng = new Rng(8);
    const xd = rng.normals(size(shape)), dyd = rng.normals(size(shape)), gd = rng.normals(3), bd = rng.normals(3);
    const x = t(shape, xd), y = t(shape), mean = t([3]), rstd = t([3]), gamma = t([3], gd), beta = t([3], bd);
    const dy = t(shape, dyd), dx = t(shape, new Float32Array(size(shape)).fill(9)), dgamma = t([3], [9, 9, 9]), dbeta = t([3], [9, 9, 9]);
    const ds = [
      ...batchNormForward(ctx, y, mean, rstd, x, gamma, beta, null, null, { training: true }),
      ...batchNormBackward(ctx, dx, null, null, dy, x, mean, rstd, gamma, { training: true }),
      ...batchNormBackward(ctx, null, dgamma, dbeta, dy, x, mean, rstd, gamma, { training: true }),
    ];
    await ctx.run(ds);
    const ref = batchNormForwardCpu(xd, shape, gd, bd, null, null, { training: true });
    const g = batchNormBackwardCpu(dyd, xd, shape, ref.mean, ref.rstd, gd, { training: true });
    close(await y.read(), ref.y, { atol: 1e-5, rtol: 1e-4, label: 'y' });
    close(await dx.read(), g.dx, { atol: 1e-5, rtol: 1e-4, label: 'dx' });
    close(await dgamma.read(), g.dgamma, { atol: 1e-5, rtol: 1e-4, label: 'dgamma' });
    close(await dbeta.read(), g.dbeta, { atol: 1e-5, rtol: 1e-4, label: 'dbeta' });
    destroyDispatches(ds);
  });

  for (const shape of [[1, 3, 1, 1], [2, 5, 3, 7], [1, 6, 9, 4]]) {
    it(`eval ${shape.join('x')}: running statistics normalise and stay unchanged; dx = gamma rstd dy`, async () => {
      const rng = new Rng(size(shape) + 11);
      const C = shape[1];
      const xd = rng.normals(size(shape)), dyd = rng.normals(size(shape));
      const gd = rng.normals(C).map((v) => v + 1), bd = rng.normals(C);
      const rmd = rng.normals(C, 0.5), rvd = rng.normals(C).map((v) => Math.abs(v) + 0.5);
      const x = t(shape, xd), y = t(shape), mean = t([C]), rstd = t([C]);
      const gamma = t([C], gd), beta = t([C], bd), rm = t([C], rmd), rv = t([C], rvd);
      const dy = t(shape, dyd), dx = t(shape), dgamma = t([C]), dbeta = t([C]);
      const ds = [
        ...batchNormForward(ctx, y, mean, rstd, x, gamma, beta, rm, rv, { training: false }),
        ...batchNormBackward(ctx, dx, dgamma, dbeta, dy, x, mean, rstd, gamma, { training: false }),
      ];
      await ctx.run(ds);
      const ref = batchNormForwardCpu(xd, shape, gd, bd, rmd, rvd, { training: false });
      const g = batchNormBackwardCpu(dyd, xd, shape, ref.mean, ref.rstd, gd, { training: false });
      close(await y.read(), ref.y, { atol: 1e-5, rtol: 1e-5, label: 'eval y' });
      expectClose(await rm.read(), rmd, { atol: 0, rtol: 0, label: 'running_mean untouched' });
      expectClose(await rv.read(), rvd, { atol: 0, rtol: 0, label: 'running_var untouched' });
      close(await dx.read(), g.dx, { atol: 1e-5, rtol: 1e-5, label: 'eval dx' });
      close(await dgamma.read(), g.dgamma, { atol: 1e-4, rtol: 1e-5, label: 'eval dgamma' });
      close(await dbeta.read(), g.dbeta, { atol: 1e-4, rtol: 1e-5, label: 'eval dbeta' });
      destroyDispatches(ds);
    });
  }

  it('rejects bad input, naming the op, expected and actual', () => {
    const fwd = 'batch_norm\\.forward';
    const x1 = t([1, 3, 1, 1], undefined, 'x1'), y1 = t([1, 3, 1, 1]), m3 = t([3], undefined, 'm3');
    // torch: "Expected more than 1 value per channel when training".
    expect(() => batchNormForward(ctx, y1, m3, m3, x1, null, null, null, null, { training: true })).toThrow(
      new RegExp(`${fwd}: values per channel in training mode \\(N\\*H\\*W\\): expected > 1, got 1`),
    );
    const x = t([2, 3, 4, 4], undefined, 'x'), y = t([2, 3, 4, 4]), m6 = t([6], undefined, 'm6'), m4 = t([4], undefined, 'm4');
    expect(() => batchNormForward(ctx, y, m6, m3, x, null, null, null, null, { training: true })).toThrow(new RegExp(`${fwd}: mean 'm6' shape: expected \\[3\\], got \\[6\\]`));
    expect(() => batchNormForward(ctx, y, m3, m3, x, m3, null, null, null, { training: true })).toThrow(/affine parameters: expected both gamma and beta, or neither, got only gamma/);
    expect(() => batchNormForward(ctx, y, m3, m3, x, null, null, m3, null, { training: true })).toThrow(/running statistics: expected both runningMean and runningVar, or neither, got only runningMean/);
    expect(() => batchNormForward(ctx, y, m3, m3, x, null, null, m3, m4, { training: true })).toThrow(/runningVar 'm4' shape: expected \[3\], got \[4\]/);
    expect(() => batchNormForward(ctx, y, m3, m3, x, null, null, null, null, { training: false })).toThrow(
      new RegExp(`${fwd}: running statistics for eval mode: expected runningMean and runningVar, got null`),
    );
    expect(() => batchNormBackward(ctx, t([2, 3, 4, 4]), m3, null, y, x, m3, m3, null, { training: true })).toThrow(/batch_norm\.backward: parameter gradients: expected both dgamma and dbeta/);
    expect(() => batchNormBackward(ctx, t([2, 3, 4, 4]), null, null, y, x, m6, m3, null, { training: true })).toThrow(/batch_norm\.backward: mean 'm6' shape: expected \[3\], got \[6\]/);
    expect(() => batchNormBackward(ctx, y, null, null, y, x, m3, m3, null, { training: true })).toThrow(/batch_norm\.backward: dx aliasing dy or x/);
    const gone = t([3], undefined, 'gone');
    gone.destroy();
    expect(() => batchNormForward(ctx, y, m3, m3, x, null, null, gone, m3, { training: true })).toThrow(new RegExp(`${fwd}: runningMean 'gone' used after destroy\\(\\)`));
    const other = new GpuContext(ctx.device, false);
    const foreign = other.tensor([2, 3, 4, 4], undefined, 'foreign');
    expect(() => batchNormForward(ctx, y, m3, m3, foreign, null, null, null, null, { training: true })).toThrow(new RegExp(`${fwd}: x 'foreign' belongs to another device/context`));
    expect(() => batchNormBackward(ctx, t([2, 3, 4, 4]), null, null, foreign, x, m3, m3, null, { training: true })).toThrow(/batch_norm\.backward: dy 'foreign' belongs to another device\/context/);
    foreign.destroy();
    other.destroy();
  });

  it('reports its largest errors', () => {
    console.log('batch norm, max abs error GPU vs float64 CPU:', JSON.stringify(maxErr, (_, v) => (typeof v === 'number' ? Number(v.toExponential(2)) : v)));
  });
});
