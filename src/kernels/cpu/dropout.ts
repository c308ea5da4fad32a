// Float64 CPU reference for dropout. The mask comes from the same counter-based generator as the shader
// (hashUniform in src/runtime/random.ts, twin of shaders/random.wgsl), so the GPU mask is reproduced exactly.
import { hashUniform } from '../../runtime/random.js';

/** Per-element factor: 0 where hashUniform(seed, i) < p (dropped), else 1 / (1 - p). */
export function dropoutMaskCpu(n: number, p: number, seed: number): Float64Array {
  return Float64Array.from({ length: n }, (_, i) => (hashUniform(seed, i) < p ? 0 : 1 / (1 - p)));
}

/** y = x * mask (torch.nn.Dropout in training mode, with our seeded mask). */
export function dropoutForwardCpu(x: ArrayLike<number>, p: number, seed: number): Float64Array {
  const mask = dropoutMaskCpu(x.length, p, seed);
  return mask.map((k, i) => k * x[i]);
}

/** dx = dy * mask: the op is linear in x, so its adjoint applies the same mask. */
export function dropoutBackwardCpu(dy: ArrayLike<number>, p: number, seed: number): Float64Array {
  const mask = dropoutMaskCpu(dy.length, p, seed);
  return mask.map((k, i) => k * dy[i]);
}
