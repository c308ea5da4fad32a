// Float64 CPU references for the activations: the ground truth the WGSL kernels are tested against.
import type { Activation } from '../activation.js';

export function activationForwardCpu(x: ArrayLike<number>, act: Activation, slope = 0.2): Float64Array {
  const y = new Float64Array(x.length);
  for (let i = 0; i < x.length; i++) {
    const v = x[i];
    y[i] = act === 'relu' ? Math.max(v, 0) : act === 'leaky_relu' ? (v > 0 ? v : slope * v) : act === 'tanh' ? Math.tanh(v) : 1 / (1 + Math.exp(-v));
  }
  return y;
}

/** dx = dy * act'(x), computed from the forward input x. */
export function activationBackwardCpu(dy: ArrayLike<number>, x: ArrayLike<number>, act: Activation, slope = 0.2): Float64Array {
  const dx = new Float64Array(x.length);
  for (let i = 0; i < x.length; i++) {
    const v = x[i];
    let d: number;
    if (act === 'relu') d = v > 0 ? 1 : 0;
    else if (act === 'leaky_relu') d = v > 0 ? 1 : slope;
    else if (act === 'tanh') d = 1 - Math.tanh(v) ** 2;
    else {
      const s = 1 / (1 + Math.exp(-v));
      d = s * (1 - s);
    }
    dx[i] = dy[i] * d;
  }
  return dx;
}
