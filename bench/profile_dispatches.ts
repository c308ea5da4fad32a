/**
 * Per-dispatch GPU times of a recorded step: each dispatch in a compute pass of its own with timestamp writes,
 * averaged over `reps` runs after one untimed run, and the whole list as one pass (wall clock, as trainStep
 * submits it). Browser-safe (no Node imports): bench/profile_step.ts (Node) and bench/browser_entry.ts
 * (`--browser --profile`, Chromium's SwiftShader) share it, so both print the same table.
 */
import { BufferUsage, type Dispatch, type GpuContext } from '../src/runtime/context.js';

/** The dispatch's entry point, from its pipeline label (`op.entry.pipeline`). */
export function entryOf(d: Dispatch): string {
  return d.pipeline.label.replace(/\.pipeline$/, '').split('.').pop() ?? '';
}

/** The shapes of the tensors a dispatch binds, in binding order (conv launches: src, wgt, bias or saved, dst). */
export function shapesOf(d: Dispatch): string {
  return d.bindings.map((b) => ('shape' in b.tensor ? b.tensor.shape.join('x') : 'buffer')).join(' ');
}

export interface DispatchProfile {
  /** ms per dispatch, each alone in its pass, mean over the reps. */
  each: number[];
  /** Wall-clock ms of the whole list in one pass, one per rep. */
  passMs: number[];
}

/** Time every dispatch of `list` alone (GPU timestamps), then the whole list as one pass. */
export async function profileDispatches(ctx: GpuContext, list: readonly Dispatch[], reps: number): Promise<DispatchProfile> {
  const qs = ctx.device.createQuerySet({ type: 'timestamp', count: 2 * list.length });
  const resolve = ctx.device.createBuffer({ size: 16 * list.length, usage: BufferUsage.QUERY_RESOLVE | BufferUsage.COPY_SRC });
  const read = ctx.device.createBuffer({ size: 16 * list.length, usage: BufferUsage.MAP_READ | BufferUsage.COPY_DST });
  const each = list.map(() => 0);
  const passMs: number[] = [];
  try {
    for (let rep = 0; rep <= reps; rep++) {
      const enc = ctx.device.createCommandEncoder();
      list.forEach((d, i) => {
        const pass = enc.beginComputePass({ timestampWrites: { querySet: qs, beginningOfPassWriteIndex: 2 * i, endOfPassWriteIndex: 2 * i + 1 } });
        pass.setPipeline(d.pipeline);
        pass.setBindGroup(0, d.bindGroup);
        pass.dispatchWorkgroups(...d.workgroups);
        pass.end();
      });
      enc.resolveQuerySet(qs, 0, 2 * list.length, resolve, 0);
      enc.copyBufferToBuffer(resolve, 0, read, 0, 16 * list.length);
      ctx.device.queue.submit([enc.finish()]);
      await read.mapAsync(1);
      const t = new BigUint64Array(read.getMappedRange().slice(0));
      read.unmap();
      if (rep === 0) continue;
      list.forEach((_, i) => (each[i] += Number(t[2 * i + 1] - t[2 * i]) / 1e6 / reps));
    }
    for (let rep = 0; rep <= reps; rep++) {
      const t0 = performance.now();
      ctx.encodeAndSubmit(list, 'profile.step');
      await ctx.sync('profile.step');
      if (rep > 0) passMs.push(performance.now() - t0);
    }
  } finally {
    qs.destroy();
    resolve.destroy();
    read.destroy();
  }
  return { each, passMs };
}

/** The profile as text lines: the total, ms per op and entry point, and with `perDispatch` every dispatch with its grid. */
export function formatProfile(list: readonly Dispatch[], p: DispatchProfile, perDispatch: boolean): string[] {
  const byOp = new Map<string, { ms: number; count: number }>();
  list.forEach((d, i) => {
    const key = `${d.op} [${entryOf(d)}]`;
    const e = byOp.get(key) ?? { ms: 0, count: 0 };
    e.ms += p.each[i];
    e.count += 1;
    byOp.set(key, e);
  });
  const rows = [...byOp.entries()].sort((x, y) => y[1].ms - x[1].ms);
  const total = p.each.reduce((s, x) => s + x, 0);
  const lines = [`${list.length} dispatches, ${total.toFixed(1)} ms GPU time (sum of isolated dispatches); whole step in one pass, wall: ${p.passMs.map((x) => x.toFixed(1)).join(', ')} ms`];
  for (const [k, e] of rows) lines.push(`${e.ms.toFixed(2).padStart(9)} ms  ${String(e.count).padStart(4)}x  ${(e.ms / e.count).toFixed(2).padStart(8)} ms each  ${k}`);
  if (perDispatch) {
    lines.push('', 'per dispatch, in step order:');
    list.forEach((d, i) => lines.push(`${String(i).padStart(3)} ${p.each[i].toFixed(2).padStart(9)} ms  ${d.op} [${entryOf(d)}] grid ${d.workgroups.join('x')}  ${shapesOf(d)}`));
  }
  return lines;
}
