// Which conv variant runs a given shape: an explicit choice, else a measured (tuned) choice for this
// adapter and shape, else the static rule for the adapter's device class. Kernels live in their own
// modules; this file only decides.
import type { GpuContext } from '../../runtime/context.js';
import { ShapeError } from '../../runtime/errors.js';
import { blockedFits } from './blocked.js';
import { type BlockedTuning, type ConvImpl, type ConvKind } from './common.js';
import { deviceClass, type DeviceClass } from './device_class.js';
import type { ConvGeometry } from './params.js';
import { tapsFits } from './taps.js';

/** Thresholds of the static rule (see {@link staticImpl}). */
export interface StaticPolicy {
  /** direct up to this many GEMM rows (dst channels), tiled above (kernels other than 4x4, or too big for blocked). */
  directMaxRows: Record<ConvKind, number>;
  /** 4x4 kernels: blocked (weight gradient: taps) when dst has at most this many channels ... */
  blockedMaxRows: number;
  /** ... or the GEMM has at most this many columns (per phase; weight gradient: reduction steps). */
  blockedMaxColumns: number;
}

// Measured on Mesa lavapipe (bench/RESULTS.md, conv selection history: direct vs tiled, blocked vs tiled, taps).
const SOFTWARE_POLICY: StaticPolicy = {
  directMaxRows: { gather: 16, transposed: 8, weightGrad: 16 },
  blockedMaxRows: 32,
  blockedMaxColumns: 256,
};

/**
 * The static defaults per device class. Only the software class has been measured; the GPU classes use
 * its thresholds until a GPU is measured (bench/RESULTS.md, conv selection history), and `tune` replaces
 * them per shape on the user's adapter. The subgroup kernels already follow the device (common.ts subgroupsFor).
 */
export const STATIC_POLICIES: Record<DeviceClass, StaticPolicy> = {
  software: SOFTWARE_POLICY,
  integrated: SOFTWARE_POLICY,
  discrete: SOFTWARE_POLICY,
};

/** The GEMM's column count the static rule compares with blockedMaxColumns. */
function columns(kind: ConvKind, g: ConvGeometry): number {
  return kind === 'transposed' ? g.batch * Math.ceil(g.outH / g.sh) * Math.ceil(g.outW / g.sw) : g.batch * g.outH * g.outW;
}

/** The static choice: blocked/taps for small-channel or few-column 4x4 kernels, else direct for few rows, else tiled. */
export function staticImpl(kind: ConvKind, g: ConvGeometry, policy: StaticPolicy): ConvImpl {
  if (g.KH === 4 && g.KW === 4 && (g.M <= policy.blockedMaxRows || columns(kind, g) <= policy.blockedMaxColumns)) {
    return kind === 'weightGrad' && tapsFits(g) ? 'taps' : 'blocked';
  }
  return g.M <= policy.directMaxRows[kind] ? 'direct' : 'tiled';
}

/** One measured choice: the variant, and for blocked/taps whether the subgroup kernel runs. */
export interface TunedChoice {
  impl: ConvImpl;
  subgroups?: boolean;
}

/** The key of a shape in a tuning table: the kind, the geometry, and whether a bias is fused (weight gradient). */
export function shapeKey(kind: ConvKind, g: ConvGeometry, hasBias: boolean): string {
  return `${kind} n${g.batch} ${g.C}->${g.M} ${g.inH}x${g.inW}->${g.outH}x${g.outW} k${g.KH}x${g.KW} s${g.sh}x${g.sw} p${g.ph}x${g.pw}${kind === 'weightGrad' && hasBias ? ' bias' : ''}`;
}

const tables = new WeakMap<GpuContext, ReadonlyMap<string, TunedChoice>>();

/** One conv launch as the policy sees it: what tune.ts measures. */
export interface ConvShape {
  kind: ConvKind;
  g: ConvGeometry;
  hasBias: boolean;
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
): { impl: ConvImpl; tuning: BlockedTuning } {
  if (!IMPLS.includes(choice)) throw new ShapeError(op, 'impl', "'auto', 'tiled', 'direct', 'blocked' or 'taps'", String(choice));
  let impl = choice;
  if (impl === 'auto') {
    const key = shapeKey(kind, g, hasBias);
    const collector = collectors.get(ctx);
    if (collector && !collector.has(key)) collector.set(key, { kind, g: { ...g }, hasBias });
    const tuned = tables.get(ctx)?.get(key);
    if (tuned && choiceFits(kind, g, tuned)) {
      // A tuned 'subgroups: false' turns the subgroup kernel off; otherwise the device rule decides (common.ts).
      const off = tuned.subgroups === false && tuning.subgroups === undefined;
      return { impl: tuned.impl, tuning: off ? { ...tuning, subgroups: false } : tuning };
    }
    impl = staticImpl(kind, g, STATIC_POLICIES[deviceClass(ctx)]);
  }
  if (impl === 'taps') impl = kind === 'weightGrad' && tapsFits(g) ? 'taps' : 'blocked';
  if (impl === 'blocked' && !blockedFits(g)) impl = 'tiled';
  return { impl, tuning };
}
