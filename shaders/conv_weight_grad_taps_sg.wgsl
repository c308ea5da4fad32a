// Convolution weight gradient, register-blocked over kernel taps, with the grad loads shared through
// subgroups (impl 'taps' on devices with the `subgroups` feature; conv_weight_grad_taps.wgsl is the same
// kernel without subgroups, and its header describes the layout). Same Params, bindings, grid, columns and
// outputs (including the [splits, M, K + 1] partials finished by conv_blocked.wgsl `sum_splits_bias`).
//
// Why: in conv_weight_grad_taps.wgsl each thread loads all MB * PB grad values of a step itself. Their
// addresses are the same for every thread of the workgroup, yet on Mesa lavapipe (8-wide SIMD, one
// subgroup = 8 lanes) a workgroup-uniform load costs as much as a per-thread one, and those loads took 60-70%
// of the kernel (measured by replacing them with constants). Here the SG lanes of a subgroup load
// ceil(MB * PB / SG) values each and subgroupBroadcast hands every value to all lanes (a register shuffle),
// so a k4 s2 step with MB 8, PB 4 costs 10 src loads + 4 grad loads per lane instead of 10 + 32.
// Requires every lane 0..SG-1 of each subgroup to run the loops (they do: spare columns compute clamped
// copies, the loop bounds are workgroup-uniform) and full subgroups of at least SG lanes (conv2d.ts
// subgroupsFor: the adapter's subgroup sizes and the workgroup size).
//
// This file is a template: conv2d.ts (tapsSgSource) replaces the @STEP marker line with the step written out for the
// pipeline's MB, TH, KW, SW, PB (the constants below must match it).

enable subgroups;
diagnostic(off, subgroup_uniformity);

override SG: u32 = 8;   // lanes that share the grad loads (<= the subgroup size)
override WG: u32 = 64;
override MB: u32 = 8;   // rows (grad channels) per thread
override TH: u32 = 1;   // kernel rows per thread
override KH: u32 = 4;   // kernel size (tap loops unroll)
override KW: u32 = 4;
override SW: u32 = 2;   // column stride
override PB: u32 = 4;   // grad pixels of a row per step; SPAN = (PB - 1) * SW + KW <= MAX_SPAN

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

// Value r * SG + sgLane of the step's list v = q * MB + i: grad[n, m0 + i, oh, ow0 + q] (0 past the row's end
// or the list's end; rows past M read row M - 1, never stored).
fn gradValue(r: u32, sgLane: u32, gradRow: u32, m0: u32, ow0: u32) -> f32 {
  let v = r * SG + sgLane;
  let i = v % MB;
  let q = v / MB;
  let ok = v < MB * PB && ow0 + q < p.outW;
  let outHW = p.outH * p.outW;
  return select(0.0, gradAct(grad[gradRow + min(m0 + i, p.M - 1u) * outHW + min(ow0 + q, p.outW - 1u)]), ok);
}

//@STORE_BIAS

@compute @workgroup_size(WG)
fn weight_grad_taps_sg(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_index) li: u32, @builtin(subgroup_invocation_id) lane: u32) {
  let sgLane = lane % SG;
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
  // Per lane, the sum of each of its grad values over the steps (bs0, bs1, ...: the bias gradient's parts).
//@BIAS_DECL
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
      // The MB x PB grad values of this step, gathered by the SG lanes together (lane l loads values l,
      // l + SG, ... of the list v = q * MB + i, see gradValue) and broadcast to every lane; then the
      // MB * PB * TH * KW multiply-adds. Written out by conv2d.ts (tapsSgSource): subgroupBroadcast takes a
      // constant lane, e.g. for MB 2, PB 4, TH 1, KW 4:
      //   let gv0 = gradValue(0u, ...);
      //   { let g = subgroupBroadcast(gv0, 0u); acc[0] += g * xs[0]; ... acc[3] += g * xs[3]; }
      //   { let g = subgroupBroadcast(gv0, 1u); acc[4] += g * xs[0]; ... acc[7] += g * xs[3]; }
      //   { let g = subgroupBroadcast(gv0, 2u); acc[0] += g * xs[2]; ... }  (q = 1: src columns 2..5)
//@STEP
    }
  }
  // The bias gradient db[m0 + i]: value v = r * SG + l of a step's list is row v % MB, and lane l's bs{r}
  // summed it over every step; the broadcasts (written out by taps.ts, subgroup-uniform like the step's) add
  // those parts up in every lane, and one thread of the first column block stores them.
  var bsum: array<f32, MAX_MB>;
//@BIAS_SUM
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
