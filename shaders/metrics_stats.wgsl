// Feature statistics for the Fréchet distance: mean and covariance of X [N, D] (row = one image's features),
// in fp32, centred in two passes (subtract the mean first, then Xc^T Xc / (N - 1)) so the covariance does not
// suffer the cancellation of E[x x^T] - mu mu^T.
//   column_mean: one workgroup per feature column (2-D grid); threads stride over the rows, then a tree.
//   centre:      one thread per element: xc = x - mu[column].
//   covariance:  one 16x16 workgroup per 16x16 output tile (ti <= tj only; the tile and its mirror are both
//                written). Rows go through workgroup memory 16 at a time; each thread sums one block of 256 rows
//                before adding it to its total, so fp32 error grows with N / 256 + 256 instead of N.

override WG: u32 = 256;
const TILE: u32 = 16u;
const BLOCK_TILES: u32 = 16u; // 16 row-tiles = 256 rows per partial sum

struct Params {
  rows: u32,
  cols: u32,
  tiles: u32, // ceil(cols / TILE)
  inv_n: f32,        // 1 / N
  inv_n_minus_1: f32, // 1 / (N - 1)
}

@group(0) @binding(0) var<uniform> u: Params;
@group(0) @binding(1) var<storage, read_write> dst: array<f32>; // mu [D] | xc [N, D] | sigma [D, D]
@group(0) @binding(2) var<storage, read> src: array<f32>;       // x | x | xc
@group(0) @binding(3) var<storage, read> mu: array<f32>;        // centre only

var<workgroup> red: array<f32, WG>;
var<workgroup> ta: array<f32, TILE * TILE>;
var<workgroup> tb: array<f32, TILE * TILE>;

@compute @workgroup_size(WG)
fn column_mean(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_index) lid: u32) {
  let col = wid.x + wid.y * nwg.x;
  if (col >= u.cols) { return; }
  var s = 0.0;
  for (var r = lid; r < u.rows; r += WG) { s += src[r * u.cols + col]; }
  red[lid] = s;
  workgroupBarrier();
  for (var stride = WG / 2u; stride > 0u; stride = stride / 2u) {
    if (lid < stride) { red[lid] += red[lid + stride]; }
    workgroupBarrier();
  }
  if (lid == 0u) { dst[col] = red[0] * u.inv_n; }
}

@compute @workgroup_size(WG)
fn centre(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = gid.x + gid.y * nwg.x * WG;
  if (i >= u.rows * u.cols) { return; }
  dst[i] = src[i] - mu[i % u.cols];
}

@compute @workgroup_size(TILE, TILE)
fn covariance(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_id) l: vec3u) {
  let ti = wid.y;
  let tj = wid.x;
  if (ti > tj) { return; } // the lower tiles are the mirrors of the upper ones (uniform per workgroup)
  let i = ti * TILE + l.y; // output row (feature i)
  let j = tj * TILE + l.x; // output column (feature j)
  let load_i = ti * TILE + l.x; // this thread loads feature columns along x for both tiles
  let load_j = tj * TILE + l.x;
  var total = 0.0;
  var block = 0.0;
  var tile_count = 0u;
  for (var r0 = 0u; r0 < u.rows; r0 += TILE) {
    let r = r0 + l.y;
    var a = 0.0;
    var b = 0.0;
    if (r < u.rows && load_i < u.cols) { a = src[r * u.cols + load_i]; }
    if (r < u.rows && load_j < u.cols) { b = src[r * u.cols + load_j]; }
    ta[l.y * TILE + l.x] = a;
    tb[l.y * TILE + l.x] = b;
    workgroupBarrier();
    for (var k = 0u; k < TILE; k++) { block += ta[k * TILE + l.y] * tb[k * TILE + l.x]; }
    workgroupBarrier();
    tile_count++;
    if (tile_count == BLOCK_TILES) {
      total += block;
      block = 0.0;
      tile_count = 0u;
    }
  }
  total += block;
  if (i < u.cols && j < u.cols) {
    let v = total * u.inv_n_minus_1;
    dst[i * u.cols + j] = v;
    dst[j * u.cols + i] = v;
  }
}
