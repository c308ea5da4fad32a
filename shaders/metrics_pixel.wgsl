// Per-image statistics for MSE / NRMSE / PSNR over a batch of image pairs [N, C, H, W], as a two-pass tree
// reduction (accurate for 512x1024x3: fp32 error grows with log2 of the count, not with the count).
//   pass 1 (partial): workgroup g handles chunk (g % chunks) of image (g / chunks): WG * ITEMS elements,
//     each thread folds ITEMS of them, then a tree in workgroup memory. It writes 5 partials per workgroup:
//     sum (t - f)^2, sum t^2, sum t, min t, max t   (t = real / ground truth, f = fake / test image).
//     The grid is 2-D (flat group index = x + y * groups.x) because N * chunks may pass 65535.
//   pass 2 (finalize): workgroup i (flattened likewise) folds image i's chunk partials and writes stats[i * 5 + k].

override WG: u32 = 256;
const ITEMS: u32 = 4u;
const K: u32 = 5u;

struct Params {
  per_image: u32, // C * H * W
  chunks: u32,    // pass-1 workgroups per image
  images: u32,
}

@group(0) @binding(0) var<uniform> u: Params;
@group(0) @binding(1) var<storage, read_write> dst: array<f32>; // partials [images * chunks * K] | stats [images * K]
@group(0) @binding(2) var<storage, read> real: array<f32>;      // pass 1: real; pass 2: partials
@group(0) @binding(3) var<storage, read> fake: array<f32>;      // pass 1 only

var<workgroup> s_sq: array<f32, WG>;
var<workgroup> s_tt: array<f32, WG>;
var<workgroup> s_t: array<f32, WG>;
var<workgroup> s_min: array<f32, WG>;
var<workgroup> s_max: array<f32, WG>;

fn group_index(wid: vec3u, nwg: vec3u) -> u32 { return wid.x + wid.y * nwg.x; }

// Tree over the workgroup; thread 0 writes the five results at dst[slot * K ..].
fn reduce_and_store(lid: u32, slot: u32) {
  workgroupBarrier();
  for (var stride = WG / 2u; stride > 0u; stride = stride / 2u) {
    if (lid < stride) {
      s_sq[lid] += s_sq[lid + stride];
      s_tt[lid] += s_tt[lid + stride];
      s_t[lid] += s_t[lid + stride];
      s_min[lid] = min(s_min[lid], s_min[lid + stride]);
      s_max[lid] = max(s_max[lid], s_max[lid + stride]);
    }
    workgroupBarrier();
  }
  if (lid == 0u) {
    dst[slot * K] = s_sq[0];
    dst[slot * K + 1u] = s_tt[0];
    dst[slot * K + 2u] = s_t[0];
    dst[slot * K + 3u] = s_min[0];
    dst[slot * K + 4u] = s_max[0];
  }
}

@compute @workgroup_size(WG)
fn partial(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_index) lid: u32) {
  let g = group_index(wid, nwg);
  if (g >= u.images * u.chunks) { return; } // uniform per workgroup: the 2-D grid rounds up
  let image = g / u.chunks;
  let start = (g % u.chunks) * WG * ITEMS;
  let base = image * u.per_image;
  var sq = 0.0;
  var tt = 0.0;
  var ts = 0.0;
  var lo = 3.402823e38;
  var hi = -3.402823e38;
  for (var k = 0u; k < ITEMS; k++) {
    let j = start + k * WG + lid;
    if (j < u.per_image) {
      let t = real[base + j];
      let d = t - fake[base + j];
      sq += d * d;
      tt += t * t;
      ts += t;
      lo = min(lo, t);
      hi = max(hi, t);
    }
  }
  s_sq[lid] = sq;
  s_tt[lid] = tt;
  s_t[lid] = ts;
  s_min[lid] = lo;
  s_max[lid] = hi;
  reduce_and_store(lid, g);
}

@compute @workgroup_size(WG)
fn finalize(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_index) lid: u32) {
  let image = group_index(wid, nwg);
  if (image >= u.images) { return; }
  var sq = 0.0;
  var tt = 0.0;
  var ts = 0.0;
  var lo = 3.402823e38;
  var hi = -3.402823e38;
  for (var c = lid; c < u.chunks; c += WG) {
    let p = (image * u.chunks + c) * K;
    sq += real[p];
    tt += real[p + 1u];
    ts += real[p + 2u];
    lo = min(lo, real[p + 3u]);
    hi = max(hi, real[p + 4u]);
  }
  s_sq[lid] = sq;
  s_tt[lid] = tt;
  s_t[lid] = ts;
  s_min[lid] = lo;
  s_max[lid] = hi;
  reduce_and_store(lid, image);
}
