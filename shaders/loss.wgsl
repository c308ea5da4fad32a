// Mean losses (BCE-with-logits, MSE, L1) and plain sums, as a two-pass tree reduction, plus the
// elementwise loss gradients.
//   pass 1 (partial_*): workgroup w reduces a chunk of WG * ITEMS elements' loss terms in workgroup
//     memory and writes partial[w]; the grid is 2-D because big maps need more than 65535 groups.
//   pass 2 (finalize): one workgroup sums the partials (each thread strides over them) and writes
//     out[0] = scale * sum.
// Tree sums keep fp32 error at O(log n) ulps, so losses over 512x1024x3 images stay exact to ~1e-6
// relative, where a serial loop or float atomics would drift.
// LOSS: 0 BCE with logits, 1 MSE, 2 L1, 3 the value itself (sum). The target is a scalar uniform
// (*_scalar entry points: GAN labels 1/0) or a tensor (*_tensor: the L1 target image).

override WG: u32 = 256;
override LOSS: u32 = 0;
const ITEMS: u32 = 4u;

struct Params {
  n: u32,
  count: u32,      // partials (pass 1 writes them, finalize reads them)
  accumulate: u32, // backward: 1 adds into dx
  target_value: f32, // scalar target
  scale: f32,      // finalize: 1/n for a mean; backward: scale/n
}

@group(0) @binding(0) var<uniform> u: Params;
@group(0) @binding(1) var<storage, read_write> dst: array<f32>;   // partials | out | dx
@group(0) @binding(2) var<storage, read> x: array<f32>;          // logits / prediction | partials (finalize)
@group(0) @binding(3) var<storage, read> target_t: array<f32>;   // *_tensor only

var<workgroup> scratch: array<f32, WG>;

// log(1 + e) for e in (0, 1]; fp32 1 + e loses e below 6e-8, the series keeps it.
fn log1p_small(e: f32) -> f32 {
  return select(log(1.0 + e), e - 0.5 * e * e, e < 1e-4);
}

fn term(v: f32, t: f32) -> f32 {
  switch LOSS {
    // Numerically stable BCE with logits (as torch): max(v, 0) - v t + log(1 + exp(-|v|)).
    case 0u: { return max(v, 0.0) - v * t + log1p_small(exp(-abs(v))); }
    case 1u: { let d = v - t; return d * d; }
    case 2u: { return abs(v - t); }
    default: { return v; }
  }
}

fn dterm(v: f32, t: f32) -> f32 {
  switch LOSS {
    case 0u: {
      let e = exp(-abs(v));
      let s = select(e / (1.0 + e), 1.0 / (1.0 + e), v >= 0.0); // sigmoid(v), stable both ways
      return s - t;
    }
    case 1u: { return 2.0 * (v - t); }
    default: { return sign(v - t); } // torch: sign(0) = 0
  }
}

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
  if (w >= u.count) { return; } // the 2-D grid may round up past the chunk count
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
  if (w >= u.count) { return; } // the 2-D grid may round up past the chunk count
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

fn flat(gid: vec3u, nwg: vec3u) -> u32 { return gid.x + gid.y * nwg.x * WG; }

@compute @workgroup_size(WG)
fn backward_scalar(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = flat(gid, nwg);
  if (i >= u.n) { return; }
  let g = u.scale * dterm(x[i], u.target_value);
  dst[i] = select(g, dst[i] + g, u.accumulate == 1u);
}

@compute @workgroup_size(WG)
fn backward_tensor(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = flat(gid, nwg);
  if (i >= u.n) { return; }
  let g = u.scale * dterm(x[i], target_t[i]);
  dst[i] = select(g, dst[i] + g, u.accumulate == 1u);
}
