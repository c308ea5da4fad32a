// The bias gradient db[m] (+)= sum over batch and pixels of dy[n, m, :, :], for the weight-gradient
// variants that do not fuse it (direct, tiled) and for conv_transpose2d.
import type { Dispatch, GpuContext } from '../../runtime/context.js';
import type { Tensor } from '../../runtime/tensor.js';
import { WG } from './common.js';
import { reduceShader } from './shaders.js';

// bias_grad_serial (one thread per channel) up to this many values per channel, the 256-thread tree
// reduction above: the serial pass won on every pix2pix shape measured (bench/RESULTS.md, conv selection history: bias grad).
export const BIAS_SERIAL_MAX = 8192;

/** db[m] (+)= sum over batch and pixels of dy[n, m, :, :]. */
export function encodeBiasGrad(ctx: GpuContext, op: string, db: Tensor, dy: Tensor, accumulate: boolean, serial?: boolean): Dispatch {
  const [N, C, H, W] = dy.shape;
  const bindings = [{ tensor: dy, access: 'read' as const }, { tensor: db, access: 'rw' as const }];
  const u32 = [0, 0, N, C, H * W, accumulate ? 1 : 0];
  if (serial ?? N * H * W <= BIAS_SERIAL_MAX) {
    return ctx.kernel({ op, shader: reduceShader, entryPoint: 'bias_grad_serial', constants: { WG: 64 }, u32, bindings, workgroups: [Math.ceil(C / 64)] });
  }
  return ctx.kernel({ op, shader: reduceShader, entryPoint: 'bias_grad', constants: { WG }, u32, bindings, workgroups: [C] });
}
