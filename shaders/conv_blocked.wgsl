// Register-blocked convolution kernels without workgroup memory or barriers, for the small-channel shapes
// where a 64x64 tile of conv2d.wgsl / conv_transpose2d.wgsl would mostly hold padding. The three index
// patterns are those of the tiled kernels (see their headers):
//   gather            dst[n, m, oh, ow] = bias[m] + sum_{c,kh,kw} wgt[m, c, kh, kw] * src[n, c, oh*sh - ph + kh, ow*sw - pw + kw]
//   transposed        dst[n, m, oh, ow] = bias[m] + sum over taps with oh + ph - kh = sh*ih, ow + pw - kw = sw*iw
//                                          of wgt[c, m, kh, kw] * src[n, c, ih, iw]
//   weight_grad       dst[m, c, kh, kw] = sum_{n,oh,ow} grad[n, m, oh, ow] * src[n, c, oh*sh - ph + kh, ow*sw - pw + kw]
//                     and, with hasBias, db[m] = sum_{n,oh,ow} grad[n, m, oh, ow] (conv2d's bias gradient)
//
// Work split (the same idea for all three): every thread owns MB consecutive rows m0..m0+MB-1 of dst (m0 is
// the same for the whole workgroup) and one column: an output pixel (gather, transposed) or one weight
// position k = (c, kh, kw) (weight_grad). Each step of the reduction does one load whose address differs
// per thread (the src value, zero outside the image) and MB loads whose address is the same for every thread
// of the workgroup (weights, or grad values), which a SIMD CPU driver (Mesa lavapipe) turns into one
// scalar load + broadcast, feeding MB multiply-adds. On lavapipe a per-thread (gathered) load costs about as
// much as the MB FMAs it feeds for MB = 8, and workgroup barriers are coroutine switches, so this layout
// beats the 64x64 tiles wherever M or the number of columns is small (measurements in conv2d.ts).
// The gathers also give each thread PB consecutive outputs of one row (MB x PB accumulators), so one weight
// load feeds PB multiply-adds: on lavapipe the workgroup-uniform weight loads turned out to cost as much
// as per-thread ones and to dominate (measurements next to BLOCKED_PIXELS in conv2d.ts).
// The tap offsets of a column are computed once into a small array (KH, KW, SH, SW are pipeline constants
// so the tap loops unroll and the array lives in registers).
//
// Grids: gather:      x, y = column blocks of WG (folded), z = row block (M / MB).
//        transposed:  x, y = column blocks of the largest phase, z = row block + row blocks * phase,
//                     where phase (rh, rw) = ((oh + ph) mod sh, (ow + pw) mod sw): within one phase the
//                     taps kh = rh + sh*jh, kw = rw + sw*jw are the same for every output (as conv_transpose2d.wgsl).
//        weight_grad: x = column blocks of WG over K (+1 bias column), y = row block, z = split of the
//                     N*outH grad rows; with splits > 1 each split writes partial sums [splits, M, K + 1]
//                     that `sum_splits_bias` adds up into dw and db.

const MAX_ACC = 32u;   // MB * PB

//@SHARED_BEGIN: declarations conv_blocked_sg.wgsl reuses (conv2d.ts fills its //@DECLARATIONS line with them)
override WG: u32 = 64;
override MB: u32 = 8;   // rows of dst per thread, <= MAX_MB
override KH: u32 = 4;   // kernel size (taps loops unroll)
override KW: u32 = 4;
override SH: u32 = 2;   // stride, transposed only (taps per phase = ceil(K / S))
override SW: u32 = 2;
override PB: u32 = 1;   // gather, transposed: consecutive outputs of a row per thread (see MAX_SPAN)

const MAX_MB = 32u;
const MAX_TAPS = 16u;
const MAX_SPAN = 16u;

//@CONV_PARAMS

//@FUSION

@group(0) @binding(0) var<uniform> p: ConvParams;
@group(0) @binding(1) var<storage, read> src: array<f32>;
@group(0) @binding(2) var<storage, read> wgt: array<f32>;    // gather, transposed (weight_grad: grad)
@group(0) @binding(3) var<storage, read> bias: array<f32>;   // bias [M]; the dstGrad mask (dst's shape); else bound to wgt (never read)
@group(0) @binding(4) var<storage, read_write> dst: array<f32>;
@group(0) @binding(5) var<storage, read_write> dbias: array<f32>;  // weight_grad; bound to dst when unused

// The gathers' store (dst = [dst +] epilogue(conv)): fusion.ts's GATHER_FINISH_WGSL fills this line.
//@GATHER_FINISH

fn column(wid: vec3u, nwg: vec3u, li: u32) -> u32 { return (wid.x + wid.y * nwg.x) * WG + li; }
//@SHARED_END

@compute @workgroup_size(WG)
fn gather(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_index) li: u32) {
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
  let wRow = p.C * taps;
  var acc: array<f32, MAX_ACC>;  // acc[i*PB + q]: row m0 + i, output ow0 + q
  var srcPlane = n * p.C * inHW;
  var wBase = m0 * wRow;
  // Rows past M read row M - 1 (in bounds) and are never stored.
  let lastRow = (p.M - 1u) * wRow;
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
      for (var kw = 0u; kw < KW; kw++) {
        for (var i = 0u; i < MB; i++) {
          let w = wgt[min(wBase + i * wRow, lastRow + c * taps) + kh * KW + kw];
          for (var q = 0u; q < PB; q++) { acc[i * PB + q] += w * xs[q * SW + kw]; }
        }
      }
    }
    srcPlane += inHW;
    wBase += taps;
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
fn transposed(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_index) li: u32) {
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
      for (var jw = 0u; jw < TW; jw++) {
        let kw = rw + SW * jw;
        let tap = min(kh, KH - 1u) * KW + min(kw, KW - 1u);
        for (var i = 0u; i < MB; i++) {
          let w = select(0.0, wgt[wBase + min(m0 + i, p.M - 1u) * taps + tap], kw < KW);
          for (var q = 0u; q < PB; q++) { acc[i * PB + q] += w * xs[q + TW - 1u - jw]; }
        }
      }
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

@compute @workgroup_size(WG)
fn weight_grad(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_index) li: u32) {
  let taps = KH * KW;
  let K = p.C * taps;
  let outHW = p.outH * p.outW;
  let inHW = p.inH * p.inW;
  // conv_transpose2d's bias gradient (fusion.ts srcSum): workgroups past the weight columns (workgroup-uniform).
  let weightBlocks = (K + WG - 1u) / WG;
  if (SRC_SUM && wid.x >= weightBlocks) {
    srcChannelSum((wid.x - weightBlocks) * WG + li, wid);
    return;
  }
  let k = wid.x * WG + li;
  let isBias = k == K;            // the bias column: src taken as 1 everywhere
  let valid = k < K || (isBias && p.hasBias == 1u);
  let kc = min(k, K - 1u);
  let c = kc / taps;
  let kh = (kc % taps) / KW;
  let kw = kc % KW;
  let m0 = wid.y * MB;
  let rowBegin = wid.z * p.rowsPerSplit;
  let rowEnd = min(p.batch * p.outH, rowBegin + p.rowsPerSplit);
  var acc: array<f32, MAX_MB>;
  for (var row = rowBegin; row < rowEnd; row++) {
    let n = row / p.outH;
    let oh = row % p.outH;
    let ih = i32(oh * p.sh + kh) - i32(p.ph);
    let rowInside = ih >= 0 && ih < i32(p.inH);
    let srcRow = (n * p.C + c) * inHW + u32(clamp(ih, 0, i32(p.inH) - 1)) * p.inW;
    let gradRow = n * p.M * outHW + oh * p.outW;
    for (var ow = 0u; ow < p.outW; ow++) {
      let iw = i32(ow * p.sw + kw) - i32(p.pw);
      let inside = rowInside && iw >= 0 && iw < i32(p.inW);
      var x = select(0.0, srcAct(src[srcRow + u32(clamp(iw, 0, i32(p.inW) - 1))]), inside);
      x = select(x, 1.0, isBias);
      for (var i = 0u; i < MB; i++) {
        acc[i] += gradAct(wgt[gradRow + min(m0 + i, p.M - 1u) * outHW + ow]) * x;
      }
    }
  }
  if (!valid) { return; }
  let splits = (p.batch * p.outH + p.rowsPerSplit - 1u) / p.rowsPerSplit;
  if (splits > 1u) {
    // Partial sums [split, m, K + 1] (column K = bias); sum_splits_bias finishes them.
    let base = wid.z * p.M * (K + 1u) + k;
    for (var i = 0u; i < MB; i++) {
      let m = m0 + i;
      if (m < p.M) { dst[base + m * (K + 1u)] = acc[i]; }
    }
    return;
  }
  for (var i = 0u; i < MB; i++) {
    let m = m0 + i;
    if (m >= p.M) { break; }
    if (isBias) {
      dbias[m] = select(acc[i], acc[i] + dbias[m], p.accumulate == 1u);
    } else {
      let idx = m * K + k;
      dst[idx] = select(acc[i], acc[i] + dst[idx], p.accumulate == 1u);
    }
  }
}

// dw[m, k] (+)= sum_s partial[s, m, k] for k < K; db[m] (+)= sum_s partial[s, m, K] when hasBias.
// One thread per partial element (M * (K + 1)); 2-D grid of 1-D workgroups. src = partials.
@compute @workgroup_size(WG)
fn sum_splits_bias(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = gid.x + gid.y * nwg.x * WG;
  let K = p.C * KH * KW;
  let count = p.M * (K + 1u);
  if (i >= count) { return; }
  let splits = (p.batch * p.outH + p.rowsPerSplit - 1u) / p.rowsPerSplit;
  var s = 0.0;
  for (var z = 0u; z < splits; z++) { s += src[z * count + i]; }
  let m = i / (K + 1u);
  let k = i % (K + 1u);
  if (k < K) {
    let idx = m * K + k;
    dst[idx] = select(s, s + dst[idx], p.accumulate == 1u);
  } else if (p.hasBias == 1u) {
    dbias[m] = select(s, s + dbias[m], p.accumulate == 1u);
  }
}
