/**
 * Write a synthetic phantom dataset to disk in the reference pix2pix "aligned" layout:
 *   out/train/<animal>_p<pose>.png, out/test/..., each 2*width x height RGB, photo (A) left, X-ray (B,
 *   gray tiled to RGB) right; plus out/manifest.csv and out/manifest.json (file, split, animal, fur, bed, pose).
 * Split by animal, like the seed paper (154 training / 20 test animals of 174). Node-only (fs, sharp).
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Rng } from '../runtime/random.js';
import { ShapeError } from '../runtime/errors.js';
import { concatHorizontal } from './image.js';
import { writePng, writePngPalette } from './image_node.js';
import { makeAnimal, mixSeed, renderPhantomPair, type AnimalParams, type Colour } from './phantom.js';
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
  onProgress?: (done: number, total: number) => void;
}

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
 */
export function planAnimals(animals: number, seed: number, testAnimals: number): { animal: AnimalParams; split: 'train' | 'test' }[] {
  const rng = new Rng(mixSeed(seed, 0x51ed));
  const combos = Array.from({ length: animals }, (_, i) => i % 4);
  rng.shuffle(combos);
  const list = combos.map((c, i) => {
    const id = `m${String(i).padStart(animals > 999 ? 4 : 3, '0')}`;
    return makeAnimal(new Rng(mixSeed(seed, i + 1)), id, { fur: COMBOS[c][0], bed: COMBOS[c][1] });
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

/** Render and write the dataset; see the file comment for the layout. */
export async function synthesizeDataset(opts: SynthesizeOptions): Promise<SynthesizeResult> {
  const animals = opts.animals ?? 20;
  const poses = opts.poses ?? 5;
  const width = opts.width ?? 1024;
  const height = opts.height ?? 512;
  const seed = opts.seed ?? 0;
  const op = 'synthesizeDataset';
  if (!Number.isInteger(animals) || animals < 1) throw new ShapeError(op, 'animals', 'an integer >= 1', animals);
  if (!Number.isInteger(poses) || poses < 1) throw new ShapeError(op, 'poses', 'an integer >= 1', poses);
  const testAnimals = opts.testAnimals ?? defaultTestAnimals(animals);
  if (!Number.isInteger(testAnimals) || testAnimals < 0 || testAnimals > Math.max(0, animals - 1)) {
    throw new ShapeError(op, 'testAnimals', `an integer in [0, ${Math.max(0, animals - 1)}]`, testAnimals);
  }
  const plan = planAnimals(animals, seed, testAnimals);
  await mkdir(join(opts.out, 'train'), { recursive: true });
  if (testAnimals > 0) await mkdir(join(opts.out, 'test'), { recursive: true });
  const manifest: ManifestEntry[] = [];
  const total = animals * poses;
  let done = 0;
  let counts = { train: 0, test: 0 };
  let pending: Promise<void> | null = null;
  for (const { animal, split } of plan) {
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
    const animal = makeAnimal(new Rng(mixSeed(seed, 1000 + c)), `example${c}`, { fur, bed });
    const pair = renderPhantomPair(animal, c, size, { noise: 0 });
    const file = join(dir, `${fur}-mouse_${bed}-bed.png`);
    await writePngPalette(file, concatHorizontal(pair.photo, pair.xray), 64);
    files.push(file);
  }
  return files;
}
