// Reductions that finish the convolution weight gradients.
//
// `sum_splits`: dst[i] (+)= sum_{s < splits} src[s*count + i] for i < count, adding up the split-K
//   partial sums written by conv2d_weight_grad.wgsl `tiled`. One thread per element; 2-D grid of
//   1-D workgroups (index = x + y * groupsX * WG).
//
// `bias_grad`: dst[m] (+)= sum_{n, i < hw} src[(n*channels + m)*hw + i], the bias gradient (dy summed over
//   batch and pixels). One workgroup of WG threads per channel (grid x = channel): each thread sums a
//   strided share of the channel's pixels (consecutive threads read consecutive pixels), then a tree
//   reduction in workgroup memory.
//
// `bias_grad_serial`: the same sum with one thread per channel looping over its batch * hw values (grid:
//   channel blocks of WG). For small planes, where `bias_grad`'s 256-thread workgroup and its 8 barrier
//   steps cost far more than the sum (measured next to BIAS_SERIAL_MAX in conv2d.ts).

override WG: u32 = 256;

struct Params {
  count: u32,     // sum_splits: elements per partial
  splits: u32,    // sum_splits: number of partials
  batch: u32,     // bias_grad
  channels: u32,  // bias_grad
  hw: u32,        // bias_grad: pixels per channel plane
  accumulate: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> src: array<f32>;
@group(0) @binding(2) var<storage, read_write> dst: array<f32>;

@compute @workgroup_size(WG)
fn sum_splits(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = gid.x + gid.y * nwg.x * WG;
  if (i >= p.count) { return; }
  var s = 0.0;
  for (var z = 0u; z < p.splits; z++) { s += src[z * p.count + i]; }
  dst[i] = select(s, s + dst[i], p.accumulate == 1u);
}

var<workgroup> partial: array<f32, WG>;

@compute @workgroup_size(WG)
fn bias_grad(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_index) li: u32) {
  let m = wid.x;
  var s = 0.0;
  for (var n = 0u; n < p.batch; n++) {
    let plane = (n * p.channels + m) * p.hw;
    for (var i = li; i < p.hw; i += WG) { s += src[plane + i]; }
  }
  partial[li] = s;
  workgroupBarrier();
  for (var half = WG / 2u; half > 0u; half /= 2u) {
    if (li < half) { partial[li] += partial[li + half]; }
    workgroupBarrier();
  }
  if (li == 0u) { dst[m] = select(partial[0], partial[0] + dst[m], p.accumulate == 1u); }
}

@compute @workgroup_size(WG)
fn bias_grad_serial(@builtin(global_invocation_id) gid: vec3u) {
  let m = gid.x;
  if (m >= p.channels) { return; }
  var s = 0.0;
  for (var n = 0u; n < p.batch; n++) {
    let plane = (n * p.channels + m) * p.hw;
    for (var i = 0u; i < p.hw; i++) { s += src[plane + i]; }
  }
  dst[m] = select(s, s + dst[m], p.accumulate == 1u);
}
