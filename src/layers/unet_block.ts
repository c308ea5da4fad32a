/**
 * The U-Net skip block (the reference's UnetSkipConnectionBlock), one level of the generator:
 *
 *   outermost:  x → conv → [sub] → ReLU → convT(bias) → tanh                       (no skip)
 *   middle:     x → LeakyReLU(0.2) = h → conv → norm → [sub] → ReLU → convT → norm [→ Dropout(0.5)] = o
 *   innermost:  x → LeakyReLU(0.2) = h → conv → ReLU → convT → norm = o
 *   non-outermost output: cat(h, o) along channels.
 *
 * The skip carries h = LeakyReLU(x), not x: the reference's LeakyReLU(0.2, inplace=True) rewrites x
 * before torch.cat reads it. (The parent reads the skip through ReLU and relu(leaky(x)) == relu(x),
 * so neither outputs nor gradients depend on this; scripts/fixtures/pix2pix.py checks both forms.)
 *
 * Layer indices inside the block's nn.Sequential, which name the state-dict keys:
 *   outermost [0 conv, 1 sub, 2 ReLU, 3 convT, 4 tanh]
 *   innermost [0 LeakyReLU, 1 conv, 2 ReLU, 3 convT, 4 norm]
 *   middle    [0 LeakyReLU, 1 conv, 2 norm, 3 sub, 4 ReLU, 5 convT, 6 norm, (7 Dropout)]
 * With norm 'none' the reference keeps an Identity at the norm's index, so indices do not move.
 * Convs have a bias only with instance norm (use_bias); the outermost convT always has one.
 */
import type { Dispatch, GpuContext } from '../runtime/context.js';
import type { Tensor } from '../runtime/tensor.js';
import { ShapeError } from '../runtime/errors.js';
import { activationForward } from '../kernels/activation.js';
import { concatChannelsBackward, concatChannelsForward } from '../kernels/concat.js';
import { ActivationLayer } from './activation.js';
import { Conv2d, ConvTranspose2d } from './conv.js';
import { Dropout, type DropoutRun } from './dropout.js';
import { chainBackward, RunResources, type BackwardOptions, type LayerRun, type Parameter, type RunMode } from './layer.js';
import { BatchNorm2d, makeNorm, type NormKind, type NormLayer } from './norm.js';
import { stateEntriesOf, type StateEntry } from './state.js';

export type UnetBlockKind = 'outermost' | 'middle' | 'innermost';

/** Whether a [1, C, H, W] concatenation can be two views of one buffer (batch 1, aligned second half). */
function concatFree(ctx: GpuContext, catShape: readonly number[], firstChannels: number): boolean {
  const [N, , H, W] = catShape;
  return N === 1 && (firstChannels * H * W * 4) % ctx.limits.minStorageBufferOffsetAlignment === 0;
}

/** Whether two tensors are exactly the same bytes of the same storage. */
function sameRange(a: Tensor, b: Tensor): boolean {
  return a.storage === b.storage && a.byteOffset === b.byteOffset && a.size === b.size;
}

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
  /** 1 for the outermost level, counting inwards; used to freeze encoder levels. */
  level: number;
}

/** Per-run options: which dropout seed each dropout layer starts with, and where their runs go. */
export interface UnetRecordOptions {
  mode: RunMode;
  dropoutRuns: DropoutRun[];
  dropoutSeed: number;
}

export class UnetBlock {
  readonly kind: UnetBlockKind;
  readonly level: number;
  readonly downConv: Conv2d;
  readonly downNorm: NormLayer | null;
  readonly upConv: ConvTranspose2d;
  readonly upNorm: NormLayer | null;
  readonly dropout: Dropout | null;
  readonly submodule: UnetBlock | null;
  readonly outputChannels: number;
  private readonly leaky: ActivationLayer;
  private readonly relu: ActivationLayer;
  private readonly tanh: ActivationLayer;

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
    this.downConv = new Conv2d(ctx, input, o.innerChannels, { ...conv, bias: useBias }, `${tag}.down`);
    this.downNorm = o.kind === 'middle' ? makeNorm(ctx, o.norm, o.innerChannels, `${tag}.downnorm`, o.normGroups) : null;
    const upIn = o.kind === 'innermost' ? o.innerChannels : o.innerChannels * 2;
    this.upConv = new ConvTranspose2d(ctx, upIn, o.outerChannels, { ...conv, bias: o.kind === 'outermost' ? true : useBias }, `${tag}.up`);
    this.upNorm = o.kind === 'outermost' ? null : makeNorm(ctx, o.norm, o.outerChannels, `${tag}.upnorm`, o.normGroups);
    this.dropout = o.kind === 'middle' && o.dropout ? new Dropout(ctx, 0.5) : null;
    this.leaky = new ActivationLayer(ctx, 'leaky_relu', 0.2);
    this.relu = new ActivationLayer(ctx, 'relu');
    this.tanh = new ActivationLayer(ctx, 'tanh');
    this.outputChannels = o.kind === 'outermost' ? o.outerChannels : input + o.outerChannels;
  }

  /** Sequential index of each sub-layer (see the file comment). */
  private get indices() {
    return this.kind === 'outermost'
      ? { down: 0, sub: 1, up: 3, downNorm: -1, upNorm: -1 }
      : this.kind === 'innermost'
        ? { down: 1, sub: -1, up: 3, downNorm: -1, upNorm: 4 }
        : { down: 1, downNorm: 2, sub: 3, up: 5, upNorm: 6 };
  }

  /** State-dict entries in torch's order (module registration order), under `prefix` (e.g. 'model.'). */
  stateEntries(prefix: string): StateEntry[] {
    const ix = this.indices;
    const p = `${prefix}model.`;
    const out: StateEntry[] = [];
    const layers: [number, Conv2d | ConvTranspose2d | NormLayer | UnetBlock | null][] = [
      [ix.down, this.downConv],
      [ix.downNorm, this.downNorm],
      [ix.sub, this.submodule],
      [ix.up, this.upConv],
      [ix.upNorm, this.upNorm],
    ];
    layers.sort((a, b) => a[0] - b[0]);
    for (const [i, layer] of layers) {
      if (i < 0 || !layer) continue;
      if (layer instanceof UnetBlock) out.push(...layer.stateEntries(`${p}${i}.`));
      else out.push(...stateEntriesOf(layer, `${p}${i}.`));
    }
    return out;
  }

  /** Module paths of this block's norm layers and below ('model.model.1.model.2'), for checkpoint patching. */
  normPaths(prefix: string): string[] {
    const ix = this.indices;
    const p = `${prefix}model.`;
    const own = [
      [ix.downNorm, this.downNorm],
      [ix.upNorm, this.upNorm],
    ].flatMap(([i, n]) => (n ? [`${p}${i as number}`] : []));
    return [...own, ...(this.submodule?.normPaths(`${p}${ix.sub}.`) ?? [])];
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

  /**
   * Record the block on input x (and, recursively, its submodule). `preActivated`: the parent's down
   * norm already applied this block's LeakyReLU and wrote x into the skip half of `cat`, this block's
   * output buffer; then backward expects dx to be the skip half of dy (see below).
   */
  record(x: Tensor, opts: UnetRecordOptions, preActivated?: { cat: Tensor }): LayerRun {
    const ctx = this.ctx;
    const res = new RunResources(ctx);
    const tag = `G.level${this.level}`;
    const mode = opts.mode;
    const forward: Dispatch[] = [];
    const add = <R extends LayerRun>(run: R): R => {
      res.child(run);
      forward.push(...run.forward);
      return run;
    };
    // Whether this level's encoder wants gradients: frozen levels skip their weight kernels, and a
    // level whose encoder and all outer encoders are frozen does not need its input gradient either.
    const encoderTrainable = (o: BackwardOptions) => o.paramGrads !== 'none' && this.encoderParams().some((q) => !q.frozen);
    // The up path's ReLU output is only kept from the ReLU to the transposed conv; backward recomputes
    // it for the weight gradient (one cheap element-wise pass) instead of holding a copy of the widest
    // maps through the whole step (123 MiB of 512x1024 unet_256 activations).
    const upBackward = (list: Dispatch[], r: LayerRun, u: LayerRun, after: LayerRun[], dOut: Tensor, dMid: Tensor, mid: Tensor, o: BackwardOptions) => {
      const pg = { paramGrads: o.paramGrads };
      const dU = after.length ? res.tensor(u.output.shape, `${tag}.dup.conv`) : dOut;
      if (after.length) list.push(...chainBackward(res, after, dOut, dU, pg, `${tag}.up`));
      const again = res.tensor(mid.shape, `${tag}.uprelu.recomputed`);
      list.push(...res.own(activationForward(ctx, again, mid, 'relu')));
      const dR = res.tensor(mid.shape, `${tag}.duprelu`);
      list.push(...u.backward(dU, dR, { ...pg, savedInput: again }));
      list.push(...r.backward(dR, dMid, pg));
    };

    if (this.kind === 'outermost') {
      const d = add(this.downConv.record(x, `${tag}.down`));
      const s = add(this.submodule!.record(d.output, opts));
      const r = add(this.relu.record(s.output, `${tag}.uprelu`));
      const u = add(this.upConv.record(r.output, `${tag}.up`));
      const t = add(this.tanh.record(u.output, `${tag}.tanh`));
      return {
        output: t.output,
        forward,
        backward: (dy, dx, o) => {
          const list: Dispatch[] = [];
          const ds = res.tensor(s.output.shape, `${tag}.dsub`);
          upBackward(list, r, u, [t], dy, ds, s.output, o);
          const needDd = !!dx || encoderTrainable(o);
          const dd = needDd ? res.tensor(d.output.shape, `${tag}.ddown`) : null;
          list.push(...s.backward(ds, dd, { paramGrads: o.paramGrads }));
          if (dd) list.push(...d.backward(dd, dx, o));
          return list;
        },
        destroy: () => res.destroy(),
      };
    }

    // Concat-free skip: with batch 1 the output cat(h, o) is two contiguous channel ranges, so the
    // LeakyReLU writes h and the up path writes o straight into their halves of one buffer, and the
    // gradient's halves are read in place. Batches > 1 (channel ranges interleave) copy as before.
    const [N, Cin, H, W] = x.shape;
    const outShape = [N, this.outputChannels, H, W];
    const Cout = this.outputChannels - Cin;
    const sliceable = concatFree(ctx, outShape, Cin);
    if (preActivated && (!sliceable || !sameRange(x, preActivated.cat.view([N, Cin, H, W], 0)))) {
      throw new ShapeError(`${tag}.record`, 'pre-activated input (the skip half of the given cat buffer)', `[${N}, ${Cin}, ${H}, ${W}] at offset 0 of a concat-free buffer`, x.shape);
    }
    const cat = preActivated ? preActivated.cat : sliceable ? res.tensor(outShape, `${tag}.cat`) : null;
    const skipView = cat ? cat.view([N, Cin, H, W], 0, `${tag}.cat.skip`) : undefined;
    const upView = cat ? cat.view([N, Cout, H, W], Cin * H * W, `${tag}.cat.up`) : undefined;

    const h = preActivated ? null : add(this.leaky.record(x, `${tag}.downrelu`, skipView));
    const skip = h ? h.output : x;
    const d = add(this.downConv.record(skip, `${tag}.down`));
    // The child's LeakyReLU runs inside this level's down norm, which writes straight into the child's
    // concatenated buffer (one map and two element-wise passes fewer per level).
    const child = this.submodule;
    const fuseChild = !!this.downNorm && !!child && child.kind !== 'outermost' && concatFree(ctx, [N, child.outputChannels, ...d.output.shape.slice(2)], d.output.shape[1]);
    const childCat = fuseChild ? res.tensor([N, child!.outputChannels, ...d.output.shape.slice(2)], `G.level${child!.level}.cat`) : null;
    const n = this.downNorm
      ? add(this.downNorm.record(d.output, mode, `${tag}.downnorm`, childCat?.view(d.output.shape, 0, `G.level${child!.level}.cat.skip`), childCat ? { kind: 'leaky_relu', slope: child!.leaky.slope } : undefined))
      : null;
    const inner = n ? n.output : d.output;
    const s = child ? add(child.record(inner, opts, childCat ? { cat: childCat } : undefined)) : null;
    const mid = s ? s.output : inner;
    const r = add(this.relu.record(mid, `${tag}.uprelu`));
    const dropoutActive = !!this.dropout && mode.dropout;
    const u = add(this.upConv.record(r.output, `${tag}.up`, !this.upNorm && !dropoutActive ? upView : undefined));
    const after: LayerRun[] = [];
    if (this.upNorm) after.push(add(this.upNorm.record(u.output, mode, `${tag}.upnorm`, dropoutActive ? undefined : upView)));
    if (dropoutActive) {
      const dp = add(this.dropout!.record((after[0] ?? u).output, opts.dropoutSeed + this.level, `${tag}.dropout`, upView));
      opts.dropoutRuns.push(dp);
      after.push(dp);
    }
    const o = (after[after.length - 1] ?? u).output;
    let output = cat;
    if (!output) {
      output = res.tensor(outShape, `${tag}.cat`);
      forward.push(...res.own(concatChannelsForward(ctx, output, skip, o)));
    }
    return {
      output,
      forward,
      backward: (dy, dx, bo) => {
        const list: Dispatch[] = [];
        const pg = { paramGrads: bo.paramGrads };
        // dh (the skip's gradient) starts as dy's skip half; the down conv's input gradient adds to it.
        // In the concat-free layout that half is used in place, so this backward consumes dy.
        let dh: Tensor;
        let dO: Tensor;
        if (cat && (dy.byteOffset + Cin * H * W * 4) % ctx.limits.minStorageBufferOffsetAlignment === 0) {
          dh = dy.view([N, Cin, H, W], 0, `${tag}.dskip`);
          dO = dy.view([N, Cout, H, W], Cin * H * W, `${tag}.dup`);
        } else {
          dh = res.tensor(skip.shape, `${tag}.dskip`);
          dO = res.tensor(o.shape, `${tag}.dup`);
          list.push(...res.own(concatChannelsBackward(ctx, dh, dO, dy, { accumulate: false })));
        }
        const dmid = res.tensor(mid.shape, `${tag}.dmid`);
        upBackward(list, r, u, after, dO, dmid, mid, bo);
        const needInner = !!dx || encoderTrainable(bo);
        let dInner: Tensor | null = dmid;
        if (s) {
          // A pre-activated child accumulates its input gradient in place in dmid's skip half, so that
          // half is dInner; the fused norm backward below applies LeakyReLU' to it.
          dInner = !needInner ? null : childCat ? dmid.view(inner.shape, 0, `${tag}.dinner`) : res.tensor(inner.shape, `${tag}.dinner`);
          list.push(...s.backward(dmid, dInner, pg));
        }
        if (dInner && needInner) {
          let dd = dInner;
          if (n) {
            dd = res.tensor(d.output.shape, `${tag}.ddown`);
            list.push(...n.backward(dInner, dd, pg));
          }
          list.push(...d.backward(dd, dx ? dh : null, { accumulateInput: true, paramGrads: bo.paramGrads }));
        }
        if (dx && h) list.push(...h.backward(dh, dx, { accumulateInput: bo.accumulateInput, paramGrads: bo.paramGrads }));
        if (dx && !h && !sameRange(dx, dh)) {
          throw new ShapeError(`${tag}.backward`, 'dx of a pre-activated block (the skip half of dy, where the skip gradient accumulates)', 'the skip half of dy', dx.label);
        }
        return list;
      },
      destroy: () => res.destroy(),
    };
  }

  params(): Parameter[] {
    const own = [...this.downConv.params(), ...this.upConv.params()];
    for (const n of [this.downNorm, this.upNorm]) if (n) own.push(...n.params());
    return [...own, ...(this.submodule?.params() ?? [])];
  }

  destroy(): void {
    this.downConv.destroy();
    this.upConv.destroy();
    this.downNorm?.destroy();
    this.upNorm?.destroy();
    this.submodule?.destroy();
  }
}
