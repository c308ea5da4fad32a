import { describe, it, expect, beforeAll } from 'vitest';
import { mkdtempSync, readFileSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import { synthesizeDataset, defaultTestAnimals, type SynthesizeResult } from '../../src/data/synth_node.js';
import { loadPairedDataset } from '../../src/data/dataset.js';
import { parseManifestCsv } from '../../src/data/manifest.js';

const tmp = mkdtempSync(join(tmpdir(), 'synth-'));
const W = 64;
const H = 32;

function filesOf(dir: string): Map<string, Buffer> {
  const out = new Map<string, Buffer>();
  for (const s of ['train', 'test']) for (const f of readdirSync(join(dir, s)).sort()) out.set(`${s}/${f}`, readFileSync(join(dir, s, f)));
  out.set('manifest.csv', readFileSync(join(dir, 'manifest.csv')));
  return out;
}

describe('synthesizeDataset', () => {
  let r: SynthesizeResult;
  const out = join(tmp, 'a');
  const progress: number[] = [];
  beforeAll(async () => {
    r = await synthesizeDataset({ out, animals: 9, poses: 5, width: W, height: H, seed: 1, onProgress: (d, t) => progress.push(d / t) });
  });

  it('writes aligned 2w x h RGB PNGs into train/ and test/, split by animal, with a manifest', async () => {
    expect(defaultTestAnimals(174)).toBe(20);
    expect(defaultTestAnimals(9)).toBe(1);
    expect(defaultTestAnimals(2)).toBe(1);
    expect(defaultTestAnimals(1)).toBe(0);
    expect([r.train, r.test]).toEqual([40, 5]);
    expect(progress.at(-1)).toBe(1);
    expect(readdirSync(join(out, 'train'))).toHaveLength(40);
    expect(readdirSync(join(out, 'test'))).toHaveLength(5);
    const meta = await sharp(join(out, r.manifest[0].file!)).metadata();
    expect([meta.width, meta.height, meta.channels, meta.format]).toEqual([2 * W, H, 3, 'png']);
    const csv = parseManifestCsv(readFileSync(join(out, 'manifest.csv'), 'utf8'));
    expect(csv).toEqual(r.manifest);
    const json = JSON.parse(readFileSync(join(out, 'manifest.json'), 'utf8'));
    expect(json.entries).toEqual(r.manifest);
    // No animal in both splits; every file's folder is its split; 5 poses per animal.
    const splitOf = new Map<string, string>();
    for (const e of r.manifest) {
      expect(e.file!.startsWith(`${e.split}/`)).toBe(true);
      expect(splitOf.get(e.animal!) ?? e.split).toBe(e.split);
      splitOf.set(e.animal!, e.split!);
    }
    expect(splitOf.size).toBe(9);
    expect(new Set(r.manifest.map((e) => `${e.animal}/${e.pose}`)).size).toBe(45);
    // All four fur x bed combinations (animals >= 8).
    expect(new Set(r.manifest.map((e) => `${e.fur}/${e.bed}`))).toEqual(new Set(['white/white', 'white/black', 'black/white', 'black/black']));
  });

  it('loads back through loadPairedDataset with the manifest metadata', async () => {
    const ds = await loadPairedDataset(out, { phase: 'test', outputChannels: 1 });
    expect(ds.entries).toHaveLength(5);
    expect(ds.entries.every((e) => e.split === 'test' && e.animal && e.fur && e.bed && e.pose !== undefined)).toBe(true);
    const { a, b } = await ds.load(0);
    expect([a.width, a.height, a.channels, b.width, b.channels]).toEqual([W, H, 3, W, 1]);
  });

  it('same seed gives identical bytes; another seed gives other images', async () => {
    const again = join(tmp, 'b');
    await synthesizeDataset({ out: again, animals: 9, poses: 5, width: W, height: H, seed: 1 });
    const x = filesOf(out);
    const y = filesOf(again);
    expect([...y.keys()]).toEqual([...x.keys()]);
    for (const [k, v] of x) expect(Buffer.compare(v, y.get(k)!), k).toBe(0);
    const other = join(tmp, 'c');
    const r2 = await synthesizeDataset({ out: other, animals: 4, poses: 2, width: W, height: H, seed: 2, testAnimals: 2 });
    expect([r2.train, r2.test]).toEqual([4, 4]);
    const z = filesOf(other);
    const name = [...z.keys()].find((k) => x.has(k) && k.endsWith('.png'));
    if (name) expect(Buffer.compare(z.get(name)!, x.get(name)!)).not.toBe(0);
    // Compare pixel content of pair m000_p0 wherever it landed.
    const f1 = r.manifest.find((e) => e.animal === 'm000' && e.pose === 0)!.file!;
    const f2 = r2.manifest.find((e) => e.animal === 'm000' && e.pose === 0)!.file!;
    expect(Buffer.compare(readFileSync(join(out, f1)), readFileSync(join(other, f2)))).not.toBe(0);
  });

  it('rejects bad counts', async () => {
    await expect(synthesizeDataset({ out: join(tmp, 'd'), animals: 3, testAnimals: 3, width: W, height: H })).rejects.toThrow(/testAnimals: expected an integer in \[0, 2\], got 3/);
    await expect(synthesizeDataset({ out: join(tmp, 'd'), animals: 0 })).rejects.toThrow(/animals/);
  });
});
