// Float64 CPU reference for BatchNorm2d (torch semantics), training and eval mode, forward and backward.
// Written over the plain definition, channel by channel over (N, H, W), independent of the shader.

export interface BatchNormCpuOptions {
  training: boolean;
  eps?: number;
  momentum?: number;
}

export interface BatchNormCpuResult {
  y: Float64Array;
  /** Per channel: what backward needs (batch statistics in training, running ones in eval). */
  mean: Float64Array;
  rstd: Float64Array;
  /** Running statistics after this call (updated in training, unchanged in eval); null without them. */
  runningMean: Float64Array | null;
  runningVar: Float64Array | null;
}

/**
 * Training: mean and biased variance per channel over N*H*W values normalise; the running statistics
 * become (1 - momentum) * running + momentum * batch, with the UNBIASED variance (var * M / (M - 1)), as
 * torch.nn.BatchNorm2d does. Eval: the running statistics normalise. Training with M = N*H*W = 1 is
 * refused, as torch refuses it ("Expected more than 1 value per channel when training").
 */
export function batchNormForwardCpu(
  x: ArrayLike<number>,
  shape: readonly number[],
  gamma: ArrayLike<number> | null,
  beta: ArrayLike<number> | null,
  runningMean: ArrayLike<number> | null,
  runningVar: ArrayLike<number> | null,
  o: BatchNormCpuOptions,
): BatchNormCpuResult {
  const [N, C, H, W] = shape;
  const hw = H * W;
  const M = N * hw;
  const eps = o.eps ?? 1e-5;
  const momentum = o.momentum ?? 0.1;
  if (o.training && M <= 1) throw new Error(`batchNormForwardCpu: expected more than 1 value per channel when training, got ${M}`);
  if (!o.training && (!runningMean || !runningVar)) throw new Error('batchNormForwardCpu: eval mode needs running statistics');
  const y = new Float64Array(N * C * hw);
  const mean = new Float64Array(C);
  const rstd = new Float64Array(C);
  const newMean = runningMean ? Float64Array.from(runningMean) : null;
  const newVar = runningVar ? Float64Array.from(runningVar) : null;
  const at = (n: number, c: number, j: number) => (n * C + c) * hw + j;
  for (let c = 0; c < C; c++) {
    let m: number;
    let variance: number;
    if (o.training) {
      let sum = 0;
      for (let n = 0; n < N; n++) for (let j = 0; j < hw; j++) sum += x[at(n, c, j)];
      m = sum / M;
      let sq = 0;
      for (let n = 0; n < N; n++) for (let j = 0; j < hw; j++) sq += (x[at(n, c, j)] - m) ** 2;
      variance = sq / M;
      if (newMean && newVar) {
        newMean[c] = (1 - momentum) * newMean[c] + momentum * m;
        newVar[c] = (1 - momentum) * newVar[c] + momentum * variance * (M / (M - 1));
      }
    } else {
      m = runningMean![c];
      variance = runningVar![c];
    }
    mean[c] = m;
    rstd[c] = 1 / Math.sqrt(variance + eps);
    for (let n = 0; n < N; n++) {
      for (let j = 0; j < hw; j++) {
        const i = at(n, c, j);
        y[i] = (x[i] - m) * rstd[c] * (gamma ? gamma[c] : 1) + (beta ? beta[c] : 0);
      }
    }
  }
  return { y, mean, rstd, runningMean: newMean, runningVar: newVar };
}

/**
 * Gradients given dy. Training: the batch statistics depend on x (Ioffe & Szegedy 2015, section 3), so
 * with xhat = (x - mean) * rstd and means over the channel's N*H*W values
 *   dx = gamma * rstd * (dy - mean(dy) - xhat * mean(dy * xhat)).
 * Eval: mean and rstd are constants, dx = gamma * rstd * dy. Both: dgamma = Σ dy xhat, dbeta = Σ dy.
 */
export function batchNormBackwardCpu(
  dy: ArrayLike<number>,
  x: ArrayLike<number>,
  shape: readonly number[],
  mean: ArrayLike<number>,
  rstd: ArrayLike<number>,
  gamma: ArrayLike<number> | null,
  o: { training: boolean },
): { dx: Float64Array; dgamma: Float64Array; dbeta: Float64Array } {
  const [N, C, H, W] = shape;
  const hw = H * W;
  const M = N * hw;
  const dx = new Float64Array(N * C * hw);
  const dgamma = new Float64Array(C);
  const dbeta = new Float64Array(C);
  const at = (n: number, c: number, j: number) => (n * C + c) * hw + j;
  for (let c = 0; c < C; c++) {
    let sumDy = 0;
    let sumDyXhat = 0;
    for (let n = 0; n < N; n++) {
      for (let j = 0; j < hw; j++) {
        const i = at(n, c, j);
        sumDy += dy[i];
        sumDyXhat += dy[i] * (x[i] - mean[c]) * rstd[c];
      }
    }
    dgamma[c] = sumDyXhat;
    dbeta[c] = sumDy;
    const g = gamma ? gamma[c] : 1;
    for (let n = 0; n < N; n++) {
      for (let j = 0; j < hw; j++) {
        const i = at(n, c, j);
        const xhat = (x[i] - mean[c]) * rstd[c];
        dx[i] = o.training ? g * rstd[c] * (dy[i] - sumDy / M - (xhat * sumDyXhat) / M) : g * rstd[c] * dy[i];
      }
    }
  }
  return { dx, dgamma, dbeta };
}
