// The three conv launches (gather, transposed gather, weight gradient) that conv2d and conv_transpose2d
// build their ops from: resolve the variant (policy.ts), then encode it with that variant's module.
import type { Dispatch, GpuContext } from '../../runtime/context.js';
import type { Tensor } from '../../runtime/tensor.js';
import { BIAS_SERIAL_MAX, encodeBiasGrad } from './bias_grad.js';
import { encodeBlockedGather, encodeBlockedWeightGrad } from './blocked.js';
import type { BlockedTuning, ConvImpl } from './common.js';
import { encodeDirectGather, encodeDirectWeightGrad } from './direct.js';
import type { ConvGeometry } from './params.js';
import { resolveImpl } from './policy.js';
import { encodeTapsWeightGrad } from './taps.js';
import { encodeTiledGather, encodeTiledWeightGrad } from './tiled.js';
import { NO_FUSION, type ConvFusion } from './fusion.js';
import { Pix2PixError } from '../../runtime/errors.js';

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
  fusion: ConvFusion,
  saved: Tensor | null,
): Dispatch {
  if (fusion.gradAct) throw new Pix2PixError(op, 'gradAct fuses into the weight gradient only');
  if (!!fusion.dstGrad !== !!saved) throw new Pix2PixError(op, 'the dstGrad epilogue and its saved tensor come together');
  if (fusion.dstGrad && (bias || fusion.outAct)) throw new Pix2PixError(op, 'the dstGrad epilogue takes no bias and no outAct');
  const t = { dst, src, wgt, bias, saved };
  const r = resolveImpl(ctx, implChoice, kind, g, !!bias, tuning, op, { fusion, accumulate });
  if (r.impl === 'direct') return encodeDirectGather(ctx, op, kind, t, g, accumulate, fusion, r.tuning.wg);
  if (r.impl === 'blocked') return encodeBlockedGather(ctx, op, kind, t, g, accumulate, r.tuning, fusion);
  return encodeTiledGather(ctx, op, kind, t, g, accumulate, fusion, r.tuning.tile);
}

/**
 * dst (+)= outAct(bias + gather-convolution(srcAct(src), wgt)), or with fusion.dstGrad
 * dst (+)= act'(saved) * gather-convolution(src, wgt) (fusion.ts).
 */
export function encodeGather(
  ctx: GpuContext, op: string, dst: Tensor, src: Tensor, wgt: Tensor, bias: Tensor | null, g: ConvGeometry,
  accumulate: boolean, implChoice: ConvImpl | 'auto', tuning: BlockedTuning = {}, fusion: ConvFusion = NO_FUSION, saved: Tensor | null = null,
): Dispatch {
  return encodeAnyGather('gather', ctx, op, dst, src, wgt, bias, g, accumulate, implChoice, tuning, fusion, saved);
}

/** As {@link encodeGather}, with the transposed gather (conv_transpose2d forward, conv2d grad input). */
export function encodeTransposedGather(
  ctx: GpuContext, op: string, dst: Tensor, src: Tensor, wgt: Tensor, bias: Tensor | null, g: ConvGeometry,
  accumulate: boolean, implChoice: ConvImpl | 'auto', tuning: BlockedTuning = {}, fusion: ConvFusion = NO_FUSION, saved: Tensor | null = null,
): Dispatch {
  return encodeAnyGather('transposed', ctx, op, dst, src, wgt, bias, g, accumulate, implChoice, tuning, fusion, saved);
}

/**
 * dst[m, c, kh, kw] (+)= sum grad[n, m, oh, ow] * src[n, c, oh*sh - ph + kh, ow*sw - pw + kw], and when
 * `gradSum` is given, gradSum[m] (+)= sum grad[n, m, :, :] (conv2d's bias gradient; the blocked and taps
 * kernels compute it as one more column, the others add a bias_grad dispatch); when `srcSum` is given,
 * srcSum[c] (+)= sum src[n, c, :, :] (conv_transpose2d's bias gradient; blocked and taps compute it in extra
 * workgroups of the same dispatch up to BIAS_SERIAL_MAX values per channel, else a bias_grad dispatch).
 */
export function encodeWeightGrad(
  ctx: GpuContext, op: string, dst: Tensor, grad: Tensor, src: Tensor, g: ConvGeometry, accumulate: boolean,
  implChoice: ConvImpl | 'auto', gradSum: Tensor | null = null, tuning: BlockedTuning = {}, fusion: ConvFusion = NO_FUSION,
  srcSum: Tensor | null = null,
): Dispatch[] {
  if (fusion.outAct || fusion.dstGrad) throw new Pix2PixError(op, 'outAct and dstGrad fuse into the gathers only');
  // The separate bias_grad pass below sums raw grad values; gradAct would have to apply there too.
  const r = resolveImpl(ctx, implChoice, 'weightGrad', g, !!gradSum, tuning, op, { fusion, accumulate, srcSum: !!srcSum });
  const fusedSrcSum = srcSum && !gradSum && (r.impl === 'blocked' || r.impl === 'taps') && g.batch * g.inH * g.inW <= BIAS_SERIAL_MAX ? srcSum : null;
  const t = { dst, grad, src, gradSum, srcSum: fusedSrcSum };
  let out: Dispatch[];
  if (r.impl === 'blocked') out = encodeBlockedWeightGrad(ctx, op, t, g, accumulate, r.tuning, fusion);
  else if (r.impl === 'taps') out = encodeTapsWeightGrad(ctx, op, t, g, accumulate, r.tuning, fusion);
  else out = r.impl === 'direct' ? [encodeDirectWeightGrad(ctx, op, t, g, accumulate, fusion, r.tuning.wg)] : encodeTiledWeightGrad(ctx, op, t, g, accumulate, fusion, r.tuning.tile);
  if (srcSum && !fusedSrcSum) out.push(encodeBiasGrad(ctx, op, srcSum, src, accumulate));
  if (r.impl === 'blocked' || r.impl === 'taps') return out;
  if (gradSum) {
    if (fusion.gradAct) throw new Pix2PixError(op, `gradAct with a bias gradient needs the 'blocked' or 'taps' weight gradient (got '${r.impl}')`);
    out.push(encodeBiasGrad(ctx, op, gradSum, grad, accumulate));
  }
  return out;
}
