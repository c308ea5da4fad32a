// Float64 CPU reference for the channel-slice copy: torch's dst[:, c0:c0+Cb] = src (or relu(src)).
export function channelSliceCopyCpu(
  dst: ArrayLike<number>,
  dstShape: readonly number[],
  src: ArrayLike<number>,
  srcShape: readonly number[],
  c0 = 0,
  relu = false,
): Float64Array {
  const out = Float64Array.from(dst);
  const [N, Cb, H, W] = srcShape;
  const Ct = dstShape[1];
  const HW = H * W;
  for (let n = 0; n < N; n++) {
    for (let c = 0; c < Cb; c++) {
      for (let j = 0; j < HW; j++) {
        const v = src[(n * Cb + c) * HW + j];
        out[(n * Ct + c0 + c) * HW + j] = relu ? (v < 0 ? 0 : v) : v;
      }
    }
  }
  return out;
}
