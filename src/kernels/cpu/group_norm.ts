// Float64 CPU reference for GroupNorm (torch.nn.GroupNorm semantics): written over the plain definition,
// one (n, group) at a time, independent of the shader's row/group/channel reduction split, so the GPU
// tests compare two different computations. Proven against central finite differences in
// test/kernels/group_norm.test.ts and against torch in test/fixtures/group_norm.json.

/** What forward returns: the output and what backward needs (per (n, group): mean and rstd). */
export interface GroupNormCpuResult {
  y: Float64Array;
  mean: Float64Array;
  rstd: Float64Array;
}

/**
 * y = (x - mean) * rstd * gamma[c] + beta[c], with mean and the biased variance over the (C/groups)*H*W
 * values of each (n, group) and rstd = 1 / sqrt(var + eps).
 */
export function groupNormForwardCpu(
  x: ArrayLike<number>,
  shape: readonly number[],
  groups: number,
  gamma: ArrayLike<number> | null,
  beta: ArrayLike<number> | null,
  eps = 1e-5,
): GroupNormCpuResult {
  const [N, C, H, W] = shape;
  if (C % groups !== 0) throw new Error(`groupNormForwardCpu: groups ${groups} does not divide ${C} channels`);
  const hw = H * W;
  const m = (C / groups) * hw;
  const y = new Float64Array(N * C * hw);
  const mean = new Float64Array(N * groups);
  const rstd = new Float64Array(N * groups);
  for (let g = 0; g < N * groups; g++) {
    const base = g * m;
    let sum = 0;
    for (let k = 0; k < m; k++) sum += x[base + k];
    const mu = sum / m;
    let sq = 0;
    for (let k = 0; k < m; k++) sq += (x[base + k] - mu) ** 2;
    const r = 1 / Math.sqrt(sq / m + eps);
    mean[g] = mu;
    rstd[g] = r;
    for (let k = 0; k < m; k++) {
      const c = Math.floor((base + k) / hw) % C;
      y[base + k] = (x[base + k] - mu) * r * (gamma ? gamma[c] : 1) + (beta ? beta[c] : 0);
    }
  }
  return { y, mean, rstd };
}

/**
 * Gradients of L given dy = dL/dy. With xhat = (x - mean) * rstd and gd = gamma[c] * dy (dL/dxhat), means
 * over the group:
 *   dx = rstd * (gd - mean(gd) - xhat * mean(gd * xhat))
 *   dgamma[c] = Σ_{n,h,w} dy * xhat,   dbeta[c] = Σ_{n,h,w} dy
 */
export function groupNormBackwardCpu(
  dy: ArrayLike<number>,
  x: ArrayLike<number>,
  shape: readonly number[],
  groups: number,
  mean: ArrayLike<number>,
  rstd: ArrayLike<number>,
  gamma: ArrayLike<number> | null,
): { dx: Float64Array; dgamma: Float64Array; dbeta: Float64Array } {
  const [N, C, H, W] = shape;
  const hw = H * W;
  const m = (C / groups) * hw;
  const dx = new Float64Array(N * C * hw);
  const dgamma = new Float64Array(C);
  const dbeta = new Float64Array(C);
  for (let g = 0; g < N * groups; g++) {
    const base = g * m;
    let sumG = 0;
    let sumGXhat = 0;
    for (let k = 0; k < m; k++) {
      const i = base + k;
      const c = Math.floor(i / hw) % C;
      const xhat = (x[i] - mean[g]) * rstd[g];
      const gd = (gamma ? gamma[c] : 1) * dy[i];
      sumG += gd;
      sumGXhat += gd * xhat;
      dgamma[c] += dy[i] * xhat;
      dbeta[c] += dy[i];
    }
    for (let k = 0; k < m; k++) {
      const i = base + k;
      const c = Math.floor(i / hw) % C;
      const xhat = (x[i] - mean[g]) * rstd[g];
      dx[i] = rstd[g] * ((gamma ? gamma[c] : 1) * dy[i] - sumG / m - (xhat * sumGXhat) / m);
    }
  }
  return { dx, dgamma, dbeta };
}
