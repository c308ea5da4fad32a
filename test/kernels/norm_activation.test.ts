// Norm with a fused activation and/or a fused dropout (y = dropout(act(norm(x))), backward dy * mask through
// act' from y and the norm): the float64 reference is the composition of the norm, activation and dropout
// references (the dropout mask reproduced from its seed), checked against finite differences; the GPU is
// checked against it for instance and batch norm (train and eval), ReLU and LeakyReLU, with and without
// dropout, serial and tree reduction paths, odd/non-square/batched shapes, overwrite and accumulate, and
// after setNormDropoutSeed moves the mask.
import { describe, it, expect, afterAll } from 'vitest';
import { testContext } from '../helpers/gpu.js';
import { expectClose } from '../helpers/compare.js';
import { checkGradient } from '../helpers/gradcheck.js';
import { Rng } from '../../src/runtime/random.js';
import type { Tensor } from '../../src/runtime/tensor.js';
import { instanceNormBackward, instanceNormForward } from '../../src/kernels/instance_norm.js';
import { batchNormBackward, batchNormForward } from '../../src/kernels/batch_norm.js';
import { dropoutForward } from '../../src/kernels/dropout.js';
import { instanceNormBackwardCpu, instanceNormForwardCpu } from '../../src/kernels/cpu/instance_norm.js';
import { batchNormBackwardCpu, batchNormForwardCpu } from '../../src/kernels/cpu/batch_norm.js';
import { activationBackwardCpu, activationForwardCpu } from '../../src/kernels/cpu/activation.js';
import { dropoutBackwardCpu, dropoutForwardCpu } from '../../src/kernels/cpu/dropout.js';
import { setNormDropoutSeed, type FusedActivation, type FusedDropout } from '../../src/kernels/norm_common.js';
import { ShapeError } from '../../src/runtime/errors.js';

const size = (s: readonly number[]) => s.reduce((a, b) => a * b, 1);
type Kind = 'instance' | 'batch-train' | 'batch-eval';
const RELU: FusedActivation = { kind: 'relu' };
const LEAKY: FusedActivation = { kind: 'leaky_relu', slope: 0.2 };

interface Ref {
  y: Float64Array;
  dx: Float64Array;
  dgamma: Float64Array;
  dbeta: Float64Array;
}

/** dropout(act(norm(x))) (either part may be absent) and its gradients for upstream gradient dy, in float64. */
function reference(kind: Kind, act: FusedActivation | null, drop: FusedDropout | null, x: Float64Array, shape: number[], gamma: Float64Array | null, beta: Float64Array | null, running: [Float64Array, Float64Array], dy: ArrayLike<number>): Ref {
  const training = kind !== 'batch-eval';
  const fwd = kind === 'instance' ? instanceNormForwardCpu(x, shape, gamma, beta) : batchNormForwardCpu(x, shape, gamma, beta, running[0], running[1], { training });
  const a = act ? activationForwardCpu(fwd.y, act.kind, act.slope ?? 0.2) : fwd.y;
  const y = drop ? dropoutForwardCpu(a, drop.p, drop.seed) : a;
  const da = drop ? dropoutBackwardCpu(dy, drop.p, drop.seed) : dy;
  const dn = act ? activationBackwardCpu(da, fwd.y, act.kind, act.slope ?? 0.2) : da;
  const g = kind === 'instance' ? instanceNormBackwardCpu(dn, x, shape, fwd.mean, fwd.rstd, gamma) : batchNormBackwardCpu(dn, x, shape, fwd.mean, fwd.rstd, gamma, { training });
  return { y: Float64Array.from(y), ...g };
}

const fusedName = (act: FusedActivation | null, drop: FusedDropout | null) => `${act ? ` + ${act.kind}` : ''}${drop ? ' + dropout' : ''}`;

describe('fused norm + activation / dropout CPU reference vs finite differences', () => {
  const FUSED: [FusedActivation | null, FusedDropout | null][] = [[RELU, null], [LEAKY, null], [null, { p: 0.4, seed: 1234 }], [LEAKY, { p: 0.4, seed: 1234 }]];
  for (const kind of ['instance', 'batch-train'] as const) {
    for (const [act, drop] of FUSED) {
      it(`${kind}${fusedName(act, drop)}`, () => {
        const shape = [2, 3, 3, 4];
        const rng = new Rng(drop ? kind.length * 5 + (act ? 1 : 0) : kind.length * 7 + act!.kind.length);
        const x = Float64Array.from(rng.normals(size(shape), 1.5));
        const w = Float64Array.from(rng.normals(size(shape)));
        const gamma = Float64Array.from(rng.normals(3), (v) => v + 1);
        const beta = Float64Array.from(rng.normals(3));
        const running: [Float64Array, Float64Array] = [new Float64Array(3), new Float64Array(3).fill(1)];
        const r = reference(kind, act, drop, x, shape, gamma, beta, running, w);
        // Some elements are dropped and the rest scaled: the mask is part of what the check covers.
        if (drop) expect(r.y.some((v) => v === 0)).toBe(true);
        const label = `${kind}${fusedName(act, drop)}`;
        // A central difference across act's kink at 0 is wrong by design; eps 1e-7 keeps every probe on one side here.
        checkGradient({ label: `${label} dx`, x, f: (xx) => reference(kind, act, drop, xx, shape, gamma, beta, running, w).y, analytic: r.dx, weights: w, eps: 1e-7 });
        checkGradient({ label: `${label} dgamma`, x: gamma, f: (g) => reference(kind, act, drop, x, shape, g, beta, running, w).y, analytic: r.dgamma, weights: w, eps: 1e-7 });
      });
    }
  }
});

describe('fused norm + activation / dropout GPU vs CPU reference', async () => {
  const ctx = await testContext();
  const own: Tensor[] = [];
  const t = (shape: number[], data?: ArrayLike<number>, label = 't') => {
    const x = ctx.tensor(shape, data, label);
    own.push(x);
    return x;
  };
  afterAll(() => own.forEach((x) => x.destroy()));

  /** Record forward + backward with the fused parts; `reseed` moves the dropout mask with setNormDropoutSeed before running. */
  async function check(kind: Kind, act: FusedActivation | null, shape: number[], drop: FusedDropout | null, reseed?: number) {
    const rng = new Rng(size(shape) + kind.length * 31 + (drop ? (act ? 7 : 0) : act!.kind.length));
    const C = shape[1];
    const affine = kind !== 'instance' || shape[0] === 2;
    const x = Float64Array.from(rng.normals(size(shape), 2), (v) => v + 0.3);
    const dy = rng.normals(size(shape), 1);
    const gamma = affine ? Float64Array.from(rng.normals(C, 0.3), (v) => v + 1) : null;
    const beta = affine ? Float64Array.from(rng.normals(C, 0.3)) : null;
    const running: [Float64Array, Float64Array] = [Float64Array.from(rng.normals(C, 0.5)), Float64Array.from(rng.normals(C, 0.2), (v) => 1 + Math.abs(v))];
    const want = reference(kind, act, drop && { p: drop.p, seed: reseed ?? drop.seed }, x, shape, gamma, beta, running, dy);
    const X = t(shape, x, 'x');
    const Y = t(shape, undefined, 'y');
    const groups = kind === 'instance' ? shape[0] * C : C;
    const mean = t([groups], undefined, 'mean');
    const rstd = t([groups], undefined, 'rstd');
    const G = gamma ? t([C], gamma, 'gamma') : null;
    const B = beta ? t([C], beta, 'beta') : null;
    const RM = t([C], running[0], 'running_mean');
    const RV = t([C], running[1], 'running_var');
    const DY = t(shape, dy, 'dy');
    const prior = rng.normals(size(shape), 1);
    const DX = t(shape, prior, 'dx');
    const DG = G ? t([C], new Float32Array(C), 'dgamma') : null;
    const DB = B ? t([C], new Float32Array(C), 'dbeta') : null;
    const training = kind !== 'batch-eval';
    const activation = act ?? undefined;
    const dropout = drop ?? undefined;
    const forward =
      kind === 'instance'
        ? instanceNormForward(ctx, Y, mean, rstd, X, G, B, { activation, dropout })
        : batchNormForward(ctx, Y, mean, rstd, X, G, B, training ? null : RM, training ? null : RV, { training, activation, dropout });
    const accumulate = shape[0] !== 1;
    const fused = act ? { fused: act, y: Y } : undefined;
    const backward =
      kind === 'instance'
        ? instanceNormBackward(ctx, DX, DG, DB, DY, X, mean, rstd, G, { accumulate, activation: fused, dropout })
        : batchNormBackward(ctx, DX, DG, DB, DY, X, mean, rstd, G, { training, accumulate, activation: fused, dropout });
    if (reseed !== undefined) setNormDropoutSeed([...forward, ...backward], reseed);
    await ctx.run([...forward, ...backward], 'fused norm');
    const label = `${kind}${fusedName(act, drop)} ${shape.join('x')}`;
    expectClose(await Y.read(), want.y, { atol: 2e-5, rtol: 2e-5, label: `${label} y` });
    const dxWant = accumulate ? want.dx.map((v, i) => v + prior[i]) : want.dx;
    expectClose(await DX.read(), dxWant, { atol: 5e-5, rtol: 5e-5, label: `${label} dx` });
    if (DG && DB) {
      expectClose(await DG.read(), want.dgamma, { atol: 2e-4, rtol: 5e-5, label: `${label} dgamma` });
      expectClose(await DB.read(), want.dbeta, { atol: 2e-4, rtol: 5e-5, label: `${label} dbeta` });
    }
  }

  // [1, 2, 70, 65]: 4550 values per group, above the serial kernels' 4096 (tree reductions). Without dropout
  // both activations on four shapes; with dropout (p 0.5) none or ReLU on two.
  const CASES: [FusedActivation | null, FusedDropout | null, number[][]][] = [
    [RELU, null, [[2, 3, 5, 7], [1, 5, 1, 3], [3, 2, 9, 2], [1, 2, 70, 65]]],
    [LEAKY, null, [[2, 3, 5, 7], [1, 5, 1, 3], [3, 2, 9, 2], [1, 2, 70, 65]]],
    [null, { p: 0.5, seed: 77 }, [[2, 3, 5, 7], [1, 2, 70, 65]]],
    [RELU, { p: 0.5, seed: 77 }, [[2, 3, 5, 7], [1, 2, 70, 65]]],
  ];
  for (const kind of ['instance', 'batch-train', 'batch-eval'] as const) {
    for (const [act, drop, shapes] of CASES) {
      for (const shape of shapes) {
        it(`${kind}${fusedName(act, drop)} ${shape.join('x')}`, async () => {
          await check(kind, act, shape, drop);
        });
      }
    }
  }

  it('setNormDropoutSeed moves the mask of forward and backward together', async () => {
    await check('instance', null, [2, 3, 5, 7], { p: 0.5, seed: 77 }, 0xdeadbeef);
    await check('batch-train', RELU, [2, 3, 5, 7], { p: 0.3, seed: 5 }, 9);
  });

  it("draws the separate dropout kernel's mask for the same seed", async () => {
    const shape = [1, 4, 6, 6];
    const x = new Rng(3).normals(size(shape), 1);
    const X = t(shape, x, 'x');
    const N1 = t(shape, undefined, 'norm');
    const D1 = t(shape, undefined, 'dropped');
    const Y = t(shape, undefined, 'fused');
    const stats = () => [t([4], undefined, 'mean'), t([4], undefined, 'rstd')] as const;
    const [m1, r1] = stats();
    const [m2, r2] = stats();
    await ctx.run(
      [...instanceNormForward(ctx, N1, m1, r1, X, null, null), ...dropoutForward(ctx, D1, N1, { p: 0.5, seed: 31 }), ...instanceNormForward(ctx, Y, m2, r2, X, null, null, { dropout: { p: 0.5, seed: 31 } })],
      'norm then dropout',
    );
    expect(Array.from(await Y.read())).toEqual(Array.from(await D1.read()));
  });

  it('refuses a probability outside [0, 1), a seed that is no u32, and reseeding a norm without dropout', () => {
    const shape = [1, 2, 4, 4];
    const X = t(shape, undefined, 'x');
    const Y = t(shape, undefined, 'y');
    const mean = t([2], undefined, 'mean');
    const rstd = t([2], undefined, 'rstd');
    expect(() => instanceNormForward(ctx, Y, mean, rstd, X, null, null, { dropout: { p: 1, seed: 1 } })).toThrow(ShapeError);
    expect(() => instanceNormForward(ctx, Y, mean, rstd, X, null, null, { dropout: { p: 0.5, seed: -1 } })).toThrow(ShapeError);
    expect(() => instanceNormBackward(ctx, t(shape), null, null, t(shape), X, mean, rstd, null, { dropout: { p: Number.NaN, seed: 1 } })).toThrow(ShapeError);
    const plain = instanceNormForward(ctx, Y, mean, rstd, X, null, null);
    expect(() => setNormDropoutSeed(plain, 3)).toThrow(/fused dropout/);
    const fused = instanceNormForward(ctx, Y, mean, rstd, X, null, null, { dropout: { p: 0.5, seed: 1 } });
    expect(() => setNormDropoutSeed(fused, 2 ** 32)).toThrow(ShapeError);
  });
});
