/**
 * The losses pix2pix trains with, all with mean reduction as torch's defaults:
 * BCEWithLogitsLoss (vanilla GAN), MSELoss (lsgan) and L1Loss (λ·L1 towards the target image).
 * Forward writes the scalar loss into a [1] tensor; backward writes scale · dLoss/dx, where `scale`
 * carries the caller's weight (0.5 for the D loss, λ for L1) so no extra scaling kernel is needed.
 */
import type { Dispatch, GpuContext } from '../runtime/context.js';
import type { Tensor } from '../runtime/tensor.js';
import { reduceTerms, termGradient } from './reduce.js';

export interface LossBackwardOptions {
  scale?: number;
  accumulate?: boolean;
}

/** loss = mean(max(x, 0) - x t + log(1 + exp(-|x|))): torch's numerically stable BCEWithLogitsLoss. */
export function bceWithLogitsForward(ctx: GpuContext, loss: Tensor, logits: Tensor, target: number | Tensor): Dispatch[] {
  return reduceTerms(ctx, 'bce_with_logits.forward', loss, logits, 'bce', target, 1 / logits.size);
}

/** dlogits (+)= scale · (sigmoid(x) - t) / n. */
export function bceWithLogitsBackward(ctx: GpuContext, dlogits: Tensor, logits: Tensor, target: number | Tensor, o: LossBackwardOptions = {}): Dispatch[] {
  return termGradient(ctx, 'bce_with_logits.backward', dlogits, logits, 'bce', target, (o.scale ?? 1) / logits.size, !!o.accumulate);
}

/** loss = mean((x - t)²). */
export function mseLossForward(ctx: GpuContext, loss: Tensor, x: Tensor, target: number | Tensor): Dispatch[] {
  return reduceTerms(ctx, 'mse_loss.forward', loss, x, 'mse', target, 1 / x.size);
}

/** dx (+)= scale · 2 (x - t) / n. */
export function mseLossBackward(ctx: GpuContext, dx: Tensor, x: Tensor, target: number | Tensor, o: LossBackwardOptions = {}): Dispatch[] {
  return termGradient(ctx, 'mse_loss.backward', dx, x, 'mse', target, (o.scale ?? 1) / x.size, !!o.accumulate);
}

/** loss = mean(|x - t|). */
export function l1LossForward(ctx: GpuContext, loss: Tensor, x: Tensor, target: Tensor): Dispatch[] {
  return reduceTerms(ctx, 'l1_loss.forward', loss, x, 'l1', target, 1 / x.size);
}

/** dx (+)= scale · sign(x - t) / n, with sign(0) = 0 as torch. */
export function l1LossBackward(ctx: GpuContext, dx: Tensor, x: Tensor, target: Tensor, o: LossBackwardOptions = {}): Dispatch[] {
  return termGradient(ctx, 'l1_loss.backward', dx, x, 'l1', target, (o.scale ?? 1) / x.size, !!o.accumulate);
}
