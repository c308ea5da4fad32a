// Float64 CPU references for instance norm and batch norm (torch semantics), forward and backward.
// Written per group over the plain definitions, independent of the shader's reduction structure.

export interface NormCpuResult {
  y: Float64Array;
  /** Per group: (n, c) for instance norm, c for batch norm. */
  mean: Float64Array;
  rstd: Float64Array;
  /** Biased variance per group. */
  variance: Float64Array;
}

/** Indices of the elements of group g: (n, c) rows for instance norm, channel c over all n for batch norm. */
function groupIndices(shape: readonly number[], instance: boolean, g: number): number[] {
  const [N, C, H, W] = shape;
  const hw = H * W;
  const rows = instance ? [g] : Array.from({ length: N }, (_, n) => n * C + g);
  const idx: number[] = [];
  for (const r of rows) for (let j = 0; j < hw; j++) idx.push(r * hw + j);
  return idx;
}

export function normForwardCpu(
  x: ArrayLike<number>,
  shape: readonly number[],
  o: { instance: boolean; eps: number; gamma?: ArrayLike<number> | null; beta?: ArrayLike<number> | null; running?: { mean: ArrayLike<number>; var: ArrayLike<number> } },
): NormCpuResult {
  const [N, C, H, W] = shape;
  const hw = H * W;
  const G = o.instance ? N * C : C;
  const y = new Float64Array(x.length);
  const mean = new Float64Array(G);
  const rstd = new Float64Array(G);
  const variance = new Float64Array(G);
  for (let g = 0; g < G; g++) {
    const idx = groupIndices(shape, o.instance, g);
    let m: number;
    let v: number;
    if (o.running) {
      m = o.running.mean[g];
      v = o.running.var[g];
    } else {
      m = idx.reduce((s, i) => s + x[i], 0) / idx.length;
      v = idx.reduce((s, i) => s + (x[i] - m) ** 2, 0) / idx.length;
    }
    mean[g] = m;
    variance[g] = v;
    rstd[g] = 1 / Math.sqrt(v + o.eps);
    for (const i of idx) {
      const c = Math.floor(i / hw) % C;
      y[i] = (x[i] - m) * rstd[g] * (o.gamma ? o.gamma[c] : 1) + (o.beta ? o.beta[c] : 0);
    }
  }
  return { y, mean, rstd, variance };
}

/** torch's running-statistics update: (1 - momentum) running + momentum batch, unbiased batch variance. */
export function batchNormRunningUpdateCpu(
  runningMean: ArrayLike<number>,
  runningVar: ArrayLike<number>,
  batch: NormCpuResult,
  elementsPerChannel: number,
  momentum = 0.1,
): { mean: Float64Array; var: Float64Array } {
  const C = runningMean.length;
  const unbias = elementsPerChannel > 1 ? elementsPerChannel / (elementsPerChannel - 1) : 1;
  return {
    mean: Float64Array.from({ length: C }, (_, c) => (1 - momentum) * runningMean[c] + momentum * batch.mean[c]),
    var: Float64Array.from({ length: C }, (_, c) => (1 - momentum) * runningVar[c] + momentum * batch.variance[c] * unbias),
  };
}

/**
 * Gradients given dy. With batch statistics (training BN, instance norm) mean and variance depend on x:
 * dx = rstd γ (dy − mean(dy) − x̂ mean(dy x̂)); with running statistics dx = rstd γ dy.
 */
export function normBackwardCpu(
  dy: ArrayLike<number>,
  x: ArrayLike<number>,
  shape: readonly number[],
  saved: { mean: ArrayLike<number>; rstd: ArrayLike<number> },
  o: { instance: boolean; batchStats: boolean; gamma?: ArrayLike<number> | null },
): { dx: Float64Array; dgamma: Float64Array; dbeta: Float64Array } {
  const [N, C, H, W] = shape;
  const hw = H * W;
  const G = o.instance ? N * C : C;
  const dx = new Float64Array(x.length);
  const dgamma = new Float64Array(C);
  const dbeta = new Float64Array(C);
  for (let g = 0; g < G; g++) {
    const idx = groupIndices(shape, o.instance, g);
    const m = saved.mean[g];
    const r = saved.rstd[g];
    let sdy = 0;
    let sdyx = 0;
    for (const i of idx) {
      sdy += dy[i];
      sdyx += dy[i] * (x[i] - m) * r;
    }
    const c0 = o.instance ? g % C : g;
    dgamma[c0] += sdyx;
    dbeta[c0] += sdy;
    for (const i of idx) {
      const c = Math.floor(i / hw) % C;
      const gam = o.gamma ? o.gamma[c] : 1;
      const xhat = (x[i] - m) * r;
      dx[i] = o.batchStats ? gam * r * (dy[i] - sdy / idx.length - (xhat * sdyx) / idx.length) : gam * r * dy[i];
    }
  }
  return { dx, dgamma, dbeta };
}
