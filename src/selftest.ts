/**
 * A quick correctness check of this device: runs kernels on small random inputs and compares them with
 * the float64 CPU references. Used by the browser smoke test and by `pix2pix-webgpu bench --check`;
 * useful on any new adapter/driver, since WebGPU implementations differ in float behaviour.
 */
import type { GpuContext } from './runtime/context.js';
import { destroyDispatches } from './runtime/context.js';
import { Rng } from './runtime/random.js';
import { activationBackward, activationForward } from './kernels/activation.js';
import { activationBackwardCpu, activationForwardCpu } from './kernels/cpu/activation.js';
import { conv2dBackwardInput, conv2dBackwardWeight, conv2dForward } from './kernels/conv2d.js';
import { conv2dBackwardCpu, conv2dForwardCpu } from './kernels/cpu/conv2d.js';

export interface SelfTestCase {
  name: string;
  maxAbsError: number;
  tolerance: number;
  ok: boolean;
}

export interface SelfTestReport {
  ok: boolean;
  cases: SelfTestCase[];
}

function maxAbs(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]) || (Number.isNaN(a[i]) ? Infinity : 0));
  return m;
}

/** Run the self-test on `ctx`; never throws for a numerical mismatch (see `ok`), only for device errors. */
export async function selfTest(ctx: GpuContext, seed = 1): Promise<SelfTestReport> {
  const rng = new Rng(seed);
  const cases: SelfTestCase[] = [];
  const record = (name: string, got: ArrayLike<number>, want: ArrayLike<number>, tolerance: number) => {
    const e = maxAbs(got, want);
    cases.push({ name, maxAbsError: e, tolerance, ok: e <= tolerance });
  };

  {
    const shape = [2, 3, 5, 7];
    const n = 2 * 3 * 5 * 7;
    const xd = rng.normals(n);
    const dyd = rng.normals(n);
    const x = ctx.tensor(shape, xd, 'selftest.x');
    const y = ctx.tensor(shape, undefined, 'selftest.y');
    const dy = ctx.tensor(shape, dyd, 'selftest.dy');
    const dx = ctx.tensor(shape, undefined, 'selftest.dx');
    const ds = [...activationForward(ctx, y, x, 'leaky_relu'), ...activationBackward(ctx, dx, dy, x, 'leaky_relu')];
    await ctx.run(ds, 'selftest.leaky_relu');
    record('leaky_relu.forward', await y.read(), activationForwardCpu(xd, 'leaky_relu'), 1e-6);
    record('leaky_relu.backward', await dx.read(), activationBackwardCpu(dyd, xd, 'leaky_relu'), 1e-6);
    destroyDispatches(ds);
    for (const t of [x, y, dy, dx]) t.destroy();
  }
  // conv2d k4 s2 p1 (pix2pix's down-convolution) on an odd, non-square map with 5 → 7 channels, on both
  // the tiled and the direct kernels: forward, grad input, grad weight and grad bias.
  for (const impl of ['tiled', 'direct'] as const) {
    const xShape = [2, 5, 9, 14];
    const wShape = [7, 5, 4, 4];
    const p = { stride: 2, padding: 1, impl };
    const xd = rng.normals(xShape.reduce((a, b) => a * b));
    const wd = rng.normals(wShape.reduce((a, b) => a * b), 0.2);
    const bd = rng.normals(7);
    const ref = conv2dForwardCpu(xd, xShape, wd, wShape, bd, p);
    const dyd = rng.normals(ref.data.length);
    const grads = conv2dBackwardCpu(dyd, xd, xShape, wd, wShape, p, true);
    const x = ctx.tensor(xShape, xd, 'selftest.conv.x');
    const w = ctx.tensor(wShape, wd, 'selftest.conv.w');
    const b = ctx.tensor([7], bd, 'selftest.conv.b');
    const y = ctx.tensor(ref.shape, undefined, 'selftest.conv.y');
    const dy = ctx.tensor(ref.shape, dyd, 'selftest.conv.dy');
    const dx = ctx.tensor(xShape, undefined, 'selftest.conv.dx');
    const dw = ctx.tensor(wShape, undefined, 'selftest.conv.dw');
    const db = ctx.tensor([7], undefined, 'selftest.conv.db');
    const ds = [...conv2dForward(ctx, y, x, w, b, p), ...conv2dBackwardInput(ctx, dx, dy, w, p), ...conv2dBackwardWeight(ctx, dw, db, dy, x, p)];
    await ctx.run(ds, `selftest.conv2d.${impl}`);
    // fp32 sums of 5*16 products of unit normals: a few 1e-6 of error.
    record(`conv2d.${impl}.forward`, await y.read(), ref.data, 1e-4);
    record(`conv2d.${impl}.backward_input`, await dx.read(), grads.dx, 1e-4);
    record(`conv2d.${impl}.backward_weight`, await dw.read(), grads.dw, 2e-4);
    record(`conv2d.${impl}.backward_bias`, await db.read(), grads.db!, 1e-4);
    destroyDispatches(ds);
    for (const t of [x, w, b, y, dy, dx, dw, db]) t.destroy();
  }
  return { ok: cases.every((c) => c.ok), cases };
}
