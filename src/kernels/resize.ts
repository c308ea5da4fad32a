import shader from '../../shaders/resize.wgsl';
import type { Dispatch, GpuContext } from '../runtime/context.js';
import type { Tensor } from '../runtime/tensor.js';
import { ShapeError } from '../runtime/errors.js';

/** Options of {@link resizeBilinearForward}. */
export interface ResizeParams {
  /** PyTorch's align_corners; default false (what pytorch-fid uses). */
  alignCorners?: boolean;
  /** Affine map applied to the interpolated value: y = interp(x) * mul + add (default 1, 0). */
  mul?: number;
  add?: number;
  /** Read src images from this batch index on (chunked processing); default 0. */
  srcBatchOffset?: number;
}

const WG = 256;

/**
 * y = F.interpolate(x, size=(outH, outW), mode='bilinear', align_corners) * mul + add, without
 * antialias (torch's default, also when downsampling). x [N', C or 1, H, W] (1 channel is broadcast to
 * y's C), y [N, C, outH, outW] with N + srcBatchOffset <= N'.
 */
export function resizeBilinearForward(ctx: GpuContext, y: Tensor, x: Tensor, p: ResizeParams = {}): Dispatch[] {
  const op = 'resize_bilinear.forward';
  ctx.checkTensor(x, op, undefined, 'x');
  ctx.checkTensor(y, op, undefined, 'y');
  for (const [name, t] of [['x', x], ['y', y]] as const) {
    if (t.shape.length !== 4) throw new ShapeError(op, `${name} rank (${name} must be NCHW)`, 4, t.shape.length);
    if (t.shape.some((d) => d < 1)) throw new ShapeError(op, `${name} shape (every dimension >= 1)`, 'positive sizes', [...t.shape]);
  }
  const [srcN, srcC, H, W] = x.shape;
  const [N, C, outH, outW] = y.shape;
  const offset = p.srcBatchOffset ?? 0;
  if (!Number.isInteger(offset) || offset < 0) throw new ShapeError(op, 'srcBatchOffset', 'an integer >= 0', offset);
  if (N + offset > srcN) throw new ShapeError(op, 'y batch + srcBatchOffset (src images read)', `<= ${srcN}`, N + offset);
  if (srcC !== C && srcC !== 1) throw new ShapeError(op, 'x channels (y channels, or 1 to broadcast)', C, srcC);
  if (x.overlaps(y)) throw new ShapeError(op, 'y aliasing x', 'distinct tensors', 'one buffer');
  const align = p.alignCorners ?? false;
  // The shader forms source coordinates exactly from u32 products (see shaders/resize.wgsl).
  for (const [inSize, outSize] of [[H, outH], [W, outW]]) {
    if ((2 * outSize + 1) * inSize > 0xffffffff) throw new ShapeError(op, '(2 * out + 1) * in (u32 coordinate arithmetic)', '<= 2^32 - 1', (2 * outSize + 1) * inSize);
  }
  return [ctx.kernel({
    op,
    shader,
    entryPoint: 'bilinear',
    constants: { WG },
    u32: [N, C, srcC, H, W, outH, outW, offset, align ? 1 : 0],
    f32: [p.mul ?? 1, p.add ?? 0],
    bindings: [
      { tensor: x, access: 'read' },
      { tensor: y, access: 'rw' },
    ],
    workgroups: ctx.grid(y.size, WG),
  })];
}
