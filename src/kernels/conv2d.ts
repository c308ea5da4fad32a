import gatherShader from '../../shaders/conv2d.wgsl';
import transposedShader from '../../shaders/conv_transpose2d.wgsl';
import weightGradShader from '../../shaders/conv2d_weight_grad.wgsl';
import reduceShader from '../../shaders/conv2d_reduce.wgsl';
import type { Dispatch, GpuContext } from '../runtime/context.js';
import type { Tensor } from '../runtime/tensor.js';
import { Pix2PixError, ShapeError } from '../runtime/errors.js';

/** A size given once for both spatial dimensions, or as [height, width]. */
export type Pair = number | [number, number];

/** conv2d hyper-parameters (PyTorch's, without dilation and groups). */
export interface Conv2dParams {
  /** Default 1. */
  stride?: Pair;
  /** Zero padding on each side; default 0. */
  padding?: Pair;
  /** Kernel family; default 'auto' (see the measurements in conv2d.ts). For tests and benchmarks. */
  impl?: ConvImpl | 'auto';
}

/** Backward options: `accumulate: true` adds into the gradient buffers instead of overwriting them. */
export interface ConvBackwardOptions {
  accumulate?: boolean;
}

/**
 * Which kernel family to use: 'tiled' (implicit GEMM, workgroup-memory tiles, 4x4 register blocks) or
 * 'direct' (one thread per output, the readable reference path).
 */
export type ConvImpl = 'tiled' | 'direct';

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

// ------------------------------------------------------------------------------------------------
// Shared GPU building blocks. A convolution and its transpose use the same three index patterns, so
// both ops build their dispatches from these (see the header comment of each shader):
//   gather            conv2d forward,           conv_transpose2d grad input   (shaders/conv2d.wgsl)
//   transposed gather conv_transpose2d forward, conv2d grad input             (shaders/conv_transpose2d.wgsl)
//   weight grad       conv2d dw,                conv_transpose2d dw           (shaders/conv2d_weight_grad.wgsl)

/** Sizes of one gather-style convolution, in the shaders' terms: dst has M channels, src has C. */
export interface ConvGeometry {
  batch: number;
  M: number;
  C: number;
  inH: number;
  inW: number;
  outH: number;
  outW: number;
  KH: number;
  KW: number;
  sh: number;
  sw: number;
  ph: number;
  pw: number;
}

const WG = 256;
const TILE = 64;

/**
 * The shaders' uniform struct: the geometry, then three fields whose meaning depends on the shader:
 * (hasBias, accumulate, unused) for the gathers, (chunk, accumulate, splits) for the weight gradient.
 */
function geometryU32(g: ConvGeometry, field13: number, accumulate: boolean, field15: number): number[] {
  return [g.batch, g.M, g.C, g.inH, g.inW, g.outH, g.outW, g.KH, g.KW, g.sh, g.sw, g.ph, g.pw, field13, accumulate ? 1 : 0, field15];
}

/** A 2-D workgroup grid holding `tiles` column tiles (one dimension holds at most 65535 groups). */
function tileGrid(ctx: GpuContext, tiles: number): [number, number] {
  return ctx.grid(tiles, 1);
}

/**
 * Kernel choice for the public ops ('auto'). The 64x64 tiles waste most of their multiply-adds when the GEMM has
 * few rows (M = output channels: the generator's RGB output, the PatchGAN's 1-channel map), where the direct
 * kernel wins. Measured on Mesa lavapipe (2 shared CPU cores, the only device here), timed with
 * bench/harness.ts timeDispatches (1 warm-up, median of 3):
 *   N1 C64->128 64x64 k4 s2 p1 (M=128, 268 MFLOP per op)     direct              tiled
 *     conv2d forward                                      480 ms  0.56 GFLOP/s   136 ms  1.97 GFLOP/s
 *     conv2d grad input                                  1094 ms  0.25 GFLOP/s   159 ms  1.69 GFLOP/s
 *     conv2d grad weight (+ bias)                         350 ms  0.77 GFLOP/s   189 ms  1.42 GFLOP/s
 *     conv_transpose2d forward (C128->64, 32 -> 64)      1018 ms  0.26 GFLOP/s   196 ms  1.37 GFLOP/s
 *     conv_transpose2d grad input                         411 ms  0.65 GFLOP/s   139 ms  1.94 GFLOP/s
 *     conv_transpose2d grad weight                        329 ms  0.82 GFLOP/s   192 ms  1.40 GFLOP/s
 *   (the machine's two cores are shared, so single runs vary by about 20%)
 *   N1 C64->M 32x32 k4 s2 p1, direct / tiled ms:
 *     M =               1          3          8          16          32
 *     conv2d forward    1.4/19.5   3.5/23.8   6.5/16.3   12.4/19.7   35.8/21.7
 *     conv2d dw         1.3/19.5   2.7/17.3   6.1/17.1   12.2/20.6   31.0/22.8
 *     convT forward     2.5/34.9  12.5/31.5  28.2/38.9   67.6/42.4   80.6/21.4   (C64->M, 16x16 -> 32x32)
 *     conv2d dx         2.5/32.0  12.2/32.7  32.4/44.0   80.4/20.9   75.0/31.2   (dx has M channels)
 * Hence direct for M <= 16 (gather, weight grad) and M <= 8 (transposed gather), tiled otherwise. On a
 * discrete GPU the crossover will sit elsewhere; re-measure there before tuning these two numbers.
 */
const DIRECT_MAX_ROWS = { gather: 16, transposed: 8, weightGrad: 16 } as const;

function resolveImpl(impl: ConvImpl | 'auto', kind: keyof typeof DIRECT_MAX_ROWS, g: ConvGeometry, op: string): ConvImpl {
  if (impl !== 'auto' && impl !== 'tiled' && impl !== 'direct') throw new ShapeError(op, 'impl', "'auto', 'tiled' or 'direct'", String(impl));
  if (impl !== 'auto') return impl;
  return g.M <= DIRECT_MAX_ROWS[kind] ? 'direct' : 'tiled';
}

/** dst (+)= bias + gather-convolution(src, wgt). */
export function encodeGather(
  ctx: GpuContext,
  op: string,
  dst: Tensor,
  src: Tensor,
  wgt: Tensor,
  bias: Tensor | null,
  g: ConvGeometry,
  accumulate: boolean,
  implChoice: ConvImpl | 'auto',
): Dispatch {
  const bindings = [
    { tensor: src, access: 'read' as const },
    { tensor: wgt, access: 'read' as const },
    { tensor: bias ?? wgt, access: 'read' as const },
    { tensor: dst, access: 'rw' as const },
  ];
  const u32 = geometryU32(g, bias ? 1 : 0, accumulate, 0);
  if (resolveImpl(implChoice, 'gather', g, op) === 'direct') {
    return ctx.kernel({ op, shader: gatherShader, entryPoint: 'direct', constants: { WG }, u32, bindings, workgroups: ctx.grid(dst.size, WG) });
  }
  const colTiles = Math.ceil((g.batch * g.outH * g.outW) / TILE);
  const [x, y] = tileGrid(ctx, colTiles);
  return ctx.kernel({ op, shader: gatherShader, entryPoint: 'tiled', u32, bindings, workgroups: [x, y, Math.ceil(g.M / TILE)] });
}

/** dst (+)= bias + transposed-gather-convolution(src, wgt). */
export function encodeTransposedGather(
  ctx: GpuContext,
  op: string,
  dst: Tensor,
  src: Tensor,
  wgt: Tensor,
  bias: Tensor | null,
  g: ConvGeometry,
  accumulate: boolean,
  implChoice: ConvImpl | 'auto',
): Dispatch {
  const bindings = [
    { tensor: src, access: 'read' as const },
    { tensor: wgt, access: 'read' as const },
    { tensor: bias ?? wgt, access: 'read' as const },
    { tensor: dst, access: 'rw' as const },
  ];
  const u32 = geometryU32(g, bias ? 1 : 0, accumulate, 0);
  if (resolveImpl(implChoice, 'transposed', g, op) === 'direct') {
    return ctx.kernel({ op, shader: transposedShader, entryPoint: 'direct', constants: { WG }, u32, bindings, workgroups: ctx.grid(dst.size, WG) });
  }
  // Each output phase (oh + ph) mod sh has at most ceil(outH / sh) rows; size the grid for the largest.
  const colTiles = Math.ceil((g.batch * Math.ceil(g.outH / g.sh) * Math.ceil(g.outW / g.sw)) / TILE);
  const [x, y] = tileGrid(ctx, colTiles);
  return ctx.kernel({ op, shader: transposedShader, entryPoint: 'tiled', u32, bindings, workgroups: [x, y, Math.ceil(g.M / TILE) * g.sh * g.sw] });
}

/**
 * Split-K factor for the weight gradient: enough workgroups to fill a big GPU (about 1024 with 64x64
 * tiles, 8 per SM on a 132-SM H100) while each split keeps at least 256 reduction steps' worth of
 * work, and the partial sums stay under 64 MiB.
 */
function weightGradSplits(g: ConvGeometry, K: number): number {
  const tiles = Math.ceil(g.M / TILE) * Math.ceil(K / TILE);
  const P = g.batch * g.outH * g.outW;
  const byOccupancy = Math.ceil(1024 / tiles);
  const byWork = Math.ceil(P / 256);
  const byMemory = Math.floor((64 << 20) / (4 * g.M * K));
  return Math.max(1, Math.min(byOccupancy, byWork, byMemory, 65535));
}

/** dst[m, c, kh, kw] (+)= sum grad[n, m, oh, ow] * src[n, c, oh*sh - ph + kh, ow*sw - pw + kw]. */
export function encodeWeightGrad(
  ctx: GpuContext,
  op: string,
  dst: Tensor,
  grad: Tensor,
  src: Tensor,
  g: ConvGeometry,
  accumulate: boolean,
  implChoice: ConvImpl | 'auto',
): Dispatch[] {
  const K = g.C * g.KH * g.KW;
  if (resolveImpl(implChoice, 'weightGrad', g, op) === 'direct') {
    return [ctx.kernel({
      op,
      shader: weightGradShader,
      entryPoint: 'direct',
      constants: { WG },
      u32: geometryU32(g, 0, accumulate, 1),
      bindings: [{ tensor: grad, access: 'read' }, { tensor: src, access: 'read' }, { tensor: dst, access: 'rw' }],
      workgroups: ctx.grid(dst.size, WG),
    })];
  }
  const P = g.batch * g.outH * g.outW;
  let splits = weightGradSplits(g, K);
  const chunk = Math.ceil(Math.ceil(P / splits) / 16) * 16;
  splits = Math.ceil(P / chunk);
  const workgroups = [Math.ceil(K / TILE), Math.ceil(g.M / TILE), splits] as const;
  if (splits === 1) {
    return [ctx.kernel({
      op,
      shader: weightGradShader,
      entryPoint: 'tiled',
      u32: geometryU32(g, chunk, accumulate, 1),
      bindings: [{ tensor: grad, access: 'read' }, { tensor: src, access: 'read' }, { tensor: dst, access: 'rw' }],
      workgroups,
    })];
  }
  const partials = ctx.tensor([splits, g.M * K], undefined, `${op}.partials`);
  const partial = ctx.kernel({
    op,
    shader: weightGradShader,
    entryPoint: 'tiled',
    u32: geometryU32(g, chunk, false, splits),
    bindings: [{ tensor: grad, access: 'read' }, { tensor: src, access: 'read' }, { tensor: partials, access: 'rw' }],
    workgroups,
  });
  const reduce = ctx.kernel({
    op,
    shader: reduceShader,
    entryPoint: 'sum_splits',
    constants: { WG },
    u32: [g.M * K, splits, 0, 0, 0, accumulate ? 1 : 0],
    bindings: [{ tensor: partials, access: 'read' }, { tensor: dst, access: 'rw' }],
    workgroups: ctx.grid(g.M * K, WG),
  });
  reduce.attach(partials);
  return [partial, reduce];
}

/** db[m] (+)= sum over batch and pixels of dy[n, m, :, :]. */
export function encodeBiasGrad(ctx: GpuContext, op: string, db: Tensor, dy: Tensor, accumulate: boolean): Dispatch {
  const [N, C, H, W] = dy.shape;
  return ctx.kernel({
    op,
    shader: reduceShader,
    entryPoint: 'bias_grad',
    constants: { WG },
    u32: [0, 0, N, C, H * W, accumulate ? 1 : 0],
    bindings: [{ tensor: dy, access: 'read' }, { tensor: db, access: 'rw' }],
    workgroups: [C],
  });
}

/** Throw unless every tensor in `list` is distinct (an output bound as an input is a silent race). */
export function checkDistinct(op: string, list: Record<string, Tensor | null>): void {
  const seen = new Map<GPUBuffer, string>();
  for (const [name, t] of Object.entries(list)) {
    if (!t) continue;
    const prev = seen.get(t.buffer);
    if (prev) throw new Pix2PixError(op, `${name} and ${prev} share one buffer; the output must not alias an input`);
    seen.set(t.buffer, name);
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
  return [encodeGather(ctx, op, y, x, w, b, forwardGeometry(x.shape, w.shape, yShape, p, op), false, impl)];
}

/**
 * y = conv2d(x, w) + b, PyTorch semantics. x [N, Cin, H, W], w [Cout, Cin, KH, KW], b [Cout] or null,
 * y [N, Cout, Ho, Wo] (see {@link conv2dOutputShape}). Tiled implicit GEMM (direct kernel for Cout <= 16).
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
  const [sh, sw] = pair(p.stride, 1, op, 'stride');
  const [ph, pw] = pair(p.padding, 0, op, 'padding');
  // dx[n, ci, ih, iw] = sum over taps with ih = oh*sh - ph + kh of w[co, ci, kh, kw] * dy[n, co, oh, ow]:
  // a transposed gather with src = dy (C = Cout) and dst = dx (M = Cin), reading w as [C, M, KH, KW].
  const g: ConvGeometry = {
    batch: dx.shape[0], M: dx.shape[1], C: dy.shape[1], inH: dy.shape[2], inW: dy.shape[3], outH: dx.shape[2], outW: dx.shape[3],
    KH: w.shape[2], KW: w.shape[3], sh, sw, ph, pw,
  };
  return [encodeTransposedGather(ctx, op, dx, dy, w, null, g, !!p.accumulate, impl)];
}

/** dx (+)= dL/dx of conv2d given dy; dx has x's shape [N, Cin, H, W]. Phase-split tiled gather, no atomics (direct for Cin <= 8). */
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
  const out = encodeWeightGrad(ctx, op, dw, dy, x, g, !!p.accumulate, impl);
  if (db) out.push(encodeBiasGrad(ctx, op, db, dy, !!p.accumulate));
  return out;
}

/**
 * dw (+)= dL/dw and db (+)= dL/db of conv2d, from dy and the forward input x. dw [Cout, Cin, KH, KW]
 * (its KH, KW define the kernel), db [Cout] or null. Tiled GEMM with split-K over N*Ho*Wo (direct for Cout <= 16).
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
