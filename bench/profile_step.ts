/**
 * Where a training step's time goes: every dispatch of the recorded step timed alone with GPU timestamps
 * (its own compute pass), summed by op. Usage: node dist/bench/profile.js [small|256|512x1024]
 */
import { createContext } from '../src/runtime/device.js';
import { Rng } from '../src/runtime/random.js';
import { Pix2Pix } from '../src/gan/pix2pix.js';
import { BufferUsage, type Dispatch } from '../src/runtime/context.js';
import { MODEL_CONFIGS, type ModelConfigName } from './cases_model.js';

async function main(): Promise<void> {
  const name = (process.argv[2] ?? 'small') as ModelConfigName;
  const c = MODEL_CONFIGS[name];
  const ctx = await createContext();
  if (!ctx.features.has('timestamp-query')) throw new Error('this adapter has no timestamp-query');
  const model = await Pix2Pix.create({ ctx, inputChannels: c.channels, outputChannels: c.channels, numDowns: c.numDowns, ngf: c.ngf, ndf: c.ndf, norm: 'instance', seed: 1 });
  const rng = new Rng(1);
  const shape = [1, c.channels, c.height, c.width];
  const a = ctx.tensor(shape, rng.normals(shape.reduce((x, y) => x * y), 0.5));
  const b = ctx.tensor(shape, rng.normals(shape.reduce((x, y) => x * y), 0.5));
  await model.trainStep({ a, b });
  const list = (model as unknown as { graph: { list: Dispatch[] } }).graph.list;
  const qs = ctx.device.createQuerySet({ type: 'timestamp', count: 2 * list.length });
  const resolve = ctx.device.createBuffer({ size: 16 * list.length, usage: BufferUsage.QUERY_RESOLVE | BufferUsage.COPY_SRC });
  const read = ctx.device.createBuffer({ size: 16 * list.length, usage: BufferUsage.MAP_READ | BufferUsage.COPY_DST });
  const byOp = new Map<string, { ms: number; count: number }>();
  for (let rep = 0; rep < 3; rep++) {
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
    list.forEach((d, i) => {
      const ms = Number(t[2 * i + 1] - t[2 * i]) / 1e6 / 2;
      const key = `${d.op} [${d.pipeline.label.replace(/\.pipeline$/, '').split('.').pop()}]`;
      const e = byOp.get(key) ?? { ms: 0, count: 0 };
      e.ms += ms;
      e.count += rep === 1 ? 1 : 0;
      byOp.set(key, e);
    });
  }
  const rows = [...byOp.entries()].sort((x, y) => y[1].ms - x[1].ms);
  const total = rows.reduce((s, [, e]) => s + e.ms, 0);
  console.log(`${name}: ${list.length} dispatches, ${total.toFixed(1)} ms GPU time (sum of isolated dispatches)`);
  for (const [k, e] of rows) console.log(`${e.ms.toFixed(2).padStart(9)} ms  ${String(e.count).padStart(4)}x  ${k}`);
  process.exit(0);
}
main();
