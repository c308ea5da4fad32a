// Channel concat for skip connections and D's (A, B) input, and its split for backward.
// One thread per output element over a 2-D grid of 1-D workgroups (index = x + y * groupsX * WG),
// because a 512x1024 map with 128 channels exceeds 65535 workgroups in one dimension.

override WG: u32 = 256;

struct Params {
  n: u32,          // elements written by this dispatch
  plane: u32,      // H * W
  c0: u32,         // forward: channels of a;  backward: first channel of dy taken
  c1: u32,         // forward: channels of b;  backward: channels taken (of the gradient written)
  c_total: u32,    // channels of y / dy
  accumulate: u32, // backward: 1 adds into the gradient (shared gradients), 0 overwrites
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read_write> dst: array<f32>;
@group(0) @binding(2) var<storage, read> src0: array<f32>;
@group(0) @binding(3) var<storage, read> src1: array<f32>;

fn flat(gid: vec3u, nwg: vec3u) -> u32 { return gid.x + gid.y * nwg.x * WG; }

// y[n, c] = c < Ca ? a[n, c] : b[n, c - Ca]   (dst = y, src0 = a, src1 = b)
@compute @workgroup_size(WG)
fn forward(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = flat(gid, nwg);
  if (i >= p.n) { return; }
  let s = i % p.plane;
  let c = (i / p.plane) % p.c_total;
  let n = i / (p.plane * p.c_total);
  if (c < p.c0) {
    dst[i] = src0[(n * p.c0 + c) * p.plane + s];
  } else {
    dst[i] = src1[(n * p.c1 + (c - p.c0)) * p.plane + s];
  }
}

// dst (+)= dy[:, c0 : c0 + c1]   (dst = da or db, src0 = dy)
@compute @workgroup_size(WG)
fn backward(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = flat(gid, nwg);
  if (i >= p.n) { return; }
  let s = i % p.plane;
  let c = (i / p.plane) % p.c1;
  let n = i / (p.plane * p.c1);
  let g = src0[(n * p.c_total + p.c0 + c) * p.plane + s];
  dst[i] = select(g, dst[i] + g, p.accumulate == 1u);
}
