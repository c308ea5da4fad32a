/**
 * Where a training step's time goes: every dispatch of the recorded step timed alone with GPU timestamps
 * (its own compute pass), summed by op, next to the wall-clock time of the whole step (all dispatches in one
 * pass, as trainStep submits them). Usage:
 *
 *   node dist/bench/profile.js [small|256|512x1024] [--each] [--reps N] [--policy CLASS] [--tuned FILE] [--json FILE]
 *
 * `--each` lists every dispatch (op, entry point, workgroup grid, ms); `--reps` timed repetitions (default 2,
 * after one untimed); `--policy CLASS` uses that device class's static conv policy (policy.ts) instead of the
 * adapter's own; `--tuned FILE` applies the tuning table for this adapter from a tune cache file
 * (src/kernels/conv/tune_store.ts) before recording. Runs on whichever adapter Dawn picks: for SwiftShader set
 * VK_ICD_FILENAMES=/usr/lib/chromium/vk_swiftshader_icd.json.
 */
import { writeFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import { parseArgs } from 'node:util';
import { createContext } from '../src/runtime/device.js';
import { Rng } from '../src/runtime/random.js';
import { Pix2Pix } from '../src/gan/pix2pix.js';
import { BufferUsage, type Dispatch } from '../src/runtime/context.js';
import { deviceClass, type DeviceClass } from '../src/kernels/conv/device_class.js';
import { STATIC_POLICIES, useStaticPolicy } from '../src/kernels/conv/policy.js';
import { loadTuning } from '../src/kernels/conv/tune.js';
import { FileTuneStore } from '../src/kernels/conv/tune_store.js';
import { MODEL_CONFIGS, type ModelConfigName } from './cases_model.js';

function entryOf(d: Dispatch): string {
  return d.pipeline.label.replace(/\.pipeline$/, '').split('.').pop() ?? '';
}

async function main(): Promise<void> {
  const { values, positionals } = parseArgs({
    allowPositionals: true,
    options: { each: { type: 'boolean', default: false }, policy: { type: 'string' }, reps: { type: 'string', default: '2' }, tuned: { type: 'string' }, json: { type: 'string' } },
  });
  const name = (positionals[0] ?? 'small') as ModelConfigName;
  const reps = Math.max(1, Number(values.reps));
  const c = MODEL_CONFIGS[name];
  if (!c) throw new Error(`unknown config ${name}; one of ${Object.keys(MODEL_CONFIGS).join(', ')}`);
  const ctx = await createContext();
  if (!ctx.features.has('timestamp-query')) throw new Error('this adapter has no timestamp-query');
  if (values.policy) {
    const p = STATIC_POLICIES[values.policy as DeviceClass];
    if (!p) throw new Error(`unknown --policy ${values.policy}; one of ${Object.keys(STATIC_POLICIES).join(', ')}`);
    useStaticPolicy(ctx, p);
  }
  if (values.tuned) console.log(`tuned table: ${await loadTuning(ctx, new FileTuneStore(values.tuned))} shapes from ${values.tuned}`);
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
  const each = list.map(() => 0);
  const passMs: number[] = [];
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
  // The whole step as one pass (no timestamps inside), wall clock from submit to done.
  for (let rep = 0; rep <= reps; rep++) {
    const t0 = performance.now();
    ctx.encodeAndSubmit(list, 'profile.step');
    await ctx.sync('profile.step');
    if (rep > 0) passMs.push(performance.now() - t0);
  }
  const byOp = new Map<string, { ms: number; count: number }>();
  list.forEach((d, i) => {
    const key = `${d.op} [${entryOf(d)}]`;
    const e = byOp.get(key) ?? { ms: 0, count: 0 };
    e.ms += each[i];
    e.count += 1;
    byOp.set(key, e);
  });
  const rows = [...byOp.entries()].sort((x, y) => y[1].ms - x[1].ms);
  const total = each.reduce((s, x) => s + x, 0);
  const info = ctx.adapterInfo;
  console.log(`${name} on ${info.vendor} / ${info.architecture} / ${info.description} (class ${deviceClass(ctx)}${values.policy ? `, policy ${values.policy}` : ''}), load ${loadavg().map((x) => x.toFixed(1)).join(' ')}`);
  console.log(`${list.length} dispatches, ${total.toFixed(1)} ms GPU time (sum of isolated dispatches); whole step in one pass, wall: ${passMs.map((x) => x.toFixed(1)).join(', ')} ms`);
  for (const [k, e] of rows) console.log(`${e.ms.toFixed(2).padStart(9)} ms  ${String(e.count).padStart(4)}x  ${(e.ms / e.count).toFixed(2).padStart(8)} ms each  ${k}`);
  if (values.each) {
    console.log('\nper dispatch, in step order:');
    list.forEach((d, i) => console.log(`${String(i).padStart(3)} ${each[i].toFixed(2).padStart(9)} ms  ${d.op} [${entryOf(d)}] grid ${d.workgroups.join('x')}`));
  }
  if (values.json) {
    const out = { date: new Date().toISOString(), config: name, adapter: info, deviceClass: deviceClass(ctx), policy: values.policy ?? null, load: loadavg(), dispatches: list.length, gpuSumMs: total, stepWallMs: passMs, perDispatch: list.map((d, i) => ({ op: d.op, entry: entryOf(d), grid: d.workgroups, ms: each[i] })) };
    writeFileSync(values.json, JSON.stringify(out, null, 1));
  }
  process.exit(0);
}
main();
