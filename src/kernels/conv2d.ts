import gatherShader from '../../shaders/conv2d.wgsl';
import transposedShader from '../../shaders/conv_transpose2d.wgsl';
import weightGradShader from '../../shaders/conv2d_weight_grad.wgsl';
import reduceShader from '../../shaders/conv2d_reduce.wgsl';
import blockedShader from '../../shaders/conv_blocked.wgsl';
import tapsShaderText from '../../shaders/conv_weight_grad_taps.wgsl';
import tapsSgTemplate from '../../shaders/conv_weight_grad_taps_sg.wgsl';
import blockedSgTemplate from '../../shaders/conv_blocked_sg.wgsl';
import type { Dispatch, GpuContext } from '../runtime/context.js';
import type { Tensor } from '../runtime/tensor.js';
import { Pix2PixError, ShapeError } from '../runtime/errors.js';

/** A size given once for both spatial dimensions, or as [height, width]. */
export type Pair = number | [number, number];

/** conv2d hyper-parameters (PyTorch's, without dilation and groups). */
export interface Conv2dParams {
  /** Default 1. */
  stride?: Pair;
  /** Zero padding on each side; default 0. */
  padding?: Pair;
  /** Kernel family; default 'auto' (see the measurements in conv2d.ts). For tests and benchmarks. */
  impl?: ConvImpl | 'auto';
  /** Launch shape of the 'blocked' kernels (default: chosen by shape). For tests and benchmarks. */
  blocked?: BlockedTuning;
}

/** Backward options: `accumulate: true` adds into the gradient buffers instead of overwriting them. */
export interface ConvBackwardOptions {
  accumulate?: boolean;
}

/**
 * Which kernel family to use: 'tiled' (implicit GEMM, workgroup-memory tiles, 4x4 register blocks),
 * 'blocked' (no workgroup memory: each thread keeps up to 32 output channels of one output in registers,
 * shaders/conv_blocked.wgsl) or 'direct' (one thread per output, the readable reference path).
 * With subgroups (>= 8 lanes) 'blocked' shares its weight loads across lanes (shaders/conv_blocked_sg.wgsl).
 * 'taps' is a weight-gradient kernel (shaders/conv_weight_grad_taps.wgsl: each thread owns a whole kernel
 * row of taps for several rows, so each load feeds several taps); for the forward and grad-input
 * directions it means 'blocked'.
 */
export type ConvImpl = 'tiled' | 'direct' | 'blocked' | 'taps';

/** Normalise a {@link Pair} to [h, w], checking it is a whole number (>= 1 for strides). */
export function pair(v: Pair | undefined, fallback: number, op: string, name: string): [number, number] {
  const hw: [number, number] = v === undefined ? [fallback, fallback] : typeof v === 'number' ? [v, v] : [v[0], v[1]];
  const min = name === 'stride' ? 1 : 0;
  if (!Array.isArray(v) && v !== undefined && typeof v !== 'number') throw new ShapeError(op, name, 'a number or [h, w]', String(v));
  if (Array.isArray(v) && v.length !== 2) throw new ShapeError(op, `${name} length`, 2, v.length);
  for (const d of hw) {
    if (!Number.isInteger(d) || d < min) throw new ShapeError(op, name, `an integer >= ${min}`, d);
  }
  return hw;
}

function check4d(shape: readonly number[], op: string, name: string): void {
  if (shape.length !== 4) throw new ShapeError(op, `${name} rank (${name} must be NCHW)`, 4, shape.length);
  if (shape.some((d) => d < 1)) throw new ShapeError(op, `${name} shape (every dimension >= 1)`, 'positive sizes', [...shape]);
}

/**
 * Output shape of conv2d: [N, Cout, floor((H + 2ph - KH)/sh) + 1, floor((W + 2pw - KW)/sw) + 1].
 * Throws (naming `op`) on a rank or channel mismatch or when the kernel does not fit the padded input.
 */
export function conv2dOutputShape(xShape: readonly number[], wShape: readonly number[], p: Conv2dParams = {}, op = 'conv2d'): number[] {
  check4d(xShape, op, 'x');
  check4d(wShape, op, 'w');
  const [N, Cin, H, W] = xShape;
  const [Cout, wCin, KH, KW] = wShape;
  if (wCin !== Cin) throw new ShapeError(op, 'w in-channels (w.shape[1], layout [Cout, Cin, KH, KW]) vs x channels', Cin, wCin);
  const [sh, sw] = pair(p.stride, 1, op, 'stride');
  const [ph, pw] = pair(p.padding, 0, op, 'padding');
  const Ho = Math.floor((H + 2 * ph - KH) / sh) + 1;
  const Wo = Math.floor((W + 2 * pw - KW) / sw) + 1;
  if (Ho < 1 || Wo < 1) throw new ShapeError(op, `output size (kernel ${KH}x${KW} vs padded input ${H + 2 * ph}x${W + 2 * pw})`, '>= 1x1', `${Ho}x${Wo}`);
  return [N, Cout, Ho, Wo];
}

// ------------------------------------------------------------------------------------------------
// Shared GPU building blocks. A convolution and its transpose use the same three index patterns, so
// both ops build their dispatches from these (see the header comment of each shader):
//   gather            conv2d forward,           conv_transpose2d grad input   (shaders/conv2d.wgsl)
//   transposed gather conv_transpose2d forward, conv2d grad input             (shaders/conv_transpose2d.wgsl)
//   weight grad       conv2d dw,                conv_transpose2d dw           (shaders/conv2d_weight_grad.wgsl)

/** Sizes of one gather-style convolution, in the shaders' terms: dst has M channels, src has C. */
export interface ConvGeometry {
  batch: number;
  M: number;
  C: number;
  inH: number;
  inW: number;
  outH: number;
  outW: number;
  KH: number;
  KW: number;
  sh: number;
  sw: number;
  ph: number;
  pw: number;
}

const WG = 256;
const TILE = 64;

/**
 * The shaders' uniform struct: the geometry, then three fields whose meaning depends on the shader:
 * (hasBias, accumulate, unused) for the gathers, (chunk, accumulate, splits) for the weight gradient.
 */
function geometryU32(g: ConvGeometry, field13: number, accumulate: boolean, field15: number): number[] {
  return [g.batch, g.M, g.C, g.inH, g.inW, g.outH, g.outW, g.KH, g.KW, g.sh, g.sw, g.ph, g.pw, field13, accumulate ? 1 : 0, field15];
}

/** A 2-D workgroup grid holding `tiles` column tiles (one dimension holds at most 65535 groups). */
function tileGrid(ctx: GpuContext, tiles: number): [number, number] {
  return ctx.grid(tiles, 1);
}

/**
 * Kernel choice for the public ops ('auto'). The 64x64 tiles waste most of their multiply-adds when the GEMM has
 * few rows (M = output channels: the generator's RGB output, the PatchGAN's 1-channel map), where the direct
 * kernel wins. Measured on Mesa lavapipe (2 shared CPU cores, the only device here), timed with
 * bench/harness.ts timeDispatches (1 warm-up, median of 3):
 *   N1 C64->128 64x64 k4 s2 p1 (M=128, 268 MFLOP per op)     direct              tiled
 *     conv2d forward                                      480 ms  0.56 GFLOP/s   136 ms  1.97 GFLOP/s
 *     conv2d grad input                                  1094 ms  0.25 GFLOP/s   159 ms  1.69 GFLOP/s
 *     conv2d grad weight (+ bias)                         350 ms  0.77 GFLOP/s   189 ms  1.42 GFLOP/s
 *     conv_transpose2d forward (C128->64, 32 -> 64)      1018 ms  0.26 GFLOP/s   196 ms  1.37 GFLOP/s
 *     conv_transpose2d grad input                         411 ms  0.65 GFLOP/s   139 ms  1.94 GFLOP/s
 *     conv_transpose2d grad weight                        329 ms  0.82 GFLOP/s   192 ms  1.40 GFLOP/s
 *   (the machine's two cores are shared, so single runs vary by about 20%)
 *   N1 C64->M 32x32 k4 s2 p1, direct / tiled ms:
 *     M =               1          3          8          16          32
 *     conv2d forward    1.4/19.5   3.5/23.8   6.5/16.3   12.4/19.7   35.8/21.7
 *     conv2d dw         1.3/19.5   2.7/17.3   6.1/17.1   12.2/20.6   31.0/22.8
 *     convT forward     2.5/34.9  12.5/31.5  28.2/38.9   67.6/42.4   80.6/21.4   (C64->M, 16x16 -> 32x32)
 *     conv2d dx         2.5/32.0  12.2/32.7  32.4/44.0   80.4/20.9   75.0/31.2   (dx has M channels)
 * Hence direct for M <= 16 (gather, weight grad) and M <= 8 (transposed gather), tiled otherwise. On a
 * discrete GPU the crossover will sit elsewhere; re-measure there before tuning these two numbers.
 *
 * The blocked kernels (shaders/conv_blocked.wgsl: no workgroup memory, 8 dst channels per thread, workgroup
 * shrunk to the column count) came later and win on the small-channel k4 shapes. Same machine, now loaded by
 * other jobs (load average ~10 on 2 cores), so the times are the minimum of 30 runs of GPU timestamps and
 * still vary by up to 2x; N1 k4, ms for auto (the rule above) / blocked:
 *   pix2pix 'small' (64x128, ngf = ndf = 8)       forward       grad input    grad weight (+ bias)
 *     conv 3->8     64x128 -> 32x64                2.62/0.92     11.5/1.51     2.16/1.25
 *     conv 8->16    32x64 -> 16x32                 3.15/1.18     9.83/2.10     2.88/1.90
 *     conv 16->32   16x32 -> 8x16                  2.16/1.18     5.51/3.34     3.87/3.21
 *     conv 32->64   8x16 -> 4x8                    1.97/2.16     5.51/3.67     1.44/1.57
 *     conv 64->64   4x8 -> 2x4                     3.60/1.25     3.93/1.18     3.21/1.05
 *     conv 64->64   2x4 -> 1x2                     3.60/0.52     4.19/1.25     2.10/0.46
 *     conv 6->8     64x128 -> 32x64                6.49/1.77     18.2/1.64     2.95/2.56
 *     conv 32->64 s1 8x16 -> 7x15                  3.93/4.13     11.7/2.56     6.23/2.29
 *     convT 64->64  1x2 -> 2x4                     3.93/1.18     3.34/0.52     1.97/1.11
 *     convT 128->64 2x4 -> 4x8                     7.73/2.36     9.70/2.56     7.47/5.11
 *     convT 128->32 4x8 -> 8x16                    15.1/4.78     3.60/2.03     2.95/2.88
 *     convT 64->16  8x16 -> 16x32                  13.2/2.42     1.97/5.44     3.54/2.49
 *     convT 32->8   16x32 -> 32x64                 18.0/4.39     5.96/2.10     3.01/2.49
 *     convT 16->3   32x64 -> 64x128                12.1/2.62     5.05/3.01     4.06/2.42
 *   unet_256 shapes (3 runs), tiled / blocked:
 *     conv 64->128  64x64 -> 32x32   (M 128)      ~205/217      257/467       222/252
 *     conv 3->64    256 -> 128       (M 64 / 3)    90/93        771/120       106/115
 *     conv 512->512 8x8 -> 4x4       (M 512)       403/109      424/247       176/151
 *     convT 128->3  128 -> 256       (M 3 / 128)  1356/356      195/179       216/281
 *     convT 256->64 32 -> 64         (M 64 / 256)  546/1962     455/979       630/500
 *     conv 256->512 s1 31 -> 30      (M 512)      3287/4644    4041/3579     3367/3113
 * So blocked for k4 when dst has at most 32 channels or the GEMM has at most 256 columns (per phase; for the
 * weight gradient: at most 256 reduction steps), the previous rule otherwise. Other kernel sizes were not
 * measured and keep the previous rule.
 * Later the weight gradient's 'blocked' became 'taps' (same shapes; 3-5x faster with subgroups, 2x without:
 * measurements above TAPS_ROWS).
 */
const DIRECT_MAX_ROWS = { gather: 16, transposed: 8, weightGrad: 16 } as const;
const BLOCKED_MAX_ROWS = 32;
const BLOCKED_MAX_COLUMNS = 256;

function resolveImpl(impl: ConvImpl | 'auto', kind: keyof typeof DIRECT_MAX_ROWS, g: ConvGeometry, op: string): ConvImpl {
  if (impl !== 'auto' && impl !== 'tiled' && impl !== 'direct' && impl !== 'blocked' && impl !== 'taps') {
    throw new ShapeError(op, 'impl', "'auto', 'tiled', 'direct', 'blocked' or 'taps'", String(impl));
  }
  if (impl === 'taps') impl = kind === 'weightGrad' && tapsFits(g) ? 'taps' : 'blocked';
  if (impl === 'blocked' && !blockedFits(g)) return 'tiled';
  if (impl !== 'auto') return impl;
  if (g.KH === 4 && g.KW === 4) {
    const columns =
      kind === 'gather' ? g.batch * g.outH * g.outW
      : kind === 'transposed' ? g.batch * Math.ceil(g.outH / g.sh) * Math.ceil(g.outW / g.sw)
      : g.batch * g.outH * g.outW; // weight gradient: the reduction length
    if (g.M <= BLOCKED_MAX_ROWS || columns <= BLOCKED_MAX_COLUMNS) return kind === 'weightGrad' && tapsFits(g) ? 'taps' : 'blocked';
  }
  return g.M <= DIRECT_MAX_ROWS[kind] ? 'direct' : 'tiled';
}

/** Optional overrides of the blocked kernels' launch shape, for benchmarks and tests. */
export interface BlockedTuning {
  /** dst rows (channels) per thread, 1..32. */
  rows?: number;
  /** Threads per workgroup. */
  wg?: number;
  /** weight_grad: number of splits of the N*outH grad rows. */
  splits?: number;
  /** gather: consecutive outputs of a row per thread (rows * pixels <= 32); taps: grad pixels per step. */
  pixels?: number;
  /** taps (weight gradient): kernel rows per thread, 1..4 (rows * kernelRows * KW <= 64). */
  kernelRows?: number;
  /** blocked gathers, taps: share the uniform loads through subgroups (default: when the device has them). */
  subgroups?: boolean;
}

const MAX_BLOCK_ROWS = 32;
const MAX_BLOCK_TAPS = 16;

/** The blocked kernels keep a column's tap offsets in a 16-entry array. */
function blockedFits(g: ConvGeometry): boolean {
  return g.KH * g.KW <= MAX_BLOCK_TAPS;
}

/** Rows per thread: the power of two covering M, at most 8. */
function blockedRows(g: ConvGeometry, t: BlockedTuning): number {
  // 8 beat 4 (twice the src loads per multiply-add) and 16 (register spills) on the 'small' shapes above:
  // summed over them, forward 76 / 87 / 110 ms, grad input 82 / 101 / 104 ms for 8 / 4 / 16 rows.
  const rows = t.rows ?? Math.min(8, 2 ** Math.ceil(Math.log2(g.M)));
  if (!Number.isInteger(rows) || rows < 1 || rows > MAX_BLOCK_ROWS) throw new ShapeError('conv blocked', 'rows per thread', `1..${MAX_BLOCK_ROWS}`, rows);
  return rows;
}

const BLOCKED_WG = 64;

/** Threads per workgroup: BLOCKED_WG, or fewer (down to one 8-wide SIMD vector) when there are fewer columns. */
function blockedWorkgroup(columns: number, t: BlockedTuning): number {
  return t.wg ?? Math.max(8, Math.min(BLOCKED_WG, 2 ** Math.ceil(Math.log2(columns))));
}

function blockedConstants(g: ConvGeometry, rows: number, wg: number, pixels = 1): Record<string, number> {
  return { WG: wg, MB: rows, KH: g.KH, KW: g.KW, SH: g.sh, SW: g.sw, PB: pixels };
}

/** gather: outputs per thread; more share each weight load (see conv_blocked.wgsl). */
function blockedPixels(g: ConvGeometry, rows: number, t: BlockedTuning, transposed = false): number {
  // The src columns a thread reads per kernel row must fit MAX_SPAN = 16 (see the shader).
  const span = transposed ? 17 - Math.ceil(g.KW / g.sw) : Math.floor((16 - g.KW) / g.sw) + 1;
  const fit = Math.min(Math.floor(32 / rows), span);
  const perRow = transposed ? Math.ceil(g.outW / g.sw) : g.outW;
  const pixels = t.pixels ?? Math.min(BLOCKED_PIXELS, fit, perRow);
  if (!Number.isInteger(pixels) || pixels < 1 || pixels > fit) throw new ShapeError('conv blocked', 'pixels per thread', `1..${fit}`, pixels);
  return pixels;
}

/**
 * On lavapipe the weight loads, not the src loads or the FMAs, bound the blocked gather: their address is
 * the same for the whole workgroup, yet each still costs about a per-thread load (measured on conv 32->64 s1
 * 8x16: replacing the weight loads by constants made it 5-7x faster, replacing the src loads changed
 * nothing; reading a kernel row per vec4 load was 2x slower). So each thread computes `pixels` outputs of a
 * row, sharing every weight load. Unloaded machine, min of 30 runs, ms for 1 / 2 / 4 pixels (8 rows):
 *   conv 3->8 64x128 fwd 1.11/0.79/0.26 (loaded), conv 6->8 64x128 fwd 4.00/2.42/0.92, conv 32->64 s1
 *   8x16 fwd 7.27/3.67/1.70, convT grad input 128->32 4x8 4.98/1.64/0.92, 64->16 3.60/3.15/0.59,
 *   32->8 3.54/1.57/0.59, 16->3 3.41/1.84/1.05; summed over the 'small' shapes: forward 48.2 / 22.2 / 17-34,
 *   grad input (of convT) 49.7 / 16.7 / 20-27 (the 2-core machine still varies by 2x between runs).
 * The transposed gather (conv grad input, convT forward) the same way, 1 / 4 pixels: conv 32->64 s1 grad
 * input 7.60/1.64, conv 6->8 3.15/1.25, convT 128->32 forward 2.69/0.98, 64->16 2.82/0.98, 16->3 2.69/1.31;
 * the 1x2 and 2x4 maps are a wash (at most 2 pixels per row there).
 */
const BLOCKED_PIXELS = 4;

/** Fill a template's marker line (`//@NAME` alone on a line, exactly once) with generated code. */
/** The lines between `//@SHARED_BEGIN...` and `//@SHARED_END` of a shader (declarations a variant reuses). */
function sharedLines(shader: string, name: string): string {
  const begin = shader.indexOf('\n//@SHARED_BEGIN');
  const end = shader.indexOf('\n//@SHARED_END\n');
  if (begin < 0 || end < begin) throw new Pix2PixError('conv shader template', `${name} has no //@SHARED_BEGIN ... //@SHARED_END block`);
  return shader.slice(shader.indexOf('\n', begin + 1) + 1, end);
}

/** conv_blocked.wgsl's declarations, which its subgroup variant shares, so the two cannot drift apart. */
const blockedSgShader = fillTemplate(blockedSgTemplate, { DECLARATIONS: sharedLines(blockedShader, 'conv_blocked.wgsl') });

function fillTemplate(template: string, fills: Record<string, string>): string {
  let out = template;
  for (const [name, code] of Object.entries(fills)) {
    const parts = out.split(`\n//@${name}\n`);
    if (parts.length !== 2) throw new Pix2PixError('conv shader template', `expected exactly one //@${name} line`);
    out = `${parts[0]}\n${code}\n${parts[1]}`;
  }
  return out;
}

/**
 * shaders/conv_blocked_sg.wgsl with one entry point's step written out (the other's marker emptied): the
 * lanes' weight loads, then for each weight a broadcast from its lane and its PB multiply-adds.
 */
function blockedSgSource(entry: 'gather' | 'transposed', rows: number, pixels: number, g: ConvGeometry): string {
  const lines: string[] = [];
  const taps = entry === 'gather' ? g.KW : Math.ceil(g.KW / g.sw);  // weights per row per step
  const values = rows * taps;
  for (let r = 0; r < Math.ceil(values / TAPS_SG); r++) {
    lines.push(entry === 'gather'
      ? `      let wv${r} = gatherWeight(${r}u, sgLane, m0, rowTap);`
      : `      let wv${r} = transposedWeight(${r}u, sgLane, m0, wBase, kh, rw);`);
  }
  for (let i = 0; i < rows; i++) {
    for (let k = 0; k < taps; k++) {
      const v = i * taps + k;
      const fmas: string[] = [];
      for (let q = 0; q < pixels; q++) fmas.push(`acc[${i * pixels + q}] += w * xs[${entry === 'gather' ? q * g.sw + k : q + taps - 1 - k}];`);
      lines.push(`      { let w = subgroupBroadcast(wv${Math.floor(v / TAPS_SG)}, ${v % TAPS_SG}u); ${fmas.join(' ')} }`);
    }
  }
  const code = lines.join('\n');
  return fillTemplate(blockedSgShader, entry === 'gather' ? { GATHER_STEP: code, TRANSPOSED_STEP: '' } : { GATHER_STEP: '', TRANSPOSED_STEP: code });
}

/** dst (+)= bias + gather-convolution(src, wgt). */
export function encodeGather(
  ctx: GpuContext,
  op: string,
  dst: Tensor,
  src: Tensor,
  wgt: Tensor,
  bias: Tensor | null,
  g: ConvGeometry,
  accumulate: boolean,
  implChoice: ConvImpl | 'auto',
  tuning: BlockedTuning = {},
): Dispatch {
  const bindings = [
    { tensor: src, access: 'read' as const },
    { tensor: wgt, access: 'read' as const },
    { tensor: bias ?? wgt, access: 'read' as const },
    { tensor: dst, access: 'rw' as const },
  ];
  const u32 = geometryU32(g, bias ? 1 : 0, accumulate, 0);
  const impl = resolveImpl(implChoice, 'gather', g, op);
  if (impl === 'direct') {
    return ctx.kernel({ op, shader: gatherShader, entryPoint: 'direct', constants: { WG }, u32, bindings, workgroups: ctx.grid(dst.size, WG) });
  }
  if (impl === 'blocked') {
    const rows = blockedRows(g, tuning);
    const pixels = blockedPixels(g, rows, tuning);
    const columns = g.batch * g.outH * Math.ceil(g.outW / pixels);
    const wg = blockedWorkgroup(columns, tuning);
    const [x, y] = ctx.grid(columns, wg);
    const workgroups = [x, y, Math.ceil(g.M / rows)] as const;
    if (useSubgroups(ctx, tuning, wg, op)) {
      const constants = { ...blockedConstants(g, rows, wg, pixels), SG: TAPS_SG };
      return ctx.kernel({ op, shader: blockedSgSource('gather', rows, pixels, g), entryPoint: 'gather_sg', constants, u32, bindings, workgroups });
    }
    return ctx.kernel({ op, shader: blockedShader, entryPoint: 'gather', constants: blockedConstants(g, rows, wg, pixels), u32, bindings, workgroups });
  }
  const colTiles = Math.ceil((g.batch * g.outH * g.outW) / TILE);
  const [x, y] = tileGrid(ctx, colTiles);
  return ctx.kernel({ op, shader: gatherShader, entryPoint: 'tiled', u32, bindings, workgroups: [x, y, Math.ceil(g.M / TILE)] });
}

/** dst (+)= bias + transposed-gather-convolution(src, wgt). */
export function encodeTransposedGather(
  ctx: GpuContext,
  op: string,
  dst: Tensor,
  src: Tensor,
  wgt: Tensor,
  bias: Tensor | null,
  g: ConvGeometry,
  accumulate: boolean,
  implChoice: ConvImpl | 'auto',
  tuning: BlockedTuning = {},
): Dispatch {
  const bindings = [
    { tensor: src, access: 'read' as const },
    { tensor: wgt, access: 'read' as const },
    { tensor: bias ?? wgt, access: 'read' as const },
    { tensor: dst, access: 'rw' as const },
  ];
  const u32 = geometryU32(g, bias ? 1 : 0, accumulate, 0);
  const impl = resolveImpl(implChoice, 'transposed', g, op);
  if (impl === 'direct') {
    return ctx.kernel({ op, shader: transposedShader, entryPoint: 'direct', constants: { WG }, u32, bindings, workgroups: ctx.grid(dst.size, WG) });
  }
  if (impl === 'blocked') {
    const rows = blockedRows(g, tuning);
    const pixels = blockedPixels(g, rows, tuning, true);
    // Columns of the largest phase (the first: ceil(out / s) outputs per dimension), `pixels` outputs each.
    const columns = g.batch * Math.ceil(g.outH / g.sh) * Math.ceil(Math.ceil(g.outW / g.sw) / pixels);
    const wg = blockedWorkgroup(columns, tuning);
    const [x, y] = ctx.grid(columns, wg);
    const workgroups = [x, y, Math.ceil(g.M / rows) * g.sh * g.sw] as const;
    if (useSubgroups(ctx, tuning, wg, op)) {
      const constants = { ...blockedConstants(g, rows, wg, pixels), SG: TAPS_SG };
      return ctx.kernel({ op, shader: blockedSgSource('transposed', rows, pixels, g), entryPoint: 'transposed_sg', constants, u32, bindings, workgroups });
    }
    return ctx.kernel({ op, shader: blockedShader, entryPoint: 'transposed', constants: blockedConstants(g, rows, wg, pixels), u32, bindings, workgroups });
  }
  // Each output phase (oh + ph) mod sh has at most ceil(outH / sh) rows; size the grid for the largest.
  const colTiles = Math.ceil((g.batch * Math.ceil(g.outH / g.sh) * Math.ceil(g.outW / g.sw)) / TILE);
  const [x, y] = tileGrid(ctx, colTiles);
  return ctx.kernel({ op, shader: transposedShader, entryPoint: 'tiled', u32, bindings, workgroups: [x, y, Math.ceil(g.M / TILE) * g.sh * g.sw] });
}

/**
 * Split-K factor for the weight gradient: enough workgroups to fill a big GPU (about 1024 with 64x64
 * tiles, 8 per SM on a 132-SM H100) while each split keeps at least 256 reduction steps' worth of
 * work, and the partial sums stay under 64 MiB.
 */
function weightGradSplits(g: ConvGeometry, K: number): number {
  const tiles = Math.ceil(g.M / TILE) * Math.ceil(K / TILE);
  const P = g.batch * g.outH * g.outW;
  const byOccupancy = Math.ceil(1024 / tiles);
  const byWork = Math.ceil(P / 256);
  const byMemory = Math.floor((64 << 20) / (4 * g.M * K));
  return Math.max(1, Math.min(byOccupancy, byWork, byMemory, 65535));
}

/**
 * dst[m, c, kh, kw] (+)= sum grad[n, m, oh, ow] * src[n, c, oh*sh - ph + kh, ow*sw - pw + kw], and when
 * `gradSum` is given, gradSum[m] (+)= sum grad[n, m, :, :] (conv2d's bias gradient; the blocked kernel
 * computes it as one more column, the others add a bias_grad dispatch).
 */
export function encodeWeightGrad(
  ctx: GpuContext,
  op: string,
  dst: Tensor,
  grad: Tensor,
  src: Tensor,
  g: ConvGeometry,
  accumulate: boolean,
  implChoice: ConvImpl | 'auto',
  gradSum: Tensor | null = null,
  tuning: BlockedTuning = {},
): Dispatch[] {
  const K = g.C * g.KH * g.KW;
  const impl = resolveImpl(implChoice, 'weightGrad', g, op);
  if (impl === 'blocked') return encodeWeightGradBlocked(ctx, op, dst, gradSum, grad, src, g, accumulate, tuning);
  if (impl === 'taps') return encodeWeightGradTaps(ctx, op, dst, gradSum, grad, src, g, accumulate, tuning);
  const out = impl === 'direct' ? [ctx.kernel({
    op,
    shader: weightGradShader,
    entryPoint: 'direct',
    constants: { WG },
    u32: geometryU32(g, 0, accumulate, 1),
    bindings: [{ tensor: grad, access: 'read' }, { tensor: src, access: 'read' }, { tensor: dst, access: 'rw' }],
    workgroups: ctx.grid(dst.size, WG),
  })] : encodeWeightGradTiled(ctx, op, dst, grad, src, g, accumulate, K);
  if (gradSum) out.push(encodeBiasGrad(ctx, op, gradSum, grad, accumulate));
  return out;
}

function encodeWeightGradTiled(ctx: GpuContext, op: string, dst: Tensor, grad: Tensor, src: Tensor, g: ConvGeometry, accumulate: boolean, K: number): Dispatch[] {
  const P = g.batch * g.outH * g.outW;
  let splits = weightGradSplits(g, K);
  const chunk = Math.ceil(Math.ceil(P / splits) / 16) * 16;
  splits = Math.ceil(P / chunk);
  const workgroups = [Math.ceil(K / TILE), Math.ceil(g.M / TILE), splits] as const;
  if (splits === 1) {
    return [ctx.kernel({
      op,
      shader: weightGradShader,
      entryPoint: 'tiled',
      u32: geometryU32(g, chunk, accumulate, 1),
      bindings: [{ tensor: grad, access: 'read' }, { tensor: src, access: 'read' }, { tensor: dst, access: 'rw' }],
      workgroups,
    })];
  }
  const partials = ctx.scratch([splits, g.M * K], `${op}.partials`);
  const partial = ctx.kernel({
    op,
    shader: weightGradShader,
    entryPoint: 'tiled',
    u32: geometryU32(g, chunk, false, splits),
    bindings: [{ tensor: grad, access: 'read' }, { tensor: src, access: 'read' }, { tensor: partials, access: 'rw' }],
    workgroups,
  });
  const reduce = ctx.kernel({
    op,
    shader: reduceShader,
    entryPoint: 'sum_splits',
    constants: { WG },
    u32: [g.M * K, splits, 0, 0, 0, accumulate ? 1 : 0],
    bindings: [{ tensor: partials, access: 'read' }, { tensor: dst, access: 'rw' }],
    workgroups: ctx.grid(g.M * K, WG),
  });
  reduce.attach(partials);
  return [partial, reduce];
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

function encodeWeightGradBlocked(
  ctx: GpuContext,
  op: string,
  dw: Tensor,
  db: Tensor | null,
  grad: Tensor,
  src: Tensor,
  g: ConvGeometry,
  accumulate: boolean,
  tuning: BlockedTuning,
): Dispatch[] {
  const K = g.C * g.KH * g.KW;
  const rows = blockedRows(g, tuning);
  const columns = K + (db ? 1 : 0);
  const wg = blockedWorkgroup(columns, tuning);
  const columnBlocks = Math.ceil(columns / wg);
  const rowBlocks = Math.ceil(g.M / rows);
  const R = g.batch * g.outH;
  let splits = Math.min(R, tuning.splits ?? blockedWeightGradSplits(g, columnBlocks, rowBlocks));
  const rowsPerSplit = Math.ceil(R / splits);
  splits = Math.ceil(R / rowsPerSplit);
  const constants = blockedConstants(g, rows, wg);
  const u32 = geometryU32(g, db ? 1 : 0, accumulate, rowsPerSplit);
  return weightGradDispatches(ctx, op, { shader: blockedShader, entryPoint: 'weight_grad', constants }, u32, [columnBlocks, rowBlocks, splits], g, dw, db, grad, src);
}

/**
 * The dispatches of a split-K weight gradient ('blocked', 'taps'): with one split the kernel writes dw and db
 * directly; with more it writes partial sums per split, which sum_splits_bias (conv_blocked.wgsl) adds into
 * dw and db. workgroups[2] is the split count.
 */
function weightGradDispatches(
  ctx: GpuContext,
  op: string,
  kernel: { shader: string; entryPoint: string; constants: Record<string, number> },
  u32: number[],
  workgroups: readonly [number, number, number],
  g: ConvGeometry,
  dw: Tensor,
  db: Tensor | null,
  grad: Tensor,
  src: Tensor,
): Dispatch[] {
  const K = g.C * g.KH * g.KW;
  const splits = workgroups[2];
  // db's binding must not alias dw (two writable views of one buffer); without a bias it gets a 1-float stand-in.
  const spare = db ? null : ctx.scratch([1], `${op}.nobias`);
  const dbias = db ?? spare!;
  const b = (tensor: Tensor, binding: number, access: 'read' | 'rw' = 'read') => ({ tensor, binding, access });
  if (splits === 1) {
    const d = ctx.kernel({ op, ...kernel, u32, bindings: [b(src, 1), b(grad, 2), b(dw, 4, 'rw'), b(dbias, 5, 'rw')], workgroups });
    if (spare) d.attach(spare);
    return [d];
  }
  const partials = ctx.scratch([splits, g.M * (K + 1)], `${op}.partials`);
  const partial = ctx.kernel({ op, ...kernel, u32, bindings: [b(src, 1), b(grad, 2), b(partials, 4, 'rw'), b(dbias, 5, 'rw')], workgroups });
  const reduce = ctx.kernel({
    op,
    shader: blockedShader,
    entryPoint: 'sum_splits_bias',
    constants: { WG, KH: g.KH, KW: g.KW },
    u32,
    bindings: [b(partials, 1), b(dw, 4, 'rw'), b(dbias, 5, 'rw')],
    workgroups: ctx.grid(g.M * (K + 1), WG),
  });
  reduce.attach(partials);
  if (spare) reduce.attach(spare);
  return [partial, reduce];
}

// ------------------------------------------------------------------------------------------------
// Weight gradient blocked over kernel taps (impl 'taps', shaders/conv_weight_grad_taps.wgsl, and with
// subgroups shaders/conv_weight_grad_taps_sg.wgsl, whose inner step tapsSgSource writes out).

const TAPS_MAX_ACC = 64;
const TAPS_MAX_SPAN = 20;

/** The taps kernel holds a kernel row of KW taps per thread for at least one row: KW <= 16, at most 16 taps. */
function tapsFits(g: ConvGeometry): boolean {
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

/** Launch shape of the taps weight gradient (defaults measured in the comment at encodeWeightGradTaps). */
function tapsLaunch(g: ConvGeometry, hasBias: boolean, t: BlockedTuning): TapsLaunch {
  const op = 'conv weight grad taps';
  const kernelRows = t.kernelRows ?? 1;
  if (!Number.isInteger(kernelRows) || kernelRows < 1 || kernelRows > 4) throw new ShapeError(op, 'kernel rows per thread', '1..4', kernelRows);
  const maxRows = Math.min(MAX_BLOCK_ROWS, Math.floor(TAPS_MAX_ACC / (kernelRows * g.KW)));
  const rows = t.rows ?? Math.min(TAPS_ROWS, maxRows, 2 ** Math.ceil(Math.log2(g.M)));
  if (!Number.isInteger(rows) || rows < 1 || rows > maxRows) throw new ShapeError(op, 'rows per thread', `1..${maxRows}`, rows);
  const maxPixels = Math.floor((TAPS_MAX_SPAN - g.KW) / g.sw) + 1;
  const pixels = t.pixels ?? Math.max(1, Math.min(TAPS_PIXELS, maxPixels, g.outW));
  if (!Number.isInteger(pixels) || pixels < 1 || pixels > maxPixels) throw new ShapeError(op, 'pixels per step', `1..${maxPixels}`, pixels);
  const columns = g.C * Math.ceil(g.KH / kernelRows) + (hasBias ? 1 : 0);
  const wg = t.wg ?? Math.max(8, Math.min(BLOCKED_WG, 2 ** Math.ceil(Math.log2(columns))));
  const groups = Math.ceil(columns / wg) * Math.ceil(g.M / rows);
  const R = g.batch * g.outH;
  const auto = Math.max(1, Math.min(Math.ceil(TAPS_TARGET_GROUPS / groups), Math.floor(R / TAPS_SPLIT_ROWS)));
  let splits = Math.max(1, Math.min(R, t.splits ?? auto));
  const rowsPerSplit = Math.ceil(R / splits);
  splits = Math.ceil(R / rowsPerSplit);
  return { rows, kernelRows, pixels, wg, columns, splits, rowsPerSplit };
}

/**
 * The subgroup taps kernel's step (see shaders/conv_weight_grad_taps_sg.wgsl): the SG lanes' grad loads,
 * then for each of the MB x PB grad values a broadcast from its lane and the TH x KW multiply-adds.
 */
function tapsSgSource(rows: number, kernelRows: number, KW: number, SW: number, pixels: number): string {
  const lines: string[] = [];
  const values = rows * pixels;
  for (let r = 0; r < Math.ceil(values / TAPS_SG); r++) lines.push(`      let gv${r} = gradValue(${r}u, sgLane, gradRow, m0, ow0);`);
  for (let q = 0; q < pixels; q++) {
    for (let i = 0; i < rows; i++) {
      const v = q * rows + i;
      const fmas: string[] = [];
      for (let t = 0; t < kernelRows; t++) {
        for (let kw = 0; kw < KW; kw++) fmas.push(`acc[${(i * kernelRows + t) * KW + kw}] += g * xs[${t * TAPS_MAX_SPAN + q * SW + kw}];`);
      }
      lines.push(`      { let g = subgroupBroadcast(gv${Math.floor(v / TAPS_SG)}, ${v % TAPS_SG}u); ${fmas.join(' ')} }`);
    }
  }
  return fillTemplate(tapsSgTemplate, { STEP: lines.join('\n') });
}

/** Lanes that share the grad loads in the subgroup taps kernel: lavapipe's subgroup (one 8-wide SIMD vector). */
const TAPS_SG = 8;

/**
 * Whether a kernel of `wg` threads may share loads through subgroups: the device has the feature, the
 * adapter reports subgroups of at least TAPS_SG lanes, and `wg` is a multiple of the largest subgroup size,
 * so every subgroup is full and lanes 0..TAPS_SG-1 all run (lavapipe: 8 and 8; an NVIDIA GPU: 32 and 32,
 * so its 8- and 16-thread workgroups keep the plain kernels).
 */
function subgroupsFor(ctx: GpuContext, wg: number): boolean {
  if (!ctx.features.has('subgroups')) return false;
  const info = (ctx.device as unknown as { adapterInfo?: { subgroupMinSize?: number; subgroupMaxSize?: number } }).adapterInfo;
  const min = info?.subgroupMinSize ?? 0;
  const max = info?.subgroupMaxSize ?? 0;
  return min >= TAPS_SG && max >= min && wg % max === 0;
}

/** tuning.subgroups (default: whenever {@link subgroupsFor} allows), refused where it does not. */
function useSubgroups(ctx: GpuContext, tuning: BlockedTuning, wg: number, op: string): boolean {
  const ok = subgroupsFor(ctx, wg);
  if (tuning.subgroups && !ok) throw new ShapeError(op, `subgroups for ${wg} threads per workgroup (the feature, >= ${TAPS_SG} lanes, full subgroups)`, 'available', 'not available');
  return tuning.subgroups ?? ok;
}

/**
 * 'auto' picks 'taps' for the weight gradient wherever it picked 'blocked' (k4, at most 32 rows or 256
 * reduction steps) and with subgroups when the device has them. Measured on Mesa lavapipe (2 shared cores,
 * load average 3-4 from other jobs), GPU timestamps, the impls alternated in each of 11 rounds, median / min
 * ms, pix2pix 'small' shapes (conv: dw + fused db; convT: dw + the bias_grad pass):
 *                           blocked        taps, no subgroups   taps + subgroups
 *   conv 3->8 64x128        4.26/2.75      1.59/0.95            0.56/0.43
 *   conv 6->8 64x128        7.34/5.95      2.90/2.20            1.11/0.51
 *   conv 8->16 32x64        4.78/2.88      3.15/1.88            1.02/0.48
 *   conv 16->32 16x32       5.19/4.69      3.28/2.85            1.15/0.98
 *   conv 32->64 8x16        5.16/4.64      2.88/2.36            1.10/1.02
 *   conv 32->64 s1 8x16    13.12/8.31      9.34/5.00            3.67/1.92
 *   conv 64->1 s1 7x15      0.33/0.31      0.13/0.12            0.12/0.10
 *   conv 64->64 4x8         2.11/1.15      1.25/0.44            0.52/0.49
 *   conv 64->64 2x4         0.98/0.52      0.34/0.33            0.28/0.28
 *   convT 64->64 1x2        1.08/0.52      0.33/0.31            0.28/0.26
 *   convT 128->64 2x4       3.65/2.13      1.88/1.31            0.89/0.85
 *   convT 128->32 4x8       5.15/4.10      2.69/1.66            0.89/0.85
 *   convT 64->16 8x16       4.72/4.31      2.10/1.29            1.26/0.64
 *   convT 32->8 16x32       5.08/3.51      1.72/1.18            0.75/0.52
 *   convT 16->3 32x64       4.72/3.60      2.33/1.16            0.62/0.57
 *   total                  67.7/49.4      35.9/23.0            14.2/9.9
 * (the bias_grad pass is bias_grad_serial in all three columns; before it, it added 0.1-1.4 ms per convT).
 * Launch shape, same machine, taps + subgroups, summed over those shapes (min ms): rows 8 / 16: 11.1 / 12.5;
 * kernel rows 1 / 2: 11.1 / 12.8; pixels 2 / 4 / 8: 10.9 / 11.1 / 15.7 (4 kept: fewer steps on long rows).
 * Row splits: the old target of 16 workgroups 13.0 vs one split everywhere 12.6, and forcing 2 or 4 splits
 * 19.1 / 21.3 (the sum_splits_bias pass over M x (K + 1) partials costs up to 1-2 ms for 64x1024 weights):
 * so split only a grid of a single workgroup, into 2, when the reduction has at least 16 grad rows.
 * Not yet in 'auto': the larger unet_256 weight gradients, where taps + subgroups also beat the tiled GEMM on
 * lavapipe (3 alternated rounds, median ms, tiled or auto / taps + subgroups): conv 64->128 64x64 141 / 38,
 * conv 3->64 256x256 85 / 29, conv 256->512 s1 31x31 1852 / 386, convT 128->3 128x128 135 / 29; kept on the
 * old rule until measured on a discrete GPU, where the 64x64 tiles should win.
 * An earlier version with every register loop written out (no private arrays) ran the same as the loops:
 * Mesa unrolls them; the loads, not the indexing, cost (replacing the grad loads by constants: 2-3x faster).
 */
/**
 * Whether a blocked gather shares its weight loads through subgroups (shaders/conv_blocked_sg.wgsl;
 * tuning.subgroups, default: where subgroupsFor allows). Lavapipe (2 shared cores, load
 * average ~2.5-3.3), GPU timestamps, 9 alternated rounds, median / min ms, 'auto' launch shapes, without /
 * with subgroups:
 *                         forward (conv: gather, convT: transposed)   grad input (conv: transposed, convT: gather)
 *   conv 3->8 64x128          1.16/0.89 -> 0.43/0.39                     0.77/0.74 -> 0.43/0.43
 *   conv 6->8 64x128          1.08/0.66 -> 0.59/0.36                     1.43/1.34 -> 0.72/0.67
 *   conv 8->16 32x64          1.13/0.54 -> 0.38/0.21                     0.62/0.61 -> 0.28/0.28
 *   conv 16->32 16x32         1.08/0.54 -> 0.34/0.30                     0.61/0.57 -> 0.26/0.25
 *   conv 32->64 8x16          1.05/0.98 -> 0.36/0.33                     1.07/1.02 -> 0.39/0.34
 *   conv 32->64 s1 8x16       2.47/1.80 -> 1.00/0.69                     3.54/1.66 -> 1.02/0.93
 *   conv 64->1 s1 7x15        0.18/0.16 -> 0.10/0.08                     0.18/0.16 -> 0.12/0.10
 *   conv 64->64 4x8           2.52/2.46 -> 0.64/0.59                     2.00/1.95 -> 0.67/0.62
 *   conv 64->64 2x4           1.93/1.20 -> 0.44/0.23                     1.75/1.70 -> 0.44/0.41
 *   convT 64->64 1x2          1.90/1.25 -> 0.49/0.46                     1.34/1.02 -> 0.39/0.20
 *   convT 128->64 2x4         3.15/2.10 -> 1.07/0.74                     2.43/2.18 -> 0.82/0.71
 *   convT 128->32 4x8         1.67/1.03 -> 0.74/0.38                     1.41/1.10 -> 0.46/0.33
 *   convT 64->16 8x16         2.06/1.15 -> 0.79/0.43                     2.03/1.08 -> 0.66/0.38
 *   convT 32->8 16x32         1.18/1.11 -> 0.48/0.46                     2.20/2.15 -> 0.77/0.67
 *   convT 16->3 32x64         1.26/1.20 -> 0.67/0.64                     1.74/0.92 -> 0.72/0.44
 *   total                    23.8/17.1 -> 8.5/6.3                       23.1/18.2 -> 8.1/6.8
 * Training step ('small', alternated with the build before this change in one process): median 215 -> 96 ms.
 */

const TAPS_ROWS = 8;
const TAPS_PIXELS = 4;
const TAPS_TARGET_GROUPS = 2;
const TAPS_SPLIT_ROWS = 8;

function encodeWeightGradTaps(
  ctx: GpuContext,
  op: string,
  dw: Tensor,
  db: Tensor | null,
  grad: Tensor,
  src: Tensor,
  g: ConvGeometry,
  accumulate: boolean,
  tuning: BlockedTuning,
): Dispatch[] {
  const L = tapsLaunch(g, !!db, tuning);
  const subgroups = useSubgroups(ctx, tuning, L.wg, op);
  const shader = subgroups ? tapsSgSource(L.rows, L.kernelRows, g.KW, g.sw, L.pixels) : tapsShaderText;
  const entryPoint = subgroups ? 'weight_grad_taps_sg' : 'weight_grad_taps';
  const constants: Record<string, number> = { WG: L.wg, MB: L.rows, TH: L.kernelRows, KH: g.KH, KW: g.KW, SW: g.sw, PB: L.pixels };
  if (subgroups) constants.SG = TAPS_SG;
  const u32 = geometryU32(g, db ? 1 : 0, accumulate, L.rowsPerSplit);
  const workgroups = [Math.ceil(L.columns / L.wg), Math.ceil(g.M / L.rows), L.splits] as const;
  return weightGradDispatches(ctx, op, { shader, entryPoint, constants }, u32, workgroups, g, dw, db, grad, src);
}

/**
 * bias_grad_serial (one thread per channel) up to this many values per channel, bias_grad (a 256-thread
 * workgroup per channel, tree reduction) above. Lavapipe, median / min ms of 9 rounds, alternated:
 * [1,64,2,4] 0.87/0.69 -> 0.016/0.016, [1,64,4,8] 0.67/0.43 -> 0.016, [1,32,8,16] 0.44/0.43 -> 0.03/0.016,
 * [1,16,16,32] 0.25/0.23 -> 0.03, [1,8,32,64] 0.15/0.15 -> 0.05, [1,3,64,128] 0.12/0.10 -> 0.10/0.10.
 */
const BIAS_SERIAL_MAX = 8192;

/** db[m] (+)= sum over batch and pixels of dy[n, m, :, :]. */
export function encodeBiasGrad(ctx: GpuContext, op: string, db: Tensor, dy: Tensor, accumulate: boolean, serial?: boolean): Dispatch {
  const [N, C, H, W] = dy.shape;
  if (serial ?? N * H * W <= BIAS_SERIAL_MAX) {
    return ctx.kernel({
      op,
      shader: reduceShader,
      entryPoint: 'bias_grad_serial',
      constants: { WG: 64 },
      u32: [0, 0, N, C, H * W, accumulate ? 1 : 0],
      bindings: [{ tensor: dy, access: 'read' }, { tensor: db, access: 'rw' }],
      workgroups: [Math.ceil(C / 64)],
    });
  }
  return ctx.kernel({
    op,
    shader: reduceShader,
    entryPoint: 'bias_grad',
    constants: { WG },
    u32: [0, 0, N, C, H * W, accumulate ? 1 : 0],
    bindings: [{ tensor: dy, access: 'read' }, { tensor: db, access: 'rw' }],
    workgroups: [C],
  });
}

/** Throw unless every tensor in `list` is distinct (an output bound as an input is a silent race). */
export function checkDistinct(op: string, list: Record<string, Tensor | null>): void {
  const seen: [string, Tensor][] = [];
  for (const [name, t] of Object.entries(list)) {
    if (!t) continue;
    const prev = seen.find(([, u]) => u.overlaps(t));
    if (prev) throw new Pix2PixError(op, `${name} and ${prev[0]} share one buffer's bytes; the output must not alias an input`);
    seen.push([name, t]);
  }
}

function checkLive(ctx: GpuContext, op: string, tensors: Record<string, Tensor | null>): void {
  for (const [name, t] of Object.entries(tensors)) if (t) ctx.checkTensor(t, op, undefined, name);
}

// ------------------------------------------------------------------------------------------------
// conv2d

/** Geometry of conv2d's forward gather: dst = y (M = Cout), src = x (C = Cin). */
function forwardGeometry(xShape: readonly number[], wShape: readonly number[], yShape: readonly number[], p: Conv2dParams, op: string): ConvGeometry {
  const [sh, sw] = pair(p.stride, 1, op, 'stride');
  const [ph, pw] = pair(p.padding, 0, op, 'padding');
  return { batch: xShape[0], M: wShape[0], C: wShape[1], inH: xShape[2], inW: xShape[3], outH: yShape[2], outW: yShape[3], KH: wShape[2], KW: wShape[3], sh, sw, ph, pw };
}

function conv2dForwardImpl(ctx: GpuContext, y: Tensor, x: Tensor, w: Tensor, b: Tensor | null, p: Conv2dParams, impl: ConvImpl | 'auto'): Dispatch[] {
  const op = 'conv2d.forward';
  checkLive(ctx, op, { y, x, w, b });
  const yShape = conv2dOutputShape(x.shape, w.shape, p, op);
  ctx.checkTensor(y, op, yShape, 'y');
  if (b) ctx.checkTensor(b, op, [w.shape[0]], 'b');
  checkDistinct(op, { y, x, w, b });
  return [encodeGather(ctx, op, y, x, w, b, forwardGeometry(x.shape, w.shape, yShape, p, op), false, impl, p.blocked)];
}

/**
 * y = conv2d(x, w) + b, PyTorch semantics. x [N, Cin, H, W], w [Cout, Cin, KH, KW], b [Cout] or null,
 * y [N, Cout, Ho, Wo] (see {@link conv2dOutputShape}). Kernel chosen by shape (blocked, tiled implicit GEMM or direct; see resolveImpl).
 */
export function conv2dForward(ctx: GpuContext, y: Tensor, x: Tensor, w: Tensor, b: Tensor | null, p: Conv2dParams = {}): Dispatch[] {
  return conv2dForwardImpl(ctx, y, x, w, b, p, p.impl ?? 'auto');
}

/** {@link conv2dForward} with the direct kernel (one thread per output): the readable reference path. */
export function conv2dForwardDirect(ctx: GpuContext, y: Tensor, x: Tensor, w: Tensor, b: Tensor | null, p: Conv2dParams = {}): Dispatch[] {
  return conv2dForwardImpl(ctx, y, x, w, b, p, 'direct');
}

function conv2dBackwardInputImpl(ctx: GpuContext, dx: Tensor, dy: Tensor, w: Tensor, p: Conv2dParams & ConvBackwardOptions, impl: ConvImpl | 'auto'): Dispatch[] {
  const op = 'conv2d.backwardInput';
  checkLive(ctx, op, { dx, dy, w });
  const yShape = conv2dOutputShape(dx.shape, w.shape, p, op);
  ctx.checkTensor(dy, op, yShape, 'dy');
  checkDistinct(op, { dx, dy, w });
  const [sh, sw] = pair(p.stride, 1, op, 'stride');
  const [ph, pw] = pair(p.padding, 0, op, 'padding');
  // dx[n, ci, ih, iw] = sum over taps with ih = oh*sh - ph + kh of w[co, ci, kh, kw] * dy[n, co, oh, ow]:
  // a transposed gather with src = dy (C = Cout) and dst = dx (M = Cin), reading w as [C, M, KH, KW].
  const g: ConvGeometry = {
    batch: dx.shape[0], M: dx.shape[1], C: dy.shape[1], inH: dy.shape[2], inW: dy.shape[3], outH: dx.shape[2], outW: dx.shape[3],
    KH: w.shape[2], KW: w.shape[3], sh, sw, ph, pw,
  };
  return [encodeTransposedGather(ctx, op, dx, dy, w, null, g, !!p.accumulate, impl, p.blocked)];
}

/** dx (+)= dL/dx of conv2d given dy; dx has x's shape [N, Cin, H, W]. Phase-split gather, no atomics; kernel chosen by shape. */
export function conv2dBackwardInput(ctx: GpuContext, dx: Tensor, dy: Tensor, w: Tensor, p: Conv2dParams & ConvBackwardOptions = {}): Dispatch[] {
  return conv2dBackwardInputImpl(ctx, dx, dy, w, p, p.impl ?? 'auto');
}

/** {@link conv2dBackwardInput} with the direct kernel. */
export function conv2dBackwardInputDirect(ctx: GpuContext, dx: Tensor, dy: Tensor, w: Tensor, p: Conv2dParams & ConvBackwardOptions = {}): Dispatch[] {
  return conv2dBackwardInputImpl(ctx, dx, dy, w, p, 'direct');
}

function conv2dBackwardWeightImpl(
  ctx: GpuContext,
  dw: Tensor,
  db: Tensor | null,
  dy: Tensor,
  x: Tensor,
  p: Conv2dParams & ConvBackwardOptions,
  impl: ConvImpl | 'auto',
): Dispatch[] {
  const op = 'conv2d.backwardWeight';
  checkLive(ctx, op, { dw, db, dy, x });
  const yShape = conv2dOutputShape(x.shape, dw.shape, p, op);
  ctx.checkTensor(dy, op, yShape, 'dy');
  if (db) ctx.checkTensor(db, op, [dw.shape[0]], 'db');
  checkDistinct(op, { dw, db, dy, x });
  // dw[co, ci, kh, kw] = sum dy[n, co, oh, ow] * x[n, ci, oh*sh - ph + kh, ow*sw - pw + kw].
  const g = forwardGeometry(x.shape, dw.shape, yShape, p, op);
  return encodeWeightGrad(ctx, op, dw, dy, x, g, !!p.accumulate, impl, db, p.blocked);
}

/**
 * dw (+)= dL/dw and db (+)= dL/db of conv2d, from dy and the forward input x. dw [Cout, Cin, KH, KW]
 * (its KH, KW define the kernel), db [Cout] or null. GEMM split over N*Ho*Wo; kernel chosen by shape.
 */
export function conv2dBackwardWeight(
  ctx: GpuContext,
  dw: Tensor,
  db: Tensor | null,
  dy: Tensor,
  x: Tensor,
  p: Conv2dParams & ConvBackwardOptions = {},
): Dispatch[] {
  return conv2dBackwardWeightImpl(ctx, dw, db, dy, x, p, p.impl ?? 'auto');
}

/** {@link conv2dBackwardWeight} with the direct kernel (one thread per weight). */
export function conv2dBackwardWeightDirect(
  ctx: GpuContext,
  dw: Tensor,
  db: Tensor | null,
  dy: Tensor,
  x: Tensor,
  p: Conv2dParams & ConvBackwardOptions = {},
): Dispatch[] {
  return conv2dBackwardWeightImpl(ctx, dw, db, dy, x, p, 'direct');
}
