// Convolution weight gradient, register-blocked over kernel taps (impl 'taps'; the 'blocked' weight_grad of
// conv_blocked.wgsl is its reference and predecessor):
//   dst[m, c, kh, kw] = sum_{n,oh,ow} grad[n, m, oh, ow] * src[n, c, oh*sh - ph + kh, ow*sw - pw + kw]
//   and, with hasBias, db[m] = sum_{n,oh,ow} grad[n, m, oh, ow] (conv2d's bias gradient)
// conv2d: grad = dy, src = x; conv_transpose2d: grad = x, src = dy (roles as conv2d_weight_grad.wgsl).
//
// Why: in conv_blocked.wgsl `weight_grad` every thread owns one tap (c, kh, kw) and MB rows, so each step
// does 1 src load + MB grad loads for MB multiply-adds, and on Mesa lavapipe the loads (per-thread or
// workgroup-uniform alike) bound the kernel. Here a thread owns MB rows x TH kernel rows x all KW taps of
// one input channel c, and walks the grad rows PB pixels at a time: per step it loads the PB * MB grad
// values (workgroup-uniform addresses) once and the TH * SPAN src values of the covered input columns
// (SPAN = (PB - 1) * SW + KW) once, and does MB * PB * TH * KW multiply-adds: for k4 s2, MB 8, TH 1, PB 4,
// 42 loads feed 128 FMAs instead of 144 loads.
//
// Columns (threads): col = c * KHB + khb with KHB = ceil(KH / TH) kernel-row blocks per channel (kh = khb * TH
// + t, t < TH, rows past KH computed on clamped data and never stored). Spare threads compute a copy of the
// last column and store nothing. With hasBias, the bias gradient is summed from the grad values each thread
// loads anyway, and thread 0 of each first column block stores it: a bias column of its own (src 1
// everywhere) took a whole extra column block whenever C * KHB filled its blocks (conv 16->32: 2 blocks
// instead of 1), and lavapipe runs every lane of a block, spare or not, at full cost.
// Grid: x = column blocks of WG, y = row block (M / MB), z = split of the N*outH grad rows (rowsPerSplit
// each). splits == 1: the result goes to dst / dbias (honouring accumulate). splits > 1: split z writes
// partial sums [splits, M, K + 1] (column K = bias, K = C*KH*KW) to dst, which conv_blocked.wgsl
// `sum_splits_bias` (same Params) adds up into dw and db.

override WG: u32 = 64;
override MB: u32 = 8;   // rows (grad channels) per thread
override TH: u32 = 1;   // kernel rows per thread
override KH: u32 = 4;   // kernel size (tap loops unroll)
override KW: u32 = 4;
override SW: u32 = 2;   // column stride
override PB: u32 = 4;   // grad pixels of a row per step; SPAN = (PB - 1) * SW + KW <= MAX_SPAN
override BIAS: u32 = 1; // 1: sum the bias gradient (p.hasBias); 0 compiles its adds away

const MAX_ACC = 64u;    // MB * TH * KW
const MAX_SPAN = 20u;
const MAX_MB = 32u;

//@CONV_PARAMS

//@FUSION

@group(0) @binding(0) var<uniform> p: ConvParams;
@group(0) @binding(1) var<storage, read> src: array<f32>;
@group(0) @binding(2) var<storage, read> grad: array<f32>;
@group(0) @binding(4) var<storage, read_write> dst: array<f32>;
@group(0) @binding(5) var<storage, read_write> dbias: array<f32>;

//@STORE_BIAS

@compute @workgroup_size(WG)
fn weight_grad_taps(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_index) li: u32) {
  let taps = KH * KW;
  let K = p.C * taps;
  let KHB = (KH + TH - 1u) / TH;
  let nCols = p.C * KHB;
  let outHW = p.outH * p.outW;
  let inHW = p.inH * p.inW;
  // conv_transpose2d's bias gradient (fusion.ts srcSum): workgroups past the weight columns (workgroup-uniform).
  let weightBlocks = (nCols + WG - 1u) / WG;
  if (SRC_SUM && wid.x >= weightBlocks) {
    srcChannelSum((wid.x - weightBlocks) * WG + li, wid);
    return;
  }
  let col = wid.x * WG + li;
  let valid = col < nCols;
  let cc = min(col, nCols - 1u);
  let c = cc / KHB;
  let kh0 = (cc % KHB) * TH;
  let m0 = wid.y * MB;
  let rowBegin = wid.z * p.rowsPerSplit;
  let rowEnd = min(p.batch * p.outH, rowBegin + p.rowsPerSplit);
  let SPAN = (PB - 1u) * SW + KW;
  let lastM = p.M - 1u;
  var acc: array<f32, MAX_ACC>;  // acc[(i * TH + t) * KW + kw]
  var bsum: array<f32, MAX_MB>;  // the bias gradient: every thread sees every grad value of its MB rows
  for (var row = rowBegin; row < rowEnd; row++) {
    let n = row / p.outH;
    let oh = row % p.outH;
    let gradRow = n * p.M * outHW + oh * p.outW;
    let srcPlane = (n * p.C + c) * inHW;
    // Source rows of the TH kernel rows: base offset and whether inside the image.
    var rowBase: array<u32, 4>;
    var rowIn: array<bool, 4>;
    for (var t = 0u; t < TH; t++) {
      let ih = i32(oh * p.sh + kh0 + t) - i32(p.ph);
      rowIn[t] = ih >= 0 && ih < i32(p.inH) && kh0 + t < KH;
      rowBase[t] = srcPlane + u32(clamp(ih, 0, i32(p.inH) - 1)) * p.inW;
    }
    for (var ow0 = 0u; ow0 < p.outW; ow0 += PB) {
      let iw0 = i32(ow0 * SW) - i32(p.pw);
      var xs: array<f32, 80>;  // [TH][MAX_SPAN]
      for (var t = 0u; t < TH; t++) {
        for (var j = 0u; j < SPAN; j++) {
          let iw = iw0 + i32(j);
          let inside = rowIn[t] && iw >= 0 && iw < i32(p.inW);
          xs[t * MAX_SPAN + j] = select(0.0, srcAct(src[rowBase[t] + u32(clamp(iw, 0, i32(p.inW) - 1))]), inside);
        }
      }
      for (var q = 0u; q < PB; q++) {
        let ow = ow0 + q;
        let owIn = ow < p.outW;
        let gBase = gradRow + min(ow, p.outW - 1u);
        var g: array<f32, MAX_MB>;
        for (var i = 0u; i < MB; i++) {
          g[i] = select(0.0, gradAct(grad[gBase + min(m0 + i, lastM) * outHW]), owIn);
          if (BIAS == 1u) { bsum[i] += g[i]; }
        }
        for (var t = 0u; t < TH; t++) {
          for (var kw = 0u; kw < KW; kw++) {
            let x = xs[t * MAX_SPAN + q * SW + kw];
            for (var i = 0u; i < MB; i++) { acc[(i * TH + t) * KW + kw] += g[i] * x; }
          }
        }
      }
    }
  }
  if (p.hasBias == 1u && wid.x == 0u && li == 0u) { storeBias(&bsum, m0, wid.z, K); }
  if (!valid) { return; }
  let splits = (p.batch * p.outH + p.rowsPerSplit - 1u) / p.rowsPerSplit;
  if (splits > 1u) {
    // Partial sums [split, m, K + 1] (column K = bias).
    let base = wid.z * p.M * (K + 1u);
    for (var i = 0u; i < MB; i++) {
      let m = m0 + i;
      if (m >= p.M) { break; }
      let r = base + m * (K + 1u);
      for (var t = 0u; t < TH; t++) {
        if (kh0 + t >= KH) { break; }
        for (var kw = 0u; kw < KW; kw++) { dst[r + c * taps + (kh0 + t) * KW + kw] = acc[(i * TH + t) * KW + kw]; }
      }
    }
    return;
  }
  let add = p.accumulate == 1u;
  for (var i = 0u; i < MB; i++) {
    let m = m0 + i;
    if (m >= p.M) { break; }
    for (var t = 0u; t < TH; t++) {
      if (kh0 + t >= KH) { break; }
      for (var kw = 0u; kw < KW; kw++) {
        let idx = m * K + c * taps + (kh0 + t) * KW + kw;
        let v = acc[(i * TH + t) * KW + kw];
        // A branch, not select(v, v + dst[idx], add): p.accumulate is uniform, and the select's load of dst
        // (one per lane, as every store) took ~30% of the small maps' launches on lavapipe when nothing is added.
        if (add) { dst[idx] += v; } else { dst[idx] = v; }
      }
    }
  }
}
