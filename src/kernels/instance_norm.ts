/**
 * InstanceNorm2d as torch (affine optional, no running statistics as pix2pix uses it): each (n, c) map
 * is normalised by its own mean and biased variance. Forward saves mean and rstd = 1/sqrt(var + eps)
 * per (n, c) for backward. A 1x1 map has variance 0, so y = beta there (torch refuses 1x1 maps in
 * training; pix2pix's U-Net never normalises one).
 *
 * Reductions (shaders/norm.wgsl, shared with batch norm): one workgroup per (n, c) row; its threads
 * stride over the row's H*W values and tree-reduce in workgroup memory, so a 512x1024 row costs 2048
 * loads per thread and a 1x1 row one. The variance is two-pass (mean first, then the mean of squared
 * deviations): E[x²] - mean² cancels catastrophically in fp32 when |mean| >> std (tested at 1000 std).
 * Welford's update would be as accurate in one read of x, but merging (count, mean, M2) triples across
 * the tree (Chan et al. 1979) costs three shared arrays and a division per merge; the second read of a
 * row that was just read is cheap, and the two-pass form is the plain definition torch also uses on CPU.
 */
import type { Dispatch, GpuContext } from '../runtime/context.js';
import type { Tensor } from '../runtime/tensor.js';
import { checkNormBackward, checkNormForward, normGeometry, recordNormBackward, recordNormForward, type FusedActivation, type FusedDropout } from './norm_common.js';

/**
 * y = (x - mean) * rstd * gamma + beta per (n, c) map; writes mean and rstd ([N*C]) for backward.
 * gamma and beta ([C]) are both given or both null.
 */
export function instanceNormForward(
  ctx: GpuContext,
  y: Tensor,
  mean: Tensor,
  rstd: Tensor,
  x: Tensor,
  gamma: Tensor | null,
  beta: Tensor | null,
  o: { eps?: number; activation?: FusedActivation; dropout?: FusedDropout } = {},
): Dispatch[] {
  const op = 'instance_norm.forward';
  ctx.checkTensor(x, op, undefined, 'x');
  const g = normGeometry(op, x, true);
  checkNormForward(ctx, op, g, y, mean, rstd, x, gamma, beta);
  return recordNormForward(ctx, op, g, y, mean, rstd, x, gamma, beta, { eps: o.eps ?? 1e-5, batchStats: true, activation: o.activation, dropout: o.dropout });
}

/**
 * dx (+)= gamma * rstd * (dy - mean(dy) - xhat * mean(dy * xhat)), dgamma (+)= Σ dy * xhat,
 * dbeta (+)= Σ dy (sums over n, h, w). Pass null for the gradients nobody needs (dx, or dgamma + dbeta).
 * `accumulate` (+=) applies to dx, and to dgamma/dbeta unless `accumulateParams` says otherwise.
 */
export function instanceNormBackward(
  ctx: GpuContext,
  dx: Tensor | null,
  dgamma: Tensor | null,
  dbeta: Tensor | null,
  dy: Tensor,
  x: Tensor,
  mean: Tensor,
  rstd: Tensor,
  gamma: Tensor | null,
  o: { accumulate?: boolean; accumulateParams?: boolean; activation?: { fused: FusedActivation; y: Tensor }; dropout?: FusedDropout } = {},
): Dispatch[] {
  const op = 'instance_norm.backward';
  ctx.checkTensor(x, op, undefined, 'x');
  const g = normGeometry(op, x, true);
  checkNormBackward(ctx, op, dx, dgamma, dbeta, dy, x, mean, rstd, gamma, g.groups);
  return recordNormBackward(ctx, op, g, dx, dgamma, dbeta, dy, x, mean, rstd, gamma, { accumulate: !!o.accumulate, accumulateParams: o.accumulateParams ?? !!o.accumulate, batchStats: true, activation: o.activation, dropout: o.dropout });
}
