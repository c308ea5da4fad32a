// Instance norm: CPU reference vs finite differences and GPU vs CPU reference (checkOp) on odd, non-square,
// batched, 1x1 and 512x1024 maps; accumulate/overwrite; partial backward; bad input.
import { describe, it, expect, afterAll } from 'vitest';
import { testContext } from '../helpers/gpu.js';
import { expectClose } from '../helpers/compare.js';
import { checkOp, type HostTensor, type Named, type OpSpec } from '../helpers/op_check.js';
import { Rng } from '../../src/runtime/random.js';
import { GpuContext, destroyDispatches } from '../../src/runtime/context.js';
import type { Tensor } from '../../src/runtime/tensor.js';
import { instanceNormForward, instanceNormBackward } from '../../src/kernels/instance_norm.js';
import { instanceNormForwardCpu, instanceNormBackwardCpu } from '../../src/kernels/cpu/instance_norm.js';

const size = (s: readonly number[]) => s.reduce((a, b) => a * b, 1);

interface Case {
  shape: number[];
  affine: boolean;
  /** Pre-filled gradients that the backward must add to (every GPU shape), or overwrite. */
  accumulate: boolean;
}

// CPU reference backward vs finite differences (checkOp does it for every case up to 512 values) and
// GPU forward, statistics and gradients vs the CPU reference.
const INSTANCE_NORM: Omit<OpSpec<Case>, 'cases'> = {
  op: 'instance_norm',
  label: (c) => `[${c.shape.join(', ')}] affine ${c.affine}`,
  inputs: (c, rng): Record<string, HostTensor> => {
    const C = c.shape[1];
    const x = { shape: c.shape, data: Float64Array.from(rng.normals(size(c.shape), 3).map((v) => v + 2)) }; // |mean| ~ std: the variance is two-pass
    if (!c.affine) return { x };
    return { x, gamma: { shape: [C], data: Float64Array.from(rng.normals(C).map((v) => v + 1)) }, beta: { shape: [C], data: Float64Array.from(rng.normals(C)) } };
  },
  cpuForward: (c, i) => ({ ...instanceNormForwardCpu(i.x, c.shape, i.gamma ?? null, i.beta ?? null, 1e-5) }),
  cpuBackward: (c, i, dy, saved): Named => {
    const g = instanceNormBackwardCpu(dy, i.x, c.shape, saved.mean, saved.rstd, i.gamma ?? null);
    return c.affine ? { x: g.dx, gamma: g.dgamma, beta: g.dbeta } : { x: g.dx };
  },
  gpuRecord: (ctx, { case: c, inputs, dy, grads, accumulate, tensor }) => {
    const [N, C] = c.shape;
    const y = tensor(c.shape, undefined, 'y'), mean = tensor([N * C], undefined, 'mean'), rstd = tensor([N * C], undefined, 'rstd');
    const gamma = inputs.gamma ?? null;
    return {
      dispatches: [
        ...instanceNormForward(ctx, y, mean, rstd, inputs.x, gamma, inputs.beta ?? null, { eps: 1e-5 }),
        ...instanceNormBackward(ctx, grads.x, grads.gamma ?? null, grads.beta ?? null, dy, inputs.x, mean, rstd, gamma, { accumulate }),
      ],
      outputs: { y, mean, rstd },
    };
  },
  // fp32 sums over up to 46k values: ~1e-6 relative error in the statistics; y, dx are O(1).
  atol: 2e-5,
  rtol: 1e-4,
  gradAtol: 1e-4,
  gradRtol: 1e-3,
  // Sums of N*H*W products of O(1): the parameter gradients' absolute error grows with the count.
  tol: { mean: { atol: 1e-5, rtol: 1e-5 }, rstd: { atol: 1e-5, rtol: 1e-4 }, 'grad:gamma': { atol: 1e-3, rtol: 1e-4 }, 'grad:beta': { atol: 1e-3, rtol: 1e-4 } },
  accumulate: (c) => c.accumulate,
};

// Finite-difference shapes (also run on the GPU, overwriting gradients), then the GPU shapes: 1x1 maps,
// odd and non-square, batch > 1, channels not multiples of 4, one long strided row (accumulating).
const FD_SHAPES = [[2, 3, 3, 4], [1, 2, 1, 3], [2, 2, 1, 1]];
const SHAPES = [
  [1, 1, 1, 1],
  [2, 3, 5, 7],
  [3, 5, 1, 1],
  [1, 7, 13, 4],
  [2, 3, 9, 2],
  [1, 2, 181, 257],
];
const cases = (shapes: number[][], accumulate: boolean): Case[] => shapes.flatMap((shape) => [false, true].map((affine) => ({ shape, affine, accumulate })));

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
  const check = async (list: Case[]) => {
    const r = await checkOp(ctx, { ...INSTANCE_NORM, cases: list });
    for (const [k, v] of Object.entries(r.maxAbs)) maxErr[k] = Math.max(maxErr[k] ?? 0, v);
    return r;
  };

  it('CPU reference backward vs finite differences, GPU vs reference (gradients overwritten)', async () => {
    const r = await check(cases(FD_SHAPES, false));
    expect(r.fdCases).toBe(6);
  });

  for (const shape of SHAPES) {
    it(`${shape.join('x')} affine false and true, backward accumulating`, () => check(cases([shape], true)));
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
