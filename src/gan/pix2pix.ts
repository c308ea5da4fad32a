/**
 * pix2pix (Isola et al. 2017) as the reference trains it (models/pix2pix_model.py):
 *
 *   fake_B = G(real_A)
 *   D step: loss_D = ½ [GAN(D(cat(A, fake_B).detach()), False) + GAN(D(cat(A, B)), True)]; Adam on D
 *   G step: loss_G = GAN(D(cat(A, fake_B)), True) + λ · L1(fake_B, B) (D frozen); Adam on G
 *
 * The whole step is recorded once as one ordered Dispatch list (G forward, D fake forward and
 * backward, D real forward and backward, D's Adam, G's D forward and backward, L1, G's Adam) and
 * replayed as a single submit; per step only the input batch, the Adam step/lr uniforms and the
 * dropout seeds are written. Activations, gradients and scratch are transient tensors that
 * planMemory() packs into shared arenas by lifetime once the list is recorded.
 * Dispatches in one compute pass run in order, so the generator's D pass sees the updated D, as in
 * the reference. D's BatchNorm layers run in train mode in all three passes (running statistics move
 * three times per step), G's once.
 */
import type { Dispatch, GpuContext } from '../runtime/context.js';
import { destroyDispatches } from '../runtime/context.js';
import { planMemory, type MemoryPlan } from '../runtime/memory_plan.js';
import { createContext } from '../runtime/device.js';
import { Tensor } from '../runtime/tensor.js';
import { GpuValidationError, InvalidOptionError, ModelBusyError, Pix2PixError, ShapeError } from '../runtime/errors.js';
import { imagesToTensorData, tensorDataToImages, type ImageF32 } from '../data/image.js';
import { adamStep, updateAdam } from '../kernels/adam.js';
import { concatChannelsBackward, concatChannelsForward } from '../kernels/concat.js';
import { initConstant, initNormal } from '../kernels/init.js';
import { bceWithLogitsStep, l1LossStep, mseLossStep } from '../kernels/loss.js';
import type { StateDict } from '../io/state_dict.js';
import { EVAL_MODE, TRAIN_MODE, type LayerRun, type Parameter, type RunMode } from '../layers/layer.js';
import type { ParameterPack } from '../layers/param_pack.js';
import { NLayerDiscriminator, UnetGenerator, mixSeed, type GeneratorRun } from './networks.js';
import { linearLambda } from './lr_policy.js';
import { loadStateDictInto, readStateDict } from './state_dict.js';
import {
  checkMomentSize,
  checkOptimizerParameters,
  decodeForNetwork,
  decodeOptimizerState,
  encodeOptimizerState,
  encodeStateDict,
  isNamedSource,
  momentKeys,
  namedSource,
  readArchitecture,
  type CheckpointArchitecture,
  type CheckpointInput,
  type NamedStateSource,
} from './checkpoint_codec.js';
import { OptionChecker, resolvePix2PixOptions, type Pix2PixOptions, type ResolvedConfig } from './options.js';
import { collectConvShapes } from '../kernels/conv/policy.js';
import { loadTuning, tuneConvShapes, type TuneOptions } from '../kernels/conv/tune.js';
import { defaultTuneStore, type AdapterTuning } from '../kernels/conv/tune_store.js';
import { downloadBytes, splitDownloadOptions, type DownloadOptions } from './from_url.js';
import { GpuWaitPacer, pacingWanted } from './gpu_wait.js';
import { deviceClass } from '../kernels/conv/device_class.js';

export { PIX2PIX_DEFAULTS, resolvePix2PixOptions, type GanMode, type NetG, type Pix2PixOptions, type ResolvedConfig } from './options.js';
export type { DownloadOptions, DownloadProgress } from './from_url.js';
export type { CheckpointInput, NamedStateSource, StateSource } from './checkpoint_codec.js';

/** The four losses the reference logs; G_L1 is λ·L1 (loss_G_L1 includes lambda_L1). */
export interface Pix2PixLosses {
  G_GAN: number;
  G_L1: number;
  D_real: number;
  D_fake: number;
}

/** A batch: tensors [N, C, H, W] in [-1, 1], or images in [0, 1] (converted as the reference's Normalize(0.5, 0.5)). */
export type Batch = { a: Tensor | readonly ImageF32[]; b: Tensor | readonly ImageF32[] };

export interface TranslateOptions {
  /** Eval mode (the reference's test.py --eval): running BatchNorm statistics, no dropout. Default false:
   * as test.py without --eval, BatchNorm uses the input's own statistics and dropout is active. */
  eval?: boolean;
  /** Dropout seed for the default mode (default: a fixed seed, so translations are reproducible). */
  seed?: number;
  /** Pad images whose sides are not multiples of 2^numDowns (reflection at the right and bottom), then crop back. */
  pad?: boolean;
}

/** Bytes of a saved model: three safetensors files. */
export interface Pix2PixCheckpoint {
  G: Uint8Array;
  D?: Uint8Array;
  optimizer?: Uint8Array;
}

/**
 * Checkpoints to load: G required, D and the optimizer state optional. Each is file bytes (safetensors or a
 * torch .pth), a parsed state dict, or `{ data, name }` with either, so that every error names the file.
 */
export interface CheckpointSources {
  G: CheckpointInput;
  D?: CheckpointInput;
  optimizer?: CheckpointInput;
}

/** Sources with their names, as the loaders pass them on. */
interface NamedSources {
  G: NamedStateSource;
  D?: NamedStateSource;
  optimizer?: NamedStateSource;
}

/** A training step produced a NaN or infinite loss. The weights are no longer valid: reload the last good checkpoint. */
export class NonFiniteLossError extends Pix2PixError {
  constructor(
    readonly step: number,
    readonly losses: Pix2PixLosses,
  ) {
    // Not JSON.stringify: it writes NaN and Infinity as null, hiding which loss went wrong.
    const shown = Object.entries(losses).map(([k, v]) => `${k} ${v}`).join(', ');
    super('Pix2Pix.trainStep', `non-finite loss at training step ${step}: ${shown}; the weights are corrupt, reload the last good checkpoint`);
  }
}

/**
 * Largest D input pair (bytes) whose fake and real passes run as one batch: 256x256 RGB pairs do, 512x1024 do not.
 * @internal Mutable for tests only (not exported by the entries): test/gan/batched_d.test.ts sets `maxPairBytes`
 * to -1 to force two D passes at a small size, where both paths must train alike. Read when a step is recorded.
 */
export const BATCHED_D_LIMIT = { maxPairBytes: 4 * 2 ** 20 };

/**
 * Training steps submitted and not yet read back, at most: enough for the JavaScript work of the next step to
 * overlap the GPU work of this one, few enough that the device queue never runs far ahead of its callers.
 */
const MAX_STEPS_IN_FLIGHT = 2;

/** Everything one recorded training step owns. */
interface TrainGraph {
  key: string;
  a: Tensor;
  /** Other tensors that take the A batch (the real pair's A channels, when D's inputs are written in place). */
  aCopies: Tensor[];
  b: Tensor;
  g: GeneratorRun;
  runs: LayerRun[];
  tensors: Tensor[];
  ownDispatches: Dispatch[][];
  adamD: Dispatch[];
  adamG: Dispatch[];
  list: Dispatch[];
  losses: [Tensor, Tensor, Tensor, Tensor]; // G_GAN, G_L1 (unscaled), D_real, D_fake
  /** Loss read-back buffers, one per step that may be in flight (MAX_STEPS_IN_FLIGHT), used in turn; `free` settles when its last read-back has. */
  staging: { buffer: GPUBuffer; free: Promise<void> }[];
  /** Steps submitted on this graph (picks the next staging buffer). */
  submitted: number;
  /** Where the step's activations, gradients and scratch live (assigned after recording). */
  plan: MemoryPlan | null;
}

interface TranslateGraph {
  input: Tensor;
  run: GeneratorRun;
  plan: MemoryPlan;
}

/**
 * A pix2pix model on one GPU context.
 *
 * Calls queue: trainStep, translate, save, load and setEpoch (and destroy, which waits for the queue)
 * run one at a time in the order they were made, each resolving with its own result, whether or not the
 * caller awaited the previous one (Promise.all, a double click). Overlapping calls used to interleave
 * on the GPU: two steps mapped the same loss read-back buffer ("Buffer already has an outstanding map
 * pending" in Chromium) and left the model unusable. A call that fails rejects alone; the calls queued
 * behind it still run. Arguments are checked when the call is made, so a bad argument rejects at once.
 */
export class Pix2Pix {
  readonly G: UnetGenerator;
  readonly D: NLayerDiscriminator | null;
  /** Adam step counts (torch's state['step']), per network. */
  private stepG = 0;
  private stepD = 0;
  /** Training steps taken (dropout seeds derive from it, so resuming reproduces the masks). */
  private trainSteps = 0;
  /** LambdaLR's step count (the reference's update_learning_rate calls). */
  private schedulerSteps = 0;
  private graph: TrainGraph | null = null;
  /** How long to sleep before waiting for a step's losses (gpu_wait.ts); reset with each new step graph. */
  private readonly waitPacer: GpuWaitPacer;
  /** The last submitted step's loss read-back, settled (read-backs run in step order, one at a time). */
  private readbackTail: Promise<void> = Promise.resolve();
  /** Read-backs not yet settled (destroy waits for them: their buffers are mapping). */
  private readbacksPending = 0;
  /** When the last read-back found its losses readable (performance.now()): a later step's GPU work starts no earlier. */
  private lastReadableAt = 0;
  private readonly translateGraphs = new Map<string, TranslateGraph>();
  private destroyed = false;
  /** The last queued call (settled: its failure is its caller's, not the next call's). */
  private tail: Promise<void> = Promise.resolve();
  /** Calls queued or running. */
  private queued = 0;
  /** Set by destroy(): new calls are refused; resources go once the queue drains. */
  private closing: Promise<void> | null = null;

  private constructor(
    readonly ctx: GpuContext,
    private readonly ownsCtx: boolean,
    readonly config: ResolvedConfig,
  ) {
    this.waitPacer = new GpuWaitPacer(pacingWanted(deviceClass(ctx)));
    this.G = new UnetGenerator(ctx, config.generator);
    this.D = config.discriminator ? new NLayerDiscriminator(ctx, config.discriminator) : null;
    this.applyFreeze();
  }

  /**
   * A new model with the reference's initialisation (weights N(0, 0.02), BatchNorm weights N(1, 0.02), biases 0), seeded.
   * Every option is checked first: an unknown value throws InvalidOptionError naming the option, the allowed values and the value.
   */
  static async create(opts: Pix2PixOptions = {}): Promise<Pix2Pix> {
    const config = resolvePix2PixOptions(opts, 'Pix2Pix.create');
    return Pix2Pix.build(opts, config, async (model) => {
      await model.initWeights();
      if (config.tune) await loadTuning(model.ctx, await defaultTuneStore());
    });
  }

  /** Construct on the options' context and run `init`; free everything (an owned context too) if either fails. */
  private static async build(opts: Pix2PixOptions, config: ResolvedConfig, init: (m: Pix2Pix) => Promise<void>): Promise<Pix2Pix> {
    const { ctx, owns } = await contextFor(opts);
    let model: Pix2Pix;
    try {
      model = new Pix2Pix(ctx, owns, config);
    } catch (e) {
      if (owns) ctx.destroy();
      throw e;
    }
    try {
      await init(model);
    } catch (e) {
      await model.destroy();
      throw e;
    }
    return model;
  }

  /**
   * A model from checkpoints: the architecture is inferred from the generator's (and discriminator's)
   * tensor shapes, `opts` overrides the rest (dropout, training hyper-parameters, freeze). `optimizer`
   * restores Adam moments, step counts and the LR schedule position for an exact resume. Give a source as
   * `{ data, name }` (name: its path or URL) and every error about it names that file.
   */
  static async fromStateDict(sources: CheckpointSources, opts: Pix2PixOptions = {}): Promise<Pix2Pix> {
    const op = 'Pix2Pix.fromStateDict';
    checkSources(sources, op);
    return Pix2Pix.fromSources(nameSources(sources), opts, op);
  }

  /**
   * A model from checkpoint files on the web (safetensors or torch .pth; G, optional D and optimizer), as
   * {@link fromStateDict} with the bytes. Downloads stream with `onProgress({ url, loaded, total, fromCache })`,
   * `signal` aborts (rejecting with its reason, an AbortError by default), `cache: true` (or a cache name)
   * keeps the files in the browser's Cache API keyed by URL, so the next load makes no request. Node has
   * fetch but no Cache API: there `cache` is ignored. HTTP and network failures throw FetchError naming the URL and status.
   */
  static async fromUrl(urls: { G: string | URL; D?: string | URL; optimizer?: string | URL }, opts: Pix2PixOptions & DownloadOptions = {}): Promise<Pix2Pix> {
    const op = 'Pix2Pix.fromUrl';
    if (urls === null || typeof urls !== 'object') throw new InvalidOptionError(op, 'urls', '{ G: url, D?: url, optimizer?: url }', urls);
    for (const k of ['G', 'D', 'optimizer'] as const) {
      const u = urls[k];
      if ((k === 'G' || u !== undefined) && !((typeof u === 'string' && u !== '') || u instanceof URL)) throw new InvalidOptionError(op, `urls.${k}`, 'a URL (string or URL)', u);
    }
    const { download, rest } = splitDownloadOptions(opts, op);
    resolvePix2PixOptions(rest, op); // bad options fail before any download
    // One failed file stops the others' downloads: the caller's signal and any failure abort them all.
    const all = new AbortController();
    const outer = download.signal;
    const forward = () => all.abort(outer!.reason);
    if (outer?.aborted) forward();
    outer?.addEventListener('abort', forward, { once: true });
    const get = (u: string | URL | undefined) =>
      u === undefined
        ? Promise.resolve(undefined)
        : downloadBytes(u, { ...download, signal: all.signal }, op).catch((e: unknown) => {
            all.abort(e);
            throw e;
          });
    let G: Uint8Array | undefined, D: Uint8Array | undefined, optimizer: Uint8Array | undefined;
    try {
      [G, D, optimizer] = await Promise.all([get(urls.G), get(urls.D), get(urls.optimizer)]);
    } finally {
      outer?.removeEventListener('abort', forward);
    }
    outer?.throwIfAborted();
    const named = (k: string, data: Uint8Array | undefined, u: string | URL | undefined) => (data ? { data, name: `${k} checkpoint ${String(u)}` } : undefined);
    return Pix2Pix.fromSources({ G: named('G', G, urls.G)!, D: named('D', D, urls.D), optimizer: named('optimizer', optimizer, urls.optimizer) }, rest, op);
  }

  /** Infer the architecture from the checkpoints (reading only what inference needs), build, then load. */
  private static async fromSources(sources: NamedSources, opts: Pix2PixOptions, op: string): Promise<Pix2Pix> {
    resolvePix2PixOptions(opts, op);
    const arch = await readArchitecture(sources.G, sources.D, { dropout: opts.dropout, normGroups: opts.normGroups });
    const gc = arch.generator;
    const dc = arch.discriminator;
    const merged: Pix2PixOptions = {
      ...opts,
      inputChannels: gc.inputChannels,
      outputChannels: gc.outputChannels,
      numDowns: gc.numDowns,
      ngf: gc.ngf,
      norm: gc.norm,
      normGroups: gc.normGroups,
      dropout: gc.dropout,
      ndf: dc?.ndf ?? opts.ndf,
      nLayersD: dc?.nLayers ?? opts.nLayersD,
    };
    return Pix2Pix.build(opts, resolvePix2PixOptions(merged, op), async (model) => {
      if (model.D && !sources.D) await model.initWeights('D');
      await model.loadNow(sources, arch.heads);
    });
  }

  // ------------------------------------------------------------------------------------ call queue

  /** Run `fn` after every call queued before it; its result (or error) is this call's alone. */
  private enqueue<T>(op: string, fn: () => Promise<T> | T): Promise<T> {
    this.assertAlive(op);
    this.queued++;
    const run = this.tail.then(fn);
    const settle = () => {
      this.queued--;
    };
    this.tail = run.then(settle, settle);
    return run;
  }

  /** Calls queued or running (0 when idle). */
  get pendingCalls(): number {
    return this.queued;
  }

  // ------------------------------------------------------------------------------------ learning rate

  /** The current learning rate: lr · lambda_rule(scheduler steps), as of the calls completed so far. */
  get lr(): number {
    return this.config.lr * linearLambda(this.schedulerSteps, this.config);
  }

  /**
   * The reference's update_learning_rate(): one LambdaLR step. Its train.py calls it at the start of every epoch.
   * Synchronous (it returns the new rate), so it cannot wait its turn: it throws ModelBusyError while calls are
   * queued. setEpoch queues.
   */
  updateLearningRate(): number {
    this.assertAlive('updateLearningRate');
    if (this.queued > 0) throw new ModelBusyError('Pix2Pix.updateLearningRate', this.queued);
    this.schedulerSteps++;
    return this.lr;
  }

  /**
   * Set the schedule to training epoch `epoch` (counting from epochCount), as the reference's loop would have it.
   * Returns that epoch's learning rate. While calls are queued the change takes effect after them, in call
   * order (a trainStep called before setEpoch trains with the old rate, one called after with the new).
   */
  setEpoch(epoch: number): number {
    if (typeof epoch !== 'number' || !Number.isInteger(epoch)) throw new InvalidOptionError('Pix2Pix.setEpoch', 'epoch', 'an integer', epoch);
    const steps = epoch - this.config.epochCount + 1;
    const apply = () => {
      this.schedulerSteps = steps;
    };
    if (this.queued > 0) void this.enqueue('setEpoch', apply);
    else {
      this.assertAlive('setEpoch');
      apply();
    }
    return this.config.lr * linearLambda(steps, this.config);
  }

  /** Training steps taken so far (by the calls completed so far). */
  get steps(): number {
    return this.trainSteps;
  }

  // ------------------------------------------------------------------------------------ training

  /**
   * One optimisation step on a batch (the reference's optimize_parameters). Returns the four losses. Queued (see
   * the class), but the queue moves on once the step is submitted: ask for the next step before awaiting this
   * one's losses and the GPU gets it while this one runs (at most two steps are in flight; a third waits). A
   * batch of Tensors is copied when the step's turn comes, so do not overwrite them before its losses resolve.
   */
  async trainStep(batch: Batch): Promise<Pix2PixLosses> {
    const op = 'Pix2Pix.trainStep';
    this.assertAlive('trainStep');
    if (!this.D) throw new Pix2PixError(op, 'this model has no discriminator (created with discriminator: false)');
    if (batch === null || typeof batch !== 'object') throw new InvalidOptionError(op, 'batch', '{ a, b }: image arrays or [N, C, H, W] tensors', batch);
    const a = batchData(this.ctx, batch.a, 'batch.a', this.config.generator.inputChannels, op);
    const b = batchData(this.ctx, batch.b, 'batch.b', this.config.generator.outputChannels, op);
    if (a.shape[0] !== b.shape[0] || a.shape[2] !== b.shape[2] || a.shape[3] !== b.shape[3]) {
      throw new ShapeError(op, 'b batch/size (must match a)', `[${a.shape[0]}, *, ${a.shape[2]}, ${a.shape[3]}]`, b.shape);
    }
    const m = this.G.sizeMultiple;
    if (a.shape[2] % m !== 0 || a.shape[3] % m !== 0) {
      throw new ShapeError(op, `image size: height and width must be multiples of 2^${this.config.generator.numDowns} = ${m}`, `multiples of ${m}`, `${a.shape[2]}x${a.shape[3]}`);
    }
    // The queued part ends once the step is submitted (trainStepNow); its losses resolve later. Wrapped in an
    // object so that the queue does not wait for the inner promise.
    return this.enqueue('trainStep', () => this.trainStepNow(a, b)).then((r) => r.losses);
  }

  /**
   * Runs in the call queue until the step is submitted; its losses are read back after the queue has moved on.
   * So a caller that asks for the next step before awaiting this one's losses (the trainer does) has it
   * encoded and submitted while this one runs on the GPU: the JavaScript thread's per-step work (encoding,
   * the next batch, logging) overlaps the kernels instead of adding to them. The queue keeps the GPU's order
   * (a step's writes and the next step's reads are ordered by the device queue), and at most
   * MAX_STEPS_IN_FLIGHT steps are submitted and not yet read back, so the GPU queue never runs far ahead.
   */
  private async trainStepNow(a: HostBatch, b: HostBatch): Promise<{ losses: Promise<Pix2PixLosses> }> {
    if (!this.D) throw new Pix2PixError('Pix2Pix.trainStep', 'this model has no discriminator');
    const key = a.shape.join('x');
    if (!this.graph || this.graph.key !== key) {
      // The old graph's read-back buffers may still be mapping.
      await this.readbackTail;
      this.destroyGraph();
      if (this.config.tune) await this.tuneConvNow(a.shape, { store: await defaultTuneStore(), ...this.config.tuneTiming });
      this.graph = this.ctx.deferAllocations(() => this.recordTrainStep(a.shape));
      this.graph.plan = planMemory(this.ctx, this.graph.list, { label: 'pix2pix.trainStep' });
      this.waitPacer.reset();
    }
    const g = this.graph;
    // The staging buffer this step uses was last used MAX_STEPS_IN_FLIGHT steps ago: wait for that read-back.
    const slot = g.staging[g.submitted++ % g.staging.length];
    await slot.free;
    const step = this.trainSteps + 1;
    for (const dst of [g.a, ...g.aCopies]) writeInput(this.ctx, dst, a);
    writeInput(this.ctx, g.b, b);
    const lr = this.lr;
    g.g.setDropoutSeed(mixSeed(this.config.seed, step));
    if (g.adamD.length) updateAdam(g.adamD, { lr, step: this.stepD + 1 });
    updateAdam(g.adamG, { lr, step: this.stepG + 1 });
    this.ctx.encodeAndSubmit(g.list, 'pix2pix.trainStep');
    const staging = slot.buffer;
    // The copy is submitted now, before any later step can overwrite the loss tensors.
    const enc = this.ctx.device.createCommandEncoder({ label: 'pix2pix.losses' });
    g.losses.forEach((t, i) => enc.copyBufferToBuffer(t.buffer, t.offset, staging, i * 4, 4));
    this.ctx.device.queue.submit([enc.finish()]);
    const submitted = performance.now();
    this.trainSteps = step;
    if (g.adamD.length) this.stepD++;
    if (g.adamG.length) this.stepG++;
    for (const bn of this.G.batchNorms()) bn.numBatchesTracked += 1;
    for (const bn of this.D.batchNorms()) bn.numBatchesTracked += 3;
    const lambdaL1 = this.config.lambdaL1;
    const losses = this.readLosses(staging, submitted, () => this.trainSteps > step).then(([ganG, l1, dReal, dFake]) => {
      const out = { G_GAN: ganG, G_L1: l1 * lambdaL1, D_real: dReal, D_fake: dFake };
      if (![ganG, l1, dReal, dFake].every(Number.isFinite)) throw new NonFiniteLossError(step, out);
      return out;
    });
    const settled = losses.then(
      () => undefined,
      () => undefined,
    );
    this.readbacksPending++;
    void settled.then(() => this.readbacksPending--);
    slot.free = settled;
    this.readbackTail = settled;
    return { losses };
  }

  /** A step's losses, once the previous step's are read (in order, so the pacer sees one step at a time). */
  private async readLosses(staging: GPUBuffer, submitted: number, queuedBehind: () => boolean): Promise<number[]> {
    await this.readbackTail;
    await this.ctx.flush('pix2pix.trainStep');
    // The step's GPU work starts once it is submitted and the step before it is done. Sleep through most of
    // it before mapAsync, whose wait spins a core in Node (gpu_wait.ts).
    const start = Math.max(submitted, this.lastReadableAt);
    await this.waitPacer.pace(performance.now() - start, queuedBehind());
    try {
      await staging.mapAsync(1 /* GPUMapMode.READ */, 0, 16);
    } catch (e) {
      // A device lost after the step was submitted aborts the map: name the loss (flush throws DeviceLostError).
      await this.ctx.flush('pix2pix.trainStep');
      throw new GpuValidationError('pix2pix.trainStep', `loss read-back failed: ${String(e)}`);
    }
    const out = Array.from(new Float32Array(staging.getMappedRange(0, 16).slice(0)));
    staging.unmap();
    this.lastReadableAt = performance.now();
    this.waitPacer.record(this.lastReadableAt - start);
    return out;
  }

  /**
   * Measure the conv kernels of a training step on input batches of `shapeA` ([N, C, H, W]) on this adapter,
   * use the fastest from now on (graphs built later), and keep them in `opts.store` (src/kernels/conv/tune.ts).
   */
  async tuneConv(shapeA: readonly number[], opts: TuneOptions = {}): Promise<AdapterTuning> {
    return this.enqueue('tuneConv', () => this.tuneConvNow(shapeA, opts));
  }

  private async tuneConvNow(shapeA: readonly number[], opts: TuneOptions): Promise<AdapterTuning> {
    if (!this.D) throw new Pix2PixError('Pix2Pix.tuneConv', 'this model has no discriminator (tuning measures a training step)');
    // Record a step only to learn its conv shapes, then free it unplanned.
    const { result: g, shapes } = collectConvShapes(this.ctx, () => this.ctx.deferAllocations(() => this.recordTrainStep(shapeA)));
    for (const r of g.runs) r.destroy();
    for (const l of g.ownDispatches) destroyDispatches(l);
    for (const x of g.tensors) x.destroy();
    for (const s of g.staging) s.buffer.destroy();
    return tuneConvShapes(this.ctx, shapes, opts);
  }

  private recordTrainStep(shapeA: readonly number[]): TrainGraph {
    const ctx = this.ctx;
    const G = this.G;
    const D = this.D!;
    const cfg = this.config;
    const [N, cA, H, W] = shapeA;
    const cOut = cfg.generator.outputChannels;
    const cAB = cA + cOut;
    const plane = H * W;
    const align = ctx.limits.minStorageBufferOffsetAlignment;
    const tensors: Tensor[] = [];
    const ownDispatches: Dispatch[][] = [];
    const runs: LayerRun[] = [];
    // Inputs and losses are written and read by the CPU around every step, so they get their own
    // buffers; everything else is scratch that the step's memory plan places.
    const t = (shape: number[], label: string, scratch = true) => {
      const x = scratch ? ctx.scratch(shape, label) : ctx.tensor(shape, undefined, label);
      tensors.push(x);
      return x;
    };
    const own = (l: Dispatch[]) => {
      ownDispatches.push(l);
      return l;
    };

    // D's inputs cat(A, fake) and cat(A, B). With batch 1 each is two contiguous channel ranges: A and
    // B are written straight into them, G writes its output into the fake pair's slice and the gradient
    // w.r.t. fake is read as a view, so no concatenation runs. D sees both pairs as one batch of 2N
    // (fake first) when its norm is per sample (instance, group, none; batch norm's statistics would mix
    // the two) and the maps are small, where a step's time is per-dispatch cost: one pass instead of two
    // halves the D step's dispatches. Large maps keep two passes, whose activations are not alive at
    // once (batched, the 512x1024 step's peak grows by 155 MiB, past the 1.5 GB budget).
    const pairBytes = N * cAB * plane * 4;
    const batchD = cfg.discriminator!.norm !== 'batch' && pairBytes <= BATCHED_D_LIMIT.maxPairBytes && pairBytes % align === 0;
    const inPlace = N === 1 && (cA * plane * 4) % align === 0;
    const pairs = batchD ? t([2 * N, cAB, H, W], 'pix2pix.D_pairs', !inPlace) : null;
    const fakeAB = pairs ? pairs.view([N, cAB, H, W], 0, 'pix2pix.fake_AB') : t([N, cAB, H, W], 'pix2pix.fake_AB', !inPlace);
    const realAB = pairs ? pairs.view([N, cAB, H, W], N * cAB * plane, 'pix2pix.real_AB') : t([N, cAB, H, W], 'pix2pix.real_AB', !inPlace);
    const a = inPlace ? fakeAB.view([N, cA, H, W], 0, 'pix2pix.real_A') : t([...shapeA], 'pix2pix.real_A', false);
    const aCopies = inPlace ? [realAB.view([N, cA, H, W], 0, 'pix2pix.real_A(real pair)')] : [];
    const b = inPlace ? realAB.view([N, cOut, H, W], cA * plane, 'pix2pix.real_B') : t([N, cOut, H, W], 'pix2pix.real_B', false);
    const list: Dispatch[] = [];
    const gRun = G.record(a, TRAIN_MODE, cfg.seed, { into: inPlace ? fakeAB.view([N, cOut, H, W], cA * plane, 'pix2pix.fake_B') : undefined });
    runs.push(gRun);
    const fake = gRun.output;
    list.push(...gRun.forward);
    if (!inPlace) list.push(...own(concatChannelsForward(ctx, fakeAB, a, fake)), ...own(concatChannelsForward(ctx, realAB, a, b)));

    // Each GAN loss is one dispatch writing the loss and its gradient (scale ½ for loss_D's two halves).
    const ganStep = (loss: Tensor, dLogits: Tensor, logits: Tensor, target: number, scale: number) =>
      own(cfg.ganMode === 'lsgan' ? mseLossStep(ctx, loss, dLogits, logits, target, { scale }) : bceWithLogitsStep(ctx, loss, dLogits, logits, target, { scale }));
    const lossGGAN = t([1], 'loss.G_GAN', false);
    const lossGL1 = t([1], 'loss.G_L1', false);

    // D step: loss_D = ½ (GAN(D(fake pair), 0) + GAN(D(real pair), 1)); no gradient flows into G.
    const trainD = !cfg.freeze.discriminator;
    const adamD: Dispatch[] = [];
    let lossDFake: Tensor;
    let lossDReal: Tensor;
    if (pairs) {
      const dPairs = D.record(pairs, TRAIN_MODE, 'D.pairs');
      runs.push(dPairs);
      // A two-target loss step: the fake half against 0, the real half against 1, each averaged on its own
      // (loss [D_fake, D_real]) and each gradient scaled by ½, so loss_D = ½ (fake + real) in one dispatch.
      const logits = dPairs.output;
      const lossesD = t([2], 'loss.D_fake_real', false);
      lossDFake = lossesD.view([1], 0, 'loss.D_fake');
      lossDReal = lossesD.view([1], 1, 'loss.D_real');
      const dLogits = t([...logits.shape], 'D.pairs.dlogits');
      const opts = { scale: [0.5, 0.5] };
      list.push(...dPairs.forward, ...own(cfg.ganMode === 'lsgan' ? mseLossStep(ctx, lossesD, dLogits, logits, [0, 1], opts) : bceWithLogitsStep(ctx, lossesD, dLogits, logits, [0, 1], opts)));
      if (trainD) list.push(...dPairs.backward(dLogits, null, { paramGrads: 'overwrite' }));
    } else {
      const d1 = D.record(fakeAB, TRAIN_MODE, 'D.fake');
      const d2 = D.record(realAB, TRAIN_MODE, 'D.real');
      runs.push(d1, d2);
      lossDFake = t([1], 'loss.D_fake', false);
      lossDReal = t([1], 'loss.D_real', false);
      // Each pass's backward runs right after its forward (nothing changes D in between, so this is the
      // reference's arithmetic): only one pass's activations are alive at a time.
      const dp1 = t([...d1.output.shape], 'D.fake.dlogits');
      list.push(...d1.forward, ...ganStep(lossDFake, dp1, d1.output, 0, 0.5));
      if (trainD) list.push(...d1.backward(dp1, null, { paramGrads: 'overwrite' }));
      const dp2 = t([...d2.output.shape], 'D.real.dlogits');
      list.push(...d2.forward, ...ganStep(lossDReal, dp2, d2.output, 1, 0.5));
      if (trainD) list.push(...d2.backward(dp2, null, { paramGrads: 'accumulate' }));
    }
    if (trainD) {
      adamD.push(...own(this.adamFor(D.pack)));
      list.push(...adamD);
    }

    // G step: D (updated, frozen) on the same fake; GAN loss towards "real" plus λ·L1.
    const d3 = D.record(fakeAB, TRAIN_MODE, 'D.gen');
    runs.push(d3);
    const dp3 = t([...d3.output.shape], 'D.gen.dlogits');
    const dFakeAB = t([N, cAB, H, W], 'pix2pix.dfake_AB');
    list.push(...d3.forward, ...ganStep(lossGGAN, dp3, d3.output, 1, 1), ...d3.backward(dp3, dFakeAB, { paramGrads: 'none' }));
    // The gradient w.r.t. fake is dfake_AB's fake channels: a view with batch 1, else copied out.
    let dFake: Tensor;
    if (inPlace) dFake = dFakeAB.view([N, cOut, H, W], cA * plane, 'pix2pix.dfake_B');
    else {
      dFake = t([N, cOut, H, W], 'pix2pix.dfake_B');
      list.push(...own(concatChannelsBackward(ctx, null, dFake, dFakeAB, { accumulate: false, channelsA: cA })));
    }
    // L1 (unscaled, as logged) and λ times its gradient added to D's, taken through G's tanh (1 − fake²) in
    // the same dispatch: dFake becomes the gradient of tanh's input, where G's backward starts.
    list.push(...own(l1LossStep(ctx, lossGL1, dFake, fake, b, { scale: cfg.lambdaL1, accumulate: true, through: { kind: 'tanh' } })));
    list.push(...gRun.backward(dFake, null, { paramGrads: 'overwrite', dyBelowOutputActivation: true }));
    const adamG = own(this.adamFor(G.pack));
    list.push(...adamG);

    const staging = Array.from({ length: MAX_STEPS_IN_FLIGHT }, (_, i) => ({
      buffer: ctx.device.createBuffer({ label: `pix2pix.losses.staging${i}`, size: 16, usage: 0x1 | 0x8 /* MAP_READ | COPY_DST */ }),
      free: Promise.resolve(),
    }));
    return {
      key: shapeA.join('x'),
      a,
      aCopies,
      b,
      g: gRun,
      runs,
      tensors,
      ownDispatches,
      adamD,
      adamG,
      list,
      losses: [lossGGAN, lossGL1, lossDReal, lossDFake],
      staging,
      submitted: 0,
      plan: null,
    };
  }

  /**
   * Adam for a network: one dispatch per contiguous range of trainable parameters in its pack, i.e. one
   * for the whole network unless layers are frozen or the pack exceeds the device's binding size.
   */
  private adamFor(pack: ParameterPack): Dispatch[] {
    const c = this.config;
    pack.ensureTrainingState();
    const out: Dispatch[] = [];
    for (const [start, end] of pack.trainableRanges()) {
      const range = (t: Tensor, kind: string) => t.view([end - start], start, `${pack.label}.${kind}[${start}:${end}]`);
      out.push(...adamStep(this.ctx, range(pack.values, 'params'), range(pack.grads!, 'grads'), range(pack.m!, 'exp_avg'), range(pack.v!, 'exp_avg_sq'), { lr: this.lr, beta1: c.beta1, beta2: c.beta2, eps: c.eps, step: 1 }));
    }
    return out;
  }

  private destroyGraph(): void {
    const g = this.graph;
    if (!g) return;
    for (const r of g.runs) r.destroy();
    for (const l of g.ownDispatches) destroyDispatches(l);
    for (const x of g.tensors) x.destroy();
    g.plan?.destroy();
    for (const s of g.staging) s.buffer.destroy();
    this.graph = null;
  }

  // ------------------------------------------------------------------------------------ inference

  /**
   * Translate A → B. Images (values in [0, 1]) give images; a tensor [N, C, H, W] in [-1, 1] gives a
   * new tensor the caller owns, computed on the GPU without a read-back (so a pipeline of GPU stages never
   * waits on the CPU; only `pad` on a tensor whose sides need it goes through the CPU). Sides must be
   * multiples of 2^numDowns unless `pad` is set.
   */
  async translate(input: ImageF32, opts?: TranslateOptions): Promise<ImageF32>;
  async translate(input: readonly ImageF32[], opts?: TranslateOptions): Promise<ImageF32[]>;
  async translate(input: Tensor, opts?: TranslateOptions): Promise<Tensor>;
  async translate(input: ImageF32 | readonly ImageF32[] | Tensor, opts: TranslateOptions = {}): Promise<ImageF32 | ImageF32[] | Tensor> {
    const op = 'Pix2Pix.translate';
    this.assertAlive('translate');
    if (opts === null || typeof opts !== 'object') throw new InvalidOptionError(op, 'options', 'an object (or nothing)', opts);
    const check = new OptionChecker(op, opts as Record<string, unknown>);
    const checked: TranslateOptions = { eval: check.bool('eval', false), pad: check.bool('pad', false), seed: check.int('seed', -Infinity, Infinity, this.config.seed) };
    const isTensor = input instanceof Tensor;
    const isList = Array.isArray(input);
    const host = batchData(this.ctx, isTensor || isList ? (input as Tensor | readonly ImageF32[]) : [input as ImageF32], isList || isTensor ? 'input' : 'image', this.config.generator.inputChannels, op);
    return this.enqueue('translate', async () => {
      const out = await this.translateNow(host, checked);
      if (out instanceof Tensor) return out;
      if (isTensor) return this.ctx.tensor(out.shape, out.data, 'pix2pix.translation');
      const images = tensorDataToImages(out.shape, out.data);
      return isList ? images : images[0];
    });
  }

  /**
   * Run G on a batch. A tensor whose sides fit the network stays on the GPU: it is copied into the graph's
   * input and the output is copied into a new tensor, with no read-back (a tensor that needs padding is padded
   * on the CPU). Images come back as host data.
   */
  private async translateNow(host: HostBatch, opts: TranslateOptions): Promise<{ shape: number[]; data: Float32Array } | Tensor> {
    const cIn = this.config.generator.inputChannels;
    if (host.shape.length !== 4 || host.shape[1] !== cIn) throw new ShapeError('Pix2Pix.translate', 'input', `[N, ${cIn}, H, W]`, host.shape);
    const m = this.G.sizeMultiple;
    const [N, , H, W] = host.shape;
    const mode: RunMode = opts.eval ? EVAL_MODE : { batchStats: true, updateStats: false, dropout: true };
    const fits = H % m === 0 && W % m === 0;
    if (fits && 'tensor' in host) {
      const graph = this.translateGraph(host.shape, mode);
      writeInput(this.ctx, graph.input, host);
      graph.run.setDropoutSeed(opts.seed ?? this.config.seed);
      await this.ctx.run(graph.run.forward, 'pix2pix.translate');
      const out = this.ctx.tensor([...graph.run.output.shape], undefined, 'pix2pix.translation');
      copyTensor(this.ctx, out, graph.run.output);
      await this.ctx.flush('pix2pix.translate');
      return out;
    }
    const data = 'data' in host ? host : { shape: host.shape, data: await host.tensor.read() };
    let shape = data.shape;
    let values: Float32Array = data.data;
    if (!fits) {
      if (!opts.pad) {
        throw new ShapeError(
          'Pix2Pix.translate',
          `image size: height and width must be multiples of 2^${this.config.generator.numDowns} = ${m} (pass { pad: true } to pad by reflection and crop back)`,
          `multiples of ${m}`,
          `${H}x${W}`,
        );
      }
      const padded = padReflect(values, shape, Math.ceil(H / m) * m, Math.ceil(W / m) * m);
      shape = padded.shape;
      values = padded.data;
    }
    const graph = this.translateGraph(shape, mode);
    graph.input.write(values);
    graph.run.setDropoutSeed(opts.seed ?? this.config.seed);
    await this.ctx.run(graph.run.forward, 'pix2pix.translate');
    let out = await graph.run.output.read();
    const outShape = [N, this.config.generator.outputChannels, H, W];
    if (shape[2] !== H || shape[3] !== W) out = cropTopLeft(out, graph.run.output.shape, H, W);
    return { shape: outShape, data: out };
  }

  private translateGraph(shape: readonly number[], mode: RunMode): TranslateGraph {
    const key = `${shape.join('x')}|${mode.batchStats}|${mode.dropout}`;
    let g = this.translateGraphs.get(key);
    if (g) return g;
    // Keep the two most recent shapes/modes: their activations are large.
    while (this.translateGraphs.size >= 2) {
      const [k, old] = this.translateGraphs.entries().next().value as [string, TranslateGraph];
      old.run.destroy();
      old.plan.destroy();
      old.input.destroy();
      this.translateGraphs.delete(k);
    }
    const input = this.ctx.tensor(shape, undefined, 'pix2pix.translate.input');
    // Inference frees each activation after its last reader, so a translation needs a few maps' memory.
    const run = this.ctx.deferAllocations(() => this.G.record(input, mode, this.config.seed));
    const plan = planMemory(this.ctx, run.forward, { keep: [run.output], label: 'pix2pix.translate' });
    g = { input, run, plan };
    this.translateGraphs.set(key, g);
    return g;
  }

  // ------------------------------------------------------------------------------------ checkpoints

  /** G, D (reference key names) and the optimizer state (Adam moments, step counts, LR schedule) as safetensors bytes. */
  async save(): Promise<Pix2PixCheckpoint> {
    return this.enqueue('save', () => this.saveNow());
  }

  private async saveNow(): Promise<Pix2PixCheckpoint> {
    const out: Pix2PixCheckpoint = { G: encodeStateDict(await readStateDict(this.G), this.config.generator) };
    if (this.D) out.D = encodeStateDict(await readStateDict(this.D), this.config.discriminator!);
    const moments: StateDict = new Map();
    const parameters = new Map<string, number>();
    for (const [net, tag] of [[this.G, 'G'], [this.D, 'D']] as const) {
      if (!net) continue;
      for (const e of net.stateEntries()) {
        if (e.kind === 'param') parameters.set(`${tag}.${e.key}`, e.param.value.size);
        if (e.kind !== 'param' || !e.param.m) continue;
        const k = momentKeys(tag, e.key);
        moments.set(k.m, { shape: [...e.shape], data: await e.param.m.read(), dtype: 'F32' });
        moments.set(k.v, { shape: [...e.shape], data: await e.param.v!.read(), dtype: 'F32' });
      }
    }
    const counters = { stepG: this.stepG, stepD: this.stepD, trainSteps: this.trainSteps, schedulerSteps: this.schedulerSteps };
    out.optimizer = encodeOptimizerState({ moments, ...counters, parameters }, this.config);
    return out;
  }

  /**
   * Load weights (and optionally the optimizer state) into this model. Checkpoints are checked in
   * full: missing, unexpected or misshapen tensors are all listed in one CheckpointMismatchError. Queued (see the class).
   */
  async load(sources: CheckpointSources): Promise<void> {
    this.assertAlive('load');
    checkSources(sources, 'Pix2Pix.load');
    if (sources.D && !this.D) throw new Pix2PixError('Pix2Pix.load', 'a D checkpoint was given but this model has no discriminator');
    const named = nameSources(sources);
    return this.enqueue('load', () => this.loadNow(named));
  }

  /** Decode only the tensors the networks take (reusing those read for inference), check them in full, write them. */
  private async loadNow(sources: NamedSources, heads?: CheckpointArchitecture['heads']): Promise<void> {
    const g = await decodeForNetwork(this.G, sources.G, heads?.G);
    loadStateDictInto(this.G, g.dict, sources.G.name, g.unexpected);
    if (sources.D) {
      if (!this.D) throw new Pix2PixError('Pix2Pix.load', 'a D checkpoint was given but this model has no discriminator');
      const d = await decodeForNetwork(this.D, sources.D, heads?.D);
      loadStateDictInto(this.D, d.dict, sources.D.name, d.unexpected);
    }
    if (sources.optimizer) await this.loadOptimizer(sources.optimizer);
    await this.ctx.flush('Pix2Pix.load');
  }

  private async loadOptimizer(src: NamedStateSource): Promise<void> {
    const params: { key: string; param: Parameter }[] = [];
    for (const [net, tag] of [[this.G, 'G'], [this.D, 'D']] as const) {
      if (!net) continue;
      for (const e of net.stateEntries()) if (e.kind === 'param') params.push({ key: `${tag}.${e.key}`, param: e.param });
    }
    const wanted = new Set(params.flatMap(({ key }) => [`${key}.exp_avg`, `${key}.exp_avg_sq`]));
    const state = await decodeOptimizerState(src, (k) => wanted.has(k));
    checkOptimizerParameters(src.name, state, new Map(params.map(({ key, param }) => [key, param.value.size])));
    for (const { key, param } of params) {
      const m = state.moments.get(`${key}.exp_avg`);
      const v = state.moments.get(`${key}.exp_avg_sq`);
      if (!m || !v) continue; // never trained (or frozen): fresh moments
      checkMomentSize(src.name, key, param.value.size, m, v);
      param.ensureTrainingState();
      param.m!.write(m.data);
      param.v!.write(v.data);
    }
    this.stepG = state.stepG;
    this.stepD = state.stepD;
    this.trainSteps = state.trainSteps;
    this.schedulerSteps = state.schedulerSteps;
  }

  // ------------------------------------------------------------------------------------ setup

  /** Initialise weights on the GPU as the reference's init_weights('normal', 0.02), seeded per tensor. */
  private async initWeights(which: 'G' | 'D' | 'both' = 'both'): Promise<void> {
    const list: Dispatch[] = [];
    const nets: [UnetGenerator | NLayerDiscriminator | null, number][] = [];
    if (which !== 'D') nets.push([this.G, 0x6a09e667]);
    if (which !== 'G') nets.push([this.D, 0xbb67ae85]);
    for (const [net, salt] of nets) {
      if (!net) continue;
      net.params().forEach((p, i) => {
        list.push(
          ...(p.init.kind === 'normal'
            ? initNormal(this.ctx, p.value, { mean: p.init.mean, std: p.init.std, seed: mixSeed(this.config.seed ^ salt, i) })
            : initConstant(this.ctx, p.value, p.init.value)),
        );
      });
    }
    await this.ctx.run(list, 'pix2pix.init');
    destroyDispatches(list);
  }

  private applyFreeze(): void {
    this.G.freezeEncoder(this.config.freeze.encoderLevels);
    this.D?.setFrozen(this.config.freeze.discriminator);
  }

  private assertAlive(op: string): void {
    if (this.destroyed || this.closing) throw new Pix2PixError(`Pix2Pix.${op}`, 'model used after destroy()');
  }

  /**
   * Free every GPU resource (and the context, if the model created it). Calls queued before destroy() still
   * run first; calls made after it reject. Returns when the resources are freed (at once when the model is idle).
   */
  destroy(): Promise<void> {
    if (this.closing) return this.closing;
    if (this.queued === 0 && this.readbacksPending === 0) {
      this.release();
      this.closing = Promise.resolve();
    } else this.closing = this.tail.then(() => this.readbackTail).then(() => this.release());
    return this.closing;
  }

  private release(): void {
    if (this.destroyed) return;
    this.destroyGraph();
    for (const g of this.translateGraphs.values()) {
      g.run.destroy();
      g.plan.destroy();
      g.input.destroy();
    }
    this.translateGraphs.clear();
    this.G.destroy();
    this.D?.destroy();
    this.destroyed = true;
    if (this.ownsCtx) this.ctx.destroy();
  }
}

// ------------------------------------------------------------------------------------ helpers

async function contextFor(o: Pix2PixOptions): Promise<{ ctx: GpuContext; owns: boolean }> {
  if (o.ctx) return { ctx: o.ctx, owns: false };
  return { ctx: await createContext({ device: o.device }), owns: true };
}

/** Sources with names: the caller's, or 'G checkpoint' / 'D checkpoint' / 'optimizer checkpoint'. */
function nameSources(s: CheckpointSources): NamedSources {
  return {
    G: namedSource(s.G, 'G checkpoint'),
    D: s.D === undefined ? undefined : namedSource(s.D, 'D checkpoint'),
    optimizer: s.optimizer === undefined ? undefined : namedSource(s.optimizer, 'optimizer checkpoint'),
  };
}

type HostBatch = { shape: number[]; data: Float32Array } | { shape: number[]; tensor: Tensor };

/**
 * Check a batch argument at the API boundary and copy images into NCHW data in [-1, 1]. Images are checked
 * one by one (size fields, data length, finite values): a short or NaN-holding array used to train into NaN
 * that was then reported as corrupt weights. Tensors must be live, [N, channels, H, W] and on this context.
 */
function batchData(ctx: GpuContext, x: unknown, name: string, channels: number, op: string): HostBatch {
  if (x instanceof Tensor) {
    if (x.destroyed) throw new InvalidOptionError(op, name, 'a live Tensor', x, `'${x.label}' was destroyed`);
    if (x.ctx !== ctx) throw new InvalidOptionError(op, name, "a Tensor on this model's GpuContext", x, `'${x.label}' belongs to another context`);
    if (x.shape.length !== 4 || x.shape[1] !== channels) throw new ShapeError(op, `${name} shape`, `[N, ${channels}, H, W]`, x.shape);
    return { shape: [...x.shape], tensor: x };
  }
  if (!Array.isArray(x)) throw new InvalidOptionError(op, name, `an array of images ({ width, height, channels: ${channels}, data: Float32Array }) or a [N, ${channels}, H, W] Tensor`, x);
  if (x.length === 0) throw new ShapeError(op, `${name} image count`, '>= 1', 0);
  x.forEach((im: unknown, i) => checkImage(im, `${name}[${i}]`, op));
  const images = x as readonly ImageF32[];
  if (images[0].channels !== channels) throw new ShapeError(op, `${name} channels`, channels, images[0].channels);
  const d = imagesToTensorData(images);
  for (let i = 0; i < d.data.length; i++) {
    if (!Number.isFinite(d.data[i])) {
      const per = d.data.length / images.length;
      throw new InvalidOptionError(op, `${name}[${Math.floor(i / per)}].data`, 'finite values (images in [0, 1])', images[Math.floor(i / per)].data[i % per], `at index ${i % per}`);
    }
  }
  return { shape: d.shape, data: d.data };
}

function checkImage(im: unknown, name: string, op: string): asserts im is ImageF32 {
  if (im === null || typeof im !== 'object') throw new InvalidOptionError(op, name, 'an image { width, height, channels, data: Float32Array }', im);
  const { width, height, channels, data } = im as Partial<ImageF32>;
  for (const [k, v] of [['width', width], ['height', height]] as const) {
    if (typeof v !== 'number' || !Number.isInteger(v) || v < 1) throw new InvalidOptionError(op, `${name}.${k}`, 'a positive integer', v);
  }
  if (channels !== 1 && channels !== 3) throw new InvalidOptionError(op, `${name}.channels`, '1 or 3', channels);
  if (!(data instanceof Float32Array)) throw new InvalidOptionError(op, `${name}.data`, 'a Float32Array', data);
  const n = width! * height! * channels;
  if (data.length !== n) throw new ShapeError(op, `${name}.data length (width x height x channels = ${width} x ${height} x ${channels})`, n, data.length);
}

/** Checkpoint sources: G required; each a Uint8Array (file bytes), a state dict (Map), or { data: either, name }. */
function checkSources(sources: unknown, op: string): asserts sources is CheckpointSources {
  const allowed = 'file bytes (Uint8Array) or a state dict (Map)';
  if (sources === null || typeof sources !== 'object') throw new InvalidOptionError(op, 'sources', `{ G, D?, optimizer? }, each ${allowed}`, sources);
  const s = sources as Record<string, unknown>;
  for (const k of ['G', 'D', 'optimizer']) {
    const v = s[k];
    if (v === undefined && k !== 'G') continue;
    if (!(v instanceof Uint8Array) && !(v instanceof Map) && !isNamedSource(v)) throw new InvalidOptionError(op, k, allowed, v, 'or { data: either, name: its file name }');
  }
}

function writeInput(ctx: GpuContext, dst: Tensor, src: HostBatch): void {
  if ('data' in src) dst.write(src.data);
  else copyTensor(ctx, dst, src.tensor);
}

/** GPU copy of `src` into `dst` (same size; either may be a view or live in an arena, hence the offsets). */
function copyTensor(ctx: GpuContext, dst: Tensor, src: Tensor): void {
  const enc = ctx.device.createCommandEncoder({ label: `${dst.label}.copy` });
  enc.copyBufferToBuffer(src.buffer, src.offset, dst.buffer, dst.offset, dst.byteLength);
  ctx.device.queue.submit([enc.finish()]);
}

/** Mirror index (reflection without repeating the edge, as ReflectionPad2d) for any distance. */
function reflectIndex(i: number, n: number): number {
  if (n === 1) return 0;
  const period = 2 * (n - 1);
  const r = ((i % period) + period) % period;
  return r < n ? r : period - r;
}

/** Pad NCHW data at the bottom and right by reflection to H2 x W2. */
export function padReflect(data: Float32Array, shape: readonly number[], H2: number, W2: number): { shape: number[]; data: Float32Array } {
  const [N, C, H, W] = shape;
  const out = new Float32Array(N * C * H2 * W2);
  for (let p = 0; p < N * C; p++) {
    for (let y = 0; y < H2; y++) {
      const sy = reflectIndex(y, H);
      for (let x = 0; x < W2; x++) out[(p * H2 + y) * W2 + x] = data[(p * H + sy) * W + reflectIndex(x, W)];
    }
  }
  return { shape: [N, C, H2, W2], data: out };
}

function cropTopLeft(data: Float32Array, shape: readonly number[], H: number, W: number): Float32Array {
  const [N, C, H2, W2] = shape;
  const out = new Float32Array(N * C * H * W);
  for (let p = 0; p < N * C; p++) {
    for (let y = 0; y < H; y++) out.set(data.subarray((p * H2 + y) * W2, (p * H2 + y) * W2 + W), (p * H + y) * W);
  }
  return out;
}
