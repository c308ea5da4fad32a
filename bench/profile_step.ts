/**
 * Where a training step's time goes: every dispatch of the recorded step timed alone with GPU timestamps
 * (its own compute pass), summed by op, next to the wall-clock time of the whole step (all dispatches in one
 * pass, as trainStep submits them). Usage:
 *
 *   node dist/bench/profile.js [small|256|512x1024] [--each] [--reps N] [--policy CLASS] [--tuned FILE] [--json FILE]
 *     [--norm instance|batch|group|none] [--ndf N]
 *
 * `--each` lists every dispatch (op, entry point, workgroup grid, ms); `--reps` timed repetitions (default 2,
 * after one untimed); `--policy CLASS` uses that device class's static conv policy (policy.ts) instead of the
 * adapter's own; `--tuned FILE` applies the tuning table for this adapter from a tune cache file
 * (src/kernels/conv/tune_store.ts) before recording. `--norm` (default instance) and `--ndf` change the
 * networks: the demo trains with batch norm and ndf 4 (`small --norm batch --ndf 4`). Runs on whichever adapter
 * Dawn picks: for SwiftShader set VK_ICD_FILENAMES=/usr/lib/chromium/vk_swiftshader_icd.json.
 */
import { writeFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import { parseArgs } from 'node:util';
import { createContext } from '../src/runtime/device.js';
import { Rng } from '../src/runtime/random.js';
import { Pix2Pix } from '../src/gan/pix2pix.js';
import type { Dispatch } from '../src/runtime/context.js';
import { entryOf, formatProfile, profileDispatches } from './profile_dispatches.js';
import { deviceClass, type DeviceClass } from '../src/kernels/conv/device_class.js';
import { STATIC_POLICIES, useStaticPolicy } from '../src/kernels/conv/policy.js';
import { loadTuning } from '../src/kernels/conv/tune.js';
import { FileTuneStore } from '../src/kernels/conv/tune_store.js';
import { MODEL_CONFIGS, type ModelConfigName } from './cases_model.js';
import type { NormKind } from '../src/layers/norm.js';

const NORM_KINDS: readonly NormKind[] = ['instance', 'batch', 'group', 'none'];

async function main(): Promise<void> {
  const { values, positionals } = parseArgs({
    allowPositionals: true,
    options: { each: { type: 'boolean', default: false }, policy: { type: 'string' }, reps: { type: 'string', default: '2' }, tuned: { type: 'string' }, json: { type: 'string' }, norm: { type: 'string', default: 'instance' }, ndf: { type: 'string' } },
  });
  const name = (positionals[0] ?? 'small') as ModelConfigName;
  const reps = Math.max(1, Number(values.reps));
  const base = MODEL_CONFIGS[name];
  if (!base) throw new Error(`unknown config ${name}; one of ${Object.keys(MODEL_CONFIGS).join(', ')}`);
  const c = { ...base, ndf: values.ndf ? Number(values.ndf) : base.ndf };
  const norm = values.norm as NormKind;
  if (!NORM_KINDS.includes(norm)) throw new Error(`unknown --norm ${norm}; one of ${NORM_KINDS.join(', ')}`);
  const ctx = await createContext();
  if (!ctx.features.has('timestamp-query')) throw new Error('this adapter has no timestamp-query');
  if (values.policy) {
    const p = STATIC_POLICIES[values.policy as DeviceClass];
    if (!p) throw new Error(`unknown --policy ${values.policy}; one of ${Object.keys(STATIC_POLICIES).join(', ')}`);
    useStaticPolicy(ctx, p);
  }
  if (values.tuned) console.log(`tuned table: ${await loadTuning(ctx, new FileTuneStore(values.tuned))} shapes from ${values.tuned}`);
  const model = await Pix2Pix.create({ ctx, inputChannels: c.channels, outputChannels: c.channels, numDowns: c.numDowns, ngf: c.ngf, ndf: c.ndf, norm, seed: 1 });
  const rng = new Rng(1);
  const shape = [1, c.channels, c.height, c.width];
  const a = ctx.tensor(shape, rng.normals(shape.reduce((x, y) => x * y), 0.5));
  const b = ctx.tensor(shape, rng.normals(shape.reduce((x, y) => x * y), 0.5));
  await model.trainStep({ a, b });
  const list = (model as unknown as { graph: { list: Dispatch[] } }).graph.list;
  const prof = await profileDispatches(ctx, list, reps);
  const { each, passMs } = prof;
  const total = each.reduce((s, x) => s + x, 0);
  const info = ctx.adapterInfo;
  console.log(`${name} (${norm} norm, ndf ${c.ndf}) on ${info.vendor} / ${info.architecture} / ${info.description} (class ${deviceClass(ctx)}${values.policy ? `, policy ${values.policy}` : ''}), load ${loadavg().map((x) => x.toFixed(1)).join(' ')}`);
  for (const line of formatProfile(list, prof, values.each === true)) console.log(line);
  if (values.json) {
    const out = { date: new Date().toISOString(), config: name, norm, ndf: c.ndf, adapter: info, deviceClass: deviceClass(ctx), policy: values.policy ?? null, load: loadavg(), dispatches: list.length, gpuSumMs: total, stepWallMs: passMs, perDispatch: list.map((d, i) => ({ op: d.op, entry: entryOf(d), grid: d.workgroups, ms: each[i] })) };
    writeFileSync(values.json, JSON.stringify(out, null, 1));
  }
  process.exit(0);
}
main();
