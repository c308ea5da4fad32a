/**
 * Write a synthetic phantom dataset to disk in the reference pix2pix "aligned" layout:
 *   out/train/<animal>_p<pose>.png, out/test/..., each 2*width x height RGB, photo (A) left, X-ray (B,
 *   gray tiled to RGB) right; plus out/manifest.csv and out/manifest.json (file, split, animal, fur, bed, pose).
 * Split by animal, like the seed paper (154 training / 20 test animals of 174). Node-only (fs, sharp).
 *
 * The seed's own dataset ({@link SEED_DATASET}) is not "N animals x 5 poses": 174 animals (86 white, 88 black),
 * 5 poses each nominally but 940 pairs, 823 from the 154 training animals and 117 from the 20 test animals.
 * `white` and `pairs` reproduce that exactly; {@link planDataset} plans it without rendering anything.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Rng, mixDataSeed } from '../runtime/random.js';
import { ShapeError } from '../runtime/errors.js';
import { concatHorizontal } from './image.js';
import { writePng, writePngPalette } from './image_node.js';
import { makeAnimal, renderPhantomPair, type AnimalParams, type Colour } from './phantom.js';
import { formatManifestCsv, type ManifestEntry } from './manifest.js';

export interface SynthesizeOptions {
  /** Output folder (created). */
  out: string;
  /** Number of animals (default 20). */
  animals?: number;
  /** Poses per animal (default 5). */
  poses?: number;
  /** Size of each half (default 1024 x 512, the paper's). */
  width?: number;
  height?: number;
  /** Same seed, same bytes (default 0). */
  seed?: number;
  /** Animals held out for testing; default round(animals * 20 / 174), at least 1 when animals >= 2. */
  testAnimals?: number;
  /**
   * White-furred animals (the rest are black); default ceil-ish half (the round-robin over fur x bed that
   * earlier versions used, so existing seeds give the same animals). The seed: 86 of 174.
   */
  white?: number;
  /**
   * Exact pair counts per split, instead of `poses`: every animal of a split gets floor(pairs / animals)
   * poses and a seeded choice of them, dealt round-robin over fur x bed, one more (the seed: 823 pairs from
   * 154 animals = 53 animals with 6 poses, 101 with 5; 117 from 20 = 17 with 6, 3 with 5). Poses beyond the
   * nominal ones are further views of the same animal (pose index 5, 6, ...). Give `pairs` or `poses`, not both.
   */
  pairs?: { train: number; test: number };
  onProgress?: (done: number, total: number) => void;
}

/** The seed paper's dataset (its line 27): 174 animals, 86 white + 88 black, 20 test animals, 823 + 117 pairs. */
export const SEED_DATASET = { animals: 174, white: 86, testAnimals: 20, pairs: { train: 823, test: 117 } } as const;

export interface SynthesizeResult {
  train: number;
  test: number;
  manifest: ManifestEntry[];
}

/** Default test-animal count: the paper's 20 of 174, scaled; at least 1 (and one training animal left). */
export function defaultTestAnimals(animals: number): number {
  if (animals < 2) return 0;
  return Math.min(animals - 1, Math.max(1, Math.round((animals * 20) / 174)));
}

const COMBOS: [Colour, Colour][] = [
  ['white', 'white'],
  ['white', 'black'],
  ['black', 'white'],
  ['black', 'black'],
];

/**
 * The animals of a dataset and which are held out: fur x bed combinations are dealt round-robin over a
 * seeded shuffle (so all four appear once there are 4 animals, and twice each from 8), and the test
 * animals are taken round-robin over the combinations, so both splits see every combination when they can.
 * `white` sets how many animals have white fur (beds still alternate within each fur); without it, or with
 * the count the round-robin gives anyway, the animals are exactly those of earlier versions.
 */
export function planAnimals(animals: number, seed: number, testAnimals: number, opts: { white?: number } = {}): { animal: AnimalParams; split: 'train' | 'test' }[] {
  const rng = new Rng(mixDataSeed(seed, 0x51ed));
  const combos = dealCombos(animals, opts.white);
  rng.shuffle(combos);
  const list = combos.map((c, i) => {
    const id = `m${String(i).padStart(animals > 999 ? 4 : 3, '0')}`;
    return makeAnimal(new Rng(mixDataSeed(seed, i + 1)), id, { fur: COMBOS[c][0], bed: COMBOS[c][1] });
  });
  const byCombo: number[][] = [[], [], [], []];
  combos.forEach((c, i) => byCombo[c].push(i));
  byCombo.forEach((g) => rng.shuffle(g));
  const order = rng.shuffle([0, 1, 2, 3]);
  const test = new Set<number>();
  for (let round = 0; test.size < testAnimals; round++) {
    for (const c of order) if (test.size < testAnimals && round < byCombo[c].length) test.add(byCombo[c][round]);
  }
  return list.map((animal, i) => ({ animal, split: test.has(i) ? 'test' : 'train' }));
}

/** White-furred animals of the plain round-robin over COMBOS (combos 0 and 1 are white). */
function roundRobinWhite(animals: number): number {
  return 2 * Math.floor(animals / 4) + Math.min(2, animals % 4);
}

/**
 * Combination indices before the shuffle: the cycle 0,1,2,3 (white/white, white/black, black/white,
 * black/black), skipping a fur once its count is dealt. With the round-robin's own white count nothing is
 * skipped, so the list is i % 4 as before.
 */
function dealCombos(animals: number, white = roundRobinWhite(animals)): number[] {
  if (!Number.isInteger(white) || white < 0 || white > animals) throw new ShapeError('planAnimals', 'white', `an integer in [0, ${animals}]`, white);
  const left = [white, animals - white]; // white, black
  const out: number[] = [];
  for (let c = 0; out.length < animals; c = (c + 1) % 4) {
    const fur = c < 2 ? 0 : 1;
    if (left[fur] === 0) continue;
    left[fur]--;
    out.push(c);
  }
  return out;
}

export interface PlannedAnimal {
  animal: AnimalParams;
  split: 'train' | 'test';
  /** Poses rendered for this animal: pose indices 0 .. poses-1. */
  poses: number;
}

export interface DatasetPlan {
  animals: PlannedAnimal[];
  /** Pairs per split, and per split x fur x bed ('train/white/black': training pairs of white mice on black beds). */
  pairs: { train: number; test: number; total: number; byGroup: Record<string, number> };
  /** Animals per split and fur ('test/white': white test animals) and per split x fur x bed. */
  animalCounts: Record<string, number>;
}

/**
 * What {@link synthesizeDataset} will write, without rendering: the animals, their split and their pose
 * counts, and the totals. Validates the options as synthesizeDataset does.
 */
export function planDataset(opts: Omit<SynthesizeOptions, 'out' | 'onProgress'>): DatasetPlan {
  const op = 'synthesizeDataset';
  const animals = opts.animals ?? 20;
  const seed = opts.seed ?? 0;
  if (!Number.isInteger(animals) || animals < 1) throw new ShapeError(op, 'animals', 'an integer >= 1', animals);
  if (opts.pairs && opts.poses !== undefined) throw new ShapeError(op, 'poses', 'absent when "pairs" gives the exact pair counts', opts.poses);
  const poses = opts.poses ?? 5;
  if (!Number.isInteger(poses) || poses < 1) throw new ShapeError(op, 'poses', 'an integer >= 1', poses);
  const testAnimals = opts.testAnimals ?? defaultTestAnimals(animals);
  if (!Number.isInteger(testAnimals) || testAnimals < 0 || testAnimals > Math.max(0, animals - 1)) {
    throw new ShapeError(op, 'testAnimals', `an integer in [0, ${Math.max(0, animals - 1)}]`, testAnimals);
  }
  if (opts.white !== undefined && (!Number.isInteger(opts.white) || opts.white < 0 || opts.white > animals)) {
    throw new ShapeError(op, 'white', `an integer in [0, ${animals}]`, opts.white);
  }
  const list: PlannedAnimal[] = planAnimals(animals, seed, testAnimals, { white: opts.white }).map((p) => ({ ...p, poses }));
  if (opts.pairs) {
    // A stream of its own, so the animals (and the default layout) do not depend on whether `pairs` is given.
    const rng = new Rng(mixDataSeed(seed, 0x9a125));
    for (const split of ['train', 'test'] as const) {
      const members = list.filter((p) => p.split === split);
      const want = opts.pairs[split];
      if (!Number.isInteger(want) || want < members.length || (members.length === 0 && want !== 0)) {
        throw new ShapeError(op, `pairs.${split}`, members.length ? `an integer >= ${members.length} (one pose per ${split} animal at least)` : '0 (no test animals)', want);
      }
      if (members.length === 0) continue;
      const base = Math.floor(want / members.length);
      let extra = want - base * members.length;
      for (const m of members) m.poses = base;
      // The animals with one more pose: round-robin over fur x bed (groups in a seeded order, animals in a
      // seeded order within each), so every group gets its share of the extra views.
      const groups = new Map<string, PlannedAnimal[]>();
      for (const m of members) {
        const k = `${m.animal.fur}/${m.animal.bed}`;
        if (!groups.has(k)) groups.set(k, []);
        groups.get(k)!.push(m);
      }
      const lists = [...groups.keys()].sort().map((k) => rng.shuffle(groups.get(k)!));
      rng.shuffle(lists);
      for (let round = 0; extra > 0; round++) {
        for (const l of lists) if (extra > 0 && round < l.length) (l[round].poses++, extra--);
      }
    }
  }
  const byGroup: Record<string, number> = {};
  const animalCounts: Record<string, number> = {};
  const add = (r: Record<string, number>, k: string, n: number) => (r[k] = (r[k] ?? 0) + n);
  let train = 0;
  let test = 0;
  for (const p of list) {
    if (p.split === 'train') train += p.poses;
    else test += p.poses;
    add(byGroup, `${p.split}/${p.animal.fur}/${p.animal.bed}`, p.poses);
    add(animalCounts, `${p.split}/${p.animal.fur}`, 1);
    add(animalCounts, `${p.split}/${p.animal.fur}/${p.animal.bed}`, 1);
  }
  return { animals: list, pairs: { train, test, total: train + test, byGroup }, animalCounts };
}

/** Render and write the dataset; see the file comment for the layout. */
export async function synthesizeDataset(opts: SynthesizeOptions): Promise<SynthesizeResult> {
  const width = opts.width ?? 1024;
  const height = opts.height ?? 512;
  const seed = opts.seed ?? 0;
  const plan = planDataset(opts);
  const testAnimals = plan.animals.filter((p) => p.split === 'test').length;
  await mkdir(join(opts.out, 'train'), { recursive: true });
  if (testAnimals > 0) await mkdir(join(opts.out, 'test'), { recursive: true });
  const manifest: ManifestEntry[] = [];
  const total = plan.pairs.total;
  let done = 0;
  let counts = { train: 0, test: 0 };
  let pending: Promise<void> | null = null;
  for (const { animal, split, poses } of plan.animals) {
    for (let p = 0; p < poses; p++) {
      const pair = renderPhantomPair(animal, p, { width, height });
      const file = `${split}/${animal.id}_p${p}.png`;
      if (pending) await pending; // render the next pair while the previous one is encoded
      pending = writePng(join(opts.out, file), concatHorizontal(pair.photo, pair.xray)).then(() => {
        done++;
        opts.onProgress?.(done, total);
      });
      manifest.push({ file, split, animal: animal.id, fur: animal.fur, bed: animal.bed, pose: p });
      counts = { ...counts, [split]: counts[split] + 1 };
    }
  }
  if (pending) await pending;
  await writeFile(join(opts.out, 'manifest.csv'), formatManifestCsv(manifest));
  const json = {
    generator: 'pix2pix-webgpu mouse phantoms',
    seed,
    width,
    height,
    fieldOfViewMm: [100, 50],
    layout: 'aligned: each file is photo (A) | X-ray (B), 2*width x height RGB',
    entries: manifest,
  };
  await writeFile(join(opts.out, 'manifest.json'), JSON.stringify(json, null, 1) + '\n');
  return { train: counts.train, test: counts.test, manifest };
}

/**
 * Write one example pair per fur x bed combination (photo | X-ray, 2*width x height) to `dir`, named
 * `<fur>-mouse_<bed>-bed.png`, as small palette PNGs without sensor noise (lossy: for looking at, not for training); docs/phantoms/ holds these at 512x256 per half (seed 0).
 */
export async function writePhantomExamples(dir: string, size = { width: 512, height: 256 }, seed = 0): Promise<string[]> {
  await mkdir(dir, { recursive: true });
  const files: string[] = [];
  for (let c = 0; c < COMBOS.length; c++) {
    const [fur, bed] = COMBOS[c];
    const animal = makeAnimal(new Rng(mixDataSeed(seed, 1000 + c)), `example${c}`, { fur, bed });
    const pair = renderPhantomPair(animal, c, size, { noise: 0 });
    const file = join(dir, `${fur}-mouse_${bed}-bed.png`);
    await writePngPalette(file, concatHorizontal(pair.photo, pair.xray), 64);
    files.push(file);
  }
  return files;
}
