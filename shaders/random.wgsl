// Counter-based random numbers shared by kernels that need them (dropout, init). Prepended to those
// shaders' source. The TypeScript twin is src/runtime/random.ts (pcgHash, hashUniform, hashNormal).

fn pcg_hash(v: u32) -> u32 {
  let state = v * 747796405u + 2891336453u;
  let word = ((state >> ((state >> 28u) + 4u)) ^ state) * 277803737u;
  return (word >> 22u) ^ word;
}

// Uniform in [0, 1) with 24 random bits, exact in f32.
fn hash_uniform(seed: u32, index: u32) -> f32 {
  let h = pcg_hash(pcg_hash(seed) ^ index);
  return f32(h >> 8u) / 16777216.0;
}

fn hash_normal(seed: u32, index: u32) -> f32 {
  let u1 = hash_uniform(seed, 2u * index) + 1.0 / 33554432.0;
  let u2 = hash_uniform(seed, 2u * index + 1u);
  return sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2);
}
