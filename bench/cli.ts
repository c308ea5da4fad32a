/**
 * pix2pix-webgpu benchmarks: every kernel forward and backward, G forward, one full training step, SSIM of
 * a pair, Inception features; each next to TensorFlow.js (webgpu backend) on the same adapter in the same
 * run where TF.js has the same work. Usage (after `npm run build`):
 *
 *   node dist/bench/cli.js [--config small|256|512x1024|all] [--repeats N] [--warmup N] [--no-tfjs]
 *       [--no-kernels] [--no-model] [--no-metrics] [--no-inception] [--filter REGEX] [--json FILE]
 *   node dist/bench/cli.js --browser [--chromium PATH] [--inception] [--timeout SECONDS] [same options]
 *       [--policies software,swiftshader,tuned [--rounds N] [--tune-repeats N] [--profile]]
 *
 * `--browser` runs the same case functions in headless Chromium (puppeteer-core, WebGPU on SwiftShader unless
 * the browser has a GPU): dist/bench/browser.js (bench/browser_entry.ts) is served on http://localhost and
 * the results come back to this process (bench/browser_driver.ts); `--json` then records
 * `environment: 'chromium'` and the browser's adapter info. Inception is skipped there unless `--inception`.
 * `--policies` (browser only) runs the model cases once per conv selection, in turn, for `--rounds` rounds, TF.js
 * beside each: a device class's static policy, or 'tuned' (tuned once in the page first; bench/browser_entry.ts).
 * `--profile` (with `--policies`) then times each dispatch of the step alone (GPU timestamps) and prints them as notes.
 * `--filter REGEX` keeps only the kernel cases whose "group case" (e.g. "activation leaky_relu forward", no config
 * prefix) matches, case-insensitively.
 *
 * `small` (64x128, ngf 8, 6 downs) is the software-adapter configuration; 256 and 512x1024 are the full
 * unet_256 (ngf 64) + 70x70 PatchGAN, instance norm, batch 1, for real GPUs.
 */
import { writeFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { createContext } from '../src/runtime/device.js';
import { formatTable, type BenchResult } from './harness.js';
import { benchKernels } from './cases_kernels.js';
import { benchModel, MODEL_CONFIGS, type ModelConfigName } from './cases_model.js';
import { benchMetrics } from './cases_metrics.js';
import type { BrowserBenchOptions } from './browser_entry.js';

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      config: { type: 'string', default: 'small' },
      repeats: { type: 'string', default: '10' },
      warmup: { type: 'string', default: '3' },
      'no-tfjs': { type: 'boolean', default: false },
      'no-kernels': { type: 'boolean', default: false },
      'no-model': { type: 'boolean', default: false },
      'no-metrics': { type: 'boolean', default: false },
      'no-inception': { type: 'boolean', default: false },
      inception: { type: 'boolean', default: false },
      filter: { type: 'string' },
      browser: { type: 'boolean', default: false },
      chromium: { type: 'string' },
      timeout: { type: 'string', default: '1800' },
      policies: { type: 'string' },
      rounds: { type: 'string', default: '1' },
      'tune-repeats': { type: 'string', default: '3' },
      profile: { type: 'boolean', default: false },
      json: { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help) {
    console.log(
      'node dist/bench/cli.js [--config small|256|512x1024|all] [--repeats N] [--warmup N] [--no-tfjs] [--no-kernels] [--no-model] [--no-metrics] [--no-inception] [--filter REGEX] [--json FILE]\n' +
        '                       [--browser [--chromium PATH] [--inception] [--timeout SECONDS] [--policies software,swiftshader,tuned [--rounds N] [--tune-repeats N] [--profile]]]',
    );
    return;
  }
  const names: ModelConfigName[] = values.config === 'all' ? ['small', '256', '512x1024'] : [values.config as ModelConfigName];
  for (const n of names) if (!MODEL_CONFIGS[n]) throw new Error(`unknown --config ${n}; one of ${Object.keys(MODEL_CONFIGS).join(', ')}, all`);
  const repeats = Number(values.repeats);
  const warmup = Number(values.warmup);
  const filter = values.filter ? new RegExp(values.filter, 'i') : undefined;
  if (values.browser) return runInBrowser(values, names, warmup, repeats);
  const ctx = await createContext();
  const info = ctx.adapterInfo;
  const adapter = [info.vendor, info.architecture, info.device, info.description].filter(Boolean).join(' ') || 'unknown adapter';
  console.error(`adapter: ${adapter}; timestamp-query: ${ctx.features.has('timestamp-query')}`);
  const results: BenchResult[] = [];
  for (const name of names) {
    const cfg = MODEL_CONFIGS[name];
    if (!values['no-kernels']) results.push(...(await benchKernels(ctx, { warmup, repeats, height: cfg.height, width: cfg.width, ngf: cfg.ngf, filter })).map((r) => ({ ...r, group: `${name} ${r.group}` })));
    if (!values['no-model']) results.push(...(await benchModel(ctx, name, { warmup, repeats, tfjs: !values['no-tfjs'] })));
  }
  if (!values['no-metrics']) results.push(...(await benchMetrics(ctx, { warmup, repeats, inception: !values['no-inception'] })));
  console.log(formatTable(results));
  if (values.json) writeFileSync(values.json, JSON.stringify({ date: new Date().toISOString(), environment: 'node', adapter, results }, null, 2));
  ctx.destroy();
}

/** `--browser`: the same cases in headless Chromium (bench/browser_entry.ts, driven by bench/browser_driver.ts). */
async function runInBrowser(values: Record<string, string | boolean | undefined>, configs: ModelConfigName[], warmup: number, repeats: number): Promise<void> {
  const { runBrowserBench } = await import('./browser_driver.js');
  const inception = values.inception === true && values['no-inception'] !== true;
  const t0 = Date.now();
  const outcome = await runBrowserBench(
    {
      configs,
      warmup,
      repeats,
      kernels: !values['no-kernels'],
      model: !values['no-model'],
      tfjs: !values['no-tfjs'],
      metrics: !values['no-metrics'],
      inception,
      filter: typeof values.filter === 'string' ? values.filter : undefined,
      policies: typeof values.policies === 'string' ? (values.policies.split(',') as BrowserBenchOptions['policies']) : undefined,
      rounds: Number(values.rounds),
      tuneRepeats: Number(values['tune-repeats']),
      profile: values.profile === true,
    },
    { chromium: typeof values.chromium === 'string' ? values.chromium : undefined, timeoutMs: Number(values.timeout) * 1000 },
  );
  if (!outcome.ok) throw new Error(`browser benchmark failed: ${outcome.error}`);
  const a = outcome.adapter;
  const adapter = [a.vendor, a.architecture, a.device, a.description].filter(Boolean).join(' ') || 'unknown adapter';
  console.error(`environment: chromium (${a.userAgent}); adapter: ${adapter}; timestamp-query: ${a.timestampQuery}; crossOriginIsolated: ${a.crossOriginIsolated}; ${((Date.now() - t0) / 1000).toFixed(0)} s`);
  for (const n of outcome.notes) console.error(`note: ${n}`);
  console.log(formatTable(outcome.results));
  if (typeof values.json === 'string') {
    writeFileSync(values.json, JSON.stringify({ date: new Date().toISOString(), environment: 'chromium', adapter, adapterInfo: a, notes: outcome.notes, results: outcome.results }, null, 2));
  }
}

main().then(
  () => process.exit(0),
  (e) => {
    console.error(e instanceof Error ? (e.stack ?? e.message) : String(e));
    process.exit(1);
  },
);
