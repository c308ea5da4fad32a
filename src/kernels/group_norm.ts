/**
 * GroupNorm as torch.nn.GroupNorm(num_groups, C, eps=1e-5, affine): each sample's C channels split into
 * `groups` groups of C/groups channels; each (n, group) is normalised by its own mean and biased variance
 * over (C/groups)*H*W values, then gamma[c] and beta[c] apply per channel. groups = C is instance norm
 * (with a per-channel affine), groups = 1 is layer norm over (C, H, W); both are tested to agree.
 *
 * Forward and backward live side by side here; the kernels are in shaders/group_norm.wgsl (see its header
 * for why it is not shaders/norm.wgsl), the float64 reference in cpu/group_norm.ts, the tests in
 * test/kernels/group_norm.test.ts. Validation and the fused activation (ReLU / LeakyReLU applied in the
 * same kernel, as the U-Net's down norms do) are shared with instance and batch norm (norm_common.ts).
 */
import shader from '../../shaders/group_norm.wgsl';
import type { Binding, Dispatch, GpuContext } from '../runtime/context.js';
import type { Tensor } from '../runtime/tensor.js';
import { ShapeError } from '../runtime/errors.js';
import { FUSED_DY, PLAIN_DY, activationConstants, checkFusedActivation, checkNormBackward, checkNormForward, type FusedActivation, type NormGeometry } from './norm_common.js';

const WG = 256;
/**
 * Groups (forward) and rows (backward) of at most this many values take the one-thread-each kernels:
 * the threshold norm_common.ts measured for instance norm on lavapipe, where the tree kernels' barriers
 * cost more than a few thousand elements of arithmetic. Re-measure on a discrete GPU.
 */
const SERIAL_MAX = 4096;
const SERIAL_WG = 8;

export interface GroupNormGeometry extends NormGeometry {
  /** Groups per sample (torch's num_groups). */
  numGroups: number;
  /** Channels per group. */
  cpg: number;
}

/** Shapes of a group norm on x [N, C, H, W]; throws unless `groups` divides C (as torch does). */
export function groupNormGeometry(op: string, x: Tensor | { shape: readonly number[] }, groups: number): GroupNormGeometry {
  if (x.shape.length !== 4) throw new ShapeError(op, 'x rank (NCHW)', 4, x.shape.length);
  const [N, C, H, W] = x.shape;
  if (!Number.isInteger(groups) || groups < 1 || C % groups !== 0) throw new ShapeError(op, `groups (a divisor of the ${C} channels)`, `a divisor of ${C}`, groups);
  const hw = H * W;
  const cpg = C / groups;
  return { N, C, hw, instance: false, groups: N * groups, m: cpg * hw, numGroups: groups, cpg };
}

function uniforms(g: GroupNormGeometry, accumulate: boolean, eps: number): { u32: number[]; f32: number[] } {
  return { u32: [g.hw, g.C, g.groups, g.m, g.cpg, g.N * g.C, g.N * g.C * g.hw, accumulate ? 1 : 0, g.N], f32: [eps] };
}

const b = (tensor: Tensor, binding: number, access: 'read' | 'rw' = 'read'): Binding => ({ tensor, binding, access });

/**
 * y = act((x - mean) * rstd * gamma[c] + beta[c]) per (n, group); writes mean and rstd ([N*groups]) for
 * backward. gamma and beta ([C]) are both given or both null; `activation` fuses ReLU/LeakyReLU.
 */
export function groupNormForward(
  ctx: GpuContext,
  y: Tensor,
  mean: Tensor,
  rstd: Tensor,
  x: Tensor,
  gamma: Tensor | null,
  beta: Tensor | null,
  o: { groups: number; eps?: number; activation?: FusedActivation },
): Dispatch[] {
  const op = 'group_norm.forward';
  ctx.checkTensor(x, op, undefined, 'x');
  const g = groupNormGeometry(op, x, o.groups);
  checkNormForward(ctx, op, g, y, mean, rstd, x, gamma, beta);
  if (o.activation) checkFusedActivation(op, o.activation);
  const base = { op, shader: `${shader}\n${PLAIN_DY}\n`, constants: { WG, ...activationConstants(o.activation) }, ...uniforms(g, false, o.eps ?? 1e-5) };
  const affine = gamma && beta ? [b(gamma, 5), b(beta, 6)] : [];
  if (g.m <= SERIAL_MAX) {
    return [
      ctx.kernel({
        ...base,
        constants: { ...base.constants, WG: SERIAL_WG },
        entryPoint: gamma ? 'stats_normalize_affine_serial' : 'stats_normalize_serial',
        bindings: [b(mean, 1, 'rw'), b(rstd, 2, 'rw'), b(x, 3), b(y, 4, 'rw'), ...affine],
        workgroups: ctx.grid(g.groups, SERIAL_WG),
      }),
    ];
  }
  return [
    ctx.kernel({ ...base, entryPoint: 'stats', bindings: [b(mean, 1, 'rw'), b(rstd, 2, 'rw'), b(x, 3)], workgroups: ctx.grid(g.groups, 1) }),
    ctx.kernel({
      ...base,
      entryPoint: gamma ? 'normalize_affine' : 'normalize',
      bindings: [b(x, 3), b(y, 4, 'rw'), b(mean, 7), b(rstd, 8), ...affine],
      workgroups: ctx.grid(x.size, WG),
    }),
  ];
}

/**
 * With g = gamma[c] * dy and means over the group: dx (+)= rstd * (g - mean(g) - xhat * mean(g * xhat)),
 * dgamma (+)= Σ_{n,h,w} dy * xhat, dbeta (+)= Σ_{n,h,w} dy. Pass null for the gradients nobody needs (dx,
 * or dgamma + dbeta). With a fused activation, `activation.y` is the forward's (activated) output.
 */
export function groupNormBackward(
  ctx: GpuContext,
  dx: Tensor | null,
  dgamma: Tensor | null,
  dbeta: Tensor | null,
  dy: Tensor,
  x: Tensor,
  mean: Tensor,
  rstd: Tensor,
  gamma: Tensor | null,
  o: { groups: number; accumulate?: boolean; activation?: { fused: FusedActivation; y: Tensor } },
): Dispatch[] {
  const op = 'group_norm.backward';
  ctx.checkTensor(x, op, undefined, 'x');
  const g = groupNormGeometry(op, x, o.groups);
  checkNormBackward(ctx, op, dx, dgamma, dbeta, dy, x, mean, rstd, gamma, g.groups);
  const fused = o.activation;
  if (fused) {
    checkFusedActivation(op, fused.fused);
    ctx.checkTensor(fused.y, op, x.shape, 'y (the fused forward output)');
  }
  const base = { op, shader: `${shader}\n${fused ? FUSED_DY : PLAIN_DY}\n`, constants: { WG, ...activationConstants(fused?.fused) }, ...uniforms(g, !!o.accumulate, 0) };
  const dyBindings = fused ? [b(dy, 13), b(fused.y, 21)] : [b(dy, 13)];
  const rowSums = ctx.scratch([2 * g.N * g.C], `${op}.row_sums`);
  const serial = g.hw <= SERIAL_MAX;
  const out: Dispatch[] = [
    ctx
      .kernel({
        ...base,
        constants: serial ? { ...base.constants, WG: SERIAL_WG } : base.constants,
        entryPoint: serial ? 'row_sums_serial' : 'row_sums_tree',
        bindings: [b(x, 3), b(mean, 7), b(rstd, 8), ...dyBindings, b(rowSums, 14, 'rw')],
        workgroups: serial ? ctx.grid(g.N * g.C, SERIAL_WG) : ctx.grid(g.N * g.C, 1),
      })
      .attach(rowSums),
  ];
  if (dgamma && dbeta) {
    out.push(ctx.kernel({ ...base, entryPoint: 'param_grads', bindings: [b(rowSums, 15), b(dgamma, 16, 'rw'), b(dbeta, 17, 'rw')], workgroups: [Math.ceil(g.C / WG)] }));
  }
  if (dx) {
    const groupSums = ctx.scratch([2 * g.groups], `${op}.group_sums`);
    out.push(
      ctx
        .kernel({
          ...base,
          entryPoint: gamma ? 'group_combine_affine' : 'group_combine',
          bindings: [b(rowSums, 15), b(groupSums, 19, 'rw'), ...(gamma ? [b(gamma, 5)] : [])],
          workgroups: ctx.grid(g.groups, WG),
        })
        .attach(groupSums),
      ctx.kernel({
        ...base,
        entryPoint: gamma ? 'input_grad_affine' : 'input_grad',
        bindings: [b(x, 3), b(mean, 7), b(rstd, 8), ...dyBindings, b(groupSums, 20), b(dx, 18, 'rw'), ...(gamma ? [b(gamma, 5)] : [])],
        workgroups: ctx.grid(x.size, WG),
      }),
    );
  }
  return out;
}
