import shader from '../../shaders/channel_slice.wgsl';
import type { Dispatch, GpuContext } from '../runtime/context.js';
import type { Tensor } from '../runtime/tensor.js';
import { ShapeError } from '../runtime/errors.js';

const WG = 256;

/** Options of {@link channelSliceCopy}. */
export interface ChannelSliceParams {
  /** First destination channel (default 0). */
  c0?: number;
  /** Apply ReLU while copying (fuses a conv's activation into the concat); default false. */
  relu?: boolean;
}

/**
 * dst[:, c0 : c0 + Cb] = src (optionally ReLU(src)), with src [N, Cb, H, W] and dst [N, Ct, H, W]:
 * each branch of a concatenation writes straight into its channel range of the preallocated output.
 * Other channels of dst are left as they are.
 */
export function channelSliceCopy(ctx: GpuContext, dst: Tensor, src: Tensor, p: ChannelSliceParams = {}): Dispatch[] {
  const op = 'channel_slice.copy';
  ctx.checkTensor(src, op, undefined, 'src');
  ctx.checkTensor(dst, op, undefined, 'dst');
  if (src.shape.length !== 4) throw new ShapeError(op, 'src rank (src must be NCHW)', 4, src.shape.length);
  if (dst.shape.length !== 4) throw new ShapeError(op, 'dst rank (dst must be NCHW)', 4, dst.shape.length);
  const [N, Cb, H, W] = src.shape;
  const Ct = dst.shape[1];
  const c0 = p.c0 ?? 0;
  if (!Number.isInteger(c0) || c0 < 0) throw new ShapeError(op, 'c0', 'an integer >= 0', c0);
  if (dst.shape[0] !== N || dst.shape[2] !== H || dst.shape[3] !== W) {
    throw new ShapeError(op, 'dst shape (batch and spatial size of src)', `[${N}, *, ${H}, ${W}]`, [...dst.shape]);
  }
  if (c0 + Cb > Ct) throw new ShapeError(op, `channel range [${c0}, ${c0 + Cb}) vs dst channels`, `c0 + ${Cb} <= ${Ct}`, c0 + Cb);
  if (src.overlaps(dst)) throw new ShapeError(op, 'dst aliasing src', 'distinct tensors', 'one buffer');
  return [ctx.kernel({
    op,
    shader,
    entryPoint: 'copy',
    constants: { WG },
    u32: [N, Cb, Ct, H * W, c0, p.relu ? 1 : 0],
    bindings: [
      { tensor: src, access: 'read' },
      { tensor: dst, access: 'rw' },
    ],
    workgroups: ctx.grid(src.size, WG),
  })];
}
