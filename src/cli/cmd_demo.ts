import { existsSync } from 'node:fs';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { defineCommand, parseSize, UsageError } from './command.js';
import { Progress, fmtTime } from './progress.js';
import type { StudyConfig } from '../study/study_node.js';
import type { DatasetPlan, SynthesizeOptions } from '../data/synth_node.js';

/*
 * The demo's defaults, chosen by measurement (issue 14 #2), on the demo's own data (26 animals, 110 training
 * pairs of 22 animals, 20 test images of 4 held-out animals, 64x128), scoring the largest trial (all 110 pairs)
 * with skeleton recovery (src/metrics/skeleton.ts; the true X-ray scores 0.87, the photo 0.06, a bone-free
 * silhouette 0.01). Measured 2026-11-30 on the shared 2-core machine (lavapipe), one run at a time:
 *  - Hyper-parameters barely matter at equal steps. 6 epochs (660 steps) of U-Net 6 levels ngf 8 + PatchGAN
 *    ndf 8, batch norm, dropout, lr 2e-3: 0.171. Changed one at a time: no dropout 0.164, lr 1e-3 0.166,
 *    5 levels 0.174, lambda L1 1000 (GAN nearly off) 0.157, LSGAN 0.167.
 *  - Steps help, slowly: 12 epochs 0.211, 30 epochs 0.240. Width helps as much but costs more: ngf/ndf 16 at
 *    12 epochs 0.250 for 3.6x the step time (340 vs 95 ms/step under the same load), i.e. less than ngf 8 given
 *    the same time. Batch 4 costs 5.8x per step for 4x the images: slower per epoch on lavapipe. 128x256 (same
 *    animals, same network) at 6 epochs: 0.148 (the true X-ray scores 0.92 there), no better than 64x128's
 *    0.171, at several times the step cost.
 *  - The model underfits rather than overfits: the 12-epoch model scores 0.240 on 25 of its training images
 *    and 0.211 on the held-out ones. Its translations draw the body, limbs and tail and the spine as a bright
 *    line, with fur-like mottling inside the body, but not the skull's rim, the pelvis or single ribs.
 *    Skeleton recovery >= 0.5 (issue 14) is not reached by any setting that fits in 10 minutes here.
 *  - So the default spends the budget on epochs: 30 (15 constant + 15 linear decay; 8100 steps over the 9 trials).
 *    Time: the idle machine ran the 12-epoch demo (3240 steps) in 2 min 56 s wall for 4 min 48 s CPU, about
 *    47 ms a step plus ~25 s of synthesis, compilation, translation and scoring; the 30-epoch demo used 12.1 min
 *    of CPU (18 min 47 s wall under load ~13 from other jobs), so on the idle machine 8100 x 47 ms + 25 s = 6.7
 *    min, or 0.61 x 12.1 = 7.4 min by the CPU ratio. Measured on the idle machine after the fused kernels
 *    (2026-11-30, commit 66ef123, 99 dispatches a step): 6 min 04 s wall, 8 min 34 s CPU, ~24 steps/s.
 *  - Its results (seed means where 3 seeds), 8 → 24 → 110 real pairs: MSE 0.0077 → 0.0037 → 0.0029, PSNR
 *    22.0 → 24.5 → 25.4, SSIM 0.695 → 0.789 → 0.811, WAEM 0.68 → 0.98 → 1.13, skeleton recovery 0.087 →
 *    0.163 → 0.240; aug-8to32 0.110, transfer-w2b 0.106. (The 12-epoch demo's 110-pair trial: 0.211.)
 * lr 2e-3, not the reference's 2e-4: at 2e-4 the tiny networks barely leave their initialisation in a few
 * thousand steps (G_L1 70 → 68 over 80 steps, vs → 11 in 20).
 * Sweep sizes 8, 24, all (110) pairs: small points cost little, so they get 3 seeds each (mean and spread);
 * 3 seeds of the 110-pair point would add 6600 steps, over the budget. The augmented trial expands the 8-pair
 * set to 32 and the transfer trial pretrains on 24 white-bed pairs and fine-tunes on 8 black-bed pairs.
 */
export const DEMO_SIZE = '64x128';
export const DEMO_ANIMALS = 26;
export const DEMO_EPOCHS = 30;
export const DEMO_SEEDS = 3;
export const DEMO_NGF = 8;
// Estimated for the idle 2-core machine (lavapipe) from the measurements above: 6.7-7.4 min.
export const DEMO_MEASURED_TIME = 'about 6 minutes (8100 training steps; 6 min 04 s measured idle)';

/** The seed's real-pair sweep (Fig. 2, "up to 700 in the graph") and its augmented set size. */
export const SEED_SIZES = [50, 100, 200, 400, 700] as const;
export const SEED_AUGMENTED_TOTAL = 5175;
/** `demo --full`'s image size when --size is not given: the seed's 512x1024 (50x100 mm). */
export const SEED_IMAGE_SIZE = '512x1024';

/** The phantoms a demo synthesises: the seed's exact set with `full`, else `animals` x 5 poses. */
export function demoDataOptions(o: { full: boolean; animals: number; height: number; width: number }): Omit<SynthesizeOptions, 'out' | 'onProgress'> {
  if (o.full) return { ...SEED_DATASET_OPTIONS, height: o.height, width: o.width, seed: 0 };
  return {
    animals: o.animals,
    poses: 5,
    height: o.height,
    width: o.width,
    seed: 0,
    // The paper's 20 of 174, but at least 4 (when that leaves 2 to train on) so the held-out animals cover
    // every fur x bed combination (planAnimals deals test animals round-robin over them).
    testAnimals: Math.max(Math.min(4, o.animals - 2), Math.round(o.animals * (20 / 174))),
  };
}

// synth_node's SEED_DATASET, copied: importing it here would load synth_node (and sharp) for every CLI command,
// which the CLI does lazily instead. test/e2e/cli_demo_plan.test.ts checks the two agree.
const SEED_DATASET_OPTIONS = { animals: 174, white: 86, testAnimals: 20, pairs: { train: 823, test: 117 } };

/** One paragraph on the planned phantoms: animals by split and fur, pairs by split and bed. */
/**
 * Why the phantoms already in a demo's data folder are not the ones this run asks for (size, animals, pairs),
 * or null when they are. A rerun with another --size or --animals used to train on the old data silently.
 */
export function dataMismatch(manifest: { width?: number; height?: number; entries?: { animal?: string; split?: string }[] }, plan: DatasetPlan, height: number, width: number): string | null {
  const entries = manifest.entries ?? [];
  const animals = new Set(entries.map((e) => e.animal)).size;
  const train = entries.filter((e) => e.split === 'train').length;
  const have = `${animals} animals, ${entries.length} pairs (${train} train) at ${manifest.height}x${manifest.width}`;
  const want = `${plan.animals.length} animals, ${plan.pairs.total} pairs (${plan.pairs.train} train) at ${height}x${width}`;
  return have === want ? null : `it holds ${have}, this run asks for ${want}`;
}

export function formatDataPlan(plan: DatasetPlan, size: string): string {
  const a = plan.animalCounts;
  const n = (k: string) => a[k] ?? 0;
  const g = plan.pairs.byGroup;
  const bed = (b: string) => (g[`train/white/${b}`] ?? 0) + (g[`train/black/${b}`] ?? 0);
  return [
    `data: ${plan.animals.length} phantom animals (${n('train/white') + n('test/white')} white, ${n('train/black') + n('test/black')} black) at ${size}, split by animal; ${plan.pairs.total} pairs`,
    `  train: ${n('train/white') + n('train/black')} animals (${n('train/white')} white, ${n('train/black')} black), ${plan.pairs.train} pairs (${bed('white')} on white beds, ${bed('black')} on black beds)`,
    `  test:  ${n('test/white') + n('test/black')} animals (${n('test/white')} white, ${n('test/black')} black), ${plan.pairs.test} pairs`,
  ].join('\n');
}

/**
 * The demo's study: a size sweep on phantoms (the paper's Figure 2), one augmented trial and one
 * transfer trial (white beds → black beds), sized to finish in minutes on a software adapter.
 */
export function demoStudyConfig(
  dataDir: string,
  o: { full: boolean; epochs: number; height: number; width: number; trainPairs: number; whiteBed: number; blackBed: number; seeds?: number; fidWeights?: string },
): StudyConfig {
  if (o.full) {
    // The seed's configuration (paper line 27-29, Fig. 2): unet_256 (ngf 64) + 70x70 PatchGAN (ndf 64, 3 layers),
    // batch norm, dropout, 200 epochs (100 constant + 100 linear decay), trained on the exact 823-pair set.
    //  - Sizes 50, 100, 200, 400, 700 real pairs: Fig. 2's x-axis runs "from 50 to 5175 images", real pairs
    //    "up to 700 in the graph"; 5175 is the augmented trial.
    //  - Augmentation of all 823 training pairs to exactly 5175 ("up to 5175 paired images"): a target total,
    //    not a copy count (823 x 6 = 4938 would be the nearest whole multiple).
    //  - Transfer: the seed pretrained on a subset and fine-tuned "on data from specific scanners"; the phantoms'
    //    analogue of a scanner is the bed colour (it changes the photo's background). White beds → black beds:
    //    pretrain on 400 of the ~412 white-bed training pairs, fine-tune on 200 of the ~411 black-bed pairs
    //    (capped by what the data holds), so it compares with n400 and n700 at similar pair counts.
    return {
      name: 'seed configuration (unet_256 + 70x70 PatchGAN, 200 epochs)',
      data: dataDir,
      model: { inputChannels: 3, outputChannels: 1, netG: 'unet_256', ngf: 64, ndf: 64, nLayersD: 3, norm: 'batch', dropout: true },
      train: { nEpochs: 100, nEpochsDecay: 100, batchSize: 1, seed: 0 },
      evaluate: { ssimMode: 'skimage', gridImages: 6, ...(o.fidWeights ? { fidWeights: o.fidWeights } : {}) },
      trials: [
        ...SEED_SIZES.filter((n) => n <= o.trainPairs).map((n) => ({ name: `n${n}`, kind: 'size' as const, trainPairs: n })),
        { name: `aug-${o.trainPairs}to${SEED_AUGMENTED_TOTAL}`, kind: 'augment', trainPairs: o.trainPairs, total: SEED_AUGMENTED_TOTAL },
        {
          name: 'transfer-w2b',
          kind: 'transfer',
          trainPairs: Math.min(200, o.blackBed),
          filter: { bed: 'black' },
          pretrain: { trainPairs: Math.min(400, o.whiteBed), filter: { bed: 'white' } },
        },
      ],
    };
  }
  const numDowns = Math.min(6, Math.floor(Math.log2(Math.min(o.height, o.width))));
  // The sweep: 8 and 24 real pairs (DEMO_SEEDS seeds each, drawn as mean and spread) and every training pair
  // (one seed: it is the costliest trial); tiny runs (the tests) scale down.
  const N = o.trainPairs;
  let sizes = [8, 24].filter((n) => n < N);
  if (sizes.length < 2) sizes = [Math.max(1, Math.ceil(N / 4)), Math.max(1, Math.ceil(N / 2))].filter((n) => n < N);
  sizes = [...new Set([...sizes, N])];
  const small = sizes[0];
  const seeds = Math.max(1, o.seeds ?? DEMO_SEEDS);
  const sizeTrials = sizes.flatMap((n) =>
    n === N || seeds === 1
      ? [{ name: `n${n}`, kind: 'size' as const, trainPairs: n }]
      : Array.from({ length: seeds }, (_, s) => ({ name: `n${n}-s${s}`, kind: 'size' as const, trainPairs: n, seed: s })),
  );
  return {
    name: `phantom demo (${o.height}x${o.width}, ${o.epochs} epochs)`,
    data: dataDir,
    // lr 2e-3: see the measurements at the top of this file.
    model: { inputChannels: 3, outputChannels: 1, numDowns, ngf: DEMO_NGF, ndf: DEMO_NGF, norm: 'batch', dropout: true, lr: 2e-3 },
    train: { nEpochs: Math.ceil(o.epochs / 2), nEpochsDecay: Math.floor(o.epochs / 2), batchSize: 1, seed: 0 },
    evaluate: { ssimMode: 'skimage', gridImages: 4, ...(o.fidWeights ? { fidWeights: o.fidWeights } : {}) },
    trials: [
      ...sizeTrials,
      // Offline augmentation of the smallest real set to 4x its size (the seed: 823 → 5175, about 6x).
      { name: `aug-${small}to${4 * small}`, kind: 'augment', trainPairs: small, total: 4 * small },
      ...(o.whiteBed > 0 && o.blackBed > 0
        ? [
            {
              // Pretrain on white beds, fine-tune on as few black-bed pairs as the smallest sweep point.
              name: 'transfer-w2b',
              kind: 'transfer' as const,
              trainPairs: Math.min(small, o.blackBed),
              filter: { bed: 'black' },
              pretrain: { trainPairs: Math.min(sizes[1] ?? small, o.whiteBed), filter: { bed: 'white' } },
            },
          ]
        : []),
    ],
  };
}

export const demoCommand = defineCommand({
  name: 'demo',
  summary: 'the whole pipeline on synthetic mouse phantoms: synthesise, train, translate, evaluate, size sweep, report',
  usage: 'demo [--out DIR] [--size HxW] [--epochs N] [--seeds N] [--fid-weights FILE] [--full] [--dry-run]',
  options: {
    out: { type: 'string', arg: 'DIR', description: 'output folder', default: 'demo-out' },
    size: { type: 'string', arg: 'HxW', description: `image size (default ${DEMO_SIZE}; ${SEED_IMAGE_SIZE} with --full)` },
    animals: { type: 'count', min: 4, description: 'phantom animals (5 poses each; at least one test animal per fur and bed colour)', default: DEMO_ANIMALS },
    epochs: { type: 'count', min: 1, description: 'training epochs per trial (half constant, half linear decay)', default: DEMO_EPOCHS },
    seeds: { type: 'int', min: 1, description: 'seeds per smaller size point (drawn as mean and spread)', default: DEMO_SEEDS },
    'fid-weights': { type: 'string', arg: 'FILE', description: "pytorch-fid's pt_inception-2015-12-05-6726825d.pth: adds FID and KID (and WAEM's FID term); or set PIX2PIX_FID_WEIGHTS" },
    full: {
      type: 'boolean',
      description: "the seed's configuration: 174 animals (86 white, 88 black), 823 training + 117 test pairs, sizes 50-700, augmentation to 5175, transfer white → black beds, unet_256 + 70x70 PatchGAN, 200 epochs (--epochs, --seeds, --animals ignored), 512x1024; for a real GPU",
    },
    'dry-run': { type: 'boolean', description: 'print the plan (data, trials, pair counts, steps, estimated time on this adapter) and exit without writing anything' },
  },
  epilog: `The default demo takes ${DEMO_MEASURED_TIME} on a 2-core machine with a software Vulkan driver (lavapipe, no GPU).\nIt is resumable: run it again after an interruption; adding --fid-weights later re-scores the trained trials.\n\`demo --dry-run\` (or \`demo --full --dry-run\`: the seed's study) prints the data, trials, pair counts, steps and the estimated time on this adapter, and writes nothing.`,
  async run(opts) {
    const started = Date.now();
    const out = resolve(opts.out);
    const full = opts.full;
    const dryRun = opts['dry-run'];
    const size = opts.size ?? (full ? SEED_IMAGE_SIZE : DEMO_SIZE);
    const { height, width } = parseSize(size);
    const animals = full ? 174 : opts.animals;
    if (!Number.isInteger(animals) || animals < 4) throw new UsageError(`demo: --animals must be an integer >= 4, got ${animals}`);
    const seeds = opts.seeds;
    if (!Number.isInteger(seeds) || seeds < 1) throw new UsageError(`demo: --seeds must be an integer >= 1, got ${seeds}`);
    const fidFlag = opts['fid-weights'];
    const fidWeights = fidFlag ?? (process.env.PIX2PIX_FID_WEIGHTS || undefined);
    if (fidWeights && !existsSync(fidWeights)) throw new UsageError(`demo: ${fidFlag ? '--fid-weights' : 'PIX2PIX_FID_WEIGHTS'} ${fidWeights}: no such file`);
    const dataDir = join(out, 'data');
    const { planDataset } = await import('../data/synth_node.js');
    const dataOptions = demoDataOptions({ full, animals, height, width });
    const dataPlan = planDataset(dataOptions);
    const haveData = existsSync(join(dataDir, 'manifest.json'));
    if (haveData) {
      // Checked before the GPU: the folder may hold another run's phantoms.
      const why = dataMismatch(JSON.parse(await readFile(join(dataDir, 'manifest.json'), 'utf8')), dataPlan, height, width);
      if (why) throw new UsageError(`demo: ${dataDir} already holds phantoms from another run (${why}): use another --out, or delete ${dataDir} to synthesise anew`);
    }
    // Fail early, with the fix, when there is no WebGPU adapter at all.
    const { createContext } = await import('../runtime/device.js');
    const ctx = await createContext();
    const { vendor, architecture, description } = ctx.adapterInfo;
    const device = [vendor, architecture, description].filter(Boolean).join(' ') || 'WebGPU device';
    console.error(`demo: device ${device}`);

    if (!haveData && !dryRun) {
      console.error(`1/3 synthesising ${dataPlan.animals.length} phantom animals, ${dataPlan.pairs.total} pairs (${dataPlan.pairs.train} train, ${dataPlan.pairs.test} test) at ${height}x${width} → ${dataDir}`);
      const { synthesizeDataset } = await import('../data/synth_node.js');
      const bar = new Progress('synth', dataPlan.pairs.total, 'pair');
      let last = 0;
      await synthesizeDataset({
        ...dataOptions,
        out: dataDir,
        onProgress: (done: number) => {
          bar.tick(done - last);
          last = done;
        },
      });
    } else if (haveData) console.error(`1/3 phantoms already in ${dataDir}`);

    // Pair counts from the data when it exists (a resumed demo), else from the plan (a dry run before any data).
    let counts: { trainPairs: number; whiteBed: number; blackBed: number; testPairs: number };
    if (haveData || !dryRun) {
      const { openPairs } = await import('../train/pair_sources_node.js');
      const train = await openPairs(dataDir, { phase: 'train', inputChannels: 3, outputChannels: 1, seed: 0 });
      const test = await openPairs(dataDir, { phase: 'test', inputChannels: 3, outputChannels: 1, seed: 0 });
      const beds = (bed: string) => train.filter((p) => p.entry.bed === bed).length;
      counts = { trainPairs: train.length, whiteBed: beds('white'), blackBed: beds('black'), testPairs: test.length };
    } else {
      const g = dataPlan.pairs.byGroup;
      const beds = (bed: string) => (g[`train/white/${bed}`] ?? 0) + (g[`train/black/${bed}`] ?? 0);
      counts = { trainPairs: dataPlan.pairs.train, whiteBed: beds('white'), blackBed: beds('black'), testPairs: dataPlan.pairs.test };
    }
    if (full && (counts.trainPairs !== dataPlan.pairs.train || counts.testPairs !== dataPlan.pairs.test)) {
      ctx.destroy();
      throw new UsageError(`demo --full: ${dataDir} holds ${counts.trainPairs} training and ${counts.testPairs} test pairs, not the seed's ${dataPlan.pairs.train} and ${dataPlan.pairs.test} (made by a demo without --full?): use another --out`);
    }
    const cfg = demoStudyConfig(dataDir, { full, epochs: opts.epochs, height, width, trainPairs: counts.trainPairs, whiteBed: counts.whiteBed, blackBed: counts.blackBed, seeds, fidWeights: fidWeights ? resolve(fidWeights) : undefined });
    if (dryRun) {
      try {
        const { estimateStudy, formatPlan } = await import('../study/study_node.js');
        const plan = await estimateStudy(cfg, ctx, { imageSize: { height, width }, testImages: counts.testPairs, device });
        console.log(haveData ? `data: ${dataDir} (exists): ${counts.trainPairs} training pairs (${counts.whiteBed} on white beds, ${counts.blackBed} on black beds), ${counts.testPairs} test pairs` : formatDataPlan(dataPlan, `${height}x${width}`));
        console.log(formatPlan(plan));
        console.log('dry run: nothing synthesised, trained or written');
      } finally {
        ctx.destroy();
      }
      return;
    }
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
    const keys = ['mse', 'nrmse', 'psnr', 'ssim', ...(fidWeights ? (['fid', 'kid'] as const) : []), 'waem', 'skeleton'] as const;
    console.log(['trial'.padEnd(16), 'pairs', ...keys.map((k) => k.toUpperCase().padStart(9))].join(' '));
    for (const t of r.results) console.log([t.name.padEnd(16), String(t.effectivePairs).padStart(5), ...keys.map((k) => (t.metrics[k] ?? NaN).toPrecision(4).padStart(9))].join(' '));
    console.log(`demo finished in ${fmtTime((Date.now() - started) / 1000)}; report: ${r.reportPath}`);
  },
});
