// Variant 'blocked': no workgroup memory; each thread keeps `rows` dst channels x `pixels` outputs of a row
// in registers (shaders/conv_blocked.wgsl), and with subgroups the lanes share the weight loads
// (shaders/conv_blocked_sg.wgsl, whose inner step blockedSgSource writes out). Fits kernels of <= 16 taps.
import type { Dispatch, GpuContext } from '../../runtime/context.js';
import type { Tensor } from '../../runtime/tensor.js';
import { ShapeError } from '../../runtime/errors.js';
import { MAX_BLOCK_ROWS, MAX_BLOCK_TAPS, SG_LANES, WG, gatherBindings, useSubgroups, type BlockedTuning, type GatherTensors, type WeightGradTensors } from './common.js';
import { packConvParams, type ConvGeometry } from './params.js';
import { NO_FUSION, withFusion, type ConvFusion } from './fusion.js';
import { blockedShader, blockedSgTemplate, fillTemplate } from './shaders.js';

/** The blocked kernels keep a column's tap offsets in a 16-entry array. */
export function blockedFits(g: ConvGeometry): boolean {
  return g.KH * g.KW <= MAX_BLOCK_TAPS;
}

/** Rows per thread: the power of two covering M, at most 8. */
export function blockedRows(g: ConvGeometry, t: BlockedTuning): number {
  // 8: fewer src loads per multiply-add than 4, no register spills as with 16 (bench/RESULTS.md, conv selection history: blocked rows).
  const rows = t.rows ?? Math.min(8, 2 ** Math.ceil(Math.log2(g.M)));
  if (!Number.isInteger(rows) || rows < 1 || rows > MAX_BLOCK_ROWS) throw new ShapeError('conv blocked', 'rows per thread', `1..${MAX_BLOCK_ROWS}`, rows);
  return rows;
}

export const BLOCKED_WG = 64;

/** Threads per workgroup: BLOCKED_WG, or fewer (down to one 8-wide SIMD vector) when there are fewer columns. */
export function blockedWorkgroup(columns: number, t: BlockedTuning): number {
  return t.wg ?? Math.max(8, Math.min(BLOCKED_WG, 2 ** Math.ceil(Math.log2(columns))));
}

function blockedConstants(g: ConvGeometry, rows: number, wg: number, pixels = 1): Record<string, number> {
  return { WG: wg, MB: rows, KH: g.KH, KW: g.KW, SH: g.sh, SW: g.sw, PB: pixels };
}

// 4 outputs per thread share each weight load, which bounds the gathers on lavapipe (bench/RESULTS.md,
// conv selection history: blocked pixels).
const BLOCKED_PIXELS = 4;

/** gather: outputs per thread; more share each weight load (see conv_blocked.wgsl). */
function blockedPixels(g: ConvGeometry, rows: number, t: BlockedTuning, transposed: boolean): number {
  // The src columns a thread reads per kernel row must fit MAX_SPAN = 16 (see the shader).
  const span = transposed ? 17 - Math.ceil(g.KW / g.sw) : Math.floor((16 - g.KW) / g.sw) + 1;
  const fit = Math.min(Math.floor(32 / rows), span);
  const perRow = transposed ? Math.ceil(g.outW / g.sw) : g.outW;
  const pixels = t.pixels ?? Math.min(BLOCKED_PIXELS, fit, perRow);
  if (!Number.isInteger(pixels) || pixels < 1 || pixels > fit) throw new ShapeError('conv blocked', 'pixels per thread', `1..${fit}`, pixels);
  return pixels;
}

/**
 * shaders/conv_blocked_sg.wgsl with one entry point's step written out (the other's marker emptied): the
 * lanes' weight loads, then for each weight a broadcast from its lane and its PB multiply-adds.
 */
function blockedSgSource(entry: 'gather' | 'transposed', rows: number, pixels: number, g: ConvGeometry): string {
  const lines: string[] = [];
  const taps = entry === 'gather' ? g.KW : Math.ceil(g.KW / g.sw);  // weights per row per step
  const values = rows * taps;
  for (let r = 0; r < Math.ceil(values / SG_LANES); r++) {
    lines.push(entry === 'gather'
      ? `      let wv${r} = gatherWeight(${r}u, sgLane, m0, rowTap);`
      : `      let wv${r} = transposedWeight(${r}u, sgLane, m0, wBase, kh, rw);`);
  }
  for (let i = 0; i < rows; i++) {
    for (let k = 0; k < taps; k++) {
      const v = i * taps + k;
      const fmas: string[] = [];
      for (let q = 0; q < pixels; q++) fmas.push(`acc[${i * pixels + q}] += w * xs[${entry === 'gather' ? q * g.sw + k : q + taps - 1 - k}];`);
      lines.push(`      { let w = subgroupBroadcast(wv${Math.floor(v / SG_LANES)}, ${v % SG_LANES}u); ${fmas.join(' ')} }`);
    }
  }
  const code = lines.join('\n');
  return fillTemplate(blockedSgTemplate, entry === 'gather' ? { GATHER_STEP: code, TRANSPOSED_STEP: '' } : { GATHER_STEP: '', TRANSPOSED_STEP: code });
}

/**
 * Launch: x, y = columns (outputs of `pixels` each; the transposed gather sizes them for its largest phase)
 * in workgroups of `wg`, z = row blocks of `rows` channels (times the sh x sw phases when transposed).
 */
export function encodeBlockedGather(
  ctx: GpuContext,
  op: string,
  kind: 'gather' | 'transposed',
  t: GatherTensors,
  g: ConvGeometry,
  accumulate: boolean,
  tuning: BlockedTuning,
  fusion: ConvFusion = NO_FUSION,
): Dispatch {
  const u32 = packConvParams(g, { hasBias: t.bias ? 1 : 0, accumulate: accumulate ? 1 : 0 });
  const bindings = gatherBindings(t);
  const transposed = kind === 'transposed';
  const rows = blockedRows(g, tuning);
  const pixels = blockedPixels(g, rows, tuning, transposed);
  const columns = transposed
    ? g.batch * Math.ceil(g.outH / g.sh) * Math.ceil(Math.ceil(g.outW / g.sw) / pixels)
    : g.batch * g.outH * Math.ceil(g.outW / pixels);
  const wg = blockedWorkgroup(columns, tuning);
  const [x, y] = ctx.grid(columns, wg);
  const workgroups = [x, y, Math.ceil(g.M / rows) * (transposed ? g.sh * g.sw : 1)] as const;
  if (useSubgroups(ctx, tuning, wg, op)) {
    const constants = { ...blockedConstants(g, rows, wg, pixels), SG: SG_LANES };
    return ctx.kernel({ op, shader: withFusion(blockedSgSource(kind, rows, pixels, g), fusion, op), entryPoint: `${kind}_sg`, constants, u32, bindings, workgroups });
  }
  return ctx.kernel({ op, shader: withFusion(blockedShader, fusion, op), entryPoint: kind, constants: blockedConstants(g, rows, wg, pixels), u32, bindings, workgroups });
}

/**
 * Splits of the N*outH grad rows for the blocked weight gradient: enough workgroups (columns x row
 * blocks x splits) to keep every core busy, at least BLOCKED_SPLIT_ROWS rows each.
 */
function blockedWeightGradSplits(g: ConvGeometry, columnBlocks: number, rowBlocks: number): number {
  const rows = g.batch * g.outH;
  const byOccupancy = Math.ceil(BLOCKED_TARGET_GROUPS / (columnBlocks * rowBlocks));
  const byWork = Math.floor(rows / BLOCKED_SPLIT_ROWS);
  return Math.max(1, Math.min(byOccupancy, byWork));
}

const BLOCKED_TARGET_GROUPS = 16;
const BLOCKED_SPLIT_ROWS = 2;

/** Launch: x = column blocks of K (+1 bias column) weights, y = row blocks, z = splits of the grad rows. */
export function encodeBlockedWeightGrad(
  ctx: GpuContext, op: string, t: WeightGradTensors, g: ConvGeometry, accumulate: boolean, tuning: BlockedTuning, fusion: ConvFusion = NO_FUSION,
): Dispatch[] {
  const K = g.C * g.KH * g.KW;
  const rows = blockedRows(g, tuning);
  const columns = K + (t.gradSum ? 1 : 0);
  const wg = blockedWorkgroup(columns, tuning);
  const columnBlocks = Math.ceil(columns / wg);
  const rowBlocks = Math.ceil(g.M / rows);
  const R = g.batch * g.outH;
  let splits = Math.min(R, tuning.splits ?? blockedWeightGradSplits(g, columnBlocks, rowBlocks));
  const rowsPerSplit = Math.ceil(R / splits);
  splits = Math.ceil(R / rowsPerSplit);
  const constants = blockedConstants(g, rows, wg);
  const u32 = packConvParams(g, { hasBias: t.gradSum ? 1 : 0, accumulate: accumulate ? 1 : 0, rowsPerSplit });
  return splitWeightGradDispatches(ctx, op, { shader: withFusion(blockedShader, { ...fusion, srcSum: !!t.srcSum }, op), entryPoint: 'weight_grad', constants }, u32, [columnBlocks, rowBlocks, splits], g, t);
}

/**
 * The dispatches of a split weight gradient ('blocked', 'taps'): with one split the kernel writes dw and db
 * directly; with more it writes partial sums per split, which sum_splits_bias (conv_blocked.wgsl) adds into
 * dw and db. workgroups[2] is the split count.
 */
export function splitWeightGradDispatches(
  ctx: GpuContext,
  op: string,
  kernel: { shader: string; entryPoint: string; constants: Record<string, number> },
  u32: number[],
  workgroups: readonly [number, number, number],
  g: ConvGeometry,
  t: WeightGradTensors,
): Dispatch[] {
  if (t.srcSum && t.gradSum) throw new ShapeError(op, 'bias gradients of a weight-gradient launch', 'gradSum or srcSum', 'both');
  const K = g.C * g.KH * g.KW;
  const splits = workgroups[2];
  // srcSum: ceil(C / WG) more workgroups past the weight columns (the shader's weightBlocks) sum src per channel.
  if (t.srcSum) workgroups = [workgroups[0] + Math.ceil(g.C / kernel.constants.WG), workgroups[1], workgroups[2]];
  // db's binding must not alias dw (two writable views of one buffer); without a bias it gets a 1-float stand-in.
  const bias = t.gradSum ?? t.srcSum ?? null;
  const spare = bias ? null : ctx.scratch([1], `${op}.nobias`);
  const dbias = bias ?? spare!;
  const b = (tensor: Tensor, binding: number, access: 'read' | 'rw' = 'read') => ({ tensor, binding, access });
  if (splits === 1) {
    const d = ctx.kernel({ op, ...kernel, u32, bindings: [b(t.src, 1), b(t.grad, 2), b(t.dst, 4, 'rw'), b(dbias, 5, 'rw')], workgroups });
    if (spare) d.attach(spare);
    return [d];
  }
  const partials = ctx.scratch([splits, g.M * (K + 1)], `${op}.partials`);
  const partial = ctx.kernel({ op, ...kernel, u32, bindings: [b(t.src, 1), b(t.grad, 2), b(partials, 4, 'rw'), b(dbias, 5, 'rw')], workgroups });
  const reduce = ctx.kernel({
    op,
    shader: withFusion(blockedShader, NO_FUSION, op),
    entryPoint: 'sum_splits_bias',
    constants: { WG, KH: g.KH, KW: g.KW },
    u32,
    bindings: [b(partials, 1), b(t.dst, 4, 'rw'), b(dbias, 5, 'rw')],
    workgroups: ctx.grid(g.M * (K + 1), WG),
  });
  reduce.attach(partials);
  if (spare) reduce.attach(spare);
  return [partial, reduce];
}
