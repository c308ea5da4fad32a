/**
 * The U-Net skip block (the reference's UnetSkipConnectionBlock), one level of the generator, as a
 * Sequential indexed like the reference's (the indices name the state-dict keys):
 *
 *   outermost  [0 conv, 1 sub, 2 ReLU, 3 convT(bias), 4 tanh]                              (no skip)
 *   innermost  [0 LeakyReLU, 1 conv, 2 ReLU, 3 convT, 4 norm]                          then cat(h, o)
 *   middle     [0 LeakyReLU, 1 conv, 2 norm, 3 sub, 4 ReLU, 5 convT, 6 norm, (7 Dropout)]  then cat(h, o)
 *
 * where h = LeakyReLU(x) is the skip and o the rest of the Sequential applied to h. The skip carries h,
 * not x: the reference's LeakyReLU(0.2, inplace=True) rewrites x before torch.cat reads it. (The parent
 * reads the skip through ReLU and relu(leaky(x)) == relu(x), so neither outputs nor gradients depend on
 * this; scripts/fixtures/pix2pix.py checks both forms.) With norm 'none' the reference keeps an Identity
 * at the norm's index, so indices do not move. Convs have a bias only with instance norm (use_bias); the
 * outermost convT always has one.
 *
 * The block is only structure: the graph passes (passes.ts) make the parent's down norm apply this
 * block's LeakyReLU, run the up path's ReLU inside the transposed conv, and make both halves of the
 * concatenation write in place.
 */
import type { GpuContext } from '../runtime/context.js';
import { ActivationLayer } from './activation.js';
import { ConcatChannels } from './concat.js';
import { Conv2d, ConvTranspose2d } from './conv.js';
import { Dropout } from './dropout.js';
import type { Recorder, SymbolicTensor } from './graph.js';
import type { Parameter } from './layer.js';
import { BatchNorm2d, makeNorm, type NormKind, type NormLayer } from './norm.js';
import { recordInOrder, Sequential, type StatefulLayer } from './sequential.js';
import type { StateEntry } from './state.js';

export type UnetBlockKind = 'outermost' | 'middle' | 'innermost';

export interface UnetBlockOptions {
  kind: UnetBlockKind;
  /** Channels of the block's output (before the skip concat) and of its input unless inputChannels is set. */
  outerChannels: number;
  innerChannels: number;
  inputChannels?: number;
  norm: NormKind;
  /** norm 'group': at most this many groups per norm layer (normGroupsFor in norm.ts). */
  normGroups?: number;
  dropout?: boolean;
  submodule?: UnetBlock;
  /** 1 for the outermost level, counting inwards; used to freeze encoder levels and to label nodes. */
  level: number;
}

export class UnetBlock implements StatefulLayer {
  readonly kind: UnetBlockKind;
  readonly level: number;
  readonly downConv: Conv2d;
  readonly downNorm: NormLayer | null;
  readonly upConv: ConvTranspose2d;
  readonly upNorm: NormLayer | null;
  readonly dropout: Dropout | null;
  readonly submodule: UnetBlock | null;
  /** Channels of the block's output: the up path's, plus the skip's unless outermost. */
  readonly outputChannels: number;
  /** The reference's nn.Sequential of this level (see the file comment for the indices). */
  readonly model: Sequential;
  private readonly concat: ConcatChannels;

  constructor(
    readonly ctx: GpuContext,
    o: UnetBlockOptions,
  ) {
    this.kind = o.kind;
    this.level = o.level;
    const useBias = o.norm === 'instance';
    const conv = { kernel: 4, stride: 2, padding: 1 };
    const input = o.inputChannels ?? o.outerChannels;
    const tag = `G.level${o.level}`;
    this.submodule = o.submodule ?? null;
    if ((o.kind === 'innermost') !== !this.submodule) throw new Error(`UnetBlock: ${o.kind} block ${this.submodule ? 'with' : 'without'} a submodule`);
    this.downConv = new Conv2d(ctx, input, o.innerChannels, { ...conv, bias: useBias }, `${tag}.down`, 'down');
    this.downNorm = o.kind === 'middle' ? makeNorm(ctx, o.norm, o.innerChannels, `${tag}.downnorm`, o.normGroups, 'downnorm') : null;
    const upIn = o.kind === 'innermost' ? o.innerChannels : o.innerChannels * 2;
    this.upConv = new ConvTranspose2d(ctx, upIn, o.outerChannels, { ...conv, bias: o.kind === 'outermost' ? true : useBias }, `${tag}.up`, 'up');
    this.upNorm = o.kind === 'outermost' ? null : makeNorm(ctx, o.norm, o.outerChannels, `${tag}.upnorm`, o.normGroups, 'upnorm');
    // Each dropout layer starts from its own seed (the run's seed plus the level) until the run reseeds it.
    this.dropout = o.kind === 'middle' && o.dropout ? new Dropout(ctx, 0.5, o.level) : null;
    const downRelu = new ActivationLayer(ctx, 'leaky_relu', 0.2, 'downrelu');
    const upRelu = new ActivationLayer(ctx, 'relu', 0.2, 'uprelu');
    this.model =
      o.kind === 'outermost'
        ? new Sequential([this.downConv, this.submodule, upRelu, this.upConv, new ActivationLayer(ctx, 'tanh', 0.2, 'tanh')])
        : o.kind === 'innermost'
          ? new Sequential([downRelu, this.downConv, upRelu, this.upConv, this.upNorm])
          : new Sequential([downRelu, this.downConv, this.downNorm, this.submodule, upRelu, this.upConv, this.upNorm, ...(this.dropout ? [this.dropout] : [])]);
    this.concat = new ConcatChannels(ctx);
    this.outputChannels = o.kind === 'outermost' ? o.outerChannels : input + o.outerChannels;
  }

  /** Outermost: the Sequential. Otherwise cat(h, rest(h)) with h = LeakyReLU(x), the Sequential's first layer. */
  record([x]: readonly SymbolicTensor[], parent: Recorder): SymbolicTensor[] {
    const rec = parent.graph.recorder(parent.mode, `G.level${this.level}`, parent.seed);
    if (this.kind === 'outermost') return this.model.record([x], rec);
    const [downRelu, ...rest] = this.model.layers;
    const h = downRelu!.record([x], rec);
    const o = recordInOrder(rest, h, rec);
    return this.concat.record([h[0], o[0]], rec);
  }

  /** State-dict entries in torch's order (module registration order), under `prefix` (e.g. 'model.'). */
  stateEntries(prefix: string): StateEntry[] {
    return this.model.stateEntries(`${prefix}model.`);
  }

  /** Module paths of this block's norm layers and below ('model.model.1.model.2'), for checkpoint patching. */
  normPaths(prefix: string): string[] {
    return this.model.normPaths(`${prefix}model.`);
  }

  /** Parameters of this level's encoder (down conv and down norm), which `freeze.encoderLevels` freezes. */
  encoderParams(): Parameter[] {
    return [...this.downConv.params(), ...(this.downNorm?.params() ?? [])];
  }

  /** Every BatchNorm2d in the block and below (for num_batches_tracked bookkeeping). */
  batchNorms(): BatchNorm2d[] {
    const own = [this.downNorm, this.upNorm].filter((n): n is BatchNorm2d => n instanceof BatchNorm2d);
    return [...own, ...(this.submodule?.batchNorms() ?? [])];
  }

  params(): Parameter[] {
    return this.model.params();
  }

  destroy(): void {
    this.model.destroy();
  }
}
