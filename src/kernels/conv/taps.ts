// Variant 'taps' (weight gradient only): each thread owns a kernel row of KW taps for `rows` grad channels,
// so each src load feeds KW taps (shaders/conv_weight_grad_taps.wgsl); with subgroups the lanes share the
// grad loads (shaders/conv_weight_grad_taps_sg.wgsl, whose inner step tapsSgSource writes out).
import type { Dispatch, GpuContext } from '../../runtime/context.js';
import { ShapeError } from '../../runtime/errors.js';
import { MAX_BLOCK_ROWS, MAX_BLOCK_TAPS, SG_LANES, useSubgroups, type BlockedTuning, type WeightGradTensors } from './common.js';
import { BLOCKED_WG, splitWeightGradDispatches } from './blocked.js';
import { packConvParams, type ConvGeometry } from './params.js';
import { NO_FUSION, withFusion, type ConvFusion } from './fusion.js';
import { fillTemplate, tapsShader, tapsSgTemplate } from './shaders.js';
import { deviceClass, type DeviceClass } from './device_class.js';

const TAPS_MAX_ACC = 64;
const TAPS_MAX_SPAN = 20;

// Launch defaults, each the fastest of the measured alternatives on lavapipe (bench/RESULTS.md, conv
// selection history: taps launch shape): rows 8 (vs 16), kernel rows 1 (vs 2), pixels 4 (vs 2, 8),
// and row splits only for a grid of a single workgroup, into 2, when there are >= 16 grad rows — except on
// software adapters, where the split's second dispatch (sum_splits_bias, ~0.25 ms) costs more than it saves
// inside a recorded step (lavapipe, 9 alternated rounds, load ~14, GPU ms split / not: conv 3->8 64x128
// 0.197 / 0.197, 6->8 N=2 64x128 0.786 / 0.721; bench/RESULTS.md via /work/team/RESULTS_Hfuse.md).
const TAPS_ROWS = 8;
const TAPS_PIXELS = 4;
const TAPS_TARGET_GROUPS: Record<DeviceClass, number> = { software: 1, swiftshader: 1, integrated: 2, discrete: 2 };
const TAPS_SPLIT_ROWS = 8;

/** The taps kernel holds a kernel row of KW taps per thread for at least one row: KW <= 20, at most 16 taps. */
export function tapsFits(g: ConvGeometry): boolean {
  return g.KH * g.KW <= MAX_BLOCK_TAPS && g.KW <= TAPS_MAX_SPAN;
}

interface TapsLaunch {
  rows: number;
  kernelRows: number;
  pixels: number;
  wg: number;
  columns: number;
  splits: number;
  rowsPerSplit: number;
}

/**
 * Launch: x = column blocks (C x kernel-row groups), y = row blocks, z = splits of the grad rows. The bias
 * gradient has no column: the threads sum it from the grad values they load (see the shaders' headers).
 */
function tapsLaunch(g: ConvGeometry, t: BlockedTuning, targetGroups: number): TapsLaunch {
  const op = 'conv weight grad taps';
  const kernelRows = t.kernelRows ?? 1;
  if (!Number.isInteger(kernelRows) || kernelRows < 1 || kernelRows > 4) throw new ShapeError(op, 'kernel rows per thread', '1..4', kernelRows);
  const maxRows = Math.min(MAX_BLOCK_ROWS, Math.floor(TAPS_MAX_ACC / (kernelRows * g.KW)));
  const rows = t.rows ?? Math.min(TAPS_ROWS, maxRows, 2 ** Math.ceil(Math.log2(g.M)));
  if (!Number.isInteger(rows) || rows < 1 || rows > maxRows) throw new ShapeError(op, 'rows per thread', `1..${maxRows}`, rows);
  const maxPixels = Math.floor((TAPS_MAX_SPAN - g.KW) / g.sw) + 1;
  const pixels = t.pixels ?? Math.max(1, Math.min(TAPS_PIXELS, maxPixels, g.outW));
  if (!Number.isInteger(pixels) || pixels < 1 || pixels > maxPixels) throw new ShapeError(op, 'pixels per step', `1..${maxPixels}`, pixels);
  const columns = g.C * Math.ceil(g.KH / kernelRows);
  const wg = t.wg ?? Math.max(8, Math.min(BLOCKED_WG, 2 ** Math.ceil(Math.log2(columns))));
  const groups = Math.ceil(columns / wg) * Math.ceil(g.M / rows);
  const R = g.batch * g.outH;
  const auto = Math.max(1, Math.min(Math.ceil(targetGroups / groups), Math.floor(R / TAPS_SPLIT_ROWS)));
  let splits = Math.max(1, Math.min(R, t.splits ?? auto));
  const rowsPerSplit = Math.ceil(R / splits);
  splits = Math.ceil(R / rowsPerSplit);
  return { rows, kernelRows, pixels, wg, columns, splits, rowsPerSplit };
}

/**
 * The subgroup taps kernel's step (see shaders/conv_weight_grad_taps_sg.wgsl): the SG lanes' grad loads,
 * then for each of the MB x PB grad values a broadcast from its lane and the TH x KW multiply-adds.
 */
function tapsSgSource(rows: number, kernelRows: number, KW: number, SW: number, pixels: number, bias: boolean): string {
  const lines: string[] = [];
  const values = rows * pixels;
  const perLane = bias ? Math.ceil(values / SG_LANES) : 0;  // without a bias no sums at all
  for (let r = 0; r < Math.ceil(values / SG_LANES); r++) lines.push(`      let gv${r} = gradValue(${r}u, sgLane, gradRow, m0, ow0);${r < perLane ? ` bs${r} += gv${r};` : ''}`);
  for (let q = 0; q < pixels; q++) {
    for (let i = 0; i < rows; i++) {
      const v = q * rows + i;
      const fmas: string[] = [];
      for (let t = 0; t < kernelRows; t++) {
        for (let kw = 0; kw < KW; kw++) fmas.push(`acc[${(i * kernelRows + t) * KW + kw}] += g * xs[${t * TAPS_MAX_SPAN + q * SW + kw}];`);
      }
      lines.push(`      { let g = subgroupBroadcast(gv${Math.floor(v / SG_LANES)}, ${v % SG_LANES}u); ${fmas.join(' ')} }`);
    }
  }
  // Value v = r * SG + l of the step's list is grad row v % MB (gradValue); lane l's bs{r} holds its sum.
  const sums: string[] = [];
  for (let v = 0; v < (bias ? values : 0); v++) sums.push(`  bsum[${v % rows}] += subgroupBroadcast(bs${Math.floor(v / SG_LANES)}, ${v % SG_LANES}u);`);
  const decl = Array.from({ length: perLane }, (_, r) => `  var bs${r} = 0.0;`);
  return fillTemplate(tapsSgTemplate, { STORE_BIAS: STORE_BIAS_WGSL, BIAS_DECL: decl.join('\n'), STEP: lines.join('\n'), BIAS_SUM: sums.join('\n') });
}

/** Both taps shaders' bias store (their //@STORE_BIAS line): db (+)= the sums, or column K of split z's partials. */
const STORE_BIAS_WGSL = `fn storeBias(bsum: ptr<function, array<f32, MAX_MB>>, m0: u32, z: u32, K: u32) {
  let splits = (p.batch * p.outH + p.rowsPerSplit - 1u) / p.rowsPerSplit;
  for (var i = 0u; i < MB; i++) {
    let m = m0 + i;
    if (m >= p.M) { break; }
    let v = (*bsum)[i];
    if (splits > 1u) {
      dst[(z * p.M + m) * (K + 1u) + K] = v;
    } else {
      dbias[m] = select(v, v + dbias[m], p.accumulate == 1u);
    }
  }
}`;
const tapsPlainShader = fillTemplate(tapsShader, { STORE_BIAS: STORE_BIAS_WGSL });

export function encodeTapsWeightGrad(
  ctx: GpuContext, op: string, t: WeightGradTensors, g: ConvGeometry, accumulate: boolean, tuning: BlockedTuning, fusion: ConvFusion = NO_FUSION,
): Dispatch[] {
  const L = tapsLaunch(g, tuning, TAPS_TARGET_GROUPS[deviceClass(ctx)]);
  const subgroups = useSubgroups(ctx, tuning, L.wg, op);
  const shader = withFusion(subgroups ? tapsSgSource(L.rows, L.kernelRows, g.KW, g.sw, L.pixels, !!t.gradSum) : tapsPlainShader, { ...fusion, srcSum: !!t.srcSum }, op);
  const entryPoint = subgroups ? 'weight_grad_taps_sg' : 'weight_grad_taps';
  const constants: Record<string, number> = { WG: L.wg, MB: L.rows, TH: L.kernelRows, KH: g.KH, KW: g.KW, SW: g.sw, PB: L.pixels };
  if (subgroups) constants.SG = SG_LANES;
  else constants.BIAS = t.gradSum ? 1 : 0;
  const u32 = packConvParams(g, { hasBias: t.gradSum ? 1 : 0, accumulate: accumulate ? 1 : 0, rowsPerSplit: L.rowsPerSplit });
  const workgroups = [Math.ceil(L.columns / L.wg), Math.ceil(g.M / L.rows), L.splits] as const;
  return splitWeightGradDispatches(ctx, op, { shader, entryPoint, constants }, u32, workgroups, g, t);
}
