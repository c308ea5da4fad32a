/**
 * `tune [--config small|256|512x1024] [--cache FILE] [--repeats N] [--retune] [--timer auto|gpu|wall]`: measure the conv kernel
 * variants of a pix2pix training step on this machine's adapter, keep the fastest per shape in the tuning
 * cache (default ~/.cache/pix2pix-webgpu/tune.json), and print what was chosen. Models created with
 * `tune: true` use the cache; without an entry the static per-device-class defaults apply.
 */
import { defineCommand } from './command.js';

/** The model configurations of the benchmark (bench/cases_model.ts), instance norm, batch 1. */
const TUNE_CONFIGS = {
  small: { height: 64, width: 128, ngf: 8, ndf: 8, numDowns: 6 },
  '256': { height: 256, width: 256, ngf: 64, ndf: 64, numDowns: 8 },
  '512x1024': { height: 512, width: 1024, ngf: 64, ndf: 64, numDowns: 8 },
} as const;

export const tuneCommand = defineCommand({
  name: 'tune',
  summary: "measure the conv kernels on this adapter and keep the fastest per shape (the tuning cache)",
  usage: 'tune [--config small|256|512x1024] [--cache FILE] [--repeats N] [--retune] [--timer auto|gpu|wall]',
  options: {
    config: { type: 'string', description: 'model configuration whose training step is tuned (unet + PatchGAN, instance norm, batch 1)', choices: ['small', '256', '512x1024'], default: 'small' },
    cache: { type: 'string', arg: 'FILE', description: 'tuning cache file (default $XDG_CACHE_HOME or ~/.cache, then pix2pix-webgpu/tune.json)' },
    repeats: { type: 'count', min: 1, description: 'timed runs per candidate kernel, median kept', default: 5 },
    retune: { type: 'boolean', description: 'measure again the shapes the cache already has' },
    timer: { type: 'string', description: "clock timing the kernels: GPU timestamps ('gpu'), the CPU's clock around submit-and-wait ('wall'), or 'auto' (gpu where the adapter has timestamp queries)", choices: ['auto', 'gpu', 'wall'], default: 'auto' },
  },
  epilog: 'Each conv shape (forward, grad input, grad weight) is timed with every kernel variant the tests prove correct that fits it.',
  async run(opts) {
    const { createContext } = await import('../runtime/device.js');
    const { Pix2Pix } = await import('../gan/pix2pix.js');
    const { FileTuneStore } = await import('../kernels/conv/tune_store.js');
    const { adapterIdentity, deviceClass } = await import('../kernels/conv/device_class.js');
    const { resolve } = await import('node:path');
    const c = TUNE_CONFIGS[(opts.config ?? 'small') as keyof typeof TUNE_CONFIGS];
    const store = new FileTuneStore(opts.cache ? resolve(opts.cache) : await FileTuneStore.defaultPath());
    const ctx = await createContext();
    try {
      const id = adapterIdentity(ctx);
      console.log(`adapter: ${[id.vendor, id.architecture, id.device, id.description].filter(Boolean).join(' ')} (${deviceClass(ctx)})`);
      const model = await Pix2Pix.create({ ctx, numDowns: c.numDowns, ngf: c.ngf, ndf: c.ndf, norm: 'instance', seed: 1 });
      try {
        const timer = opts.timer === 'gpu' || opts.timer === 'wall' ? opts.timer : undefined;
        const t = await model.tuneConv([1, 3, c.height, c.width], { store, repeats: opts.repeats ?? 5, retune: !!opts.retune, timer, log: (l) => console.log(l) });
        console.log(`${Object.keys(t.shapes).length} shapes for this adapter in ${store.location}`);
      } finally {
        await model.destroy();
      }
    } finally {
      ctx.destroy();
    }
  },
});
