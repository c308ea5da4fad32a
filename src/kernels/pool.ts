import shader from '../../shaders/pool.wgsl';
import type { Dispatch, GpuContext } from '../runtime/context.js';
import type { Tensor } from '../runtime/tensor.js';
import { ShapeError } from '../runtime/errors.js';
import { pair, type Pair } from './conv2d.js';

/** 2-D pooling hyper-parameters (PyTorch's max_pool2d / avg_pool2d, floor mode, no dilation). */
export interface Pool2dParams {
  kernel: Pair;
  /** Default: the kernel size (PyTorch's default). */
  stride?: Pair;
  /** Zero padding on each side, at most half the kernel (as PyTorch requires); default 0. */
  padding?: Pair;
}

/** avg_pool2d parameters: `countIncludePad` (default true, PyTorch's default) counts padded zeros in the divisor. */
export interface AvgPool2dParams extends Pool2dParams {
  countIncludePad?: boolean;
}

const WG = 256;

interface PoolGeometry {
  N: number;
  C: number;
  H: number;
  W: number;
  outH: number;
  outW: number;
  kh: number;
  kw: number;
  sh: number;
  sw: number;
  ph: number;
  pw: number;
}

function geometry(xShape: readonly number[], p: Pool2dParams, op: string): PoolGeometry {
  if (xShape.length !== 4) throw new ShapeError(op, 'x rank (x must be NCHW)', 4, xShape.length);
  if (xShape.some((d) => d < 1)) throw new ShapeError(op, 'x shape (every dimension >= 1)', 'positive sizes', [...xShape]);
  const [N, C, H, W] = xShape;
  const [kh, kw] = pair(p.kernel, 1, op, 'kernel');
  if (kh < 1 || kw < 1) throw new ShapeError(op, 'kernel', 'an integer >= 1', Math.min(kh, kw));
  const [sh, sw] = p.stride === undefined ? [kh, kw] : pair(p.stride, 1, op, 'stride');
  const [ph, pw] = pair(p.padding, 0, op, 'padding');
  if (2 * ph > kh || 2 * pw > kw) throw new ShapeError(op, 'padding (PyTorch allows at most half the kernel)', `<= [${kh >> 1}, ${kw >> 1}]`, [ph, pw]);
  const outH = Math.floor((H + 2 * ph - kh) / sh) + 1;
  const outW = Math.floor((W + 2 * pw - kw) / sw) + 1;
  if (outH < 1 || outW < 1) throw new ShapeError(op, `output size (kernel ${kh}x${kw} vs padded input ${H + 2 * ph}x${W + 2 * pw})`, '>= 1x1', `${outH}x${outW}`);
  return { N, C, H, W, outH, outW, kh, kw, sh, sw, ph, pw };
}

/** Output shape of 2-D pooling: [N, C, floor((H + 2ph - kh)/sh) + 1, floor((W + 2pw - kw)/sw) + 1]. */
export function pool2dOutputShape(xShape: readonly number[], p: Pool2dParams, op = 'pool2d'): number[] {
  const g = geometry(xShape, p, op);
  return [g.N, g.C, g.outH, g.outW];
}

function poolDispatch(ctx: GpuContext, op: string, entryPoint: string, y: Tensor, x: Tensor, g: PoolGeometry, countIncludePad: boolean): Dispatch {
  return ctx.kernel({
    op,
    shader,
    entryPoint,
    constants: { WG },
    u32: [g.N * g.C, g.H, g.W, g.outH, g.outW, g.kh, g.kw, g.sh, g.sw, g.ph, g.pw, countIncludePad ? 1 : 0],
    bindings: [
      { tensor: x, access: 'read' },
      { tensor: y, access: 'rw' },
    ],
    workgroups: ctx.grid(entryPoint === 'global_avg' ? g.N * g.C : y.size, WG),
  });
}

function checkPair(ctx: GpuContext, op: string, y: Tensor, x: Tensor, p: Pool2dParams): PoolGeometry {
  ctx.checkTensor(x, op, undefined, 'x');
  const g = geometry(x.shape, p, op);
  ctx.checkTensor(y, op, [g.N, g.C, g.outH, g.outW], 'y');
  if (x.overlaps(y)) throw new ShapeError(op, 'y aliasing x', 'distinct tensors', 'one buffer');
  return g;
}

/** y = max_pool2d(x, kernel, stride, padding) (floor mode); NaN in a window gives NaN, as torch. */
export function maxPool2dForward(ctx: GpuContext, y: Tensor, x: Tensor, p: Pool2dParams): Dispatch[] {
  const op = 'max_pool2d.forward';
  return [poolDispatch(ctx, op, 'max_pool', y, x, checkPair(ctx, op, y, x, p), false)];
}

/**
 * y = avg_pool2d(x, kernel, stride, padding, count_include_pad) (floor mode). With
 * `countIncludePad: false` the divisor is the number of input elements under the window, as
 * TensorFlow's average pool (and hence pytorch-fid's Inception blocks) does.
 */
export function avgPool2dForward(ctx: GpuContext, y: Tensor, x: Tensor, p: AvgPool2dParams): Dispatch[] {
  const op = 'avg_pool2d.forward';
  return [poolDispatch(ctx, op, 'avg_pool', y, x, checkPair(ctx, op, y, x, p), p.countIncludePad ?? true)];
}

/** y[n, c, 0, 0] = mean of x[n, c, :, :]: adaptive_avg_pool2d(x, 1). y is [N, C, 1, 1]. */
export function globalAvgPoolForward(ctx: GpuContext, y: Tensor, x: Tensor): Dispatch[] {
  const op = 'global_avg_pool.forward';
  ctx.checkTensor(x, op, undefined, 'x');
  const g = geometry(x.shape, { kernel: 1 }, op);
  ctx.checkTensor(y, op, [g.N, g.C, 1, 1], 'y');
  if (x.overlaps(y)) throw new ShapeError(op, 'y aliasing x', 'distinct tensors', 'one buffer');
  return [poolDispatch(ctx, op, 'global_avg', y, x, g, false)];
}
