// Float64 CPU reference for conv_transpose2d (PyTorch semantics, no dilation, groups = 1).
// Written in the scatter form of the definition (each input pixel paints a weighted KHxKW stamp into the
// output at stride s, shifted by -padding), which is how PyTorch documents it and is independent of the
// gather/GEMM form the GPU kernels use.
import { convTranspose2dOutputShape, type ConvTranspose2dParams } from '../conv_transpose2d.js';
import { pair } from '../conv2d.js';

/** y[n, co, ih*sh - ph + kh, iw*sw - pw + kw] += x[n, ci, ih, iw] * w[ci, co, kh, kw]; y starts at b[co]. */
export function convTranspose2dForwardCpu(
  x: ArrayLike<number>,
  xShape: readonly number[],
  w: ArrayLike<number>,
  wShape: readonly number[],
  b: ArrayLike<number> | null,
  p: ConvTranspose2dParams = {},
): { data: Float64Array; shape: number[] } {
  const shape = convTranspose2dOutputShape(xShape, wShape, p);
  const [N, Cin, H, W] = xShape;
  const [, Cout, KH, KW] = wShape;
  const [, , Ho, Wo] = shape;
  const [sh, sw] = pair(p.stride, 1, 'convTranspose2d', 'stride');
  const [ph, pw] = pair(p.padding, 0, 'convTranspose2d', 'padding');
  const y = new Float64Array(N * Cout * Ho * Wo);
  if (b) for (let n = 0; n < N; n++) for (let co = 0; co < Cout; co++) y.fill(b[co], (n * Cout + co) * Ho * Wo, (n * Cout + co + 1) * Ho * Wo);
  for (let n = 0; n < N; n++) {
    for (let ci = 0; ci < Cin; ci++) {
      for (let ih = 0; ih < H; ih++) {
        for (let iw = 0; iw < W; iw++) {
          const v = x[((n * Cin + ci) * H + ih) * W + iw];
          for (let co = 0; co < Cout; co++) {
            for (let kh = 0; kh < KH; kh++) {
              const oh = ih * sh - ph + kh;
              if (oh < 0 || oh >= Ho) continue;
              for (let kw = 0; kw < KW; kw++) {
                const ow = iw * sw - pw + kw;
                if (ow < 0 || ow >= Wo) continue;
                y[((n * Cout + co) * Ho + oh) * Wo + ow] += v * w[((ci * Cout + co) * KH + kh) * KW + kw];
              }
            }
          }
        }
      }
    }
  }
  return { data: y, shape };
}

/** dx, dw and db of conv_transpose2d given dy, by differentiating each scatter term x*w of the forward. */
export function convTranspose2dBackwardCpu(
  dy: ArrayLike<number>,
  x: ArrayLike<number>,
  xShape: readonly number[],
  w: ArrayLike<number>,
  wShape: readonly number[],
  p: ConvTranspose2dParams = {},
  hasBias = true,
): { dx: Float64Array; dw: Float64Array; db: Float64Array | null } {
  const [, , Ho, Wo] = convTranspose2dOutputShape(xShape, wShape, p);
  const [N, Cin, H, W] = xShape;
  const [, Cout, KH, KW] = wShape;
  const [sh, sw] = pair(p.stride, 1, 'convTranspose2d', 'stride');
  const [ph, pw] = pair(p.padding, 0, 'convTranspose2d', 'padding');
  const dx = new Float64Array(N * Cin * H * W);
  const dw = new Float64Array(Cin * Cout * KH * KW);
  const db = hasBias ? new Float64Array(Cout) : null;
  if (db) {
    for (let n = 0; n < N; n++) {
      for (let co = 0; co < Cout; co++) {
        for (let i = 0; i < Ho * Wo; i++) db[co] += dy[(n * Cout + co) * Ho * Wo + i];
      }
    }
  }
  for (let n = 0; n < N; n++) {
    for (let ci = 0; ci < Cin; ci++) {
      for (let ih = 0; ih < H; ih++) {
        for (let iw = 0; iw < W; iw++) {
          const xi = ((n * Cin + ci) * H + ih) * W + iw;
          for (let co = 0; co < Cout; co++) {
            for (let kh = 0; kh < KH; kh++) {
              const oh = ih * sh - ph + kh;
              if (oh < 0 || oh >= Ho) continue;
              for (let kw = 0; kw < KW; kw++) {
                const ow = iw * sw - pw + kw;
                if (ow < 0 || ow >= Wo) continue;
                const g = dy[((n * Cout + co) * Ho + oh) * Wo + ow];
                const wi = ((ci * Cout + co) * KH + kh) * KW + kw;
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
