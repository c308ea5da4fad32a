// Float64 CPU reference of torch.optim.Adam (amsgrad=False, weight_decay=0), one step, in place.
export function adamStepCpu(
  param: Float64Array,
  grad: ArrayLike<number>,
  m: Float64Array,
  v: Float64Array,
  o: { lr: number; beta1: number; beta2: number; eps: number; step: number },
): void {
  const bc1 = 1 - o.beta1 ** o.step;
  const bc2 = 1 - o.beta2 ** o.step;
  for (let i = 0; i < param.length; i++) {
    m[i] = o.beta1 * m[i] + (1 - o.beta1) * grad[i];
    v[i] = o.beta2 * v[i] + (1 - o.beta2) * grad[i] * grad[i];
    const denom = Math.sqrt(v[i]) / Math.sqrt(bc2) + o.eps;
    param[i] -= (o.lr / bc1) * (m[i] / denom);
  }
}
