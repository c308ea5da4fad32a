// Seeded weight initialisation: t[i] = mean + std * N(0,1) drawn by hash_normal(seed, i)
// (shaders/random.wgsl, prepended), or a constant. Counter-based, so the CPU twin in
// src/runtime/random.ts reproduces every value and the result does not depend on the thread layout.

override WG: u32 = 256;

struct Params {
  n: u32,
  seed: u32,
  mean: f32, // or the constant
  stddev: f32,
}

@group(0) @binding(0) var<uniform> u: Params;
@group(0) @binding(1) var<storage, read_write> t: array<f32>;

fn flat(gid: vec3u, nwg: vec3u) -> u32 { return gid.x + gid.y * nwg.x * WG; }

@compute @workgroup_size(WG)
fn normal(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = flat(gid, nwg);
  if (i >= u.n) { return; }
  t[i] = u.mean + u.stddev * hash_normal(u.seed, i);
}

@compute @workgroup_size(WG)
fn constant(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = flat(gid, nwg);
  if (i >= u.n) { return; }
  t[i] = u.mean;
}
