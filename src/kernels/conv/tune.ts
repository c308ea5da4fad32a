// Autotuning: for each conv shape, time every variant that fits on this adapter and is proven correct by
// the kernel tests (test/kernels/conv*.test.ts run each of them on its own; conv_tune.test.ts runs every
// candidate as the tuner launches it), keep the fastest, and store the choice per adapter (tune_store.ts).
// Only `tune` (the CLI command, Pix2Pix.create({ tune: true }) or a direct call) measures; without a stored
// entry the static policy applies (policy.ts). Timing uses GPU timestamps where the device has them: the
// CPU's clock around submit-and-wait measured lavapipe's wake-up after each wait and every other process's
// load as much as the kernels (bench/RESULTS.md, conv autotuning).
import { BufferUsage, destroyDispatches, type Dispatch, type GpuContext } from '../../runtime/context.js';
import { GpuValidationError, ShapeError } from '../../runtime/errors.js';
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
  /** Untimed rounds first (first-use costs), before the round that sets the launches per pass; default 1. */
  warmup?: number;
  /** Which clock: 'gpu' (timestamp queries; an error where the device lacks them) or 'wall'; default {@link defaultTimer}. */
  timer?: TuneTimer;
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

/**
 * The tensors one candidate writes and reads: a gather's (dst, src, wgt, bias, and the grad-input epilogue's
 * saved tensor) or a weight gradient's (dw, grad, src, gradSum, and conv_transpose2d's bias sum srcSum).
 */
export type CandidateTensors =
  | { kind: 'gather' | 'transposed'; dst: Tensor; src: Tensor; wgt: Tensor; bias: Tensor | null; saved?: Tensor | null }
  | { kind: 'weightGrad'; dw: Tensor; grad: Tensor; src: Tensor; gradSum: Tensor | null; srcSum?: Tensor | null };

/** The shapes of {@link CandidateTensors} for a conv shape ([N, C, H, W] maps, PyTorch weight layouts). */
export function candidateTensorShapes(s: ConvShape): Record<string, number[] | null> {
  const { g } = s;
  const src = [g.batch, g.C, g.inH, g.inW];
  const out = [g.batch, g.M, g.outH, g.outW];
  if (s.kind === 'weightGrad') return { dw: [g.M, g.C, g.KH, g.KW], grad: out, src, gradSum: s.hasBias ? [g.M] : null, srcSum: s.launch?.srcSum ? [g.C] : null };
  const wgt = s.kind === 'gather' ? [g.M, g.C, g.KH, g.KW] : [g.C, g.M, g.KH, g.KW];
  return { dst: out, src, wgt, bias: s.hasBias ? [g.M] : null, saved: s.launch?.fusion?.dstGrad ? out : null };
}

/**
 * The launch of one candidate, exactly as the tuner times it and as the step runs it when chosen: the variant
 * forced, the subgroup kernel turned off for a 'subgroups: false' candidate, and the shape's launch (its fused
 * prologue/epilogue, accumulation into dst, conv_transpose2d's bias sum, with the extra dispatch a variant
 * needs when it cannot fuse that sum). Tensors of the launch's fusion (saved, srcSum) must be given when it has one.
 */
export function encodeCandidate(ctx: GpuContext, s: ConvShape, c: TunedChoice, t: CandidateTensors): Dispatch[] {
  const tuning: BlockedTuning = c.subgroups === false ? { subgroups: false } : {};
  const op = `conv.tune.${s.kind}`;
  if (t.kind !== s.kind) throw new ShapeError(op, 'tensors for kind', s.kind, t.kind);
  const fusion = s.launch?.fusion ?? {};
  const accumulate = !!s.launch?.accumulate;
  if (t.kind === 'weightGrad') {
    if (!!s.launch?.srcSum !== !!t.srcSum) throw new ShapeError(op, 'srcSum tensor for a launch with srcSum', !!s.launch?.srcSum, !!t.srcSum);
    return encodeWeightGrad(ctx, op, t.dw, t.grad, t.src, s.g, accumulate, c.impl, t.gradSum, tuning, fusion, t.srcSum ?? null);
  }
  const enc = t.kind === 'gather' ? encodeGather : encodeTransposedGather;
  return [enc(ctx, op, t.dst, t.src, t.wgt, t.bias, s.g, accumulate, c.impl, tuning, fusion, t.saved ?? null)];
}

/** Fresh tensors of the shape (their contents do not matter for timing), pushed onto `owned`. */
function scratchTensors(ctx: GpuContext, s: ConvShape, owned: Tensor[]): CandidateTensors {
  const shapes = candidateTensorShapes(s);
  const t = (name: string) => {
    const shape = shapes[name];
    if (!shape) return null;
    const x = ctx.tensor(shape, undefined, 'conv.tune');
    owned.push(x);
    return x;
  };
  if (s.kind === 'weightGrad') return { kind: s.kind, dw: t('dw')!, grad: t('grad')!, src: t('src')!, gradSum: t('gradSum'), srcSum: t('srcSum') };
  return { kind: s.kind, dst: t('dst')!, src: t('src')!, wgt: t('wgt')!, bias: t('bias'), saved: t('saved') };
}

/** Which clock times the candidates: GPU timestamps, or the CPU's clock around submit-and-wait. */
export type TuneTimer = 'gpu' | 'wall';

/** 'gpu' where the device has 'timestamp-query' (createContext asks for it whenever the adapter has it), else 'wall'. */
export function defaultTimer(ctx: GpuContext): TuneTimer {
  return ctx.features.has('timestamp-query') ? 'gpu' : 'wall';
}

/**
 * How long one timed pass should last: each candidate runs back to back in one compute pass until about
 * this long (its launch count set from its own time in the calibration round), so the clock's resolution
 * (browsers quantize timestamps to 0.1 ms) and the fixed cost of a pass weigh little, each launch pays its
 * per-dispatch cost as it does inside the recorded step, and a slow candidate does not cost 64 slow launches.
 */
const TARGET_PASS_MS = 2;
/** Most launches of one candidate per pass. */
const MAX_LAUNCHES = 64;

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
}

/** Launches per pass such that a candidate of `ms` per launch runs about TARGET_PASS_MS. */
function launchesFor(ms: number): number {
  if (!(ms > 0)) return MAX_LAUNCHES;
  return Math.max(1, Math.min(MAX_LAUNCHES, Math.round(TARGET_PASS_MS / ms)));
}

/** Record `times` copies of `ds` into one compute pass (with the timestamp writes, when given). */
function encodeRepeated(enc: GPUCommandEncoder, ds: readonly Dispatch[], times: number, timestampWrites?: GPUComputePassTimestampWrites): void {
  const pass = enc.beginComputePass(timestampWrites ? { label: 'conv.tune.pass', timestampWrites } : { label: 'conv.tune.pass' });
  for (let r = 0; r < times; r++) {
    for (const d of ds) {
      pass.setPipeline(d.pipeline);
      pass.setBindGroup(0, d.bindGroup);
      pass.dispatchWorkgroups(d.workgroups[0], d.workgroups[1], d.workgroups[2]);
    }
  }
  pass.end();
}

/**
 * GPU timestamps of one round: each candidate's pass (`times[k]` launches) in `order`, all in one submission;
 * returns each candidate's ms per launch (NaN where the device gave no usable timestamps).
 */
class GpuRoundTimer {
  private readonly querySet: GPUQuerySet;
  private readonly resolve: GPUBuffer;
  private readonly readback: GPUBuffer;

  constructor(
    private readonly ctx: GpuContext,
    private readonly count: number,
  ) {
    const device = ctx.device;
    this.querySet = device.createQuerySet({ type: 'timestamp', count: 2 * count, label: 'conv.tune.timestamps' });
    this.resolve = device.createBuffer({ size: 16 * count, usage: BufferUsage.QUERY_RESOLVE | BufferUsage.COPY_SRC, label: 'conv.tune.resolve' });
    this.readback = device.createBuffer({ size: 16 * count, usage: BufferUsage.MAP_READ | BufferUsage.COPY_DST, label: 'conv.tune.readback' });
  }

  async round(launches: readonly (readonly Dispatch[])[], order: readonly number[], times: readonly number[]): Promise<number[]> {
    const device = this.ctx.device;
    device.pushErrorScope('validation');
    const enc = device.createCommandEncoder({ label: 'conv.tune' });
    for (const k of order) encodeRepeated(enc, launches[k], times[k], { querySet: this.querySet, beginningOfPassWriteIndex: 2 * k, endOfPassWriteIndex: 2 * k + 1 });
    enc.resolveQuerySet(this.querySet, 0, 2 * this.count, this.resolve, 0);
    enc.copyBufferToBuffer(this.resolve, 0, this.readback, 0, 16 * this.count);
    device.queue.submit([enc.finish()]);
    const err = await device.popErrorScope();
    if (err) throw new GpuValidationError('conv.tune', err.message);
    await this.readback.mapAsync(1 /* GPUMapMode.READ */);
    const t = new BigUint64Array(this.readback.getMappedRange().slice(0));
    this.readback.unmap();
    return Array.from({ length: this.count }, (_, k) => {
      const ns = Number(t[2 * k + 1] - t[2 * k]);
      // A zero or backwards interval is no measurement (a quantized clock on a very short pass, or a device whose timestamps are not usable).
      return ns > 0 ? ns / 1e6 / times[k] : NaN;
    });
  }

  destroy(): void {
    this.querySet.destroy();
    this.resolve.destroy();
    this.readback.destroy();
  }
}

/** CPU clock around submit-and-wait, each candidate's pass submitted and awaited on its own; ms per launch. */
async function wallRound(ctx: GpuContext, launches: readonly (readonly Dispatch[])[], order: readonly number[], times: readonly number[]): Promise<number[]> {
  const out = launches.map(() => NaN);
  for (const k of order) {
    const t0 = performance.now();
    ctx.encodeAndSubmit(Array.from({ length: times[k] }, () => launches[k]).flat(), 'conv.tune');
    await ctx.sync('conv.tune');
    out[k] = (performance.now() - t0) / times[k];
  }
  return out;
}

/**
 * Time every candidate for one shape, the median of `repeats` rounds. In each round every candidate runs
 * back to back in one compute pass, as many launches as make about TARGET_PASS_MS (calibrated after the
 * warm-up); the candidates take turns, in an order that rotates every round, so
 * neither a load burst from elsewhere nor the first-after-idle slowness (lavapipe) favours any of them.
 * With GPU timestamps all candidates' passes go in one submission and only GPU time counts; otherwise
 * (or with `timer: 'wall'`) each pass is timed by the CPU's clock from submit to completion.
 */
export async function measureShape(ctx: GpuContext, s: ConvShape, opts: TuneOptions = {}): Promise<TuneRecord> {
  const repeats = Math.max(1, opts.repeats ?? 5);
  const warmup = opts.warmup ?? 1;
  let timer = opts.timer ?? defaultTimer(ctx);
  if (timer === 'gpu' && !ctx.features.has('timestamp-query')) throw new ShapeError('conv.tune', "timer 'gpu': the device's 'timestamp-query' feature", 'present', 'absent');
  const cands = candidatesFor(ctx, s);
  const tensors: Tensor[] = [];
  const launches: Dispatch[][] = [];
  let gpu: GpuRoundTimer | null = null;
  try {
    for (const c of cands) launches.push(encodeCandidate(ctx, s, c, scratchTensors(ctx, s, tensors)));
    // Pipelines are compiled at encode time; the error checks of the encodes come in here.
    await ctx.flush('conv.tune');
    gpu = timer === 'gpu' ? new GpuRoundTimer(ctx, cands.length) : null;
    const round = (order: number[], times: readonly number[]) => (gpu ? gpu.round(launches, order, times) : wallRound(ctx, launches, order, times));
    const rotated = (i: number) => cands.map((_, j) => (i + j) % cands.length);
    // Warm-up rounds of one launch each take the first-use costs; one more round of one launch each sets
    // every candidate's launches per pass.
    const once = cands.map(() => 1);
    for (let i = 0; i < warmup; i++) await round(rotated(i), once);
    let calib = await round(rotated(warmup), once);
    if (gpu && !calib.some((x) => x > 0)) {
      // Timestamps that never advance: measure with the CPU's clock instead.
      gpu.destroy();
      gpu = null;
      timer = 'wall';
      calib = await round(rotated(0), once);
    }
    const times = calib.map(launchesFor);
    const samples: number[][] = cands.map(() => []);
    for (let i = 0; i < repeats; i++) {
      const ms = await round(rotated(i), times);
      ms.forEach((x, k) => {
        if (!Number.isNaN(x)) samples[k].push(x);
      });
    }
    const candidates: Record<string, number> = {};
    let best = -1;
    const ms = samples.map((xs) => (xs.length ? median(xs) : Infinity));
    cands.forEach((c, k) => {
      candidates[choiceLabel(c)] = Math.round(ms[k] * 1e4) / 1e4;
      if (best < 0 || ms[k] < ms[best]) best = k;
    });
    // 'tiled' fits every shape, so there is always a candidate.
    return { ...cands[best], ms: Math.round(ms[best] * 1e4) / 1e4, candidates, timer, launches: times[best] };
  } finally {
    gpu?.destroy();
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
    const key = shapeKey(s.kind, s.g, s.hasBias, s.launch);
    if (!opts.retune && tuning.shapes[key]) continue;
    const r = await measureShape(ctx, s, opts);
    tuning.shapes[key] = r;
    measured++;
    opts.log?.(`${key}: ${choiceLabel(r)} ${r.ms.toFixed(3)} ms (${r.timer} clock, ${r.launches} launches per pass; ${Object.entries(r.candidates).map(([k, v]) => `${k} ${v.toFixed(3)}`).join(', ')})`);
  }
  if (opts.store && measured > 0) await opts.store.save(tuning);
  const table = new Map(tunedChoices(ctx));
  for (const [key, r] of Object.entries(tuning.shapes)) table.set(key, r.subgroups === undefined ? { impl: r.impl } : { impl: r.impl, subgroups: r.subgroups });
  useTunedChoices(ctx, table);
  return tuning;
}
