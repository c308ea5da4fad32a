/**
 * The seed paper's experiments as one resumable run (`pix2pix-webgpu study --config FILE`):
 *   size      N real training pairs, for several N (nested subsets, so a larger N adds pairs);
 *   augment   N real pairs expanded offline ×(1 + k) with an Albumentations-style spec;
 *   transfer  pretrain on one subset (e.g. white beds), then fine-tune on another (black beds).
 * Every trial trains, translates the held-out animals' photos, and scores them with all metrics and
 * WAEM. Each trial lives in its own folder with a `result.json` written last, so an interrupted study
 * resumes where it stopped, and trials can run as separate processes (`--trial NAME`).
 */
import { existsSync, readFileSync } from 'node:fs';
import { copyFile, mkdir, readFile, rm } from 'node:fs/promises';
import { basename, extname, join, resolve } from 'node:path';
import type { Pix2PixOptions } from '../gan/pix2pix.js';
import type { PreprocessOptions } from '../train/preprocess.js';
import { trainPix2Pix } from '../train/trainer_node.js';
import { writeFileAtomic } from '../io/atomic_node.js';
import { openPairs, type PairFilter, type OpenedPair } from '../train/pair_sources_node.js';
import { writePng, encodePng } from '../data/image_node.js';
import type { ImageF32 } from '../data/image.js';
import { Pix2PixError } from '../runtime/errors.js';
import type { GpuContext } from '../runtime/context.js';
import { waem, type WaemWeights } from '../metrics/waem.js';
import { renderReport, type LossRecord, type StudyReport, type TrialReport, type MetricMeans } from './report.js';

export interface TrialConfig {
  name: string;
  kind: 'size' | 'augment' | 'transfer';
  /** Real training pairs (size/augment) or fine-tuning pairs (transfer). */
  trainPairs: number;
  filter?: PairFilter;
  /** augment: copies per pair and the spec file (default docs/augment-example.json). */
  copies?: number;
  spec?: string;
  /** transfer: the pretraining subset and epochs; the fine-tuning uses `filter`/`trainPairs`. */
  pretrain?: { trainPairs: number; filter?: PairFilter; nEpochs?: number; nEpochsDecay?: number };
  freezeEncoder?: number;
}

export interface StudyConfig {
  name?: string;
  /** Dataset folder with train/ and test/ (aligned A|B) and a manifest, e.g. from `synth`. */
  data: string;
  model: Pix2PixOptions;
  train: { nEpochs: number; nEpochsDecay: number; batchSize?: number; seed?: number; preprocess?: PreprocessOptions };
  evaluate?: { ssimMode?: 'skimage' | 'gaussian'; fidWeights?: string; gridImages?: number; maxTestImages?: number; waemWeights?: Record<string, number> };
  trials: TrialConfig[];
}

export interface TrialResult extends TrialReport {
  perImage?: unknown[];
  warnings?: string[];
}

export function loadStudyConfig(path: string): StudyConfig {
  let cfg: StudyConfig;
  try {
    cfg = JSON.parse(readFileSync(path, 'utf8')) as StudyConfig;
  } catch (e) {
    throw new Pix2PixError(path, `cannot read the study config: ${(e as Error).message}`);
  }
  if (!cfg.data || !Array.isArray(cfg.trials) || cfg.trials.length === 0) throw new Pix2PixError(path, 'a study config needs "data" and a non-empty "trials" list');
  const names = new Set<string>();
  for (const t of cfg.trials) {
    if (!t.name || !/^[\w.=+-]+$/.test(t.name)) throw new Pix2PixError(path, `trial name '${t.name}' must be non-empty letters, digits, . = + - _`);
    if (names.has(t.name)) throw new Pix2PixError(path, `duplicate trial name '${t.name}'`);
    names.add(t.name);
    if (!['size', 'augment', 'transfer'].includes(t.kind)) throw new Pix2PixError(path, `trial '${t.name}': kind must be size, augment or transfer, got '${t.kind}'`);
    if (t.kind === 'transfer' && !t.pretrain) throw new Pix2PixError(path, `trial '${t.name}': a transfer trial needs "pretrain"`);
  }
  // Relative paths in the config are relative to the config file.
  const base = resolve(path, '..');
  cfg.data = resolve(base, cfg.data);
  if (cfg.evaluate?.fidWeights) cfg.evaluate.fidWeights = resolve(base, cfg.evaluate.fidWeights);
  for (const t of cfg.trials) if (t.spec) t.spec = resolve(base, t.spec);
  return cfg;
}

export interface StudyRunOptions {
  out: string;
  ctx: GpuContext;
  /** Run only these trials (separate processes); default all. */
  only?: string[];
  onLog?: (line: string) => void;
  onStep?: (trial: string, step: number, total: number) => void;
  signal?: AbortSignal;
}

const DEFAULT_PREPROCESS: PreprocessOptions = { preprocess: 'none', loadSize: 286, cropSize: 256, flip: true };

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

/** Train (or resume) and evaluate one trial; returns its result (cached in result.json). */
export async function runTrial(cfg: StudyConfig, trial: TrialConfig, o: StudyRunOptions): Promise<TrialResult> {
  const dir = join(o.out, 'trials', trial.name);
  const resultPath = join(dir, 'result.json');
  if (existsSync(resultPath)) return JSON.parse(readFileSync(resultPath, 'utf8')) as TrialResult;
  await mkdir(dir, { recursive: true });
  const started = Date.now();
  const seed = cfg.train.seed ?? 0;
  const channels = { inputChannels: (cfg.model.inputChannels ?? 3) as 1 | 3, outputChannels: (cfg.model.outputChannels ?? 3) as 1 | 3 };
  const preprocess = cfg.train.preprocess ?? DEFAULT_PREPROCESS;
  const model: Pix2PixOptions = { ...cfg.model, nEpochs: cfg.train.nEpochs, nEpochsDecay: cfg.train.nEpochsDecay, batchSize: cfg.train.batchSize ?? 1, seed, ctx: o.ctx };
  let pairs: OpenedPair[] = await openPairs(cfg.data, { phase: 'train', ...channels, filter: trial.filter, maxPairs: trial.trainPairs, seed });
  let effectivePairs = pairs.length;
  let init: string | undefined;

  if (trial.kind === 'augment') {
    // Offline expansion as the seed did (823 → 5175): copy the subset, write k augmented copies each.
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
      const spec = readFileSync(trial.spec ?? resolve('docs/augment-example.json'), 'utf8');
      await expandDataset({ inDir: subsetDir, outDir: expandedDir, copies: trial.copies ?? 5, spec, seed, ctx: o.ctx });
      await writeFileAtomic(join(dir, 'data', 'expanded.done'), new Uint8Array());
    }
    pairs = await openPairs(expandedDir, { phase: null, ...channels, seed });
    effectivePairs = pairs.length;
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
      signal: o.signal,
      onStep: (s) => o.onStep?.(`${trial.name}/pretrain`, s.step, s.totalEpochs * s.itersPerEpoch),
    });
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
    init,
    signal: o.signal,
    onStep: (s) => o.onStep?.(trial.name, s.step, s.totalEpochs * s.itersPerEpoch),
  });
  if (trained.interrupted) {
    trained.model.destroy();
    throw new Pix2PixError(`trial ${trial.name}`, 'interrupted (run the study again to resume)');
  }

  // Translate the held-out animals' photos; ground truth goes to a shared folder once.
  const test = await openPairs(cfg.data, { phase: 'test', ...channels, maxPairs: cfg.evaluate?.maxTestImages, seed: 0, ordered: true });
  const realDir = join(o.out, 'test_real');
  const fakeDir = join(dir, 'translations');
  await mkdir(realDir, { recursive: true });
  await mkdir(fakeDir, { recursive: true });
  const samples: string[] = [];
  const gridN = cfg.evaluate?.gridImages ?? 4;
  for (let i = 0; i < test.length; i++) {
    const { a, b } = await test[i].load();
    const fake = await trained.model.translate(a, { seed: 0, pad: true });
    // Entry names are paths inside the dataset (test/m006_p0.png): keep the file's own name.
    const name = `${basename(test[i].name, extname(test[i].name))}.png`;
    await writePng(join(fakeDir, name), fake);
    if (!existsSync(join(realDir, name))) await writePng(join(realDir, name), b);
    if (i < gridN) samples.push(await dataUrl(fake));
  }
  trained.model.destroy();

  const { evaluateFolders } = await import('../metrics/evaluate_node.js');
  const extractor = cfg.evaluate?.fidWeights ? await (await import('../metrics/inception_node.js')).createInceptionExtractor(o.ctx, cfg.evaluate.fidWeights) : undefined;
  const waemWeights = cfg.evaluate?.waemWeights as WaemWeights | undefined;
  const ev = await evaluateFolders({ real: realDir, fake: fakeDir, ssimMode: cfg.evaluate?.ssimMode ?? 'skimage', fidExtractor: extractor, ctx: o.ctx, waemWeights });
  // Without FID weights WAEM would be missing from Figure 2; score it with the FID term dropped
  // (1/FID → 0) and say so in the report.
  const mean = { ...ev.mean } as MetricMeans;
  if (mean.waem === undefined) mean.waem = waem({ mse: mean.mse, nrmse: mean.nrmse, psnr: mean.psnr, ssim: mean.ssim, fid: Infinity }, waemWeights);
  extractor?.destroy();
  const result: TrialResult = {
    name: trial.name,
    kind: trial.kind,
    trainPairs: trial.trainPairs,
    effectivePairs,
    metrics: mean,
    losses: await readLosses(join(dir, 'checkpoints')),
    samples,
    seconds: (Date.now() - started) / 1000,
    perImage: ev.perImage,
    warnings: ev.warnings,
  };
  await writeFileAtomic(join(dir, 'metrics.json'), new TextEncoder().encode(JSON.stringify({ n: ev.n, mean, perImage: ev.perImage, warnings: ev.warnings }, null, 2)));
  await writeFileAtomic(resultPath, new TextEncoder().encode(JSON.stringify(result)));
  return result;
}

/** Run (or resume) the study and write results.json, results.csv and report.html into `out`. */
export async function runStudy(cfg: StudyConfig, o: StudyRunOptions): Promise<{ results: TrialResult[]; reportPath: string }> {
  await mkdir(o.out, { recursive: true });
  const todo = cfg.trials.filter((t) => !o.only || o.only.includes(t.name));
  for (const name of o.only ?? []) if (!cfg.trials.some((t) => t.name === name)) throw new Pix2PixError('study', `no trial named '${name}' (trials: ${cfg.trials.map((t) => t.name).join(', ')})`);
  for (const t of todo) await runTrial(cfg, t, o);
  return writeStudyOutputs(cfg, o);
}

/** Tables and report from whatever trials have finished (so separate processes can each add theirs). */
export async function writeStudyOutputs(cfg: StudyConfig, o: { out: string; device?: string }): Promise<{ results: TrialResult[]; reportPath: string }> {
  const results: TrialResult[] = [];
  for (const t of cfg.trials) {
    const p = join(o.out, 'trials', t.name, 'result.json');
    if (existsSync(p)) results.push(JSON.parse(readFileSync(p, 'utf8')) as TrialResult);
  }
  const keys = ['mse', 'nrmse', 'psnr', 'ssim', 'fid', 'kid', 'waem'] as const;
  const csv = [
    ['trial', 'kind', 'train_pairs', 'effective_pairs', ...keys, 'seconds'].join(','),
    ...results.map((r) => [r.name, r.kind, r.trainPairs, r.effectivePairs, ...keys.map((k) => r.metrics[k] ?? ''), r.seconds?.toFixed(1) ?? ''].join(',')),
  ].join('\n');
  await writeFileAtomic(join(o.out, 'results.csv'), new TextEncoder().encode(`${csv}\n`));
  await writeFileAtomic(
    join(o.out, 'results.json'),
    new TextEncoder().encode(JSON.stringify(results.map(({ samples: _s, losses: _l, ...r }) => r), null, 2)),
  );
  // The grid's photo and truth columns: the first test pairs, in file order.
  const gridN = cfg.evaluate?.gridImages ?? 4;
  const channels = { inputChannels: (cfg.model.inputChannels ?? 3) as 1 | 3, outputChannels: (cfg.model.outputChannels ?? 3) as 1 | 3 };
  const test = (await openPairs(cfg.data, { phase: 'test', ...channels, maxPairs: cfg.evaluate?.maxTestImages, seed: 0, ordered: true })).slice(0, gridN);
  const grid = { files: [] as string[], inputs: [] as string[], truths: [] as string[] };
  for (const p of test) {
    const { a, b } = await p.load();
    grid.files.push(basename(p.name, extname(p.name)));
    grid.inputs.push(await dataUrl(a));
    grid.truths.push(await dataUrl(b));
  }
  const report: StudyReport = {
    title: `pix2pix-webgpu study${cfg.name ? `: ${cfg.name}` : ''}`,
    createdAt: new Date().toISOString(),
    device: o.device,
    trials: results,
    grid,
    notes: [
      `Test set: held-out animals of ${cfg.data} (${test.length ? 'first ' + grid.files.length + ' shown' : 'none'}). Metrics are means over the test images; FID ${cfg.evaluate?.fidWeights ? 'uses pytorch-fid InceptionV3 weights' : 'needs pytorch-fid weights ("fidWeights" in the config) and is absent here, so WAEM is shown without its FID term'}.`,
    ],
  };
  const reportPath = join(o.out, 'report.html');
  await writeFileAtomic(reportPath, new TextEncoder().encode(renderReport(report)));
  return { results, reportPath };
}

