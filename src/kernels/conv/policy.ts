// Which conv variant runs a given shape: an explicit choice, else a measured (tuned) choice for this
// adapter and shape, else the static rule for the adapter's device class. Kernels live in their own
// modules; this file only decides.
import type { GpuContext } from '../../runtime/context.js';
import { ShapeError } from '../../runtime/errors.js';
import { blockedFits } from './blocked.js';
import { type BlockedTuning, type ConvImpl, type ConvKind } from './common.js';
import { deviceClass, type DeviceClass } from './device_class.js';
import type { ConvFusion, FusedActivation } from './fusion.js';
import type { ConvGeometry } from './params.js';
import { tapsFits } from './taps.js';
import { tiledWorkgroups } from './tiled.js';

/** Thresholds of the static rule (see {@link staticImpl}), per kind of launch. */
export interface StaticPolicy {
  /** direct when the GEMM has at most this many columns (tiny outputs, where no tile or block fills); 0: never. */
  directMaxColumns: Record<ConvKind, number>;
  /** 4x4 kernels: blocked (weight gradient: taps) when dst has at most this many channels ... */
  blockedMaxRows: Record<ConvKind, number>;
  /** ... or the GEMM has at most this many columns (per phase; weight gradient: reduction steps). */
  blockedMaxColumns: Record<ConvKind, number>;
  /** Otherwise direct up to this many GEMM rows (dst channels), tiled above. */
  directMaxRows: Record<ConvKind, number>;
  /**
   * Blocked gathers of at least 16 dst channels onto at most this many GEMM columns (per phase) keep 16 dst
   * channels per thread instead of 8 (unless the caller sets `rows`); 0: never.
   */
  blockedRows16MaxColumns: Record<ConvKind, number>;
  /**
   * The direct kernels' threads per workgroup: WG (256) halved, down to 8, until the launch has at least this
   * many workgroups; 0: always WG. (Results do not depend on it: one thread per output either way.)
   */
  directMinWorkgroups: number;
  /**
   * The tiled kernels' output tile: 64, halved down to `tiledMinTile` until the launch has at least this many
   * workgroups (before a weight gradient's split-K); 0: always 64.
   */
  tiledMinWorkgroups: number;
  tiledMinTile: number;
}

const perKind = (gather: number, transposed: number, weightGrad: number): Record<ConvKind, number> => ({ gather, transposed, weightGrad });

// Measured on Mesa lavapipe (bench/RESULTS.md, conv selection history: direct vs tiled, blocked vs tiled, taps).
const SOFTWARE_POLICY: StaticPolicy = {
  directMaxColumns: perKind(0, 0, 0),
  blockedMaxRows: perKind(32, 32, 32),
  blockedMaxColumns: perKind(256, 256, 256),
  directMaxRows: perKind(16, 8, 16),
  // On maps of a few columns (the U-Net's innermost levels: 2x4 and 4x8 outputs, or per phase of a transposed
  // gather) with many channels, one 8-lane workgroup does all the work and most of its lanes compute clamped
  // copies; 16 rows per thread halves the row blocks and feeds each src load to twice the rows. Measured on
  // lavapipe (H15lv, GPU timestamps, 9 alternated rounds, `small` step shapes): 2-3x faster on every such
  // shape, e.g. gather 64->128 4x8->2x4 0.92 -> 0.35-0.48 ms, convT 128->64 2x4->4x8 0.86 -> 0.28 ms; on
  // large maps it loses (convT 16->3 to 64x128: 1.65 -> 6.06 ms), hence the column bound.
  blockedRows16MaxColumns: perKind(32, 32, 0),
  directMinWorkgroups: 0,
  tiledMinWorkgroups: 0,
  tiledMinTile: 64,
};

// Measured on SwiftShader, which runs each workgroup as one task on one of its threads (bench/RESULTS.md,
// 2026-11-30 afternoon and evening). The tiled kernels take smaller tiles until a launch has 16 workgroups (floor
// 32, and 16 where 32 would be twice the rows), the direct kernels smaller workgroups until it has 32. With those
// launches the `small` step's shapes tuned in Chromium (GPU timestamps, 58 shapes) gave the thresholds: direct only
// for gathers onto at most 4 output pixels (transposed: 8 per phase); blocked for gathers of at most 8 dst
// channels and transposed gathers of at most 6 (tiled was 2-4x faster from 16 channels: e.g. gather 8->16 at 16x32
// 2.4 vs 10.0 ms, transposed 32->16 at 16x32 9.9 vs 45 ms); taps for weight gradients of at most 32 reduction
// steps (32->128 onto 4x8: 22.6 vs tiled 61.6 ms), direct for one row, tiled otherwise (8->16 at 16x32: 4.0 vs
// direct 25.1 ms). Other kernel sizes follow the same rows thresholds (unmeasured). Paired Chromium rounds against
// the afternoon's rule (64 tiles, 256-thread direct groups, direct weight gradients up to 16 rows): see RESULTS.
const SWIFTSHADER_POLICY: StaticPolicy = {
  directMaxColumns: perKind(4, 8, 0),
  blockedMaxRows: perKind(8, 6, 0),
  blockedMaxColumns: perKind(0, 0, 32),
  directMaxRows: perKind(4, 4, 1),
  blockedRows16MaxColumns: perKind(0, 0, 0),
  directMinWorkgroups: 32,
  tiledMinWorkgroups: 16,
  tiledMinTile: 32,
};

// GPUs run lavapipe's variant rule until one is measured, but not its 16-row blocks for tiny maps: those halve
// the threads of launches that are already too small to fill a GPU, so the per-thread chain doubles for nothing.
const GPU_POLICY: StaticPolicy = { ...SOFTWARE_POLICY, blockedRows16MaxColumns: perKind(0, 0, 0) };

/**
 * The static defaults per device class. Only the software classes have been measured; the GPU classes use
 * lavapipe's thresholds until a GPU is measured (bench/RESULTS.md, conv selection history), and `tune` replaces
 * them per shape on the user's adapter. The subgroup kernels already follow the device (common.ts subgroupsFor).
 */
export const STATIC_POLICIES: Record<DeviceClass, StaticPolicy> = {
  software: SOFTWARE_POLICY,
  swiftshader: SWIFTSHADER_POLICY,
  integrated: GPU_POLICY,
  discrete: GPU_POLICY,
};

/** The GEMM's column count the static rule compares with its column thresholds. */
function columns(kind: ConvKind, g: ConvGeometry): number {
  return kind === 'transposed' ? g.batch * Math.ceil(g.outH / g.sh) * Math.ceil(g.outW / g.sw) : g.batch * g.outH * g.outW;
}

/**
 * The static choice: direct for tiny outputs, then blocked/taps for small-channel or few-column 4x4 kernels,
 * else direct for few rows, else tiled.
 */
export function staticImpl(kind: ConvKind, g: ConvGeometry, policy: StaticPolicy): ConvImpl {
  const cols = columns(kind, g);
  if (cols <= policy.directMaxColumns[kind]) return 'direct';
  if (g.KH === 4 && g.KW === 4 && (g.M <= policy.blockedMaxRows[kind] || cols <= policy.blockedMaxColumns[kind])) {
    return kind === 'weightGrad' && tapsFits(g) ? 'taps' : 'blocked';
  }
  return g.M <= policy.directMaxRows[kind] ? 'direct' : 'tiled';
}

const overrides = new WeakMap<GpuContext, StaticPolicy>();

/**
 * Use `policy` instead of the device class's static policy on this context (null: back to the class's), for
 * benchmarks that compare one class's rule with another's on the same adapter. Tuned choices still come first.
 */
export function useStaticPolicy(ctx: GpuContext, policy: StaticPolicy | null): void {
  if (policy) overrides.set(ctx, policy);
  else overrides.delete(ctx);
}

/** The static policy in force on this context: an override, else its device class's. */
export function staticPolicy(ctx: GpuContext): StaticPolicy {
  return overrides.get(ctx) ?? STATIC_POLICIES[deviceClass(ctx)];
}

/** One measured choice: the variant, and for blocked/taps whether the subgroup kernel runs. */
export interface TunedChoice {
  impl: ConvImpl;
  subgroups?: boolean;
}

/**
 * How one launch differs from the plain conv of its geometry: what it fuses (fusion.ts: input prologue, output
 * epilogue, grad-input epilogue), whether it adds into dst, and whether a weight gradient also sums src per
 * channel (conv_transpose2d's bias gradient). Each changes the kernel a variant runs (and 'srcSum' adds a
 * dispatch to the variants that cannot fuse it), so the tuner times and keys the launch with them.
 */
export interface ConvLaunch {
  fusion?: ConvFusion;
  accumulate?: boolean;
  srcSum?: boolean;
}

function activationLabel(a: FusedActivation): string {
  return a.kind === 'leaky_relu' ? `leaky_relu(${a.slope ?? 0.2})` : a.kind;
}

/** The launch part of a shape key: empty for a plain launch, so plain shapes keep the keys caches already hold. */
export function launchKey(l: ConvLaunch = {}): string {
  const f = l.fusion ?? {};
  const parts: string[] = [];
  if (f.srcAct) parts.push(`src=${activationLabel(f.srcAct)}`);
  if (f.gradAct) parts.push(`grad=${activationLabel(f.gradAct)}`);
  if (f.outAct) parts.push(`out=${activationLabel(f.outAct)}`);
  if (f.dstGrad) parts.push(`dact=${activationLabel(f.dstGrad.act)}/${f.dstGrad.saved}/${f.dstGrad.applyTo ?? 'term'}`);
  if (l.srcSum) parts.push('srcsum');
  if (l.accumulate) parts.push('acc');
  return parts.length ? ` | ${parts.join(' ')}` : '';
}

/**
 * The key of a shape in a tuning table: the kind, the geometry, whether a bias is fused (weight gradient), and
 * the launch's fusion and accumulation ({@link launchKey}).
 */
export function shapeKey(kind: ConvKind, g: ConvGeometry, hasBias: boolean, launch: ConvLaunch = {}): string {
  return `${kind} n${g.batch} ${g.C}->${g.M} ${g.inH}x${g.inW}->${g.outH}x${g.outW} k${g.KH}x${g.KW} s${g.sh}x${g.sw} p${g.ph}x${g.pw}${kind === 'weightGrad' && hasBias ? ' bias' : ''}${launchKey(launch)}`;
}

const tables = new WeakMap<GpuContext, ReadonlyMap<string, TunedChoice>>();

/** One conv launch as the policy sees it: what tune.ts measures. */
export interface ConvShape {
  kind: ConvKind;
  g: ConvGeometry;
  hasBias: boolean;
  /** Fusion and accumulation of the launch (absent: a plain launch). */
  launch?: ConvLaunch;
}

const collectors = new WeakMap<GpuContext, Map<string, ConvShape>>();

/** Run `record` (which encodes dispatches) and return the distinct shapes it left to 'auto', in first-seen order. */
export function collectConvShapes<T>(ctx: GpuContext, record: () => T): { result: T; shapes: ConvShape[] } {
  const seen = new Map<string, ConvShape>();
  const outer = collectors.get(ctx);
  collectors.set(ctx, seen);
  try {
    const result = record();
    return { result, shapes: [...seen.values()] };
  } finally {
    if (outer) collectors.set(ctx, outer);
    else collectors.delete(ctx);
  }
}

/** Make `table` (shape key -> choice, measured on this context's adapter) the 'auto' choice for its shapes. */
export function useTunedChoices(ctx: GpuContext, table: ReadonlyMap<string, TunedChoice>): void {
  tables.set(ctx, new Map(table));
}

/** The tuned choices in force on this context (empty when none). */
export function tunedChoices(ctx: GpuContext): ReadonlyMap<string, TunedChoice> {
  return tables.get(ctx) ?? new Map();
}

/** Whether a choice can run this shape on this device (a tuned entry that cannot is ignored). */
export function choiceFits(kind: ConvKind, g: ConvGeometry, c: TunedChoice): boolean {
  if (c.impl === 'taps' && (kind !== 'weightGrad' || !tapsFits(g))) return false;
  if (c.impl === 'blocked' && !blockedFits(g)) return false;
  return c.impl === 'direct' || c.impl === 'tiled' || c.impl === 'blocked' || c.impl === 'taps';
}

const IMPLS = ['auto', 'tiled', 'direct', 'blocked', 'taps'];

/** The variant and launch overrides to run: `choice` if explicit, else tuned, else static. */
export function resolveImpl(
  ctx: GpuContext,
  choice: ConvImpl | 'auto',
  kind: ConvKind,
  g: ConvGeometry,
  hasBias: boolean,
  tuning: BlockedTuning,
  op: string,
  launch: ConvLaunch = {},
): { impl: ConvImpl; tuning: BlockedTuning } {
  if (!IMPLS.includes(choice)) throw new ShapeError(op, 'impl', "'auto', 'tiled', 'direct', 'blocked' or 'taps'", String(choice));
  let impl = choice;
  if (impl === 'auto') {
    const key = shapeKey(kind, g, hasBias, launch);
    const collector = collectors.get(ctx);
    if (collector && !collector.has(key)) collector.set(key, { kind, g: { ...g }, hasBias, launch: { ...launch } });
    const tuned = tables.get(ctx)?.get(key);
    if (tuned && choiceFits(kind, g, tuned)) {
      // A tuned 'subgroups: false' turns the subgroup kernel off; otherwise the device rule decides (common.ts).
      // The rows rule applies as when the tuner timed the candidate (an explicit choice, below).
      const off = tuned.subgroups === false && tuning.subgroups === undefined;
      const t = off ? { ...tuning, subgroups: false } : tuning;
      return { impl: tuned.impl, tuning: launchTuning(tuned.impl, kind, g, t, staticPolicy(ctx)) };
    }
    impl = staticImpl(kind, g, staticPolicy(ctx));
  }
  if (impl === 'taps') impl = kind === 'weightGrad' && tapsFits(g) ? 'taps' : 'blocked';
  if (impl === 'blocked' && !blockedFits(g)) impl = 'tiled';
  return { impl, tuning: launchTuning(impl, kind, g, tuning, staticPolicy(ctx)) };
}

/** The launch shape the policy adds to the caller's tuning: blocked rows ({@link blockedTuning}), direct workgroup size ({@link directTuning}). */
function launchTuning(impl: ConvImpl, kind: ConvKind, g: ConvGeometry, tuning: BlockedTuning, policy: StaticPolicy): BlockedTuning {
  if (impl === 'blocked') return blockedTuning(kind, g, tuning, policy);
  if (impl === 'direct') return directTuning(kind, g, tuning, policy);
  if (impl === 'tiled') return tiledTuning(kind, g, tuning, policy);
  return tuning;
}

/**
 * The tiled launch's tile: the caller's `tile`, else (where the policy has a `tiledMinWorkgroups`) 64 halved down
 * to `policy.tiledMinTile` until the launch has that many workgroups, and further, down to 16, while the tile is
 * at least twice the GEMM's rows. Same 4x4 outputs per thread, so each load feeds as many multiply-adds; the
 * smaller tile also wastes less on rows and columns past M and the map's end.
 */
export function tiledTuning(kind: ConvKind, g: ConvGeometry, tuning: BlockedTuning, policy: StaticPolicy): BlockedTuning {
  if (tuning.tile !== undefined || !policy.tiledMinWorkgroups) return tuning;
  let tile = 64;
  while (tile > policy.tiledMinTile && tiledWorkgroups(kind, g, tile) < policy.tiledMinWorkgroups) tile /= 2;
  // A tile at least twice the rows (M) computes more padding than outputs: halve it down to 16.
  while (tile > 16 && tile >= 2 * g.M) tile /= 2;
  return tile === 64 ? tuning : { ...tuning, tile };
}

/** Threads per workgroup of the direct kernels (one thread per element of dst). */
export const DIRECT_WG = 256;
/** The smallest direct workgroup the policy picks: two of SwiftShader's 4-lane SIMD groups. */
export const DIRECT_MIN_WG = 8;

/**
 * The direct launch's workgroup size: the caller's `wg`, else {@link DIRECT_WG} halved (down to DIRECT_MIN_WG)
 * until the launch has `policy.directMinWorkgroups` workgroups. SwiftShader runs a workgroup as one task on one
 * thread, so a 2048-output launch in 8 groups of 256 keeps 8 tasks for 2 cores where 64 groups of 32 balance.
 */
export function directTuning(kind: ConvKind, g: ConvGeometry, tuning: BlockedTuning, policy: StaticPolicy): BlockedTuning {
  if (tuning.wg !== undefined || !policy.directMinWorkgroups) return tuning;
  const size = kind === 'weightGrad' ? g.M * g.C * g.KH * g.KW : g.batch * g.M * g.outH * g.outW;
  let wg = DIRECT_WG;
  while (wg > DIRECT_MIN_WG && Math.ceil(size / wg) < policy.directMinWorkgroups) wg /= 2;
  return wg === DIRECT_WG ? tuning : { ...tuning, wg };
}

/** The blocked launch's tuning: the caller's, with 16 rows per thread where the policy wants them (see StaticPolicy). */
export function blockedTuning(kind: ConvKind, g: ConvGeometry, tuning: BlockedTuning, policy: StaticPolicy): BlockedTuning {
  if (tuning.rows !== undefined || g.M < 16 || columns(kind, g) > policy.blockedRows16MaxColumns[kind]) return tuning;
  return { ...tuning, rows: 16 };
}
