// Central finite differences in float64, used to prove every CPU reference backward.
import { expectClose } from './compare.js';

/**
 * Check an analytic gradient of a scalar loss L(x) = sum(f(x) * w) against central differences.
 * `f` maps the input to the output; `grad` maps (x, dy = w) to the analytic dL/dx.
 */
export function checkGradient(opts: {
  label: string;
  x: Float64Array;
  f: (x: Float64Array) => ArrayLike<number>;
  analytic: ArrayLike<number>;
  weights: ArrayLike<number>;
  eps?: number;
  atol?: number;
  rtol?: number;
  /** Check at most this many coordinates (spread over x) to keep big cases fast. */
  maxChecks?: number;
}): void {
  const eps = opts.eps ?? 1e-6;
  const n = opts.x.length;
  const step = Math.max(1, Math.floor(n / (opts.maxChecks ?? 200)));
  const numeric: number[] = [];
  const analytic: number[] = [];
  const loss = (x: Float64Array) => {
    const y = opts.f(x);
    let s = 0;
    for (let i = 0; i < y.length; i++) s += y[i] * opts.weights[i];
    return s;
  };
  for (let i = 0; i < n; i += step) {
    const x = Float64Array.from(opts.x);
    const orig = x[i];
    x[i] = orig + eps;
    const lp = loss(x);
    x[i] = orig - eps;
    const lm = loss(x);
    numeric.push((lp - lm) / (2 * eps));
    analytic.push(opts.analytic[i]);
  }
  expectClose(analytic, numeric, { atol: opts.atol ?? 1e-6, rtol: opts.rtol ?? 1e-5, label: `${opts.label} (analytic vs finite differences)` });
}
