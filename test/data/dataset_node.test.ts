import { describe, it, expect, beforeAll } from 'vitest';
import { mkdirSync, mkdtempSync, writeFileSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import { loadPairedDataset } from '../../src/data/dataset_node.js';
import { parseManifestCsv, parseManifestJson, formatManifestCsv } from '../../src/data/manifest.js';
import { FileFormatError } from '../../src/runtime/errors.js';

const root = mkdtempSync(join(tmpdir(), 'pairs-'));

/** An 8-bit RGB image whose pixel (x, y) has value f(x, y, c). */
async function writeRgb(path: string, w: number, h: number, f: (x: number, y: number, c: number) => number, format: 'png' | 'jpeg' = 'png') {
  const buf = Buffer.alloc(w * h * 3);
  for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) for (let c = 0; c < 3; c++) buf[(y * w + x) * 3 + c] = f(x, y, c);
  const img = sharp(buf, { raw: { width: w, height: h, channels: 3 } });
  await (format === 'png' ? img.png() : img.jpeg({ quality: 95 })).toFile(path);
}
/** Aligned A|B: left half 40 + 10*c, right half 200 (so halves are easy to tell apart). */
const alignedPixel = (w: number) => (x: number, _y: number, c: number) => (x < w / 2 ? 40 + 10 * c : 200);

function mk(...p: string[]): string {
  const d = join(root, ...p);
  mkdirSync(d, { recursive: true });
  return d;
}

async function expectFileError(p: Promise<unknown>, file: RegExp, msg: RegExp): Promise<FileFormatError> {
  const err = await p.then(
    () => null,
    (e) => e,
  );
  expect(err).toBeInstanceOf(FileFormatError);
  expect((err as FileFormatError).file).toMatch(file);
  expect((err as Error).message).toMatch(msg);
  return err as FileFormatError;
}

describe('loadPairedDataset', () => {
  beforeAll(async () => {
    const al = mk('aligned');
    await writeRgb(join(al, 'b.png'), 16, 6, alignedPixel(16));
    await writeRgb(join(al, 'a.jpg'), 16, 6, alignedPixel(16), 'jpeg');
    writeFileSync(join(al, 'notes.txt'), 'ignored');
  });

  it('splits aligned A|B images (PNG and JPEG) into halves, sorted by name', async () => {
    const ds = await loadPairedDataset(join(root, 'aligned'));
    expect(ds.layout).toBe('aligned');
    expect(ds.entries.map((e) => e.name)).toEqual(['a.jpg', 'b.png']);
    const { a, b } = await ds.load(1);
    expect([a.width, a.height, a.channels, b.width, b.channels]).toEqual([8, 6, 3, 8, 3]);
    expect(a.data[0] * 255).toBeCloseTo(40, 3);
    expect(a.data[2 * 48] * 255).toBeCloseTo(60, 3); // channel 2
    expect(b.data[0] * 255).toBeCloseTo(200, 3);
    const j = await ds.load(0); // JPEG: close, not exact
    expect(Math.abs(j.b.data[10] * 255 - 200)).toBeLessThan(6);
    // outputChannels 1: luma of a gray-valued half is the same value; BtoA swaps.
    const g = await loadPairedDataset(join(root, 'aligned'), { outputChannels: 1, direction: 'BtoA' });
    const s = await g.load(1);
    expect(s.b.channels).toBe(1);
    expect(s.b.data[0] * 255).toBeCloseTo(0.299 * 40 + 0.587 * 50 + 0.114 * 60, 3);
    expect(s.a.data[0] * 255).toBeCloseTo(200, 3);
  });

  it('picks a phase subfolder, or lists train/ and test/ with their split', async () => {
    const d = mk('phased');
    await writeRgb(join(mk('phased', 'train'), 'x.png'), 8, 4, alignedPixel(8));
    await writeRgb(join(mk('phased', 'test'), 'y.png'), 8, 4, alignedPixel(8));
    const tr = await loadPairedDataset(d, { phase: 'test' });
    expect(tr.entries.map((e) => e.name)).toEqual(['test/y.png']);
    const all = await loadPairedDataset(d);
    expect(all.entries.map((e) => [e.name, e.split])).toEqual([
      ['train/x.png', 'train'],
      ['test/y.png', 'test'],
    ]);
    await expectFileError(loadPairedDataset(d, { phase: 'val' }), /phased$/, /no "val" subfolder/);
  });

  it('pairs A/ and B/ folders by file name (extension may differ)', async () => {
    const d = mk('folders');
    mk('folders', 'A');
    mk('folders', 'B');
    await writeRgb(join(d, 'A', 'p1.png'), 5, 4, () => 10);
    await writeRgb(join(d, 'B', 'p1.png'), 5, 4, () => 250);
    await writeRgb(join(d, 'A', 'p2.png'), 5, 4, () => 20);
    await writeRgb(join(d, 'B', 'p2.jpg'), 5, 4, () => 240, 'jpeg');
    const ds = await loadPairedDataset(d, { outputChannels: 1 });
    expect(ds.layout).toBe('folders');
    expect(ds.entries.map((e) => e.name)).toEqual(['A/p1.png', 'A/p2.png']);
    expect(ds.entries[1].bPath).toMatch(/p2\.jpg$/);
    const { a, b } = await ds.load(0);
    expect([a.channels, b.channels, b.width, b.height]).toEqual([3, 1, 5, 4]);
    expect(b.data[0] * 255).toBeCloseTo(250, 3);
  });

  it('reads a manifest CSV (found in the parent of a phase folder) with animal, fur, bed, pose', async () => {
    const d = mk('withmanifest');
    await writeRgb(join(mk('withmanifest', 'train'), 'm0_p0.png'), 8, 4, alignedPixel(8));
    await writeRgb(join(d, 'train', 'm0_p1.png'), 8, 4, alignedPixel(8));
    await writeRgb(join(mk('withmanifest', 'test'), 'm1_p0.png'), 8, 4, alignedPixel(8));
    writeFileSync(
      join(d, 'manifest.csv'),
      formatManifestCsv([
        { file: 'train/m0_p0.png', split: 'train', animal: 'm0', fur: 'white', bed: 'black', pose: 0 },
        { file: 'train/m0_p1.png', split: 'train', animal: 'm0', fur: 'white', bed: 'black', pose: 1 },
        { file: 'test/m1_p0.png', split: 'test', animal: 'm1', fur: 'black', bed: 'white', pose: 0 },
      ]),
    );
    const all = await loadPairedDataset(d);
    expect(all.manifest).toMatch(/manifest\.csv$/);
    expect(all.entries).toHaveLength(3);
    expect(all.entries[2]).toMatchObject({ name: 'test/m1_p0.png', animal: 'm1', fur: 'black', bed: 'white', pose: 0, split: 'test' });
    const train = await loadPairedDataset(join(d, 'train'));
    expect(train.entries.map((e) => e.animal + '/' + e.pose)).toEqual(['m0/0', 'm0/1']);
    const viaPhase = await loadPairedDataset(d, { phase: 'train' });
    expect(viaPhase.entries).toHaveLength(2);
  });

  it('parses CSV quoting and JSON manifests, and rejects malformed ones naming the file', () => {
    const rows = parseManifestCsv('animal,file,pose\r\n"m,1","a ""b"".png",3\r\n');
    expect(rows).toEqual([{ animal: 'm,1', file: 'a "b".png', pose: 3 }]);
    expect(parseManifestJson('{"entries":[{"file":"x.png","pose":"2"}]}')).toEqual([{ file: 'x.png', pose: 2 }]);
    expect(() => parseManifestCsv('animal,pose\nm0,1\n', 'm.csv')).toThrow(/m\.csv: header must name a "file" column/);
    expect(() => parseManifestCsv('file,pose\nx.png\n', 'm.csv')).toThrow(/row 2: expected 2 fields/);
    expect(() => parseManifestJson('{"x":1}', 'm.json')).toThrow(/m\.json: expected an array/);
  });

  it('names a corrupt file; skipBad skips and lists it', async () => {
    const d = mk('corrupt');
    await writeRgb(join(d, 'good.png'), 8, 4, alignedPixel(8));
    writeFileSync(join(d, 'broken.png'), Buffer.from('this is not a PNG'));
    const good = readFileSync(join(d, 'good.png'));
    writeFileSync(join(d, 'truncated.png'), good.subarray(0, Math.floor(good.length * 0.6)));
    await expectFileError(loadPairedDataset(d), /broken\.png$/, /broken\.png: cannot read image/);
    const ds = await loadPairedDataset(d, { skipBad: true });
    expect(ds.entries.map((e) => e.name)).toEqual(['good.png']);
    expect(ds.skipped.map((s) => s.file.split('/').pop()).sort()).toEqual(['broken.png', 'truncated.png']);
    expect(ds.skipped[0].reason).toMatch(/cannot read image/);
  });

  it('rejects A/B size mismatch, an A without B, odd aligned widths', async () => {
    const d = mk('mismatch');
    mk('mismatch', 'A');
    mk('mismatch', 'B');
    await writeRgb(join(d, 'A', 'p.png'), 6, 4, () => 1);
    await writeRgb(join(d, 'B', 'p.png'), 6, 5, () => 1);
    await expectFileError(loadPairedDataset(d), /B\/p\.png$/, /B size 6x5 does not match its A partner .*A\/p\.png \(6x4\)/);
    const o = mk('orphan');
    mk('orphan', 'A');
    mk('orphan', 'B');
    await writeRgb(join(o, 'A', 'p.png'), 6, 4, () => 1);
    await writeRgb(join(o, 'A', 'q.png'), 6, 4, () => 1);
    await writeRgb(join(o, 'B', 'p.png'), 6, 4, () => 1);
    await expectFileError(loadPairedDataset(o), /A\/q\.png$/, /no B partner: expected .*B\/q\.\*/);
    const skip = await loadPairedDataset(o, { skipBad: true });
    expect(skip.entries).toHaveLength(1);
    expect(skip.skipped[0].file).toMatch(/A\/q\.png$/);
    const odd = mk('odd');
    await writeRgb(join(odd, 'x.png'), 7, 4, () => 1);
    await expectFileError(loadPairedDataset(odd), /x\.png$/, /even width .* got 7x4/);
  });

  it('rejects a manifest naming a missing file, an empty folder, a missing folder', async () => {
    const d = mk('missing');
    await writeRgb(join(d, 'here.png'), 8, 4, alignedPixel(8));
    writeFileSync(join(d, 'manifest.json'), JSON.stringify({ entries: [{ file: 'here.png' }, { file: 'gone.png', animal: 'm3' }] }));
    await expectFileError(loadPairedDataset(d), /manifest\.json$/, /entry 1 names "gone\.png", which does not exist/);
    const ok = await loadPairedDataset(d, { skipBad: true });
    expect(ok.entries.map((e) => e.name)).toEqual(['here.png']);
    expect(ok.skipped[0].reason).toMatch(/gone\.png/);
    const empty = mk('empty');
    writeFileSync(join(empty, 'readme.txt'), 'no images');
    await expectFileError(loadPairedDataset(empty), /empty$/, /no images found \(looked for \.png/);
    await expectFileError(loadPairedDataset(join(root, 'nope')), /nope$/, /no such folder/);
  });
});
