// Elementwise activations, forward and backward.
// Work split: one thread per element over a 2-D grid of 1-D workgroups (index = x + y * groupsX * WG),
// because a 512x1024x64 activation has more elements than 65535 workgroups of 256 can cover in one dimension.
// ACT selects the function at pipeline creation: 0 ReLU, 1 LeakyReLU(slope), 2 tanh, 3 sigmoid.

override WG: u32 = 256;
override ACT: u32 = 0;

struct Params {
  n: u32,
  accumulate: u32, // backward: 1 adds into dx (llm.c convention for shared gradients), 0 overwrites
  slope: f32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> src: array<f32>;      // forward: x; backward: x (ReLU/Leaky) or y (tanh/sigmoid)
@group(0) @binding(2) var<storage, read_write> dst: array<f32>; // forward: y; backward: dy is binding 3, dx here
@group(0) @binding(3) var<storage, read> dy: array<f32>;

fn flat(gid: vec3u, nwg: vec3u) -> u32 { return gid.x + gid.y * nwg.x * WG; }

fn act(x: f32) -> f32 {
  switch ACT {
    // Not max(x, 0): WGSL leaves max's NaN behaviour to the implementation (lavapipe returns 0), and
    // torch's relu propagates NaN, which the trainer's NaN-loss check relies on.
    case 0u: { return select(x, 0.0, x < 0.0); }
    case 1u: { return select(x * p.slope, x, x > 0.0); }
    case 2u: { return tanh(x); }
    default: { return 1.0 / (1.0 + exp(-x)); }
  }
}

// Derivative written in terms of what backward is given: x for ReLU/Leaky, y for tanh/sigmoid.
fn dact(s: f32) -> f32 {
  switch ACT {
    case 0u: { return select(0.0, 1.0, s > 0.0); }
    case 1u: { return select(p.slope, 1.0, s > 0.0); }
    case 2u: { return 1.0 - s * s; }
    default: { return s * (1.0 - s); }
  }
}

@compute @workgroup_size(WG)
fn forward(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = flat(gid, nwg);
  if (i >= p.n) { return; }
  dst[i] = act(src[i]);
}

@compute @workgroup_size(WG)
fn backward(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = flat(gid, nwg);
  if (i >= p.n) { return; }
  let g = dy[i] * dact(src[i]);
  dst[i] = select(g, dst[i] + g, p.accumulate == 1u);
}
