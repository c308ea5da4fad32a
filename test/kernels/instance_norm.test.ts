// Instance norm: CPU reference vs finite differences; GPU vs CPU reference on odd, non-square, batched,
// 1x1 and 512x1024 maps; accumulate/overwrite; partial backward; bad input.
import { describe, it, expect, afterAll } from 'vitest';
import { testContext } from '../helpers/gpu.js';
import { expectClose } from '../helpers/compare.js';
import { checkGradient } from '../helpers/gradcheck.js';
import { Rng } from '../../src/runtime/random.js';
import { GpuContext, destroyDispatches } from '../../src/runtime/context.js';
import type { Tensor } from '../../src/runtime/tensor.js';
import { instanceNormForward, instanceNormBackward } from '../../src/kernels/instance_norm.js';
import { instanceNormForwardCpu, instanceNormBackwardCpu } from '../../src/kernels/cpu/instance_norm.js';

const size = (s: readonly number[]) => s.reduce((a, b) => a * b, 1);

describe('instance norm CPU reference vs finite differences', () => {
  for (const shape of [[2, 3, 3, 4], [1, 2, 1, 3], [2, 2, 1, 1]]) {
    for (const affine of [false, true]) {
      it(`${shape.join('x')} affine ${affine}`, () => {
        const rng = new Rng(size(shape) + (affine ? 100 : 0));
        const C = shape[1];
        const x = Float64Array.from(rng.normals(size(shape), 1.5));
        const w = Float64Array.from(rng.normals(size(shape)));
        const gamma = affine ? Float64Array.from(rng.normals(C), (v) => v + 1) : null;
        const beta = affine ? Float64Array.from(rng.normals(C)) : null;
        const fwd = (xx: ArrayLike<number>, g: ArrayLike<number> | null, b: ArrayLike<number> | null) => instanceNormForwardCpu(xx, shape, g, b).y;
        const saved = instanceNormForwardCpu(x, shape, gamma, beta);
        const grads = instanceNormBackwardCpu(w, x, shape, saved.mean, saved.rstd, gamma);
        checkGradient({ label: 'instance_norm dx', x, f: (xx) => fwd(xx, gamma, beta), analytic: grads.dx, weights: w });
        if (gamma && beta) {
          checkGradient({ label: 'instance_norm dgamma', x: gamma, f: (g) => fwd(x, g, beta), analytic: grads.dgamma, weights: w });
          checkGradient({ label: 'instance_norm dbeta', x: beta, f: (b) => fwd(x, gamma, b), analytic: grads.dbeta, weights: w });
        }
      });
    }
  }
});

// 1x1 maps, odd and non-square, batch > 1, channels not multiples of 4, one long strided row.
const SHAPES = [
  [1, 1, 1, 1],
  [2, 3, 5, 7],
  [3, 5, 1, 1],
  [1, 7, 13, 4],
  [2, 3, 9, 2],
  [1, 2, 181, 257],
];

describe('instance norm GPU vs CPU reference', async () => {
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

  for (const shape of SHAPES) {
    for (const affine of [false, true]) {
      it(`${shape.join('x')} affine ${affine}, backward accumulating`, async () => {
        const rng = new Rng(size(shape) * 2 + (affine ? 1 : 0));
        const [N, C] = shape;
        const xd = rng.normals(size(shape), 3).map((v) => v + 2); // |mean| ~ std: the variance is two-pass
        const dyd = rng.normals(size(shape));
        const gd = affine ? rng.normals(C).map((v) => v + 1) : null;
        const bd = affine ? rng.normals(C) : null;
        const x = t(shape, xd, 'x'), y = t(shape, undefined, 'y'), mean = t([N * C]), rstd = t([N * C]);
        const gamma = gd ? t([C], gd, 'gamma') : null, beta = bd ? t([C], bd, 'beta') : null;
        const dy = t(shape, dyd, 'dy');
        const dx = t(shape, new Float32Array(size(shape)).fill(0.5), 'dx');
        const dgamma = affine ? t([C], new Float32Array(C).fill(0.25)) : null;
        const dbeta = affine ? t([C], new Float32Array(C).fill(0.25)) : null;
        const ds = [
          ...instanceNormForward(ctx, y, mean, rstd, x, gamma, beta, { eps: 1e-5 }),
          ...instanceNormBackward(ctx, dx, dgamma, dbeta, dy, x, mean, rstd, gamma, { accumulate: true }),
        ];
        await ctx.run(ds);
        const ref = instanceNormForwardCpu(xd, shape, gd, bd, 1e-5);
        const g = instanceNormBackwardCpu(dyd, xd, shape, ref.mean, ref.rstd, gd);
        // fp32 sums over up to 46k values: ~1e-6 relative error in the statistics; y, dx are O(1).
        close(await y.read(), ref.y, { atol: 2e-5, rtol: 1e-4, label: 'y' });
        close(await mean.read(), ref.mean, { atol: 1e-5, rtol: 1e-5, label: 'mean' });
        close(await rstd.read(), ref.rstd, { atol: 1e-5, rtol: 1e-4, label: 'rstd' });
        close(await dx.read(), g.dx.map((v) => v + 0.5), { atol: 1e-4, rtol: 1e-3, label: 'dx' });
        if (dgamma && dbeta) {
          // Sums of N*H*W products of O(1): absolute error grows with the count.
          close(await dgamma.read(), g.dgamma.map((v) => v + 0.25), { atol: 1e-3, rtol: 1e-4, label: 'dgamma' });
          close(await dbeta.read(), g.dbeta.map((v) => v + 0.25), { atol: 1e-3, rtol: 1e-4, label: 'dbeta' });
        }
        destroyDispatches(ds);
      });
    }
  }

  it('a 512x1024 map with |mean| = 1000 std (two-pass variance), batch 2, overwriting gradients', async () => {
    const shape = [1, 2, 512, 1024];
    const rng = new Rng(5);
    // mean 50, std 0.05: E[x²] - mean² would cancel 2500 - 2500 to ~2e-4 in fp32, the variance is 2.5e-3.
    const xd = rng.normals(size(shape), 0.05).map((v) => v + 50);
    const dyd = rng.normals(size(shape));
    const x = t(shape, xd), y = t(shape), mean = t([2]), rstd = t([2]), dy = t(shape, dyd);
    const dx = t(shape, new Float32Array(size(shape)).fill(7)), dgamma = t([2], [7, 7]), dbeta = t([2], [7, 7]);
    const gamma = t([2], [1.5, 0.5]), beta = t([2], [0, 1]);
    const ds = [
      ...instanceNormForward(ctx, y, mean, rstd, x, gamma, beta),
      ...instanceNormBackward(ctx, dx, dgamma, dbeta, dy, x, mean, rstd, gamma, { accumulate: false }),
    ];
    await ctx.run(ds);
    const ref = instanceNormForwardCpu(xd, shape, [1.5, 0.5], [0, 1]);
    const g = instanceNormBackwardCpu(dyd, xd, shape, ref.mean, ref.rstd, [1.5, 0.5]);
    // The mean near 50 is stored in fp32 (half an ulp = 1.9e-6); times rstd = 20 that is up to 4e-5 in y
    // and in xhat, and Σ dy * xhat over 524k values carries that offset times Σ dy (~700): ~0.03 in dgamma.
    close(await rstd.read(), ref.rstd, { atol: 0, rtol: 1e-4, label: 'rstd (512x1024)' });
    close(await y.read(), ref.y, { atol: 1e-4, rtol: 1e-4, label: 'y (512x1024)' });
    close(await dx.read(), g.dx, { atol: 2e-3, rtol: 1e-3, label: 'dx (512x1024)' });
    close(await dgamma.read(), g.dgamma, { atol: 0.05, rtol: 1e-4, label: 'dgamma (512x1024)' });
    close(await dbeta.read(), g.dbeta, { atol: 0.05, rtol: 1e-4, label: 'dbeta (512x1024)' });
    destroyDispatches(ds);
  });

  it('a 1x1 map has variance 0: y = beta, dx = 0, dgamma = 0, dbeta = Σ dy', async () => {
    const x = t([2, 3, 1, 1], [1, 2, 3, 4, 5, 6]), y = t([2, 3, 1, 1]), mean = t([6]), rstd = t([6]);
    const gamma = t([3], [2, 2, 2]), beta = t([3], [0.5, -1, 3]);
    const dy = t([2, 3, 1, 1], [1, 2, 3, 4, 5, 6]), dx = t([2, 3, 1, 1], [9, 9, 9, 9, 9, 9]), dgamma = t([3]), dbeta = t([3]);
    const ds = [...instanceNormForward(ctx, y, mean, rstd, x, gamma, beta), ...instanceNormBackward(ctx, dx, dgamma, dbeta, dy, x, mean, rstd, gamma)];
    await ctx.run(ds);
    expect(Array.from(await y.read())).toEqual([0.5, -1, 3, 0.5, -1, 3]);
    expect(Array.from(await dx.read())).toEqual([0, 0, 0, 0, 0, 0]);
    expect(Array.from(await dgamma.read())).toEqual([0, 0, 0]);
    expect(Array.from(await dbeta.read())).toEqual([5, 7, 9]);
    destroyDispatches(ds);
  });

  it('dx-only and parameters-only backward give the same gradients as the full one', async () => {
    const shape = [2, 3, 4, 5];
    const rng = new Rng(77);
    const xd = rng.normals(size(shape)), dyd = rng.normals(size(shape)), gd = rng.normals(3);
    const x = t(shape, xd), y = t(shape), mean = t([6]), rstd = t([6]), gamma = t([3], gd), beta = t([3]);
    const dy = t(shape, dyd), dx = t(shape), dgamma = t([3]), dbeta = t([3]);
    const ds = [
      ...instanceNormForward(ctx, y, mean, rstd, x, gamma, beta),
      ...instanceNormBackward(ctx, dx, null, null, dy, x, mean, rstd, gamma),
      ...instanceNormBackward(ctx, null, dgamma, dbeta, dy, x, mean, rstd, gamma),
    ];
    await ctx.run(ds);
    const ref = instanceNormForwardCpu(xd, shape, gd, new Float64Array(3));
    const g = instanceNormBackwardCpu(dyd, xd, shape, ref.mean, ref.rstd, gd);
    close(await dx.read(), g.dx, { atol: 1e-5, rtol: 1e-4, label: 'dx' });
    close(await dgamma.read(), g.dgamma, { atol: 1e-5, rtol: 1e-4, label: 'dgamma' });
    close(await dbeta.read(), g.dbeta, { atol: 1e-5, rtol: 1e-4, label: 'dbeta' });
    destroyDispatches(ds);
  });

  it('rejects bad input, naming the op, expected and actual', () => {
    const x = t([2, 3, 4, 4], undefined, 'x'), y = t([2, 3, 4, 4], undefined, 'y'), m6 = t([6], undefined, 'm6'), m3 = t([3], undefined, 'm3');
    const g4 = t([4], undefined, 'g4'), g3 = t([3], undefined, 'g3');
    const fwd = 'instance_norm\\.forward';
    const bwd = 'instance_norm\\.backward';
    expect(() => instanceNormForward(ctx, y, m3, m6, x, null, null)).toThrow(new RegExp(`${fwd}: mean 'm3' shape: expected \\[6\\], got \\[3\\]`));
    expect(() => instanceNormForward(ctx, y, m6, m3, x, null, null)).toThrow(new RegExp(`${fwd}: rstd 'm3' shape: expected \\[6\\], got \\[3\\]`));
    expect(() => instanceNormForward(ctx, t([2, 3, 4, 5], undefined, 'y5'), m6, m6, x, null, null)).toThrow(/y 'y5' shape: expected \[2, 3, 4, 4\], got \[2, 3, 4, 5\]/);
    expect(() => instanceNormForward(ctx, y, m6, m6, x, g4, g4)).toThrow(new RegExp(`${fwd}: gamma 'g4' shape: expected \\[3\\], got \\[4\\]`));
    expect(() => instanceNormForward(ctx, y, m6, m6, x, g3, null)).toThrow(/affine parameters: expected both gamma and beta, or neither, got only gamma/);
    expect(() => instanceNormForward(ctx, t([6, 4, 4]), m6, m6, t([6, 4, 4]), null, null)).toThrow(new RegExp(`${fwd}: x rank \\(NCHW\\): expected 4, got 3`));
    expect(() => instanceNormBackward(ctx, x, null, null, y, x, m6, m6, null)).toThrow(new RegExp(`${bwd}: dx aliasing dy or x`));
    expect(() => instanceNormBackward(ctx, null, null, null, y, x, m6, m6, null)).toThrow(/outputs: expected dx and\/or dgamma\+dbeta, got none/);
    expect(() => instanceNormBackward(ctx, t([2, 3, 4, 4]), g3, null, y, x, m6, m6, null)).toThrow(/parameter gradients: expected both dgamma and dbeta/);
    expect(() => instanceNormBackward(ctx, t([2, 3, 4, 4]), null, null, t([2, 3, 4, 3], undefined, 'dy3'), x, m6, m6, null)).toThrow(/dy 'dy3' shape: expected \[2, 3, 4, 4\], got \[2, 3, 4, 3\]/);
    const gone = t([2, 3, 4, 4], undefined, 'gone');
    gone.destroy();
    expect(() => instanceNormForward(ctx, y, m6, m6, gone, null, null)).toThrow(new RegExp(`${fwd}: x 'gone' used after destroy\\(\\)`));
    const other = new GpuContext(ctx.device, false);
    const foreign = other.tensor([6], undefined, 'foreign');
    expect(() => instanceNormForward(ctx, y, foreign, m6, x, null, null)).toThrow(new RegExp(`${fwd}: mean 'foreign' belongs to another device/context`));
    expect(() => instanceNormBackward(ctx, t([2, 3, 4, 4]), null, null, y, x, m6, foreign, null)).toThrow(new RegExp(`${bwd}: rstd 'foreign' belongs to another device/context`));
    foreign.destroy();
    other.destroy();
  });

  it('reports its largest errors', () => {
    console.log('instance norm, max abs error GPU vs float64 CPU:', JSON.stringify(maxErr, (_, v) => (typeof v === 'number' ? Number(v.toExponential(2)) : v)));
  });
});
