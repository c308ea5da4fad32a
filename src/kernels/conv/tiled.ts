// Variant 'tiled': implicit GEMM with 64x64 workgroup-memory tiles and 4x4 register blocks per thread
// (shaders/conv2d.wgsl, conv_transpose2d.wgsl, conv2d_weight_grad.wgsl). Fits every shape.
import type { Dispatch, GpuContext } from '../../runtime/context.js';
import { TILE, WG, gatherBindings, type GatherTensors, type WeightGradTensors } from './common.js';
import { packConvParams, type ConvGeometry } from './params.js';
import { NO_FUSION, withFusion, type ConvFusion } from './fusion.js';
import { gatherShader, reduceShader, transposedShader, weightGradShader } from './shaders.js';
import { Pix2PixError, ShapeError } from '../../runtime/errors.js';

/** Square output tiles the tiled kernels come in: TILE (64, 16x16 threads), 32 (8x8) and 16 (4x4), 4x4 outputs per thread. */
export const TILED_TILES = [64, 32, 16] as const;

const TILE_LINE = `const TILE = ${TILE}u;`; // shaders.ts TILED_CONSTANTS_WGSL
const tiledText = new Map<string, string>();

/**
 * The shader with its `const TILE = 64u;` line set to `tile` (every other size of the tiled entry point derives
 * from it). Smaller tiles make more, smaller workgroups: SwiftShader runs each workgroup as one task on one
 * thread, so a launch of four 64x64 tiles leaves its two cores half idle or unbalanced (policy.ts).
 */
function withTile(shader: string, tile: number, op: string): string {
  if (!(TILED_TILES as readonly number[]).includes(tile)) throw new ShapeError(op, 'tiled tile size (tuning tile)', TILED_TILES.join(', '), tile);
  if (tile === TILE) return shader;
  const key = `${tile}\n${shader}`;
  let out = tiledText.get(key);
  if (!out) {
    const parts = shader.split(TILE_LINE);
    if (parts.length !== 2) throw new Pix2PixError('conv shader template', `the tiled shader must have exactly one '${TILE_LINE}' line`);
    out = parts.join(`const TILE = ${tile}u;`);
    tiledText.set(key, out);
  }
  return out;
}

/**
 * Launch: x, y = column tiles folded over two grid dimensions (one holds at most 65535 groups), z = row
 * tiles; the transposed gather has one z slice per output phase, sized for the largest phase.
 */
export function encodeTiledGather(ctx: GpuContext, op: string, kind: 'gather' | 'transposed', t: GatherTensors, g: ConvGeometry, accumulate: boolean, fusion: ConvFusion = NO_FUSION, tile: number = TILE): Dispatch {
  const u32 = packConvParams(g, { hasBias: t.bias ? 1 : 0, accumulate: accumulate ? 1 : 0 });
  if (kind === 'gather') {
    const [x, y] = ctx.grid(Math.ceil((g.batch * g.outH * g.outW) / tile), 1);
    return ctx.kernel({ op, shader: withTile(withFusion(gatherShader, fusion, op), tile, op), entryPoint: 'tiled', u32, bindings: gatherBindings(t), workgroups: [x, y, Math.ceil(g.M / tile)] });
  }
  // Each output phase (oh + ph) mod sh has at most ceil(outH / sh) rows; size the grid for the largest.
  const [x, y] = ctx.grid(Math.ceil((g.batch * Math.ceil(g.outH / g.sh) * Math.ceil(g.outW / g.sw)) / tile), 1);
  return ctx.kernel({ op, shader: withTile(withFusion(transposedShader, fusion, op), tile, op), entryPoint: 'tiled', u32, bindings: gatherBindings(t), workgroups: [x, y, Math.ceil(g.M / tile) * g.sh * g.sw] });
}

/** Workgroups of a tiled launch with `tile` (weight gradient: before split-K), for the policy's tile rule. */
export function tiledWorkgroups(kind: 'gather' | 'transposed' | 'weightGrad', g: ConvGeometry, tile: number): number {
  if (kind === 'weightGrad') return Math.ceil((g.C * g.KH * g.KW) / tile) * Math.ceil(g.M / tile);
  if (kind === 'gather') return Math.ceil((g.batch * g.outH * g.outW) / tile) * Math.ceil(g.M / tile);
  return Math.ceil((g.batch * Math.ceil(g.outH / g.sh) * Math.ceil(g.outW / g.sw)) / tile) * Math.ceil(g.M / tile) * g.sh * g.sw;
}

/**
 * Split-K factor for the weight gradient: enough workgroups to fill a big GPU (about 1024 with 64x64
 * tiles, 8 per SM on a 132-SM H100) while each split keeps at least 256 reduction steps' worth of
 * work, and the partial sums stay under 64 MiB.
 */
function weightGradSplits(g: ConvGeometry, K: number, tile: number): number {
  const tiles = Math.ceil(g.M / tile) * Math.ceil(K / tile);
  const P = g.batch * g.outH * g.outW;
  const byOccupancy = Math.ceil(1024 / tiles);
  const byWork = Math.ceil(P / 256);
  const byMemory = Math.floor((64 << 20) / (4 * g.M * K));
  return Math.max(1, Math.min(byOccupancy, byWork, byMemory, 65535));
}

/** Launch: x = K tiles, y = M tiles, z = splits of the reduction; more than one split adds a sum_splits pass. */
export function encodeTiledWeightGrad(ctx: GpuContext, op: string, t: WeightGradTensors, g: ConvGeometry, accumulate: boolean, fusion: ConvFusion = NO_FUSION, tile: number = TILE): Dispatch[] {
  const shader = withTile(withFusion(weightGradShader, fusion, op), tile, op);
  const K = g.C * g.KH * g.KW;
  const P = g.batch * g.outH * g.outW;
  let splits = weightGradSplits(g, K, tile);
  const chunk = Math.ceil(Math.ceil(P / splits) / 16) * 16;
  splits = Math.ceil(P / chunk);
  const workgroups = [Math.ceil(K / tile), Math.ceil(g.M / tile), splits] as const;
  if (splits === 1) {
    return [ctx.kernel({
      op,
      shader,
      entryPoint: 'tiled',
      u32: packConvParams(g, { chunk, accumulate: accumulate ? 1 : 0, splits: 1 }),
      bindings: [{ tensor: t.grad, access: 'read' }, { tensor: t.src, access: 'read' }, { tensor: t.dst, access: 'rw' }],
      workgroups,
    })];
  }
  const partials = ctx.scratch([splits, g.M * K], `${op}.partials`);
  const partial = ctx.kernel({
    op,
    shader,
    entryPoint: 'tiled',
    u32: packConvParams(g, { chunk, accumulate: 0, splits }),
    bindings: [{ tensor: t.grad, access: 'read' }, { tensor: t.src, access: 'read' }, { tensor: partials, access: 'rw' }],
    workgroups,
  });
  const reduce = ctx.kernel({
    op,
    shader: reduceShader,
    entryPoint: 'sum_splits',
    constants: { WG },
    u32: [g.M * K, splits, 0, 0, 0, accumulate ? 1 : 0],
    bindings: [{ tensor: partials, access: 'read' }, { tensor: t.dst, access: 'rw' }],
    workgroups: ctx.grid(g.M * K, WG),
  });
  reduce.attach(partials);
  return [partial, reduce];
}
