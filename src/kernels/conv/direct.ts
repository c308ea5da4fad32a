// Variant 'direct': one thread per output (or per weight), looping over the reduction. Fits every shape;
// the readable reference path, and the fastest where the GEMM has very few rows (policy.ts).
import type { Dispatch, GpuContext } from '../../runtime/context.js';
import { WG, gatherBindings, type GatherTensors, type WeightGradTensors } from './common.js';
import { packConvParams, type ConvGeometry } from './params.js';
import { NO_FUSION, withFusion, type ConvFusion } from './fusion.js';
import { gatherShader, transposedShader, weightGradShader } from './shaders.js';
import { ShapeError } from '../../runtime/errors.js';

/** Threads per workgroup: `wg` (1..WG; the policy's choice, policy.ts directTuning, or the caller's tuning.wg), default WG. */
function checkWg(op: string, wg: number): number {
  if (!Number.isInteger(wg) || wg < 1 || wg > WG) throw new ShapeError(op, 'direct workgroup size (tuning wg)', `an integer in 1..${WG}`, wg);
  return wg;
}

/** Launch: a 2-D grid of 1-D workgroups of `wg` threads covering every element of dst. */
export function encodeDirectGather(ctx: GpuContext, op: string, kind: 'gather' | 'transposed', t: GatherTensors, g: ConvGeometry, accumulate: boolean, fusion: ConvFusion = NO_FUSION, wg = WG): Dispatch {
  const u32 = packConvParams(g, { hasBias: t.bias ? 1 : 0, accumulate: accumulate ? 1 : 0 });
  const shader = withFusion(kind === 'gather' ? gatherShader : transposedShader, fusion, op);
  checkWg(op, wg);
  return ctx.kernel({ op, shader, entryPoint: 'direct', constants: { WG: wg }, u32, bindings: gatherBindings(t), workgroups: ctx.grid(t.dst.size, wg) });
}

/** One thread per weight; the bias gradient, if any, is a separate bias_grad dispatch (engine.ts). */
export function encodeDirectWeightGrad(ctx: GpuContext, op: string, t: WeightGradTensors, g: ConvGeometry, accumulate: boolean, fusion: ConvFusion = NO_FUSION, wg = WG): Dispatch {
  checkWg(op, wg);
  return ctx.kernel({
    op,
    shader: withFusion(weightGradShader, fusion, op),
    entryPoint: 'direct',
    constants: { WG: wg },
    u32: packConvParams(g, { accumulate: accumulate ? 1 : 0, splits: 1 }),
    bindings: [{ tensor: t.grad, access: 'read' }, { tensor: t.src, access: 'read' }, { tensor: t.dst, access: 'rw' }],
    workgroups: ctx.grid(t.dst.size, wg),
  });
}
