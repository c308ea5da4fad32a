// Autotuning: for each conv shape, time every variant that fits on this adapter and is proven correct by
// the kernel tests (test/kernels/conv*.test.ts run each of them on its own), keep the fastest, and store the
// choice per adapter (tune_store.ts). Only `tune` (the CLI command, Pix2Pix.create({ tune: true }) or a
// direct call) measures; without a stored entry the static policy applies (policy.ts).
import { destroyDispatches, type Dispatch, type GpuContext } from '../../runtime/context.js';
import type { Tensor } from '../../runtime/tensor.js';
import { blockedFits } from './blocked.js';
import type { BlockedTuning } from './common.js';
import { adapterIdentity } from './device_class.js';
import { encodeGather, encodeTransposedGather, encodeWeightGrad } from './engine.js';
import { choiceFits, shapeKey, tunedChoices, useTunedChoices, type ConvShape, type TunedChoice } from './policy.js';
import { tapsFits } from './taps.js';
import type { AdapterTuning, TuneRecord, TuneStore } from './tune_store.js';

export interface TuneOptions {
  /** Where choices are read and written; default: none (measure, apply, keep nothing). */
  store?: TuneStore;
  /** Timed runs per candidate (median kept); default 5. */
  repeats?: number;
  /** Untimed runs first (pipeline compilation); default 1. */
  warmup?: number;
  /** Measure again even shapes the store already has. */
  retune?: boolean;
  /** Progress lines. */
  log?: (line: string) => void;
}

/** A candidate's label in records and logs. */
export function choiceLabel(c: TunedChoice): string {
  return `${c.impl}${c.subgroups === false ? ' (no subgroups)' : ''}`;
}

/**
 * The variants the tuner may pick for a shape, in a fixed order (ties keep the earlier): each is run on its
 * own against the CPU reference by the kernel tests. The subgroup kernels (the device default for blocked
 * and taps where it has them) also compete against their plain versions.
 */
export function candidatesFor(ctx: GpuContext, s: ConvShape): TunedChoice[] {
  const out: TunedChoice[] = [{ impl: 'tiled' }, { impl: 'direct' }];
  const sg = ctx.features.has('subgroups');
  if (blockedFits(s.g)) {
    out.push({ impl: 'blocked' });
    if (sg) out.push({ impl: 'blocked', subgroups: false });
  }
  if (s.kind === 'weightGrad' && tapsFits(s.g)) {
    out.push({ impl: 'taps' });
    if (sg) out.push({ impl: 'taps', subgroups: false });
  }
  return out.filter((c) => choiceFits(s.kind, s.g, c));
}

/** The launch of one candidate on freshly allocated tensors of the shape (their contents do not matter). */
function encodeCandidate(ctx: GpuContext, s: ConvShape, c: TunedChoice, tensors: Tensor[]): Dispatch[] {
  const { g } = s;
  const t = (shape: number[]) => {
    const x = ctx.tensor(shape, undefined, 'conv.tune');
    tensors.push(x);
    return x;
  };
  const tuning: BlockedTuning = c.subgroups === false ? { subgroups: false } : {};
  const op = `conv.tune.${s.kind}`;
  if (s.kind === 'weightGrad') {
    const dw = t([g.M, g.C, g.KH, g.KW]);
    const grad = t([g.batch, g.M, g.outH, g.outW]);
    const src = t([g.batch, g.C, g.inH, g.inW]);
    return encodeWeightGrad(ctx, op, dw, grad, src, g, false, c.impl, s.hasBias ? t([g.M]) : null, tuning);
  }
  const dst = t([g.batch, g.M, g.outH, g.outW]);
  const src = t([g.batch, g.C, g.inH, g.inW]);
  const wgt = t(s.kind === 'gather' ? [g.M, g.C, g.KH, g.KW] : [g.C, g.M, g.KH, g.KW]);
  const bias = s.hasBias ? t([g.M]) : null;
  return [(s.kind === 'gather' ? encodeGather : encodeTransposedGather)(ctx, op, dst, src, wgt, bias, g, false, c.impl, tuning)];
}

/** Submissions per timed sample. */
const BATCH = 3;

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
}

/**
 * Time every candidate for one shape: wall clock from submit to completion, median of `repeats`. The
 * candidates take turns within each repeat, so a burst of load from elsewhere hits them alike.
 */
export async function measureShape(ctx: GpuContext, s: ConvShape, opts: TuneOptions = {}): Promise<TuneRecord> {
  const repeats = opts.repeats ?? 5;
  const warmup = opts.warmup ?? 1;
  const cands = candidatesFor(ctx, s);
  const tensors: Tensor[] = [];
  const launches: Dispatch[][] = [];
  try {
    for (const c of cands) launches.push(encodeCandidate(ctx, s, c, tensors));
    for (const ds of launches) for (let i = 0; i < warmup; i++) await ctx.run(ds, 'conv.tune');
    const times: number[][] = cands.map(() => []);
    // The turn order rotates each repeat: on lavapipe the first launch after an idle wait measured slowest
    // whatever it was, which a fixed order turned into a bias against the first candidates. Each sample is
    // BATCH submissions then one wait, so the wait's fixed cost weighs less.
    for (let i = 0; i < repeats; i++) {
      for (let j = 0; j < cands.length; j++) {
        const k = (i + j) % cands.length;
        const t0 = performance.now();
        for (let b = 0; b < BATCH; b++) ctx.encodeAndSubmit(launches[k], 'conv.tune');
        await ctx.sync('conv.tune');
        times[k].push((performance.now() - t0) / BATCH);
      }
    }
    const candidates: Record<string, number> = {};
    let best = 0;
    const ms = times.map(median);
    cands.forEach((c, k) => {
      candidates[choiceLabel(c)] = Math.round(ms[k] * 1000) / 1000;
      if (ms[k] < ms[best]) best = k;
    });
    // 'tiled' fits every shape, so there is always a candidate.
    return { ...cands[best], ms: Math.round(ms[best] * 1000) / 1000, candidates };
  } finally {
    for (const ds of launches) destroyDispatches(ds);
    for (const x of tensors) x.destroy();
  }
}

/** Apply the store's choices for this adapter to `ctx` (returns how many shapes it holds). */
export async function loadTuning(ctx: GpuContext, store: TuneStore): Promise<number> {
  const saved = await store.load(adapterIdentity(ctx));
  if (!saved) return 0;
  const table = new Map(tunedChoices(ctx));
  for (const [key, r] of Object.entries(saved.shapes)) table.set(key, r.subgroups === undefined ? { impl: r.impl } : { impl: r.impl, subgroups: r.subgroups });
  useTunedChoices(ctx, table);
  return Object.keys(saved.shapes).length;
}

/**
 * Measure the shapes the store does not have yet (all with `retune`), save them, and make every stored
 * choice for this adapter the 'auto' choice on `ctx`. Returns this adapter's table.
 */
export async function tuneConvShapes(ctx: GpuContext, shapes: readonly ConvShape[], opts: TuneOptions = {}): Promise<AdapterTuning> {
  const adapter = adapterIdentity(ctx);
  const tuning: AdapterTuning = (opts.store && (await opts.store.load(adapter))) || { adapter, shapes: {} };
  let measured = 0;
  for (const s of shapes) {
    const key = shapeKey(s.kind, s.g, s.hasBias);
    if (!opts.retune && tuning.shapes[key]) continue;
    const r = await measureShape(ctx, s, opts);
    tuning.shapes[key] = r;
    measured++;
    opts.log?.(`${key}: ${choiceLabel(r)} ${r.ms.toFixed(2)} ms (${Object.entries(r.candidates).map(([k, v]) => `${k} ${v.toFixed(2)}`).join(', ')})`);
  }
  if (opts.store && measured > 0) await opts.store.save(tuning);
  const table = new Map(tunedChoices(ctx));
  for (const [key, r] of Object.entries(tuning.shapes)) table.set(key, r.subgroups === undefined ? { impl: r.impl } : { impl: r.impl, subgroups: r.subgroups });
  useTunedChoices(ctx, table);
  return tuning;
}
