// Paired bilinear warp for augmentation: one matrix (or separable remap) per sample, applied to A (CA channels)
// and B (CB channels) in one pass, so a pair stays aligned.
// Work split: one thread per output pixel (n, y, x) over a 2-D grid of 1-D workgroups; each thread computes the
// source position and the four tap indices once and reuses them for every channel of A and B.
// Convention (cv2.warpAffine / cv2.remap, INTER_LINEAR): pixel centres at integer coordinates; output pixel (x, y)
// reads the source at inverse * (x, y, 1), or at (mapX[x], mapY[y]) for remaps. Taps outside the source window
// go through the border mode (cv2 codes: 0 constant, 1 replicate, 2 reflect, 3 wrap, 4 reflect_101).
//
// Per-sample record (u32 words; floats stored as bit patterns), at rec[base + n * stride]:
//   0 apply (0: copy the pixel unchanged), 1..6 inverse matrix [a b tx c d ty] (f32), 7..10 window x y w h (u32),
//   11 border mode, 12.. fill for A (CA f32), then fill for B (CB f32), then, when remap = 1, mapX (WO f32) and
//   mapY (HO f32).

override WG: u32 = 256;

struct Params {
  n: u32,
  ca: u32,
  cb: u32,
  hi: u32,
  wi: u32,
  ho: u32,
  wo: u32,
  base: u32,
  stride: u32,
  remap: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> rec: array<u32>;
@group(0) @binding(2) var<storage, read> srcA: array<f32>;
@group(0) @binding(3) var<storage, read_write> dstA: array<f32>;
@group(0) @binding(4) var<storage, read> srcB: array<f32>;
@group(0) @binding(5) var<storage, read_write> dstB: array<f32>;

fn recf(i: u32) -> f32 { return bitcast<f32>(rec[i]); }

// cv2.borderInterpolate; -1 means "use the constant fill".
fn border_index(q: i32, len: i32, mode: u32) -> i32 {
  if (q >= 0 && q < len) { return q; }
  switch mode {
    case 0u: { return -1; }
    case 1u: { return select(len - 1, 0, q < 0); }
    case 2u: {
      let period = 2 * len;
      let r = ((q % period) + period) % period;
      return select(period - 1 - r, r, r < len);
    }
    case 3u: { return ((q % len) + len) % len; }
    default: {
      if (len == 1) { return 0; }
      let period = 2 * len - 2;
      let r = ((q % period) + period) % period;
      return select(period - r, r, r < len);
    }
  }
}

@compute @workgroup_size(WG)
fn main(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = gid.x + gid.y * nwg.x * WG;
  let planeOut = p.ho * p.wo;
  if (i >= p.n * planeOut) { return; }
  let n = i / planeOut;
  let pix = i % planeOut;
  let y = pix / p.wo;
  let x = pix % p.wo;
  let planeIn = p.hi * p.wi;
  let r = p.base + n * p.stride;

  if (rec[r] == 0u) {
    // Not applied to this sample: the stage keeps the size, so copy.
    for (var c = 0u; c < p.ca; c++) { dstA[(n * p.ca + c) * planeOut + pix] = srcA[(n * p.ca + c) * planeIn + pix]; }
    for (var c = 0u; c < p.cb; c++) { dstB[(n * p.cb + c) * planeOut + pix] = srcB[(n * p.cb + c) * planeIn + pix]; }
    return;
  }

  var sx: f32;
  var sy: f32;
  if (p.remap == 1u) {
    let m = r + 12u + p.ca + p.cb;
    sx = recf(m + x);
    sy = recf(m + p.wo + y);
  } else {
    let fx = f32(x);
    let fy = f32(y);
    sx = recf(r + 1u) * fx + recf(r + 2u) * fy + recf(r + 3u);
    sy = recf(r + 4u) * fx + recf(r + 5u) * fy + recf(r + 6u);
  }
  // Keep far-away positions (tiny scales) inside i32.
  sx = clamp(sx, -1.0e7, 1.0e7);
  sy = clamp(sy, -1.0e7, 1.0e7);
  let wx = i32(rec[r + 7u]);
  let wy = i32(rec[r + 8u]);
  let ww = i32(rec[r + 9u]);
  let wh = i32(rec[r + 10u]);
  let mode = rec[r + 11u];
  let x0f = floor(sx);
  let y0f = floor(sy);
  let tx = sx - x0f;
  let ty = sy - y0f;
  let x0 = i32(x0f);
  let y0 = i32(y0f);
  let ix0 = border_index(x0 - wx, ww, mode);
  let ix1 = border_index(x0 + 1 - wx, ww, mode);
  let iy0 = border_index(y0 - wy, wh, mode);
  let iy1 = border_index(y0 + 1 - wy, wh, mode);
  let inside = vec4<bool>(iy0 >= 0 && ix0 >= 0, iy0 >= 0 && ix1 >= 0, iy1 >= 0 && ix0 >= 0, iy1 >= 0 && ix1 >= 0);
  let W = i32(p.wi);
  // Flat offsets of the four taps inside one plane (0 where the fill is used; never read then).
  let o00 = u32(select(0, (wy + iy0) * W + wx + ix0, inside.x));
  let o01 = u32(select(0, (wy + iy0) * W + wx + ix1, inside.y));
  let o10 = u32(select(0, (wy + iy1) * W + wx + ix0, inside.z));
  let o11 = u32(select(0, (wy + iy1) * W + wx + ix1, inside.w));

  for (var c = 0u; c < p.ca; c++) {
    let fill = recf(r + 12u + c);
    let b = (n * p.ca + c) * planeIn;
    let v00 = select(fill, srcA[b + o00], inside.x);
    let v01 = select(fill, srcA[b + o01], inside.y);
    let v10 = select(fill, srcA[b + o10], inside.z);
    let v11 = select(fill, srcA[b + o11], inside.w);
    dstA[(n * p.ca + c) * planeOut + pix] = (1.0 - ty) * ((1.0 - tx) * v00 + tx * v01) + ty * ((1.0 - tx) * v10 + tx * v11);
  }
  for (var c = 0u; c < p.cb; c++) {
    let fill = recf(r + 12u + p.ca + c);
    let b = (n * p.cb + c) * planeIn;
    let v00 = select(fill, srcB[b + o00], inside.x);
    let v01 = select(fill, srcB[b + o01], inside.y);
    let v10 = select(fill, srcB[b + o10], inside.z);
    let v11 = select(fill, srcB[b + o11], inside.w);
    dstB[(n * p.cb + c) * planeOut + pix] = (1.0 - ty) * ((1.0 - tx) * v00 + tx * v01) + ty * ((1.0 - tx) * v10 + tx * v11);
  }
}
