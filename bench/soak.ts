/**
 * Soak benchmark (not a test): many training steps of the `small` configuration (64x128, ngf 8, 6 downs)
 * through the real training loop (trainPix2Pix: data, steps, loss log, per-epoch samples and atomic
 * checkpoint sets), sampling every `--every` steps:
 *   - heap: V8 heapUsed after a full GC (run with --expose-gc; otherwise uncollected garbage shows as noise),
 *   - rss: the process's resident memory (Dawn and the driver live outside the V8 heap),
 *   - GPU bytes: the context's live buffer bytes, in use and pooled (GpuContext.stats.bytesLive),
 *   - GPU buffers created so far (steady state: no new buffers per step),
 *   - open handles: Node's active resources (files, timers, sockets) — leaked file handles show here.
 * It prints each sample and the least-squares slope of each quantity per 1000 steps over the samples
 * after the first (the first includes compilation and first-use allocations). Goal: flat.
 *
 * Usage (vitest.config.ts supplies the .wgsl loader):
 *   node --expose-gc node_modules/vite-node/vite-node.mjs -c vitest.config.ts bench/soak.ts -- [--steps 10000] [--every 500]
 *          [--pairs 100] [--out DIR] [--json FILE]
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { createContext } from '../src/runtime/device.js';
import { Rng } from '../src/runtime/random.js';
import { createImage } from '../src/data/image.js';
import { trainPix2Pix, type PairSource } from '../src/train/trainer_node.js';
import { MODEL_CONFIGS } from './cases_model.js';

interface Sample {
  step: number;
  seconds: number;
  heapMB: number;
  rssMB: number;
  gpuMB: number;
  gpuBuffersCreated: number;
  openHandles: number;
}

const QUANTITIES = ['heapMB', 'rssMB', 'gpuMB', 'gpuBuffersCreated', 'openHandles'] as const;

/** Least-squares slope of y over x. */
export function slope(xs: readonly number[], ys: readonly number[]): number {
  const n = xs.length;
  if (n < 2) return 0;
  const mx = xs.reduce((a, b) => a + b, 0) / n;
  const my = ys.reduce((a, b) => a + b, 0) / n;
  let num = 0;
  let den = 0;
  for (let i = 0; i < n; i++) {
    num += (xs[i] - mx) * (ys[i] - my);
    den += (xs[i] - mx) ** 2;
  }
  return den === 0 ? 0 : num / den;
}

async function main(): Promise<void> {
  const argv = process.argv.slice(2).filter((a) => a !== '--');
  const { values } = parseArgs({
    args: argv,
    options: {
      steps: { type: 'string', default: '10000' },
      every: { type: 'string', default: '500' },
      pairs: { type: 'string', default: '100' },
      out: { type: 'string' },
      json: { type: 'string' },
    },
  });
  const steps = Number(values.steps);
  const every = Number(values.every);
  const nPairs = Number(values.pairs);
  for (const [k, v] of [['--steps', steps], ['--every', every], ['--pairs', nPairs]] as const) {
    if (!Number.isInteger(v) || v < 1) throw new Error(`soak: ${k} must be a positive integer, got ${String(v)}`);
  }
  const c = MODEL_CONFIGS.small;
  const gc = (globalThis as { gc?: () => void }).gc;
  if (!gc) console.error('soak: no --expose-gc: heap samples include uncollected garbage');

  const ctx = await createContext();
  const info = ctx.adapterInfo;
  const adapter = [info.vendor, info.architecture, info.device, info.description].filter(Boolean).join(' ') || 'unknown adapter';
  const out = values.out ?? mkdtempSync(join(tmpdir(), 'pix2pix-soak-'));
  console.error(`soak: ${steps} steps of 'small' (${c.height}x${c.width}, ngf ${c.ngf}, ${c.numDowns} downs), ${nPairs} pairs, sample every ${every}; adapter: ${adapter}; writing to ${out}`);

  // In-memory pairs, seeded: the soak measures the loop, not image decoding.
  const pairs: PairSource[] = Array.from({ length: nPairs }, (_, i) => ({
    name: `pair${i}`,
    load: async () => {
      const rng = new Rng(1000 + i);
      const n = c.height * c.width * c.channels;
      const a = createImage(c.width, c.height, c.channels as 1 | 3, Float32Array.from({ length: n }, () => rng.next()));
      const b = createImage(c.width, c.height, c.channels as 1 | 3, Float32Array.from(a.data, (v) => 1 - v));
      return { a, b };
    },
  }));

  const samples: Sample[] = [];
  const t0 = Date.now();
  const sample = (step: number) => {
    gc?.();
    const mem = process.memoryUsage();
    const s: Sample = {
      step,
      seconds: (Date.now() - t0) / 1000,
      heapMB: mem.heapUsed / 2 ** 20,
      rssMB: mem.rss / 2 ** 20,
      gpuMB: ctx.stats.bytesLive / 2 ** 20,
      gpuBuffersCreated: ctx.stats.buffersCreated,
      openHandles: process.getActiveResourcesInfo().length,
    };
    samples.push(s);
    console.log(
      `step ${String(step).padStart(6)}  ${s.seconds.toFixed(0).padStart(6)} s  heap ${s.heapMB.toFixed(2)} MB  rss ${s.rssMB.toFixed(1)} MB  GPU ${s.gpuMB.toFixed(2)} MB  buffers created ${s.gpuBuffersCreated}  open handles ${s.openHandles}`,
    );
  };
  const epochs = Math.ceil(steps / nPairs);
  const res = await trainPix2Pix(pairs, {
    out,
    ctx,
    model: { inputChannels: c.channels, outputChannels: c.channels, numDowns: c.numDowns, ngf: c.ngf, ndf: c.ndf, norm: 'batch', nEpochs: epochs, nEpochsDecay: 0, seed: 1 },
    preprocess: { preprocess: 'none', loadSize: c.width, cropSize: c.width, flip: true },
    saveEpochFreq: 0,
    maxSteps: steps,
    onStep: (s) => {
      if (s.step % every === 0) sample(s.step);
    },
  });
  await res.model.destroy();
  const steady = samples.slice(1);
  const xs = steady.map((s) => s.step / 1000);
  const slopes = Object.fromEntries(QUANTITIES.map((q) => [q, slope(xs, steady.map((s) => s[q]))])) as Record<(typeof QUANTITIES)[number], number>;
  const seconds = (Date.now() - t0) / 1000;
  console.log(`\nslope per 1000 steps over steps ${steady[0]?.step ?? '-'}..${steady.at(-1)?.step ?? '-'} (${steady.length} samples):`);
  console.log(`  heap ${slopes.heapMB.toFixed(3)} MB  rss ${slopes.rssMB.toFixed(2)} MB  GPU ${slopes.gpuMB.toFixed(3)} MB  buffers created ${slopes.gpuBuffersCreated.toFixed(2)}  open handles ${slopes.openHandles.toFixed(2)}`);
  console.log(`${res.steps} steps in ${seconds.toFixed(0)} s (${(res.steps / seconds).toFixed(2)} steps/s incl. warm-up); ${new Date().toISOString()}; adapter: ${adapter}`);
  if (values.json) writeFileSync(values.json, JSON.stringify({ date: new Date().toISOString(), adapter, config: 'small', steps: res.steps, every, pairs: nPairs, seconds, samples, slopesPer1000Steps: slopes }, null, 2));
  if (!values.out) rmSync(out, { recursive: true, force: true });
  ctx.destroy();
}

main().catch((e: unknown) => {
  console.error(e instanceof Error ? e.message : String(e));
  process.exit(1);
});
