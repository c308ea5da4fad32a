/**
 * pix2pix-webgpu benchmarks: every kernel forward and backward, G forward, one full training step, SSIM of
 * a pair, Inception features; each next to TensorFlow.js (webgpu backend) on the same adapter in the same
 * run where TF.js has the same work. Usage (after `npm run build`):
 *
 *   node dist/bench.js [--config small|256|512x1024|all] [--repeats N] [--no-tfjs] [--json FILE]
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

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      config: { type: 'string', default: 'small' },
      repeats: { type: 'string', default: '10' },
      warmup: { type: 'string', default: '3' },
      'no-tfjs': { type: 'boolean', default: false },
      'no-kernels': { type: 'boolean', default: false },
      'no-inception': { type: 'boolean', default: false },
      json: { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help) {
    console.log('node dist/bench.js [--config small|256|512x1024|all] [--repeats N] [--warmup N] [--no-tfjs] [--no-kernels] [--no-inception] [--json FILE]');
    return;
  }
  const names: ModelConfigName[] = values.config === 'all' ? ['small', '256', '512x1024'] : [values.config as ModelConfigName];
  for (const n of names) if (!MODEL_CONFIGS[n]) throw new Error(`unknown --config ${n}; one of ${Object.keys(MODEL_CONFIGS).join(', ')}, all`);
  const repeats = Number(values.repeats);
  const warmup = Number(values.warmup);
  const ctx = await createContext();
  const info = (ctx.device as unknown as { adapterInfo?: GPUAdapterInfo }).adapterInfo;
  const adapter = info ? [info.vendor, info.architecture, info.device, info.description].filter(Boolean).join(' ') : 'unknown adapter';
  console.error(`adapter: ${adapter}; timestamp-query: ${ctx.features.has('timestamp-query')}`);
  const results: BenchResult[] = [];
  for (const name of names) {
    const cfg = MODEL_CONFIGS[name];
    if (!values['no-kernels']) results.push(...(await benchKernels(ctx, { warmup, repeats, height: cfg.height, width: cfg.width, ngf: cfg.ngf })).map((r) => ({ ...r, group: `${name} ${r.group}` })));
    results.push(...(await benchModel(ctx, name, { warmup, repeats, tfjs: !values['no-tfjs'] })));
  }
  results.push(...(await benchMetrics(ctx, { warmup, repeats, inception: !values['no-inception'] })));
  console.log(formatTable(results));
  if (values.json) writeFileSync(values.json, JSON.stringify({ date: new Date().toISOString(), adapter, results }, null, 2));
  ctx.destroy();
}

main().then(
  () => process.exit(0),
  (e) => {
    console.error(e instanceof Error ? (e.stack ?? e.message) : String(e));
    process.exit(1);
  },
);
