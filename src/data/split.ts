/**
 * Dataset splits and subsets for the seed paper's experiments. Browser-safe (works on any entries
 * with a `name` and, for animal splits, an `animal`).
 *  - splitByAnimal: train/test with no animal in both (the paper held out 20 of 174 animals);
 *  - subsetPairs: NESTED seeded subsets for dataset-size sweeps: every entry gets a place in one seeded
 *    order (fixed by the seed and the entry names, not by n), and a subset of size n is the first n of
 *    that order. So the 100-pair subset contains the 50-pair one, and results along a sweep differ only
 *    by the pairs added, not by a reshuffle;
 *  - filterPairs: keep entries by fur, bed, split or animal (transfer-learning experiments).
 */
import { Rng, mixDataSeed } from '../runtime/random.js';
import { ShapeError } from '../runtime/errors.js';

/** What the split helpers need of an entry ({@link PairEntry} and {@link ManifestEntry} both fit). */
export interface SplittableEntry {
  name?: string;
  file?: string;
  animal?: string;
  fur?: string;
  bed?: string;
  split?: string;
  pose?: number;
}

export interface SplitByAnimalOptions {
  /** Number of test animals (integer >= 1), or a fraction of the animals in (0, 1) (rounded, at least 1). */
  testAnimals: number;
  seed?: number;
  /**
   * Pick the test animals round-robin over these groups (e.g. `(e) => e.fur` for as many white as black
   * test mice, as in the paper's 10 + 10), so every group is represented when it can be.
   */
  stratify?: (e: SplittableEntry) => string;
}

function keyOf(e: SplittableEntry): string {
  return e.name ?? e.file ?? '';
}

/**
 * Split by animal: every animal's pairs go to exactly one side. The chosen test animals depend only on
 * the seed and the set of animal ids (not on entry order). Entries keep their input order on each side.
 */
export function splitByAnimal<T extends SplittableEntry>(entries: readonly T[], opts: SplitByAnimalOptions): { train: T[]; test: T[]; testAnimals: string[] } {
  const op = 'splitByAnimal';
  const groupOf = new Map<string, string>();
  entries.forEach((e, i) => {
    if (e.animal === undefined || e.animal === '') throw new ShapeError(op, `entry ${i} (${keyOf(e)}) animal`, 'an animal id (from a manifest)', 'none');
    if (!groupOf.has(e.animal)) groupOf.set(e.animal, opts.stratify ? opts.stratify(e) : '');
  });
  const animals = [...groupOf.keys()].sort();
  const t = opts.testAnimals;
  let count: number;
  if (t > 0 && t < 1) count = Math.max(1, Math.round(t * animals.length));
  else if (Number.isInteger(t) && t >= 1) count = t;
  else throw new ShapeError(op, 'testAnimals', 'an integer >= 1 or a fraction in (0, 1)', t);
  if (count >= animals.length) throw new ShapeError(op, 'testAnimals', `fewer than the ${animals.length} animals`, count);
  const rng = new Rng(mixDataSeed(opts.seed ?? 0, 0xa417));
  const groups = new Map<string, string[]>();
  for (const a of animals) {
    const g = groupOf.get(a)!;
    if (!groups.has(g)) groups.set(g, []);
    groups.get(g)!.push(a);
  }
  const lists = [...groups.keys()].sort().map((g) => rng.shuffle(groups.get(g)!));
  rng.shuffle(lists);
  const test = new Set<string>();
  for (let round = 0; test.size < count; round++) {
    for (const l of lists) if (test.size < count && round < l.length) test.add(l[round]);
  }
  return {
    train: entries.filter((e) => !test.has(e.animal!)),
    test: entries.filter((e) => test.has(e.animal!)),
    testAnimals: [...test].sort(),
  };
}

/**
 * Entries sorted by name, then shuffled with the seed: the base order of {@link subsetOrder}.
 * Independent of the input order and of any subset size.
 */
export function seededOrder<T extends SplittableEntry>(entries: readonly T[], seed: number): T[] {
  const sorted = [...entries].sort((a, b) => (keyOf(a) < keyOf(b) ? -1 : keyOf(a) > keyOf(b) ? 1 : 0));
  return new Rng(mixDataSeed(seed, 0x5b5e7)).shuffle(sorted);
}

/**
 * A deterministic subset of n entries for dataset-size studies.
 *
 * NESTED: for one seed (and the same options), the subset of size n1 < n2 is a prefix of the subset of
 * size n2: every size is a prefix of one order, {@link subsetOrder}, fixed by the seed and the entry
 * names and independent of n. So a sweep over sizes (e.g. 100, 200, ..., 823 pairs) only ever adds
 * pairs, and differences along the sweep come from the added pairs rather than from a reshuffle.
 *
 *  - `byAnimal`: whole animals are added in a seeded order (all their poses at once) and the last
 *    animal is cut to reach exactly n; still nested.
 *  - `stratify`: proportional stratified sampling that stays nested. `true` stratifies by fur x bed;
 *    a function gives any other group key. Each unit (entry, or animal with `byAnimal`) at rank r of
 *    its group of size N_g gets the key (r + 0.5) / N_g and the order is sorted by that key, so every
 *    prefix holds about n * N_g / N of each group (within one unit of it): a 40-pair subset of a
 *    balanced fur x bed set has 10 of each combination.
 */
export function subsetPairs<T extends SplittableEntry>(entries: readonly T[], n: number, seed = 0, opts: SubsetOptions = {}): T[] {
  if (!Number.isInteger(n) || n < 0 || n > entries.length) throw new ShapeError('subsetPairs', 'n', `an integer in [0, ${entries.length}]`, n);
  return subsetOrder(entries, seed, opts).slice(0, n);
}

export interface SubsetOptions {
  /** Add whole animals (all their poses) at a time. */
  byAnimal?: boolean;
  /** Keep group proportions in every prefix: `true` = fur x bed, or a group key per entry. */
  stratify?: boolean | ((e: SplittableEntry) => string);
}

/** `fur/bed`, the default stratification key (missing values read as "?"). */
export function furBedKey(e: SplittableEntry): string {
  return `${e.fur ?? '?'}/${e.bed ?? '?'}`;
}

/**
 * The full order behind {@link subsetPairs}: `subsetPairs(entries, n, seed, opts)` is its first n
 * entries. Depends only on the seed, the options and the set of entries (not their input order).
 */
export function subsetOrder<T extends SplittableEntry>(entries: readonly T[], seed = 0, opts: SubsetOptions = {}): T[] {
  const order = seededOrder(entries, seed);
  // Units: single entries, or all entries of one animal (in the seeded order of their first entry).
  let units: T[][];
  if (opts.byAnimal) {
    const byAnimal = new Map<string, T[]>();
    for (const e of order) {
      const a = e.animal ?? `\u0000${keyOf(e)}`; // entries without an animal act as their own animal
      if (!byAnimal.has(a)) byAnimal.set(a, []);
      byAnimal.get(a)!.push(e);
    }
    units = [...byAnimal.values()];
  } else units = order.map((e) => [e]);
  if (opts.stratify) {
    const key = opts.stratify === true ? furBedKey : opts.stratify;
    const groups = new Map<string, number[]>();
    units.forEach((u, i) => {
      const g = key(u[0]);
      if (!groups.has(g)) groups.set(g, []);
      groups.get(g)!.push(i);
    });
    // Ties (equal quota keys in groups of equal size) are broken by a seeded group order.
    const names = new Rng(mixDataSeed(seed, 0x57a7)).shuffle([...groups.keys()].sort());
    const ranked: { unit: number; q: number; g: number }[] = [];
    names.forEach((g, gi) => {
      const list = groups.get(g)!;
      list.forEach((unit, r) => ranked.push({ unit, q: (r + 0.5) / list.length, g: gi }));
    });
    ranked.sort((x, y) => x.q - y.q || x.g - y.g);
    units = ranked.map((r) => units[r.unit]);
  }
  return units.flat();
}

export interface PairFilter {
  fur?: string | readonly string[];
  bed?: string | readonly string[];
  split?: string | readonly string[];
  animal?: string | readonly string[];
}

/** Keep entries matching every given field (a value or a list of accepted values). */
export function filterPairs<T extends SplittableEntry>(entries: readonly T[], filter: PairFilter): T[] {
  const ok = (v: string | undefined, want: string | readonly string[] | undefined) =>
    want === undefined || (v !== undefined && (typeof want === 'string' ? v === want : want.includes(v)));
  return entries.filter((e) => ok(e.fur, filter.fur) && ok(e.bed, filter.bed) && ok(e.split, filter.split) && ok(e.animal, filter.animal));
}

/** Count entries per value of `key` (e.g. `countBy(entries, (e) => `${e.fur}/${e.bed}`)`). */
export function countBy<T>(entries: readonly T[], key: (e: T) => string): Record<string, number> {
  const out: Record<string, number> = {};
  for (const e of entries) {
    const k = key(e);
    out[k] = (out[k] ?? 0) + 1;
  }
  return out;
}
