// One conv2d or conv_transpose2d case in all three directions against the float64 CPU references: random
// inputs, garbage outputs (forward must overwrite them) and old gradients (for accumulate), the three GPU
// launches recorded with the caller's params, then read back and compared. The kernel tests that force one
// variant or launch shape (conv_transpose2d, conv_fast_blocked, conv_small_launch) share it, and check the
// launches they expect between recording and comparing.
import type { Dispatch, GpuContext } from '../../src/runtime/context.js';
import type { Rng } from '../../src/runtime/random.js';
import { conv2dForward, conv2dBackwardInput, conv2dBackwardWeight, conv2dOutputShape, type BlockedTuning, type ConvImpl, type Pair } from '../../src/kernels/conv2d.js';
import { convTranspose2dForward, convTranspose2dBackwardInput, convTranspose2dBackwardWeight, convTranspose2dOutputShape } from '../../src/kernels/conv_transpose2d.js';
import { conv2dForwardCpu, conv2dBackwardCpu } from '../../src/kernels/cpu/conv2d.js';
import { convTranspose2dForwardCpu, convTranspose2dBackwardCpu } from '../../src/kernels/cpu/conv_transpose2d.js';
import { runAndRead } from './gpu.js';
import { expectClose } from './compare.js';

export const size = (s: readonly number[]) => s.reduce((a, b) => a * b, 1);

export interface ConvCase {
  name: string;
  x: [number, number, number, number];
  /** [out channels, KH, KW] */
  w: [number, number, number];
  p: { stride?: Pair; padding?: Pair; outputPadding?: Pair };
  bias: boolean;
  tuning?: BlockedTuning;
}

export interface RecordedConvCase {
  yShape: number[];
  wShape: number[];
  fwd: Dispatch[];
  bwdIn: Dispatch[];
  bwdW: Dispatch[];
  /** Run the three launches, compare with the references, report each error as note(k, err), free the tensors. */
  check(opName: string, tol: { atol: number; rtol: number }, note: (k: 'y' | 'dx' | 'dw' | 'db', err: number) => void): Promise<void>;
}

/** Record case `c` (conv_transpose2d when `transposed`) with `launch` ({ impl, blocked }) forced, its inputs drawn from `rng`. */
export function recordConvCase(
  ctx: GpuContext,
  c: ConvCase,
  transposed: boolean,
  rng: Rng,
  launch: { impl: ConvImpl; blocked?: BlockedTuning },
  accumulate: boolean,
): RecordedConvCase {
  const wShape = transposed ? [c.x[1], c.w[0], c.w[1], c.w[2]] : [c.w[0], c.x[1], c.w[1], c.w[2]];
  const yShape = transposed ? convTranspose2dOutputShape(c.x, wShape, c.p) : conv2dOutputShape(c.x, wShape, c.p);
  const xData = rng.normals(size(c.x));
  const wData = rng.normals(size(wShape), 0.5);
  const bData = rng.normals(c.w[0]);
  const dyData = rng.normals(size(yShape));
  const x = ctx.tensor(c.x, xData, 'x');
  const w = ctx.tensor(wShape, wData, 'w');
  const b = c.bias ? ctx.tensor([c.w[0]], bData, 'b') : null;
  const y = ctx.tensor(yShape, rng.normals(size(yShape)), 'y'); // garbage: forward must overwrite
  const dy = ctx.tensor(yShape, dyData, 'dy');
  const dxOld = rng.normals(size(c.x));
  const dwOld = rng.normals(size(wShape));
  const dbOld = rng.normals(c.w[0]);
  const dx = ctx.tensor(c.x, dxOld, 'dx');
  const dw = ctx.tensor(wShape, dwOld, 'dw');
  const db = c.bias ? ctx.tensor([c.w[0]], dbOld, 'db') : null;
  const p = { ...c.p, ...launch };
  const bp = { ...p, accumulate };
  const fwd = transposed ? convTranspose2dForward(ctx, y, x, w, b, p) : conv2dForward(ctx, y, x, w, b, p);
  const bwdIn = transposed ? convTranspose2dBackwardInput(ctx, dx, dy, w, bp) : conv2dBackwardInput(ctx, dx, dy, w, bp);
  const bwdW = transposed ? convTranspose2dBackwardWeight(ctx, dw, db, dy, x, bp) : conv2dBackwardWeight(ctx, dw, db, dy, x, bp);
  return {
    yShape,
    wShape,
    fwd,
    bwdIn,
    bwdW,
    async check(opName, tol, note) {
      const ref = transposed
        ? convTranspose2dForwardCpu(xData, c.x, wData, wShape, c.bias ? bData : null, c.p)
        : conv2dForwardCpu(xData, c.x, wData, wShape, c.bias ? bData : null, c.p);
      const g = transposed ? convTranspose2dBackwardCpu(dyData, xData, c.x, wData, wShape, c.p, c.bias) : conv2dBackwardCpu(dyData, xData, c.x, wData, wShape, c.p, c.bias);
      const plus = (r: Float64Array, old: Float32Array) => (accumulate ? r.map((v, i) => v + old[i]) : r);
      note('y', expectClose(await runAndRead(ctx, fwd, y), ref.data, { ...tol, label: `${opName} forward` }));
      note('dx', expectClose(await runAndRead(ctx, bwdIn, dx), plus(g.dx, dxOld), { ...tol, label: `${opName} dx` }));
      note('dw', expectClose(await runAndRead(ctx, bwdW, dw), plus(g.dw, dwOld), { ...tol, label: `${opName} dw` }));
      if (db) note('db', expectClose(await db.read(), plus(g.db!, dbOld), { ...tol, label: `${opName} db` }));
      for (const t of [x, w, b, y, dy, dx, dw, db]) t?.destroy();
    },
  };
}
