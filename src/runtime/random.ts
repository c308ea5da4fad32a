/**
 * Deterministic randomness. `Rng` is a small seeded PRNG for CPU-side choices (shuffles, augmentation
 * parameters, phantom geometry). `hashUniform` is the counter-based generator the WGSL kernels use
 * (dropout masks, weight init): its TypeScript twin here lets CPU references reproduce GPU draws exactly.
 */

/** PCG-style integer hash (pcg_hash from Jarzynski & Olano 2020, "Hash Functions for GPU Rendering"). */
export function pcgHash(v: number): number {
  const state = (Math.imul(v >>> 0, 747796405) + 2891336453) >>> 0;
  const word = Math.imul(((state >>> ((state >>> 28) + 4)) ^ state) >>> 0, 277803737) >>> 0;
  return ((word >>> 22) ^ word) >>> 0;
}

/** Uniform in [0, 1) from (seed, stream, index); identical to `hash_uniform` in shaders/random.wgsl. */
export function hashUniform(seed: number, index: number): number {
  const h = pcgHash((pcgHash(seed >>> 0) ^ (index >>> 0)) >>> 0);
  return (h >>> 8) / 16777216; // 24 bits: exactly representable in f32
}

/** Standard normal via Box-Muller on two hash draws; identical to `hash_normal` in shaders/random.wgsl. */
export function hashNormal(seed: number, index: number): number {
  const u1 = hashUniform(seed, 2 * index) + 1 / 33554432; // in (0, 1]: keeps log finite
  const u2 = hashUniform(seed, 2 * index + 1);
  return Math.sqrt(-2 * Math.log(u1)) * Math.cos(2 * Math.PI * u2);
}

/** Derive an independent seed for stream `stream` of `seed` (murmur3 finaliser over a golden-ratio mix). */
export function mixSeed(seed: number, stream: number): number {
  let h = (seed ^ Math.imul(stream + 1, 0x9e3779b9)) >>> 0;
  h = Math.imul(h ^ (h >>> 16), 0x85ebca6b) >>> 0;
  h = Math.imul(h ^ (h >>> 13), 0xc2b2ae35) >>> 0;
  return (h ^ (h >>> 16)) >>> 0;
}

/**
 * The data generators' seed derivation (phantom animals and poses, the synthetic dataset, splits). A different,
 * weaker mix than `mixSeed` (`b` enters only the second round); kept as it is because every phantom dataset and
 * split already written is defined by it, so changing it would change their bytes.
 */
export function mixDataSeed(a: number, b: number): number {
  let h = Math.imul((a >>> 0) ^ 0x9e3779b9, 0x85ebca6b) >>> 0;
  h = Math.imul((h ^ (b >>> 0) ^ (h >>> 13)) >>> 0, 0xc2b2ae35) >>> 0;
  return (h ^ (h >>> 16)) >>> 0;
}

/** Seeded PRNG (mulberry32) with helpers. Not cryptographic; reproducible across platforms. */
export class Rng {
  private s: number;
  constructor(seed: number) {
    this.s = seed >>> 0;
  }
  /** Uniform in [0, 1). */
  next(): number {
    this.s = (this.s + 0x6d2b79f5) >>> 0;
    let t = this.s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }
  uniform(lo: number, hi: number): number {
    return lo + (hi - lo) * this.next();
  }
  int(lo: number, hiExclusive: number): number {
    return lo + Math.floor(this.next() * (hiExclusive - lo));
  }
  normal(mean = 0, std = 1): number {
    const u1 = 1 - this.next();
    const u2 = this.next();
    return mean + std * Math.sqrt(-2 * Math.log(u1)) * Math.cos(2 * Math.PI * u2);
  }
  bool(p = 0.5): boolean {
    return this.next() < p;
  }
  pick<T>(items: readonly T[]): T {
    return items[this.int(0, items.length)];
  }
  /** Fisher-Yates shuffle in place. */
  shuffle<T>(items: T[]): T[] {
    for (let i = items.length - 1; i > 0; i--) {
      const j = this.int(0, i + 1);
      [items[i], items[j]] = [items[j], items[i]];
    }
    return items;
  }
  /** Array of normals, e.g. random test inputs. */
  normals(n: number, std = 1): Float32Array {
    const a = new Float32Array(n);
    for (let i = 0; i < n; i++) a[i] = this.normal(0, std);
    return a;
  }
}
