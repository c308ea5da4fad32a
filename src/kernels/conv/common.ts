// What the conv variants share: the kinds of convolution, the variant names, launch overrides and the
// subgroup rule. No policy here (policy.ts) and no kernel (direct.ts, tiled.ts, blocked.ts, taps.ts).
import type { GpuContext } from '../../runtime/context.js';
import type { Tensor } from '../../runtime/tensor.js';
import { ShapeError } from '../../runtime/errors.js';

/**
 * The three index patterns a convolution and its transpose share (see each shader's header):
 *   gather       conv2d forward,           conv_transpose2d grad input   (shaders/conv2d.wgsl)
 *   transposed   conv_transpose2d forward, conv2d grad input             (shaders/conv_transpose2d.wgsl)
 *   weightGrad   conv2d dw,                conv_transpose2d dw           (shaders/conv2d_weight_grad.wgsl)
 */
export type ConvKind = 'gather' | 'transposed' | 'weightGrad';

/**
 * Which kernel family to use: 'tiled' (implicit GEMM, workgroup-memory tiles, 4x4 register blocks),
 * 'blocked' (no workgroup memory: each thread keeps up to 32 output channels of one output in registers,
 * shaders/conv_blocked.wgsl) or 'direct' (one thread per output, the readable reference path).
 * With subgroups (>= 8 lanes) 'blocked' shares its weight loads across lanes (shaders/conv_blocked_sg.wgsl).
 * 'taps' is a weight-gradient kernel (shaders/conv_weight_grad_taps.wgsl: each thread owns a whole kernel
 * row of taps for several rows, so each load feeds several taps); for the forward and grad-input
 * directions it means 'blocked'.
 */
export type ConvImpl = 'tiled' | 'direct' | 'blocked' | 'taps';

/** Optional overrides of the blocked kernels' launch shape, for benchmarks and tests. */
export interface BlockedTuning {
  /** dst rows (channels) per thread, 1..32. */
  rows?: number;
  /** Threads per workgroup (blocked kernels; direct kernels too, where the policy otherwise picks it). */
  wg?: number;
  /** weight_grad: number of splits of the N*outH grad rows. */
  splits?: number;
  /** gather: consecutive outputs of a row per thread (rows * pixels <= 32); taps: grad pixels per step. */
  pixels?: number;
  /** taps (weight gradient): kernel rows per thread, 1..4 (rows * kernelRows * KW <= 64). */
  kernelRows?: number;
  /** blocked gathers, taps: share the uniform loads through subgroups (default: when the device has them). */
  subgroups?: boolean;
  /** tiled: the square output tile, 64 (default), 32 or 16 (tiled.ts TILED_TILES; the policy may pick a smaller one). */
  tile?: number;
}

/** The tensors of one gather-style launch (gather or transposed): dst (+)= bias + conv(src, wgt). */
export interface GatherTensors {
  dst: Tensor;
  src: Tensor;
  wgt: Tensor;
  bias: Tensor | null;
  /** The dstGrad epilogue's saved tensor (dst's shape), bound in the bias slot (fusion.ts); never with a bias. */
  saved?: Tensor | null;
}

/** The tensors of one weight-gradient launch: dst (+)= grad x src, gradSum (+)= sum of grad, srcSum (+)= sum of src per channel (or null). */
export interface WeightGradTensors {
  dst: Tensor;
  grad: Tensor;
  src: Tensor;
  gradSum: Tensor | null;
  srcSum?: Tensor | null;
}

/** Threads per workgroup of the 1-D kernels (direct, reductions). */
export const WG = 256;
/** The tiled kernels' square output tile. */
export const TILE = 64;
export const MAX_BLOCK_ROWS = 32;
/** The blocked and taps kernels keep a column's tap offsets in a 16-entry array. */
export const MAX_BLOCK_TAPS = 16;

/** Lanes that share loads in the subgroup kernels: lavapipe's subgroup (one 8-wide SIMD vector). */
export const SG_LANES = 8;

/** Bindings 1..4 of the gathers: src, wgt, bias (or the dstGrad epilogue's saved tensor; wgt stands in when neither), dst. */
export function gatherBindings(t: GatherTensors) {
  return [
    { tensor: t.src, access: 'read' as const },
    { tensor: t.wgt, access: 'read' as const },
    { tensor: t.bias ?? t.saved ?? t.wgt, access: 'read' as const },
    { tensor: t.dst, access: 'rw' as const },
  ];
}

/**
 * Whether a kernel of `wg` threads may share loads through subgroups: the device has the feature, the
 * adapter reports subgroups of at least SG_LANES lanes, and `wg` is a multiple of the largest subgroup size,
 * so every subgroup is full and lanes 0..SG_LANES-1 all run (lavapipe: 8 and 8; an NVIDIA GPU: 32 and 32,
 * so its 8- and 16-thread workgroups keep the plain kernels). Sharing the loads made the blocked gathers and the
 * taps weight gradient 2-3x faster on lavapipe (bench/RESULTS.md, conv selection history: subgroup blocked gathers, taps).
 */
export function subgroupsFor(ctx: GpuContext, wg: number): boolean {
  if (!ctx.features.has('subgroups')) return false;
  const min = ctx.adapterInfo.subgroupMinSize ?? 0;
  const max = ctx.adapterInfo.subgroupMaxSize ?? 0;
  return min >= SG_LANES && max >= min && wg % max === 0;
}

/** tuning.subgroups (default: whenever {@link subgroupsFor} allows), refused where it does not. */
export function useSubgroups(ctx: GpuContext, tuning: BlockedTuning, wg: number, op: string): boolean {
  const ok = subgroupsFor(ctx, wg);
  if (tuning.subgroups && !ok) throw new ShapeError(op, `subgroups for ${wg} threads per workgroup (the feature, >= ${SG_LANES} lanes, full subgroups)`, 'available', 'not available');
  return tuning.subgroups ?? ok;
}
