/**
 * The seed paper's experiments as one resumable run (`pix2pix-webgpu study --config FILE`):
 *   size      N real training pairs, for several N (nested subsets, so a larger N adds pairs);
 *   augment   N real pairs expanded offline ×(1 + k), or to an exact total, with an Albumentations-style spec;
 *   transfer  pretrain on one subset (e.g. white beds), then fine-tune on another (black beds).
 * Every trial trains, translates the held-out animals' photos, and scores them with all metrics and
 * WAEM. Each trial lives in its own folder with a `result.json` written last, so an interrupted study
 * resumes where it stopped. Trials are independent: separate processes (a loop over all trials, `--trial NAME`
 * or `--trial-index I` from a job array) can share one study folder; an exclusive claim file in each trial's
 * folder makes sure no two run the same trial at once.
 */
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, readFileSync, readdirSync, statSync } from 'node:fs';
import { copyFile, mkdir, open, readFile, readdir, rename, rm, stat, unlink, utimes } from 'node:fs/promises';
import { hostname } from 'node:os';
import { basename, extname, join, resolve } from 'node:path';
import type { Pix2PixOptions } from '../gan/pix2pix.js';
import { trainPix2Pix } from '../train/trainer_node.js';
import { preprocessPair } from '../train/preprocess.js';
import { writeFileAtomic } from '../io/atomic_node.js';
import { BackgroundTasks, loadAhead } from '../io/load_ahead.js';
import { openPairs, type OpenedPair } from '../train/pair_sources_node.js';
import { encodePng } from '../data/image_node.js';
import { createImage, type ImageF32 } from '../data/image.js';
import { Rng } from '../runtime/random.js';
import { DeviceLostError, Pix2PixError } from '../runtime/errors.js';
import type { GpuContext } from '../runtime/context.js';
import { waem, type WaemWeights } from '../metrics/waem.js';
import { EVALUATION_DEFAULTS } from '../metrics/defaults.js';
import { PIX2PIX_DEFAULTS } from '../gan/options.js';
import bundledAugmentSpec from '../../docs/augment-example.json';
import { pickGridRows, renderReport, type GridRowInfo, type LossRecord, type StudyReport, type TestSetSummary, type TrialReport, type MetricMeans } from './report.js';
import {
  DEFAULT_AUGMENT_COPIES,
  DEFAULT_PREPROCESS,
  configDifferences,
  evaluationPart,
  pairsPerEpoch,
  planStudy,
  trainStepMacs,
  trainingPart,
  validateStudyConfig,
  type ResolvedTrialConfig,
  type StudyConfig,
  type StudyPlan,
  type TrialConfig,
  type TrialSettings,
} from './study_config.js';

export type { StudyConfig, TrialConfig, ResolvedTrialConfig, TrialSettings, StudyPlan, TrialPlan, StudyEstimate } from './study_config.js';
export { planStudy, formatPlan, configDifferences, trainStepMacs } from './study_config.js';

/** One finished trial: its metrics, losses and sample grid (as in results.json), with the settings behind them. */
export interface TrialResult extends TrialReport {
  /** The full record of what produced this row (compared on resume; see ResolvedTrialConfig). */
  config?: ResolvedTrialConfig;
  /** The same, flat and short, for tables and the report. */
  settings?: TrialSettings;
  perImage?: unknown[];
  warnings?: string[];
}

const encoder = new TextEncoder();
const writeJson = (path: string, v: unknown, pretty = false) => writeFileAtomic(path, encoder.encode(JSON.stringify(v, null, pretty ? 2 : undefined)));

/**
 * Read a study config. Every path in it ("data", "evaluate.fidWeights", a trial's "spec") is relative to the
 * config file, wherever the command runs from; `dataOverride` (the CLI's --data) is taken as given.
 */
export function loadStudyConfig(path: string, o: { dataOverride?: string } = {}): StudyConfig {
  let cfg: StudyConfig;
  try {
    cfg = JSON.parse(readFileSync(path, 'utf8')) as StudyConfig;
  } catch (e) {
    throw new Pix2PixError(path, `cannot read the study config: ${(e as Error).message}`);
  }
  if (o.dataOverride && cfg && typeof cfg === 'object') cfg.data = resolve(o.dataOverride);
  validateStudyConfig(cfg, path);
  const base = resolve(path, '..');
  cfg.data = resolve(base, cfg.data);
  if (cfg.evaluate?.fidWeights) cfg.evaluate.fidWeights = resolve(base, cfg.evaluate.fidWeights);
  for (const t of cfg.trials) {
    if (!t.spec) continue;
    t.spec = resolve(base, t.spec);
    if (!existsSync(t.spec)) throw new Pix2PixError(path, `trial '${t.name}': augmentation spec ${t.spec} not found (paths are relative to the config file)`);
  }
  return cfg;
}

/** Options of {@link runStudy}. */
export interface StudyRunOptions {
  /** The study folder: trials/NAME/ per trial, then results.json, results.csv and report.html. Shared by workers. */
  out: string;
  /** The GPU context every trial trains and is scored on (`createContext()`; the caller destroys it). */
  ctx: GpuContext;
  /** Run only these trials; default all. */
  only?: string[];
  /** Progress lines (trial started, resumed, reused, failed, skipped). */
  onLog?: (line: string) => void;
  /** After each training step of a trial: its step number and the trial's total steps. */
  onStep?: (trial: string, step: number, total: number) => void;
  /** Stops the run before the next training step: the trial saves a checkpoint and runStudy throws (a later run resumes it). */
  signal?: AbortSignal;
  /** A claim whose heartbeat is older than this is taken over (default 600 s; the holder refreshes it every 30 s). */
  staleClaimSeconds?: number;
  /**
   * More GPU contexts (each its own device: another `createContext()`; the caller destroys them). Each runs
   * trials beside `ctx`'s, the costliest first, so a study whose trials differ in size can finish when its
   * largest does, where one trial leaves the adapter partly idle. On lavapipe with 2 cores it did not: the
   * lanes shared the cores (the demo, 19 epochs: 10 min 16 s against 10 min 32 s one at a time, within the
   * run-to-run spread). Results do not depend on the context a trial ran on.
   */
  moreContexts?: GpuContext[];
}

async function readLosses(dir: string): Promise<LossRecord[]> {
  const p = join(dir, 'loss_log.jsonl');
  if (!existsSync(p)) return [];
  return (await readFile(p, 'utf8'))
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l) as LossRecord);
}

async function dataUrl(im: ImageF32): Promise<string> {
  return `data:image/png;base64,${Buffer.from(await encodePng(im)).toString('base64')}`;
}

const sha256 = (data: string | Uint8Array) => createHash('sha256').update(data).digest('hex');

const dataHashCache = new Map<string, { manifestHash: string; filesHash: string }>();

/** Hashes that change when the dataset does: its manifest, and the names and sizes of its images. */
export function datasetHashes(dir: string): { manifestHash: string; filesHash: string } {
  const cached = dataHashCache.get(dir);
  if (cached) return cached;
  const manifest = ['manifest.json', 'manifest.csv'].map((n) => join(dir, n)).find((p) => existsSync(p));
  const listing: string[] = [];
  for (const sub of ['train', 'test', '']) {
    const d = join(dir, sub);
    if (!existsSync(d) || !statSync(d).isDirectory()) continue;
    for (const n of readdirSync(d).sort()) {
      const s = statSync(join(d, n));
      if (s.isFile()) listing.push(`${sub}/${n}\t${s.size}`);
    }
  }
  const h = { manifestHash: manifest ? sha256(readFileSync(manifest)) : '', filesHash: sha256(listing.join('\n')) };
  dataHashCache.set(dir, h);
  return h;
}

function augmentSpecText(trial: TrialConfig): { source: string; text: string } {
  if (trial.spec) return { source: trial.spec, text: readFileSync(trial.spec, 'utf8') };
  return { source: 'bundled docs/augment-example.json', text: JSON.stringify(bundledAugmentSpec) };
}

/** The record of everything that decides one trial's weights and scores (see ResolvedTrialConfig). */
export function resolveTrialConfig(cfg: StudyConfig, trial: TrialConfig): ResolvedTrialConfig {
  const { ctx: _c, device: _d, ...model } = cfg.model;
  const ev = cfg.evaluate ?? {};
  const r: ResolvedTrialConfig = {
    version: 1,
    trial: JSON.parse(JSON.stringify(trial)) as TrialConfig,
    model: JSON.parse(JSON.stringify(model)) as ResolvedTrialConfig['model'],
    train: { nEpochs: cfg.train.nEpochs, nEpochsDecay: cfg.train.nEpochsDecay, batchSize: cfg.train.batchSize ?? PIX2PIX_DEFAULTS.batchSize, seed: trial.seed ?? cfg.train.seed ?? PIX2PIX_DEFAULTS.seed, preprocess: cfg.train.preprocess ?? DEFAULT_PREPROCESS },
    evaluate: JSON.parse(JSON.stringify({ ...ev, ssimMode: ev.ssimMode ?? EVALUATION_DEFAULTS.ssimMode, gridImages: ev.gridImages ?? EVALUATION_DEFAULTS.gridImages })) as ResolvedTrialConfig['evaluate'],
    data: { path: cfg.data, ...datasetHashes(cfg.data) },
  };
  if (trial.kind === 'augment') {
    const s = augmentSpecText(trial);
    r.augmentSpec = { source: s.source, hash: sha256(s.text) };
  }
  return r;
}

// ---------------------------------------------------------------------------------------------------------
// Claims: one worker per trial at a time.
//
// A worker that wants a trial creates trials/NAME/claim.json with O_EXCL (atomic on local filesystems and on
// NFSv3+), holding {token, host, pid, startedAt}. It refreshes the file's mtime every 30 s while it works and
// deletes it when the trial finishes or fails. Another worker finding a claim skips the trial unless the claim
// is stale: its heartbeat is older than staleClaimSeconds, or it names this host and a pid that no longer
// exists. A stale claim is moved aside by rename (only one worker's rename can succeed) and the trial claimed
// afresh; the interrupted trial then resumes from its last checkpoint.
// ---------------------------------------------------------------------------------------------------------

/** Who holds a trial (its folder's claim.json): the worker's host and process, and since when. */
export interface ClaimInfo {
  token: string;
  host: string;
  pid: number;
  startedAt: string;
}

const CLAIM_FILE = 'claim.json';
const HEARTBEAT_MS = 30_000;

function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

async function readClaim(path: string): Promise<{ info: ClaimInfo | null; ageSeconds: number } | null> {
  try {
    const [text, s] = await Promise.all([readFile(path, 'utf8'), stat(path)]);
    let info: ClaimInfo | null = null;
    try {
      info = JSON.parse(text) as ClaimInfo;
    } catch {
      // A claim being written this instant, or a torn one: judged by its age alone.
    }
    return { info, ageSeconds: (Date.now() - s.mtimeMs) / 1000 };
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw e;
  }
}

export interface Claim {
  info: ClaimInfo;
  release(): Promise<void>;
}

/** Claim a trial folder, or return who holds it. */
export async function claimTrial(dir: string, o: { staleClaimSeconds?: number; onLog?: (l: string) => void; label?: string } = {}): Promise<Claim | { heldBy: ClaimInfo | null }> {
  await mkdir(dir, { recursive: true });
  const path = join(dir, CLAIM_FILE);
  const info: ClaimInfo = { token: randomBytes(8).toString('hex'), host: hostname(), pid: process.pid, startedAt: new Date().toISOString() };
  const staleAfter = o.staleClaimSeconds ?? 600;
  for (let attempt = 0; attempt < 3; attempt++) {
    try {
      const h = await open(path, 'wx', 0o644);
      try {
        await h.writeFile(JSON.stringify(info));
        await h.sync();
      } finally {
        await h.close();
      }
      const timer = setInterval(() => {
        const now = new Date();
        utimes(path, now, now).catch(() => undefined);
      }, HEARTBEAT_MS);
      timer.unref();
      let released = false;
      return {
        info,
        release: async () => {
          if (released) return;
          released = true;
          clearInterval(timer);
          // Remove only our own claim (a worker that judged ours stale may hold the file now).
          const cur = await readClaim(path);
          if (cur?.info?.token === info.token) await unlink(path).catch(() => undefined);
        },
      };
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
    }
    const held = await readClaim(path);
    if (!held) continue; // released between our create and read: try again
    const deadHere = held.info && held.info.host === info.host && held.info.pid !== process.pid && !pidAlive(held.info.pid);
    if (!deadHere && held.ageSeconds <= staleAfter) return { heldBy: held.info };
    // Stale: move it aside (atomic; a second worker's rename then fails with ENOENT and it retries).
    const aside = join(dir, `claim.stale.${info.token}.json`);
    try {
      await rename(path, aside);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') continue;
      throw e;
    }
    const moved = await readClaim(aside);
    if (moved?.info?.token !== held.info?.token && moved?.info) {
      // Between our read and the rename, someone else replaced the stale claim with a live one: give it back.
      await rename(aside, path).catch(() => undefined);
      return { heldBy: moved.info };
    }
    await unlink(aside).catch(() => undefined);
    o.onLog?.(
      `[${o.label ?? basename(dir)}] taking over a stale claim (${held.info ? `${held.info.host} pid ${held.info.pid} since ${held.info.startedAt}` : 'unreadable'}, ${deadHere ? 'process gone' : `no heartbeat for ${held.ageSeconds.toFixed(0)} s`})`,
    );
  }
  const held = await readClaim(path);
  return { heldBy: held?.info ?? null };
}

// ---------------------------------------------------------------------------------------------------------

export type TrialOutcome =
  | { status: 'reused'; result: TrialResult }
  | { status: 'ran'; result: TrialResult }
  | { status: 'claimed'; heldBy: ClaimInfo | null };

function readJsonIfExists<T>(path: string): T | null {
  if (!existsSync(path)) return null;
  try {
    return JSON.parse(readFileSync(path, 'utf8')) as T;
  } catch {
    return null;
  }
}

/** The finished result of a trial, if it exists and was produced by exactly `resolved`. */
function matchingResult(dir: string, resolved: ResolvedTrialConfig): TrialResult | null {
  const r = readJsonIfExists<TrialResult>(join(dir, 'result.json'));
  if (!r?.config) return null;
  return configDifferences(trainingPart(r.config), trainingPart(resolved)).length === 0 && configDifferences(evaluationPart(r.config), evaluationPart(resolved)).length === 0 ? r : null;
}

/**
 * Bring a trial folder in line with `resolved` before running: a record from other training settings (finished
 * or not) is removed with its checkpoints; one that differs only in evaluation keeps its weights and is
 * re-scored. Says what changed.
 */
async function discardStale(dir: string, trial: TrialConfig, resolved: ResolvedTrialConfig, log?: (l: string) => void): Promise<void> {
  const recorded = readJsonIfExists<TrialResult>(join(dir, 'result.json'))?.config ?? readJsonIfExists<{ config: ResolvedTrialConfig }>(join(dir, 'trial.json'))?.config;
  const hasWork = existsSync(join(dir, 'checkpoints')) || existsSync(join(dir, 'result.json')) || existsSync(join(dir, 'pretrain')) || existsSync(join(dir, 'data'));
  if (!hasWork) return;
  const trainDiff = recorded ? configDifferences(trainingPart(recorded), trainingPart(resolved)) : ['no record of its settings (written by an older version)'];
  if (trainDiff.length > 0) {
    log?.(`[${trial.name}] re-running from scratch: its earlier run used other settings (${trainDiff.join('; ')})`);
    for (const n of await readdir(dir)) if (n !== CLAIM_FILE) await rm(join(dir, n), { recursive: true, force: true });
    return;
  }
  const evalDiff = configDifferences(evaluationPart(recorded!), evaluationPart(resolved));
  if (evalDiff.length > 0 && existsSync(join(dir, 'result.json'))) {
    log?.(`[${trial.name}] re-evaluating its trained weights: evaluation settings changed (${evalDiff.join('; ')})`);
    for (const n of ['result.json', 'metrics.json', 'translations']) await rm(join(dir, n), { recursive: true, force: true });
  }
}

/**
 * Train (or resume) and evaluate one trial, unless its result already matches the current settings or another
 * worker holds it. The returned outcome says which.
 */
export async function runTrial(cfg: StudyConfig, trial: TrialConfig, o: StudyRunOptions): Promise<TrialOutcome> {
  const dir = join(o.out, 'trials', trial.name);
  const resolved = resolveTrialConfig(cfg, trial);
  const done = matchingResult(dir, resolved);
  if (done) return { status: 'reused', result: done };
  const claim = await claimTrial(dir, { staleClaimSeconds: o.staleClaimSeconds, onLog: o.onLog, label: trial.name });
  if ('heldBy' in claim) return { status: 'claimed', heldBy: claim.heldBy };
  try {
    // Another worker may have finished it between our check and our claim.
    const finished = matchingResult(dir, resolved);
    if (finished) return { status: 'reused', result: finished };
    await discardStale(dir, trial, resolved, o.onLog);
    await writeJson(join(dir, 'trial.json'), { config: resolved, claim: claim.info }, true);
    return { status: 'ran', result: await trainAndEvaluate(cfg, trial, resolved, dir, o) };
  } finally {
    await claim.release();
  }
}

/**
 * A trial's training saves its resumable checkpoint at the end of an epoch once this many seconds have passed
 * since the last (and always at its end, and when stopped): a killed study loses at most this much of a
 * trial, and the small trials' sub-second epochs do not each pay ~50 ms of synced writes.
 */
const STUDY_CHECKPOINT_SECONDS = 30;

async function trainAndEvaluate(cfg: StudyConfig, trial: TrialConfig, resolved: ResolvedTrialConfig, dir: string, o: StudyRunOptions): Promise<TrialResult> {
  const resultPath = join(dir, 'result.json');
  const started = Date.now();
  const { seed, batchSize, preprocess } = resolved.train;
  const channels = { inputChannels: (cfg.model.inputChannels ?? 3) as 1 | 3, outputChannels: (cfg.model.outputChannels ?? 3) as 1 | 3 };
  const model: Pix2PixOptions = { ...cfg.model, nEpochs: cfg.train.nEpochs, nEpochsDecay: cfg.train.nEpochsDecay, batchSize, seed, ctx: o.ctx };
  let pairs: OpenedPair[] = await openPairs(cfg.data, { phase: 'train', ...channels, filter: trial.filter, maxPairs: trial.trainPairs, seed });
  let init: string | undefined;
  let pretrainSteps = 0;

  if (trial.kind === 'augment') {
    // Offline expansion as the seed did (823 → 5175): copy the subset, write augmented copies.
    const { expandDataset } = await import('../data/augment_node.js');
    const subsetDir = join(dir, 'data', 'subset');
    const expandedDir = join(dir, 'data', 'expanded');
    if (!existsSync(join(dir, 'data', 'expanded.done'))) {
      await rm(join(dir, 'data'), { recursive: true, force: true });
      await mkdir(subsetDir, { recursive: true });
      for (const p of pairs) {
        if (!p.path) throw new Pix2PixError(`trial ${trial.name}`, 'offline augmentation needs the aligned A|B format');
        await copyFile(p.path, join(subsetDir, basename(p.path)));
      }
      const amount = trial.total !== undefined ? { total: trial.total } : { copies: trial.copies ?? DEFAULT_AUGMENT_COPIES };
      await expandDataset({ inDir: subsetDir, outDir: expandedDir, ...amount, spec: augmentSpecText(trial).text, seed, ctx: o.ctx });
      await writeFileAtomic(join(dir, 'data', 'expanded.done'), new Uint8Array());
    }
    pairs = await openPairs(expandedDir, { phase: null, ...channels, seed });
    if (pairs.length !== pairsPerEpoch(trial)) throw new Pix2PixError(`trial ${trial.name}`, `expanded to ${pairs.length} pairs, expected ${pairsPerEpoch(trial)}`);
  } else if (trial.kind === 'transfer') {
    const pre = trial.pretrain!;
    const preDir = join(dir, 'pretrain');
    const prePairs = await openPairs(cfg.data, { phase: 'train', ...channels, filter: pre.filter, maxPairs: pre.trainPairs, seed });
    o.onLog?.(`[${trial.name}] pretraining on ${prePairs.length} pairs`);
    const r = await trainPix2Pix(prePairs, {
      out: preDir,
      model: { ...model, nEpochs: pre.nEpochs ?? cfg.train.nEpochs, nEpochsDecay: pre.nEpochsDecay ?? cfg.train.nEpochsDecay },
      preprocess,
      resume: true,
      checkpointSeconds: STUDY_CHECKPOINT_SECONDS,
      signal: o.signal,
      onStep: (s) => o.onStep?.(`${trial.name}/pretrain`, s.step, s.totalEpochs * s.itersPerEpoch),
    });
    pretrainSteps = r.steps;
    r.model.destroy();
    if (r.interrupted) throw new Pix2PixError(`trial ${trial.name}`, 'interrupted during pretraining (run the study again to resume)');
    init = preDir;
  }

  o.onLog?.(`[${trial.name}] training on ${pairs.length} pairs${trial.kind === 'augment' ? ` (${trial.trainPairs} real)` : ''}`);
  const trained = await trainPix2Pix(pairs, {
    out: join(dir, 'checkpoints'),
    model: { ...model, freeze: trial.freezeEncoder ? { encoderLevels: trial.freezeEncoder } : undefined },
    preprocess,
    resume: true,
    checkpointSeconds: STUDY_CHECKPOINT_SECONDS,
    init,
    signal: o.signal,
    onStep: (s) => o.onStep?.(trial.name, s.step, s.totalEpochs * s.itersPerEpoch),
  });
  if (trained.interrupted) {
    trained.model.destroy();
    throw new Pix2PixError(`trial ${trial.name}`, 'interrupted (run the study again to resume)');
  }
  const trainedAt = Date.now();
  const first = await pairs[0].load();
  const shaped = preprocessPair(first.a, first.b, { ...preprocess, flip: false }, new Rng(0));
  const mc = trained.model.config;

  // Translate the held-out animals' photos; ground truth goes to a shared folder once (atomically: workers
  // running other trials at the same time write the same files).
  const test = await openPairs(cfg.data, { phase: 'test', ...channels, maxPairs: cfg.evaluate?.maxTestImages, seed: 0, ordered: true });
  // One ground-truth folder per dataset (by its files' hash): a study folder re-run on other data must not
  // score against the old data's X-rays.
  const realDir = join(o.out, 'test_real', resolved.data.filesHash.slice(0, 12));
  const fakeDir = join(dir, 'translations');
  await mkdir(realDir, { recursive: true });
  await mkdir(fakeDir, { recursive: true });
  const samples: string[] = [];
  const gridN = resolved.evaluate.gridImages;
  // The next photos are read and the last translations encoded and written while the GPU translates
  // (io/load_ahead.ts): one at a time, the 145 test photos took ~2.1 s a trial on the 2-core machine.
  const writes = new BackgroundTasks(8);
  let i = 0;
  for await (const { a, b } of loadAhead(test, (p) => p.load(), 4)) {
    const fake = await trained.model.translate(a, { seed: 0, pad: true });
    // Entry names are paths inside the dataset (test/m006_p0.png): keep the file's own name.
    const name = `${basename(test[i].name, extname(test[i].name))}.png`;
    await writes.add(async () => {
      await writeFileAtomic(join(fakeDir, name), await encodePng(fake));
      if (!existsSync(join(realDir, name))) await writeFileAtomic(join(realDir, name), await encodePng(b));
    });
    if (i < gridN) samples.push(await dataUrl(fake));
    i++;
  }
  await writes.settle();
  trained.model.destroy();
  const translatedAt = Date.now();

  const { evaluateFolders } = await import('../metrics/evaluate_node.js');
  const extractor = cfg.evaluate?.fidWeights ? await (await import('../metrics/inception_node.js')).createInceptionExtractor(o.ctx, cfg.evaluate.fidWeights) : undefined;
  const waemWeights = cfg.evaluate?.waemWeights as WaemWeights | undefined;
  const ev = await evaluateFolders({ real: realDir, fake: fakeDir, ssimMode: resolved.evaluate.ssimMode, fidExtractor: extractor, ctx: o.ctx, waemWeights });
  // Without FID weights WAEM would be missing from Figure 2; score it with the FID term dropped
  // (1/FID → 0) and say so in the report.
  const mean = { ...ev.mean } as MetricMeans;
  if (mean.waem === undefined) mean.waem = waem({ mse: mean.mse, nrmse: mean.nrmse, psnr: mean.psnr, ssim: mean.ssim, fid: Infinity }, waemWeights);
  extractor?.destroy();
  // Phantoms (a synth manifest) know their bones: score skeleton recovery beside the five metrics.
  const { isPhantomDataset, skeletonRecoveryFolder } = await import('../metrics/skeleton_node.js');
  if (isPhantomDataset(cfg.data)) mean.skeleton = (await skeletonRecoveryFolder({ data: cfg.data, fake: fakeDir, real: realDir, files: await readdir(fakeDir) })).mean;
  const secs = (from: number, to: number) => `${((to - from) / 1000).toFixed(1)} s`;
  o.onLog?.(`[${trial.name}] trained in ${secs(started, trainedAt)}, translated ${test.length} test photos in ${secs(trainedAt, translatedAt)}, scored in ${secs(translatedAt, Date.now())}`);
  const settings: TrialSettings = {
    imageSize: `${shaped.a.height}x${shaped.a.width}`,
    numDowns: mc.generator.numDowns,
    ngf: mc.generator.ngf,
    ndf: mc.discriminator?.ndf ?? 0,
    nLayersD: mc.discriminator?.nLayers ?? 0,
    norm: mc.generator.norm,
    dropout: mc.generator.dropout,
    lr: mc.lr,
    lambdaL1: mc.lambdaL1,
    batchSize: mc.batchSize,
    seed: mc.seed,
    nEpochs: mc.nEpochs,
    nEpochsDecay: mc.nEpochsDecay,
    steps: pretrainSteps + trained.steps,
    realPairs: trial.trainPairs,
    pairsPerEpoch: pairs.length,
    ...(trial.kind === 'augment' ? { augment: trial.total !== undefined ? { total: trial.total } : { copies: trial.copies ?? DEFAULT_AUGMENT_COPIES } } : {}),
    ...(trial.pretrain
      ? { pretrain: { pairs: trial.pretrain.trainPairs, ...(trial.pretrain.filter ? { filter: trial.pretrain.filter } : {}), epochs: (trial.pretrain.nEpochs ?? cfg.train.nEpochs) + (trial.pretrain.nEpochsDecay ?? cfg.train.nEpochsDecay) } }
      : {}),
    ...(trial.filter ? { filter: trial.filter } : {}),
    ...(trial.freezeEncoder ? { freezeEncoder: trial.freezeEncoder } : {}),
    manifestHash: resolved.data.manifestHash.slice(0, 12),
  };
  const result: TrialResult = {
    name: trial.name,
    kind: trial.kind,
    trainPairs: trial.trainPairs,
    effectivePairs: pairs.length,
    metrics: mean,
    losses: await readLosses(join(dir, 'checkpoints')),
    samples,
    seconds: (Date.now() - started) / 1000,
    settings,
    config: resolved,
    perImage: ev.perImage,
    warnings: ev.warnings,
  };
  await writeJson(join(dir, 'metrics.json'), { n: ev.n, mean, perImage: ev.perImage, warnings: ev.warnings }, true);
  await writeJson(resultPath, result);
  return result;
}

/** What {@link runStudy} did, and the results of every finished trial of the study (this worker's and others'). */
export interface StudyRunSummary {
  results: TrialResult[];
  /** report.html in the study folder. */
  reportPath: string;
  /** Trials this process trained (or re-scored), reused as they were, or left to the workers holding them. */
  ran: string[];
  reused: string[];
  claimedElsewhere: { name: string; heldBy: ClaimInfo | null }[];
}

/**
 * Trials of a study run failed; the worker went on with the others, wrote the outputs of every finished trial,
 * and then threw this. `failures` holds each failed trial's error; `summary` what the run did otherwise.
 */
export class StudyTrialsFailedError extends Pix2PixError {
  constructor(
    readonly failures: { name: string; error: unknown }[],
    readonly summary: StudyRunSummary,
  ) {
    const each = failures.map(({ name, error }) => `'${name}' (${error instanceof Error ? error.message : String(error)})`);
    super('study', `${failures.length} trial(s) failed: ${each.join('; ')}; the other trials went on (report: ${summary.reportPath}); run the study again to retry the failed ones`);
  }
}

/**
 * Run (or resume) the study — as one worker among any number sharing `out` — and write results.json, results.csv
 * and report.html from every trial finished so far. Trials held by other workers are skipped and listed. A trial
 * that fails is recorded (its claim released, so any worker may retry it) and the worker goes on with the
 * remaining trials; at the end it throws {@link StudyTrialsFailedError} naming them. A stop asked for (`signal`)
 * or a lost GPU device ends the run at once: no later trial could run either.
 */
export async function runStudy(cfg: StudyConfig, o: StudyRunOptions): Promise<StudyRunSummary> {
  // A config built in code has not been through loadStudyConfig: refuse a malformed one before any folder is made.
  validateStudyConfig(cfg, 'runStudy');
  await mkdir(o.out, { recursive: true });
  for (const name of o.only ?? []) if (!cfg.trials.some((t) => t.name === name)) throw new Pix2PixError('study', `no trial named '${name}' (trials: ${cfg.trials.map((t) => t.name).join(', ')})`);
  const todo = cfg.trials.filter((t) => !o.only || o.only.includes(t.name));
  const summary = { ran: [] as string[], reused: [] as string[], claimedElsewhere: [] as { name: string; heldBy: ClaimInfo | null }[] };
  const failures: { name: string; error: unknown }[] = [];
  const contexts = [o.ctx, ...(o.moreContexts ?? [])];
  // With several contexts, the costliest trial first (longest-processing-time order): the others fit beside it.
  const steps = new Map(planStudy(cfg).trials.map((p) => [p.name, p.totalSteps]));
  const queue = contexts.length > 1 ? [...todo].sort((a, b) => steps.get(b.name)! - steps.get(a.name)!) : [...todo];
  // A fatal error (abort, device loss) in one lane stops the others at their next step; they save and end.
  const stop = new AbortController();
  const signal = o.signal ? AbortSignal.any([o.signal, stop.signal]) : stop.signal;
  let fatal: { error: unknown } | null = null;
  const lane = async (ctx: GpuContext) => {
    for (let t = queue.shift(); t && !fatal; t = queue.shift()) {
      let r: TrialOutcome;
      try {
        r = await runTrial(cfg, t, { ...o, ctx, signal });
      } catch (e) {
        if (fatal) return; // stopped because another lane failed: that error is the one reported
        if (o.signal?.aborted || e instanceof DeviceLostError) {
          fatal = { error: e };
          stop.abort();
          return;
        }
        failures.push({ name: t.name, error: e });
        o.onLog?.(`[${t.name}] failed: ${e instanceof Error ? e.message : String(e)}; going on with the remaining trials`);
        continue;
      }
      if (r.status === 'ran') summary.ran.push(t.name);
      else if (r.status === 'reused') summary.reused.push(t.name);
      else {
        summary.claimedElsewhere.push({ name: t.name, heldBy: r.heldBy });
        o.onLog?.(`[${t.name}] skipped: running in another worker (${r.heldBy ? `${r.heldBy.host} pid ${r.heldBy.pid} since ${r.heldBy.startedAt}` : 'claim unreadable'})`);
      }
    }
  };
  await Promise.all(contexts.map(lane));
  if (fatal) throw (fatal as { error: unknown }).error;
  const out = await writeStudyOutputs(cfg, o);
  if (failures.length > 0) throw new StudyTrialsFailedError(failures, { ...out, ...summary });
  return { ...out, ...summary };
}

/** The trial a job-array task runs: a number, or 'env' for SLURM_ARRAY_TASK_ID / JOB_COMPLETION_INDEX / PIX2PIX_TRIAL_INDEX. */
export function resolveTrialIndex(spec: string, trials: number, env: NodeJS.ProcessEnv = process.env): number {
  const VARS = ['SLURM_ARRAY_TASK_ID', 'JOB_COMPLETION_INDEX', 'PIX2PIX_TRIAL_INDEX'];
  let raw = spec;
  let from = '--trial-index';
  if (spec === 'env') {
    const v = VARS.find((k) => env[k] !== undefined && env[k] !== '');
    if (!v) throw new Pix2PixError('study --trial-index env', `none of ${VARS.join(', ')} is set (run it as a Slurm array task or a Kubernetes Indexed Job, or give a number)`);
    raw = env[v]!;
    from = v;
  }
  if (!/^\d+$/.test(raw.trim())) throw new Pix2PixError(`study ${from}`, `expected a trial index 0..${trials - 1} or 'env', got '${raw}'`);
  const i = Number(raw);
  if (i >= trials) throw new Pix2PixError(`study ${from}`, `trial index ${i} is out of range: the study has ${trials} trials (0..${trials - 1}; see study --plan)`);
  return i;
}

/** Tables and report from whatever trials have finished (so separate processes can each add theirs). */
export async function writeStudyOutputs(cfg: StudyConfig, o: { out: string; device?: string }): Promise<{ results: TrialResult[]; reportPath: string; stale: string[]; missing: string[] }> {
  const results: TrialResult[] = [];
  const stale: string[] = [];
  const missing: string[] = [];
  for (const t of cfg.trials) {
    const r = readJsonIfExists<TrialResult>(join(o.out, 'trials', t.name, 'result.json'));
    if (!r) {
      missing.push(t.name);
      continue;
    }
    // A result from other settings is not this study's row: leave it out rather than mislabel it.
    const now = resolveTrialConfig(cfg, t);
    if (!r.config || configDifferences(trainingPart(r.config), trainingPart(now)).length + configDifferences(evaluationPart(r.config), evaluationPart(now)).length > 0) {
      stale.push(t.name);
      continue;
    }
    results.push(r);
  }
  const keys = ['mse', 'nrmse', 'psnr', 'ssim', 'fid', 'kid', 'waem', 'skeleton'] as const;
  const settingCols = ['image_size', 'num_downs', 'ngf', 'ndf', 'epochs', 'lr', 'lambda_l1', 'batch_size', 'steps'];
  const settingVals = (s?: TrialSettings) => (s ? [s.imageSize, s.numDowns, s.ngf, s.ndf, `${s.nEpochs}+${s.nEpochsDecay}`, s.lr, s.lambdaL1, s.batchSize, s.steps] : settingCols.map(() => ''));
  const csv = [
    ['trial', 'kind', 'train_pairs', 'effective_pairs', ...keys, ...settingCols, 'seconds'].join(','),
    ...results.map((r) => [r.name, r.kind, r.trainPairs, r.effectivePairs, ...keys.map((k) => r.metrics[k] ?? ''), ...settingVals(r.settings), r.seconds?.toFixed(1) ?? ''].join(',')),
  ].join('\n');
  await writeFileAtomic(join(o.out, 'results.csv'), encoder.encode(`${csv}\n`));
  await writeJson(
    join(o.out, 'results.json'),
    results.map(({ samples: _s, losses: _l, ...r }) => r),
    true,
  );
  // The grid's rows: test images of different animals covering both fur and both bed colours (pickGridRows);
  // each trial's column is read from its translations folder, so the choice is made here only.
  const gridN = cfg.evaluate?.gridImages ?? 4;
  const channels = { inputChannels: (cfg.model.inputChannels ?? 3) as 1 | 3, outputChannels: (cfg.model.outputChannels ?? 3) as 1 | 3 };
  const allTest = await openPairs(cfg.data, { phase: 'test', ...channels, maxPairs: cfg.evaluate?.maxTestImages, seed: 0, ordered: true });
  const rowInfo = allTest.map((p) => ({ file: basename(p.name, extname(p.name)), animal: p.entry?.animal, fur: p.entry?.fur, bed: p.entry?.bed }));
  const test = pickGridRows(rowInfo, gridN).map((i) => allTest[i]);
  const grid = { files: [] as string[], inputs: [] as string[], truths: [] as string[], rows: [] as GridRowInfo[] };
  for (const p of test) {
    const { a, b } = await p.load();
    grid.files.push(basename(p.name, extname(p.name)));
    grid.rows.push(rowInfo[allTest.indexOf(p)]);
    grid.inputs.push(await dataUrl(a));
    grid.truths.push(await dataUrl(b));
  }
  for (const r of results) {
    const pngs = grid.files.map((f) => join(o.out, 'trials', r.name, 'translations', `${f}.png`));
    if (pngs.every((f) => existsSync(f))) r.samples = await Promise.all(pngs.map(async (f) => `data:image/png;base64,${(await readFile(f)).toString('base64')}`));
  }
  const animals = new Map<string, TestSetSummary['animals'][number]>();
  for (const r of rowInfo) {
    const id = r.animal ?? r.file;
    const a = animals.get(id) ?? { id, fur: r.fur, bed: r.bed, images: 0 };
    a.images++;
    animals.set(id, a);
  }
  const report: StudyReport = {
    title: `pix2pix-webgpu study${cfg.name ? `: ${cfg.name}` : ''}`,
    createdAt: new Date().toISOString(),
    device: o.device,
    trials: results,
    grid,
    testSet: { images: allTest.length, animals: [...animals.values()], source: basename(cfg.data) },
    fidWeights: cfg.evaluate?.fidWeights ? basename(cfg.evaluate.fidWeights) : undefined,
    waem: cfg.evaluate?.waemWeights ? { weights: cfg.evaluate.waemWeights as unknown as WaemWeights, source: 'the weights in the study config' } : undefined,
    notes: [
      ...(missing.length ? [`Not finished yet: ${missing.join(', ')}.`] : []),
      ...(stale.length ? [`Left out (results from other settings; run the study to redo them): ${stale.join(', ')}.`] : []),
    ],
  };
  const reportPath = join(o.out, 'report.html');
  await writeFileAtomic(reportPath, encoder.encode(renderReport(report)));
  return { results, reportPath, stale, missing };
}

// ---------------------------------------------------------------------------------------------------------
// Dry run: the plan with an estimated time on this adapter.
// ---------------------------------------------------------------------------------------------------------

/** The configuration probed when the study's own step is too costly to time (the demo's default network). */
const REFERENCE_PROBE = { height: 64, width: 128, model: { numDowns: 6, ngf: 8, ndf: 8 } as Pix2PixOptions };
/** Probe the study's own network when its step is at most this many multiply-adds (~1-2 s on lavapipe). */
const DIRECT_PROBE_MAX_MACS = 4e9;

/** Training image size (HxW after preprocessing) and test-set size, read from the data when it exists. */
export async function studyDataShape(cfg: StudyConfig): Promise<{ height: number; width: number; testImages: number } | null> {
  if (!existsSync(cfg.data)) return null;
  const channels = { inputChannels: (cfg.model.inputChannels ?? 3) as 1 | 3, outputChannels: (cfg.model.outputChannels ?? 3) as 1 | 3 };
  const train = await openPairs(cfg.data, { phase: 'train', ...channels, seed: 0 });
  const test = await openPairs(cfg.data, { phase: 'test', ...channels, maxPairs: cfg.evaluate?.maxTestImages, seed: 0, ordered: true });
  const { a, b } = await train[0].load();
  const shaped = preprocessPair(a, b, { ...(cfg.train.preprocess ?? DEFAULT_PREPROCESS), flip: false }, new Rng(0));
  return { height: shaped.a.height, width: shaped.a.width, testImages: test.length };
}

/** Median seconds of a training step of `model` at HxW, after one warm-up step (kernel compilation). */
async function timeSteps(ctx: GpuContext, model: Pix2PixOptions, height: number, width: number, budgetSeconds: number): Promise<{ seconds: number; steps: number }> {
  const { Pix2Pix } = await import('../gan/pix2pix.js');
  const net = await Pix2Pix.create({ ...model, nEpochs: 1, nEpochsDecay: 0, seed: 0, ctx });
  try {
    const rng = new Rng(1);
    const image = (c: number) => {
      const im = createImage(width, height, c as 1 | 3);
      for (let i = 0; i < im.data.length; i++) im.data[i] = rng.next();
      return im;
    };
    const batch = Math.max(1, model.batchSize ?? 1);
    const a = Array.from({ length: batch }, () => image(model.inputChannels ?? 3));
    const b = Array.from({ length: batch }, () => image(model.outputChannels ?? 3));
    await net.trainStep({ a, b });
    const times: number[] = [];
    const t0 = performance.now();
    while (times.length < 3 || (times.length < 20 && (performance.now() - t0) / 1000 < budgetSeconds)) {
      const t = performance.now();
      await net.trainStep({ a, b });
      times.push((performance.now() - t) / 1000);
      if ((performance.now() - t0) / 1000 > budgetSeconds && times.length >= 1) break;
    }
    times.sort((x, y) => x - y);
    return { seconds: times[Math.floor(times.length / 2)], steps: times.length };
  } finally {
    net.destroy();
  }
}

/**
 * The study's plan with an estimated time on `ctx`'s adapter. The study's own network is timed for a few steps
 * when that is cheap; otherwise the demo's small network is timed and scaled by the ratio of multiply-adds per
 * step (trainStepMacs). On lavapipe (2 cores) that gave 292 s for the 512×1024 unet_256 + PatchGAN step (a
 * 0.076 s probe × 3858), against 313 s measured on an idle machine and 463 s on a busy one (bench/RESULTS.md).
 * `imageSize` and `testImages` are needed when the data does not exist yet (e.g. `demo --full --dry-run`).
 */
export async function estimateStudy(cfg: StudyConfig, ctx: GpuContext, o: { imageSize?: { height: number; width: number }; testImages?: number; probeSeconds?: number; device?: string } = {}): Promise<StudyPlan> {
  const plan = planStudy(cfg);
  const shape = o.imageSize ? { ...o.imageSize, testImages: o.testImages ?? 0 } : await studyDataShape(cfg);
  if (!shape) throw new Pix2PixError('study --dry-run', `the data folder ${cfg.data} does not exist, so the image size is unknown (create it first, e.g. with synth)`);
  const model: Pix2PixOptions = { ...cfg.model, batchSize: cfg.train.batchSize ?? 1 };
  const target = trainStepMacs(model, shape.height, shape.width);
  let stepSeconds: number;
  let method: string;
  if (target.step <= DIRECT_PROBE_MAX_MACS) {
    const t = await timeSteps(ctx, model, shape.height, shape.width, o.probeSeconds ?? 3);
    stepSeconds = t.seconds;
    method = `median of ${t.steps} timed steps of this network at ${shape.height}x${shape.width} after a warm-up step`;
  } else {
    const ref = { ...REFERENCE_PROBE.model, inputChannels: cfg.model.inputChannels, outputChannels: cfg.model.outputChannels, batchSize: 1 };
    const t = await timeSteps(ctx, ref, REFERENCE_PROBE.height, REFERENCE_PROBE.width, o.probeSeconds ?? 3);
    const ratio = target.step / trainStepMacs(ref, REFERENCE_PROBE.height, REFERENCE_PROBE.width).step;
    stepSeconds = t.seconds * ratio;
    method = `a ${REFERENCE_PROBE.height}x${REFERENCE_PROBE.width} ngf 8 probe (${t.seconds.toFixed(3)} s/step, ${t.steps} steps) scaled by multiply-adds x${ratio.toFixed(0)}; rough, within ~2x`;
  }
  // Translating the test set: one generator forward per image, at the step's cost per multiply-add.
  const translateSeconds = shape.testImages * stepSeconds * (target.generatorForward / target.step);
  let total = 0;
  for (const t of plan.trials) {
    t.estimatedSeconds = t.totalSteps * stepSeconds + translateSeconds;
    total += t.estimatedSeconds;
  }
  plan.imageSize = `${shape.height}x${shape.width}`;
  plan.estimate = { stepSeconds, totalSeconds: total, method, device: o.device };
  return plan;
}
