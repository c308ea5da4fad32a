import { describe, it, expect } from 'vitest';
import { splitByAnimal, subsetPairs, filterPairs, seededOrder, countBy, type SplittableEntry } from '../../src/data/split.js';

/** 20 animals x 5 poses; animals 0-9 white fur, alternating beds. */
const entries: SplittableEntry[] = [];
for (let a = 0; a < 20; a++) {
  for (let p = 0; p < 5; p++) {
    entries.push({ name: `m${String(a).padStart(2, '0')}_p${p}.png`, animal: `m${a}`, fur: a < 10 ? 'white' : 'black', bed: a % 2 ? 'black' : 'white', pose: p });
  }
}

describe('splitByAnimal', () => {
  it('puts every animal on one side only, with the requested count or fraction', () => {
    for (const testAnimals of [1, 3, 0.2]) {
      const { train, test, testAnimals: ids } = splitByAnimal(entries, { testAnimals, seed: 4 });
      const tr = new Set(train.map((e) => e.animal));
      const te = new Set(test.map((e) => e.animal));
      expect([...te].filter((a) => tr.has(a))).toEqual([]);
      expect(te.size).toBe(testAnimals < 1 ? 4 : testAnimals);
      expect(ids).toEqual([...te].sort());
      expect(train.length + test.length).toBe(entries.length);
    }
  });
  it('depends on the seed and the animal ids, not on entry order; stratify balances groups', () => {
    const a = splitByAnimal(entries, { testAnimals: 4, seed: 1 }).testAnimals;
    const b = splitByAnimal([...entries].reverse(), { testAnimals: 4, seed: 1 }).testAnimals;
    expect(b).toEqual(a);
    const seeds = new Set([0, 1, 2, 3, 4, 5].map((s) => splitByAnimal(entries, { testAnimals: 4, seed: s }).testAnimals.join()));
    expect(seeds.size).toBeGreaterThan(1);
    const s = splitByAnimal(entries, { testAnimals: 4, seed: 9, stratify: (e) => e.fur! });
    expect(countBy(s.test, (e) => e.fur!)).toEqual({ white: 10, black: 10 });
  });
  it('rejects entries without animals and impossible counts', () => {
    expect(() => splitByAnimal([{ name: 'x.png' }], { testAnimals: 1 })).toThrow(/entry 0 \(x\.png\) animal/);
    expect(() => splitByAnimal(entries, { testAnimals: 20 })).toThrow(/fewer than the 20 animals/);
    expect(() => splitByAnimal(entries, { testAnimals: 1.5 })).toThrow(/testAnimals/);
  });
});

describe('subsetPairs', () => {
  it('is nested: a smaller subset is a prefix of a larger one, for any input order', () => {
    const sizes = [5, 10, 25, 50, 100];
    const subsets = sizes.map((n) => subsetPairs(entries, n, 7));
    for (let i = 0; i < sizes.length; i++) {
      expect(subsets[i]).toHaveLength(sizes[i]);
      if (i > 0) expect(subsets[i].slice(0, sizes[i - 1])).toEqual(subsets[i - 1]);
    }
    expect(subsetPairs([...entries].reverse(), 25, 7)).toEqual(subsets[2]);
    expect(subsetPairs(entries, 25, 8)).not.toEqual(subsets[2]);
    expect(seededOrder(entries, 7).slice(0, 10)).toEqual(subsets[1]);
    expect(() => subsetPairs(entries, 101, 0)).toThrow(/subsetPairs: n/);
  });
  it('byAnimal adds whole animals (all poses) and stays nested', () => {
    const s12 = subsetPairs(entries, 12, 3, { byAnimal: true });
    const s20 = subsetPairs(entries, 20, 3, { byAnimal: true });
    expect(s20.slice(0, 12)).toEqual(s12);
    const animals = countBy(s20, (e) => e.animal!);
    expect(Object.values(animals)).toEqual([5, 5, 5, 5]);
  });
});

describe('filterPairs', () => {
  it('keeps entries by fur and bed, single values or lists', () => {
    expect(filterPairs(entries, { fur: 'white', bed: 'black' })).toHaveLength(25);
    expect(filterPairs(entries, { bed: ['white', 'black'] })).toHaveLength(100);
    expect(filterPairs(entries, { animal: ['m0', 'm1'] })).toHaveLength(10);
    expect(filterPairs(entries, { split: 'test' })).toHaveLength(0);
  });
});
