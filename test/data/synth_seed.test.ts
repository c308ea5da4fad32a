// The seed paper's own dataset shape (its line 27), exactly: 174 animals (86 white, 88 black), 154 training
// animals (76 + 78) and 20 test animals (10 + 10), 940 pairs = 823 training + 117 test. planDataset plans it
// without rendering; a tiny render (16x32) checks the written files, the manifest and that skeleton recovery
// regenerates such a set's animals. The default layout stays what it was (same animals for existing options).
import { describe, it, expect } from 'vitest';
import { mkdtempSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { synthesizeDataset, planAnimals, planDataset, SEED_DATASET } from '../../src/data/synth_node.js';
import { phantomTestTruths } from '../../src/metrics/skeleton_node.js';
import { countBy, furBedKey } from '../../src/data/split.js';

const root = mkdtempSync(join(tmpdir(), 'synth-seed-'));

describe('the seed dataset plan', () => {
  it('has 174 animals (86 white, 88 black), 154/20 by animal (76+78, 10+10) and 823 + 117 = 940 pairs', () => {
    expect(SEED_DATASET).toEqual({ animals: 174, white: 86, testAnimals: 20, pairs: { train: 823, test: 117 } });
    for (const seed of [0, 1]) {
      const plan = planDataset({ ...SEED_DATASET, seed });
      expect(plan.animals).toHaveLength(174);
      expect(plan.pairs).toMatchObject({ train: 823, test: 117, total: 940 });
      const split = (s: string) => plan.animals.filter((p) => p.split === s);
      expect([split('train').length, split('test').length]).toEqual([154, 20]);
      expect(countBy(plan.animals, (p) => p.animal.fur)).toEqual({ white: 86, black: 88 });
      expect(plan.animalCounts).toMatchObject({ 'train/white': 76, 'train/black': 78, 'test/white': 10, 'test/black': 10 });
      // Both beds in both splits, test animals 5 per fur x bed.
      for (const fb of ['white/white', 'white/black', 'black/white', 'black/black']) expect(plan.animalCounts[`test/${fb}`]).toBe(5);
      // 5 poses nominally: 823 = 154 x 5 + 53 and 117 = 20 x 5 + 17 animals with a 6th view.
      expect(countBy(split('train'), (p) => String(p.poses))).toEqual({ 5: 101, 6: 53 });
      expect(countBy(split('test'), (p) => String(p.poses))).toEqual({ 5: 3, 6: 17 });
      // The extra views are spread over fur x bed (within one animal of an even share).
      const extra = countBy(split('train').filter((p) => p.poses === 6), (p) => `${p.animal.fur}/${p.animal.bed}`);
      expect(Object.values(extra).every((n) => n === 13 || n === 14)).toBe(true);
      // Enough pairs of each bed for the demo's transfer trial (pretrain 400 white-bed, fine-tune 200 black-bed).
      expect(plan.pairs.byGroup['train/white/white'] + plan.pairs.byGroup['train/black/white']).toBeGreaterThanOrEqual(400);
      expect(plan.pairs.byGroup['train/white/black'] + plan.pairs.byGroup['train/black/black']).toBeGreaterThanOrEqual(200);
    }
    // Deterministic.
    expect(JSON.stringify(planDataset({ ...SEED_DATASET, seed: 3 }))).toBe(JSON.stringify(planDataset({ ...SEED_DATASET, seed: 3 })));
  });

  it('leaves the default layout alone: same animals without `white` or with the count it deals anyway, 5 poses each', () => {
    for (const n of [1, 5, 7, 20, 26, 174]) {
      const t = Math.min(n - 1, 20);
      const before = planAnimals(n, 2, t);
      const white = before.filter((p) => p.animal.fur === 'white').length;
      expect(planAnimals(n, 2, t, { white })).toEqual(before);
      const plan = planDataset({ animals: n, seed: 2, testAnimals: t });
      expect(plan.animals.map(({ animal, split }) => ({ animal, split }))).toEqual(before);
      expect(plan.animals.every((p) => p.poses === 5)).toBe(true);
    }
    // `white` is exact for any count (beds still alternate within a fur).
    const plan = planAnimals(174, 0, 20, { white: 86 });
    expect(countBy(plan, (p) => `${p.animal.fur}/${p.animal.bed}`)).toEqual({ 'white/white': 43, 'white/black': 43, 'black/white': 44, 'black/black': 44 });
    expect(countBy(planAnimals(9, 0, 2, { white: 0 }), (p) => p.animal.fur)).toEqual({ black: 9 });
  });

  it('renders the exact seed set at a tiny size: 823 + 117 files, pose indices 0..4 or 0..5, skeleton truths regenerate', async () => {
    const out = join(root, 'seed');
    const r = await synthesizeDataset({ out, ...SEED_DATASET, width: 32, height: 16, seed: 0 });
    expect([r.train, r.test]).toEqual([823, 117]);
    expect([readdirSync(join(out, 'train')).length, readdirSync(join(out, 'test')).length]).toEqual([823, 117]);
    const perAnimal = new Map<string, number[]>();
    for (const e of r.manifest) perAnimal.set(e.animal!, [...(perAnimal.get(e.animal!) ?? []), e.pose!]);
    expect(perAnimal.size).toBe(174);
    for (const poses of perAnimal.values()) expect(poses).toEqual(Array.from({ length: poses.length }, (_, i) => i));
    expect(new Set(r.manifest.filter((e) => e.split === 'test' && e.fur === 'white').map((e) => e.animal)).size).toBe(10);
    expect(Object.keys(countBy(r.manifest, furBedKey))).toHaveLength(4);
    // Skeleton recovery rebuilds every test animal from the manifest (86 white of 174 is not the default dealing).
    const truths = phantomTestTruths(out);
    expect(truths.size).toBe(117);
  }, 60_000);

  it('rejects pair counts it cannot meet, and `pairs` with `poses`', async () => {
    expect(() => planDataset({ animals: 10, testAnimals: 2, pairs: { train: 7, test: 4 } })).toThrow(/pairs\.train: expected an integer >= 8/);
    expect(() => planDataset({ animals: 10, testAnimals: 0, pairs: { train: 40, test: 3 } })).toThrow(/pairs\.test: expected 0/);
    expect(() => planDataset({ animals: 10, testAnimals: 2, poses: 5, pairs: { train: 40, test: 10 } })).toThrow(/poses: expected absent/);
    expect(() => planDataset({ animals: 10, white: 11 })).toThrow(/white: expected an integer in \[0, 10\]/);
    await expect(synthesizeDataset({ out: join(root, 'bad'), animals: 10, testAnimals: 2, pairs: { train: 7, test: 4 } })).rejects.toThrow(/pairs\.train/);
  });
});
