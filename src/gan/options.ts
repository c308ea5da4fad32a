/**
 * Pix2Pix options: the one place that knows their allowed values and defaults (the reference's pix2pix
 * defaults, options/train_options.py and base_options.py with --model pix2pix). Every option is checked
 * here, at the API boundary, so a typo or an unsupported value fails at once with an InvalidOptionError
 * naming the option, the allowed values and the value given, instead of quietly building something else
 * (before this module, `netG: 'unet_999'` built a unet_256 and `ganMode: 'wgan'` trained as vanilla).
 * An option given as `undefined` takes its default, so callers can spread partially filled objects.
 */
import { GpuContext } from '../runtime/context.js';
import { InvalidOptionError } from '../runtime/errors.js';
import type { NormKind } from '../layers/norm.js';
import type { DiscriminatorConfig, GeneratorConfig } from './networks.js';

export type GanMode = 'vanilla' | 'lsgan';
export type NetG = 'unet_128' | 'unet_256';

export const NET_G_VALUES: readonly NetG[] = ['unet_128', 'unet_256'];
/** The reference's other generators: named so that asking for them says "not implemented", not "unknown". */
export const NET_G_NOT_IMPLEMENTED: readonly string[] = ['resnet_9blocks', 'resnet_6blocks'];
export const NORM_VALUES: readonly NormKind[] = ['batch', 'instance', 'group', 'none'];
export const GAN_MODE_VALUES: readonly GanMode[] = ['vanilla', 'lsgan'];
/** The reference's remaining --gan_mode: a gradient-penalty loss this library does not implement. */
export const GAN_MODE_NOT_IMPLEMENTED: readonly string[] = ['wgangp'];
/** U-Net downsamplings: the reference's blocks need at least 5; 16 (65536-pixel sides) is far beyond any device. */
export const NUM_DOWNS_RANGE = { min: 5, max: 16 } as const;

/** Options of {@link Pix2Pix.create}; defaults ({@link PIX2PIX_DEFAULTS}) are the reference's pix2pix defaults. */
export interface Pix2PixOptions {
  inputChannels?: number;
  outputChannels?: number;
  /** 'unet_256' (8 downs, the reference's pix2pix default) or 'unet_128' (7 downs). The ResNet generators are not implemented. */
  netG?: NetG;
  /** Overrides netG's number of downsamplings (5 to 16). */
  numDowns?: number;
  ngf?: number;
  ndf?: number;
  nLayersD?: number;
  /** 'batch' (the reference's pix2pix default), 'instance', 'group' (GroupNorm, not in the reference) or 'none'. */
  norm?: NormKind;
  /** norm 'group': each norm layer uses the largest divisor of its channel count not above this (default 32). */
  normGroups?: number;
  dropout?: boolean;
  ganMode?: GanMode;
  lambdaL1?: number;
  lr?: number;
  beta1?: number;
  beta2?: number;
  /** Adam's epsilon (torch default 1e-8). */
  eps?: number;
  nEpochs?: number;
  nEpochsDecay?: number;
  epochCount?: number;
  batchSize?: number;
  seed?: number;
  /** Build a discriminator (needed for training; inference-only models can skip it). */
  discriminator?: boolean;
  /** Transfer learning: freeze the encoders of the outermost levels and/or the whole discriminator. */
  freeze?: { encoderLevels?: number; discriminator?: boolean };
  /** Run on this context (shared with other models); give `ctx` or `device`, not both. */
  ctx?: GpuContext;
  /** Create the model's own context on this device. */
  device?: GPUDevice;
  /**
   * Measure the conv kernels on this adapter and use the fastest (src/kernels/conv/tune.ts): at creation the
   * stored choices for this adapter load; each new training-batch shape measures the conv shapes not yet
   * stored and saves them. Kept in ~/.cache/pix2pix-webgpu/tune.json (Node) or the Cache API (browser).
   * An object tunes too, with that timing ({@link TuneTiming}); `true` is the tuner's default timing.
   */
  tune?: boolean | TuneTiming;
}

/**
 * How long the tuner that `tune` runs measures each conv shape: fewer rounds tune sooner but pick from
 * noisier times (on a loaded machine a wrong pick stays in the cache until it is deleted or re-tuned).
 */
export interface TuneTiming {
  /** Timed rounds per candidate kernel, the median kept (at least 1; default 5). */
  repeats?: number;
  /** Untimed rounds per candidate before the calibration round, which take first-use costs (default 1). */
  warmup?: number;
}

/** The tuner's default timing (src/kernels/conv/tune.ts measureShape's defaults). */
export const TUNE_TIMING_DEFAULTS = { repeats: 5, warmup: 1 } as const satisfies Required<TuneTiming>;

export interface ResolvedConfig {
  generator: GeneratorConfig;
  discriminator: DiscriminatorConfig | null;
  ganMode: GanMode;
  lambdaL1: number;
  lr: number;
  beta1: number;
  beta2: number;
  eps: number;
  nEpochs: number;
  nEpochsDecay: number;
  epochCount: number;
  batchSize: number;
  seed: number;
  freeze: { encoderLevels: number; discriminator: boolean };
  tune: boolean;
  /** The tuner's timing when `tune`: what the option's object gave, the rest (or all, for `true`) its defaults, 5 repeats and 1 warm-up round. */
  tuneTiming: Required<TuneTiming>;
}

/** Every default in one place (the reference's pix2pix training defaults). */
export const PIX2PIX_DEFAULTS = {
  inputChannels: 3,
  outputChannels: 3,
  netG: 'unet_256',
  ngf: 64,
  ndf: 64,
  nLayersD: 3,
  norm: 'batch',
  normGroups: 32,
  dropout: true,
  ganMode: 'vanilla',
  lambdaL1: 100,
  lr: 2e-4,
  beta1: 0.5,
  beta2: 0.999,
  eps: 1e-8,
  nEpochs: 100,
  nEpochsDecay: 100,
  epochCount: 1,
  batchSize: 1,
  seed: 0,
  discriminator: true,
} as const satisfies Omit<Required<Pix2PixOptions>, 'numDowns' | 'freeze' | 'ctx' | 'device' | 'tune'>;

const NET_G_DOWNS: Record<NetG, number> = { unet_128: 7, unet_256: 8 };

/**
 * Check every option and fill in the defaults. Throws InvalidOptionError (op, option, allowed, given) for
 * the first bad option. `op` names the API call in the message.
 */
export function resolvePix2PixOptions(o: Pix2PixOptions = {}, op = 'Pix2Pix.create'): ResolvedConfig {
  if (o === null || typeof o !== 'object' || Array.isArray(o)) throw new InvalidOptionError(op, 'options', 'an object (or nothing)', o);
  const check = new OptionChecker(op, o as unknown as Record<string, unknown>);
  const d = PIX2PIX_DEFAULTS;
  const inputChannels = check.int('inputChannels', 1, Infinity, d.inputChannels);
  const outputChannels = check.int('outputChannels', 1, Infinity, d.outputChannels);
  const netG = check.oneOf('netG', NET_G_VALUES, d.netG, NET_G_NOT_IMPLEMENTED);
  const numDowns = check.int('numDowns', NUM_DOWNS_RANGE.min, NUM_DOWNS_RANGE.max, NET_G_DOWNS[netG]);
  const ngf = check.int('ngf', 1, Infinity, d.ngf);
  const ndf = check.int('ndf', 1, Infinity, d.ndf);
  const nLayersD = check.int('nLayersD', 1, Infinity, d.nLayersD);
  const norm = check.oneOf('norm', NORM_VALUES, d.norm);
  // Only group norm has a group count: other configs stay exactly as before (and as saved in checkpoints).
  const groupOpt = norm === 'group' ? { normGroups: check.int('normGroups', 1, Infinity, d.normGroups) } : {};
  const dropout = check.bool('dropout', d.dropout);
  const ganMode = check.oneOf('ganMode', GAN_MODE_VALUES, d.ganMode, GAN_MODE_NOT_IMPLEMENTED);
  const lambdaL1 = check.num('lambdaL1', 0, Infinity, d.lambdaL1);
  const lr = check.num('lr', 0, Infinity, d.lr);
  // torch.optim.Adam accepts betas in [0, 1); 1 would divide by zero in the bias correction.
  const beta1 = check.num('beta1', 0, 1, d.beta1, true);
  const beta2 = check.num('beta2', 0, 1, d.beta2, true);
  const eps = check.num('eps', 0, Infinity, d.eps);
  const nEpochs = check.int('nEpochs', 0, Infinity, d.nEpochs);
  const nEpochsDecay = check.int('nEpochsDecay', 0, Infinity, d.nEpochsDecay);
  const epochCount = check.int('epochCount', 1, Infinity, d.epochCount);
  const batchSize = check.int('batchSize', 1, Infinity, d.batchSize);
  const seed = check.int('seed', -Infinity, Infinity, d.seed);
  const discriminator = check.bool('discriminator', d.discriminator);
  let tune = false;
  let tuneTiming: Required<TuneTiming> = { ...TUNE_TIMING_DEFAULTS };
  if (o.tune !== null && typeof o.tune === 'object' && !Array.isArray(o.tune)) {
    const t = new OptionChecker(op, o.tune as Record<string, unknown>, 'tune.');
    tune = true;
    tuneTiming = { repeats: t.int('repeats', 1, Infinity, TUNE_TIMING_DEFAULTS.repeats), warmup: t.int('warmup', 0, Infinity, TUNE_TIMING_DEFAULTS.warmup) };
  } else if (o.tune !== undefined && typeof o.tune !== 'boolean') {
    throw new InvalidOptionError(op, 'tune', 'true, false or { repeats?: number, warmup?: number }', o.tune);
  } else tune = o.tune ?? false;
  let freeze = { encoderLevels: 0, discriminator: false };
  if (o.freeze !== undefined) {
    if (o.freeze === null || typeof o.freeze !== 'object') throw new InvalidOptionError(op, 'freeze', '{ encoderLevels?: number, discriminator?: boolean }', o.freeze);
    const f = new OptionChecker(op, o.freeze as Record<string, unknown>, 'freeze.');
    freeze = { encoderLevels: f.int('encoderLevels', 0, numDowns, 0), discriminator: f.bool('discriminator', false) };
  }
  if (o.ctx !== undefined && !(o.ctx instanceof GpuContext)) throw new InvalidOptionError(op, 'ctx', 'a GpuContext (from createContext())', o.ctx);
  if (o.device !== undefined && (o.device === null || typeof o.device !== 'object' || typeof (o.device as GPUDevice).createBuffer !== 'function')) {
    throw new InvalidOptionError(op, 'device', 'a GPUDevice', o.device);
  }
  if (o.ctx !== undefined && o.device !== undefined) throw new InvalidOptionError(op, 'device', 'no device when ctx is given (the context already has one)', o.device);
  return {
    generator: { inputChannels, outputChannels, numDowns, ngf, norm, ...groupOpt, dropout },
    discriminator: discriminator ? { inputChannels: inputChannels + outputChannels, ndf, nLayers: nLayersD, norm, ...groupOpt } : null,
    ganMode,
    lambdaL1,
    lr,
    beta1,
    beta2,
    eps,
    nEpochs,
    nEpochsDecay,
    epochCount,
    batchSize,
    seed: seed >>> 0,
    freeze,
    tune,
    tuneTiming,
  };
}

/** Per-option checks with one error format; `prefix` qualifies nested options (freeze.encoderLevels). */
export class OptionChecker {
  constructor(
    private readonly op: string,
    private readonly o: Record<string, unknown>,
    private readonly prefix = '',
  ) {}

  private fail(name: string, allowed: string, note?: string): never {
    throw new InvalidOptionError(this.op, this.prefix + name, allowed, this.o[name], note);
  }

  int(name: string, min: number, max: number, dflt: number): number {
    const v = this.o[name];
    if (v === undefined) return dflt;
    if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) this.fail(name, `an integer ${range(min, max)}`.trimEnd());
    return v;
  }

  /** A finite number in [min, max] (or [min, max) when `openMax`). */
  num(name: string, min: number, max: number, dflt: number, openMax = false): number {
    const v = this.o[name];
    if (v === undefined) return dflt;
    if (typeof v !== 'number' || !Number.isFinite(v) || v < min || (openMax ? v >= max : v > max)) {
      this.fail(name, `a finite number ${openMax ? `in [${min}, ${max})` : range(min, max)}`);
    }
    return v;
  }

  bool(name: string, dflt: boolean): boolean {
    const v = this.o[name];
    if (v === undefined) return dflt;
    if (typeof v !== 'boolean') this.fail(name, 'true or false');
    return v;
  }

  oneOf<T extends string>(name: string, allowed: readonly T[], dflt: T, notImplemented: readonly string[] = []): T {
    const v = this.o[name];
    if (v === undefined) return dflt;
    const list = allowed.map((a) => `'${a}'`).join(', ');
    if (typeof v === 'string' && notImplemented.includes(v)) this.fail(name, `one of ${list}`, `'${v}' is the reference's but not implemented in pix2pix-webgpu`);
    if (typeof v !== 'string' || !(allowed as readonly string[]).includes(v)) this.fail(name, `one of ${list}`);
    return v as T;
  }
}

function range(min: number, max: number): string {
  if (min === -Infinity && max === Infinity) return '';
  if (max === Infinity) return `>= ${min}`;
  return `in [${min}, ${max}]`;
}
