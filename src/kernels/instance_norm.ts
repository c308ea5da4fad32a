/**
 * InstanceNorm2d as torch (affine optional, no running statistics as pix2pix uses it): each (n, c) map
 * is normalised by its own mean and biased variance. Forward saves mean and rstd = 1/sqrt(var + eps)
 * per (n, c) for backward.
 */
import type { Dispatch, GpuContext } from '../runtime/context.js';
import type { Tensor } from '../runtime/tensor.js';
import { ShapeError } from '../runtime/errors.js';
import { checkNormBackward, normGeometry, recordNormBackward, recordNormForward } from './norm_common.js';

export function instanceNormForward(
  ctx: GpuContext,
  y: Tensor,
  mean: Tensor,
  rstd: Tensor,
  x: Tensor,
  gamma: Tensor | null,
  beta: Tensor | null,
  o: { eps?: number } = {},
): Dispatch[] {
  const op = 'instance_norm.forward';
  ctx.checkTensor(x, op, undefined, 'x');
  const g = normGeometry(op, x, true);
  ctx.checkTensor(y, op, x.shape, 'y');
  ctx.checkTensor(mean, op, [g.groups], 'mean');
  ctx.checkTensor(rstd, op, [g.groups], 'rstd');
  if (!!gamma !== !!beta) throw new ShapeError(op, 'affine parameters', 'both gamma and beta, or neither', gamma ? 'only gamma' : 'only beta');
  if (gamma) ctx.checkTensor(gamma, op, [g.C], 'gamma');
  if (beta) ctx.checkTensor(beta, op, [g.C], 'beta');
  return recordNormForward(ctx, op, g, y, mean, rstd, x, gamma, beta, { eps: o.eps ?? 1e-5, batchStats: true });
}

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
  o: { accumulate?: boolean } = {},
): Dispatch[] {
  const op = 'instance_norm.backward';
  ctx.checkTensor(x, op, undefined, 'x');
  const g = normGeometry(op, x, true);
  checkNormBackward(ctx, op, dx, dgamma, dbeta, dy, x, mean, rstd, gamma, g.groups);
  return recordNormBackward(ctx, op, g, dx, dgamma, dbeta, dy, x, mean, rstd, gamma, { accumulate: !!o.accumulate, batchStats: true });
}
