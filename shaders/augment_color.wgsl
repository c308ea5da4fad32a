// Photometric augmentation of A (the photo) only; B never passes through here.
// Work split: `main` runs one thread per pixel (n, y, x) over a 2-D grid of 1-D workgroups and handles all C
// channels of the pixel (HSV needs the three together). `mean` runs one workgroup per sample and reduces the
// sample's mean (RandomBrightnessContrast with brightness_by_max = false) into means[n].
// Values are stored in [lo, hi] (the networks' [-1, 1], or [0, 1]); each op converts to [0, 1], clips there (as an
// 8-bit image always is), applies the Albumentations formula and converts back.
// OP (pipeline constant): 0 brightness/contrast, 1 gamma, 2 hue/saturation/value, 3 RGB shift, 4 Gaussian noise,
// 5 Gaussian blur. Per-sample record at rec[base + n * stride] (u32 words, floats as bit patterns):
//   0 apply (0: copy), then  OP 0: alpha, beta, by_max | 1: gamma | 2: hue (degrees), sat, val | 3: r, g, b shifts |
//   4: sigma, mean, seed (u32), per_channel | 5: ksize (u32), weights[ksize].
// Twin: src/data/augment_cpu.ts (colorCpu); noise uses hash_normal from shaders/random.wgsl (prepended).

override WG: u32 = 256;
override OP: u32 = 0;

struct Params {
  n: u32,
  c: u32,
  h: u32,
  w: u32,
  base: u32,
  stride: u32,
  lo: f32,
  hi: f32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> rec: array<u32>;
@group(0) @binding(2) var<storage, read> src: array<f32>;
@group(0) @binding(3) var<storage, read_write> dst: array<f32>;
@group(0) @binding(4) var<storage, read_write> means: array<f32>;

const FLT_EPSILON: f32 = 1.1920928955078125e-7;

fn recf(i: u32) -> f32 { return bitcast<f32>(rec[i]); }
fn to01(v: f32) -> f32 { return clamp((v - p.lo) / (p.hi - p.lo), 0.0, 1.0); }
fn from01(v: f32) -> f32 { return p.lo + v * (p.hi - p.lo); }

// cv2 BORDER_REFLECT_101.
fn reflect101(q: i32, len: i32) -> i32 {
  if (q >= 0 && q < len) { return q; }
  if (len == 1) { return 0; }
  let period = 2 * len - 2;
  let r = ((q % period) + period) % period;
  return select(period - r, r, r < len);
}

// OpenCV's float RGB -> HSV (H in degrees).
fn rgb_to_hsv(c: vec3f) -> vec3f {
  let v = max(c.r, max(c.g, c.b));
  let vmin = min(c.r, min(c.g, c.b));
  let d = v - vmin;
  let s = d / (abs(v) + FLT_EPSILON);
  let k = 60.0 / (d + FLT_EPSILON);
  var h: f32;
  if (v == c.r) { h = (c.g - c.b) * k; }
  else if (v == c.g) { h = (c.b - c.r) * k + 120.0; }
  else { h = (c.r - c.g) * k + 240.0; }
  if (h < 0.0) { h += 360.0; }
  return vec3f(h, s, v);
}

// OpenCV's float HSV -> RGB (sector table gives the (b, g, r) entries of tab).
fn hsv_to_rgb(hsv: vec3f) -> vec3f {
  let s = hsv.y;
  let v = hsv.z;
  if (s == 0.0) { return vec3f(v, v, v); }
  var h = hsv.x / 60.0;
  while (h < 0.0) { h += 6.0; }
  while (h >= 6.0) { h -= 6.0; }
  var sector = i32(floor(h));
  h -= f32(sector);
  if (sector < 0 || sector >= 6) { sector = 0; h = 0.0; }
  let t0 = v;
  let t1 = v * (1.0 - s);
  let t2 = v * (1.0 - s * h);
  let t3 = v * (1.0 - s * (1.0 - h));
  switch sector {
    case 0: { return vec3f(t0, t3, t1); }
    case 1: { return vec3f(t2, t0, t1); }
    case 2: { return vec3f(t1, t0, t3); }
    case 3: { return vec3f(t1, t2, t0); }
    case 4: { return vec3f(t3, t1, t0); }
    default: { return vec3f(t0, t1, t2); }
  }
}

@compute @workgroup_size(WG)
fn main(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = gid.x + gid.y * nwg.x * WG;
  let plane = p.h * p.w;
  if (i >= p.n * plane) { return; }
  let n = i / plane;
  let pix = i % plane;
  let r = p.base + n * p.stride;
  let b = n * p.c * plane;

  if (rec[r] == 0u) {
    for (var c = 0u; c < p.c; c++) { dst[b + c * plane + pix] = src[b + c * plane + pix]; }
    return;
  }

  switch OP {
    case 0u: {
      let alpha = recf(r + 1u);
      let beta = recf(r + 2u);
      let shift = select(beta * alpha * means[n], beta, rec[r + 3u] == 1u);
      for (var c = 0u; c < p.c; c++) {
        let k = b + c * plane + pix;
        dst[k] = from01(clamp(alpha * to01(src[k]) + shift, 0.0, 1.0));
      }
    }
    case 1u: {
      let g = recf(r + 1u);
      for (var c = 0u; c < p.c; c++) {
        let k = b + c * plane + pix;
        dst[k] = from01(pow(to01(src[k]), g));
      }
    }
    case 2u: {
      let val = recf(r + 3u);
      if (p.c == 1u) {
        dst[b + pix] = from01(clamp(to01(src[b + pix]) + val, 0.0, 1.0));
        return;
      }
      var hsv = rgb_to_hsv(vec3f(to01(src[b + pix]), to01(src[b + plane + pix]), to01(src[b + 2u * plane + pix])));
      var h = (hsv.x + recf(r + 1u)) % 360.0;
      if (h < 0.0) { h += 360.0; }
      hsv = vec3f(h, clamp(hsv.y + recf(r + 2u), 0.0, 1.0), clamp(hsv.z + val, 0.0, 1.0));
      let rgb = clamp(hsv_to_rgb(hsv), vec3f(0.0), vec3f(1.0));
      dst[b + pix] = from01(rgb.r);
      dst[b + plane + pix] = from01(rgb.g);
      dst[b + 2u * plane + pix] = from01(rgb.b);
    }
    case 3u: {
      for (var c = 0u; c < p.c; c++) {
        let k = b + c * plane + pix;
        dst[k] = from01(clamp(to01(src[k]) + recf(r + 1u + c), 0.0, 1.0));
      }
    }
    case 4u: {
      let sigma = recf(r + 1u);
      let mean = recf(r + 2u);
      let seed = rec[r + 3u];
      let perChannel = rec[r + 4u] == 1u;
      for (var c = 0u; c < p.c; c++) {
        let k = b + c * plane + pix;
        let z = hash_normal(seed, select(pix, c * plane + pix, perChannel));
        dst[k] = from01(clamp(to01(src[k]) + mean + sigma * z, 0.0, 1.0));
      }
    }
    default: {
      // Gaussian blur: the separable kernel applied as its outer product (ksize^2 taps), BORDER_REFLECT_101.
      let ks = rec[r + 1u];
      let rad = i32(ks / 2u);
      let y = i32(pix / p.w);
      let x = i32(pix % p.w);
      let H = i32(p.h);
      let W = i32(p.w);
      for (var c = 0u; c < p.c; c++) {
        let cb = b + c * plane;
        var acc = 0.0;
        for (var ty = 0u; ty < ks; ty++) {
          let yy = u32(reflect101(y + i32(ty) - rad, H));
          var row = 0.0;
          for (var tx = 0u; tx < ks; tx++) {
            let xx = u32(reflect101(x + i32(tx) - rad, W));
            row += recf(r + 2u + tx) * to01(src[cb + yy * p.w + xx]);
          }
          acc += recf(r + 2u + ty) * row;
        }
        dst[cb + pix] = from01(acc);
      }
    }
  }
}

var<workgroup> partial: array<f32, WG>;

// One workgroup per sample: means[n] = mean of A's values in [0, 1] over all channels and pixels.
@compute @workgroup_size(WG)
fn mean(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_index) lid: u32) {
  let n = wid.x;
  let count = p.c * p.h * p.w;
  var s = 0.0;
  for (var k = lid; k < count; k += WG) { s += to01(src[n * count + k]); }
  partial[lid] = s;
  workgroupBarrier();
  for (var offset = WG / 2u; offset > 0u; offset /= 2u) {
    if (lid < offset) { partial[lid] += partial[lid + offset]; }
    workgroupBarrier();
  }
  if (lid == 0u) { means[n] = partial[0] / f32(count); }
}
