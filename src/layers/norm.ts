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
import type { FusedActivation } from '../kernels/norm_common.js';
import { Parameter, RunResources, gradOf, outputTensor, wantsGrad, type BackwardOptions, type LayerRun, type RunMode } from './layer.js';

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
export class InstanceNorm2d {
  constructor(
    readonly ctx: GpuContext,
    readonly channels: number,
  ) {}

  params(): Parameter[] {
    return [];
  }

  /** `activation`: apply ReLU/LeakyReLU in the same kernel (the run's output is act(norm(x))). */
  record(x: Tensor, _mode: RunMode, label = 'instance_norm', out?: Tensor, activation?: FusedActivation): LayerRun {
    if (x.shape[1] !== this.channels) throw new ShapeError(label, 'channels', this.channels, x.shape[1]);
    const res = new RunResources(this.ctx);
    const output = outputTensor(res, x.shape, label, out);
    const mean = res.tensor([x.shape[0] * x.shape[1]], `${label}.mean`);
    const rstd = res.tensor([x.shape[0] * x.shape[1]], `${label}.rstd`);
    const forward = res.own(instanceNormForward(this.ctx, output, mean, rstd, x, null, null, { eps: NORM_EPS, activation }));
    const fused = activation ? { fused: activation, y: output } : undefined;
    return {
      output,
      forward,
      backward: (dy: Tensor, dx: Tensor | null, o: BackwardOptions): Dispatch[] => {
        if (!dx) return [];
        return res.own(instanceNormBackward(this.ctx, dx, null, null, dy, x, mean, rstd, null, { accumulate: !!o.accumulateInput, activation: fused }));
      },
      destroy: () => res.destroy(),
    };
  }

  destroy(): void {}
}

/** BatchNorm2d(C): statistics over N x H x W per channel, learnable affine, running statistics. */
export class BatchNorm2d {
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
  ) {
    this.weight = new Parameter(ctx, 'weight', ctx.zeros([channels], `${label}.weight`), { kind: 'normal', mean: 1, std: 0.02 });
    this.bias = new Parameter(ctx, 'bias', ctx.zeros([channels], `${label}.bias`), { kind: 'constant', value: 0 });
    this.runningMean = ctx.zeros([channels], `${label}.running_mean`);
    this.runningVar = ctx.tensor([channels], new Float32Array(channels).fill(1), `${label}.running_var`);
  }

  params(): Parameter[] {
    return [this.weight, this.bias];
  }

  /**
   * `mode.batchStats`: normalise with the batch's statistics (train mode); then `mode.updateStats`
   * also moves the running statistics (momentum 0.1, unbiased variance), as a train-mode forward in
   * torch does. Otherwise (eval) the running statistics normalise.
   */
  /** `activation`: apply ReLU/LeakyReLU in the same kernel (the run's output is act(norm(x))). */
  record(x: Tensor, mode: RunMode, label = 'batch_norm', out?: Tensor, activation?: FusedActivation): LayerRun {
    if (x.shape[1] !== this.channels) throw new ShapeError(label, 'channels', this.channels, x.shape[1]);
    const res = new RunResources(this.ctx);
    const output = outputTensor(res, x.shape, label, out);
    const mean = res.tensor([this.channels], `${label}.mean`);
    const rstd = res.tensor([this.channels], `${label}.rstd`);
    const training = mode.batchStats;
    const update = training && mode.updateStats;
    const forward = res.own(
      // Eval normalises with the running statistics; training passes them only when they should move.
      batchNormForward(this.ctx, output, mean, rstd, x, this.weight.value, this.bias.value, update || !training ? this.runningMean : null, update || !training ? this.runningVar : null, {
        training,
        eps: NORM_EPS,
        momentum: BN_MOMENTUM,
        activation,
      }),
    );
    const fused = activation ? { fused: activation, y: output } : undefined;
    return {
      output,
      forward,
      backward: (dy: Tensor, dx: Tensor | null, o: BackwardOptions): Dispatch[] => {
        const wantParams = wantsGrad(this.weight, o.paramGrads);
        const accParams = o.paramGrads === 'accumulate';
        const accInput = !!o.accumulateInput;
        const out: Dispatch[] = [];
        if (wantParams && (!dx || accParams === accInput)) {
          // One kernel writes both, with the same accumulate flag.
          out.push(...res.own(batchNormBackward(this.ctx, dx, gradOf(this.weight), gradOf(this.bias), dy, x, mean, rstd, this.weight.value, { training, accumulate: accParams, activation: fused })));
        } else {
          // The flags differ (D's real pass: a fresh input gradient, accumulated parameter gradients).
          if (dx) out.push(...res.own(batchNormBackward(this.ctx, dx, null, null, dy, x, mean, rstd, this.weight.value, { training, accumulate: accInput, activation: fused })));
          if (wantParams) out.push(...res.own(batchNormBackward(this.ctx, null, gradOf(this.weight), gradOf(this.bias), dy, x, mean, rstd, this.weight.value, { training, accumulate: accParams, activation: fused })));
        }
        return out;
      },
      destroy: () => res.destroy(),
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
export class GroupNorm2d {
  readonly weight: Parameter;
  readonly bias: Parameter;

  constructor(
    readonly ctx: GpuContext,
    readonly channels: number,
    readonly groups: number,
    label = 'group_norm',
  ) {
    if (!Number.isInteger(groups) || groups < 1 || channels % groups !== 0) throw new ShapeError(label, `groups (a divisor of the ${channels} channels)`, `a divisor of ${channels}`, groups);
    this.weight = new Parameter(ctx, 'weight', ctx.tensor([channels], new Float32Array(channels).fill(1), `${label}.weight`), { kind: 'constant', value: 1 });
    this.bias = new Parameter(ctx, 'bias', ctx.zeros([channels], `${label}.bias`), { kind: 'constant', value: 0 });
  }

  params(): Parameter[] {
    return [this.weight, this.bias];
  }

  /** The same computation in train and eval mode. `activation`: ReLU/LeakyReLU fused into the kernels. */
  record(x: Tensor, _mode: RunMode, label = 'group_norm', out?: Tensor, activation?: FusedActivation): LayerRun {
    if (x.shape[1] !== this.channels) throw new ShapeError(label, 'channels', this.channels, x.shape[1]);
    const res = new RunResources(this.ctx);
    const output = outputTensor(res, x.shape, label, out);
    const mean = res.tensor([x.shape[0] * this.groups], `${label}.mean`);
    const rstd = res.tensor([x.shape[0] * this.groups], `${label}.rstd`);
    const groups = this.groups;
    const forward = res.own(groupNormForward(this.ctx, output, mean, rstd, x, this.weight.value, this.bias.value, { groups, eps: NORM_EPS, activation }));
    const fused = activation ? { fused: activation, y: output } : undefined;
    return {
      output,
      forward,
      backward: (dy: Tensor, dx: Tensor | null, o: BackwardOptions): Dispatch[] => {
        const wantParams = wantsGrad(this.weight, o.paramGrads);
        const accParams = o.paramGrads === 'accumulate';
        const accInput = !!o.accumulateInput;
        const w = this.weight.value;
        if (wantParams && (!dx || accParams === accInput)) {
          return res.own(groupNormBackward(this.ctx, dx, gradOf(this.weight), gradOf(this.bias), dy, x, mean, rstd, w, { groups, accumulate: accParams, activation: fused }));
        }
        // The flags differ (D's real pass: a fresh input gradient, accumulated parameter gradients).
        const list: Dispatch[] = [];
        if (dx) list.push(...res.own(groupNormBackward(this.ctx, dx, null, null, dy, x, mean, rstd, w, { groups, accumulate: accInput, activation: fused })));
        if (wantParams) list.push(...res.own(groupNormBackward(this.ctx, null, gradOf(this.weight), gradOf(this.bias), dy, x, mean, rstd, w, { groups, accumulate: accParams, activation: fused })));
        return list;
      },
      destroy: () => res.destroy(),
    };
  }

  destroy(): void {
    this.weight.destroy();
    this.bias.destroy();
  }
}

export type NormLayer = InstanceNorm2d | BatchNorm2d | GroupNorm2d;

/** The reference's norm layer for `kind`, or null for 'none'; 'group' uses normGroupsFor(channels, normGroups). */
export function makeNorm(ctx: GpuContext, kind: NormKind, channels: number, label: string, normGroups = DEFAULT_NORM_GROUPS): NormLayer | null {
  if (kind === 'batch') return new BatchNorm2d(ctx, channels, label);
  if (kind === 'instance') return new InstanceNorm2d(ctx, channels);
  if (kind === 'group') return new GroupNorm2d(ctx, channels, normGroupsFor(channels, normGroups), label);
  return null;
}
