import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { required, UsageError, type CommandSpec, type OptionSpec } from './command.js';
import { Progress } from './progress.js';
import { PIX2PIX_DEFAULTS } from '../gan/options.js';

/** The reference options (train_options.py / base_options.py), spelled as the reference spells them. */
export const TRAIN_OPTIONS: Record<string, OptionSpec> = {
  dataroot: { type: 'string', exists: 'folder', arg: 'DIR', description: 'dataset: aligned A|B images (DIR or DIR/train), or A/ and B/ folders, optional manifest' },
  checkpoints: { type: 'string', arg: 'DIR', description: 'output folder for checkpoints, loss log, samples, options', default: 'checkpoints/experiment' },
  netG: { type: 'string', description: 'generator', default: PIX2PIX_DEFAULTS.netG, choices: ['unet_128', 'unet_256'] },
  num_downs: { type: 'count', min: 1, description: 'U-Net downsamplings (overrides netG)' },
  input_nc: { type: 'count', choices: ['1', '3'], description: 'input channels', default: PIX2PIX_DEFAULTS.inputChannels },
  output_nc: { type: 'count', choices: ['1', '3'], description: 'output channels', default: PIX2PIX_DEFAULTS.outputChannels },
  ngf: { type: 'count', min: 1, description: 'generator filters in the last conv layer', default: PIX2PIX_DEFAULTS.ngf },
  ndf: { type: 'count', min: 1, description: 'discriminator filters in the first conv layer', default: PIX2PIX_DEFAULTS.ndf },
  n_layers_D: { type: 'count', min: 1, description: 'PatchGAN layers (3 = 70x70)', default: PIX2PIX_DEFAULTS.nLayersD },
  norm: { type: 'string', description: 'normalisation', default: PIX2PIX_DEFAULTS.norm, choices: ['batch', 'instance', 'none'] },
  no_dropout: { type: 'boolean', description: 'no dropout in the generator' },
  gan_mode: { type: 'string', description: 'GAN loss', default: PIX2PIX_DEFAULTS.ganMode, choices: ['vanilla', 'lsgan'] },
  lambda_L1: { type: 'number', min: 0, description: 'weight of the L1 loss', default: PIX2PIX_DEFAULTS.lambdaL1 },
  lr: { type: 'positive', description: 'Adam learning rate', default: PIX2PIX_DEFAULTS.lr },
  beta1: { type: 'number', min: 0, max: 1, description: "Adam's beta1", default: PIX2PIX_DEFAULTS.beta1 },
  n_epochs: { type: 'count', description: 'epochs at the initial learning rate', default: PIX2PIX_DEFAULTS.nEpochs },
  n_epochs_decay: { type: 'count', description: 'epochs of linear decay to zero', default: PIX2PIX_DEFAULTS.nEpochsDecay },
  batch_size: { type: 'count', min: 1, description: 'batch size', default: PIX2PIX_DEFAULTS.batchSize },
  load_size: { type: 'count', min: 1, description: 'scale images to this size (resize_and_crop, scale_width)', default: 286 },
  crop_size: { type: 'count', min: 1, description: 'then crop to this size', default: 256 },
  preprocess: { type: 'string', description: 'preprocessing', default: 'resize_and_crop', choices: ['resize_and_crop', 'crop', 'scale_width', 'none'] },
  no_flip: { type: 'boolean', description: 'no random horizontal flips' },
  augment: { type: 'string', exists: 'file', arg: 'FILE', description: 'on-the-fly GPU augmentation spec (JSON, Albumentations names), e.g. docs/augment-example.json' },
  max_pairs: { type: 'count', min: 1, description: 'use only this many training pairs (a seeded, nested subset)' },
  init: { type: 'string', exists: 'path', arg: 'FILE|DIR', description: 'initialise from a checkpoint (ours, or the reference latest_net_G.pth) for transfer learning' },
  freeze_encoder: { type: 'count', description: 'freeze the encoders of this many outermost U-Net levels', default: 0 },
  freeze_D: { type: 'boolean', description: 'freeze the discriminator' },
  seed: { type: 'count', description: 'seed of initialisation, data order, crops, flips and dropout', default: PIX2PIX_DEFAULTS.seed },
  save_epoch_freq: { type: 'count', min: 1, description: 'keep a tagged checkpoint every N epochs (latest is saved every epoch)', default: 5 },
  resume: { type: 'boolean', description: 'continue from the checkpoints folder exactly where it stopped' },
};

export interface ParsedTrainOptions {
  model: import('../gan/pix2pix.js').Pix2PixOptions;
  preprocess: import('../train/preprocess.js').PreprocessOptions;
}

/** Reference-style flags → library options. */
export function trainOptionsFromFlags(o: Record<string, unknown>): ParsedTrainOptions {
  const num = (k: string) => o[k] as number | undefined;
  return {
    model: {
      inputChannels: num('input_nc'),
      outputChannels: num('output_nc'),
      netG: o.netG as 'unet_128' | 'unet_256',
      numDowns: num('num_downs'),
      ngf: num('ngf'),
      ndf: num('ndf'),
      nLayersD: num('n_layers_D'),
      norm: o.norm as 'batch' | 'instance' | 'none',
      dropout: !o.no_dropout,
      ganMode: o.gan_mode as 'vanilla' | 'lsgan',
      lambdaL1: num('lambda_L1'),
      lr: num('lr'),
      beta1: num('beta1'),
      nEpochs: num('n_epochs'),
      nEpochsDecay: num('n_epochs_decay'),
      batchSize: num('batch_size'),
      seed: num('seed'),
      freeze: { encoderLevels: num('freeze_encoder') ?? 0, discriminator: !!o.freeze_D },
    },
    preprocess: {
      preprocess: o.preprocess as 'resize_and_crop' | 'crop' | 'scale_width' | 'none',
      loadSize: num('load_size') ?? 286,
      cropSize: num('crop_size') ?? 256,
      flip: !o.no_flip,
    },
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

export const trainCommand: CommandSpec<Record<string, unknown>> = {
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
    const out = opts.checkpoints as string;
    const { model, preprocess } = trainOptionsFromFlags(opts);
    const { openTrainingPairs } = await import('../train/pair_sources_node.js');
    const pairs = await openTrainingPairs(dataroot, { phase: 'train', inputChannels: model.inputChannels as 1 | 3, outputChannels: model.outputChannels as 1 | 3, maxPairs: opts.max_pairs as number | undefined, seed: model.seed ?? PIX2PIX_DEFAULTS.seed });
    const augment = opts.augment ? { spec: JSON.parse(readFileSync(opts.augment as string, 'utf8')) as object } : undefined;
    const { trainPix2Pix } = await import('../train/trainer_node.js');
    const ac = abortOnSigint();
    const epochs = (model.nEpochs ?? PIX2PIX_DEFAULTS.nEpochs) + (model.nEpochsDecay ?? PIX2PIX_DEFAULTS.nEpochsDecay);
    const steps = epochs * Math.floor(pairs.length / (model.batchSize ?? 1));
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
      resume: !!opts.resume,
      init: opts.init as string | undefined,
      saveEpochFreq: opts.save_epoch_freq as number,
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
};
