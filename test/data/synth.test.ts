import { describe, it, expect, beforeAll } from 'vitest';
import { mkdtempSync, readFileSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { synthesizeDataset, planAnimals, defaultTestAnimals, type SynthesizeResult } from '../../src/data/synth_node.js';
import { renderPhantomPair } from '../../src/data/phantom.js';
import { readImageInfo } from '../../src/data/image_node.js';
import { loadPairedDataset } from '../../src/data/dataset_node.js';
import { parseManifestCsv, parseManifestJson } from '../../src/data/manifest.js';
import { countBy, furBedKey } from '../../src/data/split.js';

const root = mkdtempSync(join(tmpdir(), 'synth-'));
const W = 128;
const H = 64;

describe('synthesizeDataset', () => {
  const out = join(root, 'set');
  let res: SynthesizeResult;
  const progress: number[] = [];
  beforeAll(async () => {
    // The default set's shape (20 animals x 5 poses) at 64 x 128.
    res = await synthesizeDataset({ out, animals: 20, width: W, height: H, seed: 1, onProgress: (d, t) => progress.push(d / t) });
  });

  it('writes the aligned layout split by animal, with manifests that agree with the files', async () => {
    // The paper's 20 of 174 animals, scaled, at least one test and one training animal.
    expect([174, 20, 9, 2, 1].map(defaultTestAnimals)).toEqual([20, 2, 1, 1, 0]);
    expect([res.train, res.test]).toEqual([90, 10]);
    expect(progress).toHaveLength(100);
    expect(progress[99]).toBe(1);
    const train = readdirSync(join(out, 'train')).sort();
    const test = readdirSync(join(out, 'test')).sort();
    expect([train.length, test.length]).toEqual([90, 10]);
    const csv = parseManifestCsv(readFileSync(join(out, 'manifest.csv'), 'utf8'));
    const json = parseManifestJson(readFileSync(join(out, 'manifest.json'), 'utf8'));
    expect(json).toEqual(csv);
    expect(csv).toEqual(res.manifest);
    expect(csv.filter((e) => e.split === 'train').map((e) => e.file!.slice(6)).sort()).toEqual(train);
    // No animal in both splits; 5 poses each; all four fur x bed combinations (5 animals each).
    const trainAnimals = new Set(csv.filter((e) => e.split === 'train').map((e) => e.animal));
    const testAnimals = new Set(csv.filter((e) => e.split === 'test').map((e) => e.animal));
    expect([trainAnimals.size, testAnimals.size]).toEqual([18, 2]);
    for (const a of testAnimals) expect(trainAnimals.has(a)).toBe(false);
    expect(Object.values(countBy(csv, (e) => e.animal!))).toEqual(Array(20).fill(5));
    expect(countBy(csv, furBedKey)).toEqual({ 'white/white': 25, 'white/black': 25, 'black/white': 25, 'black/black': 25 });
    // The two test animals differ in fur x bed.
    expect(new Set(csv.filter((e) => e.split === 'test').map(furBedKey)).size).toBe(2);
    // Every file is photo | X-ray: 2 * width x height, RGB.
    for (const e of csv.slice(0, 12)) expect(await readImageInfo(join(out, e.file!))).toEqual({ width: 2 * W, height: H, channels: 3 });
  });

  it('loads back as a paired dataset whose halves are the rendered photo and X-ray', async () => {
    const ds = await loadPairedDataset(out, { outputChannels: 1 });
    expect(ds.entries).toHaveLength(100);
    expect(ds.manifest).toMatch(/manifest\.csv$/);
    const test = await loadPairedDataset(out, { phase: 'test', outputChannels: 1 });
    expect(test.entries.every((e) => e.split === 'test' && e.name.startsWith('test/'))).toBe(true);
    const e = test.entries[3];
    const animal = planAnimals(20, 1, 2).find((p) => p.animal.id === e.animal)!.animal;
    expect([animal.fur, animal.bed]).toEqual([e.fur, e.bed]);
    const want = renderPhantomPair(animal, e.pose!, { width: W, height: H });
    const { a, b } = await test.load(3);
    expect([a.width, a.height, a.channels, b.channels]).toEqual([W, H, 3, 1]);
    // 8-bit truncation: within 1/255 (plus float rounding).
    let maxA = 0;
    let maxB = 0;
    for (let i = 0; i < a.data.length; i++) maxA = Math.max(maxA, Math.abs(a.data[i] - want.photo.data[i]));
    for (let i = 0; i < b.data.length; i++) maxB = Math.max(maxB, Math.abs(b.data[i] - want.xray.data[i]));
    expect(maxA).toBeLessThan(1.01 / 255);
    expect(maxB).toBeLessThan(1.01 / 255);
  });

  it('same seed gives identical bytes; another seed gives other animals', async () => {
    const small = (seed: number, dir: string) => synthesizeDataset({ out: join(root, dir), animals: 3, poses: 2, width: 48, height: 24, seed, testAnimals: 1 });
    const [r1, , r3] = await Promise.all([small(7, 's1'), small(7, 's2'), small(8, 's3')]);
    for (const e of r1.manifest) expect(readFileSync(join(root, 's2', e.file!)).equals(readFileSync(join(root, 's1', e.file!))), e.file).toBe(true);
    expect(readFileSync(join(root, 's2', 'manifest.json'), 'utf8')).toBe(readFileSync(join(root, 's1', 'manifest.json'), 'utf8'));
    // Same animal id and pose under another seed (its split may differ too): other pixels.
    for (const e of r1.manifest) {
      const other = r3.manifest.find((o) => o.animal === e.animal && o.pose === e.pose)!;
      expect(readFileSync(join(root, 's3', other.file!)).equals(readFileSync(join(root, 's1', e.file!))), e.file).toBe(false);
    }
  });

  it('deals all four fur x bed combinations from 4 animals, and to the test split when it has 4', () => {
    for (const seed of [0, 1, 2]) {
      const plan = planAnimals(8, seed, 4);
      expect(new Set(plan.map((p) => `${p.animal.fur}/${p.animal.bed}`)).size).toBe(4);
      expect(new Set(plan.filter((p) => p.split === 'test').map((p) => `${p.animal.fur}/${p.animal.bed}`)).size).toBe(4);
      expect(new Set(plan.filter((p) => p.split === 'train').map((p) => `${p.animal.fur}/${p.animal.bed}`)).size).toBe(4);
    }
  });

  it('rejects bad options', async () => {
    await expect(synthesizeDataset({ out: join(root, 'bad'), animals: 0 })).rejects.toThrow(/animals: expected an integer >= 1/);
    await expect(synthesizeDataset({ out: join(root, 'bad'), animals: 3, testAnimals: 3 })).rejects.toThrow(/testAnimals: expected an integer in \[0, 2\]/);
    await expect(synthesizeDataset({ out: join(root, 'bad'), animals: 3, width: 4, height: 8, testAnimals: 0 })).rejects.toThrow(/renderPhantomPair: size/);
  });
});
