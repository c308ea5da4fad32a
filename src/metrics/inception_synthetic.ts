/**
 * Deterministic synthetic weights for pytorch-fid's InceptionV3, for tests and benchmarks without the
 * real 95 MB file. Value i of tensor `key` is derived from u = hashUniform(fnv1a32(key), i) (24-bit,
 * src/runtime/random.ts) in float64 and rounded once to f32; scripts/fixtures/inception.py implements
 * the same formula, so both sides hold bit-identical weights:
 *   conv.weight   (2u - 1) * sqrt(6 / fan_in)     He-uniform (variance 2 / fan_in): activations stay O(1)
 *   bn.weight     0.8 + 0.4u
 *   bn.bias       (2u - 1) * 0.2
 *   running_mean  (2u - 1) * 0.2
 *   running_var   0.5 + u
 *   fc.weight / fc.bias as conv.weight / bn.bias (only with `includeFc`).
 * These are not a trained network: features from them mean nothing, they only exercise the arithmetic.
 */
import { pcgHash } from '../runtime/random.js';
import type { StateDict } from '../io/state_dict.js';
import { inceptionStateDictShapes } from './inception_weights.js';

/** 32-bit FNV-1a of a string's UTF-16 code units (ASCII keys: the same as of their UTF-8 bytes). */
export function fnv1a32(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 0x01000193) >>> 0;
  return h >>> 0;
}

/** One synthetic tensor of the formula above. */
export function syntheticInceptionTensor(key: string, shape: readonly number[]): Float32Array {
  const n = shape.reduce((a, b) => a * b, 1);
  // hashUniform(fnv1a32(key), i), with the per-tensor half of the hash taken out of the loop.
  const stream = pcgHash(fnv1a32(key));
  const out = new Float32Array(n);
  const leaf = key.slice(key.lastIndexOf('.') + 1);
  let map: (u: number) => number;
  if (key.endsWith('conv.weight') || key === 'fc.weight') {
    const bound = Math.sqrt(6 / (n / shape[0]));
    map = (u) => (2 * u - 1) * bound;
  } else if (leaf === 'running_var') map = (u) => 0.5 + u;
  else if (leaf === 'running_mean' || key.endsWith('bn.bias') || key === 'fc.bias') map = (u) => (2 * u - 1) * 0.2;
  else if (key.endsWith('bn.weight')) map = (u) => 0.8 + 0.4 * u;
  else throw new Error(`syntheticInceptionTensor: no formula for '${key}'`);
  for (let i = 0; i < n; i++) out[i] = map((pcgHash((stream ^ i) >>> 0) >>> 8) / 16777216);
  return out;
}

/** The whole synthetic state dict, keyed as pt_inception-2015-12-05-6726825d.pth (fc only if asked). */
export function syntheticInceptionStateDict(opts: { includeFc?: boolean } = {}): StateDict {
  const shapes = inceptionStateDictShapes();
  if (opts.includeFc) {
    shapes.set('fc.weight', [1008, 2048]);
    shapes.set('fc.bias', [1008]);
  }
  const dict: StateDict = new Map();
  for (const [key, shape] of shapes) dict.set(key, { shape, data: syntheticInceptionTensor(key, shape), dtype: 'F32' });
  return dict;
}
