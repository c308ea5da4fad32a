// Transposed (fractionally strided) gather convolution, PyTorch's conv_transpose2d written as a gather:
//   dst[n, m, oh, ow] = bias[m] + sum over (c, kh, kw) with oh + ph - kh = sh*ih, ow + pw - kw = sw*iw,
//                       0 <= ih < inH, 0 <= iw < inW, of wgt[c, m, kh, kw] * src[n, c, ih, iw]
// Each output gathers its terms, so there are no atomics and no write conflicts. It serves two ops:
//   conv_transpose2d forward: src = x,  wgt = w [Cin, Cout, KH, KW], dst = y  (M = Cout, C = Cin)
//   conv2d grad input:        src = dy, wgt = w [Cout, Cin, KH, KW], dst = dx (M = Cin,  C = Cout)
// `accumulate` = 1 adds into dst (shared gradients), 0 overwrites.
//
// `direct`: one thread per output element, looping over c and the taps (kh, kw) whose input coordinate
//   is whole (every sh-th kh from (oh + ph) mod sh). The readable reference path; 2-D grid of 1-D workgroups.
//
// `tiled`: implicit GEMM split by output phase. For stride s only the taps kh = rh + s*jh with
//   rh = (oh + ph) mod s can hit an integer input row, and then ih = a - jh where oh = rh - ph + s*a.
//   So the outputs fall into sh*sw phases (rh, rw); within a phase every column uses the same
//   th*tw = ceil((KH - rh)/sh) * ceil((KW - rw)/sw) taps. Per phase this is a dense GEMM
//   dst[m, col] = sum_k A[m, k] * B[k, col], col = (n, a, b), k = (c, jh, jw), with no wasted
//   multiply-adds on the zeros a naive im2col of the stride-dilated input would contain (3/4 of them
//   for k4 s2). Tiling as in conv2d.wgsl: 16x16 threads per 64x64 tile, 4x4 per thread, K step 16
//   staged in workgroup memory. Grid: x, y = column tiles of the largest phase (folded), z = row tile +
//   row tiles * phase; tiles past a smaller phase's end return at once.

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
  // Only taps with kh = (oh + ph) mod sh (+ multiples of sh) land on a whole input row ih = (oh + ph - kh) / sh.
  let rh = (oh + p.ph) % p.sh;
  let rw = (ow + p.pw) % p.sw;
  var sum = 0.0;
  for (var c = 0u; c < p.C; c++) {
    let srcPlane = (n * p.C + c) * p.inH * p.inW;
    let wgtPlane = (c * p.M + m) * p.KH * p.KW;
    for (var kh = rh; kh < p.KH; kh += p.sh) {
      let ih = (i32(oh + p.ph) - i32(kh)) / i32(p.sh);  // exact division: kh = oh + ph (mod sh)
      if (ih < 0 || ih >= i32(p.inH)) { continue; }
      for (var kw = rw; kw < p.KW; kw += p.sw) {
        let iw = (i32(ow + p.pw) - i32(kw)) / i32(p.sw);
        if (iw < 0 || iw >= i32(p.inW)) { continue; }
        sum += wgt[wgtPlane + kh * p.KW + kw] * srcAct(src[srcPlane + u32(ih) * p.inW + u32(iw)]);
      }
    }
  }
  finish(idx, m, sum);
}

// The tiled kernel's tile sizes (shaders.ts TILED_CONSTANTS_WGSL, shared by the three tiled shaders).
//@TILED_CONSTANTS

var<workgroup> tileA: array<vec4f, TILE_K * ROW_A>;  // [TILE_K][TILE / 4 + 1]: rows padded by one vec4 (see ROW_A)
var<workgroup> tileB: array<vec4f, TILE_K * VEC>;    // [TILE_K][TILE / 4]

// Outputs o = r - pad + s*a of phase r inside [0, out): returns (first a, number of a's).
fn phaseRange(r: u32, s: u32, pad: u32, out: u32) -> vec2u {
  let first = select(0u, (pad - r + s - 1u) / s, pad > r);
  if (out - 1u + pad < r) { return vec2u(first, 0u); }
  let last = (out - 1u + pad - r) / s;
  return vec2u(first, select(0u, last - first + 1u, last >= first));
}

// Taps k = r + s*j < kernel of phase r.
fn phaseTaps(r: u32, s: u32, kernel: u32) -> u32 {
  return select(0u, (kernel - r + s - 1u) / s, r < kernel);
}

@compute @workgroup_size(VEC, VEC)
fn tiled(
  @builtin(workgroup_id) wid: vec3u,
  @builtin(num_workgroups) nwg: vec3u,
  @builtin(local_invocation_id) lid: vec3u,
  @builtin(local_invocation_index) li: u32,
) {
  let mTiles = (p.M + TILE - 1u) / TILE;
  let phase = wid.z / mTiles;
  let m0 = (wid.z % mTiles) * TILE;
  let rh = phase / p.sw;
  let rw = phase % p.sw;
  let rangeH = phaseRange(rh, p.sh, p.ph, p.outH);
  let rangeW = phaseRange(rw, p.sw, p.pw, p.outW);
  let phaseHW = rangeH.y * rangeW.y;
  let nCols = p.batch * phaseHW;
  let col0 = (wid.x + wid.y * nwg.x) * TILE;
  if (col0 >= nCols) { return; }  // workgroup-uniform
  let th = phaseTaps(rh, p.sh, p.KH);
  let tw = phaseTaps(rw, p.sw, p.KW);
  let taps = th * tw;
  let K = p.C * taps;
  let inHW = p.inH * p.inW;
  let outHW = p.outH * p.outW;

  // B loads: fixed column per thread; (n, a, b) decomposed once.
  let bj = li % TILE;
  let bk = li / TILE;
  let col = col0 + bj;
  let colValid = col < nCols;
  let cr = col % max(phaseHW, 1u);
  let a = i32(rangeH.x + cr / max(rangeW.y, 1u));
  let b = i32(rangeW.x + cr % max(rangeW.y, 1u));
  let srcImage = (col / max(phaseHW, 1u)) * p.C * inHW;
  // A loads: fixed k per thread within a step, four rows.
  let ak = li % TILE_K;
  let am = li / TILE_K;

  var acc: array<vec4f, 4>;
  for (var k0 = 0u; k0 < K; k0 += TILE_K) {
    let ka = k0 + ak;
    if (ka < K) {
      let c = ka / taps;
      let t = ka % taps;
      let kh = rh + p.sh * (t / tw);
      let kw = rw + p.sw * (t % tw);
      for (var i = 0u; i < TILE / A_STEP; i++) {
        let m = am + A_STEP * i;
        var v = 0.0;
        if (m0 + m < p.M) { v = wgt[((c * p.M + m0 + m) * p.KH + kh) * p.KW + kw]; }
        tileA[ak * ROW_A + m / 4u][m % 4u] = v;
      }
    } else {
      for (var i = 0u; i < TILE / A_STEP; i++) {
        let m = am + A_STEP * i;
        tileA[ak * ROW_A + m / 4u][m % 4u] = 0.0;
      }
    }
    for (var i = 0u; i < TILE_K / B_STEP; i++) {
      let kr = bk + B_STEP * i;
      let k = k0 + kr;
      var v = 0.0;
      if (colValid && k < K) {
        let c = k / taps;
        let t = k % taps;
        let ih = a - i32(t / tw);
        let iw = b - i32(t % tw);
        if (ih >= 0 && ih < i32(p.inH) && iw >= 0 && iw < i32(p.inW)) {
          v = srcAct(src[srcImage + c * inHW + u32(ih) * p.inW + u32(iw)]);
        }
      }
      tileB[kr * VEC + bj / 4u][bj % 4u] = v;
    }
    workgroupBarrier();
    for (var kk = 0u; kk < TILE_K; kk++) {
      let av = tileA[kk * ROW_A + lid.y];
      let bv = tileB[kk * VEC + lid.x];
      acc[0] += av.x * bv;
      acc[1] += av.y * bv;
      acc[2] += av.z * bv;
      acc[3] += av.w * bv;
    }
    workgroupBarrier();
  }

  for (var j = 0u; j < 4u; j++) {
    let c = col0 + lid.x * 4u + j;
    if (c >= nCols) { break; }
    let r = c % phaseHW;
    let oh = rh + p.sh * (rangeH.x + r / rangeW.y) - p.ph;
    let ow = rw + p.sw * (rangeW.x + r % rangeW.y) - p.pw;
    let base = (c / phaseHW) * p.M * outHW + oh * p.outW + ow;
    for (var i = 0u; i < 4u; i++) {
      let m = m0 + lid.y * 4u + i;
      if (m >= p.M) { break; }
      finish(base + m * outHW, m, acc[i][j]);
    }
  }
}
