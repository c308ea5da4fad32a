/**
 * Metric benchmarks: SSIM of one 512x1024 pair (gray and RGB, both modes; recorded dispatches, no readback)
 * and InceptionV3 pool3 features per image (pytorch-fid's network; synthetic weights, since timing does not
 * depend on their values). FLOPs of SSIM are not meaningful; bytes = the two images read once.
 */
import type { GpuContext } from '../src/runtime/context.js';
import { destroyDispatches } from '../src/runtime/context.js';
import { Rng } from '../src/runtime/random.js';
import { ssimForward } from '../src/metrics/ssim.js';
import { createInceptionExtractorFromWeights } from '../src/metrics/inception.js';
import { syntheticInceptionStateDict } from '../src/metrics/inception_synthetic.js';
import { timeAsync, timeDispatches, type BenchResult } from './harness.js';

export async function benchMetrics(ctx: GpuContext, o: { warmup: number; repeats: number; inception: boolean }): Promise<BenchResult[]> {
  const out: BenchResult[] = [];
  const rng = new Rng(1);
  for (const c of [1, 3]) {
    const n = c * 512 * 1024;
    const real = ctx.tensor([1, c, 512, 1024], Float32Array.from({ length: n }, () => rng.next()), 'bench.real');
    const fake = ctx.tensor([1, c, 512, 1024], Float32Array.from({ length: n }, () => rng.next()), 'bench.fake');
    const sums = ctx.tensor([1], undefined, 'bench.ssim');
    for (const mode of ['skimage', 'gaussian'] as const) {
      const ds = ssimForward(ctx, sums, null, real, fake, { mode });
      const t = await timeDispatches(ctx, ds, o.warmup, o.repeats);
      destroyDispatches(ds);
      out.push({ group: 'metrics', name: `SSIM ${mode} 512x1024x${c}`, ms: t.ms, gpuMs: t.gpuMs, bytes: 2 * n * 4 });
    }
    for (const x of [real, fake, sums]) x.destroy();
  }
  if (o.inception) {
    // ~5.7 GFLOP per 299x299 image (pytorch-fid's InceptionV3 up to pool3).
    const ex = await createInceptionExtractorFromWeights(ctx, syntheticInceptionStateDict());
    const batch = 2;
    const images = ctx.tensor([batch, 3, 256, 256], Float32Array.from({ length: batch * 3 * 256 * 256 }, () => rng.next()), 'bench.images');
    // extract() returns once the work is submitted: wait for the queue so the GPU time is counted.
    const ms = await timeAsync(
      async () => {
        const f = await ex.extract(ctx, images);
        await ctx.device.queue.onSubmittedWorkDone();
        f.destroy();
      },
      1,
      Math.max(1, Math.min(o.repeats, 3)),
    );
    out.push({ group: 'metrics', name: `Inception pool3 features, batch ${batch} (per image)`, ms: ms / batch, flops: 5.7e9, gflops: 5.7e9 / ((ms / batch) * 1e6), note: `${(1000 / (ms / batch)).toFixed(2)} images/s` });
    images.destroy();
    ex.destroy();
  }
  return out;
}
