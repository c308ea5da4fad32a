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
import type { GpuContext } from '../runtime/context.js';
import type { Tensor } from '../runtime/tensor.js';
import { ShapeError } from '../runtime/errors.js';
import { mixSeed } from '../runtime/random.js';
import { ActivationLayer } from '../layers/activation.js';
import { Conv2d } from '../layers/conv.js';
import { Graph, type Layer, type LoweredNode, type RecordedGraph } from '../layers/graph.js';
import type { LayerRun, Parameter, RunMode } from '../layers/layer.js';
import { BatchNorm2d, makeNorm, type NormKind } from '../layers/norm.js';
import { standardPasses } from '../layers/passes.js';
import { Sequential } from '../layers/sequential.js';
import type { StateEntry } from '../layers/state.js';
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

/** A recorded generator forward plus its dropout layers, whose seeds change every step. */
export interface GeneratorRun extends LayerRun {
  /** The lowered dropout nodes, innermost first (empty in eval mode or without dropout). */
  readonly dropoutRuns: readonly LoweredNode[];
  /** New dropout masks: one seed per dropout layer, derived from `seed`. */
  setDropoutSeed(seed: number): void;
}

/** Where a network's recorded output goes: a new tensor, or `into` (e.g. a slice of the next network's input). */
export interface NetworkRecordOptions {
  into?: Tensor;
}

/** Record `layer` on one input tensor as its own graph and lower it with the standard passes. */
function recordNetwork(ctx: GpuContext, layer: Layer, x: Tensor, mode: RunMode, prefix: string, seed: number, into?: Tensor): RecordedGraph {
  const graph = new Graph(ctx);
  const [y] = layer.record([graph.input(x)], graph.recorder(mode, prefix, seed));
  return graph.lower([y], { passes: standardPasses(ctx), into: into ? new Map([[y, into]]) : undefined });
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

  /**
   * Record a forward on x [N, inputChannels, H, W]; dropout layers run only when mode.dropout, starting
   * from `dropoutSeed` (plus each layer's level) until setDropoutSeed. `into`: write the output there.
   */
  record(x: Tensor, mode: RunMode, dropoutSeed = 0, opts: NetworkRecordOptions = {}): GeneratorRun {
    const { inputChannels, numDowns } = this.config;
    const m = this.sizeMultiple;
    if (x.shape.length !== 4 || x.shape[1] !== inputChannels) throw new ShapeError('UnetGenerator', 'input shape', `[N, ${inputChannels}, H, W]`, x.shape);
    if (x.shape[2] % m !== 0 || x.shape[3] % m !== 0) {
      throw new ShapeError('UnetGenerator', `image size (height and width must be multiples of 2^${numDowns} = ${m})`, `multiples of ${m}`, `${x.shape[2]}x${x.shape[3]}`);
    }
    const run = recordNetwork(this.ctx, this.root, x, mode, 'G', dropoutSeed, opts.into);
    const dropoutRuns = run.seeded;
    return {
      output: run.output,
      forward: run.forward,
      backward: (dy, dx, o) => run.backward(dy, dx, o),
      destroy: () => run.destroy(),
      dropoutRuns,
      setDropoutSeed: (seed: number) => dropoutRuns.forEach((d, i) => d.setSeed!(mixSeed(seed, i))),
    };
  }

  destroy(): void {
    this.root.destroy();
    this.pack.destroy();
  }
}

/** Re-exported for callers of the networks' dropout seeding; defined in runtime/random.ts. */
export { mixSeed };

/** The PatchGAN discriminator: conv(k4 s2) LeakyReLU, (conv norm LeakyReLU) x n_layers, conv(k4 s1) to 1 channel. */
export class NLayerDiscriminator {
  /** The reference's nn.Sequential (Identity, as null, at the norms' indices for norm 'none'). */
  readonly model: Sequential;
  /** Every parameter, gradient and Adam moment in four packed buffers (one Adam dispatch). */
  readonly pack: ParameterPack;

  constructor(
    readonly ctx: GpuContext,
    readonly config: DiscriminatorConfig,
  ) {
    const { inputChannels, ndf, nLayers, norm, normGroups } = config;
    if (!Number.isInteger(nLayers) || nLayers < 1) throw new ShapeError('NLayerDiscriminator', 'nLayers', 'an integer >= 1', nLayers);
    const useBias = norm === 'instance';
    const layers: (Layer | null)[] = [];
    const conv = (cin: number, cout: number, stride: number, bias: boolean) =>
      new Conv2d(ctx, cin, cout, { kernel: 4, stride, padding: 1, bias }, `D.model.${layers.length}`, `model.${layers.length}`);
    const leaky = () => new ActivationLayer(ctx, 'leaky_relu', 0.2, `model.${layers.length}`);
    const normLayer = (channels: number) => makeNorm(ctx, norm, channels, `D.model.${layers.length}`, normGroups, `model.${layers.length}`);
    layers.push(conv(inputChannels, ndf, 2, true));
    layers.push(leaky());
    let mult = 1;
    for (let n = 1; n < nLayers; n++) {
      const prev = mult;
      mult = Math.min(2 ** n, 8);
      layers.push(conv(ndf * prev, ndf * mult, 2, useBias));
      layers.push(normLayer(ndf * mult));
      layers.push(leaky());
    }
    const prev = mult;
    mult = Math.min(2 ** nLayers, 8);
    layers.push(conv(ndf * prev, ndf * mult, 1, useBias));
    layers.push(normLayer(ndf * mult));
    layers.push(leaky());
    layers.push(conv(ndf * mult, 1, 1, true));
    this.model = new Sequential(layers);
    this.pack = new ParameterPack(ctx, this.params(), 'D');
  }

  stateEntries(): StateEntry[] {
    return this.model.stateEntries('model.');
  }

  params(): Parameter[] {
    return this.stateEntries().flatMap((e) => (e.kind === 'param' ? [e.param] : []));
  }

  batchNorms(): BatchNorm2d[] {
    return this.model.layers.flatMap((layer) => (layer instanceof BatchNorm2d ? [layer] : []));
  }

  /** Module paths of the norm layers ('model.3'). */
  normPaths(): string[] {
    return this.model.normPaths('model.');
  }

  setFrozen(frozen: boolean): void {
    for (const p of this.params()) p.frozen = frozen;
  }

  /** Record a forward on x [N, inputChannels, H, W] → logits [N, 1, h, w]. */
  record(x: Tensor, mode: RunMode, label = 'D'): LayerRun {
    if (x.shape.length !== 4 || x.shape[1] !== this.config.inputChannels) {
      throw new ShapeError('NLayerDiscriminator', 'input shape', `[N, ${this.config.inputChannels}, H, W]`, x.shape);
    }
    // Each k4 conv changes the side by -1 (stride 1) or halves it (stride 2): find the first too small.
    let [h, w] = [x.shape[2], x.shape[3]];
    this.model.layers.forEach((layer, index) => {
      if (!(layer instanceof Conv2d)) return;
      const [, , oh, ow] = layer.outputShape([1, layer.inChannels, h, w]);
      if (oh < 1 || ow < 1) throw new ShapeError('NLayerDiscriminator', `input too small at layer ${index}`, 'a positive output size', [x.shape[0], layer.outChannels, oh, ow]);
      [h, w] = [oh, ow];
    });
    return recordNetwork(this.ctx, this.model, x, mode, label, 0);
  }

  destroy(): void {
    this.model.destroy();
    this.pack.destroy();
  }
}
