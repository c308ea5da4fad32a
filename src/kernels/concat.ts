import shader from '../../shaders/concat.wgsl';
import type { Dispatch, GpuContext } from '../runtime/context.js';
import type { Tensor } from '../runtime/tensor.js';
import { ShapeError } from '../runtime/errors.js';

const WG = 256;

function checkPair(ctx: GpuContext, op: string, y: Tensor, a: Tensor, b: Tensor, names: [string, string, string]): void {
  ctx.checkTensor(a, op, undefined, names[1]);
  ctx.checkTensor(b, op, undefined, names[2]);
  if (a.shape.length !== 4 || b.shape.length !== 4) throw new ShapeError(op, `${names[1]}/${names[2]} rank`, 4, `${a.shape.length}/${b.shape.length}`);
  const [n, ca, h, w] = a.shape;
  const [nb, cb, hb, wb] = b.shape;
  if (nb !== n || hb !== h || wb !== w) throw new ShapeError(op, `${names[2]} shape (N, H, W as ${names[1]})`, [n, cb, h, w], b.shape);
  ctx.checkTensor(y, op, [n, ca + cb, h, w], names[0]);
}

/** y = cat([a, b], dim=1): the U-Net skip (input, block(input)) and D's (A, B) pair. */
export function concatChannelsForward(ctx: GpuContext, y: Tensor, a: Tensor, b: Tensor): Dispatch[] {
  const op = 'concat.forward';
  checkPair(ctx, op, y, a, b, ['y', 'a', 'b']);
  if (y === a || y === b) throw new ShapeError(op, 'y aliasing an input', 'distinct tensors', 'the same tensor');
  const [, ca, h, w] = a.shape;
  const cb = b.shape[1];
  return [
    ctx.kernel({
      op,
      shader,
      entryPoint: 'forward',
      constants: { WG },
      u32: [y.size, h * w, ca, cb, ca + cb, 0],
      bindings: [
        { tensor: y, access: 'rw' },
        { tensor: a, access: 'read' },
        { tensor: b, access: 'read' },
      ],
      workgroups: ctx.grid(y.size, WG),
    }),
  ];
}

/**
 * da (+)= dy[:, :Ca], db (+)= dy[:, Ca:]. Either gradient may be null when nobody needs it (e.g. the
 * input image); with da null, Ca comes from `channelsA` or from db's channel count.
 */
export function concatChannelsBackward(ctx: GpuContext, da: Tensor | null, db: Tensor | null, dy: Tensor, opts: { accumulate?: boolean; channelsA?: number } = {}): Dispatch[] {
  const op = 'concat.backward';
  ctx.checkTensor(dy, op, undefined, 'dy');
  if (dy.shape.length !== 4) throw new ShapeError(op, 'dy rank', 4, dy.shape.length);
  const [n, c, h, w] = dy.shape;
  if (!da && !db) throw new ShapeError(op, 'gradients', 'da and/or db', 'neither');
  if (da) ctx.checkTensor(da, op, undefined, 'da');
  if (db) ctx.checkTensor(db, op, undefined, 'db');
  // Where dy splits: a's channel count, from da, else from channelsA, else what db leaves.
  const ca = da ? da.shape[1] : opts.channelsA ?? c - db!.shape[1];
  if (!Number.isInteger(ca) || ca < 1 || ca >= c) throw new ShapeError(op, `channels of a (split point of dy's ${c} channels)`, `1..${c - 1}`, ca);
  const parts: [Tensor | null, number, number, string][] = [
    [da, 0, ca, 'da'],
    [db, ca, c - ca, 'db'],
  ];
  const out: Dispatch[] = [];
  for (const [g, c0, cn, name] of parts) {
    if (!g) continue;
    ctx.checkTensor(g, op, [n, cn, h, w], name);
    if (g === dy) throw new ShapeError(op, `${name} aliasing dy`, 'distinct tensors', 'the same tensor');
    out.push(
      ctx.kernel({
        op,
        shader,
        entryPoint: 'backward',
        constants: { WG },
        u32: [g.size, h * w, c0, cn, c, opts.accumulate ? 1 : 0],
        bindings: [
          { tensor: g, access: 'rw' },
          { tensor: dy, access: 'read' },
        ],
        workgroups: ctx.grid(g.size, WG),
      }),
    );
  }
  return out;
}
