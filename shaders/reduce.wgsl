// out[0] = scale * Σ_i term(x[i], target_i): a map-reduce in two passes of tree reductions.
// `term` is not defined here: the caller appends its definition (src/kernels/reduce.ts: identity for a
// plain sum; shaders/loss.wgsl: the BCE / MSE / L1 terms), so the loss terms are evaluated inside the
// first pass and no n-sized temporary is written.
//
// Work split:
//   pass 1 (partial_scalar / partial_tensor): workgroup w takes the chunk of WG * ITEMS consecutive
//     elements starting at w * WG * ITEMS; each thread sums ITEMS of them (strided by WG so a warp reads
//     contiguous memory), then the workgroup tree-reduces its WG values in workgroup memory and writes
//     partial[w]. The grid is 2-D (w = wid.x + wid.y * nwg.x) because a 512x1024x64 map has more than
//     65535 chunks.
//   pass 2 (finalize): one workgroup; thread t sums partials t, t + WG, ... then the tree reduction, and
//     out[0] = scale * total.
// Why trees: a serial fp32 loop over n values has error growing like n ulps (1.5M terms of a 512x1024x3
// image lose ~3 significant digits); pairwise (tree) summation grows like log2(n) ulps (Higham,
// "Accuracy and Stability of Numerical Algorithms", 2nd ed., section 4.2). Float atomics do not exist in
// WGSL, and their order would be nondeterministic anyway.

override WG: u32 = 256;
const ITEMS: u32 = 4u;

struct Params {
  n: u32,            // elements of x
  count: u32,        // partials (pass 1 writes them, finalize reads them)
  accumulate: u32,   // elementwise kernels appended to this file (loss gradients): 1 adds into dst
  target_value: f32, // *_scalar: the target of every element
  scale: f32,        // finalize: multiplies the total (1/n for a mean); loss gradients: scale/n
}

@group(0) @binding(0) var<uniform> u: Params;
@group(0) @binding(1) var<storage, read_write> dst: array<f32>; // partials (pass 1) | out (finalize)
@group(0) @binding(2) var<storage, read> x: array<f32>;        // values (pass 1) | partials (finalize)
@group(0) @binding(3) var<storage, read> target_t: array<f32>; // *_tensor only: per-element target

var<workgroup> scratch: array<f32, WG>;

fn reduce_and_store(lid: u32, value: f32, slot: u32) {
  scratch[lid] = value;
  workgroupBarrier();
  for (var stride = WG / 2u; stride > 0u; stride = stride / 2u) {
    if (lid < stride) { scratch[lid] = scratch[lid] + scratch[lid + stride]; }
    workgroupBarrier();
  }
  if (lid == 0u) { dst[slot] = scratch[0] * u.scale; }
}

fn chunk_index(wid: vec3u, nwg: vec3u) -> u32 { return wid.x + wid.y * nwg.x; }

@compute @workgroup_size(WG)
fn partial_scalar(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_index) lid: u32) {
  let w = chunk_index(wid, nwg);
  if (w >= u.count) { return; } // the 2-D grid may round up past the chunk count (uniform per workgroup)
  let base = w * WG * ITEMS;
  var s = 0.0;
  for (var k = 0u; k < ITEMS; k++) {
    let i = base + k * WG + lid;
    if (i < u.n) { s += term(x[i], u.target_value); }
  }
  reduce_and_store(lid, s, w);
}

@compute @workgroup_size(WG)
fn partial_tensor(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_index) lid: u32) {
  let w = chunk_index(wid, nwg);
  if (w >= u.count) { return; }
  let base = w * WG * ITEMS;
  var s = 0.0;
  for (var k = 0u; k < ITEMS; k++) {
    let i = base + k * WG + lid;
    if (i < u.n) { s += term(x[i], target_t[i]); }
  }
  reduce_and_store(lid, s, w);
}

@compute @workgroup_size(WG)
fn finalize(@builtin(local_invocation_index) lid: u32) {
  var s = 0.0;
  for (var i = lid; i < u.count; i += WG) { s += x[i]; }
  reduce_and_store(lid, s, 0u);
}
