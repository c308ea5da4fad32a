// Channel-slice copy: dst[n, c0 + c, h, w] = f(src[n, c, h, w]) for c in [0, Cb), f = identity or ReLU.
// Writing each branch of an Inception block into its channel range of a preallocated [N, Ctotal, H, W]
// buffer makes the block's torch.cat free: no separate concat pass. The ReLU option fuses a
// BasicConv2d's activation into the same copy.
// Work split: one thread per src element, 2-D grid of 1-D workgroups (index = x + y * groupsX * WG).

override WG: u32 = 256;

struct Params {
  N: u32,
  Cb: u32,     // src channels
  Ct: u32,     // dst channels
  HW: u32,
  c0: u32,     // first dst channel
  relu: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> src: array<f32>;
@group(0) @binding(2) var<storage, read_write> dst: array<f32>;

@compute @workgroup_size(WG)
fn copy(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = gid.x + gid.y * nwg.x * WG;
  if (i >= p.N * p.Cb * p.HW) { return; }
  let j = i % p.HW;
  let c = (i / p.HW) % p.Cb;
  let n = i / (p.HW * p.Cb);
  var v = src[i];
  // Not max(v, 0): WGSL leaves max's NaN behaviour to the implementation; torch's relu keeps NaN.
  if (p.relu == 1u) { v = select(v, 0.0, v < 0.0); }
  dst[(n * p.Ct + p.c0 + c) * p.HW + j] = v;
}
