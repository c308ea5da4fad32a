// Float64 CPU references for pooling, written from PyTorch's definitions (ATen's max_pool2d and
// avg_pool2d loops, floor mode, no dilation) rather than from the shader.
import { pool2dOutputShape, type AvgPool2dParams, type Pool2dParams } from '../pool.js';
import { pair } from '../conv2d.js';

interface Window {
  shape: number[];
  each: (visit: (plane: number, oh: number, ow: number, h0: number, w0: number) => void) => void;
  kh: number;
  kw: number;
  ph: number;
  pw: number;
}

function windows(xShape: readonly number[], p: Pool2dParams): Window {
  const shape = pool2dOutputShape(xShape, p);
  const [kh, kw] = pair(p.kernel, 1, 'pool2d', 'kernel');
  const [sh, sw] = p.stride === undefined ? [kh, kw] : pair(p.stride, 1, 'pool2d', 'stride');
  const [ph, pw] = pair(p.padding, 0, 'pool2d', 'padding');
  const [N, C, Ho, Wo] = shape;
  return {
    shape,
    kh,
    kw,
    ph,
    pw,
    each(visit) {
      for (let plane = 0; plane < N * C; plane++) {
        for (let oh = 0; oh < Ho; oh++) for (let ow = 0; ow < Wo; ow++) visit(plane, oh, ow, oh * sh - ph, ow * sw - pw);
      }
    },
  };
}

/** max_pool2d: padded positions are -inf; NaN propagates. */
export function maxPool2dCpu(x: ArrayLike<number>, xShape: readonly number[], p: Pool2dParams): { data: Float64Array; shape: number[] } {
  const [, , H, W] = xShape;
  const win = windows(xShape, p);
  const [, , Ho, Wo] = win.shape;
  const y = new Float64Array(win.shape.reduce((a, b) => a * b));
  win.each((plane, oh, ow, h0, w0) => {
    let m = -Infinity;
    for (let h = h0; h < h0 + win.kh; h++) {
      for (let w = w0; w < w0 + win.kw; w++) {
        if (h < 0 || h >= H || w < 0 || w >= W) continue;
        const v = x[(plane * H + h) * W + w];
        m = Number.isNaN(v) || Number.isNaN(m) ? NaN : Math.max(m, v);
      }
    }
    y[(plane * Ho + oh) * Wo + ow] = m;
  });
  return { data: y, shape: win.shape };
}

/** avg_pool2d; the divisor counts padded zeros only with countIncludePad (default true, as torch). */
export function avgPool2dCpu(x: ArrayLike<number>, xShape: readonly number[], p: AvgPool2dParams): { data: Float64Array; shape: number[] } {
  const [, , H, W] = xShape;
  const win = windows(xShape, p);
  const [, , Ho, Wo] = win.shape;
  const y = new Float64Array(win.shape.reduce((a, b) => a * b));
  win.each((plane, oh, ow, h0, w0) => {
    let s = 0;
    let inside = 0;
    let padded = 0;
    for (let h = h0; h < h0 + win.kh; h++) {
      for (let w = w0; w < w0 + win.kw; w++) {
        if (h >= -win.ph && h < H + win.ph && w >= -win.pw && w < W + win.pw) padded++;
        if (h < 0 || h >= H || w < 0 || w >= W) continue;
        s += x[(plane * H + h) * W + w];
        inside++;
      }
    }
    y[(plane * Ho + oh) * Wo + ow] = s / ((p.countIncludePad ?? true) ? padded : inside);
  });
  return { data: y, shape: win.shape };
}

/** adaptive_avg_pool2d(x, 1): the mean of every (n, c) plane. */
export function globalAvgPoolCpu(x: ArrayLike<number>, xShape: readonly number[]): { data: Float64Array; shape: number[] } {
  const [N, C, H, W] = xShape;
  const y = new Float64Array(N * C);
  for (let plane = 0; plane < N * C; plane++) {
    let s = 0;
    for (let j = 0; j < H * W; j++) s += x[plane * H * W + j];
    y[plane] = s / (H * W);
  }
  return { data: y, shape: [N, C, 1, 1] };
}
