/**
 * Training/test pairs for the trainer and the study from a dataset folder (Node): the dataset loader's
 * entries, optionally filtered by manifest fields (bed or fur colour, for transfer experiments) and cut
 * to a seeded, nested subset (dataset-size studies), each loading lazily.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { loadPairedDataset, type PairEntry } from '../data/dataset_node.js';
import { filterPairs, subsetPairs, type PairFilter } from '../data/split.js';
import { Pix2PixError } from '../runtime/errors.js';
import type { PairSource } from './trainer_node.js';

export type { PairFilter };

export interface OpenedPair extends PairSource {
  /** The aligned A|B file, when the dataset is in that format (offline augmentation copies it). */
  path?: string;
  entry: PairEntry;
}

export interface OpenPairsOptions {
  /** 'train' / 'test' subfolder (when the folder has them), or null for the folder itself. */
  phase: 'train' | 'test' | null;
  inputChannels: 1 | 3;
  outputChannels: 1 | 3;
  filter?: PairFilter;
  maxPairs?: number;
  seed: number;
  /** Keep file order (test sets); otherwise subsets follow the seeded order. */
  ordered?: boolean;
}

export async function openPairs(dir: string, o: OpenPairsOptions): Promise<OpenedPair[]> {
  const ds = await loadPairedDataset(dir, { phase: o.phase ?? undefined, inputChannels: o.inputChannels, outputChannels: o.outputChannels });
  // Keep each entry's index in the dataset: that is what `load` takes.
  let entries = ds.entries.map((e, index) => ({ ...e, entry: e, index }));
  if (o.filter) {
    entries = filterPairs(entries, o.filter);
    if (entries.length === 0) throw new Pix2PixError(dir, `no pairs match the filter ${JSON.stringify(o.filter)} (is there a manifest with bed/fur fields?)`);
  }
  if (o.maxPairs !== undefined) {
    if (o.maxPairs > entries.length) throw new Pix2PixError(dir, `asked for ${o.maxPairs} pairs, but only ${entries.length} are available${o.filter ? ` with filter ${JSON.stringify(o.filter)}` : ''}`);
    entries = o.ordered ? entries.slice(0, o.maxPairs) : subsetPairs(entries, o.maxPairs, o.seed);
  }
  return entries.map(({ entry, index }) => ({
    name: entry.name,
    path: entry.path,
    entry,
    load: () => ds.load(index),
  }));
}

/** Training pairs for the `train` command. */
export async function openTrainingPairs(dir: string, o: { phase: 'train'; inputChannels?: 1 | 3; outputChannels?: 1 | 3; maxPairs?: number; seed: number }): Promise<OpenedPair[]> {
  return openPairs(dir, { phase: existsSync(join(dir, 'train')) ? 'train' : null, inputChannels: o.inputChannels ?? 3, outputChannels: o.outputChannels ?? 3, maxPairs: o.maxPairs, seed: o.seed });
}
