import { existsSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { parseSize, UsageError, type CommandSpec } from './command.js';
import { Progress, fmtTime } from './progress.js';
import type { StudyConfig } from '../study/study_node.js';

/**
 * The demo's study: a size sweep on phantoms (the paper's Figure 2), one augmented trial and one
 * transfer trial (white beds → black beds), sized to finish in minutes on a software adapter.
 */
export function demoStudyConfig(
  dataDir: string,
  o: { full: boolean; epochs: number; height: number; width: number; trainPairs: number; whiteBed: number; blackBed: number },
): StudyConfig {
  if (o.full) {
    // The seed's configuration: unet_256 (ngf 64) + 70x70 PatchGAN, 200 epochs, sizes 50 → 700 real pairs.
    return {
      name: 'seed configuration (unet_256, 512x1024, 200 epochs)',
      data: dataDir,
      model: { inputChannels: 3, outputChannels: 1, netG: 'unet_256', ngf: 64, ndf: 64, norm: 'batch', dropout: true },
      train: { nEpochs: 100, nEpochsDecay: 100, batchSize: 1, seed: 0 },
      evaluate: { ssimMode: 'skimage', gridImages: 6 },
      trials: [
        ...[50, 100, 200, 400, 700].map((n) => ({ name: `n${n}`, kind: 'size' as const, trainPairs: n })),
        { name: 'aug-823x6', kind: 'augment', trainPairs: 823, copies: 5 },
        { name: 'transfer-white-to-black', kind: 'transfer', trainPairs: 200, filter: { bed: 'black' }, pretrain: { trainPairs: 400, filter: { bed: 'white' } } },
      ],
    };
  }
  const numDowns = Math.min(6, Math.floor(Math.log2(Math.min(o.height, o.width))));
  // 10, 20, 40 pairs when the data allows (the default 26 animals give 115 training pairs); tiny runs scale down.
  let sizes = [10, 20, 40].filter((n) => n <= o.trainPairs);
  if (sizes.length < 2) sizes = [...new Set([Math.ceil(o.trainPairs / 4), Math.ceil(o.trainPairs / 2), o.trainPairs])];
  const small = sizes[0];
  return {
    name: `phantom demo (${o.height}x${o.width}, ${o.epochs} epochs)`,
    data: dataDir,
    // lr 2e-3, not the reference's 2e-4: a demo trains for a few hundred steps, and at 2e-4 the tiny
    // networks barely leave their initialisation in that time (G_L1 70 → 68 over 80 steps, vs → 11 in 20).
    model: { inputChannels: 3, outputChannels: 1, numDowns, ngf: 8, ndf: 8, norm: 'batch', dropout: true, lr: 2e-3 },
    train: { nEpochs: Math.ceil(o.epochs / 2), nEpochsDecay: Math.floor(o.epochs / 2), batchSize: 1, seed: 0 },
    evaluate: { ssimMode: 'skimage', gridImages: 4 },
    trials: [
      ...sizes.map((n) => ({ name: `n${n}`, kind: 'size' as const, trainPairs: n })),
      { name: `aug-${small}x3`, kind: 'augment', trainPairs: small, copies: 2 },
      ...(o.whiteBed > 0 && o.blackBed > 0
        ? [
            {
              name: 'transfer-w2b',
              kind: 'transfer' as const,
              trainPairs: Math.min(small, o.blackBed),
              filter: { bed: 'black' },
              pretrain: { trainPairs: Math.min(2 * small, o.whiteBed), filter: { bed: 'white' } },
            },
          ]
        : []),
    ],
  };
}

export const demoCommand: CommandSpec<Record<string, unknown>> = {
  name: 'demo',
  summary: 'the whole pipeline on synthetic mouse phantoms: synthesise, train, translate, evaluate, size sweep, report',
  usage: 'demo [--out DIR] [--size HxW] [--epochs N] [--full]',
  options: {
    out: { type: 'string', arg: 'DIR', description: 'output folder', default: 'demo-out' },
    size: { type: 'string', arg: 'HxW', description: 'image size', default: '64x128' },
    animals: { type: 'number', description: 'phantom animals (5 poses each)', default: 26 },
    epochs: { type: 'number', description: 'training epochs per trial (half constant, half linear decay)', default: 4 },
    full: { type: 'boolean', description: "the seed's configuration (174 animals, unet_256, 200 epochs): use with --size 512x1024 on a real GPU" },
  },
  epilog: 'On a 2-core machine with a software Vulkan driver the default demo takes a few minutes.\nIt is resumable: run it again after an interruption.',
  async run(opts) {
    const started = Date.now();
    const out = resolve(opts.out as string);
    const { height, width } = parseSize(opts.size as string);
    const full = !!opts.full;
    const animals = full ? 174 : (opts.animals as number);
    if (!Number.isInteger(animals) || animals < 4) throw new UsageError(`demo: --animals must be an integer >= 4, got ${animals}`);
    // Fail early, with the fix, when there is no WebGPU adapter at all.
    const { createContext } = await import('../runtime/device.js');
    const ctx = await createContext();
    const adapterInfo = (ctx.device as unknown as { adapterInfo?: GPUAdapterInfo }).adapterInfo;
    const device = adapterInfo ? [adapterInfo.vendor, adapterInfo.architecture, adapterInfo.description].filter(Boolean).join(' ') : 'WebGPU device';
    console.error(`demo: device ${device}`);

    const dataDir = join(out, 'data');
    if (!existsSync(join(dataDir, 'manifest.json'))) {
      console.error(`1/3 synthesising ${animals} phantom animals x 5 poses at ${height}x${width} → ${dataDir}`);
      const { synthesizeDataset } = await import('../data/synth_node.js');
      const bar = new Progress('synth', animals * 5, 'pair');
      let last = 0;
      await synthesizeDataset({
        out: dataDir,
        animals,
        poses: 5,
        height,
        width,
        seed: 0,
        testAnimals: full ? 20 : Math.max(2, Math.round(animals * (20 / 174))),
        onProgress: (done: number) => {
          bar.tick(done - last);
          last = done;
        },
      });
    } else console.error(`1/3 phantoms already in ${dataDir}`);

    const { openPairs } = await import('../train/pair_sources_node.js');
    const train = await openPairs(dataDir, { phase: 'train', inputChannels: 3, outputChannels: 1, seed: 0 });
    const beds = (bed: string) => train.filter((p) => p.entry.bed === bed).length;
    const cfg = demoStudyConfig(dataDir, { full, epochs: opts.epochs as number, height, width, trainPairs: train.length, whiteBed: beds('white'), blackBed: beds('black') });
    await mkdir(out, { recursive: true });
    await writeFile(join(out, 'study.json'), JSON.stringify({ ...cfg, data: 'data' }, null, 2));
    console.error(`2/3 study: ${cfg.trials.map((t) => t.name).join(', ')} (train, translate the test animals, evaluate)`);
    const { runStudy } = await import('../study/study_node.js');
    const { abortOnSigint } = await import('./cmd_train.js');
    const ac = abortOnSigint();
    const bars = new Map<string, Progress>();
    const r = await runStudy(cfg, {
      out: join(out, 'study'),
      ctx,
      signal: ac.signal,
      onLog: (l) => console.error(l),
      onStep: (name, _s, total) => {
        let b = bars.get(name);
        if (!b) bars.set(name, (b = new Progress(`  ${name}`, total, 'step')));
        b.tick();
      },
    });
    ctx.destroy();
    console.error('3/3 report');
    const keys = ['mse', 'nrmse', 'psnr', 'ssim', 'waem'] as const;
    console.log(['trial'.padEnd(16), 'pairs', ...keys.map((k) => k.toUpperCase().padStart(9))].join(' '));
    for (const t of r.results) console.log([t.name.padEnd(16), String(t.effectivePairs).padStart(5), ...keys.map((k) => (t.metrics[k] ?? NaN).toPrecision(4).padStart(9))].join(' '));
    console.log(`demo finished in ${fmtTime((Date.now() - started) / 1000)}; report: ${r.reportPath}`);
  },
};
