// Norm with a fused activation (y = act(norm(x)), backward through act' from y): the float64 reference is
// the composition of the norm and activation references, checked against finite differences; the GPU is
// checked against it for instance and batch norm (train and eval), ReLU and LeakyReLU, serial and tree
// reduction paths, odd/non-square/batched shapes, overwrite and accumulate.
import { describe, it, afterAll } from 'vitest';
import { testContext } from '../helpers/gpu.js';
import { expectClose } from '../helpers/compare.js';
import { checkGradient } from '../helpers/gradcheck.js';
import { Rng } from '../../src/runtime/random.js';
import type { Tensor } from '../../src/runtime/tensor.js';
import { instanceNormBackward, instanceNormForward } from '../../src/kernels/instance_norm.js';
import { batchNormBackward, batchNormForward } from '../../src/kernels/batch_norm.js';
import { instanceNormBackwardCpu, instanceNormForwardCpu } from '../../src/kernels/cpu/instance_norm.js';
import { batchNormBackwardCpu, batchNormForwardCpu } from '../../src/kernels/cpu/batch_norm.js';
import { activationBackwardCpu, activationForwardCpu } from '../../src/kernels/cpu/activation.js';
import type { FusedActivation } from '../../src/kernels/norm_common.js';

const size = (s: readonly number[]) => s.reduce((a, b) => a * b, 1);
type Kind = 'instance' | 'batch-train' | 'batch-eval';

interface Ref {
  y: Float64Array;
  dx: Float64Array;
  dgamma: Float64Array;
  dbeta: Float64Array;
}

/** act(norm(x)) and its gradients for upstream gradient dy, in float64. */
function reference(kind: Kind, act: FusedActivation, x: Float64Array, shape: number[], gamma: Float64Array | null, beta: Float64Array | null, running: [Float64Array, Float64Array], dy: ArrayLike<number>): Ref {
  const slope = act.slope ?? 0.2;
  const fwd =
    kind === 'instance'
      ? instanceNormForwardCpu(x, shape, gamma, beta)
      : batchNormForwardCpu(x, shape, gamma, beta, running[0], running[1], { training: kind === 'batch-train' });
  const y = activationForwardCpu(fwd.y, act.kind, slope);
  const dn = activationBackwardCpu(dy, fwd.y, act.kind, slope);
  const g =
    kind === 'instance'
      ? instanceNormBackwardCpu(dn, x, shape, fwd.mean, fwd.rstd, gamma)
      : batchNormBackwardCpu(dn, x, shape, fwd.mean, fwd.rstd, gamma, { training: kind === 'batch-train' });
  return { y, ...g };
}

describe('fused norm + activation CPU reference vs finite differences', () => {
  for (const kind of ['instance', 'batch-train'] as const) {
    for (const act of [{ kind: 'relu' }, { kind: 'leaky_relu', slope: 0.2 }] as FusedActivation[]) {
      it(`${kind} + ${act.kind}`, () => {
        const shape = [2, 3, 3, 4];
        const rng = new Rng(kind.length * 7 + act.kind.length);
        const x = Float64Array.from(rng.normals(size(shape), 1.5));
        const w = Float64Array.from(rng.normals(size(shape)));
        const gamma = Float64Array.from(rng.normals(3), (v) => v + 1);
        const beta = Float64Array.from(rng.normals(3));
        const running: [Float64Array, Float64Array] = [new Float64Array(3), new Float64Array(3).fill(1)];
        const f = (xx: Float64Array) => reference(kind, act, xx, shape, gamma, beta, running, w).y;
        const r = reference(kind, act, x, shape, gamma, beta, running, w);
        // A central difference across act's kink at 0 is wrong by design; eps 1e-7 keeps every probe on one side here.
        checkGradient({ label: `${kind}+${act.kind} dx`, x, f, analytic: r.dx, weights: w, eps: 1e-7 });
        checkGradient({ label: `${kind}+${act.kind} dgamma`, x: gamma, f: (g) => reference(kind, act, x, shape, g, beta, running, w).y, analytic: r.dgamma, weights: w, eps: 1e-7 });
      });
    }
  }
});

describe('fused norm + activation GPU vs CPU reference', async () => {
  const ctx = await testContext();
  const own: Tensor[] = [];
  const t = (shape: number[], data?: ArrayLike<number>, label = 't') => {
    const x = ctx.tensor(shape, data, label);
    own.push(x);
    return x;
  };
  afterAll(() => own.forEach((x) => x.destroy()));

  // [1, 2, 70, 65]: 4550 values per group, above the serial kernels' 4096 (tree reductions).
  const SHAPES = [[2, 3, 5, 7], [1, 5, 1, 3], [3, 2, 9, 2], [1, 2, 70, 65]];
  for (const kind of ['instance', 'batch-train', 'batch-eval'] as const) {
    for (const act of [{ kind: 'relu' }, { kind: 'leaky_relu', slope: 0.2 }] as FusedActivation[]) {
      for (const shape of SHAPES) {
        it(`${kind} + ${act.kind} ${shape.join('x')}`, async () => {
          const rng = new Rng(size(shape) + kind.length * 31 + act.kind.length);
          const C = shape[1];
          const affine = kind !== 'instance' || shape[0] === 2;
          const x = Float64Array.from(rng.normals(size(shape), 2), (v) => v + 0.3);
          const dy = rng.normals(size(shape), 1);
          const gamma = affine ? Float64Array.from(rng.normals(C, 0.3), (v) => v + 1) : null;
          const beta = affine ? Float64Array.from(rng.normals(C, 0.3)) : null;
          const running: [Float64Array, Float64Array] = [Float64Array.from(rng.normals(C, 0.5)), Float64Array.from(rng.normals(C, 0.2), (v) => 1 + Math.abs(v))];
          const want = reference(kind, act, x, shape, gamma, beta, running, dy);

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
          const seed = rng.normals(size(shape), 1);
          const DX = t(shape, seed, 'dx');
          const zeros = (label: string) => {
            const z = ctx.zeros([C], label);
            own.push(z);
            return z;
          };
          const DG = G ? zeros('dgamma') : null;
          const DB = B ? zeros('dbeta') : null;
          const training = kind !== 'batch-eval';
          const forward =
            kind === 'instance'
              ? instanceNormForward(ctx, Y, mean, rstd, X, G, B, { activation: act })
              : batchNormForward(ctx, Y, mean, rstd, X, G, B, training ? null : RM, training ? null : RV, { training, activation: act });
          const accumulate = shape[0] !== 1;
          const fused = { fused: act, y: Y };
          const backward =
            kind === 'instance'
              ? instanceNormBackward(ctx, DX, DG, DB, DY, X, mean, rstd, G, { accumulate, activation: fused })
              : batchNormBackward(ctx, DX, DG, DB, DY, X, mean, rstd, G, { training, accumulate, activation: fused });
          await ctx.run([...forward, ...backward], 'fused norm');
          const label = `${kind}+${act.kind} ${shape.join('x')}`;
          expectClose(await Y.read(), want.y, { atol: 2e-5, rtol: 2e-5, label: `${label} y` });
          const dxWant = accumulate ? want.dx.map((v, i) => v + seed[i]) : want.dx;
          expectClose(await DX.read(), dxWant, { atol: 5e-5, rtol: 5e-5, label: `${label} dx` });
          if (DG && DB) {
            expectClose(await DG.read(), want.dgamma, { atol: 2e-4, rtol: 5e-5, label: `${label} dgamma` });
            expectClose(await DB.read(), want.dbeta, { atol: 2e-4, rtol: 5e-5, label: `${label} dbeta` });
          }
        });
      }
    }
  }
});
