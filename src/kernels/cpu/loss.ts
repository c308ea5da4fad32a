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

/**
 * The one-pass loss + gradient (src/kernels/loss.ts lossStep): x split into `targets.length` equal segments
 * (one, or two halves of the batch) each averaged on its own; dx = [dxOld +] scale_s · dLoss_s/dx, then times
 * act'(x) when x is the output of `through` (1 - x² for tanh, the x > 0 mask for relu/leaky).
 */
export function lossStepCpu(
  kind: LossKind,
  x: ArrayLike<number>,
  target: readonly number[] | ArrayLike<number>,
  o: { tensorTarget?: boolean; scales?: readonly number[]; dxOld?: ArrayLike<number>; through?: 'relu' | 'tanh' | { leaky: number } } = {},
): { loss: number[]; dx: Float64Array } {
  const segments = o.tensorTarget ? 1 : target.length;
  const seg = x.length / segments;
  const loss: number[] = [];
  const dx = new Float64Array(x.length);
  for (let s = 0; s < segments; s++) {
    const xs = Array.from({ length: seg }, (_, i) => x[s * seg + i]);
    const ts = o.tensorTarget ? Array.from({ length: seg }, (_, i) => target[s * seg + i]) : target[s];
    loss.push(lossForwardCpu(kind, xs, ts));
    lossBackwardCpu(kind, xs, ts, o.scales?.[s] ?? 1).forEach((g, i) => (dx[s * seg + i] = g));
  }
  for (let i = 0; i < x.length; i++) {
    let g = dx[i] + (o.dxOld ? o.dxOld[i] : 0);
    const v = x[i];
    if (o.through === 'tanh') g *= 1 - v * v;
    else if (o.through === 'relu') g *= v > 0 ? 1 : 0;
    else if (o.through) g *= v > 0 ? 1 : o.through.leaky;
    dx[i] = g;
  }
  return { loss, dx };
}
