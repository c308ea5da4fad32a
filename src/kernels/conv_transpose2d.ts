import type { Dispatch, GpuContext } from '../runtime/context.js';
import type { Tensor } from '../runtime/tensor.js';
import { ShapeError } from '../runtime/errors.js';
import {
  backwardInputFusion,
  checkDistinct,
  forwardFusion,
  weightFusion,
  type FusedActivation,
  encodeGather,
  encodeTransposedGather,
  encodeWeightGrad,
  pair,
  type BlockedTuning,
  type ConvBackwardOptions,
  type ConvGeometry,
  type ConvImpl,
  type Pair,
} from './conv2d.js';

// conv_transpose2d is the adjoint of conv2d, so it reuses conv2d's three kernels with roles swapped:
//   forward      = conv2d's grad-input pattern (transposed gather, shaders/conv_transpose2d.wgsl)
//   grad input   = conv2d's forward pattern    (gather, shaders/conv2d.wgsl)
//   grad weight  = conv2d's weight-grad pattern with grad = x and src = dy (shaders/conv2d_weight_grad.wgsl)

/** conv_transpose2d hyper-parameters (PyTorch's, without dilation and groups). */
export interface ConvTranspose2dParams {
  /** Default 1. */
  stride?: Pair;
  /** Default 0: removes `padding` rows/columns from each side of the full output. */
  padding?: Pair;
  /** Default 0: extra rows/columns on the bottom/right; must be < stride (PyTorch's rule). */
  outputPadding?: Pair;
  /** Kernel family; default 'auto' (chosen by src/kernels/conv/policy.ts). For tests and benchmarks. */
  impl?: ConvImpl | 'auto';
  /** Launch shape of the 'blocked' kernels (default: chosen by shape). For tests and benchmarks. */
  blocked?: BlockedTuning;
  /** Fused input prologue, as conv2d's (Conv2dParams.inputActivation): forward and backwardWeight read act(x); backwardInput needs dxActivation. */
  inputActivation?: FusedActivation;
  /** forward only: y = act(convT(x) + b), as conv2d's. */
  outputActivation?: FusedActivation;
}

function check4d(shape: readonly number[], op: string, name: string): void {
  if (shape.length !== 4) throw new ShapeError(op, `${name} rank (${name} must be NCHW)`, 4, shape.length);
  if (shape.some((d) => d < 1)) throw new ShapeError(op, `${name} shape (every dimension >= 1)`, 'positive sizes', [...shape]);
}

/**
 * Output shape of conv_transpose2d: [N, Cout, (H - 1)*sh - 2ph + KH + oph, (W - 1)*sw - 2pw + KW + opw]
 * for x [N, Cin, H, W] and w [Cin, Cout, KH, KW]. Throws (naming `op`) on mismatch or an empty output.
 */
export function convTranspose2dOutputShape(
  xShape: readonly number[],
  wShape: readonly number[],
  p: ConvTranspose2dParams = {},
  op = 'convTranspose2d',
): number[] {
  check4d(xShape, op, 'x');
  check4d(wShape, op, 'w');
  const [N, Cin, H, W] = xShape;
  const [wCin, Cout, KH, KW] = wShape;
  if (wCin !== Cin) throw new ShapeError(op, 'w in-channels (w.shape[0], layout [Cin, Cout, KH, KW]) vs x channels', Cin, wCin);
  const [sh, sw] = pair(p.stride, 1, op, 'stride');
  const [ph, pw] = pair(p.padding, 0, op, 'padding');
  const [oph, opw] = pair(p.outputPadding, 0, op, 'outputPadding');
  if (oph >= sh || opw >= sw) throw new ShapeError(op, 'outputPadding (must be smaller than stride)', `< [${sh}, ${sw}]`, `[${oph}, ${opw}]`);
  const Ho = (H - 1) * sh - 2 * ph + KH + oph;
  const Wo = (W - 1) * sw - 2 * pw + KW + opw;
  if (Ho < 1 || Wo < 1) throw new ShapeError(op, 'output size (padding removes the whole output)', '>= 1x1', `${Ho}x${Wo}`);
  return [N, Cout, Ho, Wo];
}

/**
 * Geometry of the transposed gather y <- x: dst = y (M = Cout, out = Ho x Wo), src = x (C = Cin, in = H x W).
 * The same numbers describe grad input (gather dx <- dy, in/out swapped) and grad weight.
 */
function geometry(xShape: readonly number[], wShape: readonly number[], yShape: readonly number[], p: ConvTranspose2dParams, op: string): ConvGeometry {
  const [sh, sw] = pair(p.stride, 1, op, 'stride');
  const [ph, pw] = pair(p.padding, 0, op, 'padding');
  return { batch: xShape[0], M: wShape[1], C: wShape[0], inH: xShape[2], inW: xShape[3], outH: yShape[2], outW: yShape[3], KH: wShape[2], KW: wShape[3], sh, sw, ph, pw };
}

/** The same convolution seen from the other side: src and dst (and their channel counts) exchanged. */
function swapped(g: ConvGeometry): ConvGeometry {
  return { ...g, M: g.C, C: g.M, inH: g.outH, inW: g.outW, outH: g.inH, outW: g.inW };
}

function forwardImpl(ctx: GpuContext, y: Tensor, x: Tensor, w: Tensor, b: Tensor | null, p: ConvTranspose2dParams, impl: ConvImpl | 'auto'): Dispatch[] {
  const op = 'convTranspose2d.forward';
  for (const [name, t] of Object.entries({ y, x, w, b })) if (t) ctx.checkTensor(t, op, undefined, name);
  const yShape = convTranspose2dOutputShape(x.shape, w.shape, p, op);
  ctx.checkTensor(y, op, yShape, 'y');
  if (b) ctx.checkTensor(b, op, [w.shape[1]], 'b');
  checkDistinct(op, { y, x, w, b });
  return [encodeTransposedGather(ctx, op, y, x, w, b, geometry(x.shape, w.shape, yShape, p, op), false, impl, p.blocked, forwardFusion(p, op))];
}

/**
 * y = conv_transpose2d(x, w) + b, PyTorch semantics. x [N, Cin, H, W], w [Cin, Cout, KH, KW] (PyTorch
 * layout), b [Cout] or null, y per {@link convTranspose2dOutputShape}. Phase-split gather, no atomics
 * (kernel chosen by shape, see conv2d.ts).
 */
export function convTranspose2dForward(ctx: GpuContext, y: Tensor, x: Tensor, w: Tensor, b: Tensor | null, p: ConvTranspose2dParams = {}): Dispatch[] {
  return forwardImpl(ctx, y, x, w, b, p, p.impl ?? 'auto');
}

/** {@link convTranspose2dForward} with the direct kernel (one thread per output): the readable reference path. */
export function convTranspose2dForwardDirect(ctx: GpuContext, y: Tensor, x: Tensor, w: Tensor, b: Tensor | null, p: ConvTranspose2dParams = {}): Dispatch[] {
  return forwardImpl(ctx, y, x, w, b, p, 'direct');
}

function backwardInputImpl(ctx: GpuContext, dx: Tensor, dy: Tensor, w: Tensor, p: ConvTranspose2dParams & ConvBackwardOptions, impl: ConvImpl | 'auto'): Dispatch[] {
  const op = 'convTranspose2d.backwardInput';
  for (const [name, t] of Object.entries({ dx, dy, w })) ctx.checkTensor(t, op, undefined, name);
  const yShape = convTranspose2dOutputShape(dx.shape, w.shape, p, op);
  ctx.checkTensor(dy, op, yShape, 'dy');
  checkDistinct(op, { dx, dy, w });
  const { fusion, saved } = backwardInputFusion(ctx, p, dx, op);
  // dx[n, ci, ih, iw] = sum w[ci, co, kh, kw] * dy[n, co, ih*sh - ph + kh, iw*sw - pw + kw]: conv2d's gather
  // with src = dy (C = Cout), dst = dx (M = Cin), and w already laid out as [M, C, KH, KW].
  const g = swapped(geometry(dx.shape, w.shape, yShape, p, op));
  return [encodeGather(ctx, op, dx, dy, w, null, g, !!p.accumulate, impl, p.blocked, fusion, saved)];
}

/** dx (+)= dL/dx of conv_transpose2d given dy; dx has x's shape. Kernel chosen by shape (see conv2d.ts). */
export function convTranspose2dBackwardInput(ctx: GpuContext, dx: Tensor, dy: Tensor, w: Tensor, p: ConvTranspose2dParams & ConvBackwardOptions = {}): Dispatch[] {
  return backwardInputImpl(ctx, dx, dy, w, p, p.impl ?? 'auto');
}

/** {@link convTranspose2dBackwardInput} with the direct kernel. */
export function convTranspose2dBackwardInputDirect(
  ctx: GpuContext,
  dx: Tensor,
  dy: Tensor,
  w: Tensor,
  p: ConvTranspose2dParams & ConvBackwardOptions = {},
): Dispatch[] {
  return backwardInputImpl(ctx, dx, dy, w, p, 'direct');
}

function backwardWeightImpl(
  ctx: GpuContext,
  dw: Tensor,
  db: Tensor | null,
  dy: Tensor,
  x: Tensor,
  p: ConvTranspose2dParams & ConvBackwardOptions,
  impl: ConvImpl | 'auto',
): Dispatch[] {
  const op = 'convTranspose2d.backwardWeight';
  for (const [name, t] of Object.entries({ dw, db, dy, x })) if (t) ctx.checkTensor(t, op, undefined, name);
  const yShape = convTranspose2dOutputShape(x.shape, dw.shape, p, op);
  ctx.checkTensor(dy, op, yShape, 'dy');
  if (db) ctx.checkTensor(db, op, [dw.shape[1]], 'db');
  checkDistinct(op, { dw, db, dy, x });
  // dw[ci, co, kh, kw] = sum x[n, ci, ih, iw] * dy[n, co, ih*sh - ph + kh, iw*sw - pw + kw]: conv2d's weight
  // gradient with grad = x (M = Cin, over H x W) and src = dy (C = Cout, Ho x Wo).
  const g = swapped(geometry(x.shape, dw.shape, yShape, p, op));
  // db = sum of dy per channel: in the weight-gradient dispatch where the variant can (engine.ts), else its own.
  return encodeWeightGrad(ctx, op, dw, x, dy, g, !!p.accumulate, impl, null, p.blocked, weightFusion(p, op, 'grad'), db);
}

/**
 * dw (+)= dL/dw and db (+)= dL/db of conv_transpose2d, from dy and the forward input x.
 * dw [Cin, Cout, KH, KW], db [Cout] or null. GEMM split over N*H*W; kernel chosen by shape.
 */
export function convTranspose2dBackwardWeight(
  ctx: GpuContext,
  dw: Tensor,
  db: Tensor | null,
  dy: Tensor,
  x: Tensor,
  p: ConvTranspose2dParams & ConvBackwardOptions = {},
): Dispatch[] {
  return backwardWeightImpl(ctx, dw, db, dy, x, p, p.impl ?? 'auto');
}

/** {@link convTranspose2dBackwardWeight} with the direct kernel (one thread per weight). */
export function convTranspose2dBackwardWeightDirect(
  ctx: GpuContext,
  dw: Tensor,
  db: Tensor | null,
  dy: Tensor,
  x: Tensor,
  p: ConvTranspose2dParams & ConvBackwardOptions = {},
): Dispatch[] {
  return backwardWeightImpl(ctx, dw, db, dy, x, p, 'direct');
}
