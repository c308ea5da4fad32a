// Float64 CPU references for what the conv kernels fuse (src/kernels/conv/fusion.ts): the activation a
// kernel applies to its input or output, and the derivative its grad-input epilogue multiplies by. The fused
// GPU launches are tested against these composed with the plain conv references.
import type { FusedActivation } from '../conv/fusion.js';

function slopeOf(a: FusedActivation): number {
  return a.kind === 'leaky_relu' ? (a.slope ?? 0.2) : 0;
}

/** act(x) element-wise. */
export function fusedActivationCpu(x: ArrayLike<number>, a: FusedActivation): Float64Array {
  const y = new Float64Array(x.length);
  const slope = slopeOf(a);
  for (let i = 0; i < x.length; i++) {
    const v = x[i];
    y[i] = a.kind === 'tanh' ? Math.tanh(v) : v > 0 ? v : a.kind === 'relu' ? 0 : slope * v;
  }
  return y;
}

/** g * act'(.) from the saved activation input ('input') or output ('output'). */
export function fusedActivationGradCpu(g: ArrayLike<number>, saved: ArrayLike<number>, a: FusedActivation, savedIs: 'input' | 'output'): Float64Array {
  const out = new Float64Array(g.length);
  const slope = slopeOf(a);
  for (let i = 0; i < g.length; i++) {
    const s = saved[i];
    let d: number;
    if (a.kind === 'tanh') {
      const y = savedIs === 'output' ? s : Math.tanh(s);
      d = 1 - y * y;
    } else {
      d = s > 0 ? 1 : a.kind === 'relu' ? 0 : slope;
    }
    out[i] = g[i] * d;
  }
  return out;
}
