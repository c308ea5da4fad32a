// Float64 CPU reference for bilinear resize, from ATen's upsample_bilinear2d (CPU kernel) definitions:
// area_pixel_compute_source_index clamps negative source coordinates to 0 when align_corners is false,
// and the upper tap is clamped to the last row/column. No antialias.
import type { ResizeParams } from '../resize.js';

export function resizeBilinearCpu(
  x: ArrayLike<number>,
  xShape: readonly number[],
  outH: number,
  outW: number,
  p: ResizeParams & { channels?: number; batch?: number } = {},
): { data: Float64Array; shape: number[] } {
  const [srcN, srcC, H, W] = xShape;
  const off = p.srcBatchOffset ?? 0;
  const N = p.batch ?? srcN - off;
  const C = p.channels ?? srcC;
  const align = p.alignCorners ?? false;
  const mul = p.mul ?? 1;
  const add = p.add ?? 0;
  const taps = (o: number, inSize: number, outSize: number): [number, number, number] => {
    let s: number;
    if (align) s = outSize > 1 ? (o * (inSize - 1)) / (outSize - 1) : 0;
    else s = Math.max(((o + 0.5) * inSize) / outSize - 0.5, 0);
    const i0 = Math.min(Math.floor(s), inSize - 1);
    return [i0, Math.min(i0 + 1, inSize - 1), s - i0];
  };
  const y = new Float64Array(N * C * outH * outW);
  for (let n = 0; n < N; n++) {
    for (let c = 0; c < C; c++) {
      const base = ((n + off) * srcC + (srcC === 1 ? 0 : c)) * H * W;
      for (let oh = 0; oh < outH; oh++) {
        const [h0, h1, lh] = taps(oh, H, outH);
        for (let ow = 0; ow < outW; ow++) {
          const [w0, w1, lw] = taps(ow, W, outW);
          const v =
            (1 - lh) * ((1 - lw) * x[base + h0 * W + w0] + lw * x[base + h0 * W + w1]) +
            lh * ((1 - lw) * x[base + h1 * W + w0] + lw * x[base + h1 * W + w1]);
          y[((n * C + c) * outH + oh) * outW + ow] = v * mul + add;
        }
      }
    }
  }
  return { data: y, shape: [N, C, outH, outW] };
}
