// Float64 CPU reference for conv2d (PyTorch semantics: cross-correlation, zero padding, no dilation).
// Written as the plainest loops over the definition, independent of the GEMM formulation the GPU uses,
// so the GPU kernels are checked against the formula rather than against a second copy of themselves.
import { conv2dOutputShape, pair, type Conv2dParams } from '../conv2d.js';

/** y[n, co, oh, ow] = b[co] + sum_{ci, kh, kw} w[co, ci, kh, kw] * x[n, ci, oh*sh - ph + kh, ow*sw - pw + kw]. */
export function conv2dForwardCpu(
  x: ArrayLike<number>,
  xShape: readonly number[],
  w: ArrayLike<number>,
  wShape: readonly number[],
  b: ArrayLike<number> | null,
  p: Conv2dParams = {},
): { data: Float64Array; shape: number[] } {
  const shape = conv2dOutputShape(xShape, wShape, p);
  const [N, Cin, H, W] = xShape;
  const [Cout, , KH, KW] = wShape;
  const [, , Ho, Wo] = shape;
  const [sh, sw] = pair(p.stride, 1, 'conv2d', 'stride');
  const [ph, pw] = pair(p.padding, 0, 'conv2d', 'padding');
  const y = new Float64Array(N * Cout * Ho * Wo);
  for (let n = 0; n < N; n++) {
    for (let co = 0; co < Cout; co++) {
      for (let oh = 0; oh < Ho; oh++) {
        for (let ow = 0; ow < Wo; ow++) {
          let s = b ? b[co] : 0;
          for (let ci = 0; ci < Cin; ci++) {
            for (let kh = 0; kh < KH; kh++) {
              const ih = oh * sh - ph + kh;
              if (ih < 0 || ih >= H) continue;
              for (let kw = 0; kw < KW; kw++) {
                const iw = ow * sw - pw + kw;
                if (iw < 0 || iw >= W) continue;
                s += w[((co * Cin + ci) * KH + kh) * KW + kw] * x[((n * Cin + ci) * H + ih) * W + iw];
              }
            }
          }
          y[((n * Cout + co) * Ho + oh) * Wo + ow] = s;
        }
      }
    }
  }
  return { data: y, shape };
}

/**
 * All three gradients of conv2d given dy = dL/dy: each forward term w*x contributes dy*x to dw, dy*w to dx,
 * and dy to db. `db` is null when the layer has no bias.
 */
export function conv2dBackwardCpu(
  dy: ArrayLike<number>,
  x: ArrayLike<number>,
  xShape: readonly number[],
  w: ArrayLike<number>,
  wShape: readonly number[],
  p: Conv2dParams = {},
  hasBias = true,
): { dx: Float64Array; dw: Float64Array; db: Float64Array | null } {
  const [, , Ho, Wo] = conv2dOutputShape(xShape, wShape, p);
  const [N, Cin, H, W] = xShape;
  const [Cout, , KH, KW] = wShape;
  const [sh, sw] = pair(p.stride, 1, 'conv2d', 'stride');
  const [ph, pw] = pair(p.padding, 0, 'conv2d', 'padding');
  const dx = new Float64Array(N * Cin * H * W);
  const dw = new Float64Array(Cout * Cin * KH * KW);
  const db = hasBias ? new Float64Array(Cout) : null;
  for (let n = 0; n < N; n++) {
    for (let co = 0; co < Cout; co++) {
      for (let oh = 0; oh < Ho; oh++) {
        for (let ow = 0; ow < Wo; ow++) {
          const g = dy[((n * Cout + co) * Ho + oh) * Wo + ow];
          if (db) db[co] += g;
          for (let ci = 0; ci < Cin; ci++) {
            for (let kh = 0; kh < KH; kh++) {
              const ih = oh * sh - ph + kh;
              if (ih < 0 || ih >= H) continue;
              for (let kw = 0; kw < KW; kw++) {
                const iw = ow * sw - pw + kw;
                if (iw < 0 || iw >= W) continue;
                const xi = ((n * Cin + ci) * H + ih) * W + iw;
                const wi = ((co * Cin + ci) * KH + kh) * KW + kw;
                dx[xi] += g * w[wi];
                dw[wi] += g * x[xi];
              }
            }
          }
        }
      }
    }
  }
  return { dx, dw, db };
}
