import shader from '../../shaders/activation.wgsl';
import type { Dispatch, GpuContext } from '../runtime/context.js';
import type { Tensor } from '../runtime/tensor.js';
import { ShapeError } from '../runtime/errors.js';

/** The activations pix2pix uses. LeakyReLU's slope is 0.2 in the reference networks. */
export type Activation = 'relu' | 'leaky_relu' | 'tanh' | 'sigmoid';

const ACT_CODE: Record<Activation, number> = { relu: 0, leaky_relu: 1, tanh: 2, sigmoid: 3 };
const WG = 256;

/** Whether backward needs the forward input (x) or output (y) to form the derivative. */
export function activationBackwardNeeds(act: Activation): 'x' | 'y' {
  return act === 'tanh' || act === 'sigmoid' ? 'y' : 'x';
}

/** y = act(x). */
export function activationForward(ctx: GpuContext, y: Tensor, x: Tensor, act: Activation, slope = 0.2): Dispatch[] {
  const op = `${act}.forward`;
  ctx.checkTensor(x, op, undefined, 'x');
  ctx.checkTensor(y, op, x.shape, 'y');
  return [ctx.kernel({
    op,
    shader,
    entryPoint: 'forward',
    constants: { WG, ACT: ACT_CODE[act] },
    u32: [x.size, 0],
    f32: [slope],
    bindings: [
      { tensor: x, access: 'read' },
      { tensor: y, access: 'rw' },
    ],
    workgroups: ctx.grid(x.size, WG),
  })];
}

/**
 * dx (+)= dy * act'(.). `saved` is the forward input x for ReLU/LeakyReLU and the forward output y for
 * tanh/sigmoid (see {@link activationBackwardNeeds}); both are cheaper than recomputing.
 */
export function activationBackward(
  ctx: GpuContext,
  dx: Tensor,
  dy: Tensor,
  saved: Tensor,
  act: Activation,
  opts: { slope?: number; accumulate?: boolean } = {},
): Dispatch[] {
  const op = `${act}.backward`;
  ctx.checkTensor(dy, op, undefined, 'dy');
  ctx.checkTensor(saved, op, dy.shape, activationBackwardNeeds(act));
  ctx.checkTensor(dx, op, dy.shape, 'dx');
  if (dx === dy && opts.accumulate) throw new ShapeError(op, 'dx aliasing dy with accumulate', 'distinct tensors', 'the same tensor');
  return [ctx.kernel({
    op,
    shader,
    entryPoint: 'backward',
    constants: { WG, ACT: ACT_CODE[act] },
    u32: [dy.size, opts.accumulate ? 1 : 0],
    f32: [opts.slope ?? 0.2],
    bindings: [
      { tensor: saved, access: 'read' },
      { tensor: dx, access: 'rw' },
      { tensor: dy, access: 'read' },
    ],
    workgroups: ctx.grid(dy.size, WG),
  })];
}
