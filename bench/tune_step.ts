// Training step with the static conv policy vs the tuned one, alternated in one process (issue 15 item 2).
// Run: node node_modules/vite-node/vite-node.mjs -c vitest.config.ts bench/tune_step.ts -- [--config small|256|512x1024]
//      [--rounds 5] [--repeats 10] [--tune-repeats 5] [--timer auto|gpu|wall] [--json FILE]
// Each round times a fresh model's step with no tuned choices, then with the table tuned once at the start
// (kept in memory, not in the user's cache). Prints JSON: per-round medians, their medians, and the choices.
import { writeFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import { execSync } from 'node:child_process';
import { createContext } from '../src/runtime/device.js';
import { Rng } from '../src/runtime/random.js';
import { Pix2Pix } from '../src/gan/pix2pix.js';
import { useTunedChoices, tunedChoices } from '../src/kernels/conv/policy.js';
import { MemoryTuneStore } from '../src/kernels/conv/tune_store.js';
import { adapterIdentity, deviceClass } from '../src/kernels/conv/device_class.js';
import { timeAsync } from './harness.js';
import { MODEL_CONFIGS, type ModelConfigName } from './cases_model.js';

const args = process.argv.slice(2);
const arg = (name: string, fallback: string) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? args[i + 1] : fallback;
};
const name = arg('config', 'small') as ModelConfigName;
const rounds = Number(arg('rounds', '5'));
const repeats = Number(arg('repeats', '10'));
const tuneRepeats = Number(arg('tune-repeats', '5'));
const json = arg('json', '');
const timerArg = arg('timer', 'auto');
const timer = timerArg === 'gpu' || timerArg === 'wall' ? timerArg : undefined;
const load = [loadavg()];
let commit = '';
try {
  commit = execSync('git rev-parse --short HEAD', { encoding: 'utf8' }).trim();
} catch {
  // not a checkout
}

const c = MODEL_CONFIGS[name];
const ctx = await createContext();
const id = adapterIdentity(ctx);
const shape = [1, c.channels, c.height, c.width];
const n = c.channels * c.height * c.width;
const rng = new Rng(7);
const a = ctx.tensor(shape, rng.normals(n, 0.5), 'bench.a');
const b = ctx.tensor(shape, rng.normals(n, 0.5), 'bench.b');
const create = () => Pix2Pix.create({ ctx, inputChannels: c.channels, outputChannels: c.channels, numDowns: c.numDowns, ngf: c.ngf, ndf: c.ndf, norm: 'instance', dropout: true, seed: 1 });

// Tune once (its own model; the table stays on the context).
const t0 = performance.now();
const tuner = await create();
const tuned = await tuner.tuneConv(shape, { store: new MemoryTuneStore(), repeats: tuneRepeats, timer, log: (l) => console.error(l) });
await tuner.destroy();
const tuneSeconds = (performance.now() - t0) / 1000;
const table = new Map(tunedChoices(ctx));

async function stepMs(withTable: boolean): Promise<number> {
  useTunedChoices(ctx, withTable ? table : new Map());
  const model = await create();
  const ms = await timeAsync(async () => void (await model.trainStep({ a, b })), 2, repeats);
  await model.destroy();
  return ms;
}

const staticMs: number[] = [];
const tunedMs: number[] = [];
for (let r = 0; r < rounds; r++) {
  staticMs.push(await stepMs(false));
  tunedMs.push(await stepMs(true));
  load.push(loadavg());
  console.error(`round ${r + 1}: static ${staticMs[r].toFixed(1)} ms, tuned ${tunedMs[r].toFixed(1)} ms (load ${load[load.length - 1].map((x) => x.toFixed(1)).join(' ')})`);
}
const median = (xs: number[]) => [...xs].sort((p, q) => p - q)[Math.floor(xs.length / 2)];
const result = {
  date: new Date().toISOString(),
  commit,
  command: process.argv.slice(1).join(' '),
  vkIcd: process.env.VK_ICD_FILENAMES ?? null,
  loadAverages: load.map((l) => l.map((x) => Math.round(x * 100) / 100)),
  adapter: id,
  deviceClass: deviceClass(ctx),
  config: name,
  rounds,
  repeatsPerRound: repeats,
  tuneSeconds,
  shapes: Object.keys(tuned.shapes).length,
  timers: [...new Set(Object.values(tuned.shapes).map((r) => r.timer))],
  choiceCounts: Object.values(tuned.shapes).reduce<Record<string, number>>((acc, r) => {
    const label = `${r.impl}${r.subgroups === false ? ' (no subgroups)' : ''}`;
    acc[label] = (acc[label] ?? 0) + 1;
    return acc;
  }, {}),
  staticMs,
  tunedMs,
  staticMedianMs: median(staticMs),
  tunedMedianMs: median(tunedMs),
  choices: Object.fromEntries(Object.entries(tuned.shapes).map(([k, r]) => [k, { impl: r.impl, subgroups: r.subgroups, ms: r.ms, candidates: r.candidates }])),
};
console.log(JSON.stringify(result, null, 1));
if (json) writeFileSync(json, JSON.stringify(result, null, 1));
a.destroy();
b.destroy();
ctx.destroy();
