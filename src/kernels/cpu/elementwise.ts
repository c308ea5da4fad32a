// Float64 CPU references for dropout, channel concat and seeded initialisation. Dropout and init draw
// from the same counter-based generator as the shaders (src/runtime/random.ts), so they match exactly.
import { hashNormal, hashUniform } from '../../runtime/random.js';

export function dropoutMaskCpu(n: number, p: number, seed: number): Float64Array {
  return Float64Array.from({ length: n }, (_, i) => (hashUniform(seed, i) < p ? 0 : 1 / (1 - p)));
}

export function concatChannelsCpu(a: ArrayLike<number>, aShape: readonly number[], b: ArrayLike<number>, bShape: readonly number[]): Float64Array {
  const [N, Ca, H, W] = aShape;
  const Cb = bShape[1];
  const hw = H * W;
  const y = new Float64Array(N * (Ca + Cb) * hw);
  for (let n = 0; n < N; n++) {
    for (let c = 0; c < Ca + Cb; c++) {
      for (let j = 0; j < hw; j++) {
        y[(n * (Ca + Cb) + c) * hw + j] = c < Ca ? a[(n * Ca + c) * hw + j] : b[(n * Cb + c - Ca) * hw + j];
      }
    }
  }
  return y;
}

export function initNormalCpu(n: number, mean: number, std: number, seed: number): Float64Array {
  return Float64Array.from({ length: n }, (_, i) => mean + std * hashNormal(seed, i));
}
