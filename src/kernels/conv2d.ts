// The public conv2d op. The kernels live in src/kernels/conv/ (one module per variant, the shared uniform
// struct in params.ts, the choice of variant in policy.ts, measured choices in tune.ts); this module checks
// shapes and maps conv2d's three directions onto the family's launches.
import type { Dispatch, GpuContext } from '../runtime/context.js';
import type { Tensor } from '../runtime/tensor.js';
import { Pix2PixError, ShapeError } from '../runtime/errors.js';
import { encodeGather, encodeTransposedGather, encodeWeightGrad } from './conv/engine.js';
import type { BlockedTuning, ConvImpl } from './conv/common.js';
import type { ConvGeometry } from './conv/params.js';
import { activationSlope, type ConvFusion, type FusedActivation } from './conv/fusion.js';

export type { BlockedTuning, ConvImpl } from './conv/common.js';
export type { FusedActivation } from './conv/fusion.js';
export type { ConvGeometry } from './conv/params.js';
export { encodeGather, encodeTransposedGather, encodeWeightGrad } from './conv/engine.js';
export { encodeBiasGrad } from './conv/bias_grad.js';

/** A size given once for both spatial dimensions, or as [height, width]. */
export type Pair = number | [number, number];

/** conv2d hyper-parameters (PyTorch's, without dilation and groups). */
export interface Conv2dParams {
  /** Default 1. */
  stride?: Pair;
  /** Zero padding on each side; default 0. */
  padding?: Pair;
  /** Kernel family; default 'auto' (chosen by src/kernels/conv/policy.ts). For tests and benchmarks. */
  impl?: ConvImpl | 'auto';
  /** Launch shape of the 'blocked' kernels (default: chosen by shape). For tests and benchmarks. */
  blocked?: BlockedTuning;
  /**
   * Fused input prologue: the op reads act(x) wherever it reads x, so no act(x) tensor is needed.
   * forward: y = conv(act(x)) + b; backwardWeight: dw from act(x) (db unchanged); backwardInput: needs
   * `dxActivation` (the derivative at x), and refuses this option without it.
   */
  inputActivation?: FusedActivation;
  /** forward only: y = act(conv(x) + b). The backward ops then take dy w.r.t. the pre-activation (see `dxActivation`). */
  outputActivation?: FusedActivation;
}

/**
 * The grad-input epilogue: dx = [dx +] act'(saved) * (the gradient w.r.t. the op's input), so the
 * activation in front of the op (its `inputActivation`, or a producer's `outputActivation`) needs no
 * backward dispatch. `saved` has dx's shape: the activation's input ('input') or output ('output'; for
 * relu / leaky_relu with slope >= 0 the same mask, for tanh 1 - y^2).
 */
export interface FusedActivationBackward {
  act: FusedActivation;
  saved: Tensor;
  savedIs: 'input' | 'output';
  /**
   * With `accumulate`: 'term' (default) dx = dx + act' * g (dx holds gradients that do not pass through the
   * activation); 'sum' dx = act' * (dx + g) (dx already holds other gradients w.r.t. the activation's output,
   * e.g. a U-Net skip's, so the activation's backward covers them too).
   */
  applyTo?: 'term' | 'sum';
}

/** Backward options: `accumulate: true` adds into the gradient buffers instead of overwriting them. */
export interface ConvBackwardOptions {
  accumulate?: boolean;
  /** backwardInput only: the grad-input epilogue (see {@link FusedActivationBackward}). */
  dxActivation?: FusedActivationBackward;
}

/** The forward launch's fusion from the params. */
export function forwardFusion(p: { inputActivation?: FusedActivation; outputActivation?: FusedActivation }, op: string): ConvFusion {
  if (p.inputActivation) activationSlope(p.inputActivation, op);
  if (p.outputActivation) activationSlope(p.outputActivation, op);
  return { srcAct: p.inputActivation, outAct: p.outputActivation };
}

/**
 * The grad-input launch's epilogue: refuses an `outputActivation` (dy must be w.r.t. the pre-activation) and an
 * `inputActivation` without its derivative. Returns the fusion and the saved tensor (checked against dx).
 */
export function backwardInputFusion(
  ctx: GpuContext,
  p: { inputActivation?: FusedActivation; outputActivation?: FusedActivation } & ConvBackwardOptions,
  dx: Tensor,
  op: string,
): { fusion: ConvFusion; saved: Tensor | null } {
  if (p.outputActivation) throw new Pix2PixError(op, 'outputActivation is forward-only: pass dy w.r.t. the pre-activation (the consumer applies act\' through dxActivation)');
  const d = p.dxActivation;
  if (p.inputActivation && !d) throw new Pix2PixError(op, 'inputActivation needs dxActivation (act\' at the saved input) for the gradient w.r.t. x');
  if (!d) return { fusion: {}, saved: null };
  ctx.checkTensor(d.saved, op, dx.shape, 'dxActivation.saved');
  checkDistinct(op, { dx, saved: d.saved });
  return { fusion: { dstGrad: { act: d.act, saved: d.savedIs, applyTo: d.applyTo } }, saved: d.saved };
}

/** The weight-gradient launch's fusion: the input prologue applies to x (src for conv2d, grad for conv_transpose2d). */
export function weightFusion(p: { inputActivation?: FusedActivation; outputActivation?: FusedActivation } & ConvBackwardOptions, op: string, xIs: 'src' | 'grad'): ConvFusion {
  if (p.outputActivation) throw new Pix2PixError(op, 'outputActivation is forward-only: pass dy w.r.t. the pre-activation (the consumer applies act\' through dxActivation)');
  if (p.dxActivation) throw new Pix2PixError(op, 'dxActivation belongs to backwardInput');
  if (!p.inputActivation) return {};
  activationSlope(p.inputActivation, op);
  return xIs === 'src' ? { srcAct: p.inputActivation } : { gradAct: p.inputActivation };
}


/** Normalise a {@link Pair} to [h, w], checking it is a whole number (>= 1 for strides). */
export function pair(v: Pair | undefined, fallback: number, op: string, name: string): [number, number] {
  const hw: [number, number] = v === undefined ? [fallback, fallback] : typeof v === 'number' ? [v, v] : [v[0], v[1]];
  const min = name === 'stride' ? 1 : 0;
  if (!Array.isArray(v) && v !== undefined && typeof v !== 'number') throw new ShapeError(op, name, 'a number or [h, w]', String(v));
  if (Array.isArray(v) && v.length !== 2) throw new ShapeError(op, `${name} length`, 2, v.length);
  for (const d of hw) {
    if (!Number.isInteger(d) || d < min) throw new ShapeError(op, name, `an integer >= ${min}`, d);
  }
  return hw;
}

function check4d(shape: readonly number[], op: string, name: string): void {
  if (shape.length !== 4) throw new ShapeError(op, `${name} rank (${name} must be NCHW)`, 4, shape.length);
  if (shape.some((d) => d < 1)) throw new ShapeError(op, `${name} shape (every dimension >= 1)`, 'positive sizes', [...shape]);
}

/**
 * Output shape of conv2d: [N, Cout, floor((H + 2ph - KH)/sh) + 1, floor((W + 2pw - KW)/sw) + 1].
 * Throws (naming `op`) on a rank or channel mismatch or when the kernel does not fit the padded input.
 */
export function conv2dOutputShape(xShape: readonly number[], wShape: readonly number[], p: Conv2dParams = {}, op = 'conv2d'): number[] {
  check4d(xShape, op, 'x');
  check4d(wShape, op, 'w');
  const [N, Cin, H, W] = xShape;
  const [Cout, wCin, KH, KW] = wShape;
  if (wCin !== Cin) throw new ShapeError(op, 'w in-channels (w.shape[1], layout [Cout, Cin, KH, KW]) vs x channels', Cin, wCin);
  const [sh, sw] = pair(p.stride, 1, op, 'stride');
  const [ph, pw] = pair(p.padding, 0, op, 'padding');
  const Ho = Math.floor((H + 2 * ph - KH) / sh) + 1;
  const Wo = Math.floor((W + 2 * pw - KW) / sw) + 1;
  if (Ho < 1 || Wo < 1) throw new ShapeError(op, `output size (kernel ${KH}x${KW} vs padded input ${H + 2 * ph}x${W + 2 * pw})`, '>= 1x1', `${Ho}x${Wo}`);
  return [N, Cout, Ho, Wo];
}

/** Throw unless every tensor in `list` is distinct (an output bound as an input is a silent race). */
export function checkDistinct(op: string, list: Record<string, Tensor | null>): void {
  const seen: [string, Tensor][] = [];
  for (const [name, t] of Object.entries(list)) {
    if (!t) continue;
    const prev = seen.find(([, u]) => u.overlaps(t));
    if (prev) throw new Pix2PixError(op, `${name} and ${prev[0]} share one buffer's bytes; the output must not alias an input`);
    seen.push([name, t]);
  }
}

function checkLive(ctx: GpuContext, op: string, tensors: Record<string, Tensor | null>): void {
  for (const [name, t] of Object.entries(tensors)) if (t) ctx.checkTensor(t, op, undefined, name);
}

// ------------------------------------------------------------------------------------------------
// conv2d

/** Geometry of conv2d's forward gather: dst = y (M = Cout), src = x (C = Cin). */
function forwardGeometry(xShape: readonly number[], wShape: readonly number[], yShape: readonly number[], p: Conv2dParams, op: string): ConvGeometry {
  const [sh, sw] = pair(p.stride, 1, op, 'stride');
  const [ph, pw] = pair(p.padding, 0, op, 'padding');
  return { batch: xShape[0], M: wShape[0], C: wShape[1], inH: xShape[2], inW: xShape[3], outH: yShape[2], outW: yShape[3], KH: wShape[2], KW: wShape[3], sh, sw, ph, pw };
}

function conv2dForwardImpl(ctx: GpuContext, y: Tensor, x: Tensor, w: Tensor, b: Tensor | null, p: Conv2dParams, impl: ConvImpl | 'auto'): Dispatch[] {
  const op = 'conv2d.forward';
  checkLive(ctx, op, { y, x, w, b });
  const yShape = conv2dOutputShape(x.shape, w.shape, p, op);
  ctx.checkTensor(y, op, yShape, 'y');
  if (b) ctx.checkTensor(b, op, [w.shape[0]], 'b');
  checkDistinct(op, { y, x, w, b });
  return [encodeGather(ctx, op, y, x, w, b, forwardGeometry(x.shape, w.shape, yShape, p, op), false, impl, p.blocked, forwardFusion(p, op))];
}

/**
 * y = conv2d(x, w) + b, PyTorch semantics. x [N, Cin, H, W], w [Cout, Cin, KH, KW], b [Cout] or null,
 * y [N, Cout, Ho, Wo] (see {@link conv2dOutputShape}). Kernel chosen by src/kernels/conv/policy.ts (blocked, tiled implicit GEMM or direct).
 */
export function conv2dForward(ctx: GpuContext, y: Tensor, x: Tensor, w: Tensor, b: Tensor | null, p: Conv2dParams = {}): Dispatch[] {
  return conv2dForwardImpl(ctx, y, x, w, b, p, p.impl ?? 'auto');
}

/** {@link conv2dForward} with the direct kernel (one thread per output): the readable reference path. */
export function conv2dForwardDirect(ctx: GpuContext, y: Tensor, x: Tensor, w: Tensor, b: Tensor | null, p: Conv2dParams = {}): Dispatch[] {
  return conv2dForwardImpl(ctx, y, x, w, b, p, 'direct');
}

function conv2dBackwardInputImpl(ctx: GpuContext, dx: Tensor, dy: Tensor, w: Tensor, p: Conv2dParams & ConvBackwardOptions, impl: ConvImpl | 'auto'): Dispatch[] {
  const op = 'conv2d.backwardInput';
  checkLive(ctx, op, { dx, dy, w });
  const yShape = conv2dOutputShape(dx.shape, w.shape, p, op);
  ctx.checkTensor(dy, op, yShape, 'dy');
  checkDistinct(op, { dx, dy, w });
  const { fusion, saved } = backwardInputFusion(ctx, p, dx, op);
  const [sh, sw] = pair(p.stride, 1, op, 'stride');
  const [ph, pw] = pair(p.padding, 0, op, 'padding');
  // dx[n, ci, ih, iw] = sum over taps with ih = oh*sh - ph + kh of w[co, ci, kh, kw] * dy[n, co, oh, ow]:
  // a transposed gather with src = dy (C = Cout) and dst = dx (M = Cin), reading w as [C, M, KH, KW].
  const g: ConvGeometry = {
    batch: dx.shape[0], M: dx.shape[1], C: dy.shape[1], inH: dy.shape[2], inW: dy.shape[3], outH: dx.shape[2], outW: dx.shape[3],
    KH: w.shape[2], KW: w.shape[3], sh, sw, ph, pw,
  };
  return [encodeTransposedGather(ctx, op, dx, dy, w, null, g, !!p.accumulate, impl, p.blocked, fusion, saved)];
}

/** dx (+)= dL/dx of conv2d given dy; dx has x's shape [N, Cin, H, W]. Phase-split gather, no atomics; kernel chosen by shape. */
export function conv2dBackwardInput(ctx: GpuContext, dx: Tensor, dy: Tensor, w: Tensor, p: Conv2dParams & ConvBackwardOptions = {}): Dispatch[] {
  return conv2dBackwardInputImpl(ctx, dx, dy, w, p, p.impl ?? 'auto');
}

/** {@link conv2dBackwardInput} with the direct kernel. */
export function conv2dBackwardInputDirect(ctx: GpuContext, dx: Tensor, dy: Tensor, w: Tensor, p: Conv2dParams & ConvBackwardOptions = {}): Dispatch[] {
  return conv2dBackwardInputImpl(ctx, dx, dy, w, p, 'direct');
}

function conv2dBackwardWeightImpl(
  ctx: GpuContext,
  dw: Tensor,
  db: Tensor | null,
  dy: Tensor,
  x: Tensor,
  p: Conv2dParams & ConvBackwardOptions,
  impl: ConvImpl | 'auto',
): Dispatch[] {
  const op = 'conv2d.backwardWeight';
  checkLive(ctx, op, { dw, db, dy, x });
  const yShape = conv2dOutputShape(x.shape, dw.shape, p, op);
  ctx.checkTensor(dy, op, yShape, 'dy');
  if (db) ctx.checkTensor(db, op, [dw.shape[0]], 'db');
  checkDistinct(op, { dw, db, dy, x });
  // dw[co, ci, kh, kw] = sum dy[n, co, oh, ow] * x[n, ci, oh*sh - ph + kh, ow*sw - pw + kw].
  const g = forwardGeometry(x.shape, dw.shape, yShape, p, op);
  return encodeWeightGrad(ctx, op, dw, dy, x, g, !!p.accumulate, impl, db, p.blocked, weightFusion(p, op, 'src'));
}

/**
 * dw (+)= dL/dw and db (+)= dL/db of conv2d, from dy and the forward input x. dw [Cout, Cin, KH, KW]
 * (its KH, KW define the kernel), db [Cout] or null. GEMM split over N*Ho*Wo; kernel chosen by shape.
 */
export function conv2dBackwardWeight(
  ctx: GpuContext,
  dw: Tensor,
  db: Tensor | null,
  dy: Tensor,
  x: Tensor,
  p: Conv2dParams & ConvBackwardOptions = {},
): Dispatch[] {
  return conv2dBackwardWeightImpl(ctx, dw, db, dy, x, p, p.impl ?? 'auto');
}

/** {@link conv2dBackwardWeight} with the direct kernel (one thread per weight). */
export function conv2dBackwardWeightDirect(
  ctx: GpuContext,
  dw: Tensor,
  db: Tensor | null,
  dy: Tensor,
  x: Tensor,
  p: Conv2dParams & ConvBackwardOptions = {},
): Dispatch[] {
  return conv2dBackwardWeightImpl(ctx, dw, db, dy, x, p, 'direct');
}
