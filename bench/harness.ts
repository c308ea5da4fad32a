/**
 * Benchmark harness: warm-up, then the median of repeated runs, timed by wall clock around
 * submit → onSubmittedWorkDone and, where the adapter has 'timestamp-query', by GPU timestamps written at
 * the start and end of the compute pass. Readback stays out of the timed region.
 */
import type { Dispatch, GpuContext } from '../src/runtime/context.js';
import { BufferUsage } from '../src/runtime/context.js';

export interface BenchResult {
  name: string;
  group: string;
  /** Median wall time per run, ms (submit to work-done). */
  ms: number;
  /** Median GPU time per run from timestamp queries, ms (absent when the adapter has none). */
  gpuMs?: number;
  flops?: number;
  bytes?: number;
  gflops?: number;
  peakBytes?: number;
  /** Compute dispatches per run (model cases: per G forward, per training step); on software adapters each costs ~0.25 ms. */
  dispatches?: number;
  /** TF.js time for the same work on the same adapter, ms, and our speed-up over it. */
  tfjsMs?: number;
  speedup?: number;
  note?: string;
}

export function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

/** Time an async operation: `warmup` runs, then the median of `repeats`. */
export async function timeAsync(fn: () => Promise<void>, warmup: number, repeats: number): Promise<number> {
  for (let i = 0; i < warmup; i++) await fn();
  const times: number[] = [];
  for (let i = 0; i < repeats; i++) {
    const t0 = performance.now();
    await fn();
    times.push(performance.now() - t0);
  }
  return median(times);
}

/**
 * Time a recorded dispatch list: one compute pass per run, like a training step. Returns wall and
 * (if available) GPU-timestamp medians.
 */
export async function timeDispatches(ctx: GpuContext, dispatches: readonly Dispatch[], warmup: number, repeats: number): Promise<{ ms: number; gpuMs?: number }> {
  const device = ctx.device;
  const hasTimestamps = ctx.features.has('timestamp-query');
  const querySet = hasTimestamps ? device.createQuerySet({ type: 'timestamp', count: 2 }) : null;
  const resolve = hasTimestamps ? device.createBuffer({ size: 16, usage: BufferUsage.QUERY_RESOLVE | BufferUsage.COPY_SRC }) : null;
  const readback = hasTimestamps ? device.createBuffer({ size: 16, usage: BufferUsage.MAP_READ | BufferUsage.COPY_DST }) : null;
  const gpuTimes: number[] = [];
  const runOnce = async (measureGpu: boolean) => {
    const enc = device.createCommandEncoder({ label: 'bench' });
    const pass = enc.beginComputePass(querySet ? { timestampWrites: { querySet, beginningOfPassWriteIndex: 0, endOfPassWriteIndex: 1 } } : {});
    for (const d of dispatches) {
      pass.setPipeline(d.pipeline);
      pass.setBindGroup(0, d.bindGroup);
      pass.dispatchWorkgroups(...d.workgroups);
    }
    pass.end();
    if (querySet && resolve && readback) {
      enc.resolveQuerySet(querySet, 0, 2, resolve, 0);
      if (measureGpu) enc.copyBufferToBuffer(resolve, 0, readback, 0, 16);
    }
    device.queue.submit([enc.finish()]);
    await device.queue.onSubmittedWorkDone();
    if (measureGpu && readback) {
      await readback.mapAsync(1);
      const t = new BigUint64Array(readback.getMappedRange().slice(0));
      readback.unmap();
      const dt = Number(t[1] - t[0]) / 1e6;
      if (dt > 0) gpuTimes.push(dt);
    }
  };
  for (let i = 0; i < warmup; i++) await runOnce(false);
  const wall: number[] = [];
  for (let i = 0; i < repeats; i++) {
    const t0 = performance.now();
    await runOnce(false);
    wall.push(performance.now() - t0);
  }
  // GPU timestamps in separate runs so the readback never sits inside a wall-clock measurement.
  if (querySet) for (let i = 0; i < Math.min(repeats, 5); i++) await runOnce(true);
  await ctx.flush('bench');
  querySet?.destroy();
  resolve?.destroy();
  readback?.destroy();
  return { ms: median(wall), gpuMs: gpuTimes.length ? median(gpuTimes) : undefined };
}

/** FLOPs of a conv (2 per multiply-add): forward, or each of the two backward GEMMs. */
export function convFlops(n: number, cin: number, cout: number, kh: number, kw: number, ho: number, wo: number): number {
  return 2 * n * cin * cout * kh * kw * ho * wo;
}

export function formatTable(results: readonly BenchResult[]): string {
  const head = ['group', 'case', 'ms', 'gpu ms', 'dispatches', 'GFLOP', 'GFLOP/s', 'MB moved', 'peak MB', 'TF.js ms', 'x TF.js'];
  const rows = results.map((r) => [
    r.group,
    r.name,
    r.ms.toFixed(2),
    r.gpuMs !== undefined ? r.gpuMs.toFixed(2) : '–',
    r.dispatches !== undefined ? String(r.dispatches) : '–',
    r.flops !== undefined ? (r.flops / 1e9).toFixed(3) : '–',
    r.gflops !== undefined ? r.gflops.toFixed(1) : '–',
    r.bytes !== undefined ? (r.bytes / 1e6).toFixed(1) : '–',
    r.peakBytes !== undefined ? (r.peakBytes / 2 ** 20).toFixed(0) : '–',
    r.tfjsMs !== undefined ? r.tfjsMs.toFixed(1) : '–',
    r.speedup !== undefined ? r.speedup.toFixed(2) : '–',
  ]);
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  const line = (cells: string[]) => cells.map((c, i) => (i < 2 ? c.padEnd(widths[i]) : c.padStart(widths[i]))).join('  ');
  return [line(head), widths.map((w) => '-'.repeat(w)).join('  '), ...rows.map(line)].join('\n');
}
