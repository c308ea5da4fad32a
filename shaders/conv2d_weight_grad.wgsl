// Weight gradient of a gather convolution (conv2d's dw; conv_transpose2d's dw with the roles swapped):
//   dst[m, c, kh, kw] = sum_{n, oh, ow} grad[n, m, oh, ow] * src[n, c, oh*sh - ph + kh, ow*sw - pw + kw]
//   conv2d:           grad = dy [N, Cout, Ho, Wo], src = x  [N, Cin, H, W],    dst = dw [Cout, Cin, KH, KW]
//   conv_transpose2d: grad = x  [N, Cin, H, W],    src = dy [N, Cout, Ho, Wo], dst = dw [Cin, Cout, KH, KW]
// (zero outside src). `accumulate` = 1 adds into dst, 0 overwrites.
//
// `direct`: one thread per weight element looping over every (n, oh, ow). Readable reference path;
//   2-D grid of 1-D workgroups.
//
// `tiled`: GEMM dst[m, k] = sum_j A[m, j] * B[j, k], rows m (M), columns k = (c*KH + kh)*KW + kw,
//   reduction j = n*outH*outW + oh*outW + ow, A = grad viewed per image as [M, outH*outW], B = im2col of
//   src gathered on the fly. 16x16 threads own a 64x64 tile of dst, 4x4 per thread in registers; the
//   j loop stages a 64x16 slice of A and a 16x64 slice of B in workgroup memory per step.
//   The reduction (N*Ho*Wo, 131072 for a 256x512 map) is much longer than the output is wide for the
//   first layers (64 x 48), so it is split: grid z = `splits` slices of `chunk` j's each. With
//   splits = 1 the tile is written to dst (honouring accumulate); otherwise slice z writes its partial
//   sums to dst[z*M*K + ...] (a scratch buffer) and conv2d_reduce.wgsl `sum_splits` adds them up.
//   Grid: x = column tiles, y = row tiles, z = splits.

override WG: u32 = 256;

//@CONV_PARAMS

//@FUSION

@group(0) @binding(0) var<uniform> p: ConvParams;
@group(0) @binding(1) var<storage, read> grad: array<f32>;
@group(0) @binding(2) var<storage, read> src: array<f32>;
@group(0) @binding(3) var<storage, read_write> dst: array<f32>;

@compute @workgroup_size(WG)
fn direct(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let idx = gid.x + gid.y * nwg.x * WG;
  let taps = p.KH * p.KW;
  if (idx >= p.M * p.C * taps) { return; }
  let kw = idx % p.KW;
  let kh = (idx / p.KW) % p.KH;
  let c = (idx / taps) % p.C;
  let m = idx / (taps * p.C);
  var sum = 0.0;
  for (var n = 0u; n < p.batch; n++) {
    let gradPlane = (n * p.M + m) * p.outH * p.outW;
    let srcPlane = (n * p.C + c) * p.inH * p.inW;
    for (var oh = 0u; oh < p.outH; oh++) {
      let ih = i32(oh * p.sh + kh) - i32(p.ph);
      if (ih < 0 || ih >= i32(p.inH)) { continue; }
      for (var ow = 0u; ow < p.outW; ow++) {
        let iw = i32(ow * p.sw + kw) - i32(p.pw);
        if (iw < 0 || iw >= i32(p.inW)) { continue; }
        sum += gradAct(grad[gradPlane + oh * p.outW + ow]) * srcAct(src[srcPlane + u32(ih) * p.inW + u32(iw)]);
      }
    }
  }
  dst[idx] = select(sum, sum + dst[idx], p.accumulate == 1u);
}

// The tiled kernel's tile sizes (shaders.ts TILED_CONSTANTS_WGSL, shared by the three tiled shaders).
//@TILED_CONSTANTS

var<workgroup> tileA: array<vec4f, TILE_K * ROW_A>;  // [TILE_K][TILE / 4 + 1]: rows padded by one vec4 (see ROW_A)
var<workgroup> tileB: array<vec4f, TILE_K * VEC>;    // [TILE_K][TILE / 4]: im2col columns

@compute @workgroup_size(VEC, VEC)
fn tiled(
  @builtin(workgroup_id) wid: vec3u,
  @builtin(local_invocation_id) lid: vec3u,
  @builtin(local_invocation_index) li: u32,
) {
  let taps = p.KH * p.KW;
  let K = p.C * taps;
  let outHW = p.outH * p.outW;
  let inHW = p.inH * p.inW;
  let P = p.batch * outHW;
  let k0 = wid.x * TILE;
  let m0 = wid.y * TILE;
  let jBegin = wid.z * p.chunk;
  let jEnd = min(P, jBegin + p.chunk);

  // B loads: fixed column k per thread, so its (c, kh, kw) is decomposed once.
  let bcol = li % TILE;
  let bj = li / TILE;
  let kb = k0 + bcol;
  let kbValid = kb < K;
  let srcChannel = (kb / taps) * inHW;
  let kh = (kb % taps) / p.KW;
  let kw = kb % p.KW;
  // A loads: consecutive threads read consecutive j (consecutive pixels of one grad plane).
  let aj = li % TILE_K;
  let am = li / TILE_K;

  var acc: array<vec4f, 4>;
  for (var j0 = jBegin; j0 < jEnd; j0 += TILE_K) {
    let ja = j0 + aj;
    let jaValid = ja < jEnd;
    let gradImage = (ja / outHW) * p.M * outHW + ja % outHW;
    for (var i = 0u; i < TILE / A_STEP; i++) {
      let m = am + A_STEP * i;
      var v = 0.0;
      if (jaValid && m0 + m < p.M) { v = gradAct(grad[gradImage + (m0 + m) * outHW]); }
      tileA[aj * ROW_A + m / 4u][m % 4u] = v;
    }
    for (var i = 0u; i < TILE_K / B_STEP; i++) {
      let jr = bj + B_STEP * i;
      let j = j0 + jr;
      var v = 0.0;
      if (kbValid && j < jEnd) {
        let n = j / outHW;
        let ohw = j % outHW;
        let ih = i32((ohw / p.outW) * p.sh + kh) - i32(p.ph);
        let iw = i32((ohw % p.outW) * p.sw + kw) - i32(p.pw);
        if (ih >= 0 && ih < i32(p.inH) && iw >= 0 && iw < i32(p.inW)) {
          v = srcAct(src[n * p.C * inHW + srcChannel + u32(ih) * p.inW + u32(iw)]);
        }
      }
      tileB[jr * VEC + bcol / 4u][bcol % 4u] = v;
    }
    workgroupBarrier();
    for (var jj = 0u; jj < TILE_K; jj++) {
      let a = tileA[jj * ROW_A + lid.y];
      let b = tileB[jj * VEC + lid.x];
      acc[0] += a.x * b;
      acc[1] += a.y * b;
      acc[2] += a.z * b;
      acc[3] += a.w * b;
    }
    workgroupBarrier();
  }

  let partialBase = select(0u, wid.z * p.M * K, p.splits > 1u);
  let addOld = p.splits == 1u && p.accumulate == 1u;
  for (var i = 0u; i < 4u; i++) {
    let m = m0 + lid.y * 4u + i;
    if (m >= p.M) { break; }
    for (var j = 0u; j < 4u; j++) {
      let k = k0 + lid.x * 4u + j;
      if (k >= K) { break; }
      let idx = partialBase + m * K + k;
      dst[idx] = select(acc[i][j], acc[i][j] + dst[idx], addOld);
    }
  }
}
