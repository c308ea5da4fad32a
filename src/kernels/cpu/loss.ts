// Float64 CPU references for the mean losses and their gradients (torch semantics).

export type LossKind = 'bce' | 'mse' | 'l1';

function term(kind: LossKind, v: number, t: number): number {
  if (kind === 'bce') return Math.max(v, 0) - v * t + Math.log1p(Math.exp(-Math.abs(v)));
  if (kind === 'mse') return (v - t) ** 2;
  return Math.abs(v - t);
}

function dterm(kind: LossKind, v: number, t: number): number {
  if (kind === 'bce') return 1 / (1 + Math.exp(-v)) - t;
  if (kind === 'mse') return 2 * (v - t);
  return Math.sign(v - t);
}

const targetAt = (target: number | ArrayLike<number>, i: number) => (typeof target === 'number' ? target : target[i]);

export function lossForwardCpu(kind: LossKind, x: ArrayLike<number>, target: number | ArrayLike<number>): number {
  let s = 0;
  for (let i = 0; i < x.length; i++) s += term(kind, x[i], targetAt(target, i));
  return s / x.length;
}

/** scale · dLoss/dx for the mean loss. */
export function lossBackwardCpu(kind: LossKind, x: ArrayLike<number>, target: number | ArrayLike<number>, scale = 1): Float64Array {
  return Float64Array.from({ length: x.length }, (_, i) => (scale * dterm(kind, x[i], targetAt(target, i))) / x.length);
}
