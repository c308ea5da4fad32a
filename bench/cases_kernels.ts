/**
 * Per-kernel microbenchmarks, forward and backward, on the shapes pix2pix actually runs (k4 s2 p1 convs
 * and conv-transposes at the U-Net's levels). FLOPs: 2 per multiply-add; bytes: tensors read + written once.
 */
import type { Dispatch, GpuContext } from '../src/runtime/context.js';
import { destroyDispatches } from '../src/runtime/context.js';
import type { Tensor } from '../src/runtime/tensor.js';
import { Rng } from '../src/runtime/random.js';
import { conv2dForward, conv2dBackwardInput, conv2dBackwardWeight } from '../src/kernels/conv2d.js';
import { convTranspose2dForward, convTranspose2dBackwardInput, convTranspose2dBackwardWeight } from '../src/kernels/conv_transpose2d.js';
import { instanceNormForward, instanceNormBackward } from '../src/kernels/instance_norm.js';
import { activationForward, activationBackward } from '../src/kernels/activation.js';
import { convFlops, timeDispatches, type BenchResult } from './harness.js';

export interface KernelBenchOptions {
  warmup: number;
  repeats: number;
  /** Image height and width at the U-Net's input; conv cases are taken at levels of it. */
  height: number;
  width: number;
  ngf: number;
  /** Only the cases whose "group name" matches (e.g. /leaky_relu forward/); all when absent. */
  filter?: RegExp;
}

async function measure(ctx: GpuContext, group: string, name: string, build: () => Dispatch[], o: KernelBenchOptions, flops?: number, bytes?: number): Promise<BenchResult | null> {
  if (o.filter && !o.filter.test(`${group} ${name}`)) return null;
  const ds = build();
  const t = await timeDispatches(ctx, ds, o.warmup, o.repeats);
  destroyDispatches(ds);
  const ms = t.gpuMs ?? t.ms;
  return { group, name, ms: t.ms, gpuMs: t.gpuMs, flops, bytes, gflops: flops ? flops / (ms * 1e6) : undefined };
}

export async function benchKernels(ctx: GpuContext, o: KernelBenchOptions): Promise<BenchResult[]> {
  const rng = new Rng(3);
  const out: (BenchResult | null)[] = [];
  const owned: Tensor[] = [];
  const t = (shape: number[], label: string) => {
    const x = ctx.tensor(shape, rng.normals(shape.reduce((a, b) => a * b), 0.1), label);
    owned.push(x);
    return x;
  };
  // Three U-Net levels: the first (largest map), a middle one, and a deep one.
  const levels = [
    { cin: 3, cout: o.ngf, h: o.height, w: o.width },
    { cin: o.ngf * 2, cout: o.ngf * 4, h: o.height / 4, w: o.width / 4 },
    { cin: o.ngf * 8, cout: o.ngf * 8, h: Math.max(2, o.height / 32), w: Math.max(2, o.width / 32) },
  ];
  const p = { stride: 2, padding: 1 };
  for (const L of levels) {
    const ho = L.h / 2;
    const wo = L.w / 2;
    const x = t([1, L.cin, L.h, L.w], 'x');
    const w = t([L.cout, L.cin, 4, 4], 'w');
    const b = t([L.cout], 'b');
    const y = t([1, L.cout, ho, wo], 'y');
    const dx = t([1, L.cin, L.h, L.w], 'dx');
    const dw = t([L.cout, L.cin, 4, 4], 'dw');
    const db = t([L.cout], 'db');
    const f = convFlops(1, L.cin, L.cout, 4, 4, ho, wo);
    const tag = `${L.cin}->${L.cout} ${L.h}x${L.w}`;
    out.push(await measure(ctx, 'conv2d k4s2p1', `forward ${tag}`, () => conv2dForward(ctx, y, x, w, b, p), o, f));
    out.push(await measure(ctx, 'conv2d k4s2p1', `backward input ${tag}`, () => conv2dBackwardInput(ctx, dx, y, w, p), o, f));
    out.push(await measure(ctx, 'conv2d k4s2p1', `backward weight ${tag}`, () => conv2dBackwardWeight(ctx, dw, db, y, x, p), o, f));
    // The matching up-convolution maps [cout, ho, wo] back to [cin, h, w].
    const wt = t([L.cout, L.cin, 4, 4], 'wt');
    const bt = t([L.cin], 'bt');
    const dbt = t([L.cin], 'dbt');
    out.push(await measure(ctx, 'convT k4s2p1', `forward ${tag}`, () => convTranspose2dForward(ctx, dx, y, wt, bt, p), o, f));
    out.push(await measure(ctx, 'convT k4s2p1', `backward input ${tag}`, () => convTranspose2dBackwardInput(ctx, y, dx, wt, p), o, f));
    out.push(await measure(ctx, 'convT k4s2p1', `backward weight ${tag}`, () => convTranspose2dBackwardWeight(ctx, dw, dbt, dx, y, p), o, f));
  }
  {
    const c = o.ngf * 2;
    const h = o.height / 2;
    const w = o.width / 2;
    const n = c * h * w;
    const x = t([1, c, h, w], 'x');
    const y = t([1, c, h, w], 'y');
    const dy = t([1, c, h, w], 'dy');
    const dx = t([1, c, h, w], 'dx');
    const mean = t([c], 'mean');
    const rstd = t([c], 'rstd');
    const tag = `${c}x${h}x${w}`;
    out.push(await measure(ctx, 'instance norm', `forward ${tag}`, () => instanceNormForward(ctx, y, mean, rstd, x, null, null, { eps: 1e-5 }), o, undefined, 2 * n * 4));
    out.push(await measure(ctx, 'instance norm', `backward ${tag}`, () => instanceNormBackward(ctx, dx, null, null, dy, x, mean, rstd, null, {}), o, undefined, 3 * n * 4));
    out.push(await measure(ctx, 'activation', `leaky_relu forward ${tag}`, () => activationForward(ctx, y, x, 'leaky_relu'), o, undefined, 2 * n * 4));
    out.push(await measure(ctx, 'activation', `leaky_relu backward ${tag}`, () => activationBackward(ctx, dx, dy, x, 'leaky_relu'), o, undefined, 3 * n * 4));
  }
  for (const x of owned) x.destroy();
  return out.filter((r): r is BenchResult => r !== null);
}
