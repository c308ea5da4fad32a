/**
 * The study's configuration, its plan and the record of the settings behind each trial. Pure (no Node, no
 * device): the CLI, the demo and the report can all use it, and `planStudy` answers "what would this run do"
 * without touching the data or the GPU.
 */
import type { Pix2PixOptions } from '../gan/pix2pix.js';
import type { PreprocessOptions } from '../train/preprocess.js';
import type { PairFilter } from '../data/split.js';
import { Pix2PixError } from '../runtime/errors.js';
import { PIX2PIX_DEFAULTS } from '../gan/options.js';
import type { SsimMode } from '../metrics/defaults.js';

/** One trial of a study (a folder name of letters, digits, . = + - _; its kind decides which fields apply). */
export interface TrialConfig {
  name: string;
  kind: 'size' | 'augment' | 'transfer';
  /** Real training pairs (size/augment) or fine-tuning pairs (transfer). */
  trainPairs: number;
  filter?: PairFilter;
  /**
   * augment: give `copies` (augmented copies per real pair: n pairs become n × (1 + copies)) or `total` (pairs
   * in all, originals included, spread so the count is exact: the seed's 823 → 5175). Neither: copies 5.
   */
  copies?: number;
  total?: number;
  /** augment: the Albumentations-style spec file (default: the bundled docs/augment-example.json). */
  spec?: string;
  /** transfer: the pretraining subset and epochs; the fine-tuning uses `filter`/`trainPairs`. */
  pretrain?: { trainPairs: number; filter?: PairFilter; nEpochs?: number; nEpochsDecay?: number };
  freezeEncoder?: number;
  /** This trial's seed (initialisation, subset, order), instead of train.seed: repeats of a size point. */
  seed?: number;
}

/** The training every trial of a study shares (epochs at the constant learning rate, then decaying to 0). */
export interface StudyTrainConfig {
  nEpochs: number;
  nEpochsDecay: number;
  batchSize?: number;
  seed?: number;
  preprocess?: PreprocessOptions;
}

/** How every trial of a study is scored (SSIM mode, FID weights file, report grid and test-set size, WAEM weights). */
export interface StudyEvaluateConfig {
  ssimMode?: SsimMode;
  fidWeights?: string;
  gridImages?: number;
  maxTestImages?: number;
  waemWeights?: Record<string, number>;
}

/** A study: one dataset, one model configuration and training schedule, and the trials that vary the data. */
export interface StudyConfig {
  name?: string;
  /** Dataset folder with train/ and test/ (aligned A|B) and a manifest, e.g. from `synth`. */
  data: string;
  model: Pix2PixOptions;
  train: StudyTrainConfig;
  evaluate?: StudyEvaluateConfig;
  trials: TrialConfig[];
}

export const DEFAULT_PREPROCESS: PreprocessOptions = { preprocess: 'none', loadSize: 286, cropSize: 256, flip: true };
export const DEFAULT_AUGMENT_COPIES = 5;

/**
 * Everything that decides what one trial trains and how it is scored, with the study's defaults filled in.
 * Written to trials/NAME/trial.json when the trial starts and into its result.json, and compared on resume:
 * a finished trial is reused only when this is identical.
 */
export interface ResolvedTrialConfig {
  /** Bumped when the meaning of a field changes, so older records are re-run instead of misread. */
  version: 1;
  trial: TrialConfig;
  /** The config's model options (the study adds epochs, batch size and seed from `train`). */
  model: Omit<Pix2PixOptions, 'ctx' | 'device'>;
  train: Required<Pick<StudyTrainConfig, 'nEpochs' | 'nEpochsDecay' | 'batchSize' | 'seed'>> & { preprocess: PreprocessOptions };
  evaluate: StudyEvaluateConfig & { ssimMode: SsimMode; gridImages: number };
  data: {
    /** The dataset folder as resolved when the trial ran (shown, not compared: a moved study stays valid). */
    path: string;
    /** sha256 of the dataset's manifest file ('' when it has none). */
    manifestHash: string;
    /** sha256 over the train/ and test/ file names and byte sizes (a re-synthesis at another size changes it). */
    filesHash: string;
  };
  /** augment: the spec that was applied (its file, or 'bundled') and the sha256 of its text. */
  augmentSpec?: { source: string; hash: string };
}

/**
 * The settings that produced one row of the results, flat and short, for tables and the report
 * (`TrialResult.settings`). The full record is `TrialResult.config`.
 */
export interface TrialSettings {
  /** Training image size as HxW (the A side after preprocessing), e.g. "64x128". */
  imageSize: string;
  numDowns: number;
  ngf: number;
  ndf: number;
  nLayersD: number;
  norm: string;
  dropout: boolean;
  lr: number;
  lambdaL1: number;
  batchSize: number;
  seed: number;
  nEpochs: number;
  nEpochsDecay: number;
  /** Training steps of the trial, pretraining included. */
  steps: number;
  realPairs: number;
  pairsPerEpoch: number;
  /** augment: copies per pair or the target total. */
  augment?: { copies?: number; total?: number };
  /** transfer: the pretraining subset. */
  pretrain?: { pairs: number; filter?: PairFilter; epochs: number };
  filter?: PairFilter;
  freezeEncoder?: number;
  /** The first 12 hex digits of ResolvedTrialConfig.data.manifestHash. */
  manifestHash: string;
}

/** Check a parsed config's shape; `where` names the file in messages. */
export function validateStudyConfig(cfg: StudyConfig, where: string): void {
  if (!cfg || typeof cfg !== 'object') throw new Pix2PixError(where, 'a study config is a JSON object');
  if (!cfg.data || !Array.isArray(cfg.trials) || cfg.trials.length === 0) throw new Pix2PixError(where, 'a study config needs "data" and a non-empty "trials" list');
  if (!cfg.model || typeof cfg.model !== 'object') throw new Pix2PixError(where, 'a study config needs "model" (Pix2Pix options, e.g. {"ngf": 8, "numDowns": 6})');
  if (!cfg.train || !Number.isInteger(cfg.train.nEpochs) || !Number.isInteger(cfg.train.nEpochsDecay) || cfg.train.nEpochs < 0 || cfg.train.nEpochsDecay < 0 || cfg.train.nEpochs + cfg.train.nEpochsDecay < 1) {
    throw new Pix2PixError(where, `"train" needs integer "nEpochs" and "nEpochsDecay" (>= 0, at least one epoch in all), got ${JSON.stringify(cfg.train)}`);
  }
  // A group count with another norm would be ignored by the model (and recorded as if it mattered): refuse it.
  const norm = cfg.model.norm ?? PIX2PIX_DEFAULTS.norm;
  if (cfg.model.normGroups !== undefined && norm !== 'group') {
    throw new Pix2PixError(where, `"model": normGroups ${JSON.stringify(cfg.model.normGroups)} applies only to norm 'group', got norm '${norm}'`);
  }
  const names = new Set<string>();
  const count = (v: unknown, what: string, min: number) => {
    if (v !== undefined && (!Number.isInteger(v) || (v as number) < min)) throw new Pix2PixError(where, `${what} must be an integer >= ${min}, got ${JSON.stringify(v)}`);
  };
  for (const t of cfg.trials) {
    if (!t.name || !/^[\w.=+-]+$/.test(t.name)) throw new Pix2PixError(where, `trial name '${t.name}' must be non-empty letters, digits, . = + - _`);
    if (names.has(t.name)) throw new Pix2PixError(where, `duplicate trial name '${t.name}'`);
    names.add(t.name);
    if (!['size', 'augment', 'transfer'].includes(t.kind)) throw new Pix2PixError(where, `trial '${t.name}': kind must be size, augment or transfer, got '${t.kind}'`);
    if (t.trainPairs === undefined) throw new Pix2PixError(where, `trial '${t.name}': "trainPairs" is required`);
    count(t.trainPairs, `trial '${t.name}': trainPairs`, 1);
    if (t.kind === 'transfer' && !t.pretrain) throw new Pix2PixError(where, `trial '${t.name}': a transfer trial needs "pretrain"`);
    if (t.pretrain) count(t.pretrain.trainPairs, `trial '${t.name}': pretrain.trainPairs`, 1);
    if (t.kind !== 'augment' && (t.copies !== undefined || t.total !== undefined)) throw new Pix2PixError(where, `trial '${t.name}': "copies"/"total" belong to augment trials, this one is '${t.kind}'`);
    if (t.copies !== undefined && t.total !== undefined) throw new Pix2PixError(where, `trial '${t.name}': give "copies" or "total", not both (got ${t.copies} and ${t.total})`);
    count(t.copies, `trial '${t.name}': copies`, 0);
    count(t.seed, `trial '${t.name}': seed`, 0);
    count(t.total, `trial '${t.name}': total`, t.trainPairs);
  }
}

/** Pairs one epoch of the trial sees (after offline augmentation). */
export function pairsPerEpoch(t: TrialConfig): number {
  if (t.kind !== 'augment') return t.trainPairs;
  return t.total ?? t.trainPairs * (1 + (t.copies ?? DEFAULT_AUGMENT_COPIES));
}

function stepsFor(pairs: number, batchSize: number, epochs: number): number {
  // As the trainer counts: floor(pairs / batch) iterations per epoch, at least one.
  return (Math.floor(pairs / batchSize) || 1) * epochs;
}

export interface TrialPlan {
  /** 0-based index: what `study --trial-index I`, SLURM_ARRAY_TASK_ID or JOB_COMPLETION_INDEX select. */
  index: number;
  name: string;
  kind: TrialConfig['kind'];
  realPairs: number;
  pairsPerEpoch: number;
  epochs: number;
  /** Fine-tuning (or only) training steps. */
  steps: number;
  pretrain?: { pairs: number; epochs: number; steps: number; filter?: PairFilter };
  filter?: PairFilter;
  augment?: { copies?: number; total?: number };
  /** All training steps of the trial (pretraining included). */
  totalSteps: number;
  /** Estimated seconds on the probed adapter (training + translating the test set); only with an estimate. */
  estimatedSeconds?: number;
}

export interface StudyPlan {
  name?: string;
  data: string;
  trials: TrialPlan[];
  totalSteps: number;
  /** Training image size (HxW) the estimate assumed, when known. */
  imageSize?: string;
  /** Set by `estimateStudy` (study_node): how the time was estimated and the total. */
  estimate?: StudyEstimate;
}

export interface StudyEstimate {
  /** Seconds per training step of the study's own model at its image size. */
  stepSeconds: number;
  /** Seconds for the whole study (sum over trials), training and translation of the test set. */
  totalSeconds: number;
  /** How stepSeconds was obtained, in words (probe config, steps timed, scaling). */
  method: string;
  device?: string;
}

/** The trials, pair counts and steps a study runs, in order. Needs neither the data nor a device. */
export function planStudy(cfg: StudyConfig): StudyPlan {
  const batchSize = cfg.train.batchSize ?? PIX2PIX_DEFAULTS.batchSize;
  const epochs = cfg.train.nEpochs + cfg.train.nEpochsDecay;
  const trials = cfg.trials.map((t, index): TrialPlan => {
    const perEpoch = pairsPerEpoch(t);
    const steps = stepsFor(perEpoch, batchSize, epochs);
    const plan: TrialPlan = { index, name: t.name, kind: t.kind, realPairs: t.trainPairs, pairsPerEpoch: perEpoch, epochs, steps, totalSteps: steps };
    if (t.filter) plan.filter = t.filter;
    if (t.kind === 'augment') plan.augment = t.total !== undefined ? { total: t.total } : { copies: t.copies ?? DEFAULT_AUGMENT_COPIES };
    if (t.pretrain) {
      const preEpochs = (t.pretrain.nEpochs ?? cfg.train.nEpochs) + (t.pretrain.nEpochsDecay ?? cfg.train.nEpochsDecay);
      const preSteps = stepsFor(t.pretrain.trainPairs, batchSize, preEpochs);
      plan.pretrain = { pairs: t.pretrain.trainPairs, epochs: preEpochs, steps: preSteps, ...(t.pretrain.filter ? { filter: t.pretrain.filter } : {}) };
      plan.totalSteps += preSteps;
    }
    return plan;
  });
  return { name: cfg.name, data: cfg.data, trials, totalSteps: trials.reduce((s, t) => s + t.totalSteps, 0) };
}

/** Human-readable plan (the `--dry-run` output). */
export function formatPlan(plan: StudyPlan): string {
  const fmtS = (s: number) => (s < 90 ? `${s.toFixed(0)} s` : s < 5400 ? `${(s / 60).toFixed(1)} min` : s < 172800 ? `${(s / 3600).toFixed(1)} h` : `${(s / 86400).toFixed(1)} days`);
  const lines = [`study${plan.name ? ` "${plan.name}"` : ''}: ${plan.trials.length} trial(s), data ${plan.data}${plan.imageSize ? `, images ${plan.imageSize}` : ''}`];
  lines.push(['  #', 'trial'.padEnd(26), 'kind'.padEnd(9), 'real'.padStart(6), 'pairs/ep'.padStart(9), 'epochs'.padStart(7), 'steps'.padStart(9), ...(plan.estimate ? ['est. time'.padStart(10)] : [])].join(' '));
  for (const t of plan.trials) {
    const extra = [t.augment ? (t.augment.total !== undefined ? `augment to ${t.augment.total}` : `augment x(1+${t.augment.copies})`) : '', t.pretrain ? `after pretraining on ${t.pretrain.pairs} pairs x ${t.pretrain.epochs} epochs (${t.pretrain.steps} steps)` : '', t.filter ? `filter ${JSON.stringify(t.filter)}` : '']
      .filter(Boolean)
      .join('; ');
    lines.push(
      [
        String(t.index).padStart(3),
        t.name.padEnd(26),
        t.kind.padEnd(9),
        String(t.realPairs).padStart(6),
        String(t.pairsPerEpoch).padStart(9),
        String(t.epochs).padStart(7),
        String(t.totalSteps).padStart(9),
        ...(t.estimatedSeconds !== undefined ? [fmtS(t.estimatedSeconds).padStart(10)] : []),
      ].join(' ') + (extra ? `  ${extra}` : ''),
    );
  }
  lines.push(`total: ${plan.totalSteps} training steps`);
  if (plan.estimate) {
    lines.push(`estimated time: ${fmtS(plan.estimate.totalSeconds)} on ${plan.estimate.device ?? 'this adapter'} (${plan.estimate.stepSeconds.toPrecision(3)} s/step; ${plan.estimate.method})`);
  }
  return lines.join('\n');
}

/**
 * Multiply-adds of one pix2pix training step (U-Net G + PatchGAN D), counted from the convolutions. Used
 * only as a ratio, to scale a probe's measured time from one configuration to another.
 */
export function trainStepMacs(model: Pix2PixOptions, height: number, width: number): { step: number; generatorForward: number } {
  const numDowns = model.numDowns ?? (model.netG === 'unet_128' ? 7 : 8);
  const ngf = model.ngf ?? 64;
  const ndf = model.ndf ?? 64;
  const inC = model.inputChannels ?? 3;
  const outC = model.outputChannels ?? 3;
  const nLayers = model.nLayersD ?? 3;
  let g = 0;
  let cin = inC;
  for (let i = 0; i < numDowns; i++) {
    const cout = ngf * Math.min(2 ** i, 8);
    const px = Math.max(1, Math.floor(height / 2 ** (i + 1))) * Math.max(1, Math.floor(width / 2 ** (i + 1)));
    const upIn = i === numDowns - 1 ? cout : 2 * cout;
    const upOut = i === 0 ? outC : cin;
    g += 16 * cin * cout * px + 16 * upIn * upOut * px;
    cin = cout;
  }
  let d = 0;
  let c = inC + outC;
  let h = height;
  let w = width;
  for (let n = 0; n <= nLayers + 1; n++) {
    const cout = n === nLayers + 1 ? 1 : ndf * Math.min(2 ** n, 8);
    const stride = n < nLayers ? 2 : 1;
    h = Math.max(1, stride === 2 ? Math.floor(h / 2) : h - 1);
    w = Math.max(1, stride === 2 ? Math.floor(w / 2) : w - 1);
    d += 16 * c * cout * h * w;
    c = cout;
  }
  // G forward + backward (~3 forwards); D runs three times (fake and real for D's loss, fake for G's) with
  // their backward passes (~3 forwards each).
  return { step: 3 * g + 9 * d, generatorForward: g };
}

function flatten(v: unknown, prefix: string, out: Map<string, string>): void {
  if (v !== null && typeof v === 'object' && !Array.isArray(v)) {
    for (const [k, x] of Object.entries(v as Record<string, unknown>)) if (x !== undefined) flatten(x, prefix ? `${prefix}.${k}` : k, out);
  } else out.set(prefix, JSON.stringify(v));
}

/** Settings that differ between two records, as "path old → new" (missing shown as '–'). */
export function configDifferences(before: unknown, after: unknown): string[] {
  const a = new Map<string, string>();
  const b = new Map<string, string>();
  flatten(before, '', a);
  flatten(after, '', b);
  const keys = [...new Set([...a.keys(), ...b.keys()])].sort();
  return keys.filter((k) => a.get(k) !== b.get(k)).map((k) => `${k} ${a.get(k) ?? '–'} → ${b.get(k) ?? '–'}`);
}

/** The part of a record that decides the trained weights (everything but evaluation and the data's path). */
export function trainingPart(c: ResolvedTrialConfig): unknown {
  // The spec's file path is not compared (its text's hash is), so a study folder or checkout can move.
  const { spec: _spec, ...trial } = c.trial;
  return { version: c.version, trial, model: c.model, train: c.train, manifestHash: c.data.manifestHash, filesHash: c.data.filesHash, augmentSpec: c.augmentSpec?.hash };
}

/** The part that decides the scores of given weights. */
export function evaluationPart(c: ResolvedTrialConfig): unknown {
  return { evaluate: c.evaluate };
}
