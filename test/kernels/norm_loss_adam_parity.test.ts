// PyTorch parity (fixtures from scripts/fixtures/kernels.py, float64 torch 1.13) for instance norm,
// batch norm in train and eval mode, the three losses and 5 Adam steps. The test logs the max abs error
// per value; measured on lavapipe, 2026-11-26: instance norm y 4.1e-7, dx 3.3e-7, dgamma/dbeta 1.3e-6;
// batch norm train y 4.3e-7, dx 1.8e-7, dgamma/dbeta 1.2e-6, running var 7.6e-8; eval y 2.9e-7;
// BCE loss 4.5e-8, grads 1.3e-9; MSE loss 4.6e-7; L1 loss 4.1e-8, grad exact; Adam (5 steps) 1.6e-7.
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

type Case = Record<string, FixtureTensor>;
const maxErrors: Record<string, number> = {};
/** expectClose, remembering the largest error per label (kind of value) for the log line at the end. */
function close(got: ArrayLike<number>, want: ArrayLike<number>, o: { atol: number; rtol: number; label: string }): void {
  const key = o.label.replace(/ step \d+$/, '');
  maxErrors[key] = Math.max(maxErrors[key] ?? 0, expectClose(got, want, o));
}
const fx = loadFixture<Record<string, Case & Record<string, unknown>>>('kernels');

describe('PyTorch parity: norms, losses, Adam', async () => {
  const ctx = await testContext();
  const own: Tensor[] = [];
  const t = (f: FixtureTensor | number[], data?: ArrayLike<number>) => {
    const x = Array.isArray(f) ? ctx.tensor(f, data) : ctx.tensor(f.shape, f.data);
    own.push(x);
    return x;
  };

  for (const name of ['instance_norm_plain', 'instance_norm_affine']) {
    it(name, async () => {
      const c = fx[name];
      const [N, C] = c.x.shape;
      const x = t(c.x), y = t(c.x.shape), mean = t([N * C]), rstd = t([N * C]), dy = t(c.dy), dx = t(c.x.shape);
      const gamma = c.gamma ? t(c.gamma) : null, beta = c.beta ? t(c.beta) : null;
      const dgamma = c.gamma ? t([C]) : null, dbeta = c.gamma ? t([C]) : null;
      const ds = [...instanceNormForward(ctx, y, mean, rstd, x, gamma, beta), ...instanceNormBackward(ctx, dx, dgamma, dbeta, dy, x, mean, rstd, gamma)];
      await ctx.run(ds);
      close(await y.read(), c.y.data, { atol: 2e-6, rtol: 1e-5, label: `${name} y` });
      close(await dx.read(), c.dx.data, { atol: 5e-6, rtol: 1e-4, label: `${name} dx` });
      if (dgamma && dbeta) {
        close(await dgamma.read(), c.dgamma.data, { atol: 1e-5, rtol: 1e-5, label: `${name} dgamma` });
        close(await dbeta.read(), c.dbeta.data, { atol: 1e-5, rtol: 1e-5, label: `${name} dbeta` });
      }
      destroyDispatches(ds);
    });
  }

  for (const [name, training] of [['batch_norm_train', true], ['batch_norm_eval', false]] as const) {
    it(name, async () => {
      const c = fx[name];
      const C = c.x.shape[1];
      const x = t(c.x), y = t(c.x.shape), mean = t([C]), rstd = t([C]), dy = t(c.dy), dx = t(c.x.shape);
      const gamma = t(c.gamma), beta = t(c.beta), dgamma = t([C]), dbeta = t([C]);
      const rm = t(training ? c.running_mean_before : c.running_mean);
      const rv = t(training ? c.running_var_before : c.running_var);
      const ds = [...batchNormForward(ctx, y, mean, rstd, x, gamma, beta, rm, rv, { training }), ...batchNormBackward(ctx, dx, dgamma, dbeta, dy, x, mean, rstd, gamma, { training })];
      await ctx.run(ds);
      close(await y.read(), c.y.data, { atol: 2e-6, rtol: 1e-5, label: `${name} y` });
      close(await dx.read(), c.dx.data, { atol: 5e-6, rtol: 1e-4, label: `${name} dx` });
      close(await dgamma.read(), c.dgamma.data, { atol: 1e-5, rtol: 1e-5, label: `${name} dgamma` });
      close(await dbeta.read(), c.dbeta.data, { atol: 1e-5, rtol: 1e-5, label: `${name} dbeta` });
      if (training) {
        close(await rm.read(), c.running_mean_after.data, { atol: 1e-6, rtol: 1e-6, label: 'running_mean' });
        close(await rv.read(), c.running_var_after.data, { atol: 1e-6, rtol: 1e-6, label: 'running_var' });
      }
      destroyDispatches(ds);
    });
  }

  for (const name of ['bce_real', 'bce_fake', 'bce_tensor', 'mse_real', 'l1']) {
    it(`loss ${name}`, async () => {
      const c = fx[`loss_${name}`] as Case & { loss: number };
      const x = t(c.x), target = t(c.target), loss = t([1]), dx = t(c.x.shape);
      const [fwd, bwd] = name.startsWith('bce') ? [bceWithLogitsForward, bceWithLogitsBackward] : name.startsWith('mse') ? [mseLossForward, mseLossBackward] : [l1LossForward, l1LossBackward];
      const ds = [...fwd(ctx, loss, x, target), ...bwd(ctx, dx, x, target)];
      await ctx.run(ds);
      close(await loss.read(), [c.loss], { atol: 1e-6, rtol: 1e-6, label: `${name} loss` });
      close(await dx.read(), c.dx.data, { atol: 1e-8, rtol: 1e-5, label: `${name} dx` });
      destroyDispatches(ds);
    });
  }

  it('Adam, 5 steps (lr 2e-4, betas 0.5/0.999)', async () => {
    const c = fx.adam as unknown as { p0: FixtureTensor; grads: FixtureTensor[]; params: FixtureTensor[]; lr: number; beta1: number; beta2: number; eps: number };
    const n = c.p0.data.length;
    const p = t(c.p0), g = t([n]), m = t([n], new Float32Array(n)), v = t([n], new Float32Array(n));
    const ds = adamStep(ctx, p, g, m, v, { lr: c.lr, beta1: c.beta1, beta2: c.beta2, eps: c.eps, step: 1 });
    for (let s = 0; s < c.grads.length; s++) {
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
    console.log('max abs error vs PyTorch:', JSON.stringify(maxErrors, (_, v) => (typeof v === 'number' ? Number(v.toExponential(2)) : v)));
  });
});
