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
  return { ok: cases.every((c) => c.ok), cases };
}
