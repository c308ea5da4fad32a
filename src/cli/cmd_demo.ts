import { existsSync } from 'node:fs';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { defineCommand, parseSize, UsageError } from './command.js';
import { Progress, fmtTime } from './progress.js';
import type { StudyConfig } from '../study/study_node.js';
import type { DatasetPlan, SynthesizeOptions } from '../data/synth_node.js';

/*
 * The demo's defaults, chosen by measurement (issue 14 #2): 250 phantom animals at 64x128 (1105 training pairs of
 * 221 animals; 145 test images of 29 held-out animals, the paper's 20 of 174), U-Net 6 levels ngf 8 without
 * dropout, PatchGAN ndf 4, lambda L1 10000, lr 2e-3, 19 epochs (10 constant + 9 decaying): 24035 steps over 9
 * trials, 20995 of them in the largest. Scored by skeleton recovery (src/metrics/skeleton.ts; the true X-ray
 * scores 0.87, the photo 0.06, a bone-free silhouette 0.01, the true X-ray blurred by a gaussian of 2 px 0.49).
 *
 * Fourth round (2026-11-30, fifth session): 16 -> 19 epochs, now that they fit.
 *  - The trainer's steps overlap (Pix2Pix.trainStep returns once queued; the next step is submitted before the
 *    previous one's losses are read), the loss wait sleeps 0.95 of the expected step when the next is queued,
 *    decoded pairs stay in memory, and trials translate, write and score with reads ahead and checkpoint at most
 *    every 30 s (bench/RESULTS.md). The 1105-pair trial went from ~44 to ~51 steps/s inside the demo.
 *  - `/usr/bin/time -v node dist/cli.js demo --epochs 19` (idle, 2026-11-30 13:08): 8 min 42 s wall (652 s user,
 *    113 s system); n1105 411 s, n8 3.4-5.4 s + ~3 s to translate and score, n24 9-11 s + ~3 s, aug 12 s,
 *    transfer 12.5 s. Before the changes: 10 min 32 s. The metrics are the same to the last digit in every run.
 *  - Seed means 8 -> 24 -> 1105 real pairs: MSE 0.0072 -> 0.0038 -> 0.0012, NRMSE 0.349 -> 0.252 -> 0.146,
 *    PSNR 21.6 -> 24.4 -> 29.1, SSIM 0.690 -> 0.783 -> 0.898, WAEM 0.67 -> 0.96 -> 2.03, skeleton recovery 0.059
 *    -> 0.144 -> 0.503; aug-8to32 0.134, transfer-w2b 0.078.
 *  - 20 epochs (9 min 10 s) score 0.4935, below 19's 0.5030: the last epochs' score moves by ~0.01 with the
 *    schedule (PyTorch's seeds spread 0.45-0.50 at 13 epochs), so 0.5 is reached, not by a wide margin.
 *
 * Third round (2026-11-30, night): the step got cheaper, so the epochs went from 13 to 16.
 *  - Batch norm's per-channel launches are folded into its kernels (151 -> 115 dispatches a step): the demo's
 *    step, timed alone, 23.7-27.2 -> 18-20 ms; the trainer loads the next pair while a step runs; the phantom
 *    truths are rendered once per study instead of once per trial (~2.6 s each). Inside the demo the 1105-pair
 *    trial went from 41.5 to 44 steps/s (the rest of the gap to the step timed alone is the JavaScript thread:
 *    a CPU profile of `train` shows ~8 ms of it per step: encoding 1.1 ms, Dawn's polling 1.5, garbage
 *    collection 1.1, image decoding, on the same 2 cores as lavapipe's threads).
 *  - 19 epochs (20995 steps in the largest trial) reach skeleton recovery 0.503 but took 10 min 32 s (and 11 min
 *    00 s before the speed-ups), over the 10 minutes; 16 epochs fit (see "Time" below).
 *  - Two trials at once on two devices (`--parallel 2`, runStudy's moreContexts), 19 epochs: 10 min 16 s
 *    against 10 min 32 s one at a time, within the run-to-run spread (the same `train` run measured 39-45
 *    steps/s within minutes): while both lanes trained, the 1105-pair trial ran at 23-25 steps/s, and at 38
 *    steps/s once alone (44 when run alone from the start). Two lanes share the same two cores, so the default
 *    stays 1.
 *  - The default's run (2026-11-30 10:23, `/usr/bin/time -v node dist/cli.js demo`, nothing else running):
 *    9 min 21 s wall, 12 min 38 s CPU; n1105 418 s (42.8 steps/s), n8 9-21 s (the first includes compiling the
 *    kernels), n24 14-17 s, aug 21 s, transfer 19 s, synthesis 12 s. Seed means 8 -> 24 -> 1105 real pairs: MSE
 *    0.0079 -> 0.0041 -> 0.0013, NRMSE 0.367 -> 0.262 -> 0.148, PSNR 21.1 -> 24.1 -> 29.0, SSIM 0.673 -> 0.772 ->
 *    0.896, WAEM 0.64 -> 0.92 -> 1.99, skeleton recovery 0.043 -> 0.128 -> 0.475; aug-8to32 0.128, transfer-w2b
 *    0.064. So 0.5 is not reached within 10 minutes: 19 epochs reach 0.503 (the grid then shows the pelvis's
 *    crossed bones clearly) in 10 min 32 s. The n1105 translations draw the spine as a beaded line, the pelvis,
 *    the limbs' long bones and the tail; the rib cage as a brighter, faintly striped field, no single ribs.
 *  - PyTorch (scripts/skeleton_experiments.py on this demo's own export, 1 thread, seed 0; `--epoch-schedule`
 *    reproduces the library's per-epoch learning rate, last epoch at lr 0): 13 epochs 0.498 (the per-step decay
 *    also 0.498: the schedule is not why the library scored 0.466 there), 17 epochs 0.520 (per-step decay
 *    0.528; decaying over three quarters instead of half 0.514), 19 epochs 0.535. At 2873 steps lr 4e-3 (0.302)
 *    and beta1 0.9 (0.287) trail lr 2e-3 (0.315): stopped. Five U-Net levels instead of six, 19 epochs: 0.503.
 *  - The library's 19-epoch generator, loaded into the PyTorch model and scored by the script, gives 0.5029
 *    (the library: 0.5030): the scoring agrees. And the 0.03 is seed spread: PyTorch at 13 epochs with seeds
 *    1 and 2 scores 0.448 and 0.462 (seed 0: 0.498), a mean of 0.469 against the library's 0.466. So PyTorch's
 *    seed-0 curves above are a lucky draw, and 0.5 wants about 19 epochs on average, more to be sure of it.
 *
 * Why 250 animals (measured 2026-11-30, second round; PyTorch as below, 1 thread, the 20 held-out images of the
 * 26-animal demo's 4 test animals, training pairs from other data seeds added; test (train) recovery):
 *  - With the old 110 pairs of 22 animals the held-out score peaks at 0.39 (15000 steps) while the training
 *    images climb to 0.65: too few animals, not too few steps.
 *  - With 1110 pairs (222 animals) there is no gap, and the score keeps rising with steps: 5500 steps 0.39
 *    (0.38); 11000 steps 0.45 (0.46); 15400 steps 0.42 at 7000 (constant lr), 0.47 at 12600, 0.48 at 14000,
 *    0.49 (0.47) at 15400. So the lever is animals, and then steps.
 *  - Synthesis is cheap: 1250 pairs at 64x128 take ~13 s of CPU (`synth`, 1130 pairs: 12.2 s user), against
 *    ~25 ms a training step.
 *  - Dropout off (5500 steps, 1110 pairs): 0.37 -> 0.40 at 4400, 0.39 -> 0.41 at 5500 (0.38 -> 0.41 on
 *    training images): with 200+ animals nothing needs regularising, and the reference's test-time dropout
 *    (pix2pix translates in training mode) only adds noise to the translation. Without dropout on a 22000-step
 *    schedule (11000 constant): 0.30 at 2200, 0.38 at 4400, 0.43 at 6600, 0.45 at 8800, 0.47 at 11000, 0.50
 *    at 13200, 0.52 at 15400, 0.53 (0.54) at 17600 (stopped there for time); with dropout the 15400-step
 *    schedule had 0.47 at 12600 and 0.49 at 15400. So on these 4 held-out animals 0.5 takes ~13000 steps
 *    of the largest trial, ~16000 to be clear of it.
 *  - Epochs: every trial trains the same epochs (the paper's shape), so the steps are 13 x (1105 + the small
 *    trials' 8x3 + 24x3 + 32 + 24 + 8 pairs) = 16445. The idle run of the previous default (edb5673) took
 *    5 s per trial plus 25.1 ms per step (n8 400 steps 15 s, n110 5500 steps 143 s); so 16445 steps,
 *    9 trials, the transfer's second model and 1250 pairs of synthesis come to about 8.5 minutes idle (before
 *    the larger test set's cost was known: see "Time" below); 14 epochs would add ~0.5 min, too close to 10.
 *    The small points get 104 and 312 steps: the sweep is the paper's (same epochs at every size), so its
 *    small points stay rough.
 *  - Horizontal flips (the library's only flip) stay: the light's azimuth is drawn from [-2.6, -1.8] rad
 *    (from the top left), so a flipped photo is lit from the top right: still a valid photo -> X-ray pair.
 *    Vertical flips too (lit from below; PyTorch --vflip, 1110 pairs): 0.30 at 2200 steps vs 0.31 without,
 *    no gain (stopped there for time; the library has no vertical flip anyway).
 * Its results (2026-11-30, 906b2be, `demo --out /tmp/h14b/demo`; 145 held-out images of 29 animals), seed
 * means, 8 -> 24 -> 1105 real pairs: MSE 0.0091 -> 0.0045 -> 0.0012, NRMSE 0.393 -> 0.275 -> 0.145, PSNR 20.5
 * -> 23.7 -> 29.1, SSIM 0.655 -> 0.759 -> 0.897, WAEM 0.60 -> 0.87 -> 2.05, skeleton recovery 0.030 -> 0.112
 * -> 0.466 (the 26-animal default: 0.349, MSE 0.0016, SSIM 0.876); aug-8to32 0.119, transfer-w2b 0.061. So
 * 0.5 is not reached: 0.466 in the 14365 steps that fit, where PyTorch without dropout had 0.50-0.52 at
 * 13200-15400 steps on its 4 held-out animals. PyTorch on this demo's own export (skeleton_export.ts
 * --animals 250: the same 1105 training pairs and 145 held-out images), the same recipe and 14365 steps:
 * 0.31 at 2873, 0.38, 0.44, 0.49 at 11492, 0.498 (0.48 on training images) at 14365. So on the same data the
 * library's trial ends 0.03 below PyTorch's (one seed each; why is not measured: initialisation, data order
 * and kernels all differ in detail), and even PyTorch only touches 0.5 at the end. The n1105 translations draw
 * the spine as a bright, beaded line, the pelvis, the tail and the limbs' long bones; the rib cage only as a
 * brighter field, no single ribs, no skull rim. The small points at 13 epochs (104 and 312 steps) draw grey
 * silhouettes.
 * Time (2026-11-30, `/usr/bin/time -v node dist/cli.js demo`): 8 min 45 s wall, 11 min 31 s CPU (580 s user,
 * 112 s system, 131% of a core) on the 2-core machine at load ~2 (nearly idle; the old default's idle run had
 * 130%); per trial n1105 396 s (27.5 ms a step), n8 9-13 s, n24 14-15 s, aug 20 s, transfer 21 s. Under load
 * from other jobs: 14 min 13 s (load 5-7) and 17 min 36 s (load 8-15), both 11 min 54-55 s of CPU, the same
 * metrics to the last digit each time. The held-out set's size costs: 145 test images make a trial's fixed
 * part ~8 s instead of ~5 s; 8 test animals (40 images) would save ~25 s in all.
 *
 * The first round (the 26-animal demo, 110 training pairs):
 *
 * Learning curves (2026-11-30): scripts/skeleton_experiments.py trains the same pix2pix in PyTorch (the library
 * matches it; 1 thread) on the demo's phantoms (scripts/skeleton_export.ts), scoring the 20 held-out images
 * with a port of skeletonRecovery (agrees to 6e-8) every 1000 steps. Batch 1, flips, lr 2e-3, half the steps
 * at constant lr, half decaying; test (train) recovery:
 *  - The old default (ngf 8, ndf 8, lambda L1 100), 10000 steps: 0.18 at 1k, 0.21 at 4k, 0.24 at 7k (still
 *    constant lr), 0.28 at 10k (0.36 on training images). Its translations carry a mottled, fur-like texture
 *    inside the body that has nothing to do with the bones: the adversarial term's.
 *  - Without the GAN term (L1 only), 4000 steps: 0.20, 0.25, 0.30, 0.32 (0.35). The adversarial term halves the
 *    speed at which the skeleton appears. Lambda L1 1000 (GAN at ~10%): 0.25 at 4k, no better than 100;
 *    lambda L1 10000 (GAN at ~1%): 0.27, 0.32, 0.34 at 2k-4k, as good as L1 alone. Mean squared error instead of
 *    L1 (not a library option): 0.34 at 4k, so L1's median is not what blurs the bones.
 *  - Width: ngf 16 (no GAN), 4000 steps: 0.23, 0.28, 0.34, 0.36 (0.41), for 3.8x the multiply-adds (2-3.6x the
 *    step time on lavapipe): less than ngf 8 given the same minutes.
 *  - Normalisation: none instead of batch norm (no GAN): 0.05, 0.09, 0.11, 0.13: far slower.
 *  - Data: up to ~6000 steps the model underfits (training images score only 0.03-0.05 above held-out ones);
 *    beyond, 110 pairs of 22 animals are what limits it. The chosen recipe (below) for 30000 steps (15000
 *    constant): test 0.29 at 3k, 0.35 at 6k, 0.37 at 9k, 0.38 at 12k, 0.39 at 15k (its peak), 0.39 at 18k and
 *    21k, then 0.38, 0.38, 0.375 at 30k while its training images climb 0.32 → 0.41 → 0.53 → 0.65. So 0.5 on the
 *    held-out animals is out of reach with the demo's 110 pairs at any step count (30000 steps would be ~2.5x
 *    the whole 10-minute budget anyway). With 1000 more training pairs (200 other animals, data seed 1) the same
 *    5500 steps reach 0.31 at 2.2k, 0.37 at 4.4k, 0.39 at 5.5k (vs 0.26, 0.34, 0.36 with 110 pairs), with no
 *    gap between training and held-out images: more animals is the one lever left, but the demo's epoch-based
 *    sweep would give its small points correspondingly fewer steps; not done.
 *  - How sharp the target is: the true X-ray blurred by a gaussian of sigma 1 px scores 0.75, 1.5 px 0.61, 2 px
 *    0.49. The thick bones (> 1.5 mm: vertebrae, pelvis, skull rim, incisors) alone score 0.82, the thin ones
 *    (ribs, limb bones, scapulae) 0.41. So 0.5 needs the spine, pelvis and skull drawn within about a pixel;
 *    after 4000-10000 steps the translations draw the spine as a blurred bright line, the lungs dark, the
 *    limbs' bones faintly, but not the skull's rim, the pelvis or single ribs.
 *  - The chosen recipe (ngf 8, ndf 4, lambda L1 10000) at 5500 steps (50 epochs of 110 pairs): 0.21 at 1.1k,
 *    0.26, 0.31, 0.34, 0.36 at 5.5k (0.41 on training images).
 * Hence the default: lambda L1 10000 keeps pix2pix's discriminator and its losses in the report but lets L1
 * lead (the adversarial term at 1% of the L1 term; `demo --full` keeps the reference's 100); ndf 4 because the
 * discriminator then barely steers, and it makes a step 35% cheaper (the library, same load: 49 vs 76 ms); the
 * saving buys epochs: 50 (25 constant + 25 linear decay), 13500 steps over the 9 trials.
 * Earlier measurements in the library itself (2026-11-30, 6-12 epochs, old default): 5 levels 0.174 vs 6 levels
 * 0.171, no dropout 0.164, lr 1e-3 0.166, LSGAN 0.167 at 660 steps; batch 4 costs 5.8x a step for 4x the images
 * (slower per epoch on lavapipe); 128x256 at 6 epochs 0.148 (its true X-ray 0.92), no better than 64x128 at
 * several times the step cost.
 * Time: the old default (8100 steps, ngf 8/ndf 8) took 6 min 04 s on the idle 2-core machine (8 min 34 s of CPU),
 * ~42 ms a step plus ~25 s of synthesis, compilation, translation and scoring. The new default (13500 steps,
 * ndf 4) ran twice on the shared machine under load 2-5 from other jobs: 9 min 19 s wall (9 min 44 s CPU) and
 * 8 min 44 s (10 min 27 s CPU), the same figures both times. Idle: 25 s + 13500 x 0.65 x 42 ms = 6.5 min, or
 * 0.71 (the old run's wall/CPU) x 9 min 44 s = 6.9 min. Measured idle (2026-11-30, edb5673): 7 min 01 s wall,
 * 9 min 09 s CPU, the same figures again.
 * Its results (seed means where 3 seeds), 8 → 24 → 110 real pairs: MSE 0.0073 → 0.0029 → 0.0016, PSNR 22.5 →
 * 25.6 → 28.0, SSIM 0.714 → 0.819 → 0.876, WAEM 0.72 → 1.13 → 1.69, skeleton recovery 0.113 → 0.199 → 0.349;
 * aug-8to32 0.133, transfer-w2b 0.109. (The old default: 0.087 → 0.163 → 0.22-0.24, MSE 0.0029 and SSIM 0.81 at
 * 110 pairs.) The 110-pair trial draws the spine as a bright line, the lungs darker either side of it and the
 * limbs' long bones faintly; not the skull's rim, the pelvis or single ribs.
 * lr 2e-3, not the reference's 2e-4: at 2e-4 the tiny networks barely leave their initialisation in a few
 * thousand steps (G_L1 70 → 68 over 80 steps, vs → 11 in 20).
 * Sweep sizes 8, 24, all (110) pairs: small points cost little, so they get 3 seeds each (mean and spread);
 * 3 seeds of the 110-pair point would add 11000 steps, over the budget. The augmented trial expands the 8-pair
 * set to 32 and the transfer trial pretrains on 24 white-bed pairs and fine-tunes on 8 black-bed pairs.
 */
export const DEMO_SIZE = '64x128';
export const DEMO_ANIMALS = 250;
export const DEMO_EPOCHS = 19;
export const DEMO_SEEDS = 3;
export const DEMO_NGF = 8;
/** PatchGAN width: 4, not 8: its adversarial term weighs ~1% (DEMO_LAMBDA_L1), and ndf 4 makes a step 35% cheaper. */
export const DEMO_NDF = 4;
/** L1 weight 10000, not the reference's 100: see the measurements above (the GAN term's texture hides the bones). */
export const DEMO_LAMBDA_L1 = 10000;
/** No dropout: with 221 training animals it regularises nothing, and pix2pix's test-time dropout only adds noise (0.39 -> 0.41 above). */
export const DEMO_DROPOUT = false;
/** Trials at once (runStudy's moreContexts): 1, because two lanes on a software adapter share its two cores (measured above). */
export const DEMO_PARALLEL = 1;
// Measured 2026-11-30 13:08 on the 2-core machine, nothing else running: 8 min 42 s wall, 12 min 46 s CPU.
export const DEMO_MEASURED_TIME = 'about 9 minutes (24035 training steps; 8 min 42 s measured)';

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
    // lr 2e-3, ndf 4, lambda L1 10000, no dropout: see the measurements at the top of this file.
    model: { inputChannels: 3, outputChannels: 1, numDowns, ngf: DEMO_NGF, ndf: DEMO_NDF, norm: 'batch', dropout: DEMO_DROPOUT, lr: 2e-3, lambdaL1: DEMO_LAMBDA_L1 },
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
  usage: 'demo [--out DIR] [--size HxW] [--epochs N] [--seeds N] [--parallel N] [--fid-weights FILE] [--full] [--dry-run]',
  options: {
    out: { type: 'string', arg: 'DIR', description: 'output folder', default: 'demo-out' },
    size: { type: 'string', arg: 'HxW', description: `image size (default ${DEMO_SIZE}; ${SEED_IMAGE_SIZE} with --full)` },
    animals: { type: 'count', min: 4, description: 'phantom animals (5 poses each; at least one test animal per fur and bed colour)', default: DEMO_ANIMALS },
    epochs: { type: 'count', min: 1, description: 'training epochs per trial (half constant, half linear decay)', default: DEMO_EPOCHS },
    seeds: { type: 'int', min: 1, description: 'seeds per smaller size point (drawn as mean and spread)', default: DEMO_SEEDS },
    parallel: { type: 'int', min: 1, description: `trials trained at once, each on its own GPU device, the largest first (default ${DEMO_PARALLEL}; 1 with --full, whose models are large)` },
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
    const parallel = opts.parallel ?? (full ? 1 : DEMO_PARALLEL);
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
    const moreContexts = await Promise.all(Array.from({ length: parallel - 1 }, () => createContext()));
    const r = await runStudy(cfg, {
      out: join(out, 'study'),
      ctx,
      moreContexts,
      signal: ac.signal,
      onLog: (l) => console.error(l),
      onStep: (name, _s, total) => {
        let b = bars.get(name);
        if (!b) bars.set(name, (b = new Progress(`  ${name}`, total, 'step')));
        b.tick();
      },
    });
    for (const c of [ctx, ...moreContexts]) c.destroy();
    console.error('3/3 report');
    const keys = ['mse', 'nrmse', 'psnr', 'ssim', ...(fidWeights ? (['fid', 'kid'] as const) : []), 'waem', 'skeleton'] as const;
    console.log(['trial'.padEnd(16), 'pairs', ...keys.map((k) => k.toUpperCase().padStart(9))].join(' '));
    for (const t of r.results) console.log([t.name.padEnd(16), String(t.effectivePairs).padStart(5), ...keys.map((k) => (t.metrics[k] ?? NaN).toPrecision(4).padStart(9))].join(' '));
    console.log(`demo finished in ${fmtTime((Date.now() - started) / 1000)}; report: ${r.reportPath}`);
  },
});
