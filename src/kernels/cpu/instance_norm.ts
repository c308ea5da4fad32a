// Float64 CPU reference for InstanceNorm2d (torch semantics, as pix2pix uses it: no running statistics,
// optional affine). Written over the plain definition, one (n, c) map at a time, independent of the
// shader's reduction structure, so the GPU tests compare two different computations.

/** What forward returns: the output and what backward needs (per (n, c): mean and rstd). */
export interface InstanceNormCpuResult {
  y: Float64Array;
  mean: Float64Array;
  rstd: Float64Array;
}

/**
 * y = (x - mean) * rstd * gamma[c] + beta[c], with mean and the biased variance over the H*W values of
 * each (n, c) map and rstd = 1 / sqrt(var + eps) (torch.nn.InstanceNorm2d). A 1x1 map has variance 0,
 * so its output is beta (torch refuses 1x1 maps in training; pix2pix's U-Net never normalises one).
 */
export function instanceNormForwardCpu(
  x: ArrayLike<number>,
  shape: readonly number[],
  gamma: ArrayLike<number> | null,
  beta: ArrayLike<number> | null,
  eps = 1e-5,
): InstanceNormCpuResult {
  const [N, C, H, W] = shape;
  const hw = H * W;
  const y = new Float64Array(N * C * hw);
  const mean = new Float64Array(N * C);
  const rstd = new Float64Array(N * C);
  for (let row = 0; row < N * C; row++) {
    const c = row % C;
    const base = row * hw;
    let sum = 0;
    for (let j = 0; j < hw; j++) sum += x[base + j];
    const m = sum / hw;
    let sq = 0;
    for (let j = 0; j < hw; j++) sq += (x[base + j] - m) ** 2;
    const r = 1 / Math.sqrt(sq / hw + eps);
    mean[row] = m;
    rstd[row] = r;
    for (let j = 0; j < hw; j++) y[base + j] = (x[base + j] - m) * r * (gamma ? gamma[c] : 1) + (beta ? beta[c] : 0);
  }
  return { y, mean, rstd };
}

/**
 * Gradients of L given dy = dL/dy. The statistics depend on x, so with xhat = (x - mean) * rstd and
 * means over the map (the layer-norm backward of llm.c, train_gpt2.c layernorm_backward):
 *   dx = gamma * rstd * (dy - mean(dy) - xhat * mean(dy * xhat))
 *   dgamma[c] = Σ_{n,h,w} dy * xhat,   dbeta[c] = Σ_{n,h,w} dy
 */
export function instanceNormBackwardCpu(
  dy: ArrayLike<number>,
  x: ArrayLike<number>,
  shape: readonly number[],
  mean: ArrayLike<number>,
  rstd: ArrayLike<number>,
  gamma: ArrayLike<number> | null,
): { dx: Float64Array; dgamma: Float64Array; dbeta: Float64Array } {
  const [N, C, H, W] = shape;
  const hw = H * W;
  const dx = new Float64Array(N * C * hw);
  const dgamma = new Float64Array(C);
  const dbeta = new Float64Array(C);
  for (let row = 0; row < N * C; row++) {
    const c = row % C;
    const base = row * hw;
    let sumDy = 0;
    let sumDyXhat = 0;
    for (let j = 0; j < hw; j++) {
      sumDy += dy[base + j];
      sumDyXhat += dy[base + j] * (x[base + j] - mean[row]) * rstd[row];
    }
    dgamma[c] += sumDyXhat;
    dbeta[c] += sumDy;
    const g = gamma ? gamma[c] : 1;
    for (let j = 0; j < hw; j++) {
      const xhat = (x[base + j] - mean[row]) * rstd[row];
      dx[base + j] = g * rstd[row] * (dy[base + j] - sumDy / hw - (xhat * sumDyXhat) / hw);
    }
  }
  return { dx, dgamma, dbeta };
}
