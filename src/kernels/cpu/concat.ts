// Float64 CPU reference for the channel concat (torch.cat(dim=1) of NCHW tensors) and its adjoint split.

/** y = cat([a, b], dim=1). */
export function concatChannelsForwardCpu(a: ArrayLike<number>, aShape: readonly number[], b: ArrayLike<number>, bShape: readonly number[]): Float64Array {
  const [N, Ca, H, W] = aShape;
  const Cb = bShape[1];
  const hw = H * W;
  const y = new Float64Array(N * (Ca + Cb) * hw);
  for (let n = 0; n < N; n++) {
    for (let c = 0; c < Ca + Cb; c++) {
      for (let j = 0; j < hw; j++) {
        y[(n * (Ca + Cb) + c) * hw + j] = c < Ca ? a[(n * Ca + c) * hw + j] : b[(n * Cb + c - Ca) * hw + j];
      }
    }
  }
  return y;
}

/** da = dy[:, :Ca], db = dy[:, Ca:]: each output element is a copy of one input element. */
export function concatChannelsBackwardCpu(dy: ArrayLike<number>, dyShape: readonly number[], channelsA: number): { da: Float64Array; db: Float64Array } {
  const [N, C, H, W] = dyShape;
  const Ca = channelsA;
  const Cb = C - Ca;
  const hw = H * W;
  const da = new Float64Array(N * Ca * hw);
  const db = new Float64Array(N * Cb * hw);
  for (let n = 0; n < N; n++) {
    for (let c = 0; c < C; c++) {
      for (let j = 0; j < hw; j++) {
        const g = dy[(n * C + c) * hw + j];
        if (c < Ca) da[(n * Ca + c) * hw + j] = g;
        else db[(n * Cb + c - Ca) * hw + j] = g;
      }
    }
  }
  return { da, db };
}
