// Bilinear resize, PyTorch's F.interpolate(mode='bilinear') without antialias, forward only:
//   src_h = align_corners ? oh * (H - 1) / (outH - 1) : max((oh + 0.5) * H / outH - 0.5, 0)   (same for w)
//   h0 = floor(src_h), h1 = min(h0 + 1, H - 1), lh = src_h - h0, and
//   y = ((1-lh)(1-lw) x[h0,w0] + (1-lh) lw x[h0,w1] + lh (1-lw) x[h1,w0] + lh lw x[h1,w1]) * mul + add,
// Downsampling samples only the two nearest rows/columns (no antialias), as torch does by default.
// Source coordinates are exact: src = num / den with integers (align_corners: o (H-1) / (outH-1);
// otherwise ((2o + 1) H - outH) / (2 outH)), split into the integer tap and an f32 fraction. ATen's
// float32 path rounds the scale H / outH to f32 first (an error of up to ~3e-5 px on a 400-px source);
// its float64 path, which the fixtures use, agrees with this one to ~1e-7. The host checks that
// (2 outH + 1) H fits in u32.
// Channel broadcast: a 1-channel src feeds every dst channel (gray tiled to RGB). `srcBatchOffset`
// reads src image n + srcBatchOffset, so a batch can be processed in chunks.
// Work split: one thread per dst element, 2-D grid of 1-D workgroups (index = x + y * groupsX * WG).

override WG: u32 = 256;

struct Params {
  N: u32,        // dst images
  C: u32,        // dst channels
  srcC: u32,     // C, or 1 to broadcast
  H: u32,
  W: u32,
  outH: u32,
  outW: u32,
  srcBatchOffset: u32,
  alignCorners: u32,
  mul: f32,
  add: f32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> y: array<f32>;

fn flat(gid: vec3u, nwg: vec3u) -> u32 { return gid.x + gid.y * nwg.x * WG; }

struct Tap { i0: u32, lambda: f32 }

// Source coordinate of output index o along one axis (input size n, output size m): the lower tap and
// the weight of the upper one.
fn source(o: u32, n: u32, m: u32) -> Tap {
  var num: u32;
  var den: u32;
  if (p.alignCorners == 1u) {
    if (m == 1u) { return Tap(0u, 0.0); }
    num = o * (n - 1u);
    den = m - 1u;
  } else {
    let twice = (2u * o + 1u) * n;
    if (twice <= m) { return Tap(0u, 0.0); } // ATen clamps negative coordinates to 0
    num = twice - m;
    den = 2u * m;
  }
  return Tap(num / den, f32(num % den) / f32(den));
}

@compute @workgroup_size(WG)
fn bilinear(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = flat(gid, nwg);
  let outHW = p.outH * p.outW;
  if (i >= p.N * p.C * outHW) { return; }
  let ow = i % p.outW;
  let oh = (i / p.outW) % p.outH;
  let c = (i / outHW) % p.C;
  let n = i / (outHW * p.C);
  let sc = select(c, 0u, p.srcC == 1u);
  let base = ((n + p.srcBatchOffset) * p.srcC + sc) * p.H * p.W;
  let th = source(oh, p.H, p.outH);
  let tw = source(ow, p.W, p.outW);
  let h0 = th.i0;
  let w0 = tw.i0;
  let h1 = min(h0 + 1u, p.H - 1u);
  let w1 = min(w0 + 1u, p.W - 1u);
  let lh = th.lambda;
  let lw = tw.lambda;
  let top = (1.0 - lw) * x[base + h0 * p.W + w0] + lw * x[base + h0 * p.W + w1];
  let bottom = (1.0 - lw) * x[base + h1 * p.W + w0] + lw * x[base + h1 * p.W + w1];
  y[i] = ((1.0 - lh) * top + lh * bottom) * p.mul + p.add;
}
