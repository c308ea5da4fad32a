// PyTorch parity on committed fixtures (scripts/fixtures/kernels.py, float64 torch 1.13): instance norm
// (plain, affine, mean 1000 std from 0), batch norm in train mode (affine with running statistics;
// plain over 1x1 maps with N = 2) and eval mode, BCE-with-logits / MSE / L1 values and gradients
// (scalar and tensor targets, L1 ties), and 5 Adam steps with lr 2e-4, betas (0.5, 0.999).
// Two checks per case: the GPU kernel in fp32 against torch, and the float64 CPU reference against torch
// (to 1e-12: the same math in the same precision), so the CPU references are proven independently of
// the GPU. The test logs the largest GPU error per value kind; measured on lavapipe, see the final report.
import { describe, it } from 'vitest';
import { testContext } from '../helpers/gpu.js';
import { expectClose } from '../helpers/compare.js';
import { loadFixture, type FixtureTensor } from '../helpers/fixtures.js';
import { destroyDispatches } from '../../src/runtime/context.js';
import type { Tensor } from '../../src/runtime/tensor.js';
import { instanceNormForward, instanceNormBackward } from '../../src/kernels/instance_norm.js';
import { batchNormForward, batchNormBackward } from '../../src/kernels/batch_norm.js';
import { bceWithLogitsForward, bceWithLogitsBackward, mseLossForward, mseLossBackward, l1LossForward, l1LossBackward } from '../../src/kernels/loss.js';
import { adamStep, updateAdam } from '../../src/kernels/adam.js';
import { instanceNormForwardCpu, instanceNormBackwardCpu } from '../../src/kernels/cpu/instance_norm.js';
import { batchNormForwardCpu, batchNormBackwardCpu } from '../../src/kernels/cpu/batch_norm.js';
import { lossForwardCpu, lossBackwardCpu, type LossKind } from '../../src/kernels/cpu/loss.js';
import { adamStepCpu } from '../../src/kernels/cpu/adam.js';

type Case = Record<string, FixtureTensor>;
const fx = loadFixture<Record<string, Case & Record<string, unknown>>>('kernels');
const maxErrors: Record<string, number> = {};
/** expectClose, remembering the largest GPU error per value kind for the log line at the end. */
function close(got: ArrayLike<number>, want: ArrayLike<number>, o: { atol: number; rtol: number; label: string }): void {
  const key = o.label.replace(/ step \d+$/, '');
  maxErrors[key] = Math.max(maxErrors[key] ?? 0, expectClose(got, want, o));
}
/** Float64 CPU reference vs float64 torch: only summation order differs. */
const cpuClose = (got: ArrayLike<number>, want: ArrayLike<number>, label: string) => expectClose(got, want, { atol: 1e-12, rtol: 1e-10, label: `CPU reference ${label}` });
const opt = (c: Case, k: string) => (c[k] ? c[k].data : null);

describe('PyTorch parity: norms, losses, Adam', async () => {
  const ctx = await testContext();
  const own: Tensor[] = [];
  const t = (f: FixtureTensor | number[], data?: ArrayLike<number>) => {
    const x = Array.isArray(f) ? ctx.tensor(f, data) : ctx.tensor(f.shape, f.data);
    own.push(x);
    return x;
  };

  // y: fp32 statistics of O(100) values: ~4e-7. In the offset case (x ~ 50 +- 0.05) both the float64
  // input and the mean round to fp32 (half an ulp at 50 is 1.9e-6 each), times rstd * gamma <= 20 * 1.5:
  // up to 1.2e-4 in y. A one-pass E[x²] - mean² variance would be off by ~10% here (~5e-2 in y).
  // dgamma sums dy * xhat over 256 values, so it carries ~16 times xhat's error.
  for (const [name, yTol, dTol] of [
    ['instance_norm_plain', 2e-6, 1e-5],
    ['instance_norm_affine', 2e-6, 1e-5],
    ['instance_norm_offset', 2e-4, 1e-3],
  ] as const) {
    it(name, async () => {
      const c = fx[name];
      const [N, C] = c.x.shape;
      const ref = instanceNormForwardCpu(c.x.data, c.x.shape, opt(c, 'gamma'), opt(c, 'beta'));
      const g = instanceNormBackwardCpu(c.dy.data, c.x.data, c.x.shape, ref.mean, ref.rstd, opt(c, 'gamma'));
      cpuClose(ref.y, c.y.data, `${name} y`);
      cpuClose(g.dx, c.dx.data, `${name} dx`);
      if (c.gamma) {
        cpuClose(g.dgamma, c.dgamma.data, `${name} dgamma`);
        cpuClose(g.dbeta, c.dbeta.data, `${name} dbeta`);
      }
      const x = t(c.x), y = t(c.x.shape), mean = t([N * C]), rstd = t([N * C]), dy = t(c.dy), dx = t(c.x.shape);
      const gamma = c.gamma ? t(c.gamma) : null, beta = c.beta ? t(c.beta) : null;
      const dgamma = c.gamma ? t([C]) : null, dbeta = c.gamma ? t([C]) : null;
      const ds = [...instanceNormForward(ctx, y, mean, rstd, x, gamma, beta), ...instanceNormBackward(ctx, dx, dgamma, dbeta, dy, x, mean, rstd, gamma)];
      await ctx.run(ds);
      close(await y.read(), c.y.data, { atol: yTol, rtol: 1e-5, label: `${name} y` });
      close(await dx.read(), c.dx.data, { atol: dTol, rtol: 1e-4, label: `${name} dx` });
      if (dgamma && dbeta) {
        close(await dgamma.read(), c.dgamma.data, { atol: dTol, rtol: 1e-5, label: `${name} dgamma` });
        close(await dbeta.read(), c.dbeta.data, { atol: 1e-5, rtol: 1e-5, label: `${name} dbeta` });
      }
      destroyDispatches(ds);
    });
  }

  for (const [name, training] of [['batch_norm_train', true], ['batch_norm_train_plain_1x1', true], ['batch_norm_eval', false]] as const) {
    it(name, async () => {
      const c = fx[name];
      const C = c.x.shape[1];
      const rmData = training ? c.running_mean_before : c.running_mean;
      const rvData = training ? c.running_var_before : c.running_var;
      const ref = batchNormForwardCpu(c.x.data, c.x.shape, opt(c, 'gamma'), opt(c, 'beta'), rmData.data, rvData.data, { training });
      const g = batchNormBackwardCpu(c.dy.data, c.x.data, c.x.shape, ref.mean, ref.rstd, opt(c, 'gamma'), { training });
      cpuClose(ref.y, c.y.data, `${name} y`);
      cpuClose(g.dx, c.dx.data, `${name} dx`);
      if (c.gamma) {
        cpuClose(g.dgamma, c.dgamma.data, `${name} dgamma`);
        cpuClose(g.dbeta, c.dbeta.data, `${name} dbeta`);
      }
      if (training) {
        cpuClose(ref.runningMean!, c.running_mean_after.data, `${name} running_mean`);
        cpuClose(ref.runningVar!, c.running_var_after.data, `${name} running_var`);
      }
      const x = t(c.x), y = t(c.x.shape), mean = t([C]), rstd = t([C]), dy = t(c.dy), dx = t(c.x.shape);
      const gamma = c.gamma ? t(c.gamma) : null, beta = c.beta ? t(c.beta) : null;
      const dgamma = c.gamma ? t([C]) : null, dbeta = c.gamma ? t([C]) : null;
      const rm = t(rmData), rv = t(rvData);
      const ds = [
        ...batchNormForward(ctx, y, mean, rstd, x, gamma, beta, rm, rv, { training }),
        ...batchNormBackward(ctx, dx, dgamma, dbeta, dy, x, mean, rstd, gamma, { training }),
      ];
      await ctx.run(ds);
      close(await y.read(), c.y.data, { atol: 2e-6, rtol: 1e-5, label: `${name} y` });
      close(await dx.read(), c.dx.data, { atol: 5e-6, rtol: 1e-4, label: `${name} dx` });
      if (dgamma && dbeta) {
        close(await dgamma.read(), c.dgamma.data, { atol: 1e-5, rtol: 1e-5, label: `${name} dgamma` });
        close(await dbeta.read(), c.dbeta.data, { atol: 1e-5, rtol: 1e-5, label: `${name} dbeta` });
      }
      if (training) {
        close(await rm.read(), c.running_mean_after.data, { atol: 1e-6, rtol: 1e-6, label: `${name} running_mean` });
        close(await rv.read(), c.running_var_after.data, { atol: 1e-6, rtol: 1e-6, label: `${name} running_var` });
      }
      destroyDispatches(ds);
    });
  }

  const LOSSES: [string, LossKind, number | null][] = [
    // [fixture, kind, scalar target equal to the fixture's constant target tensor, or null]
    ['bce_real', 'bce', 1],
    ['bce_fake', 'bce', 0],
    ['bce_tensor', 'bce', null],
    ['mse_real', 'mse', 1],
    ['mse_tensor', 'mse', null],
    ['l1', 'l1', null],
    ['l1_ties', 'l1', null],
  ];
  const FORWARD = { bce: bceWithLogitsForward, mse: mseLossForward, l1: l1LossForward };
  const BACKWARD = { bce: bceWithLogitsBackward, mse: mseLossBackward, l1: l1LossBackward };
  for (const [name, kind, scalarTarget] of LOSSES) {
    it(`loss ${name}${scalarTarget === null ? '' : ' (tensor and scalar target)'}`, async () => {
      const c = fx[`loss_${name}`] as Case & { loss: number };
      cpuClose([lossForwardCpu(kind, c.x.data, c.target.data)], [c.loss], `${name} loss`);
      cpuClose(lossBackwardCpu(kind, c.x.data, c.target.data), c.dx.data, `${name} dx`);
      const x = t(c.x), target = t(c.target), loss = t([1]), dx = t(c.x.shape), lossS = t([1]), dxS = t(c.x.shape);
      const ds = [...FORWARD[kind](ctx, loss, x, target), ...BACKWARD[kind](ctx, dx, x, target)];
      if (scalarTarget !== null && kind !== 'l1') {
        ds.push(...FORWARD[kind](ctx, lossS, x, scalarTarget), ...BACKWARD[kind](ctx, dxS, x, scalarTarget));
      }
      await ctx.run(ds);
      close(await loss.read(), [c.loss], { atol: 1e-6, rtol: 1e-6, label: `${name} loss` });
      close(await dx.read(), c.dx.data, { atol: 1e-8, rtol: 1e-5, label: `${name} dx` });
      if (scalarTarget !== null) {
        close(await lossS.read(), [c.loss], { atol: 1e-6, rtol: 1e-6, label: `${name} loss` });
        close(await dxS.read(), c.dx.data, { atol: 1e-8, rtol: 1e-5, label: `${name} dx` });
      }
      destroyDispatches(ds);
    });
  }

  it('Adam, 5 steps (lr 2e-4, betas 0.5/0.999), gradients from 1e-2 to 1e2', async () => {
    const c = fx.adam as unknown as { p0: FixtureTensor; grads: FixtureTensor[]; params: FixtureTensor[]; lr: number; beta1: number; beta2: number; eps: number };
    const n = c.p0.data.length;
    const hyper = { lr: c.lr, beta1: c.beta1, beta2: c.beta2, eps: c.eps };
    const ref = { p: Float64Array.from(c.p0.data), m: new Float64Array(n), v: new Float64Array(n) };
    const p = t(c.p0), g = t([n]), m = t([n], new Float32Array(n)), v = t([n], new Float32Array(n));
    const ds = adamStep(ctx, p, g, m, v, { ...hyper, step: 1 });
    for (let s = 0; s < c.grads.length; s++) {
      adamStepCpu(ref.p, c.grads[s].data, ref.m, ref.v, { ...hyper, step: s + 1 });
      cpuClose(ref.p, c.params[s].data, `adam step ${s + 1}`);
      g.write(c.grads[s].data);
      updateAdam(ds, { lr: c.lr, step: s + 1 });
      await ctx.run(ds);
      // Each step moves a parameter by ~lr = 2e-4; fp32 parameters of O(1) resolve it to ~1e-7.
      close(await p.read(), c.params[s].data, { atol: 3e-7, rtol: 1e-6, label: `adam step ${s + 1}` });
    }
    destroyDispatches(ds);
  });

  it('frees its tensors', () => {
    own.forEach((x) => x.destroy());
    console.log('max abs error GPU vs PyTorch:', JSON.stringify(maxErrors, (_, v) => (typeof v === 'number' ? Number(v.toExponential(2)) : v)));
  });
});
