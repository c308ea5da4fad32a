import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { defineCommand, required, UsageError, type OptionsOf, type OptionSpec } from './command.js';
import { Progress } from './progress.js';
import { GAN_MODE_VALUES, NET_G_VALUES, NORM_VALUES, PIX2PIX_DEFAULTS, type Pix2PixOptions } from '../gan/options.js';
import type { Preprocess, PreprocessOptions } from '../train/preprocess.js';

const PREPROCESS_VALUES: readonly Preprocess[] = ['resize_and_crop', 'crop', 'scale_width', 'none'];

/**
 * The reference options (train_options.py / base_options.py), spelled as the reference spells them, plus
 * this library's --norm group and --norm_groups. Model defaults come from PIX2PIX_DEFAULTS; the parsed
 * options are typed from these declarations (OptionsOf), so the run logic needs no casts.
 */
export const TRAIN_OPTIONS = {
  dataroot: { type: 'string', exists: 'folder', arg: 'DIR', description: 'dataset: aligned A|B images (DIR or DIR/train), or A/ and B/ folders, optional manifest' },
  checkpoints: { type: 'string', arg: 'DIR', description: 'output folder for checkpoints, loss log, samples, options', default: 'checkpoints/experiment' },
  netG: { type: 'string', description: 'generator', default: PIX2PIX_DEFAULTS.netG, choices: NET_G_VALUES },
  num_downs: { type: 'count', min: 1, description: 'U-Net downsamplings (overrides netG)' },
  input_nc: { type: 'count', choices: ['1', '3'], description: 'input channels', default: PIX2PIX_DEFAULTS.inputChannels },
  output_nc: { type: 'count', choices: ['1', '3'], description: 'output channels', default: PIX2PIX_DEFAULTS.outputChannels },
  ngf: { type: 'count', min: 1, description: 'generator filters in the last conv layer', default: PIX2PIX_DEFAULTS.ngf },
  ndf: { type: 'count', min: 1, description: 'discriminator filters in the first conv layer', default: PIX2PIX_DEFAULTS.ndf },
  n_layers_D: { type: 'count', min: 1, description: 'PatchGAN layers (3 = 70x70)', default: PIX2PIX_DEFAULTS.nLayersD },
  norm: { type: 'string', description: 'normalisation (group: GroupNorm, not in the reference)', default: PIX2PIX_DEFAULTS.norm, choices: NORM_VALUES },
  // No declared default: an explicit --norm_groups with another norm is refused, not silently ignored.
  norm_groups: { type: 'count', min: 1, description: `with --norm group only (default ${PIX2PIX_DEFAULTS.normGroups}): at most this many groups per layer (the largest divisor of its channels)` },
  no_dropout: { type: 'boolean', description: 'no dropout in the generator' },
  gan_mode: { type: 'string', description: 'GAN loss', default: PIX2PIX_DEFAULTS.ganMode, choices: GAN_MODE_VALUES },
  lambda_L1: { type: 'number', min: 0, description: 'weight of the L1 loss', default: PIX2PIX_DEFAULTS.lambdaL1 },
  lr: { type: 'positive', description: 'Adam learning rate', default: PIX2PIX_DEFAULTS.lr },
  beta1: { type: 'number', min: 0, max: 1, description: "Adam's beta1", default: PIX2PIX_DEFAULTS.beta1 },
  n_epochs: { type: 'count', description: 'epochs at the initial learning rate', default: PIX2PIX_DEFAULTS.nEpochs },
  n_epochs_decay: { type: 'count', description: 'epochs of linear decay to zero', default: PIX2PIX_DEFAULTS.nEpochsDecay },
  batch_size: { type: 'count', min: 1, description: 'batch size', default: PIX2PIX_DEFAULTS.batchSize },
  load_size: { type: 'count', min: 1, description: 'scale images to this size (resize_and_crop, scale_width)', default: 286 },
  crop_size: { type: 'count', min: 1, description: 'then crop to this size', default: 256 },
  preprocess: { type: 'string', description: 'preprocessing', default: 'resize_and_crop', choices: PREPROCESS_VALUES },
  no_flip: { type: 'boolean', description: 'no random horizontal flips' },
  augment: { type: 'string', exists: 'file', arg: 'FILE', description: 'on-the-fly GPU augmentation spec (JSON, Albumentations names), e.g. docs/augment-example.json' },
  max_pairs: { type: 'count', min: 1, description: 'use only this many training pairs (a seeded, nested subset)' },
  init: { type: 'string', exists: 'path', arg: 'FILE|DIR', description: 'initialise from a checkpoint (ours, or the reference latest_net_G.pth) for transfer learning' },
  freeze_encoder: { type: 'count', description: 'freeze the encoders of this many outermost U-Net levels', default: 0 },
  freeze_D: { type: 'boolean', description: 'freeze the discriminator' },
  seed: { type: 'count', description: 'seed of initialisation, data order, crops, flips and dropout', default: PIX2PIX_DEFAULTS.seed },
  save_epoch_freq: { type: 'count', min: 1, description: 'keep a tagged checkpoint every N epochs (latest is saved every epoch)', default: 5 },
  resume: { type: 'boolean', description: 'continue from the checkpoints folder exactly where it stopped' },
} as const satisfies Record<string, OptionSpec>;

/** The train command's parsed flags, typed from {@link TRAIN_OPTIONS}. */
export type TrainFlags = OptionsOf<typeof TRAIN_OPTIONS>;

export interface ParsedTrainOptions {
  model: Pix2PixOptions & { inputChannels: 1 | 3; outputChannels: 1 | 3 };
  preprocess: PreprocessOptions;
}

/** A channel count the parser has checked against the choices 1 and 3. */
function channels(n: number, flag: string): 1 | 3 {
  if (n === 1 || n === 3) return n;
  throw new UsageError(`--${flag} must be 1 or 3, got ${n}`);
}

/** Reference-style flags → library options. */
export function trainOptionsFromFlags(o: TrainFlags): ParsedTrainOptions {
  if (o.norm_groups !== undefined && o.norm !== 'group') {
    throw new UsageError(`--norm_groups ${o.norm_groups} applies only to --norm group, got --norm ${o.norm}`);
  }
  return {
    model: {
      inputChannels: channels(o.input_nc, 'input_nc'),
      outputChannels: channels(o.output_nc, 'output_nc'),
      netG: o.netG,
      numDowns: o.num_downs,
      ngf: o.ngf,
      ndf: o.ndf,
      nLayersD: o.n_layers_D,
      norm: o.norm,
      // Only group norm has a group count (refused above otherwise); unset, resolvePix2PixOptions applies the default.
      normGroups: o.norm_groups,
      dropout: !o.no_dropout,
      ganMode: o.gan_mode,
      lambdaL1: o.lambda_L1,
      lr: o.lr,
      beta1: o.beta1,
      nEpochs: o.n_epochs,
      nEpochsDecay: o.n_epochs_decay,
      batchSize: o.batch_size,
      seed: o.seed,
      freeze: { encoderLevels: o.freeze_encoder, discriminator: o.freeze_D },
    },
    preprocess: { preprocess: o.preprocess, loadSize: o.load_size, cropSize: o.crop_size, flip: !o.no_flip },
  };
}

/** Install a Ctrl-C handler that asks the loop to save and stop (a second Ctrl-C exits at once). */
export function abortOnSigint(): AbortController {
  const ac = new AbortController();
  process.once('SIGINT', () => {
    console.error('\nCtrl-C: saving a checkpoint after this step (Ctrl-C again to quit now)');
    ac.abort();
    process.once('SIGINT', () => process.exit(130));
  });
  return ac;
}

export const trainCommand = defineCommand({
  name: 'train',
  summary: 'train pix2pix on a paired dataset (reference options), with atomic checkpoints and exact resume',
  usage: 'train --dataroot DIR --checkpoints DIR [reference options]',
  options: TRAIN_OPTIONS,
  epilog: [
    'Writes: latest_net_G/D.safetensors and latest_optim.safetensors (atomic), <epoch>_net_* every --save_epoch_freq,',
    'loss_log.jsonl, samples/epoch_NNN.png (photo | translation | target), options.json, train_state.json.',
    'Ctrl-C saves a checkpoint and exits; --resume continues with the same result as an uninterrupted run.',
    'Example (the seed paper\'s setup): train --dataroot mice --netG unet_256 --preprocess none --n_epochs 100 --n_epochs_decay 100',
  ].join('\n'),
  async run(opts) {
    const dataroot = required(opts, 'dataroot', 'train');
    const out = opts.checkpoints;
    const { model, preprocess } = trainOptionsFromFlags(opts);
    const { openTrainingPairs } = await import('../train/pair_sources_node.js');
    const pairs = await openTrainingPairs(dataroot, { phase: 'train', inputChannels: model.inputChannels, outputChannels: model.outputChannels, maxPairs: opts.max_pairs, seed: opts.seed });
    const augment = opts.augment ? { spec: parseJsonObject(readFileSync(opts.augment, 'utf8'), `--augment ${opts.augment}`) } : undefined;
    const { trainPix2Pix } = await import('../train/trainer_node.js');
    const ac = abortOnSigint();
    const epochs = opts.n_epochs + opts.n_epochs_decay;
    const steps = epochs * Math.floor(pairs.length / opts.batch_size);
    const bar = new Progress('train', steps, 'step');
    console.error(`train: ${pairs.length} pairs, ${epochs} epochs, writing to ${out}`);
    // The first step compiles every GPU kernel (about two minutes at full size on a software adapter):
    // say so, rather than sitting silent; the bar's rate and ETA start from the second step.
    bar.note(`${opts.resume ? 'loading the checkpoint, ' : ''}compiling GPU kernels for the first step (minutes on a software adapter)…`);
    const res = await trainPix2Pix(pairs, {
      out,
      model,
      preprocess,
      augment,
      resume: opts.resume,
      init: opts.init,
      saveEpochFreq: opts.save_epoch_freq,
      signal: ac.signal,
      recordOptions: { argv: process.argv.slice(2), dataroot },
      onNotice: (message) => console.error(`train: ${message}`),
      onStep: (s) => bar.update(s.step, `epoch ${s.epoch} G_GAN ${s.losses.G_GAN.toFixed(3)} G_L1 ${s.losses.G_L1.toFixed(3)} D_real ${s.losses.D_real.toFixed(3)} D_fake ${s.losses.D_fake.toFixed(3)}`),
    });
    await res.model.destroy();
    if (res.interrupted) console.log(`stopped at step ${res.steps}; checkpoint saved in ${out} (continue with --resume)`);
    else console.log(`done: ${res.steps} steps; checkpoints in ${join(out)}`);
    if (pairs.length === 0) throw new UsageError('train: no training pairs');
  },
});

/** A JSON object from `text` (the augmentation spec); anything else is a UsageError naming `what`. */
function parseJsonObject(text: string, what: string): object {
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch (e) {
    throw new UsageError(`${what}: not valid JSON (${e instanceof Error ? e.message : String(e)})`);
  }
  if (v === null || typeof v !== 'object' || Array.isArray(v)) throw new UsageError(`${what}: expected a JSON object, got ${Array.isArray(v) ? 'an array' : v === null ? 'null' : typeof v}`);
  return v;
}
