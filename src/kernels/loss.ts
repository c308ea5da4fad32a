/**
 * The losses pix2pix trains with, all with mean reduction as torch's defaults:
 * BCEWithLogitsLoss (vanilla GAN), MSELoss (lsgan) and L1Loss (λ·L1 towards the target image).
 * Forward writes the scalar loss into a [1] tensor with a two-pass tree reduction (src/kernels/reduce.ts),
 * accurate for 512x1024x3 maps. Backward writes scale · dLoss/dx, where `scale` carries the caller's
 * weight (0.5 for the D loss, λ for L1) so no extra scaling kernel is needed.
 */
import lossShader from '../../shaders/loss.wgsl';
import type { Dispatch, GpuContext } from '../runtime/context.js';
import type { Tensor } from '../runtime/tensor.js';
import { ShapeError } from '../runtime/errors.js';
import { REDUCE_WG, reduceTerms, reductionShader } from './reduce.js';

/** Loss codes of shaders/loss.wgsl. */
const LOSS_CODE = { bce: 0, mse: 1, l1: 2 } as const;
type LossKind = keyof typeof LOSS_CODE;

export interface LossBackwardOptions {
  /** Multiplies the gradient (the loss's weight in the total objective). Default 1. */
  scale?: number;
  /** Add into dx instead of overwriting it. */
  accumulate?: boolean;
}

function lossForward(ctx: GpuContext, op: string, kind: LossKind, loss: Tensor, x: Tensor, target: number | Tensor): Dispatch[] {
  ctx.checkTensor(x, op, undefined, 'x');
  return reduceTerms(ctx, op, loss, x, target, 1 / x.size, { source: lossShader, constants: { LOSS: LOSS_CODE[kind] } });
}

function lossBackward(ctx: GpuContext, op: string, kind: LossKind, dx: Tensor, x: Tensor, target: number | Tensor, o: LossBackwardOptions): Dispatch[] {
  ctx.checkTensor(x, op, undefined, 'x');
  ctx.checkTensor(dx, op, x.shape, 'dx');
  const scalar = typeof target === 'number';
  if (scalar) {
    if (!Number.isFinite(target)) throw new ShapeError(op, 'target', 'a finite number', target);
  } else {
    ctx.checkTensor(target, op, x.shape, 'target');
  }
  if (dx === x || dx === target) throw new ShapeError(op, 'dx aliasing x or target', 'distinct tensors', 'the same tensor');
  const scale = o.scale ?? 1;
  if (!Number.isFinite(scale)) throw new ShapeError(op, 'scale', 'a finite number', scale);
  return [
    ctx.kernel({
      op,
      shader: reductionShader(lossShader),
      entryPoint: scalar ? 'backward_scalar' : 'backward_tensor',
      constants: { WG: REDUCE_WG, LOSS: LOSS_CODE[kind] },
      u32: [x.size, 0, o.accumulate ? 1 : 0],
      f32: [scalar ? target : 0, scale / x.size],
      bindings: [
        { tensor: dx, access: 'rw' },
        { tensor: x, access: 'read' },
        ...(scalar ? [] : [{ tensor: target, access: 'read' as const }]),
      ],
      workgroups: ctx.grid(x.size, REDUCE_WG),
    }),
  ];
}

/** loss = mean(max(x, 0) - x t + log(1 + exp(-|x|))): torch's numerically stable BCEWithLogitsLoss. */
export function bceWithLogitsForward(ctx: GpuContext, loss: Tensor, logits: Tensor, target: number | Tensor): Dispatch[] {
  return lossForward(ctx, 'bce_with_logits.forward', 'bce', loss, logits, target);
}

/** dlogits (+)= scale · (sigmoid(x) - t) / n. */
export function bceWithLogitsBackward(ctx: GpuContext, dlogits: Tensor, logits: Tensor, target: number | Tensor, o: LossBackwardOptions = {}): Dispatch[] {
  return lossBackward(ctx, 'bce_with_logits.backward', 'bce', dlogits, logits, target, o);
}

/** loss = mean((x - t)²). */
export function mseLossForward(ctx: GpuContext, loss: Tensor, x: Tensor, target: number | Tensor): Dispatch[] {
  return lossForward(ctx, 'mse_loss.forward', 'mse', loss, x, target);
}

/** dx (+)= scale · 2 (x - t) / n. */
export function mseLossBackward(ctx: GpuContext, dx: Tensor, x: Tensor, target: number | Tensor, o: LossBackwardOptions = {}): Dispatch[] {
  return lossBackward(ctx, 'mse_loss.backward', 'mse', dx, x, target, o);
}

/** loss = mean(|x - t|). */
export function l1LossForward(ctx: GpuContext, loss: Tensor, x: Tensor, target: Tensor): Dispatch[] {
  return lossForward(ctx, 'l1_loss.forward', 'l1', loss, x, target);
}

/** dx (+)= scale · sign(x - t) / n, with sign(0) = 0 as torch. */
export function l1LossBackward(ctx: GpuContext, dx: Tensor, x: Tensor, target: Tensor, o: LossBackwardOptions = {}): Dispatch[] {
  return lossBackward(ctx, 'l1_loss.backward', 'l1', dx, x, target, o);
}
