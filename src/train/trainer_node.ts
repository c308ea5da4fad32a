/**
 * The training loop behind `pix2pix-webgpu train`, `study` and `demo` (Node): epochs over a paired dataset
 * in a seeded order, the reference's preprocessing, atomic checkpoints, a JSONL loss log, one sample
 * translation per epoch, the exact options used, Ctrl-C → save and stop, and an exact resume.
 *
 * Determinism: the data order of epoch e is a shuffle seeded by (seed, e), each pair's crop/flip by
 * (seed, e, i), and the model derives dropout seeds from its step count. A resumed run therefore replays
 * exactly what an uninterrupted one would have done.
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { appendFile, mkdir, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { FileWriteError, fileWriteError, removeStaleTemporaries, writeFileAtomic } from '../io/atomic_node.js';
import { Pix2Pix, NonFiniteLossError, type Pix2PixLosses, type Pix2PixOptions } from '../gan/pix2pix.js';
import { resolvePix2PixOptions } from '../gan/options.js';
import { linkCheckpoint, loadCheckpoint, saveCheckpoint } from '../gan/checkpoint_node.js';
import { writePng } from '../data/image_node.js';
import { createImage, type ImageF32 } from '../data/image.js';
import type { GpuContext } from '../runtime/context.js';
import { DeviceLostError, FileFormatError, Pix2PixError } from '../runtime/errors.js';
import { Rng, mixSeed } from '../runtime/random.js';
import { preprocessPair, type PreprocessOptions } from './preprocess.js';
import { createAugmenter, type AugmentPlan } from '../data/augment.js';
import type { AugmentSpec } from '../data/augment_schema.js';
import type { Tensor } from '../runtime/tensor.js';
import { imagesToTensorData } from '../data/image.js';

/** One training pair, loaded lazily (a file pair, or an in-memory pair). */
export interface PairSource {
  name: string;
  load(): Promise<{ a: ImageF32; b: ImageF32 }>;
}


export interface TrainerOptions {
  /** Folder for checkpoints, the loss log, samples and the options file. */
  out: string;
  model: Pix2PixOptions;
  preprocess: PreprocessOptions;
  /** Save a tagged copy (`<epoch>_net_G...`) every this many epochs; `latest` is saved every epoch (see checkpointSeconds). */
  saveEpochFreq?: number;
  /**
   * Save `latest` at the end of an epoch only once this many seconds have passed since the last save (default 0:
   * every epoch). The last epoch, an epoch with a tagged copy and an interruption always save; a resume starts
   * from the last save, as after a kill. The study sets it: a small trial's epochs take well under a second, and
   * saving each (three files written and synced, ~50 ms) cost more than training some of them.
   */
  checkpointSeconds?: number;
  /** Continue from `out`'s latest checkpoint and train state. */
  resume?: boolean;
  /** Initialise from this checkpoint (folder of ours, or a G file such as the reference's latest_net_G.pth). */
  init?: string | { G: string; D?: string };
  /** Stop (after saving) when aborted, e.g. on Ctrl-C. */
  signal?: AbortSignal;
  /** Called after every step. */
  onStep?: (info: StepInfo) => void;
  /** Called after every epoch, with the epoch's mean losses. */
  onEpoch?: (epoch: number, mean: Pix2PixLosses) => void;
  /** Pair translated into samples/epoch_NNN.png each epoch (default: the first training pair). */
  samplePair?: PairSource;
  /** On-the-fly paired augmentation on the GPU (Albumentations-style spec, see docs/augment-example.json). */
  augment?: { spec: AugmentSpec | object; seed?: number };
  /**
   * Decoded pairs kept in memory between epochs, up to this many bytes (default {@link DEFAULT_PAIR_CACHE_BYTES};
   * 0: none). The demo's 1105 pairs at 64x128 take 145 MB; at 512x1024 each pair takes 8 MB.
   */
  pairCacheBytes?: number;
  /** Stop after this many steps in total (tests; a kill simulation). */
  maxSteps?: number;
  ctx?: GpuContext;
  /** Extra fields recorded in options.json (the CLI's raw flags). */
  recordOptions?: Record<string, unknown>;
  /** Called with what the trainer repaired or cleaned up on its own (a torn log record dropped, stale temporaries removed). */
  onNotice?: (message: string) => void;
}

export interface StepInfo {
  epoch: number;
  iter: number;
  step: number;
  itersPerEpoch: number;
  totalEpochs: number;
  losses: Pix2PixLosses;
  lr: number;
}

export interface TrainResult {
  model: Pix2Pix;
  epochsDone: number;
  steps: number;
  interrupted: boolean;
  lastLosses: Pix2PixLosses | null;
  checkpointDir: string;
  /** What the trainer repaired or cleaned up on its own (also passed to onNotice). */
  notices: string[];
}

interface TrainState {
  /** Epoch in progress (1-based, counting from epochCount) and batches of it already done. */
  epoch: number;
  iter: number;
  step: number;
  finished: boolean;
  /** Folder (relative to the output folder) holding the checkpoint of exactly this state. */
  checkpoint: string;
}

/**
 * Decoding a pair every epoch costs the JavaScript thread (sharp's round trip, float conversion, garbage) time
 * that on a software adapter the kernels want: the demo's network trained ~4% faster on pairs held in memory
 * than on its PNG files (one pair of runs; bench/RESULTS.md).
 */
export const DEFAULT_PAIR_CACHE_BYTES = 256 * 2 ** 20;

const STATE_FILE = 'train_state.json';
const LOG_FILE = 'loss_log.jsonl';
/** Longest a loss record waits in memory before it is appended to the log (ms). */
const LOG_FLUSH_MS = 2000;

/** A file-system call that names the file when it fails (read-only folder, disk full, ...). */
async function writing<T>(path: string, op: () => Promise<T>): Promise<T> {
  try {
    return await op();
  } catch (e) {
    throw fileWriteError(e, path);
  }
}

/**
 * The records of loss_log.jsonl up to `lastStep`. A torn last record (the disk filled, or the process
 * died, mid-write) is dropped and reported; a record that is not JSON anywhere else means the file was
 * damaged otherwise, and stops the resume with its line number rather than guessing.
 */
function readLossLog(path: string, lastStep: number): { kept: string[]; torn: string | null } {
  const text = readFileSync(path, 'utf8');
  const lines = text.split('\n');
  // The last piece after the final newline is either empty (a complete file) or an unterminated record.
  const tail = lines.pop()!;
  let torn: string | null = null;
  const kept: string[] = [];
  const parse = (line: string): { step: number } | null => {
    try {
      const r = JSON.parse(line) as { step?: unknown };
      return r && typeof r === 'object' && typeof r.step === 'number' ? (r as { step: number }) : null;
    } catch {
      return null;
    }
  };
  lines.forEach((line, i) => {
    if (line === '') return;
    const r = parse(line);
    if (!r) {
      // A complete-looking last line that does not parse is the torn record too (torn, then newline-terminated by nothing else).
      if (i === lines.length - 1 && tail === '') {
        torn = line;
        return;
      }
      throw new FileFormatError(path, `line ${i + 1} is not a loss record (${JSON.stringify(line.slice(0, 80))}); the log is damaged before its end: remove that line (or the file) to resume`);
    }
    if (r.step <= lastStep) kept.push(line);
  });
  if (tail !== '') {
    const r = parse(tail);
    if (r) {
      if (r.step <= lastStep) kept.push(tail);
    } else torn = tail;
  }
  return { kept, torn };
}

/** train_state.json, or null when there is none; a damaged one is an error naming the file. */
function readTrainState(path: string): TrainState | null {
  if (!existsSync(path)) return null;
  try {
    const s = JSON.parse(readFileSync(path, 'utf8')) as TrainState;
    if (typeof s.step !== 'number' || typeof s.checkpoint !== 'string') throw new Error('no step or checkpoint field');
    return s;
  } catch (e) {
    throw new FileFormatError(path, `not a training state (${(e as Error).message}); it is written atomically, so it was changed by hand or by another program`);
  }
}

function epochOrder(n: number, seed: number, epoch: number): number[] {
  return new Rng(mixSeed(seed, epoch)).shuffle(Array.from({ length: n }, (_, i) => i));
}


/** Train a pix2pix model on `pairs`. Resolves when all epochs are done, or after saving when aborted. */
export async function trainPix2Pix(pairs: readonly PairSource[], o: TrainerOptions): Promise<TrainResult> {
  if (pairs.length === 0) throw new Pix2PixError('train', 'the training set is empty');
  await writing(join(o.out, 'samples'), () => mkdir(join(o.out, 'samples'), { recursive: true }));
  const notices: string[] = [];
  const notice = (message: string) => {
    notices.push(message);
    o.onNotice?.(message);
  };
  // The model's own ctx option is honoured as well as the trainer's (tests and apps pass one device).
  const ctx = o.ctx ?? o.model.ctx;
  // The model's resolver fills the defaults (and normalises the seed) exactly as Pix2Pix.create will.
  const { batchSize, seed, epochCount, nEpochs, nEpochsDecay } = resolvePix2PixOptions(o.model);
  const itersPerEpoch = Math.floor(pairs.length / batchSize) || 1;
  const totalEpochs = nEpochs + nEpochsDecay;
  const lastEpoch = epochCount + totalEpochs - 1;
  if (pairs.length < batchSize) throw new Pix2PixError('train', `batch size ${batchSize} is larger than the training set (${pairs.length} pairs)`);

  let model: Pix2Pix;
  let state: TrainState = { epoch: epochCount, iter: 0, step: 0, finished: false, checkpoint: '' };
  const statePath = join(o.out, STATE_FILE);
  const logPath = join(o.out, LOG_FILE);
  const committed = readTrainState(statePath);
  await cleanUp(o.out, committed?.checkpoint ?? null, notice);
  /** The step of the newest complete checkpoint set on disk (null before the first save). */
  let savedStep: number | null = o.resume && committed?.checkpoint ? committed.step : null;
  if (o.resume && committed) {
    state = committed;
    // Read the log first: a damaged log stops the resume before any GPU work.
    const log = existsSync(logPath) ? readLossLog(logPath, state.step) : null;
    model = await loadCheckpoint(join(o.out, state.checkpoint), { ...o.model, ctx });
    if (model.steps !== state.step) {
      await model.destroy();
      throw new Pix2PixError('train --resume', `checkpoint in ${join(o.out, state.checkpoint)} is at step ${model.steps} but ${statePath} says ${state.step}`);
    }
    // The top-level latest_* files may be from different saves (a kill while they were refreshed):
    // make them the committed set again before anything else can fail.
    await linkCheckpoint(join(o.out, state.checkpoint), o.out);
    // Drop log lines written after the checkpoint (the run died between save points), and a torn last record.
    if (log) {
      const { kept, torn } = log;
      if (torn !== null) notice(`${logPath}: dropped a torn last record (${torn.length} bytes, written when the disk filled or the run was killed mid-write)`);
      await writeFileAtomic(logPath, new TextEncoder().encode(kept.map((l) => `${l}\n`).join('')));
    }
  } else {
    if (o.init) {
      // A single weights file is a generator (e.g. the reference's latest_net_G.pth); a folder is one of ours.
      const isFile = typeof o.init === 'string' && /\.(pth|pt|safetensors|bin)$/i.test(o.init);
      const src = isFile ? { G: o.init as string } : o.init;
      model = await loadCheckpoint(src, { ...o.model, ctx });
    } else {
      model = await Pix2Pix.create({ ...o.model, ctx });
    }
    await writing(logPath, () => writeFile(logPath, ''));
    await writeFileAtomic(
      join(o.out, 'options.json'),
      new TextEncoder().encode(JSON.stringify({ model: { ...o.model, ctx: undefined }, resolved: model.config, preprocess: o.preprocess, init: o.init ?? null, ...o.recordOptions }, null, 2)),
    );
  }
  if (state.finished) return { model, epochsDone: totalEpochs, steps: state.step, interrupted: false, lastLosses: null, checkpointDir: o.out, notices };

  // A checkpoint is three files, and no set of renames is atomic together, so a kill mid-save could mix
  // steps. Each save therefore goes into a fresh folder `resume/step-N`; writing train_state.json (one
  // atomic rename) is the commit point; only then is the previous folder removed and the top-level
  // latest_* files (for people and `translate`) refreshed. A kill at any moment leaves a complete,
  // consistent checkpoint that train_state.json names. The latest_* and tagged files are hard links to
  // the set's files (copies only where links are impossible): one copy on disk, not two of ~700 MB.
  // That is safe because nothing rewrites a file in place: every save writes new files and renames.
  // Loss records go to the log in batches (one append each), not one file open and close per step. Flushed
  // before every checkpoint (so the log always covers the set a resume starts from; readLossLog drops what lies
  // beyond it), on errors, and at least every LOG_FLUSH_MS for whoever watches the file.
  const logLines: string[] = [];
  let logFlushedAt = Date.now();
  const flushLog = async () => {
    logFlushedAt = Date.now();
    if (logLines.length === 0) return;
    const text = logLines.join('');
    logLines.length = 0;
    await writing(logPath, () => appendFile(logPath, text));
  };
  let savedAt = Date.now();
  const save = async (tag?: string) => {
    savedAt = Date.now();
    await flushLog();
    if (tag) {
      await linkCheckpoint(join(o.out, state.checkpoint), o.out, { toTag: tag });
      return;
    }
    const previous = readTrainState(statePath)?.checkpoint ?? null;
    const folder = join('resume', `step-${state.step}`);
    // The epoch recorded is the one the set resumes into (as train_state.json's).
    await saveCheckpoint(join(o.out, folder), model, { epoch: state.epoch });
    state = { ...state, checkpoint: folder };
    await writeFileAtomic(statePath, new TextEncoder().encode(JSON.stringify(state)));
    savedStep = state.step;
    if (previous && previous !== folder) await writing(join(o.out, previous), () => rm(join(o.out, previous), { recursive: true, force: true }));
    await linkCheckpoint(join(o.out, folder), o.out);
  };
  const checkpointNote = () =>
    savedStep === null
      ? `no checkpoint had been saved yet in ${o.out} (the first is saved at the end of epoch ${epochCount}), so a new run starts from the beginning`
      : `the last checkpoint in ${o.out} (step ${savedStep}) is intact: run again with --resume to continue from it`;
  const sample = o.samplePair ?? pairs[0];
  // GPU augmentation: the batch is uploaded once, warped/recoloured into a second pair of tensors by a
  // plan recorded once per batch shape, and those tensors feed the training step.
  const augmenter = o.augment ? createAugmenter(model.ctx, o.augment.spec, { seed: o.augment.seed ?? seed }) : null;
  let aug: { key: string; inA: Tensor; inB: Tensor; outA: Tensor; outB: Tensor; plan: AugmentPlan } | null = null;
  const releaseAugment = () => {
    if (!aug) return;
    for (const t of [aug.inA, aug.inB, aug.outA, aug.outB]) t.destroy();
    aug.plan.destroy();
    aug = null;
  };
  const augmentBatch = async (as: ImageF32[], bs: ImageF32[], indices: number[], epoch: number) => {
    const A = imagesToTensorData(as);
    const B = imagesToTensorData(bs);
    const key = `${A.shape.join('x')}|${B.shape.join('x')}`;
    if (!aug || aug.key !== key) {
      releaseAugment();
      const out = augmenter!.outputSize(A.shape[2], A.shape[3]);
      const ctx = model.ctx;
      const inA = ctx.tensor(A.shape, undefined, 'augment.inA');
      const inB = ctx.tensor(B.shape, undefined, 'augment.inB');
      const outA = ctx.tensor([A.shape[0], A.shape[1], out.height, out.width], undefined, 'augment.outA');
      const outB = ctx.tensor([B.shape[0], B.shape[1], out.height, out.width], undefined, 'augment.outB');
      aug = { key, inA, inB, outA, outB, plan: augmenter!.plan(inA, inB, outA, outB) };
    }
    aug.inA.write(A.data);
    aug.inB.write(B.data);
    aug.plan.update({ sampleIndex: indices, epoch });
    await model.ctx.run(aug.plan.dispatches, 'train.augment');
    return { a: aug.outA, b: aug.outB };
  };
  let lastLosses: Pix2PixLosses | null = null;
  let interrupted = false;
  // A batch is read and decoded (sharp works off the main thread) while the previous step runs on the GPU, as a
  // DataLoader worker would: the demo's 1105-pair trial went from 41.5 to 44 steps/s (with the batched log).
  // Crops and flips depend only on (seed, epoch, pair), so loading ahead changes nothing in the result.
  // Pairs decoded once stay in memory within the budget (the trainer never writes into a loaded image).
  const pairCache = new Map<number, { a: ImageF32; b: ImageF32 }>();
  let pairCacheFree = o.pairCacheBytes ?? DEFAULT_PAIR_CACHE_BYTES;
  const loadPair = async (i: number) => {
    const hit = pairCache.get(i);
    if (hit) return hit;
    const p = await pairs[i].load();
    const bytes = p.a.data.byteLength + p.b.data.byteLength;
    if (bytes <= pairCacheFree) {
      pairCache.set(i, p);
      pairCacheFree -= bytes;
    }
    return p;
  };
  const loadBatch = async (epoch: number, idx: readonly number[]): Promise<{ as: ImageF32[]; bs: ImageF32[] }> => {
    const loaded = await Promise.all(idx.map(loadPair));
    const ps = loaded.map(({ a, b }, k) => preprocessPair(a, b, o.preprocess, new Rng(mixSeed(mixSeed(seed, epoch), idx[k]))));
    return { as: ps.map((p) => p.a), bs: ps.map((p) => p.b) };
  };

  try {
    outer: for (let epoch = state.epoch; epoch <= lastEpoch; epoch++) {
      model.setEpoch(epoch);
      const order = epochOrder(pairs.length, seed, epoch);
      const sums = { G_GAN: 0, G_L1: 0, D_real: 0, D_fake: 0 };
      let count = 0;
      /** The next iteration's batch, read and decoded while this one trains. */
      let prefetched: Promise<{ as: ImageF32[]; bs: ImageF32[] }> | null = null;
      /**
       * The step submitted last, whose losses are not handled yet. Each step is submitted before the previous
       * one's losses are awaited (Pix2Pix.trainStep returns once a step is queued, and queues it behind the
       * last), so the GPU always has the next step while this thread logs, loads and encodes (on lavapipe's 2
       * cores a loop of the demo's steps went from 20.5-22 to 18-19 ms; bench/RESULTS.md). Results are the same:
       * the device queue keeps the steps' order.
       */
      let inFlight: { losses: Promise<Pix2PixLosses>; iter: number } | null = null;
      const settle = async () => {
        if (!inFlight) return;
        const { losses: pending, iter } = inFlight;
        inFlight = null;
        let losses: Pix2PixLosses;
        try {
          losses = await pending;
        } catch (e) {
          if (e instanceof NonFiniteLossError) {
            // Losses written as numbers (NaN, Infinity), not JSON's null.
            const values = Object.entries(e.losses).map(([k, v]) => `${k} ${String(v)}`).join(', ');
            const kept =
              savedStep === null
                ? `No checkpoint had been saved yet (the run stopped before the end of its first epoch); check the data and options (e.g. a lower --lr)`
                : `The last good checkpoint in ${o.out} (step ${savedStep}) was kept (use --resume after fixing the cause, e.g. a lower --lr)`;
            throw new Pix2PixError('train', `non-finite loss at training step ${state.step + 1} (${values}); stopped at epoch ${epoch}, iteration ${iter}. ${kept}.`);
          }
          throw e;
        }
        state = { ...state, epoch, iter, step: state.step + 1 };
        lastLosses = losses;
        for (const k of Object.keys(sums) as (keyof Pix2PixLosses)[]) sums[k] += losses[k];
        count++;
        const lr = model.lr;
        logLines.push(`${JSON.stringify({ epoch, iter, step: state.step, ...losses, lr })}\n`);
        if (Date.now() - logFlushedAt >= LOG_FLUSH_MS) await flushLog();
        o.onStep?.({ epoch, iter, step: state.step, itersPerEpoch, totalEpochs, losses, lr });
      };
      for (let iter = epoch === state.epoch ? state.iter : 0; iter < itersPerEpoch; iter++) {
        if (o.signal?.aborted || (o.maxSteps !== undefined && state.step + (inFlight ? 1 : 0) >= o.maxSteps)) {
          await settle();
          interrupted = true;
          state = { ...state, epoch, iter };
          await save();
          break outer;
        }
        const idx = order.slice(iter * batchSize, (iter + 1) * batchSize);
        const current = prefetched ?? loadBatch(epoch, idx);
        prefetched = null;
        let loaded: { as: ImageF32[]; bs: ImageF32[] };
        try {
          loaded = await current;
        } catch (e) {
          // The step before this one still counts: log it before the load's error ends the run.
          await settle();
          throw e;
        }
        const { as, bs } = loaded;
        if (iter + 1 < itersPerEpoch) {
          prefetched = loadBatch(epoch, order.slice((iter + 1) * batchSize, (iter + 2) * batchSize));
          // Handled here so that a batch never awaited (the run stopped) is no unhandled rejection; a failure
          // still surfaces from the await above at the step that needs the batch.
          prefetched.catch(() => undefined);
        }
        const batch = augmenter ? await augmentBatch(as, bs, idx, epoch) : { a: as, b: bs };
        const losses = model.trainStep(batch);
        // Awaited by settle(); handled here too, so that a step left behind by an earlier failure is no unhandled rejection.
        losses.catch(() => undefined);
        await settle();
        inFlight = { losses, iter: iter + 1 };
        // The augmented batch lives in tensors the next augmentation overwrites: this step must have copied
        // them before that, so with augmentation a step is finished before the next begins.
        if (augmenter) await settle();
      }
      await settle();
      // End of epoch: sample, checkpoint (latest every epoch; a tagged copy every saveEpochFreq).
      const { a, b } = await sample.load();
      // A fixed crop (seed 0) and no flip, so the samples of successive epochs are comparable.
      const pre = preprocessPair(a, b, { ...o.preprocess, flip: false }, new Rng(0));
      const fake = await model.translate(pre.a, { seed: 1, pad: true });
      const samplePath = join(o.out, 'samples', `epoch_${String(epoch).padStart(3, '0')}.png`);
      await writing(samplePath, () => writePng(samplePath, sideBySide([pre.a, fake, pre.b])));
      state = { ...state, epoch: epoch + 1, iter: 0, finished: epoch === lastEpoch };
      const tagged = !!o.saveEpochFreq && (epoch - epochCount + 1) % o.saveEpochFreq === 0;
      const due = Date.now() - savedAt >= (o.checkpointSeconds ?? 0) * 1000;
      if (epoch === lastEpoch || tagged || due) await save();
      if (tagged) await save(String(epoch));
      if (count) o.onEpoch?.(epoch, { G_GAN: sums.G_GAN / count, G_L1: sums.G_L1 / count, D_real: sums.D_real / count, D_fake: sums.D_fake / count });
    }
  } catch (e) {
    releaseAugment();
    // The records of the steps before the failure (a non-finite loss, a lost device) are worth reading.
    await flushLog().catch(() => undefined);
    // The caller never sees this model: free it (and its device, if it owns one).
    await model.destroy().catch(() => undefined);
    // Say what survived: a lost device or a full disk ends the run, never the last checkpoint set.
    if (e instanceof DeviceLostError) {
      throw new DeviceLostError('train', e.reason, `${e.lostMessage} (in ${e.op}); ${checkpointNote()}`);
    }
    if (e instanceof FileWriteError) throw new FileWriteError(e.file, e.code, e.reason, checkpointNote());
    throw e;
  }
  releaseAugment();
  return { model, epochsDone: Math.min(state.epoch - epochCount, totalEpochs), steps: state.step, interrupted, lastLosses, checkpointDir: o.out, notices };
}

/**
 * Remove what a killed run can leave behind: temporaries of interrupted atomic writes (in the output
 * folder and the checkpoint sets) and checkpoint-set folders that were never committed (a kill after
 * writing resume/step-N but before train_state.json named it). The committed set is never touched.
 */
async function cleanUp(out: string, committedFolder: string | null, notice: (m: string) => void): Promise<void> {
  const resumeDir = join(out, 'resume');
  const removed: string[] = (await removeStaleTemporaries(out)).map((f) => join(out, f));
  if (existsSync(resumeDir)) {
    for (const name of readdirSync(resumeDir)) {
      const rel = join('resume', name);
      if (/^step-\d+$/.test(name) && rel !== committedFolder) {
        await writing(join(out, rel), () => rm(join(out, rel), { recursive: true, force: true }));
        removed.push(join(out, rel));
      } else removed.push(...(await removeStaleTemporaries(join(out, rel))).map((f) => join(out, rel, f)));
    }
  }
  if (removed.length) notice(`removed ${removed.length} leftover(s) of an interrupted run: ${removed.join(', ')}`);
}

/** Images of equal height side by side, gray tiled to RGB where the others are RGB. */
export function sideBySide(images: readonly ImageF32[]): ImageF32 {
  const h = images[0].height;
  const c = images.some((im) => im.channels === 3) ? 3 : 1;
  const w = images.reduce((s, im) => s + im.width, 0);
  const out = createImage(w, h, c);
  let x0 = 0;
  for (const im of images) {
    for (let ch = 0; ch < c; ch++) {
      const src = Math.min(ch, im.channels - 1);
      for (let y = 0; y < Math.min(h, im.height); y++) {
        for (let x = 0; x < im.width; x++) out.data[ch * w * h + y * w + x0 + x] = im.data[src * im.width * im.height + y * im.width + x];
      }
    }
    x0 += im.width;
  }
  return out;
}
