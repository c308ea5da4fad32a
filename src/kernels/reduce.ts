import shader from '../../shaders/loss.wgsl';
import type { Dispatch, GpuContext } from '../runtime/context.js';
import type { Tensor } from '../runtime/tensor.js';
import { ShapeError } from '../runtime/errors.js';

const WG = 256;
const ITEMS = 4; // elements per thread in pass 1 (must match ITEMS in shaders/loss.wgsl)

/** Loss codes of shaders/loss.wgsl. */
export const LOSS_CODE = { bce: 0, mse: 1, l1: 2, sum: 3 } as const;
export type ReductionTerm = keyof typeof LOSS_CODE;

/**
 * out[0] = scale * Σ_i term(x[i], target): a two-pass tree reduction (partials per workgroup, then one
 * workgroup over the partials). The partials are scratch owned by the returned dispatches.
 */
export function reduceTerms(
  ctx: GpuContext,
  op: string,
  out: Tensor,
  x: Tensor,
  termKind: ReductionTerm,
  target: number | Tensor,
  scale: number,
): Dispatch[] {
  ctx.checkTensor(x, op, undefined, 'x');
  ctx.checkTensor(out, op, [1], 'out');
  if (x.size === 0) throw new ShapeError(op, 'x elements', '>= 1', 0);
  if (typeof target !== 'number') ctx.checkTensor(target, op, x.shape, 'target');
  const groups = Math.ceil(x.size / (WG * ITEMS));
  const partials = ctx.tensor([groups], undefined, `${op}.partials`);
  const scalar = typeof target === 'number';
  const t = scalar ? target : 0;
  const pass1 = ctx.kernel({
    op,
    shader,
    entryPoint: scalar ? 'partial_scalar' : 'partial_tensor',
    constants: { WG, LOSS: LOSS_CODE[termKind] },
    u32: [x.size, groups, 0],
    f32: [t, 1],
    bindings: [
      { tensor: partials, access: 'rw' },
      { tensor: x, access: 'read' },
      ...(scalar ? [] : [{ tensor: target as Tensor, access: 'read' as const }]),
    ],
    workgroups: ctx.grid(groups, 1),
  }).attach(partials);
  const pass2 = ctx.kernel({
    op,
    shader,
    entryPoint: 'finalize',
    constants: { WG, LOSS: LOSS_CODE[termKind] },
    u32: [x.size, groups, 0],
    f32: [0, scale],
    bindings: [
      { tensor: out, access: 'rw' },
      { tensor: partials, access: 'read' },
    ],
    workgroups: [1],
  });
  return [pass1, pass2];
}

/** out[0] = Σ x: the reduction the losses use, exposed for metrics and tests. */
export function sumForward(ctx: GpuContext, out: Tensor, x: Tensor): Dispatch[] {
  return reduceTerms(ctx, 'sum.forward', out, x, 'sum', 0, 1);
}

/** dx (+)= scale * term'(x, target): the elementwise half of a loss backward. */
export function termGradient(
  ctx: GpuContext,
  op: string,
  dx: Tensor,
  x: Tensor,
  termKind: Exclude<ReductionTerm, 'sum'>,
  target: number | Tensor,
  scale: number,
  accumulate: boolean,
): Dispatch[] {
  ctx.checkTensor(x, op, undefined, 'x');
  ctx.checkTensor(dx, op, x.shape, 'dx');
  if (dx === x) throw new ShapeError(op, 'dx aliasing x', 'distinct tensors', 'the same tensor');
  const scalar = typeof target === 'number';
  if (!scalar) ctx.checkTensor(target as Tensor, op, x.shape, 'target');
  return [
    ctx.kernel({
      op,
      shader,
      entryPoint: scalar ? 'backward_scalar' : 'backward_tensor',
      constants: { WG, LOSS: LOSS_CODE[termKind] },
      u32: [x.size, 0, accumulate ? 1 : 0],
      f32: [scalar ? (target as number) : 0, scale],
      bindings: [
        { tensor: dx, access: 'rw' },
        { tensor: x, access: 'read' },
        ...(scalar ? [] : [{ tensor: target as Tensor, access: 'read' as const }]),
      ],
      workgroups: ctx.grid(x.size, WG),
    }),
  ];
}
