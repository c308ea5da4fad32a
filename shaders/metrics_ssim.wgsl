// SSIM map and its cropped per-image sum, over a batch of image pairs [N, C, H, W] (each (n, c) is a "plane").
// Formula: skimage.metrics.structural_similarity (Wang et al. 2004), with the local means/variances filtered
// by a separable window w (uniform 1/7 or Gaussian sigma 1.5, radius R), borders folded as scipy.ndimage's
// mode 'reflect' (d c b a | a b c d | d c b a).
//
// Work split:
//   ssim_tile: one workgroup per 16x16 output tile of one plane (grid: tiles_x, tiles_y, planes). The tile and
//     its R-pixel halo of both images are loaded once into workgroup memory (reflect-indexed), then each thread
//     forms its pixel's 5 window sums over the (2R+1)^2 taps, writes S to the map, and the workgroup tree-sums
//     S over the pixels inside the crop (skimage drops a (win-1)/2 border before the mean) into one partial.
//   finalize: one workgroup per image folds its C * tiles partials (contiguous) into sums[image].
//
// Precision: each window's sums are taken of differences from the centre pixel, d = x - x_c, so
// var = sum w d^2 - (sum w d)^2 involves only local variation. The textbook uxx - ux^2 cancels catastrophically
// in fp32 (ux ~ 0.5, var ~ 1e-4), and in flat areas SSIM's sensitivity to var is ~2 / C2 ~ 2000.

override WG: u32 = 256; // TILE * TILE threads
const TILE: u32 = 16u;
const MAX_R: u32 = 5u;
const MAX_SPAN: u32 = 26u; // TILE + 2 * MAX_R

struct Params {
  w: u32,
  h: u32,
  planes: u32,
  radius: u32,
  crop: u32,         // pixels dropped at each border before the mean
  tiles: u32,        // tiles per plane (tiles_x * tiles_y)
  images: u32,
  partials_per_image: u32, // C * tiles
  write_map: u32,
  cov_norm: f32,     // NP / (NP - 1) (sample covariance) or 1
  c1: f32,           // (K1 L)^2
  c2: f32,           // (K2 L)^2
}

@group(0) @binding(0) var<uniform> u: Params;
@group(0) @binding(1) var<storage, read_write> ssim_map: array<f32>;   // [planes, H, W] (ssim_tile) | sums [images] (finalize)
@group(0) @binding(2) var<storage, read_write> partials: array<f32>;   // [planes * tiles]
@group(0) @binding(3) var<storage, read> real: array<f32>;
@group(0) @binding(4) var<storage, read> fake: array<f32>;
@group(0) @binding(5) var<storage, read> weights: array<f32>;          // [2R + 1], sums to 1

var<workgroup> tx: array<f32, MAX_SPAN * MAX_SPAN>;
var<workgroup> ty: array<f32, MAX_SPAN * MAX_SPAN>;
var<workgroup> red: array<f32, WG>;

// scipy.ndimage 'reflect': period 2n, mirrored about the edge between pixels (the edge pixel repeats).
fn reflect(i: i32, n: i32) -> i32 {
  let period = 2 * n;
  var m = i % period;
  if (m < 0) { m += period; }
  if (m >= n) { m = period - 1 - m; }
  return m;
}

fn tree_sum(lid: u32) -> f32 {
  workgroupBarrier();
  for (var stride = WG / 2u; stride > 0u; stride = stride / 2u) {
    if (lid < stride) { red[lid] += red[lid + stride]; }
    workgroupBarrier();
  }
  return red[0];
}

@compute @workgroup_size(TILE, TILE)
fn ssim_tile(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_id) l: vec3u, @builtin(local_invocation_index) lid: u32) {
  let r = i32(u.radius);
  let span = TILE + 2u * u.radius;
  let plane = wid.z;
  let base = plane * u.w * u.h;
  let x0 = i32(wid.x * TILE) - r;
  let y0 = i32(wid.y * TILE) - r;
  for (var k = lid; k < span * span; k += WG) {
    let gy = reflect(y0 + i32(k / span), i32(u.h));
    let gx = reflect(x0 + i32(k % span), i32(u.w));
    let g = base + u32(gy) * u.w + u32(gx);
    tx[k] = real[g];
    ty[k] = fake[g];
  }
  workgroupBarrier();

  let x = wid.x * TILE + l.x;
  let y = wid.y * TILE + l.y;
  var contribution = 0.0;
  if (x < u.w && y < u.h) {
    let centre = (l.y + u.radius) * span + l.x + u.radius;
    let xc = tx[centre];
    let yc = ty[centre];
    var sx = 0.0;
    var sy = 0.0;
    var sxx = 0.0;
    var syy = 0.0;
    var sxy = 0.0;
    let taps = 2u * u.radius + 1u;
    for (var i = 0u; i < taps; i++) {
      let wi = weights[i];
      let row = (l.y + i) * span + l.x;
      for (var j = 0u; j < taps; j++) {
        let wt = wi * weights[j];
        let dx = tx[row + j] - xc;
        let dy = ty[row + j] - yc;
        sx += wt * dx;
        sy += wt * dy;
        sxx += wt * dx * dx;
        syy += wt * dy * dy;
        sxy += wt * dx * dy;
      }
    }
    let ux = xc + sx;
    let uy = yc + sy;
    let vx = u.cov_norm * (sxx - sx * sx);
    let vy = u.cov_norm * (syy - sy * sy);
    let vxy = u.cov_norm * (sxy - sx * sy);
    let a1 = 2.0 * ux * uy + u.c1;
    let a2 = 2.0 * vxy + u.c2;
    let b1 = ux * ux + uy * uy + u.c1;
    let b2 = vx + vy + u.c2;
    let s = (a1 * a2) / (b1 * b2);
    if (u.write_map == 1u) { ssim_map[base + y * u.w + x] = s; }
    let inside = x >= u.crop && x < u.w - u.crop && y >= u.crop && y < u.h - u.crop;
    contribution = select(0.0, s, inside);
  }
  red[lid] = contribution;
  let total = tree_sum(lid);
  if (lid == 0u) { partials[plane * u.tiles + wid.y * ((u.w + TILE - 1u) / TILE) + wid.x] = total; }
}

@compute @workgroup_size(WG)
fn finalize(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_index) lid: u32) {
  let image = wid.x + wid.y * nwg.x;
  if (image >= u.images) { return; }
  var s = 0.0;
  for (var k = lid; k < u.partials_per_image; k += WG) { s += partials[image * u.partials_per_image + k]; }
  red[lid] = s;
  let total = tree_sum(lid);
  if (lid == 0u) { ssim_map[image] = total; }
}
