/**
 * pytorch-fid's InceptionV3 up to pool3 (2048-d features for FID/KID) as a {@link FeatureExtractor},
 * built from the library's WGSL kernels. Semantics follow pytorch-fid (src/pytorch_fid/inception.py,
 * InceptionV3 with resize_input and normalize_input, fid_inception_v3) on torchvision's Inception3:
 *   images [N, 1|3, H, W] in [0, 1] -> gray tiled to RGB -> bilinear resize to 299x299
 *   (align_corners=False, no antialias) -> 2x - 1 -> Conv2d_1a (s2), 2a, 2b (p1) -> max pool k3 s2
 *   -> 3b, 4a -> max pool k3 s2 -> Mixed_5b..5d (FIDInceptionA) -> 6a (InceptionB)
 *   -> 6b..6e (FIDInceptionC) -> 7a (InceptionD) -> 7b (FIDInceptionE_1) -> 7c (FIDInceptionE_2)
 *   -> adaptive average pool to 1x1 -> [N, 2048].
 * FID blocks differ from torchvision's in pooling only: their average pools exclude the padding from
 * the divisor (count_include_pad=False, as TensorFlow), and Mixed_7c's pool branch is a 3x3 max pool.
 *
 * Every BasicConv2d (conv + BatchNorm(eps 1e-3, eval) + ReLU) runs as one conv-with-bias (BN folded at load
 * time, see foldBatchNorm) with a ReLU epilogue, writing straight into its channel range of the block's
 * output when that range is one bindable slice (batch 1), so torch.cat costs nothing; with larger batches
 * a channel-slice copy applies the ReLU and places the result.
 *
 * The forward for a batch size is recorded once as a Dispatch list whose activations are scratch tensors
 * placed by the same memory planner as training (planMemory: tensors whose lifetimes do not overlap share
 * memory) and replayed for every batch: one submit per extract() call.
 */
import type { Dispatch, GpuContext } from '../runtime/context.js';
import { destroyDispatches } from '../runtime/context.js';
import { Tensor } from '../runtime/tensor.js';
import { planMemory, type MemoryPlan } from '../runtime/memory_plan.js';
import { Pix2PixError, ShapeError } from '../runtime/errors.js';
import { conv2dForward, conv2dOutputShape } from '../kernels/conv2d.js';
import { avgPool2dForward, globalAvgPoolForward, maxPool2dForward, pool2dOutputShape, type AvgPool2dParams } from '../kernels/pool.js';
import { resizeBilinearForward } from '../kernels/resize.js';
import { channelSliceCopy } from '../kernels/channel_slice.js';
import type { StateDict } from '../io/state_dict.js';
import type { FeatureExtractor } from './features.js';
import { foldInceptionStateDict, INCEPTION_CONVS, loadInceptionWeights, type InceptionConvSpec, type InceptionWeights } from './inception_weights.js';

/** Input size of the FID Inception (pytorch-fid resizes every image to it). */
export const INCEPTION_INPUT_SIZE = 299;
/** Length of the pool3 feature vector. */
export const INCEPTION_FEATURE_DIMS = 2048;

/**
 * Intermediate outputs {@link InceptionExtractor.inspect} can return: 'input' (the resized, normalised
 * [N, 3, 299, 299] network input), the output of any named BasicConv2d of the stem (after ReLU) or
 * Mixed block, and 'features' ([N, 2048]).
 */
export type InceptionStage = 'input' | 'features' | (typeof STEM)[number] | (typeof MIXED)[number];

const STEM = ['Conv2d_1a_3x3', 'Conv2d_2a_3x3', 'Conv2d_2b_3x3', 'Conv2d_3b_1x1', 'Conv2d_4a_3x3'] as const;
const MIXED = ['Mixed_5b', 'Mixed_5c', 'Mixed_5d', 'Mixed_6a', 'Mixed_6b', 'Mixed_6c', 'Mixed_6d', 'Mixed_6e', 'Mixed_7a', 'Mixed_7b', 'Mixed_7c'] as const;

/** pytorch-fid's pooling in the A, C and E_1 blocks: TensorFlow's average pool, padding not counted. */
const FID_AVG_POOL: AvgPool2dParams = { kernel: 3, stride: 1, padding: 1, countIncludePad: false };

/** Options of {@link InceptionExtractor}. */
export interface InceptionOptions {
  /**
   * Most images per recorded forward (default 8; also capped by the device's storage-binding limit).
   * Larger batches are processed in equal chunks inside one submit. Activation memory is about
   * 22 MB per image of the chunk (the buffers are reused across layers).
   */
  maxBatch?: number;
}

/** The recorded forward for one batch size: 299x299 input buffer -> [B, 2048] features. */
interface TrunkPlan {
  batch: number;
  input: Tensor;
  features: Tensor;
  kept: Map<string, Tensor>;
  dispatches: Dispatch[];
  /** Where the activations live (the kept stages stay alive to the end). */
  plan: MemoryPlan;
}

/** GPU copies of the folded weights. */
interface ConvTensors {
  spec: InceptionConvSpec;
  weight: Tensor;
  bias: Tensor;
}

/**
 * pytorch-fid's InceptionV3 pool3 features on the GPU. Create it with {@link createInceptionExtractorFromWeights}
 * (any environment) or createInceptionExtractor (Node, from a file); `destroy()` frees its memory.
 */
export class InceptionExtractor implements FeatureExtractor {
  readonly name = 'inception-v3-pool3';
  readonly dims = INCEPTION_FEATURE_DIMS;
  /** Most images per recorded forward (see {@link InceptionOptions.maxBatch}). */
  readonly maxBatch: number;
  private readonly convs = new Map<string, ConvTensors>();
  private readonly plans = new Map<number, TrunkPlan>();
  private destroyed = false;

  constructor(
    readonly ctx: GpuContext,
    weights: InceptionWeights,
    opts: InceptionOptions = {},
  ) {
    // The largest activation is Conv2d_2b's [B, 64, 147, 147]; one binding must hold it.
    const perImage = 64 * 147 * 147 * 4;
    const byLimit = Math.max(1, Math.floor(ctx.limits.maxStorageBufferBindingSize / perImage));
    const wanted = opts.maxBatch ?? 8;
    if (!Number.isInteger(wanted) || wanted < 1) throw new ShapeError('inception', 'maxBatch', 'an integer >= 1', wanted);
    this.maxBatch = Math.min(wanted, byLimit);
    for (const spec of INCEPTION_CONVS) {
      const folded = weights.convs.get(spec.name);
      if (!folded) throw new Pix2PixError('inception', `weights lack layer ${spec.name}`);
      this.convs.set(spec.name, {
        spec,
        weight: ctx.tensor([spec.cout, spec.cin, spec.kh, spec.kw], folded.weight, `${spec.name}.weight`),
        bias: ctx.tensor([spec.cout], folded.bias, `${spec.name}.bias`),
      });
    }
  }

  /** pool3 features of `images` ([N, 1|3, H, W] in [0, 1], any size): a new [N, 2048] tensor the caller destroys. */
  async extract(ctx: GpuContext, images: Tensor): Promise<Tensor> {
    const op = 'inception.extract';
    const [N] = this.checkImages(ctx, images, op);
    const out = ctx.tensor([N, this.dims], undefined, 'inception.features');
    const perCall: Dispatch[] = [];
    try {
      await ctx.run(this.record(images, out, this.cachedTrunk(inceptionChunks(N, this.maxBatch).batch), perCall), op);
    } catch (e) {
      out.destroy();
      throw e;
    } finally {
      destroyDispatches(perCall);
    }
    return out;
  }

  /**
   * Run the network once and read back the named intermediate outputs (for tests and debugging):
   * 'input', 'features', stem conv names (after ReLU) and Mixed block names. At most maxBatch images.
   */
  async inspect(images: Tensor, stages: readonly InceptionStage[]): Promise<Map<InceptionStage, { shape: number[]; data: Float32Array }>> {
    const op = 'inception.inspect';
    const [N] = this.checkImages(this.ctx, images, op);
    if (N > this.maxBatch) throw new ShapeError(op, 'image count (inspect runs one chunk)', `<= ${this.maxBatch}`, N);
    const internal = stages.filter((s) => s !== 'features' && s !== 'input');
    const known = new Set<string>([...STEM, ...MIXED]);
    for (const s of internal) if (!known.has(s)) throw new ShapeError(op, 'stage', `input, features, ${[...known].join(', ')}`, s);
    const out = this.ctx.tensor([N, this.dims], undefined, 'inception.features');
    const perCall: Dispatch[] = [];
    const result = new Map<InceptionStage, { shape: number[]; data: Float32Array }>();
    // A one-off trunk that keeps the asked-for outputs alive (the cached ones reuse their buffers).
    const plan = this.buildTrunk(N, new Set(internal));
    try {
      await this.ctx.run(this.record(images, out, plan, perCall), op);
      for (const s of stages) {
        const t = s === 'features' ? out : s === 'input' ? plan.input : plan.kept.get(s)!;
        result.set(s, { shape: [...t.shape], data: await t.read() });
      }
    } finally {
      out.destroy();
      destroyDispatches(perCall);
      this.destroyPlan(plan);
    }
    return result;
  }

  /** Bytes of activation buffers held by recorded forwards (weights not included). */
  get activationBytes(): number {
    let b = 0;
    for (const p of this.plans.values()) b += p.plan.arenaBytes + p.input.byteLength + p.features.byteLength;
    return b;
  }

  destroy(): void {
    if (this.destroyed) return;
    this.destroyed = true;
    for (const p of this.plans.values()) this.destroyPlan(p);
    this.plans.clear();
    for (const c of this.convs.values()) {
      c.weight.destroy();
      c.bias.destroy();
    }
    this.convs.clear();
  }

  private checkImages(ctx: GpuContext, images: Tensor, op: string): number[] {
    if (this.destroyed) throw new Pix2PixError(op, 'extractor used after destroy()');
    if (ctx !== this.ctx) throw new Pix2PixError(op, 'images belong to another context than the extractor');
    ctx.checkTensor(images, op, undefined, 'images');
    const s = images.shape;
    if (s.length !== 4 || (s[1] !== 1 && s[1] !== 3) || s.some((d) => d < 1)) {
      throw new ShapeError(op, 'images shape', '[N, 1 or 3, H, W] with N, H, W >= 1', [...s]);
    }
    return [...s];
  }

  /**
   * The dispatches of one forward over all of `images`: per chunk (see {@link inceptionChunks}), resize
   * into the trunk's input, replay the trunk, copy its features into `out`'s rows. The last chunk may
   * use only part of the trunk, so one recorded trunk serves every chunk of one submit.
   */
  private record(images: Tensor, out: Tensor, plan: TrunkPlan, perCall: Dispatch[]): Dispatch[] {
    const N = images.shape[0];
    const outRows = out.reshape([1, N * this.dims, 1, 1]);
    const dispatches: Dispatch[] = [];
    for (let n0 = 0; n0 < N; n0 += plan.batch) {
      const count = Math.min(plan.batch, N - n0);
      const input = new Tensor(this.ctx, [count, 3, INCEPTION_INPUT_SIZE, INCEPTION_INPUT_SIZE], plan.input.buffer, 'inception.input', false);
      const feats = new Tensor(this.ctx, [1, count * this.dims, 1, 1], plan.features.buffer, 'inception.pool3', false);
      // pytorch-fid: F.interpolate(x, (299, 299), bilinear, align_corners=False), then 2x - 1.
      const front = resizeBilinearForward(this.ctx, input, images, { alignCorners: false, mul: 2, add: -1, srcBatchOffset: n0 });
      const tail = channelSliceCopy(this.ctx, outRows, feats, { c0: n0 * this.dims });
      perCall.push(...front, ...tail);
      dispatches.push(...front, ...plan.dispatches, ...tail);
    }
    return dispatches;
  }

  /**
   * The recorded trunk for `batch` images. At most two stay cached (a dataset's full batches and its
   * remainder), so varying batch sizes do not pile up activation memory.
   */
  private cachedTrunk(batch: number): TrunkPlan {
    let plan = this.plans.get(batch);
    if (plan) {
      this.plans.delete(batch); // re-insert: Map order is least recently used first
    } else {
      plan = this.buildTrunk(batch, new Set());
      while (this.plans.size >= 2) {
        const [oldest, old] = this.plans.entries().next().value as [number, TrunkPlan];
        this.destroyPlan(old);
        this.plans.delete(oldest);
      }
    }
    this.plans.set(batch, plan);
    return plan;
  }

  private destroyPlan(p: TrunkPlan): void {
    destroyDispatches(p.dispatches);
    p.plan.destroy();
    p.input.destroy();
    p.features.destroy();
  }

  /**
   * Record the network from the [B, 3, 299, 299] input to [B, 2048] features. Activations are scratch:
   * the memory planner gives them shared memory by lifetime once the list is recorded, so a forward
   * needs a few activations' memory; the stages in `keep` stay alive to the end for inspect().
   */
  private buildTrunk(B: number, keep: Set<string>): TrunkPlan {
    const ctx = this.ctx;
    const input = ctx.tensor([B, 3, INCEPTION_INPUT_SIZE, INCEPTION_INPUT_SIZE], undefined, 'inception.input');
    const features = ctx.tensor([B, this.dims, 1, 1], undefined, 'inception.pool3');
    const { dispatches, kept } = ctx.deferAllocations(() => this.recordTrunk(input, features, keep));
    const plan = planMemory(ctx, dispatches, { keep: [...kept.values()], label: `inception.trunk${B}` });
    return { batch: B, input, features, kept, dispatches, plan };
  }

  /** The trunk's dispatches; every activation is a scratch tensor (see buildTrunk). */
  private recordTrunk(input: Tensor, features: Tensor, keep: Set<string>): { dispatches: Dispatch[]; kept: Map<string, Tensor> } {
    const ctx = this.ctx;
    const B = input.shape[0];
    const scratch = (shape: readonly number[], label: string) => ctx.scratch(shape, label);
    const ds: Dispatch[] = [];
    const kept = new Map<string, Tensor>();
    const align = ctx.limits.minStorageBufferOffsetAlignment;
    /**
     * BasicConv2d: conv (BN folded into weight and bias) and ReLU into channels [c0, ...) of dst. Where
     * those channels are one bindable range (batch 1, or the whole of dst) the conv writes them itself with
     * its ReLU epilogue; otherwise it writes a scratch map that a channel-slice copy applies the ReLU to.
     */
    const convInto = (dst: Tensor, c0: number, x: Tensor, name: string) => {
      const c = this.convs.get(name)!;
      const p = { stride: [c.spec.sh, c.spec.sw] as [number, number], padding: [c.spec.ph, c.spec.pw] as [number, number] };
      const shape = conv2dOutputShape(x.shape, c.weight.shape, p, name);
      const plane = shape[2] * shape[3];
      const whole = c0 === 0 && shape[1] === dst.shape[1];
      if (whole || (B === 1 && (c0 * plane * 4) % align === 0)) {
        const out = whole ? dst : dst.view(shape, c0 * plane, `${dst.label}[${name}]`);
        ds.push(...conv2dForward(ctx, out, x, c.weight, c.bias, { ...p, outputActivation: { kind: 'relu' } }));
        return;
      }
      const tmp = scratch(shape, `${name}.conv`);
      ds.push(...conv2dForward(ctx, tmp, x, c.weight, c.bias, p));
      ds.push(...channelSliceCopy(ctx, dst, tmp, { c0, relu: true }));
    };
    /** BasicConv2d into a new tensor (labelled with the layer's name). */
    const conv = (x: Tensor, name: string) => {
      const c = this.convs.get(name)!;
      const shape = conv2dOutputShape(x.shape, c.weight.shape, { stride: [c.spec.sh, c.spec.sw], padding: [c.spec.ph, c.spec.pw] }, name);
      const y = scratch(shape, name);
      convInto(y, 0, x, name);
      return y;
    };
    const maxPool = (x: Tensor, stride: number, padding: number, label: string) => {
      const p = { kernel: 3, stride, padding };
      const y = scratch(pool2dOutputShape(x.shape, p, label), label);
      ds.push(...maxPool2dForward(ctx, y, x, p));
      return y;
    };
    const avgPool = (x: Tensor, label: string) => {
      const y = scratch(pool2dOutputShape(x.shape, FID_AVG_POOL, label), label);
      ds.push(...avgPool2dForward(ctx, y, x, FID_AVG_POOL));
      return y;
    };
    /** A block's output: [B, channels, H, W], labelled with the block's name (so `keep` finds it). */
    const blockOut = (name: string, channels: number, h: number, w: number) => scratch([B, channels, h, w], name);
    const pooledInto = (dst: Tensor, c0: number, pooled: Tensor, convName: string | null) => {
      if (convName) convInto(dst, c0, pooled, convName);
      else ds.push(...channelSliceCopy(ctx, dst, pooled, { c0 }));
    };

    const fidA = (x: Tensor, n: string, poolFeatures: number) => {
      const [, , H, W] = x.shape;
      const y = blockOut(n, 224 + poolFeatures, H, W);
      convInto(y, 0, x, `${n}.branch1x1`);
      const b5 = conv(x, `${n}.branch5x5_1`);
      convInto(y, 64, b5, `${n}.branch5x5_2`);
      const d = conv(conv(x, `${n}.branch3x3dbl_1`), `${n}.branch3x3dbl_2`);
      convInto(y, 128, d, `${n}.branch3x3dbl_3`);
      pooledInto(y, 224, avgPool(x, `${n}.avg_pool`), `${n}.branch_pool`);
      return y;
    };
    const inceptionB = (x: Tensor, n: string) => {
      const [, C, H, W] = x.shape;
      const [Ho, Wo] = [Math.floor((H - 3) / 2) + 1, Math.floor((W - 3) / 2) + 1];
      const y = blockOut(n, 384 + 96 + C, Ho, Wo);
      convInto(y, 0, x, `${n}.branch3x3`);
      const d = conv(conv(x, `${n}.branch3x3dbl_1`), `${n}.branch3x3dbl_2`);
      convInto(y, 384, d, `${n}.branch3x3dbl_3`);
      pooledInto(y, 480, maxPool(x, 2, 0, `${n}.max_pool`), null);
      return y;
    };
    const fidC = (x: Tensor, n: string) => {
      const [, , H, W] = x.shape;
      const y = blockOut(n, 768, H, W);
      convInto(y, 0, x, `${n}.branch1x1`);
      const b7 = conv(conv(x, `${n}.branch7x7_1`), `${n}.branch7x7_2`);
      convInto(y, 192, b7, `${n}.branch7x7_3`);
      let d = conv(x, `${n}.branch7x7dbl_1`);
      for (const k of [2, 3, 4]) d = conv(d, `${n}.branch7x7dbl_${k}`);
      convInto(y, 384, d, `${n}.branch7x7dbl_5`);
      pooledInto(y, 576, avgPool(x, `${n}.avg_pool`), `${n}.branch_pool`);
      return y;
    };
    const inceptionD = (x: Tensor, n: string) => {
      const [, C, H, W] = x.shape;
      const [Ho, Wo] = [Math.floor((H - 3) / 2) + 1, Math.floor((W - 3) / 2) + 1];
      const y = blockOut(n, 320 + 192 + C, Ho, Wo);
      const b3 = conv(x, `${n}.branch3x3_1`);
      convInto(y, 0, b3, `${n}.branch3x3_2`);
      let b7 = conv(x, `${n}.branch7x7x3_1`);
      for (const k of [2, 3]) b7 = conv(b7, `${n}.branch7x7x3_${k}`);
      convInto(y, 320, b7, `${n}.branch7x7x3_4`);
      pooledInto(y, 512, maxPool(x, 2, 0, `${n}.max_pool`), null);
      return y;
    };
    /** FIDInceptionE_1 (average pool, padding not counted) or FIDInceptionE_2 (3x3 max pool, stride 1). */
    const fidE = (x: Tensor, n: string, pool: 'avg' | 'max') => {
      const [, , H, W] = x.shape;
      const y = blockOut(n, 2048, H, W);
      convInto(y, 0, x, `${n}.branch1x1`);
      const b3 = conv(x, `${n}.branch3x3_1`);
      convInto(y, 320, b3, `${n}.branch3x3_2a`);
      convInto(y, 704, b3, `${n}.branch3x3_2b`);
      const d = conv(conv(x, `${n}.branch3x3dbl_1`), `${n}.branch3x3dbl_2`);
      convInto(y, 1088, d, `${n}.branch3x3dbl_3a`);
      convInto(y, 1472, d, `${n}.branch3x3dbl_3b`);
      const pooled = pool === 'avg' ? avgPool(x, `${n}.avg_pool`) : maxPool(x, 1, 1, `${n}.max_pool`);
      pooledInto(y, 1856, pooled, `${n}.branch_pool`);
      return y;
    };
    const stem = (x: Tensor, name: string) => {
      const y = conv(x, name);
      if (keep.has(name)) kept.set(name, y);
      return y;
    };
    const block = (y: Tensor) => {
      if (keep.has(y.label)) kept.set(y.label, y);
      return y;
    };

    let x = stem(input, 'Conv2d_1a_3x3');
    x = stem(x, 'Conv2d_2a_3x3');
    x = stem(x, 'Conv2d_2b_3x3');
    x = maxPool(x, 2, 0, 'maxpool1');
    x = stem(x, 'Conv2d_3b_1x1');
    x = stem(x, 'Conv2d_4a_3x3');
    x = maxPool(x, 2, 0, 'maxpool2');
    x = block(fidA(x, 'Mixed_5b', 32));
    x = block(fidA(x, 'Mixed_5c', 64));
    x = block(fidA(x, 'Mixed_5d', 64));
    x = block(inceptionB(x, 'Mixed_6a'));
    x = block(fidC(x, 'Mixed_6b'));
    x = block(fidC(x, 'Mixed_6c'));
    x = block(fidC(x, 'Mixed_6d'));
    x = block(fidC(x, 'Mixed_6e'));
    x = block(inceptionD(x, 'Mixed_7a'));
    x = block(fidE(x, 'Mixed_7b', 'avg'));
    x = block(fidE(x, 'Mixed_7c', 'max'));
    ds.push(...globalAvgPoolForward(ctx, features, x));
    return { dispatches: ds, kept };
  }
}

/**
 * How a batch of N images is split for a trunk of at most `maxBatch` images: into equal chunks
 * (ceil(N / chunks) images each, the last one possibly smaller), so at most chunks - 1 trunk slots
 * idle, where fixed maxBatch-sized chunks could leave maxBatch - 1.
 */
export function inceptionChunks(N: number, maxBatch: number): { batch: number; chunks: { n0: number; count: number }[] } {
  const n = Math.ceil(N / maxBatch);
  const batch = Math.ceil(N / n);
  const chunks: { n0: number; count: number }[] = [];
  for (let n0 = 0; n0 < N; n0 += batch) chunks.push({ n0, count: Math.min(batch, N - n0) });
  return { batch, chunks };
}

/**
 * An InceptionExtractor from pytorch-fid's weights: the bytes of pt_inception-2015-12-05-6726825d.pth
 * (or a safetensors file of the same state dict), a parsed StateDict, or weights already folded by
 * loadInceptionWeights. Browser-safe (the caller fetches the file).
 */
export async function createInceptionExtractorFromWeights(
  ctx: GpuContext,
  weights: Uint8Array | StateDict | InceptionWeights,
  opts: InceptionOptions & { fileName?: string } = {},
): Promise<InceptionExtractor> {
  let folded: InceptionWeights;
  if (weights instanceof Uint8Array) folded = await loadInceptionWeights(weights, opts.fileName);
  else if (weights instanceof Map) folded = foldInceptionStateDict(weights, opts.fileName);
  else folded = weights;
  return new InceptionExtractor(ctx, folded, opts);
}
