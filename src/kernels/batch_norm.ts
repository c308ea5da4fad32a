/**
 * BatchNorm2d as torch. Training: statistics over (N, H, W) per channel, biased variance to normalise,
 * running statistics updated as running = (1 - momentum) running + momentum batch with the UNBIASED
 * variance. Eval: the running statistics normalise. Forward saves mean and rstd per channel.
 * Training with N*H*W = 1 value per channel is refused, as torch refuses it.
 *
 * Reductions (shaders/norm.wgsl, shared with instance norm): one workgroup per channel, striding over
 * the channel's N rows of H*W values; two-pass variance for the reason given in instance_norm.ts.
 */
import type { Dispatch, GpuContext } from '../runtime/context.js';
import type { Tensor } from '../runtime/tensor.js';
import { ShapeError } from '../runtime/errors.js';
import { checkNormBackward, checkNormForward, normGeometry, recordNormBackward, recordNormForward, type FusedActivation, type FusedDropout } from './norm_common.js';

/**
 * y = (x - mean) * rstd * gamma + beta per channel; writes mean and rstd ([C]) for backward. In
 * training, runningMean/runningVar (both or neither) are updated in place; eval requires them.
 */
export function batchNormForward(
  ctx: GpuContext,
  y: Tensor,
  mean: Tensor,
  rstd: Tensor,
  x: Tensor,
  gamma: Tensor | null,
  beta: Tensor | null,
  runningMean: Tensor | null,
  runningVar: Tensor | null,
  o: { training: boolean; eps?: number; momentum?: number; activation?: FusedActivation; dropout?: FusedDropout },
): Dispatch[] {
  const op = 'batch_norm.forward';
  ctx.checkTensor(x, op, undefined, 'x');
  const g = normGeometry(op, x, false);
  checkNormForward(ctx, op, g, y, mean, rstd, x, gamma, beta);
  if (!!runningMean !== !!runningVar) throw new ShapeError(op, 'running statistics', 'both runningMean and runningVar, or neither', runningMean ? 'only runningMean' : 'only runningVar');
  if (runningMean) ctx.checkTensor(runningMean, op, [g.C], 'runningMean');
  if (runningVar) ctx.checkTensor(runningVar, op, [g.C], 'runningVar');
  // torch: "Expected more than 1 value per channel when training".
  if (o.training && g.m <= 1) throw new ShapeError(op, 'values per channel in training mode (N*H*W)', '> 1', g.m);
  return recordNormForward(ctx, op, g, y, mean, rstd, x, gamma, beta, {
    eps: o.eps ?? 1e-5,
    momentum: o.momentum ?? 0.1,
    batchStats: o.training,
    runningMean,
    runningVar,
    activation: o.activation,
    dropout: o.dropout,
  });
}

/**
 * Training: dx (+)= gamma * rstd * (dy - mean(dy) - xhat * mean(dy * xhat)) over each channel's N*H*W
 * values; eval: dx (+)= gamma * rstd * dy. Both: dgamma (+)= Σ dy * xhat, dbeta (+)= Σ dy. Pass null for
 * the gradients nobody needs. `accumulate` (+=) applies to dx, and to dgamma/dbeta unless `accumulateParams`
 * says otherwise (a second pass that adds to the parameter gradients but writes a fresh dx is one launch).
 */
export function batchNormBackward(
  ctx: GpuContext,
  dx: Tensor | null,
  dgamma: Tensor | null,
  dbeta: Tensor | null,
  dy: Tensor,
  x: Tensor,
  mean: Tensor,
  rstd: Tensor,
  gamma: Tensor | null,
  o: { training: boolean; accumulate?: boolean; accumulateParams?: boolean; activation?: { fused: FusedActivation; y: Tensor }; dropout?: FusedDropout },
): Dispatch[] {
  const op = 'batch_norm.backward';
  ctx.checkTensor(x, op, undefined, 'x');
  const g = normGeometry(op, x, false);
  checkNormBackward(ctx, op, dx, dgamma, dbeta, dy, x, mean, rstd, gamma, g.C);
  return recordNormBackward(ctx, op, g, dx, dgamma, dbeta, dy, x, mean, rstd, gamma, { accumulate: !!o.accumulate, accumulateParams: o.accumulateParams ?? !!o.accumulate, batchStats: o.training, activation: o.activation, dropout: o.dropout });
}
