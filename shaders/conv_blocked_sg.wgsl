// The blocked gathers of conv_blocked.wgsl (`gather`: conv2d forward, conv_transpose2d grad input;
// `transposed`: conv_transpose2d forward, conv2d grad input) with the weight loads shared through subgroups
// (impl 'blocked' on devices with the `subgroups` feature; conv_blocked.wgsl stays the reference, and its
// header describes the index patterns, the work split and the grids, which are the same here).
//
// Why: the weight loads of a step (MB rows x KW taps of one input channel and kernel row in `gather`,
// MB rows x the phase's TW taps in `transposed`) have the same address in every thread of the workgroup,
// and on Mesa lavapipe such loads cost as much as per-thread ones and bound the kernels (see
// BLOCKED_PIXELS in conv2d.ts). Here the SG lanes of a subgroup load ceil(MB * taps / SG) of them each and
// subgroupBroadcast hands every value to all lanes: a k4 s2 gather step with MB 8, PB 4 costs 10 src loads +
// 4 weight loads per lane instead of 10 + 32. Requires every lane 0..SG-1 of each subgroup to run the loops
// (spare columns compute clamped copies; the loop bounds are workgroup-uniform) and subgroups of at least SG
// lanes (conv2d.ts subgroupsFor: the adapter's subgroup sizes, full subgroups).
//
// This file is a template: conv2d.ts (blockedSgSource) replaces the @GATHER_STEP and @TRANSPOSED_STEP marker
// lines with the steps written out for the pipeline's MB, PB and kernel (subgroupBroadcast takes a constant
// lane), and empties the marker of the entry point it does not use.

enable subgroups;
diagnostic(off, subgroup_uniformity);

override SG: u32 = 8;   // lanes that share the weight loads (<= the subgroup size)
const MAX_ACC = 64u;   // MB * PB

// Overrides, Params, bindings, finish() and column(): the //@SHARED_BEGIN..END lines of conv_blocked.wgsl.
//@DECLARATIONS

// Value r * SG + sgLane of a gather step's weights: v = i * KW + kw -> wgt[m0 + i, c, kh, kw] (rows past M
// read row M - 1, never stored; 0 past the list's end). rowTap = c * KH * KW + kh * KW.
fn gatherWeight(r: u32, sgLane: u32, m0: u32, rowTap: u32) -> f32 {
  let v = r * SG + sgLane;
  let i = v / KW;
  let kw = v % KW;
  let wRow = p.C * KH * KW;
  return select(0.0, wgt[min(m0 + i, p.M - 1u) * wRow + rowTap + kw], v < MB * KW);
}

// Value r * SG + sgLane of a transposed step's weights: v = i * TW + jw -> wgt[c, m0 + i, kh, rw + SW * jw]
// (0 for taps past the kernel, which some phases have, and past the list's end). wPlane0 = c * M * KH * KW.
fn transposedWeight(r: u32, sgLane: u32, m0: u32, wPlane0: u32, kh: u32, rw: u32) -> f32 {
  let TW = (KW + SW - 1u) / SW;
  let v = r * SG + sgLane;
  let i = v / TW;
  let kw = rw + SW * (v % TW);
  let tap = min(kh, KH - 1u) * KW + min(kw, KW - 1u);
  return select(0.0, wgt[wPlane0 + min(m0 + i, p.M - 1u) * KH * KW + tap], v < MB * TW && kw < KW && kh < KH);
}

@compute @workgroup_size(WG)
fn gather_sg(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_index) li: u32, @builtin(subgroup_invocation_id) lane: u32) {
  let sgLane = lane % SG;
  let outHW = p.outH * p.outW;
  let inHW = p.inH * p.inW;
  // A column is PB consecutive outputs ow0..ow0+PB-1 of one output row.
  let rowBlocks = (p.outW + PB - 1u) / PB;
  let nCols = p.batch * p.outH * rowBlocks;
  let col = column(wid, nwg, li);
  let valid = col < nCols;
  let cc = min(col, nCols - 1u);  // spare threads compute a copy of the last column and store nothing
  let ow0 = (cc % rowBlocks) * PB;
  let oh = (cc / rowBlocks) % p.outH;
  let n = cc / (rowBlocks * p.outH);
  let ih0 = i32(oh * p.sh) - i32(p.ph);
  let iw0 = i32(ow0 * SW) - i32(p.pw);
  // The PB outputs read SPAN consecutive src columns per kernel row: output q, tap kw reads column q*SW + kw.
  let SPAN = (PB - 1u) * SW + KW;
  var colOff: array<i32, MAX_SPAN>;  // src column, -1 outside the image
  for (var j = 0u; j < SPAN; j++) {
    let iw = iw0 + i32(j);
    colOff[j] = select(-1, iw, iw >= 0 && iw < i32(p.inW));
  }
  let m0 = wid.z * MB;
  let taps = KH * KW;
  var acc: array<f32, MAX_ACC>;  // acc[i*PB + q]: row m0 + i, output ow0 + q
  var srcPlane = n * p.C * inHW;
  for (var c = 0u; c < p.C; c++) {
    for (var kh = 0u; kh < KH; kh++) {
      let ih = ih0 + i32(kh);
      let rowInside = ih >= 0 && ih < i32(p.inH);
      let rowBase = srcPlane + u32(clamp(ih, 0, i32(p.inH) - 1)) * p.inW;
      var xs: array<f32, MAX_SPAN>;
      for (var j = 0u; j < SPAN; j++) {
        let o = colOff[j];
        xs[j] = select(0.0, srcAct(src[rowBase + u32(max(o, 0))]), rowInside && o >= 0);
      }
      // Weights wgt[m0 + i, c, kh, kw], i < MB, kw < KW: value v = i * KW + kw is loaded by lane v % SG
      // (gatherWeight) and broadcast; then acc[i * PB + q] += w * xs[q * SW + kw] for q < PB.
      let rowTap = c * taps + kh * KW;
//@GATHER_STEP
    }
    srcPlane += inHW;
  }
  if (!valid) { return; }
  let base = n * p.M * outHW + oh * p.outW;
  for (var q = 0u; q < PB; q++) {
    let ow = ow0 + q;
    if (ow >= p.outW) { break; }
    for (var i = 0u; i < MB; i++) {
      let m = m0 + i;
      if (m < p.M) { finish(base + m * outHW + ow, m, acc[i * PB + q]); }
    }
  }
}

// Outputs o = r - pad + s*a of phase r inside [0, out): returns (first a, number of a's).
fn phaseRange(r: u32, s: u32, pad: u32, out: u32) -> vec2u {
  let first = select(0u, (pad - r + s - 1u) / s, pad > r);
  if (out - 1u + pad < r) { return vec2u(first, 0u); }
  let last = (out - 1u + pad - r) / s;
  return vec2u(first, select(0u, last - first + 1u, last >= first));
}

@compute @workgroup_size(WG)
fn transposed_sg(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_index) li: u32, @builtin(subgroup_invocation_id) lane: u32) {
  let sgLane = lane % SG;
  let mBlocks = (p.M + MB - 1u) / MB;
  let phase = wid.z / mBlocks;
  let m0 = (wid.z % mBlocks) * MB;
  let rh = phase / SW;
  let rw = phase % SW;
  let rangeH = phaseRange(rh, SH, p.ph, p.outH);
  let rangeW = phaseRange(rw, SW, p.pw, p.outW);
  // A column is PB consecutive outputs b0..b0+PB-1 of one row a of the phase (ow = rw - pw + SW*b).
  let rowBlocks = (rangeW.y + PB - 1u) / PB;
  let nCols = p.batch * rangeH.y * rowBlocks;
  if (nCols == 0u) { return; }  // workgroup-uniform: a phase with no outputs
  let col = column(wid, nwg, li);
  let valid = col < nCols;
  let cc = min(col, nCols - 1u);
  let bOff = (cc % rowBlocks) * PB;
  let aOff = (cc / rowBlocks) % rangeH.y;
  let n = cc / (rowBlocks * rangeH.y);
  let a = i32(rangeH.x + aOff);
  let b0 = i32(rangeW.x + bOff);
  let inHW = p.inH * p.inW;
  let outHW = p.outH * p.outW;
  // Taps kh = rh + SH*jh < KH, kw = rw + SW*jw < KW (TH x TW at most; fewer for some phases when the
  // stride does not divide the kernel). Output q, tap jw reads src column b0 + q - jw = iwFirst + (q - jw + TW - 1).
  let TH = (KH + SH - 1u) / SH;
  let TW = (KW + SW - 1u) / SW;
  let SPAN = PB + TW - 1u;
  let iwFirst = b0 - i32(TW - 1u);
  var colOff: array<i32, MAX_SPAN>;
  for (var j = 0u; j < SPAN; j++) {
    let iw = iwFirst + i32(j);
    colOff[j] = select(-1, iw, iw >= 0 && iw < i32(p.inW));
  }
  let taps = KH * KW;
  let wPlane = p.M * taps;  // wgt[c, m, kh, kw]
  var acc: array<f32, MAX_ACC>;  // acc[i*PB + q]
  var srcPlane = n * p.C * inHW;
  var wBase = 0u;
  for (var c = 0u; c < p.C; c++) {
    for (var jh = 0u; jh < TH; jh++) {
      let kh = rh + SH * jh;
      let ih = a - i32(jh);
      let rowInside = kh < KH && ih >= 0 && ih < i32(p.inH);
      let rowBase = srcPlane + u32(clamp(ih, 0, i32(p.inH) - 1)) * p.inW;
      var xs: array<f32, MAX_SPAN>;
      for (var j = 0u; j < SPAN; j++) {
        let o = colOff[j];
        xs[j] = select(0.0, srcAct(src[rowBase + u32(max(o, 0))]), rowInside && o >= 0);
      }
      // Weights wgt[c, m0 + i, kh, rw + SW * jw], i < MB, jw < TW: value v = i * TW + jw is loaded by lane
      // v % SG (transposedWeight) and broadcast; then acc[i * PB + q] += w * xs[q + TW - 1 - jw] for q < PB.
//@TRANSPOSED_STEP
    }
    srcPlane += inHW;
    wBase += wPlane;
  }
  if (!valid) { return; }
  let oh = rh + SH * u32(a) - p.ph;
  let base = n * p.M * outHW + oh * p.outW;
  for (var q = 0u; q < PB; q++) {
    if (bOff + q >= rangeW.y) { break; }
    let ow = rw + SW * (u32(b0) + q) - p.pw;
    for (var i = 0u; i < MB; i++) {
      let m = m0 + i;
      if (m < p.M) { finish(base + m * outHW + ow, m, acc[i * PB + q]); }
    }
  }
}

