/**
 * The pix2pix networks, built layer for layer as the reference's models/networks.py so that state
 * dicts load both ways with the same key names:
 *  - UnetGenerator(input_nc, output_nc, num_downs, ngf, norm, use_dropout): unet_128 = 7 downs,
 *    unet_256 = 8; channels ngf → 2ngf → 4ngf → 8ngf (→ 8ngf ...); Dropout(0.5) in the num_downs − 5
 *    8ngf blocks around the innermost.
 *  - NLayerDiscriminator(input_nc, ndf, n_layers, norm): the 70x70 PatchGAN for n_layers = 3.
 * norm is the reference's 'batch' / 'instance' / 'none', or 'group' (GroupNorm, this library's addition:
 * see layers/norm.ts for its group count rule and docs/EXTENDING.md for how it was added).
 */
import type { Dispatch, GpuContext } from '../runtime/context.js';
import type { Tensor } from '../runtime/tensor.js';
import { ShapeError } from '../runtime/errors.js';
import { mixSeed } from '../runtime/random.js';
import { ActivationLayer } from '../layers/activation.js';
import { Conv2d } from '../layers/conv.js';
import type { DropoutRun } from '../layers/dropout.js';
import { chainBackward, RunResources, type LayerRun, type Parameter, type RunMode } from '../layers/layer.js';
import { BatchNorm2d, GroupNorm2d, InstanceNorm2d, makeNorm, type NormKind, type NormLayer } from '../layers/norm.js';
import { stateEntriesOf, type StateEntry } from '../layers/state.js';
import { UnetBlock } from '../layers/unet_block.js';
import { ParameterPack } from '../layers/param_pack.js';

export interface GeneratorConfig {
  inputChannels: number;
  outputChannels: number;
  numDowns: number;
  ngf: number;
  norm: NormKind;
  /** norm 'group': at most this many groups per layer (normGroupsFor in layers/norm.ts; default 32). */
  normGroups?: number;
  dropout: boolean;
}

export interface DiscriminatorConfig {
  inputChannels: number;
  ndf: number;
  nLayers: number;
  norm: NormKind;
  /** norm 'group': at most this many groups per layer (normGroupsFor in layers/norm.ts; default 32). */
  normGroups?: number;
}

/** A recorded generator forward: its runs plus the dropout runs whose seeds change every step. */
export interface GeneratorRun extends LayerRun {
  readonly dropoutRuns: readonly DropoutRun[];
  /** New dropout masks: one seed per dropout layer, derived from `seed`. */
  setDropoutSeed(seed: number): void;
}

export class UnetGenerator {
  readonly root: UnetBlock;
  /** Every parameter, gradient and Adam moment in four packed buffers (one Adam dispatch). */
  readonly pack: ParameterPack;
  /** Level 1 (outermost) first. */
  readonly levels: UnetBlock[] = [];

  constructor(
    readonly ctx: GpuContext,
    readonly config: GeneratorConfig,
  ) {
    const { inputChannels, outputChannels, numDowns, ngf, norm, normGroups, dropout } = config;
    if (!Number.isInteger(numDowns) || numDowns < 5) throw new ShapeError('UnetGenerator', 'numDowns', 'an integer >= 5', numDowns);
    for (const [name, v] of [['inputChannels', inputChannels], ['outputChannels', outputChannels], ['ngf', ngf]] as const) {
      if (!Number.isInteger(v) || v < 1) throw new ShapeError('UnetGenerator', name, 'a positive integer', v);
    }
    let block = new UnetBlock(ctx, { kind: 'innermost', outerChannels: ngf * 8, innerChannels: ngf * 8, norm, normGroups, level: numDowns });
    for (let i = 0; i < numDowns - 5; i++) {
      block = new UnetBlock(ctx, { kind: 'middle', outerChannels: ngf * 8, innerChannels: ngf * 8, norm, normGroups, dropout, submodule: block, level: numDowns - 1 - i });
    }
    block = new UnetBlock(ctx, { kind: 'middle', outerChannels: ngf * 4, innerChannels: ngf * 8, norm, normGroups, submodule: block, level: 4 });
    block = new UnetBlock(ctx, { kind: 'middle', outerChannels: ngf * 2, innerChannels: ngf * 4, norm, normGroups, submodule: block, level: 3 });
    block = new UnetBlock(ctx, { kind: 'middle', outerChannels: ngf, innerChannels: ngf * 2, norm, normGroups, submodule: block, level: 2 });
    this.root = new UnetBlock(ctx, { kind: 'outermost', outerChannels: outputChannels, innerChannels: ngf, inputChannels, norm, normGroups, submodule: block, level: 1 });
    for (let b: UnetBlock | null = this.root; b; b = b.submodule) this.levels.push(b);
    this.pack = new ParameterPack(ctx, this.params(), 'G');
  }

  /** Image sides must be multiples of 2^numDowns (each level halves them). */
  get sizeMultiple(): number {
    return 2 ** this.config.numDowns;
  }

  stateEntries(): StateEntry[] {
    return this.root.stateEntries('model.');
  }

  params(): Parameter[] {
    return this.stateEntries().flatMap((e) => (e.kind === 'param' ? [e.param] : []));
  }

  /** Module paths of the norm layers ('model.model.1.model.2'). */
  normPaths(): string[] {
    return this.root.normPaths('model.');
  }

  batchNorms(): BatchNorm2d[] {
    return this.root.batchNorms();
  }

  /** Freeze (or unfreeze) the encoder (down conv + down norm) of the `levels` outermost levels. */
  freezeEncoder(levels: number): void {
    this.levels.forEach((b, i) => {
      for (const p of b.encoderParams()) p.frozen = i < levels;
    });
  }

  /** Record a forward on x [N, inputChannels, H, W]; dropout layers run only when mode.dropout. */
  record(x: Tensor, mode: RunMode, dropoutSeed = 0): GeneratorRun {
    const { inputChannels, numDowns } = this.config;
    const m = this.sizeMultiple;
    if (x.shape.length !== 4 || x.shape[1] !== inputChannels) throw new ShapeError('UnetGenerator', 'input shape', `[N, ${inputChannels}, H, W]`, x.shape);
    if (x.shape[2] % m !== 0 || x.shape[3] % m !== 0) {
      throw new ShapeError('UnetGenerator', `image size (height and width must be multiples of 2^${numDowns} = ${m})`, `multiples of ${m}`, `${x.shape[2]}x${x.shape[3]}`);
    }
    const dropoutRuns: DropoutRun[] = [];
    const run = this.root.record(x, { mode, dropoutRuns, dropoutSeed });
    return {
      ...run,
      output: run.output,
      forward: run.forward,
      dropoutRuns,
      setDropoutSeed: (seed: number) => dropoutRuns.forEach((d, i) => d.setSeed(mixSeed(seed, i))),
    };
  }

  destroy(): void {
    this.root.destroy();
    this.pack.destroy();
  }
}

/** Re-exported for callers of the networks' dropout seeding; defined in runtime/random.ts. */
export { mixSeed };

type DLayer = { index: number; layer: Conv2d | NormLayer | ActivationLayer };

/** The PatchGAN discriminator: conv(k4 s2) LeakyReLU, (conv norm LeakyReLU) x n_layers, conv(k4 s1) to 1 channel. */
export class NLayerDiscriminator {
  private readonly layers: DLayer[] = [];
  /** Every parameter, gradient and Adam moment in four packed buffers (one Adam dispatch). */
  readonly pack: ParameterPack;

  constructor(
    readonly ctx: GpuContext,
    readonly config: DiscriminatorConfig,
  ) {
    const { inputChannels, ndf, nLayers, norm, normGroups } = config;
    if (!Number.isInteger(nLayers) || nLayers < 1) throw new ShapeError('NLayerDiscriminator', 'nLayers', 'an integer >= 1', nLayers);
    const useBias = norm === 'instance';
    let index = 0;
    const push = (layer: DLayer['layer'] | null) => {
      if (layer) this.layers.push({ index, layer });
      index++; // Identity for norm 'none' still takes its index in the reference's Sequential
    };
    const conv = (cin: number, cout: number, stride: number, bias: boolean) =>
      new Conv2d(ctx, cin, cout, { kernel: 4, stride, padding: 1, bias }, `D.model.${index}`);
    const leaky = () => new ActivationLayer(ctx, 'leaky_relu', 0.2);
    push(conv(inputChannels, ndf, 2, true));
    push(leaky());
    let mult = 1;
    for (let n = 1; n < nLayers; n++) {
      const prev = mult;
      mult = Math.min(2 ** n, 8);
      push(conv(ndf * prev, ndf * mult, 2, useBias));
      push(makeNorm(ctx, norm, ndf * mult, `D.model.${index}`, normGroups));
      push(leaky());
    }
    const prev = mult;
    mult = Math.min(2 ** nLayers, 8);
    push(conv(ndf * prev, ndf * mult, 1, useBias));
    push(makeNorm(ctx, norm, ndf * mult, `D.model.${index}`, normGroups));
    push(leaky());
    push(conv(ndf * mult, 1, 1, true));
    this.pack = new ParameterPack(ctx, this.params(), 'D');
  }

  stateEntries(): StateEntry[] {
    return this.layers.flatMap(({ index, layer }) => (layer instanceof ActivationLayer ? [] : stateEntriesOf(layer, `model.${index}.`)));
  }

  params(): Parameter[] {
    return this.stateEntries().flatMap((e) => (e.kind === 'param' ? [e.param] : []));
  }

  batchNorms(): BatchNorm2d[] {
    return this.layers.flatMap(({ layer }) => (layer instanceof BatchNorm2d ? [layer] : []));
  }

  /** Module paths of the norm layers ('model.3'). */
  normPaths(): string[] {
    return this.layers.flatMap(({ index, layer }) => (layer instanceof BatchNorm2d || layer instanceof InstanceNorm2d || layer instanceof GroupNorm2d ? [`model.${index}`] : []));
  }

  setFrozen(frozen: boolean): void {
    for (const p of this.params()) p.frozen = frozen;
  }

  /** Record a forward on x [N, inputChannels, H, W] → logits [N, 1, h, w]. */
  record(x: Tensor, mode: RunMode, label = 'D'): LayerRun {
    if (x.shape.length !== 4 || x.shape[1] !== this.config.inputChannels) {
      throw new ShapeError('NLayerDiscriminator', 'input shape', `[N, ${this.config.inputChannels}, H, W]`, x.shape);
    }
    const res = new RunResources(this.ctx);
    const runs: LayerRun[] = [];
    const forward: Dispatch[] = [];
    let h = x;
    for (let i = 0; i < this.layers.length; i++) {
      const { index, layer } = this.layers[i];
      const tag = `${label}.model.${index}`;
      const next = this.layers[i + 1]?.layer;
      // norm → LeakyReLU runs as one kernel each way (the norm's fused activation): one map and two
      // element-wise passes fewer per layer.
      const fuse = !(layer instanceof Conv2d || layer instanceof ActivationLayer) && next instanceof ActivationLayer && next.kind === 'leaky_relu';
      if (fuse) i++;
      const run =
        layer instanceof Conv2d || layer instanceof ActivationLayer
          ? layer.record(h, tag)
          : layer.record(h, mode, tag, undefined, fuse ? { kind: 'leaky_relu', slope: (next as ActivationLayer).slope } : undefined);
      if (run.output.shape[2] < 1 || run.output.shape[3] < 1) throw new ShapeError('NLayerDiscriminator', `input too small at layer ${index}`, 'a positive output size', run.output.shape);
      res.child(run);
      runs.push(run);
      forward.push(...run.forward);
      h = run.output;
    }
    return {
      output: h,
      forward,
      backward: (dy, dx, o) => chainBackward(res, runs, dy, dx, o, label),
      destroy: () => res.destroy(),
    };
  }

  destroy(): void {
    for (const { layer } of this.layers) if (!(layer instanceof ActivationLayer)) layer.destroy();
    this.pack.destroy();
  }
}
