// 2-D pooling, PyTorch semantics (floor mode, no dilation), forward only.
//   max:        y[n, c, oh, ow] = max over the window of x; padded positions never win (they are -inf);
//               a NaN in the window gives NaN, as torch (WGSL's max leaves NaN to the implementation,
//               so NaN is detected from the bits, which no compiler may fold away).
//   avg:        y[n, c, oh, ow] = sum over the window / divisor, where the divisor counts the window
//               clipped to the padded input (count_include_pad = 1) or to the input itself (0), as
//               ATen's avg_pool2d: pytorch-fid's Inception blocks use count_include_pad = False.
//   global_avg: y[n, c, 0, 0] = mean of x[n, c, :, :] (adaptive_avg_pool2d to 1x1).
// Work split: one thread per output element (global_avg: per (n, c) plane, looping over H*W), over a
// 2-D grid of 1-D workgroups (index = x + y * groupsX * WG).

override WG: u32 = 256;

struct Params {
  planes: u32, // N * C
  H: u32,
  W: u32,
  outH: u32,
  outW: u32,
  KH: u32,
  KW: u32,
  sh: u32,
  sw: u32,
  ph: u32,
  pw: u32,
  countIncludePad: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> y: array<f32>;

fn flat(gid: vec3u, nwg: vec3u) -> u32 { return gid.x + gid.y * nwg.x * WG; }

// The window of output (oh, ow) in padded coordinates, as signed ints: [h0, h0 + KH) x [w0, w0 + KW).
fn is_nan(v: f32) -> bool { return (bitcast<u32>(v) & 0x7fffffffu) > 0x7f800000u; }

fn window_origin(oh: u32, ow: u32) -> vec2i {
  return vec2i(i32(oh * p.sh) - i32(p.ph), i32(ow * p.sw) - i32(p.pw));
}

@compute @workgroup_size(WG)
fn max_pool(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = flat(gid, nwg);
  let outHW = p.outH * p.outW;
  if (i >= p.planes * outHW) { return; }
  let plane = i / outHW;
  let oh = (i % outHW) / p.outW;
  let ow = i % p.outW;
  let o = window_origin(oh, ow);
  let hs = max(o.x, 0);
  let he = min(o.x + i32(p.KH), i32(p.H));
  let ws = max(o.y, 0);
  let we = min(o.y + i32(p.KW), i32(p.W));
  let base = plane * p.H * p.W;
  // PyTorch requires padding <= kernel / 2, so every window holds at least one input element.
  var m = x[base + u32(hs) * p.W + u32(ws)];
  for (var h = hs; h < he; h++) {
    for (var w = ws; w < we; w++) {
      let v = x[base + u32(h) * p.W + u32(w)];
      if (is_nan(v)) {
        y[i] = v;
        return;
      }
      m = max(m, v);
    }
  }
  y[i] = m;
}

@compute @workgroup_size(WG)
fn avg_pool(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = flat(gid, nwg);
  let outHW = p.outH * p.outW;
  if (i >= p.planes * outHW) { return; }
  let plane = i / outHW;
  let oh = (i % outHW) / p.outW;
  let ow = i % p.outW;
  let o = window_origin(oh, ow);
  let hs = max(o.x, 0);
  let he = min(o.x + i32(p.KH), i32(p.H));
  let ws = max(o.y, 0);
  let we = min(o.y + i32(p.KW), i32(p.W));
  let base = plane * p.H * p.W;
  var s = 0.0;
  for (var h = hs; h < he; h++) {
    for (var w = ws; w < we; w++) {
      s += x[base + u32(h) * p.W + u32(w)];
    }
  }
  var count = (he - hs) * (we - ws);
  if (p.countIncludePad == 1u) {
    // ATen: the window clipped to the padded input [-p, size + p), before clipping to the input.
    let hp = min(o.x + i32(p.KH), i32(p.H + p.ph)) - o.x;
    let wp = min(o.y + i32(p.KW), i32(p.W + p.pw)) - o.y;
    count = hp * wp;
  }
  y[i] = s / f32(count);
}

@compute @workgroup_size(WG)
fn global_avg(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let plane = flat(gid, nwg);
  if (plane >= p.planes) { return; }
  let n = p.H * p.W;
  let base = plane * n;
  var s = 0.0;
  for (var j = 0u; j < n; j++) { s += x[base + j]; }
  y[plane] = s / f32(n);
}
