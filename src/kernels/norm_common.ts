/**
 * Shared recording for instance norm and batch norm (shaders/norm.wgsl): both normalise groups of an
 * NCHW tensor and differ only in what a group is. See the shader header for the work split.
 */
import normShader from '../../shaders/norm.wgsl';
import randomShader from '../../shaders/random.wgsl';
import type { Binding, Dispatch, GpuContext } from '../runtime/context.js';
import type { Tensor } from '../runtime/tensor.js';
import { ShapeError } from '../runtime/errors.js';

// random.wgsl first: the fused dropout's mask is dropout.wgsl's hash_uniform (seed, element).
const shader = `${randomShader}\n${normShader}`;
const WG = 256;

export interface NormGeometry {
  N: number;
  C: number;
  hw: number;
  instance: boolean;
  /** Groups: N*C (instance) or C (batch). */
  groups: number;
  /** Elements per group. */
  m: number;
}

export function normGeometry(op: string, x: Tensor, instance: boolean): NormGeometry {
  if (x.shape.length !== 4) throw new ShapeError(op, 'x rank (NCHW)', 4, x.shape.length);
  const [N, C, H, W] = x.shape;
  const hw = H * W;
  return { N, C, hw, instance, groups: instance ? N * C : C, m: instance ? hw : N * hw };
}

/**
 * Dropout fused after the norm (and its fused activation): the forward writes dropout(act(norm(x))) with the
 * mask of shaders/dropout.wgsl for the same seed, the backward multiplies dy by it. The seed changes per step
 * with {@link setNormDropoutSeed}.
 */
export interface FusedDropout {
  p: number;
  seed: number;
}

function uniforms(g: NormGeometry, accumulate: boolean, eps: number, momentum: number, dropout?: FusedDropout, accumulateParams = accumulate): { u32: number[]; f32: number[] } {
  return {
    u32: [g.hw, g.C, g.groups, g.instance ? 1 : g.N, g.instance ? 0 : g.C, g.instance ? 1 : 0, g.N * g.C * g.hw, accumulate ? 1 : 0, g.instance ? g.N : 1, dropout ? dropout.seed : 0, accumulateParams ? 1 : 0],
    // torch divides by (M - 1) for the running variance; with M = 1 it would divide by zero (torch refuses that in training).
    f32: [eps, momentum, g.m > 1 ? g.m / (g.m - 1) : 1, dropout ? dropout.p : 0, dropout ? 1 / (1 - dropout.p) : 1],
  };
}

/** The uniforms of each dispatch recorded with a fused dropout (setUniforms rewrites them whole). */
const dropoutDispatches = new WeakMap<Dispatch, { u32: number[]; f32: number[] }>();

/** Refuse a probability outside [0, 1) and a seed that is no u32, as the dropout kernels do. */
function checkDropout(op: string, d: FusedDropout): void {
  if (!(d.p >= 0 && d.p < 1)) throw new ShapeError(op, 'dropout p', 'a probability in [0, 1)', d.p);
  if (!Number.isInteger(d.seed) || d.seed < 0 || d.seed > 0xffffffff) throw new ShapeError(op, 'dropout seed', 'an integer in [0, 2^32)', d.seed);
}

/** Remember the uniforms of dispatches that carry a fused dropout's seed. */
function trackDropout(list: Dispatch[], u: { u32: number[]; f32: number[] }, dropout: FusedDropout | undefined): Dispatch[] {
  if (dropout) for (const d of list) dropoutDispatches.set(d, u);
  return list;
}

/** New mask seed for norm dispatches recorded with a fused dropout (its forward and backward share it). No allocation. */
export function setNormDropoutSeed(dispatches: readonly Dispatch[], seed: number): void {
  for (const d of dispatches) {
    const u = dropoutDispatches.get(d);
    if (!u) throw new ShapeError('setNormDropoutSeed', `dispatch '${d.op}'`, 'a norm dispatch with a fused dropout', d.op);
    checkDropout('setNormDropoutSeed', { p: u.f32[3], seed });
    u.u32[9] = seed;
    d.setUniforms(u.u32, u.f32);
  }
}

const b = (tensor: Tensor, binding: number, access: 'read' | 'rw' = 'read'): Binding => ({ tensor, binding, access });

/** An activation applied to the norm's output in the same kernel (y = act(norm(x))); backward reads y for act'. */
export interface FusedActivation {
  kind: 'relu' | 'leaky_relu';
  /** LeakyReLU's negative slope (0.2 in pix2pix). */
  slope?: number;
}

// dy_at(i): the gradient reaching the norm's output (shared with shaders/group_norm.wgsl, which uses the same
// binding names dy and y_act and leaves binding 21 free). Without a fused activation it is dy; with one, dy
// times act'(y) from the saved activated output (act' from the output: ReLU's mask is y > 0 as torch's
// threshold_backward; LeakyReLU's sign of y equals the sign of its input for a positive slope).
export const PLAIN_DY = `fn dy_at(i: u32) -> f32 { return dy[i]; }`;
export const FUSED_DY = `@group(0) @binding(21) var<storage, read> y_act: array<f32>;
fn dy_at(i: u32) -> f32 {
  let s = y_act[i];
  if (ACT == 1u) { return select(0.0, dy[i], s > 0.0); }
  return select(dy[i] * SLOPE, dy[i], s > 0.0);
}`;

export function activationConstants(a: FusedActivation | undefined): { ACT: number; SLOPE: number } {
  if (!a) return { ACT: 0, SLOPE: 0.2 };
  return { ACT: a.kind === 'relu' ? 1 : 2, SLOPE: a.slope ?? 0.2 };
}

/**
 * Groups of at most this many elements take the one-thread-per-group kernels (*_serial in norm.wgsl: one
 * dispatch instead of two, no barriers). Instance norm on lavapipe (2 shared cores, load ~10; min of 20 runs
 * of GPU timestamps, ms), tree kernels (two dispatches each way) / serial:
 *   shape [N, C, H, W]      forward      backward
 *   1x64x8x16               2.16 / 0.00  1.31 / 0.00   (below the timestamps' resolution)
 *   1x8x32x64               0.66 / 0.07  0.59 / 0.07
 *   1x512x2x2               8.72 / 0.07  3.34 / 0.07
 *   1x128x32x32             9.50 / 0.52  5.70 / 0.79
 *   1x128x64x64            22.74 / 2.16 12.32 / 3.15   (m = 4096)
 *   1x64x128x128 (m = 16384, tree)  27.8 forward, 30.1 backward
 * pix2pix 'small' step: 18 forward + 18 backward instance norms, 39.6 -> 2.7 ms. A discrete GPU wants the
 * tree kernels for far smaller groups (one thread per group leaves most of it idle): re-measure there.
 */
const SERIAL_MAX_GROUP = 4096;
/** Threads per workgroup of the serial kernels: few, so that a handful of groups still spreads over cores. */
const SERIAL_WG = 8;

function serial(g: NormGeometry): boolean {
  return g.m <= SERIAL_MAX_GROUP;
}

/** A group is one whole channel (batch norm; instance norm at N = 1): its serial thread can finish per-channel work. */
function groupIsChannel(g: NormGeometry): boolean {
  return g.groups === g.C;
}

/** Statistics from the batch (training BN, instance norm always) or from running statistics (eval BN). */
export function recordNormForward(
  ctx: GpuContext,
  op: string,
  g: NormGeometry,
  y: Tensor,
  mean: Tensor,
  rstd: Tensor,
  x: Tensor,
  gamma: Tensor | null,
  beta: Tensor | null,
  o: { eps: number; batchStats: boolean; runningMean?: Tensor | null; runningVar?: Tensor | null; momentum?: number; activation?: FusedActivation; dropout?: FusedDropout },
): Dispatch[] {
  if (o.activation) checkFusedActivation(op, o.activation);
  if (o.dropout) checkDropout(op, o.dropout);
  const u = uniforms(g, false, o.eps, o.momentum ?? 0.1, o.dropout);
  const { u32, f32 } = u;
  const act = activationConstants(o.activation);
  const base = { op, shader: `${shader}\n${PLAIN_DY}\n`, constants: { WG, BATCH_STATS: 1, DROP: o.dropout ? 1 : 0, ...act }, u32, f32 };
  const out: Dispatch[] = [];
  if (o.batchStats && serial(g)) {
    const variance = ctx.scratch([g.groups], `${op}.var`);
    const stats = [b(mean, 1, 'rw'), b(rstd, 2, 'rw'), b(variance, 3, 'rw'), b(x, 4), b(y, 10, 'rw')];
    if (o.runningMean && o.runningVar && gamma && beta && groupIsChannel(g)) {
      // One launch instead of two: the thread that normalised channel c moves its running statistics.
      out.push(
        ctx.kernel({
          ...base,
          constants: { ...base.constants, WG: SERIAL_WG },
          entryPoint: 'stats_normalize_affine_running_serial',
          bindings: [...stats, b(gamma, 11), b(beta, 12), b(o.runningMean, 5, 'rw'), b(o.runningVar, 6, 'rw')],
          workgroups: ctx.grid(g.groups, SERIAL_WG),
        }).attach(variance),
      );
      return trackDropout(out, u, o.dropout);
    }
    out.push(
      ctx.kernel({
        ...base,
        constants: { ...base.constants, WG: SERIAL_WG },
        entryPoint: gamma ? 'stats_normalize_affine_serial' : 'stats_normalize_serial',
        bindings: gamma && beta ? [...stats, b(gamma, 11), b(beta, 12)] : stats,
        workgroups: ctx.grid(g.groups, SERIAL_WG),
      }).attach(variance),
    );
    if (o.runningMean && o.runningVar) {
      out.push(
        ctx.kernel({
          ...base,
          entryPoint: 'running_update',
          bindings: [b(o.runningMean, 5, 'rw'), b(o.runningVar, 6, 'rw'), b(mean, 7), b(variance, 8)],
          workgroups: [Math.ceil(g.C / WG)],
        }),
      );
    }
    return trackDropout(out, u, o.dropout);
  }
  if (o.batchStats) {
    const variance = ctx.scratch([g.groups], `${op}.var`);
    out.push(
      ctx.kernel({ ...base, entryPoint: 'stats', bindings: [b(mean, 1, 'rw'), b(rstd, 2, 'rw'), b(variance, 3, 'rw'), b(x, 4)], workgroups: ctx.grid(g.groups, 1) }).attach(variance),
    );
    if (o.runningMean && o.runningVar) {
      out.push(
        ctx.kernel({
          ...base,
          entryPoint: 'running_update',
          bindings: [b(o.runningMean, 5, 'rw'), b(o.runningVar, 6, 'rw'), b(mean, 7), b(variance, 8)],
          workgroups: [Math.ceil(g.C / WG)],
        }),
      );
    }
  } else {
    if (!o.runningMean || !o.runningVar) throw new ShapeError(op, 'running statistics for eval mode', 'runningMean and runningVar', 'null');
    out.push(ctx.kernel({ ...base, entryPoint: 'eval_stats', bindings: [b(mean, 1, 'rw'), b(rstd, 2, 'rw'), b(o.runningMean, 19), b(o.runningVar, 20)], workgroups: [Math.ceil(g.C / WG)] }));
  }
  const norm = [b(x, 4), b(mean, 7), b(rstd, 9), b(y, 10, 'rw')];
  out.push(
    ctx.kernel({
      ...base,
      entryPoint: gamma ? 'normalize_affine' : 'normalize',
      bindings: gamma && beta ? [...norm, b(gamma, 11), b(beta, 12)] : norm,
      workgroups: ctx.grid(x.size, WG),
    }),
  );
  return trackDropout(out, u, o.dropout);
}

export function recordNormBackward(
  ctx: GpuContext,
  op: string,
  g: NormGeometry,
  dx: Tensor | null,
  dgamma: Tensor | null,
  dbeta: Tensor | null,
  dy: Tensor,
  x: Tensor,
  mean: Tensor,
  rstd: Tensor,
  gamma: Tensor | null,
  o: { accumulate: boolean; accumulateParams?: boolean; batchStats: boolean; activation?: { fused: FusedActivation; y: Tensor }; dropout?: FusedDropout },
): Dispatch[] {
  const fused = o.activation;
  if (fused) {
    checkFusedActivation(op, fused.fused);
    ctx.checkTensor(fused.y, op, x.shape, 'y (the fused forward output)');
  }
  if (o.dropout) checkDropout(op, o.dropout);
  const u = uniforms(g, o.accumulate, 0, 0, o.dropout, o.accumulateParams ?? o.accumulate);
  const { u32, f32 } = u;
  const constants = { WG, BATCH_STATS: o.batchStats ? 1 : 0, DROP: o.dropout ? 1 : 0, ...activationConstants(fused?.fused) };
  const base = { op, shader: `${shader}\n${fused ? FUSED_DY : PLAIN_DY}\n`, constants, u32, f32 };
  // Every entry point that reads dy reads it through dy_at, which with a fused activation reads y too.
  const dyBindings = fused ? [b(dy, 13), b(fused.y, 21)] : [b(dy, 13)];
  const sums = ctx.scratch([2 * g.groups], `${op}.sums`);
  if (dx && o.batchStats && serial(g)) {
    const bindings = [b(x, 4), b(mean, 7), b(rstd, 9), ...dyBindings, b(sums, 14, 'rw'), b(dx, 18, 'rw')];
    if (gamma && dgamma && dbeta && groupIsChannel(g)) {
      // One launch instead of two: the thread that summed channel c writes dgamma[c] and dbeta[c].
      const entryPoint = 'grad_affine_params_serial';
      const all = [...bindings, b(gamma, 11), b(dgamma, 16, 'rw'), b(dbeta, 17, 'rw')];
      return trackDropout([ctx.kernel({ ...base, constants: { ...base.constants, WG: SERIAL_WG }, entryPoint, bindings: all, workgroups: ctx.grid(g.groups, SERIAL_WG) }).attach(sums)], u, o.dropout);
    }
    const out = [
      ctx.kernel({
        ...base,
        constants: { ...base.constants, WG: SERIAL_WG },
        entryPoint: gamma ? 'grad_affine_serial' : 'grad_serial',
        bindings: gamma ? [...bindings, b(gamma, 11)] : bindings,
        workgroups: ctx.grid(g.groups, SERIAL_WG),
      }).attach(sums),
    ];
    if (dgamma && dbeta) {
      out.push(ctx.kernel({ ...base, entryPoint: 'param_grads', bindings: [b(sums, 15), b(dgamma, 16, 'rw'), b(dbeta, 17, 'rw')], workgroups: [Math.ceil(g.C / WG)] }));
    }
    return trackDropout(out, u, o.dropout);
  }
  const out: Dispatch[] = [
    ctx.kernel({ ...base, entryPoint: 'grad_sums', bindings: [b(x, 4), b(mean, 7), b(rstd, 9), ...dyBindings, b(sums, 14, 'rw')], workgroups: ctx.grid(g.groups, 1) }).attach(sums),
  ];
  if (dgamma && dbeta) {
    out.push(ctx.kernel({ ...base, entryPoint: 'param_grads', bindings: [b(sums, 15), b(dgamma, 16, 'rw'), b(dbeta, 17, 'rw')], workgroups: [Math.ceil(g.C / WG)] }));
  }
  if (dx) {
    const inputs = [b(x, 4), b(mean, 7), b(rstd, 9), ...dyBindings, b(sums, 15), b(dx, 18, 'rw')];
    out.push(
      ctx.kernel({
        ...base,
        entryPoint: gamma ? 'input_grad_affine' : 'input_grad',
        bindings: gamma ? [...inputs, b(gamma, 11)] : inputs,
        workgroups: ctx.grid(x.size, WG),
      }),
    );
  }
  return trackDropout(out, u, o.dropout);
}

/** Validate the tensors of a norm backward; `statsLength` is N*C (instance) or C (batch). */
export function checkNormBackward(
  ctx: GpuContext,
  op: string,
  dx: Tensor | null,
  dgamma: Tensor | null,
  dbeta: Tensor | null,
  dy: Tensor,
  x: Tensor,
  mean: Tensor,
  rstd: Tensor,
  gamma: Tensor | null,
  statsLength: number,
): void {
  ctx.checkTensor(x, op, undefined, 'x');
  ctx.checkTensor(dy, op, x.shape, 'dy');
  ctx.checkTensor(mean, op, [statsLength], 'mean');
  ctx.checkTensor(rstd, op, [statsLength], 'rstd');
  const C = x.shape[1];
  if (gamma) ctx.checkTensor(gamma, op, [C], 'gamma');
  if (dx) {
    ctx.checkTensor(dx, op, x.shape, 'dx');
    if (dx === dy || dx === x) throw new ShapeError(op, 'dx aliasing dy or x', 'distinct tensors', 'the same tensor');
  }
  if (!!dgamma !== !!dbeta) throw new ShapeError(op, 'parameter gradients', 'both dgamma and dbeta, or neither', dgamma ? 'only dgamma' : 'only dbeta');
  if (dgamma) ctx.checkTensor(dgamma, op, [C], 'dgamma');
  if (dbeta) ctx.checkTensor(dbeta, op, [C], 'dbeta');
  if (!dx && !dgamma) throw new ShapeError(op, 'outputs', 'dx and/or dgamma+dbeta', 'none');
}

/** Validate the tensors of a norm forward; `statsLength` is N*C (instance) or C (batch). */
export function checkNormForward(ctx: GpuContext, op: string, g: NormGeometry, y: Tensor, mean: Tensor, rstd: Tensor, x: Tensor, gamma: Tensor | null, beta: Tensor | null): void {
  ctx.checkTensor(y, op, x.shape, 'y');
  ctx.checkTensor(mean, op, [g.groups], 'mean');
  ctx.checkTensor(rstd, op, [g.groups], 'rstd');
  if (!!gamma !== !!beta) throw new ShapeError(op, 'affine parameters', 'both gamma and beta, or neither', gamma ? 'only gamma' : 'only beta');
  if (gamma) ctx.checkTensor(gamma, op, [g.C], 'gamma');
  if (beta) ctx.checkTensor(beta, op, [g.C], 'beta');
}

/** Throw unless `a` is an activation the norm kernels fuse (ReLU, LeakyReLU with a positive slope). */
export function checkFusedActivation(op: string, a: FusedActivation): void {
  if (a.kind !== 'relu' && a.kind !== 'leaky_relu') throw new ShapeError(op, 'fused activation', "'relu' or 'leaky_relu'", a.kind);
  if (a.kind === 'leaky_relu' && !((a.slope ?? 0.2) > 0)) throw new ShapeError(op, 'fused LeakyReLU slope (the sign of y must be the sign of its input)', '> 0', a.slope);
}
