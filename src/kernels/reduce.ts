/**
 * Sums on the GPU as a two-pass tree reduction (shaders/reduce.wgsl): out[0] = scale * Σ term(x, target).
 * The term is WGSL appended to the reduction shader, so losses evaluate their terms inside the first
 * pass (shaders/loss.wgsl) and a plain sum uses the identity. The norms reduce per (n, c) map or per
 * channel in their own shader (shaders/norm.wgsl), fused with the statistics they need.
 */
import reduceShader from '../../shaders/reduce.wgsl';
import type { Dispatch, GpuContext } from '../runtime/context.js';
import type { Tensor } from '../runtime/tensor.js';
import { ShapeError } from '../runtime/errors.js';

export const REDUCE_WG = 256;
/** Elements per thread in pass 1 (must match ITEMS in shaders/reduce.wgsl). */
const ITEMS = 4;

/** WGSL that defines `fn term(v: f32, t: f32) -> f32` (and any overrides it reads), with their values. */
export interface ReductionTerm {
  source: string;
  constants?: Record<string, number>;
}

const IDENTITY_TERM: ReductionTerm = { source: 'fn term(v: f32, t: f32) -> f32 { return v; }' };

/** The reduction shader with a term appended: the module that both passes (and loss gradients) run. */
export function reductionShader(termSource: string): string {
  return `${reduceShader}\n${termSource}`;
}

/** Number of first-pass partial sums for n elements. */
export function reductionPartials(n: number): number {
  return Math.ceil(n / (REDUCE_WG * ITEMS));
}

/**
 * out[0] = scale * Σ_i term(x[i], target_i), target a scalar or a tensor shaped like x. The partials
 * are scratch owned by the returned dispatches (freed by destroyDispatches).
 */
export function reduceTerms(
  ctx: GpuContext,
  op: string,
  out: Tensor,
  x: Tensor,
  target: number | Tensor,
  scale: number,
  term: ReductionTerm = IDENTITY_TERM,
): Dispatch[] {
  ctx.checkTensor(x, op, undefined, 'x');
  ctx.checkTensor(out, op, [1], 'out');
  if (x.size === 0) throw new ShapeError(op, 'x elements', '>= 1', 0);
  const scalar = typeof target === 'number';
  if (scalar) {
    if (!Number.isFinite(target)) throw new ShapeError(op, 'target', 'a finite number', target);
  } else {
    ctx.checkTensor(target, op, x.shape, 'target');
  }
  if (out === x || out === target) throw new ShapeError(op, 'out aliasing an input', 'distinct tensors', 'the same tensor');
  const shader = reductionShader(term.source);
  const constants = { WG: REDUCE_WG, ...term.constants };
  const count = reductionPartials(x.size);
  const partials = ctx.scratch([count], `${op}.partials`);
  const pass1 = ctx.kernel({
    op,
    shader,
    entryPoint: scalar ? 'partial_scalar' : 'partial_tensor',
    constants,
    u32: [x.size, count, 0],
    f32: [scalar ? target : 0, 1],
    bindings: [
      { tensor: partials, access: 'rw' },
      { tensor: x, access: 'read' },
      ...(scalar ? [] : [{ tensor: target, access: 'read' as const }]),
    ],
    workgroups: ctx.grid(count, 1),
  }).attach(partials);
  const pass2 = ctx.kernel({
    op,
    shader,
    entryPoint: 'finalize',
    constants,
    u32: [x.size, count, 0],
    f32: [0, scale],
    bindings: [
      { tensor: out, access: 'rw' },
      { tensor: partials, access: 'read' },
    ],
    workgroups: [1],
  });
  return [pass1, pass2];
}

/** out[0] = Σ x (any shape, at least one element). */
export function sumForward(ctx: GpuContext, out: Tensor, x: Tensor): Dispatch[] {
  return reduceTerms(ctx, 'sum.forward', out, x, 0, 1);
}
