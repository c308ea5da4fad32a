// Dropout as torch.nn.Dropout in training: element i is zeroed with probability p and kept elements are
// scaled by 1/(1-p). The mask is a pure function of (seed, i) (hash_uniform from shaders/random.wgsl,
// prepended at load time), so backward regenerates it instead of storing a mask tensor.
// One thread per element over a 2-D grid of 1-D workgroups.

override WG: u32 = 256;

struct Params {
  n: u32,
  seed: u32,
  accumulate: u32, // backward: 1 adds into dx
  p: f32,
  scale: f32,      // 1 / (1 - p)
}

@group(0) @binding(0) var<uniform> u: Params;
@group(0) @binding(1) var<storage, read_write> dst: array<f32>; // forward: y; backward: dx
@group(0) @binding(2) var<storage, read> src: array<f32>;       // forward: x; backward: dy

fn flat(gid: vec3u, nwg: vec3u) -> u32 { return gid.x + gid.y * nwg.x * WG; }

fn keep_scale(i: u32) -> f32 {
  return select(u.scale, 0.0, hash_uniform(u.seed, i) < u.p);
}

@compute @workgroup_size(WG)
fn forward(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = flat(gid, nwg);
  if (i >= u.n) { return; }
  dst[i] = src[i] * keep_scale(i);
}

@compute @workgroup_size(WG)
fn backward(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = flat(gid, nwg);
  if (i >= u.n) { return; }
  let g = src[i] * keep_scale(i);
  dst[i] = select(g, dst[i] + g, u.accumulate == 1u);
}
