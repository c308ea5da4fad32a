/**
 * The losses pix2pix trains with, all with mean reduction as torch's defaults:
 * BCEWithLogitsLoss (vanilla GAN), MSELoss (lsgan) and L1Loss (λ·L1 towards the target image).
 * Forward writes the scalar loss into a [1] tensor with a two-pass tree reduction (src/kernels/reduce.ts),
 * accurate for 512x1024x3 maps. Backward writes scale · dLoss/dx, where `scale` carries the caller's
 * weight (0.5 for the D loss, λ for L1) so no extra scaling kernel is needed.
 */
import lossEntries from '../../shaders/loss.wgsl';
import lossTerms from '../../shaders/loss_terms.wgsl';
import lossFusedEntries from '../../shaders/loss_fused.wgsl';
import type { Dispatch, GpuContext } from '../runtime/context.js';
import type { Tensor } from '../runtime/tensor.js';
import { ShapeError } from '../runtime/errors.js';
import { REDUCE_WG, reduceTerms, reductionShader } from './reduce.js';
import { activationSlope, type FusedActivation } from './conv/fusion.js';

/** The loss terms (loss_terms.wgsl) and the entry points of the two-pass forward and the backward (loss.wgsl). */
const lossShader = `${lossTerms}\n${lossEntries}`;
/** The loss terms and the one-pass loss + gradient (loss_fused.wgsl). */
const lossFusedShader = `${lossTerms}\n${lossFusedEntries}`;

/** Loss codes of shaders/loss.wgsl. */
const LOSS_CODE = { bce: 0, mse: 1, l1: 2 } as const;
type LossKind = keyof typeof LOSS_CODE;

export interface LossBackwardOptions {
  /** Multiplies the gradient (the loss's weight in the total objective). Default 1. */
  scale?: number;
  /** Add into dx instead of overwriting it. */
  accumulate?: boolean;
}

function lossForward(ctx: GpuContext, op: string, kind: LossKind, loss: Tensor, x: Tensor, target: number | Tensor): Dispatch[] {
  ctx.checkTensor(x, op, undefined, 'x');
  return reduceTerms(ctx, op, loss, x, target, 1 / x.size, { source: lossShader, constants: { LOSS: LOSS_CODE[kind] } });
}

function lossBackward(ctx: GpuContext, op: string, kind: LossKind, dx: Tensor, x: Tensor, target: number | Tensor, o: LossBackwardOptions): Dispatch[] {
  ctx.checkTensor(x, op, undefined, 'x');
  ctx.checkTensor(dx, op, x.shape, 'dx');
  const scalar = typeof target === 'number';
  if (scalar) {
    if (!Number.isFinite(target)) throw new ShapeError(op, 'target', 'a finite number', target);
  } else {
    ctx.checkTensor(target, op, x.shape, 'target');
  }
  if (dx === x || dx === target) throw new ShapeError(op, 'dx aliasing x or target', 'distinct tensors', 'the same tensor');
  const scale = o.scale ?? 1;
  if (!Number.isFinite(scale)) throw new ShapeError(op, 'scale', 'a finite number', scale);
  return [
    ctx.kernel({
      op,
      shader: reductionShader(lossShader),
      entryPoint: scalar ? 'backward_scalar' : 'backward_tensor',
      constants: { WG: REDUCE_WG, LOSS: LOSS_CODE[kind] },
      u32: [x.size, 0, o.accumulate ? 1 : 0],
      f32: [scalar ? target : 0, scale / x.size],
      bindings: [
        { tensor: dx, access: 'rw' },
        { tensor: x, access: 'read' },
        ...(scalar ? [] : [{ tensor: target, access: 'read' as const }]),
      ],
      workgroups: ctx.grid(x.size, REDUCE_WG),
    }),
  ];
}

/** loss = mean(max(x, 0) - x t + log(1 + exp(-|x|))): torch's numerically stable BCEWithLogitsLoss. */
export function bceWithLogitsForward(ctx: GpuContext, loss: Tensor, logits: Tensor, target: number | Tensor): Dispatch[] {
  return lossForward(ctx, 'bce_with_logits.forward', 'bce', loss, logits, target);
}

/** dlogits (+)= scale · (sigmoid(x) - t) / n. */
export function bceWithLogitsBackward(ctx: GpuContext, dlogits: Tensor, logits: Tensor, target: number | Tensor, o: LossBackwardOptions = {}): Dispatch[] {
  return lossBackward(ctx, 'bce_with_logits.backward', 'bce', dlogits, logits, target, o);
}

/** loss = mean((x - t)²). */
export function mseLossForward(ctx: GpuContext, loss: Tensor, x: Tensor, target: number | Tensor): Dispatch[] {
  return lossForward(ctx, 'mse_loss.forward', 'mse', loss, x, target);
}

/** dx (+)= scale · 2 (x - t) / n. */
export function mseLossBackward(ctx: GpuContext, dx: Tensor, x: Tensor, target: number | Tensor, o: LossBackwardOptions = {}): Dispatch[] {
  return lossBackward(ctx, 'mse_loss.backward', 'mse', dx, x, target, o);
}

/** loss = mean(|x - t|). */
export function l1LossForward(ctx: GpuContext, loss: Tensor, x: Tensor, target: Tensor): Dispatch[] {
  return lossForward(ctx, 'l1_loss.forward', 'l1', loss, x, target);
}

/** dx (+)= scale · sign(x - t) / n, with sign(0) = 0 as torch. */
export function l1LossBackward(ctx: GpuContext, dx: Tensor, x: Tensor, target: Tensor, o: LossBackwardOptions = {}): Dispatch[] {
  return lossBackward(ctx, 'l1_loss.backward', 'l1', dx, x, target, o);
}

// ------------------------------------------------------------------------------------------------
// Loss and gradient in one pass (shaders/loss_fused.wgsl)

/** Options of the one-pass loss + gradient ops. */
export interface LossStepOptions {
  /** Multiplies the gradient (the loss's weight); one number, or one per segment. Default 1. */
  scale?: number | readonly number[];
  /** Add into dx instead of overwriting it (before the `through` factor). */
  accumulate?: boolean;
  /**
   * x is the output of this activation (e.g. G's tanh): dx receives the gradient w.r.t. the activation's
   * input, dx = act'(x) * ([dx +] g), so the activation's backward needs no dispatch of its own.
   */
  through?: FusedActivation;
}

/** Elements up to which one workgroup does everything (one dispatch); above, a second pass adds the partial sums. */
export const LOSS_STEP_ONE_GROUP_MAX = 65536;
const LOSS_STEP_PER_GROUP = 4096;
const THROUGH_CODE = { relu: 1, leaky_relu: 2, tanh: 3 } as const;

function lossStep(
  ctx: GpuContext,
  op: string,
  kind: LossKind,
  loss: Tensor,
  dx: Tensor,
  x: Tensor,
  target: number | readonly number[] | Tensor,
  o: LossStepOptions,
): Dispatch[] {
  ctx.checkTensor(x, op, undefined, 'x');
  ctx.checkTensor(dx, op, x.shape, 'dx');
  const tensorTarget = typeof target === 'object' && !Array.isArray(target);
  const targets = typeof target === 'number' ? [target] : tensorTarget ? [0] : [...(target as readonly number[])];
  if (targets.length < 1 || targets.length > 2) throw new ShapeError(op, 'targets (one, or one per half of the batch)', '1 or 2', targets.length);
  for (const t of targets) if (!Number.isFinite(t)) throw new ShapeError(op, 'target', 'a finite number', t);
  const segments = targets.length;
  if (tensorTarget) ctx.checkTensor(target as Tensor, op, x.shape, 'target');
  if (segments === 2 && (x.shape[0] % 2 !== 0 || x.size % 2 !== 0)) throw new ShapeError(op, 'batch of a two-target loss (first half target 0, second half target 1)', 'even', x.shape[0]);
  ctx.checkTensor(loss, op, [segments], 'loss');
  for (const [name, t] of Object.entries({ loss, x, target: tensorTarget ? (target as Tensor) : null })) {
    if (t && (dx.overlaps(t))) throw new ShapeError(op, `dx aliasing ${name}`, 'distinct tensors', 'the same buffer bytes');
  }
  if (loss.overlaps(x) || (tensorTarget && loss.overlaps(target as Tensor))) throw new ShapeError(op, 'loss aliasing an input', 'distinct tensors', 'the same buffer bytes');
  const scales = typeof o.scale === 'object' ? [...o.scale] : Array(segments).fill(o.scale ?? 1);
  if (scales.length !== segments) throw new ShapeError(op, 'scales (one per segment)', segments, scales.length);
  for (const sc of scales) if (!Number.isFinite(sc)) throw new ShapeError(op, 'scale', 'a finite number', sc);
  const segSize = x.size / segments;
  const through = o.through;
  const slope = through ? activationSlope(through, op) : 0;
  if (through && !(through.kind in THROUGH_CODE)) throw new ShapeError(op, 'through', "'relu', 'leaky_relu' or 'tanh'", String(through.kind));
  const one = x.size <= LOSS_STEP_ONE_GROUP_MAX;
  const perGroup = one ? x.size : LOSS_STEP_PER_GROUP;
  const groups = Math.ceil(x.size / perGroup);
  const u32 = [x.size, segSize, tensorTarget ? 1 : 0, o.accumulate ? 1 : 0, perGroup, groups];
  const f32 = [targets[0], targets[1] ?? 0, scales[0] / segSize, (scales[1] ?? 0) / segSize, 1 / segSize, 1 / segSize, slope];
  const constants = { WG: REDUCE_WG, LOSS: LOSS_CODE[kind], THROUGH: through ? THROUGH_CODE[through.kind] : 0 };
  const b = (tensor: Tensor, binding: number, access: 'read' | 'rw' = 'read') => ({ tensor, binding, access });
  // A number target still needs something at binding 3. Not x: a planned (transient) x is bound read_write,
  // and WebGPU refuses one buffer bound twice in a dispatch when one of the bindings is writable.
  const placeholder = tensorTarget ? null : ctx.zeros([1], `${op}.no_target`);
  const targetT = tensorTarget ? (target as Tensor) : placeholder!;
  if (one) {
    const step = ctx.kernel({ op, shader: lossFusedShader, entryPoint: 'step', constants, u32, f32, bindings: [b(dx, 1, 'rw'), b(x, 2), b(targetT, 3), b(loss, 4, 'rw')], workgroups: [1] });
    if (placeholder) step.attach(placeholder);
    return [step];
  }
  const partials = ctx.scratch([groups * 2], `${op}.partials`);
  const pass = ctx.kernel({ op, shader: lossFusedShader, entryPoint: 'step', constants, u32, f32, bindings: [b(dx, 1, 'rw'), b(x, 2), b(targetT, 3), b(partials, 4, 'rw')], workgroups: ctx.grid(groups, 1) });
  const fin = ctx.kernel({ op, shader: lossFusedShader, entryPoint: 'finalize', constants: { WG: REDUCE_WG }, u32, f32, bindings: [b(partials, 2), b(loss, 4, 'rw')], workgroups: [1] });
  fin.attach(partials);
  if (placeholder) pass.attach(placeholder);
  return [pass, fin];
}

/**
 * BCE-with-logits loss and gradient in one pass (one dispatch up to {@link LOSS_STEP_ONE_GROUP_MAX} elements):
 * loss[s] = mean over segment s of the terms (as {@link bceWithLogitsForward}) and dlogits (+)= scale_s ·
 * (sigmoid(x) - t_s) / (segment size). `target`: one number (loss [1]), or two — the first half of the batch
 * against target[0], the second against target[1], each averaged on its own (loss [2]): D's fake and real
 * passes run as one batch of 2 (exact with instance, group or no norm, which are per sample).
 */
export function bceWithLogitsStep(ctx: GpuContext, loss: Tensor, dlogits: Tensor, logits: Tensor, target: number | readonly number[] | Tensor, o: LossStepOptions = {}): Dispatch[] {
  return lossStep(ctx, 'bce_with_logits.step', 'bce', loss, dlogits, logits, target, o);
}

/** MSE (lsgan) loss and gradient in one pass, with the segments of {@link bceWithLogitsStep}: dx (+)= scale_s · 2 (x - t_s) / (segment size). */
export function mseLossStep(ctx: GpuContext, loss: Tensor, dx: Tensor, x: Tensor, target: number | readonly number[] | Tensor, o: LossStepOptions = {}): Dispatch[] {
  return lossStep(ctx, 'mse_loss.step', 'mse', loss, dx, x, target, o);
}

/** L1 loss [1] and gradient in one pass: dx (+)= scale · sign(x - t) / n (then times act'(x) with `through`). */
export function l1LossStep(ctx: GpuContext, loss: Tensor, dx: Tensor, x: Tensor, target: Tensor, o: LossStepOptions = {}): Dispatch[] {
  return lossStep(ctx, 'l1_loss.step', 'l1', loss, dx, x, target, o);
}
