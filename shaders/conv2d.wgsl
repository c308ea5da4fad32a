// Gather convolution (cross-correlation with zero padding, PyTorch's conv2d):
//   dst[n, m, oh, ow] = bias[m] + sum_{c, kh, kw} wgt[m, c, kh, kw] * src[n, c, oh*sh - ph + kh, ow*sw - pw + kw]
// It serves two ops with the same index pattern:
//   conv2d forward:               src = x,  wgt = w [Cout, Cin, KH, KW],  dst = y   (M = Cout, C = Cin)
//   conv_transpose2d grad input:  src = dy, wgt = w [Cin, Cout, KH, KW], dst = dx  (M = Cin,  C = Cout)
// `accumulate` = 1 adds into dst (shared gradients), 0 overwrites.
//
// `direct`: one thread per output element, looping over (c, kh, kw). The readable reference path; the
//   flat index uses a 2-D grid of 1-D workgroups (index = x + y * groupsX * WG).
//
// `tiled`: implicit GEMM, dst[m, col] = sum_k A[m, k] * B[k, col] with
//   rows m (M), columns col = n*outH*outW + oh*outW + ow, reduction k = (c*KH + kh)*KW + kw (C*KH*KW),
//   A = wgt viewed as [M, K] (row-major already), B = the im2col matrix, gathered on the fly (never stored).
//   A workgroup of 16x16 threads owns a 64x64 tile of dst; each thread keeps a 4x4 block in registers
//   (rows 4*ty..4*ty+3, columns 4*tx..4*tx+3). Per K step of 16 the workgroup stages a 64x16 slice of A
//   and a 16x64 slice of B in workgroup memory (each thread loads 4 + 4 values), then every thread does
//   16 rank-1 updates of its 4x4 block from two vec4 reads. Grid: x, y = column tiles (folded over two
//   dimensions because a 512x1024 map at batch 8 has more than 65535 tiles of 64), z = row tiles.

override WG: u32 = 256;

//@CONV_PARAMS

//@FUSION

@group(0) @binding(0) var<uniform> p: ConvParams;
@group(0) @binding(1) var<storage, read> src: array<f32>;
@group(0) @binding(2) var<storage, read> wgt: array<f32>;
@group(0) @binding(3) var<storage, read> bias: array<f32>;   // bias [M]; the dstGrad mask (dst's shape); else bound to wgt (never read)
@group(0) @binding(4) var<storage, read_write> dst: array<f32>;

// The gathers' store (dst = [dst +] epilogue(conv)): fusion.ts's GATHER_FINISH_WGSL fills this line.
//@GATHER_FINISH

@compute @workgroup_size(WG)
fn direct(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let idx = gid.x + gid.y * nwg.x * WG;
  let outHW = p.outH * p.outW;
  if (idx >= p.batch * p.M * outHW) { return; }
  let ow = idx % p.outW;
  let oh = (idx / p.outW) % p.outH;
  let m = (idx / outHW) % p.M;
  let n = idx / (outHW * p.M);
  let ih0 = i32(oh * p.sh) - i32(p.ph);
  let iw0 = i32(ow * p.sw) - i32(p.pw);
  var sum = 0.0;
  for (var c = 0u; c < p.C; c++) {
    let srcPlane = (n * p.C + c) * p.inH * p.inW;
    let wgtPlane = (m * p.C + c) * p.KH * p.KW;
    for (var kh = 0u; kh < p.KH; kh++) {
      let ih = ih0 + i32(kh);
      if (ih < 0 || ih >= i32(p.inH)) { continue; }
      for (var kw = 0u; kw < p.KW; kw++) {
        let iw = iw0 + i32(kw);
        if (iw < 0 || iw >= i32(p.inW)) { continue; }
        sum += wgt[wgtPlane + kh * p.KW + kw] * srcAct(src[srcPlane + u32(ih) * p.inW + u32(iw)]);
      }
    }
  }
  finish(idx, m, sum);
}

// The tiled kernel's tile sizes (shaders.ts TILED_CONSTANTS_WGSL, shared by the three tiled shaders).
//@TILED_CONSTANTS

var<workgroup> tileA: array<vec4f, TILE_K * ROW_A>;  // [TILE_K][TILE / 4 + 1]: tileA[k*ROW_A + m/4][m%4] = A[m0 + m, k0 + k]
var<workgroup> tileB: array<vec4f, TILE_K * VEC>;    // [TILE_K][TILE / 4]: tileB[k*VEC + j/4][j%4] = B[k0 + k, col0 + j]

@compute @workgroup_size(VEC, VEC)
fn tiled(
  @builtin(workgroup_id) wid: vec3u,
  @builtin(num_workgroups) nwg: vec3u,
  @builtin(local_invocation_id) lid: vec3u,
  @builtin(local_invocation_index) li: u32,
) {
  let outHW = p.outH * p.outW;
  let inHW = p.inH * p.inW;
  let nCols = p.batch * outHW;
  let col0 = (wid.x + wid.y * nwg.x) * TILE;
  if (col0 >= nCols) { return; }  // workgroup-uniform: the folded grid has a few spare tiles
  let m0 = wid.z * TILE;
  let taps = p.KH * p.KW;
  let K = p.C * taps;

  // B loads: this thread always fetches column col0 + bj, rows bk, bk + 4, bk + 8, bk + 12 of each slice,
  // so the column's (n, oh, ow) decomposition is done once, outside the K loop.
  let bj = li % TILE;
  let bk = li / TILE;
  let col = col0 + bj;
  let colValid = col < nCols;
  let n = col / outHW;
  let ohw = col % outHW;
  let ih0 = i32((ohw / p.outW) * p.sh) - i32(p.ph);
  let iw0 = i32((ohw % p.outW) * p.sw) - i32(p.pw);
  let srcImage = n * p.C * inHW;
  // A loads: consecutive threads read consecutive k of one weight row (contiguous in memory).
  let ak = li % TILE_K;
  let am = li / TILE_K;

  var acc: array<vec4f, 4>;
  for (var k0 = 0u; k0 < K; k0 += TILE_K) {
    let ka = k0 + ak;
    for (var i = 0u; i < TILE / A_STEP; i++) {
      let m = am + A_STEP * i;
      var v = 0.0;
      if (m0 + m < p.M && ka < K) { v = wgt[(m0 + m) * K + ka]; }
      tileA[ak * ROW_A + m / 4u][m % 4u] = v;
    }
    for (var i = 0u; i < TILE_K / B_STEP; i++) {
      let kr = bk + B_STEP * i;
      let k = k0 + kr;
      var v = 0.0;
      if (colValid && k < K) {
        let c = k / taps;
        let t = k % taps;
        let ih = ih0 + i32(t / p.KW);
        let iw = iw0 + i32(t % p.KW);
        if (ih >= 0 && ih < i32(p.inH) && iw >= 0 && iw < i32(p.inW)) {
          v = srcAct(src[srcImage + c * inHW + u32(ih) * p.inW + u32(iw)]);
        }
      }
      tileB[kr * VEC + bj / 4u][bj % 4u] = v;
    }
    workgroupBarrier();
    for (var kk = 0u; kk < TILE_K; kk++) {
      let a = tileA[kk * ROW_A + lid.y];
      let b = tileB[kk * VEC + lid.x];
      acc[0] += a.x * b;
      acc[1] += a.y * b;
      acc[2] += a.z * b;
      acc[3] += a.w * b;
    }
    workgroupBarrier();
  }

  for (var j = 0u; j < 4u; j++) {
    let c = col0 + lid.x * 4u + j;
    if (c >= nCols) { break; }
    let base = (c / outHW) * p.M * outHW + c % outHW;
    for (var i = 0u; i < 4u; i++) {
      let m = m0 + lid.y * 4u + i;
      if (m >= p.M) { break; }
      finish(base + m * outHW, m, acc[i][j]);
    }
  }
}
