/**
 * Normalisation layers as the reference builds them (models/networks.py get_norm_layer):
 *  - 'batch': BatchNorm2d(affine=True, track_running_stats=True), eps 1e-5, momentum 0.1;
 *    weight N(1, 0.02), bias 0 (init_weights); running_mean 0, running_var 1.
 *  - 'instance': InstanceNorm2d(affine=False, track_running_stats=False): no parameters, no buffers,
 *    the same computation in train and eval mode.
 *  - 'group': GroupNorm(groups, C, eps 1e-5, affine) — not in the reference; torch's defaults weight 1,
 *    bias 0 (the reference's init_weights re-initialises only BatchNorm2d). The group count per layer is
 *    {@link normGroupsFor}: the largest divisor of C not above the model's `normGroups` (default 32), so
 *    any channel count works; a layer with C <= normGroups channels is instance norm with an affine.
 *    Like batch norm (and unlike instance norm) the preceding convs have no bias: the norm's mean
 *    subtraction cancels it and its beta replaces it.
 *  - 'none': no layer.
 */
import type { Dispatch, GpuContext } from '../runtime/context.js';
import type { Tensor } from '../runtime/tensor.js';
import { ShapeError } from '../runtime/errors.js';
import { batchNormBackward, batchNormForward } from '../kernels/batch_norm.js';
import { groupNormBackward, groupNormForward } from '../kernels/group_norm.js';
import { instanceNormBackward, instanceNormForward } from '../kernels/instance_norm.js';
import { setNormDropoutSeed, type FusedDropout } from '../kernels/norm_common.js';
import type { GraphNode, LoweredNode, Lowering, NodeGradients, PrimitiveLayer, Recorder, SymbolicTensor } from './graph.js';
import { Parameter, gradOf, wantsGrad } from './layer.js';

export type NormKind = 'batch' | 'instance' | 'group' | 'none';

export const NORM_EPS = 1e-5;
export const BN_MOMENTUM = 0.1;
/** Default `normGroups` for norm 'group' (the GroupNorm paper's 32). */
export const DEFAULT_NORM_GROUPS = 32;

/** Groups of a GroupNorm over `channels`: the largest divisor of `channels` that is at most `normGroups`. */
export function normGroupsFor(channels: number, normGroups = DEFAULT_NORM_GROUPS): number {
  if (!Number.isInteger(normGroups) || normGroups < 1) throw new ShapeError('normGroupsFor', 'normGroups', 'a positive integer', normGroups);
  for (let g = Math.min(normGroups, channels); g > 1; g--) if (channels % g === 0) return g;
  return 1;
}

/** InstanceNorm2d(C, affine=False): per-sample, per-channel statistics over H x W. */
export class InstanceNorm2d implements PrimitiveLayer {
  readonly op = 'norm';
  readonly fusesDropout = true;

  constructor(
    readonly ctx: GpuContext,
    readonly channels: number,
    /** Node name in a recording. */
    readonly name = 'norm',
  ) {}

  params(): Parameter[] {
    return [];
  }

  record([x]: readonly SymbolicTensor[], rec: Recorder): SymbolicTensor[] {
    return recordNorm(this, x, rec);
  }

  /**
   * With a fused activation (node.fusedActivation) the output is act(norm(x)), with a fused dropout
   * (node.fusedDropout) dropout of that, in the same kernels.
   */
  lower(node: GraphNode, l: Lowering): LoweredNode {
    const { x, y, activation, fused } = normTensors(node, l);
    const mean = l.scratch([x.shape[0] * x.shape[1]], `${node.label}.mean`);
    const rstd = l.scratch([x.shape[0] * x.shape[1]], `${node.label}.rstd`);
    const drop = new DropoutSeeds(node);
    return {
      forward: drop.track(l.own(instanceNormForward(this.ctx, y, mean, rstd, x, null, null, { eps: NORM_EPS, activation, dropout: drop.current }))),
      backward: ({ dOutputs: [dy], dInputs: [dx], accumulate: [acc] }) =>
        dx ? drop.track(l.own(instanceNormBackward(this.ctx, dx, null, null, dy, x, mean, rstd, null, { accumulate: acc, activation: fused, dropout: drop.current }))) : [],
      setSeed: drop.setSeed,
    };
  }

  destroy(): void {}
}

/**
 * A norm node's fused dropout (GraphNode.fusedDropout): the mask's current seed and the dispatches that carry it,
 * so that setSeed (the lowered node takes the removed dropout node's) rewrites forward and backward alike.
 */
class DropoutSeeds {
  private readonly p: number | null;
  private seed: number;
  private readonly lists: Dispatch[][] = [];

  constructor(node: GraphNode) {
    this.p = node.fusedDropout?.p ?? null;
    this.seed = node.fusedDropout?.seed ?? 0;
  }

  /** The dropout to record with (undefined when none is fused). */
  get current(): FusedDropout | undefined {
    return this.p === null ? undefined : { p: this.p, seed: this.seed };
  }

  track(list: Dispatch[]): Dispatch[] {
    if (this.p !== null) this.lists.push(list);
    return list;
  }

  /** Undefined without a fused dropout: the lowered node is then no seeded node. */
  get setSeed(): ((seed: number) => void) | undefined {
    if (this.p === null) return undefined;
    return (seed: number) => {
      this.seed = seed >>> 0;
      for (const list of this.lists) setNormDropoutSeed(list, this.seed);
    };
  }
}

/** One node of a norm layer, its channel count checked. */
function recordNorm(layer: NormLayer, x: SymbolicTensor, rec: Recorder): SymbolicTensor[] {
  if (x.shape[1] !== layer.channels) throw new ShapeError(`${rec.prefix}.${layer.name}`, 'channels', layer.channels, x.shape[1]);
  return rec.node(layer, [x], [x.shape], layer.name);
}

/** A norm node's input and output tensors and its fused activation (forward form and backward form). */
function normTensors(node: GraphNode, l: Lowering) {
  const y = l.tensorOf(node.outputs[0]);
  const activation = node.fusedActivation ?? undefined;
  return { x: l.tensorOf(node.inputs[0]), y, activation, fused: activation ? { fused: activation, y } : undefined };
}

/**
 * Backward of a norm with parameters: one launch writes dx and the parameter gradients. Their accumulate
 * flags can differ (D's real pass writes a fresh input gradient and adds to the parameter gradients of the
 * fake pass): kernels that take a flag each (`separateFlags`: norm.wgsl's) still do it in one launch, the
 * others (group norm) in two.
 */
function affineNormBackward(
  g: NodeGradients,
  weight: Parameter,
  bias: Parameter,
  separateFlags: boolean,
  run: (dx: Tensor | null, dgamma: Tensor | null, dbeta: Tensor | null, accumulateInput: boolean, accumulateParams: boolean) => Dispatch[],
): Dispatch[] {
  const [dx] = g.dInputs;
  const wantParams = wantsGrad(weight, g.paramGrads);
  const accParams = g.paramGrads === 'accumulate';
  const accInput = g.accumulate[0];
  if (wantParams && (!dx || accParams === accInput || separateFlags)) return run(dx, gradOf(weight), gradOf(bias), dx ? accInput : accParams, accParams);
  const out: Dispatch[] = [];
  if (dx) out.push(...run(dx, null, null, accInput, accInput));
  if (wantParams) out.push(...run(null, gradOf(weight), gradOf(bias), accParams, accParams));
  return out;
}

/** BatchNorm2d(C): statistics over N x H x W per channel, learnable affine, running statistics. */
export class BatchNorm2d implements PrimitiveLayer {
  readonly op = 'norm';
  readonly fusesDropout = true;
  readonly weight: Parameter;
  readonly bias: Parameter;
  readonly runningMean: Tensor;
  readonly runningVar: Tensor;
  /** torch's num_batches_tracked (kept on the CPU: it only counts train-mode forwards). */
  numBatchesTracked = 0;

  constructor(
    readonly ctx: GpuContext,
    readonly channels: number,
    label = 'batch_norm',
    /** Node name in a recording. */
    readonly name = 'norm',
  ) {
    this.weight = new Parameter(ctx, 'weight', ctx.zeros([channels], `${label}.weight`), { kind: 'normal', mean: 1, std: 0.02 });
    this.bias = new Parameter(ctx, 'bias', ctx.zeros([channels], `${label}.bias`), { kind: 'constant', value: 0 });
    this.runningMean = ctx.zeros([channels], `${label}.running_mean`);
    this.runningVar = ctx.tensor([channels], new Float32Array(channels).fill(1), `${label}.running_var`);
  }

  params(): Parameter[] {
    return [this.weight, this.bias];
  }

  record([x]: readonly SymbolicTensor[], rec: Recorder): SymbolicTensor[] {
    return recordNorm(this, x, rec);
  }

  /**
   * `node.mode.batchStats`: normalise with the batch's statistics (train mode); then `updateStats` also
   * moves the running statistics (momentum 0.1, unbiased variance), as a train-mode forward in torch
   * does. Otherwise (eval) the running statistics normalise. A fused activation runs in the same kernels.
   */
  lower(node: GraphNode, l: Lowering): LoweredNode {
    const { x, y, activation, fused } = normTensors(node, l);
    const mean = l.scratch([this.channels], `${node.label}.mean`);
    const rstd = l.scratch([this.channels], `${node.label}.rstd`);
    const training = node.mode.batchStats;
    const update = training && node.mode.updateStats;
    // Eval normalises with the running statistics; training passes them only when they should move.
    const running = update || !training;
    const drop = new DropoutSeeds(node);
    const forward = drop.track(
      l.own(
        batchNormForward(this.ctx, y, mean, rstd, x, this.weight.value, this.bias.value, running ? this.runningMean : null, running ? this.runningVar : null, {
          training,
          eps: NORM_EPS,
          momentum: BN_MOMENTUM,
          activation,
          dropout: drop.current,
        }),
      ),
    );
    return {
      forward,
      backward: (g) =>
        affineNormBackward(g, this.weight, this.bias, true, (dx, dgamma, dbeta, accumulate, accumulateParams) =>
          drop.track(l.own(batchNormBackward(this.ctx, dx, dgamma, dbeta, g.dOutputs[0], x, mean, rstd, this.weight.value, { training, accumulate, accumulateParams, activation: fused, dropout: drop.current }))),
        ),
      setSeed: drop.setSeed,
    };
  }

  destroy(): void {
    this.weight.destroy();
    this.bias.destroy();
    this.runningMean.destroy();
    this.runningVar.destroy();
  }
}

/** GroupNorm(groups, C, affine): per-sample statistics over each group of C/groups channels and H x W. */
export class GroupNorm2d implements PrimitiveLayer {
  readonly op = 'norm';
  /** shaders/group_norm.wgsl has no dropout epilogue: a dropout after a group norm stays its own node. */
  readonly fusesDropout = false;
  readonly weight: Parameter;
  readonly bias: Parameter;

  constructor(
    readonly ctx: GpuContext,
    readonly channels: number,
    readonly groups: number,
    label = 'group_norm',
    /** Node name in a recording. */
    readonly name = 'norm',
  ) {
    if (!Number.isInteger(groups) || groups < 1 || channels % groups !== 0) throw new ShapeError(label, `groups (a divisor of the ${channels} channels)`, `a divisor of ${channels}`, groups);
    this.weight = new Parameter(ctx, 'weight', ctx.tensor([channels], new Float32Array(channels).fill(1), `${label}.weight`), { kind: 'constant', value: 1 });
    this.bias = new Parameter(ctx, 'bias', ctx.zeros([channels], `${label}.bias`), { kind: 'constant', value: 0 });
  }

  params(): Parameter[] {
    return [this.weight, this.bias];
  }

  record([x]: readonly SymbolicTensor[], rec: Recorder): SymbolicTensor[] {
    return recordNorm(this, x, rec);
  }

  /** The same computation in train and eval mode; a fused activation runs in the same kernels. */
  lower(node: GraphNode, l: Lowering): LoweredNode {
    const { x, y, activation, fused } = normTensors(node, l);
    const groups = this.groups;
    const mean = l.scratch([x.shape[0] * groups], `${node.label}.mean`);
    const rstd = l.scratch([x.shape[0] * groups], `${node.label}.rstd`);
    const w = this.weight.value;
    return {
      forward: l.own(groupNormForward(this.ctx, y, mean, rstd, x, w, this.bias.value, { groups, eps: NORM_EPS, activation })),
      backward: (g) =>
        // group_norm.wgsl has one accumulate flag: affineNormBackward passes equal flags or no dx.
        affineNormBackward(g, this.weight, this.bias, false, (dx, dgamma, dbeta, accumulate) =>
          l.own(groupNormBackward(this.ctx, dx, dgamma, dbeta, g.dOutputs[0], x, mean, rstd, w, { groups, accumulate, activation: fused })),
        ),
    };
  }

  destroy(): void {
    this.weight.destroy();
    this.bias.destroy();
  }
}

export type NormLayer = InstanceNorm2d | BatchNorm2d | GroupNorm2d;

/** The reference's norm layer for `kind`, or null for 'none'; 'group' uses normGroupsFor(channels, normGroups). */
export function makeNorm(ctx: GpuContext, kind: NormKind, channels: number, label: string, normGroups = DEFAULT_NORM_GROUPS, name = 'norm'): NormLayer | null {
  if (kind === 'batch') return new BatchNorm2d(ctx, channels, label, name);
  if (kind === 'instance') return new InstanceNorm2d(ctx, channels, name);
  if (kind === 'group') return new GroupNorm2d(ctx, channels, normGroupsFor(channels, normGroups), label, name);
  return null;
}
