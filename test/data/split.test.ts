import { describe, it, expect } from 'vitest';
import { splitByAnimal, subsetPairs, subsetOrder, seededOrder, filterPairs, countBy, furBedKey } from '../../src/data/split.js';
import { Rng } from '../../src/runtime/random.js';
import { ShapeError } from '../../src/runtime/errors.js';

interface E {
  name: string;
  animal: string;
  fur: string;
  bed: string;
  pose: number;
}

/**
 * The seed paper's dataset shape: 86 white and 88 black mice, 940 pairs (5 or 6 per animal: 5 poses,
 * some repeated), white and black beds.
 */
function paperLike(): E[] {
  const rng = new Rng(9);
  const out: E[] = [];
  const extra = new Set(rng.shuffle(Array.from({ length: 174 }, (_, i) => i)).slice(0, 940 - 5 * 174));
  for (let i = 0; i < 174; i++) {
    const fur = i < 86 ? 'white' : 'black';
    const bed = i % 2 === 0 ? 'white' : 'black';
    const n = extra.has(i) ? 6 : 5;
    for (let p = 0; p < n; p++) out.push({ name: `m${i}_p${p}.png`, animal: `m${i}`, fur, bed, pose: p % 5 });
  }
  return out;
}

const animalsOf = (l: readonly E[]) => new Set(l.map((e) => e.animal));

describe('splitByAnimal', () => {
  it('reproduces the paper split shape: 154/20 animals, 10 white + 10 black held out, no animal in both', () => {
    const all = paperLike();
    expect(all).toHaveLength(940);
    const s = splitByAnimal(all, { testAnimals: 20, seed: 1, stratify: (e) => e.fur! });
    expect(animalsOf(s.train).size).toBe(154);
    expect(animalsOf(s.test).size).toBe(20);
    expect(s.train.length + s.test.length).toBe(940);
    for (const a of animalsOf(s.test)) expect(animalsOf(s.train).has(a)).toBe(false);
    expect(s.testAnimals).toEqual([...animalsOf(s.test)].sort());
    expect(countBy(s.testAnimals, (a) => (Number(a.slice(1)) < 86 ? 'white' : 'black'))).toEqual({ white: 10, black: 10 });
    // Every pose of a test animal is in the test set.
    for (const a of s.testAnimals) expect(s.test.filter((e) => e.animal === a).length).toBe(all.filter((e) => e.animal === a).length);
  });

  it('is deterministic in the seed, independent of entry order, and takes fractions', () => {
    const all = paperLike();
    const a = splitByAnimal(all, { testAnimals: 20, seed: 7 });
    const b = splitByAnimal(new Rng(3).shuffle([...all]), { testAnimals: 20, seed: 7 });
    expect(b.testAnimals).toEqual(a.testAnimals);
    expect(splitByAnimal(all, { testAnimals: 20, seed: 8 }).testAnimals).not.toEqual(a.testAnimals);
    expect(splitByAnimal(all, { testAnimals: 0.115, seed: 7 }).testAnimals).toHaveLength(20); // round(0.115 * 174)
    // Entries keep their input order on each side.
    expect(a.train.map((e) => all.indexOf(e))).toEqual([...a.train.map((e) => all.indexOf(e))].sort((x, y) => x - y));
  });

  it('rejects bad requests and entries without an animal', () => {
    const all = paperLike().slice(0, 10); // 2 animals
    expect(() => splitByAnimal(all, { testAnimals: 2 })).toThrow(ShapeError);
    expect(() => splitByAnimal(all, { testAnimals: 1.5 })).toThrow(/testAnimals: expected an integer >= 1 or a fraction/);
    expect(() => splitByAnimal([{ name: 'x.png' }], { testAnimals: 1 })).toThrow(/entry 0 \(x\.png\) animal/);
  });
});

describe('subsetPairs', () => {
  it('is nested: each smaller subset is a prefix of the larger one', () => {
    const all = paperLike();
    const sizes = [0, 50, 100, 400, 823, 940];
    const subsets = sizes.map((n) => subsetPairs(all, n, 5));
    subsets.forEach((s, i) => expect(s).toHaveLength(sizes[i]));
    for (let i = 1; i < sizes.length; i++) expect(subsets[i].slice(0, sizes[i - 1])).toEqual(subsets[i - 1]);
    expect(new Set(subsets[5]).size).toBe(940);
    expect(subsetOrder(all, 5)).toEqual(seededOrder(all, 5));
    // Same seed, same subset whatever the input order; another seed, another subset.
    expect(subsetPairs(new Rng(1).shuffle([...all]), 100, 5)).toEqual(subsets[2]);
    expect(subsetPairs(all, 100, 6)).not.toEqual(subsets[2]);
    expect(() => subsetPairs(all, 941, 5)).toThrow(/n: expected an integer in \[0, 940\]/);
  });

  it('byAnimal adds whole animals and stays nested', () => {
    const all = paperLike();
    const s200 = subsetPairs(all, 200, 2, { byAnimal: true });
    const s300 = subsetPairs(all, 300, 2, { byAnimal: true });
    expect(s300.slice(0, 200)).toEqual(s200);
    // All animals but the last one are complete.
    const animals = [...new Set(s200.map((e) => e.animal))];
    for (const a of animals.slice(0, -1)) expect(s200.filter((e) => e.animal === a).length).toBe(all.filter((e) => e.animal === a).length);
    expect(animals.length).toBeLessThanOrEqual(41);
  });

  it('stratify keeps fur x bed proportions in every prefix, still nested', () => {
    const all = paperLike();
    const total = countBy(all, furBedKey);
    const order = subsetOrder(all, 3, { stratify: true });
    expect(order).toHaveLength(940);
    for (const n of [4, 40, 100, 333, 823]) {
      const s = subsetPairs(all, n, 3, { stratify: true });
      expect(s).toEqual(order.slice(0, n));
      const c = countBy(s, furBedKey);
      for (const k of Object.keys(total)) expect(Math.abs((c[k] ?? 0) - (n * total[k]) / 940), `${k} in ${n}`).toBeLessThanOrEqual(1);
    }
    // Stratified by animal too: whole animals, balanced over fur.
    const byAnimal = subsetPairs(all, 100, 3, { byAnimal: true, stratify: (e) => e.fur! });
    const furs = countBy([...new Map(byAnimal.map((e) => [e.animal, e.fur])).values()], (f) => f);
    expect(Math.abs(furs.white - furs.black)).toBeLessThanOrEqual(1);
  });
});

describe('filterPairs', () => {
  it('keeps entries matching every field', () => {
    const all = paperLike();
    const wb = filterPairs(all, { fur: 'white', bed: 'black' });
    expect(wb.length).toBeGreaterThan(0);
    expect(wb.every((e) => e.fur === 'white' && e.bed === 'black')).toBe(true);
    expect(filterPairs(all, { bed: ['white', 'black'] })).toHaveLength(940);
    expect(filterPairs(all, { animal: ['m3', 'm4'] })).toEqual(all.filter((e) => e.animal === 'm3' || e.animal === 'm4'));
    expect(filterPairs(all, { split: 'train' })).toEqual([]); // no split field: nothing matches
  });
});
