import shader from '../../shaders/adam.wgsl';
import type { Dispatch, GpuContext } from '../runtime/context.js';
import type { Tensor } from '../runtime/tensor.js';
import { ShapeError } from '../runtime/errors.js';

const WG = 256;

export interface AdamOptions {
  lr: number;
  beta1?: number;
  beta2?: number;
  eps?: number;
  /** 1-based step count t (torch's state['step'] after the increment). */
  step: number;
}

interface AdamConstants {
  n: number;
  beta1: number;
  beta2: number;
  eps: number;
}

const adamConstants = new WeakMap<Dispatch, AdamConstants>();

/** Per-step uniforms in float64: step size lr / (1 - b1^t) and 1 / sqrt(1 - b2^t). */
function stepUniforms(c: AdamConstants, lr: number, step: number): number[] {
  if (!Number.isInteger(step) || step < 1) throw new ShapeError('adam', 'step', 'an integer >= 1', step);
  // torch.optim.Adam refuses these too ("Invalid learning rate", "Invalid epsilon value").
  if (!(lr >= 0) || !Number.isFinite(lr)) throw new ShapeError('adam', 'lr', 'a finite value >= 0', lr);
  const bc1 = 1 - c.beta1 ** step;
  const bc2 = 1 - c.beta2 ** step;
  return [lr / bc1, 1 / Math.sqrt(bc2), c.beta1, c.beta2, 1 - c.beta1, 1 - c.beta2, c.eps];
}

/**
 * One torch.optim.Adam update of `param` from `grad`, with moment buffers m and v (zero-initialised):
 * Kingma & Ba 2015, Algorithm 1, in the arrangement of torch 1.13 `_single_tensor_adam`
 * (denom = sqrt(v) / sqrt(1 - b2^t) + eps, eps added after the bias correction).
 */
export function adamStep(ctx: GpuContext, param: Tensor, grad: Tensor, m: Tensor, v: Tensor, o: AdamOptions): Dispatch[] {
  const op = 'adam.step';
  ctx.checkTensor(param, op, undefined, 'param');
  ctx.checkTensor(grad, op, param.shape, 'grad');
  ctx.checkTensor(m, op, param.shape, 'm');
  ctx.checkTensor(v, op, param.shape, 'v');
  const all = [param, grad, m, v];
  if (all.some((a, i) => all.some((b, j) => j > i && a.overlaps(b)))) throw new ShapeError(op, 'param, grad, m, v', 'four distinct tensors', 'aliased tensors');
  const c: AdamConstants = { n: param.size, beta1: o.beta1 ?? 0.9, beta2: o.beta2 ?? 0.999, eps: o.eps ?? 1e-8 };
  for (const [name, val] of [['beta1', c.beta1], ['beta2', c.beta2]] as const) {
    if (!(val >= 0 && val < 1)) throw new ShapeError(op, name, 'a value in [0, 1)', val);
  }
  if (!(c.eps >= 0) || !Number.isFinite(c.eps)) throw new ShapeError(op, 'eps', 'a finite value >= 0', c.eps);
  // vec4s when every binding starts on a 16-byte boundary and n is a multiple of 4 (the packed parameter ranges).
  const vec4 = c.n % 4 === 0 && all.every((t) => t.offset % 16 === 0);
  const d = ctx.kernel({
    op,
    shader,
    entryPoint: vec4 ? 'main4' : 'main',
    constants: { WG },
    u32: [c.n],
    f32: stepUniforms(c, o.lr, o.step),
    bindings: [
      { tensor: param, access: 'rw' },
      { tensor: grad, access: 'read' },
      { tensor: m, access: 'rw' },
      { tensor: v, access: 'rw' },
    ],
    workgroups: ctx.grid(vec4 ? c.n / 4 : c.n, WG),
  });
  adamConstants.set(d, c);
  return [d];
}

/** Rewrite recorded Adam dispatches for step t with learning rate lr (no allocation). */
export function updateAdam(dispatches: readonly Dispatch[], o: { lr: number; step: number }): void {
  for (const d of dispatches) {
    const c = adamConstants.get(d);
    if (!c) throw new ShapeError('updateAdam', `dispatch '${d.op}'`, 'an adam.step dispatch', d.op);
    d.setUniforms([c.n], stepUniforms(c, o.lr, o.step));
  }
}
