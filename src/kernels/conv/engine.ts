// The three conv launches (gather, transposed gather, weight gradient) that conv2d and conv_transpose2d
// build their ops from: resolve the variant (policy.ts), then encode it with that variant's module.
import type { Dispatch, GpuContext } from '../../runtime/context.js';
import type { Tensor } from '../../runtime/tensor.js';
import { encodeBiasGrad } from './bias_grad.js';
import { encodeBlockedGather, encodeBlockedWeightGrad } from './blocked.js';
import type { BlockedTuning, ConvImpl } from './common.js';
import { encodeDirectGather, encodeDirectWeightGrad } from './direct.js';
import type { ConvGeometry } from './params.js';
import { resolveImpl } from './policy.js';
import { encodeTapsWeightGrad } from './taps.js';
import { encodeTiledGather, encodeTiledWeightGrad } from './tiled.js';

function encodeAnyGather(
  kind: 'gather' | 'transposed',
  ctx: GpuContext,
  op: string,
  dst: Tensor,
  src: Tensor,
  wgt: Tensor,
  bias: Tensor | null,
  g: ConvGeometry,
  accumulate: boolean,
  implChoice: ConvImpl | 'auto',
  tuning: BlockedTuning,
): Dispatch {
  const t = { dst, src, wgt, bias };
  const r = resolveImpl(ctx, implChoice, kind, g, !!bias, tuning, op);
  if (r.impl === 'direct') return encodeDirectGather(ctx, op, kind, t, g, accumulate);
  if (r.impl === 'blocked') return encodeBlockedGather(ctx, op, kind, t, g, accumulate, r.tuning);
  return encodeTiledGather(ctx, op, kind, t, g, accumulate);
}

/** dst (+)= bias + gather-convolution(src, wgt). */
export function encodeGather(
  ctx: GpuContext, op: string, dst: Tensor, src: Tensor, wgt: Tensor, bias: Tensor | null, g: ConvGeometry,
  accumulate: boolean, implChoice: ConvImpl | 'auto', tuning: BlockedTuning = {},
): Dispatch {
  return encodeAnyGather('gather', ctx, op, dst, src, wgt, bias, g, accumulate, implChoice, tuning);
}

/** dst (+)= bias + transposed-gather-convolution(src, wgt). */
export function encodeTransposedGather(
  ctx: GpuContext, op: string, dst: Tensor, src: Tensor, wgt: Tensor, bias: Tensor | null, g: ConvGeometry,
  accumulate: boolean, implChoice: ConvImpl | 'auto', tuning: BlockedTuning = {},
): Dispatch {
  return encodeAnyGather('transposed', ctx, op, dst, src, wgt, bias, g, accumulate, implChoice, tuning);
}

/**
 * dst[m, c, kh, kw] (+)= sum grad[n, m, oh, ow] * src[n, c, oh*sh - ph + kh, ow*sw - pw + kw], and when
 * `gradSum` is given, gradSum[m] (+)= sum grad[n, m, :, :] (conv2d's bias gradient; the blocked and taps
 * kernels compute it as one more column, the others add a bias_grad dispatch).
 */
export function encodeWeightGrad(
  ctx: GpuContext, op: string, dst: Tensor, grad: Tensor, src: Tensor, g: ConvGeometry, accumulate: boolean,
  implChoice: ConvImpl | 'auto', gradSum: Tensor | null = null, tuning: BlockedTuning = {},
): Dispatch[] {
  const t = { dst, grad, src, gradSum };
  const r = resolveImpl(ctx, implChoice, 'weightGrad', g, !!gradSum, tuning, op);
  if (r.impl === 'blocked') return encodeBlockedWeightGrad(ctx, op, t, g, accumulate, r.tuning);
  if (r.impl === 'taps') return encodeTapsWeightGrad(ctx, op, t, g, accumulate, r.tuning);
  const out = r.impl === 'direct' ? [encodeDirectWeightGrad(ctx, op, t, g, accumulate)] : encodeTiledWeightGrad(ctx, op, t, g, accumulate);
  if (gradSum) out.push(encodeBiasGrad(ctx, op, gradSum, grad, accumulate));
  return out;
}
