// Instance norm and batch norm: CPU reference vs finite differences, GPU vs CPU reference on many shapes.
import { describe, it, expect } from 'vitest';
import { testContext } from '../helpers/gpu.js';
import { expectClose } from '../helpers/compare.js';
import { checkGradient } from '../helpers/gradcheck.js';
import { Rng } from '../../src/runtime/random.js';
import { destroyDispatches } from '../../src/runtime/context.js';
import type { Tensor } from '../../src/runtime/tensor.js';
import { instanceNormForward, instanceNormBackward } from '../../src/kernels/instance_norm.js';
import { batchNormForward, batchNormBackward } from '../../src/kernels/batch_norm.js';
import { normForwardCpu, normBackwardCpu, batchNormRunningUpdateCpu } from '../../src/kernels/cpu/norm.js';

const size = (s: readonly number[]) => s.reduce((a, b) => a * b, 1);
const f64 = (a: ArrayLike<number>) => Float64Array.from(a);

describe('norm CPU reference vs finite differences', () => {
  for (const [instance, batchStats, affine] of [
    [true, true, false],
    [true, true, true],
    [false, true, true],
    [false, false, true],
  ] as const) {
    it(`${instance ? 'instance' : 'batch'} norm, ${batchStats ? 'batch' : 'running'} statistics, affine ${affine}`, () => {
      const rng = new Rng(11);
      const shape = [2, 3, 3, 4];
      const x = f64(rng.normals(size(shape), 1.5));
      const w = f64(rng.normals(size(shape)));
      const gamma = affine ? f64(rng.normals(3)).map((v) => v + 1) : null;
      const beta = affine ? f64(rng.normals(3)) : null;
      const running = batchStats ? undefined : { mean: f64(rng.normals(3, 0.3)), var: f64(rng.normals(3)).map((v) => Math.abs(v) + 0.5) };
      const fwd = (xx: Float64Array, g: ArrayLike<number> | null = gamma, bb: ArrayLike<number> | null = beta) => normForwardCpu(xx, shape, { instance, eps: 1e-5, gamma: g, beta: bb, running }).y;
      const saved = normForwardCpu(x, shape, { instance, eps: 1e-5, gamma, beta, running });
      const grads = normBackwardCpu(w, x, shape, saved, { instance, batchStats, gamma });
      checkGradient({ label: 'dx', x, f: (xx) => fwd(xx), analytic: grads.dx, weights: w, atol: 1e-6, rtol: 1e-5 });
      if (gamma && beta) {
        checkGradient({ label: 'dgamma', x: gamma, f: (g) => fwd(x, g), analytic: grads.dgamma, weights: w });
        checkGradient({ label: 'dbeta', x: beta, f: (bb) => fwd(x, gamma, bb), analytic: grads.dbeta, weights: w });
      }
    });
  }
});

// Odd, non-square, batch > 1, channels not multiples of 4, 1x1 maps, one long row (strided reductions).
const SHAPES = [
  [1, 1, 1, 1],
  [2, 3, 5, 7],
  [3, 5, 1, 1],
  [1, 7, 13, 4],
  [2, 3, 9, 2],
  [1, 2, 181, 257],
];

describe('norm GPU vs CPU reference', async () => {
  const ctx = await testContext();
  const own: Tensor[] = [];
  const t = (shape: number[], data?: ArrayLike<number>, label = 't') => {
    const x = ctx.tensor(shape, data, label);
    own.push(x);
    return x;
  };

  for (const shape of SHAPES) {
    for (const affine of [false, true]) {
      it(`instance norm ${shape.join('x')} affine ${affine}`, async () => {
        const rng = new Rng(size(shape) + (affine ? 1 : 0));
        const [N, C] = shape;
        const xd = rng.normals(size(shape), 3).map((v) => v + 2); // |mean| > std: the two-pass variance matters
        const dyd = rng.normals(size(shape));
        const gd = affine ? rng.normals(C).map((v) => v + 1) : null;
        const bd = affine ? rng.normals(C) : null;
        const x = t(shape, xd, 'x');
        const y = t(shape, undefined, 'y');
        const mean = t([N * C], undefined, 'mean');
        const rstd = t([N * C], undefined, 'rstd');
        const gamma = gd ? t([C], gd, 'gamma') : null;
        const beta = bd ? t([C], bd, 'beta') : null;
        const dy = t(shape, dyd, 'dy');
        const dx = t(shape, new Float32Array(size(shape)).fill(0.5), 'dx');
        const dgamma = affine ? t([C], new Float32Array(C).fill(0.25), 'dgamma') : null;
        const dbeta = affine ? t([C], new Float32Array(C).fill(0.25), 'dbeta') : null;
        const ds = [...instanceNormForward(ctx, y, mean, rstd, x, gamma, beta, { eps: 1e-5 })];
        ds.push(...instanceNormBackward(ctx, dx, dgamma, dbeta, dy, x, mean, rstd, gamma, { accumulate: true }));
        await ctx.run(ds);
        const ref = normForwardCpu(xd, shape, { instance: true, eps: 1e-5, gamma: gd, beta: bd });
        const g = normBackwardCpu(dyd, xd, shape, ref, { instance: true, batchStats: true, gamma: gd });
        // fp32 statistics over up to 46k values: ~1e-6 relative; outputs are O(1).
        expectClose(await y.read(), ref.y, { atol: 2e-5, rtol: 1e-4, label: 'instance_norm y' });
        expectClose(await mean.read(), ref.mean, { atol: 1e-5, rtol: 1e-5, label: 'instance_norm mean' });
        expectClose(await rstd.read(), ref.rstd, { atol: 1e-5, rtol: 1e-4, label: 'instance_norm rstd' });
        expectClose(await dx.read(), g.dx.map((v) => v + 0.5), { atol: 1e-4, rtol: 1e-3, label: 'instance_norm dx (accumulate)' });
        if (dgamma && dbeta) {
          expectClose(await dgamma.read(), g.dgamma.map((v) => v + 0.25), { atol: 1e-3, rtol: 1e-4, label: 'dgamma' });
          expectClose(await dbeta.read(), g.dbeta.map((v) => v + 0.25), { atol: 1e-3, rtol: 1e-4, label: 'dbeta' });
        }
        destroyDispatches(ds);
      });
    }
  }

  for (const shape of SHAPES.filter((s) => s[0] * s[2] * s[3] > 1)) {
    it(`batch norm train ${shape.join('x')}: output, running statistics, dx-only and params-only backward`, async () => {
      const rng = new Rng(size(shape) + 5);
      const C = shape[1];
      const xd = rng.normals(size(shape), 2).map((v) => v - 1);
      const dyd = rng.normals(size(shape));
      const gd = rng.normals(C).map((v) => v + 1);
      const bd = rng.normals(C);
      const rmd = rng.normals(C, 0.1);
      const rvd = rng.normals(C).map((v) => Math.abs(v) + 0.5);
      const x = t(shape, xd), y = t(shape), mean = t([C]), rstd = t([C]);
      const gamma = t([C], gd), beta = t([C], bd), rm = t([C], rmd), rv = t([C], rvd);
      const dy = t(shape, dyd), dx = t(shape), dgamma = t([C]), dbeta = t([C]);
      const ds = [...batchNormForward(ctx, y, mean, rstd, x, gamma, beta, rm, rv, { training: true })];
      // Separate dispatch sets for the input and the parameter gradients, as the layer uses them.
      ds.push(...batchNormBackward(ctx, dx, null, null, dy, x, mean, rstd, gamma, { training: true }));
      ds.push(...batchNormBackward(ctx, null, dgamma, dbeta, dy, x, mean, rstd, gamma, { training: true }));
      await ctx.run(ds);
      const ref = normForwardCpu(xd, shape, { instance: false, eps: 1e-5, gamma: gd, beta: bd });
      const g = normBackwardCpu(dyd, xd, shape, ref, { instance: false, batchStats: true, gamma: gd });
      const run = batchNormRunningUpdateCpu(rmd, rvd, ref, size(shape) / C);
      expectClose(await y.read(), ref.y, { atol: 2e-5, rtol: 1e-4, label: 'batch_norm y' });
      expectClose(await rm.read(), run.mean, { atol: 1e-6, rtol: 1e-5, label: 'running_mean' });
      expectClose(await rv.read(), run.var, { atol: 1e-6, rtol: 1e-5, label: 'running_var' });
      expectClose(await dx.read(), g.dx, { atol: 1e-4, rtol: 1e-3, label: 'batch_norm dx' });
      expectClose(await dgamma.read(), g.dgamma, { atol: 1e-3, rtol: 1e-4, label: 'batch_norm dgamma' });
      expectClose(await dbeta.read(), g.dbeta, { atol: 1e-3, rtol: 1e-4, label: 'batch_norm dbeta' });
      destroyDispatches(ds);
    });
  }

  it('batch norm eval uses the running statistics and leaves them alone', async () => {
    const rng = new Rng(3);
    const shape = [2, 5, 3, 7];
    const C = 5;
    const xd = rng.normals(size(shape));
    const dyd = rng.normals(size(shape));
    const gd = rng.normals(C).map((v) => v + 1);
    const bd = rng.normals(C);
    const rmd = rng.normals(C, 0.5);
    const rvd = rng.normals(C).map((v) => Math.abs(v) + 0.5);
    const x = t(shape, xd), y = t(shape), mean = t([C]), rstd = t([C]);
    const gamma = t([C], gd), beta = t([C], bd), rm = t([C], rmd), rv = t([C], rvd);
    const dy = t(shape, dyd), dx = t(shape), dgamma = t([C]), dbeta = t([C]);
    const ds = [...batchNormForward(ctx, y, mean, rstd, x, gamma, beta, rm, rv, { training: false })];
    ds.push(...batchNormBackward(ctx, dx, dgamma, dbeta, dy, x, mean, rstd, gamma, { training: false }));
    await ctx.run(ds);
    const running = { mean: rmd, var: rvd };
    const ref = normForwardCpu(xd, shape, { instance: false, eps: 1e-5, gamma: gd, beta: bd, running });
    const g = normBackwardCpu(dyd, xd, shape, ref, { instance: false, batchStats: false, gamma: gd });
    expectClose(await y.read(), ref.y, { atol: 1e-5, rtol: 1e-5, label: 'bn eval y' });
    expectClose(await rm.read(), rmd, { atol: 0, rtol: 0, label: 'running_mean untouched' });
    expectClose(await dx.read(), g.dx, { atol: 1e-5, rtol: 1e-5, label: 'bn eval dx' });
    expectClose(await dgamma.read(), g.dgamma, { atol: 1e-4, rtol: 1e-5, label: 'bn eval dgamma' });
    destroyDispatches(ds);
  });

  it('instance norm of a 1x1 map gives beta (zero variance)', async () => {
    const x = t([2, 3, 1, 1], [1, 2, 3, 4, 5, 6]), y = t([2, 3, 1, 1]), mean = t([6]), rstd = t([6]);
    const gamma = t([3], [2, 2, 2]), beta = t([3], [0.5, -1, 3]);
    const ds = instanceNormForward(ctx, y, mean, rstd, x, gamma, beta);
    await ctx.run(ds);
    expect(Array.from(await y.read())).toEqual([0.5, -1, 3, 0.5, -1, 3]);
    destroyDispatches(ds);
  });

  it('rejects bad input naming op, expected and actual', () => {
    const x = t([1, 3, 1, 1]), y = t([1, 3, 1, 1]), m3 = t([3]), g4 = t([4]);
    expect(() => batchNormForward(ctx, y, m3, m3, x, null, null, null, null, { training: true })).toThrow(
      /batch_norm\.forward: values per channel in training mode \(N\*H\*W\): expected > 1, got 1/,
    );
    const x2 = t([2, 3, 4, 4]), y2 = t([2, 3, 4, 4]), m6 = t([6]);
    expect(() => instanceNormForward(ctx, y2, m3, m3, x2, null, null)).toThrow(/instance_norm\.forward: mean 't' shape: expected \[6\], got \[3\]/);
    expect(() => instanceNormForward(ctx, y2, m6, m6, x2, g4, g4)).toThrow(/gamma 't' shape: expected \[3\], got \[4\]/);
    expect(() => batchNormForward(ctx, y2, m3, m3, x2, m3, null, null, null, { training: true })).toThrow(/affine parameters: expected both gamma and beta/);
    expect(() => batchNormForward(ctx, y2, m3, m3, x2, null, null, null, null, { training: false })).toThrow(/running statistics for eval mode/);
    expect(() => batchNormBackward(ctx, y2, m3, null, x2, x2, m3, m3, null, { training: true })).toThrow(/parameter gradients: expected both dgamma and dbeta/);
    expect(() => instanceNormBackward(ctx, x2, null, null, y2, x2, m6, m6, null)).toThrow(/dx aliasing dy or x/);
  });

  it('frees its tensors', () => {
    for (const x of own) x.destroy();
  });
});
