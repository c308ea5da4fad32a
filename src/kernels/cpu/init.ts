// Float64 CPU reference for the seeded initialisers: the same counter-based normal draws as the shader
// (hashNormal in src/runtime/random.ts, twin of hash_normal in shaders/random.wgsl).
import { hashNormal } from '../../runtime/random.js';

/** t[i] = mean + std * hashNormal(seed, i). */
export function initNormalCpu(n: number, mean: number, std: number, seed: number): Float64Array {
  return Float64Array.from({ length: n }, (_, i) => mean + std * hashNormal(seed, i));
}

/** t[i] = value. */
export function initConstantCpu(n: number, value: number): Float64Array {
  return new Float64Array(n).fill(value);
}
