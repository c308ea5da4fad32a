// GroupNorm: CPU reference vs finite differences and GPU vs CPU reference (checkOp) on fixed and random
// shapes (odd, non-square, 1x1, batched, groups from 1 to C, serial and tree kernels, fused activations);
// CPU reference vs torch (test/fixtures/group_norm.json); its two extremes are instance norm (groups = C)
// and layer norm (groups = 1); bad input.
import { describe, it, expect } from 'vitest';
import { testContext } from '../helpers/gpu.js';
import { expectClose } from '../helpers/compare.js';
import { loadFixture, type FixtureTensor } from '../helpers/fixtures.js';
import { checkOp, randomNchwShapes, type HostTensor, type Named, type OpSpec } from '../helpers/op_check.js';
import { Rng } from '../../src/runtime/random.js';
import { destroyDispatches } from '../../src/runtime/context.js';
import type { FusedActivation } from '../../src/kernels/norm_common.js';
import { groupNormBackward, groupNormForward } from '../../src/kernels/group_norm.js';
import { groupNormBackwardCpu, groupNormForwardCpu } from '../../src/kernels/cpu/group_norm.js';
import { instanceNormBackwardCpu, instanceNormForwardCpu } from '../../src/kernels/cpu/instance_norm.js';

interface Case {
  shape: number[];
  groups: number;
  affine: boolean;
  activation?: FusedActivation;
}

const size = (s: readonly number[]) => s.reduce((a, b) => a * b, 1);
const act = (a: FusedActivation | undefined, v: number) => (!a || v > 0 ? v : a.kind === 'relu' ? 0 : v * (a.slope ?? 0.2));

const GROUP_NORM: Omit<OpSpec<Case>, 'cases'> = {
  op: 'group_norm',
  label: (c) => `[${c.shape.join(', ')}] groups ${c.groups}${c.affine ? ' affine' : ''}${c.activation ? ` +${c.activation.kind}` : ''}`,
  inputs: (c, rng): Record<string, HostTensor> => {
    const C = c.shape[1];
    // |mean| ~ std: the variance must be two-pass.
    const x = { shape: c.shape, data: Float64Array.from(rng.normals(size(c.shape), 3).map((v) => v + 2)) };
    if (!c.affine) return { x };
    return { x, gamma: { shape: [C], data: Float64Array.from(rng.normals(C).map((v) => v + 1)) }, beta: { shape: [C], data: Float64Array.from(rng.normals(C)) } };
  },
  cpuForward: (c, i) => {
    const r = groupNormForwardCpu(i.x, c.shape, c.groups, i.gamma ?? null, i.beta ?? null);
    return { y: r.y.map((v) => act(c.activation, v)), mean: r.mean, rstd: r.rstd };
  },
  cpuBackward: (c, i, dy, saved): Named => {
    // Through the fused activation: dy * act'(y) (the sign of y is the sign of its input for a positive slope).
    const dNorm = c.activation ? dy.map((d, k) => (saved.y[k] > 0 ? d : c.activation!.kind === 'relu' ? 0 : d * (c.activation!.slope ?? 0.2))) : dy;
    const g = groupNormBackwardCpu(dNorm, i.x, c.shape, c.groups, saved.mean, saved.rstd, i.gamma ?? null);
    return c.affine ? { x: g.dx, gamma: g.dgamma, beta: g.dbeta } : { x: g.dx };
  },
  gpuRecord: (ctx, { case: c, inputs, dy, grads, accumulate, tensor }) => {
    const N = c.shape[0];
    const y = tensor(c.shape, undefined, 'y'), mean = tensor([N * c.groups], undefined, 'mean'), rstd = tensor([N * c.groups], undefined, 'rstd');
    const gamma = inputs.gamma ?? null;
    const dispatches = [
      ...groupNormForward(ctx, y, mean, rstd, inputs.x, gamma, inputs.beta ?? null, { groups: c.groups, activation: c.activation }),
      ...groupNormBackward(ctx, grads.x, grads.gamma ?? null, grads.beta ?? null, dy, inputs.x, mean, rstd, gamma, {
        groups: c.groups,
        accumulate,
        activation: c.activation ? { fused: c.activation, y } : undefined,
      }),
    ];
    return { dispatches, outputs: { y, mean, rstd } };
  },
  // The instance norm test's tolerances: fp32 sums over up to ~50k values, y and dx O(1); parameter
  // gradients are sums of N*H*W products of O(1), so their absolute error grows with the count.
  atol: 2e-5,
  rtol: 1e-4,
  gradAtol: 1e-4,
  gradRtol: 1e-3,
  tol: { mean: { atol: 1e-5, rtol: 1e-5 }, rstd: { atol: 1e-5, rtol: 1e-4 }, 'grad:gamma': { atol: 1e-3, rtol: 1e-4 }, 'grad:beta': { atol: 1e-3, rtol: 1e-4 } },
};

/** Every divisor of C as a group count, affine on and off. */
function casesFor(shape: number[], extra: Partial<Case> = {}): Case[] {
  const C = shape[1];
  const out: Case[] = [];
  for (let g = 1; g <= C; g++) if (C % g === 0) for (const affine of [false, true]) out.push({ shape, groups: g, affine, ...extra });
  return out;
}

describe('group norm: CPU reference (finite differences) and GPU (vs the reference)', async () => {
  const ctx = await testContext();
  const logged: Record<string, number> = {};
  const run = async (cases: Case[]) => {
    const r = await checkOp(ctx, { ...GROUP_NORM, cases });
    for (const [k, v] of Object.entries(r.maxAbs)) logged[k] = Math.max(logged[k] ?? 0, v);
    return r;
  };

  it('small odd and non-square shapes, every group count (also checked by finite differences)', async () => {
    const r = await run([...casesFor([2, 6, 3, 5]), ...casesFor([1, 4, 1, 3]), ...casesFor([2, 2, 1, 1]), ...casesFor([3, 3, 2, 1])]);
    expect(r.fdCases).toBe(r.gpuCases);
  });

  it('random shapes (seeded): batch 1-3, channels a multiple of the groups', async () => {
    const rng = new Rng(16);
    const cases = randomNchwShapes(1604, 8, { channelMultiple: 2, c: [1, 6], hw: [1, 17] }).map((shape) => {
      const divisors = [...Array(shape[1]).keys()].map((k) => k + 1).filter((g) => shape[1] % g === 0);
      return { shape, groups: rng.pick(divisors), affine: rng.bool() };
    });
    await run(cases);
  });

  it('fused ReLU and LeakyReLU(0.2), forward and backward', async () => {
    await run([
      { shape: [2, 6, 5, 3], groups: 3, affine: true, activation: { kind: 'leaky_relu', slope: 0.2 } },
      { shape: [1, 4, 3, 7], groups: 2, affine: false, activation: { kind: 'relu' } },
      { shape: [2, 8, 40, 36], groups: 2, affine: true, activation: { kind: 'leaky_relu', slope: 0.2 } },
    ]);
  });

  it('groups and rows above the serial threshold take the tree kernels (odd sizes)', async () => {
    // m = 2 * 73 * 71 = 10366 > 4096 per group, and rows of 5183 > 4096: both tree paths.
    const r = await run([
      { shape: [2, 4, 73, 71], groups: 2, affine: true },
      { shape: [1, 3, 67, 65], groups: 1, affine: false },
    ]);
    expect(r.gpuCases).toBe(2);
    const x = ctx.tensor([1, 4, 73, 71]), y = ctx.tensor([1, 4, 73, 71]), m = ctx.tensor([2]), s = ctx.tensor([2]);
    const d = groupNormForward(ctx, y, m, s, x, null, null, { groups: 2 });
    expect(d.length).toBe(2); // stats + normalize (the serial path is one dispatch)
    destroyDispatches(d);
    const small = groupNormForward(ctx, ctx.tensor([1, 4, 3, 3]), ctx.tensor([2]), ctx.tensor([2]), ctx.tensor([1, 4, 3, 3]), null, null, { groups: 2 });
    expect(small.length).toBe(1);
    destroyDispatches(small);
    for (const t of [x, y, m, s]) t.destroy();
  });

  it('reports its largest errors', () => {
    console.log('group norm, max abs error GPU vs float64 CPU:', JSON.stringify(logged, (_, v) => (typeof v === 'number' ? Number(v.toExponential(2)) : v)));
  });
});

describe('group norm extremes', () => {
  const rng = new Rng(3);
  const shape = [2, 5, 4, 3];
  const x = Float64Array.from(rng.normals(size(shape)));
  const dy = Float64Array.from(rng.normals(size(shape)));
  const gamma = Float64Array.from(rng.normals(5));
  const beta = Float64Array.from(rng.normals(5));

  it('groups = C is instance norm (with its per-channel affine), forward and backward', () => {
    const g = groupNormForwardCpu(x, shape, 5, gamma, beta);
    const i = instanceNormForwardCpu(x, shape, gamma, beta);
    expectClose(g.y, i.y, { atol: 1e-12, rtol: 0, label: 'y' });
    const gb = groupNormBackwardCpu(dy, x, shape, 5, g.mean, g.rstd, gamma);
    const ib = instanceNormBackwardCpu(dy, x, shape, i.mean, i.rstd, gamma);
    for (const k of ['dx', 'dgamma', 'dbeta'] as const) expectClose(gb[k], ib[k], { atol: 1e-12, rtol: 0, label: k });
  });

  it('groups = 1 is layer norm over (C, H, W) with a per-channel affine', () => {
    const g = groupNormForwardCpu(x, shape, 1, gamma, beta);
    const per = size(shape.slice(1));
    const want = new Float64Array(x.length);
    for (let n = 0; n < shape[0]; n++) {
      const s = x.subarray(n * per, (n + 1) * per);
      const mu = s.reduce((a, b) => a + b, 0) / per;
      const v = s.reduce((a, b) => a + (b - mu) ** 2, 0) / per;
      s.forEach((val, k) => (want[n * per + k] = ((val - mu) / Math.sqrt(v + 1e-5)) * gamma[Math.floor(k / 12)] + beta[Math.floor(k / 12)]));
    }
    expectClose(g.y, want, { atol: 1e-12, rtol: 0, label: 'layer norm y' });
  });
});

describe('group norm CPU reference vs torch.nn.GroupNorm (scripts/fixtures/group_norm.py)', () => {
  interface TorchCase {
    name: string;
    groups: number;
    eps: number;
    x: FixtureTensor;
    weight: FixtureTensor | null;
    bias: FixtureTensor | null;
    dy: FixtureTensor;
    y: FixtureTensor;
    dx: FixtureTensor;
    dweight: FixtureTensor | null;
    dbias: FixtureTensor | null;
  }
  const fx = loadFixture<{ torch: string; cases: TorchCase[] }>('group_norm');
  it('has cases', () => expect(fx.cases.length).toBeGreaterThanOrEqual(4));
  for (const c of fx.cases) {
    it(`${c.name}: y, dx, dweight, dbias (torch float64)`, () => {
      const f = groupNormForwardCpu(c.x.data, c.x.shape, c.groups, c.weight?.data ?? null, c.bias?.data ?? null, c.eps);
      const tol = { atol: 1e-10, rtol: 1e-9 };
      expectClose(f.y, c.y.data, { ...tol, label: `${c.name} y` });
      const b = groupNormBackwardCpu(c.dy.data, c.x.data, c.x.shape, c.groups, f.mean, f.rstd, c.weight?.data ?? null);
      expectClose(b.dx, c.dx.data, { ...tol, label: `${c.name} dx` });
      if (c.dweight && c.dbias) {
        expectClose(b.dgamma, c.dweight.data, { ...tol, label: `${c.name} dweight` });
        expectClose(b.dbeta, c.dbias.data, { ...tol, label: `${c.name} dbias` });
      }
    });
  }
});

describe('group norm rejects bad input', async () => {
  const ctx = await testContext();
  it('names the op, expected and actual', () => {
    const x = ctx.tensor([2, 6, 3, 3], undefined, 'x'), y = ctx.tensor([2, 6, 3, 3], undefined, 'y');
    const m4 = ctx.tensor([4], undefined, 'm4'), m6 = ctx.tensor([6], undefined, 'm6'), g5 = ctx.tensor([5], undefined, 'g5');
    expect(() => groupNormForward(ctx, y, m4, m4, x, null, null, { groups: 4 })).toThrow(/group_norm\.forward: groups \(a divisor of the 6 channels\): expected a divisor of 6, got 4/);
    expect(() => groupNormForward(ctx, y, m4, m4, x, null, null, { groups: 0 })).toThrow(/group_norm\.forward: groups/);
    expect(() => groupNormForward(ctx, y, m4, m6, x, null, null, { groups: 3 })).toThrow(/group_norm\.forward: mean 'm4' shape: expected \[6\], got \[4\]/);
    expect(() => groupNormForward(ctx, y, m6, m6, x, g5, g5, { groups: 3 })).toThrow(/gamma 'g5' shape: expected \[6\], got \[5\]/);
    expect(() => groupNormBackward(ctx, x, null, null, y, x, m6, m6, null, { groups: 3 })).toThrow(/group_norm\.backward: dx aliasing dy or x/);
    expect(() => groupNormBackward(ctx, null, null, null, y, x, m6, m6, null, { groups: 3 })).toThrow(/outputs: expected dx and\/or dgamma\+dbeta, got none/);
    expect(() => groupNormForward(ctx, y, m6, m6, x, null, null, { groups: 3, activation: { kind: 'leaky_relu', slope: -1 } })).toThrow(/fused LeakyReLU slope/);
    for (const t of [x, y, m4, m6, g5]) t.destroy();
  });
});
