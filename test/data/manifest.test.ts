import { describe, it, expect } from 'vitest';
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import { parseManifestCsv, parseManifestJson, canonicalColumn } from '../../src/data/manifest.js';
import { loadPairedDataset } from '../../src/data/dataset_node.js';
import { FileFormatError } from '../../src/runtime/errors.js';

const root = mkdtempSync(join(tmpdir(), 'manifest-'));

async function writeGray(path: string, w: number, h: number, v: number): Promise<void> {
  await sharp(Buffer.alloc(w * h, v), { raw: { width: w, height: h, channels: 1 } })
    .png()
    .toFile(path);
}

describe('manifest columns', () => {
  it('accepts a_file/b_file and other aliases, any case; normalises fur and bed', () => {
    expect(['A_File', 'b-file', 'Animal ID', 'Fur Colour', 'bed_color', 'FILE', 'pose'].map(canonicalColumn)).toEqual(['a', 'b', 'animal', 'fur', 'bed', 'file', 'pose']);
    const rows = parseManifestCsv('A_File,B_File,Animal_ID,Fur_Colour,Bed_Color,Pose\nphoto/m1.png,xray/m1.png,m1,White,BLACK,4\n', 'm.csv');
    expect(rows).toEqual([{ a: 'photo/m1.png', b: 'xray/m1.png', animal: 'm1', fur: 'white', bed: 'black', pose: 4 }]);
    expect(parseManifestJson('[{"a_file":"x.png","b_file":"y.png","mouse_id":"m2","fur_color":"black"}]')).toEqual([{ a: 'x.png', b: 'y.png', animal: 'm2', fur: 'black' }]);
  });

  it('rejects an unknown colour, conflicting aliases and a header with no file column, naming the file and row', () => {
    expect(() => parseManifestCsv('file,fur\nx.png,grey\n', 'm.csv')).toThrow(/m\.csv: row 2: fur must be "white" or "black", got "grey"/);
    expect(() => parseManifestJson('[{"file":"x.png","bed":"blue"}]', 'm.json')).toThrow(/m\.json: entry 0: bed must be "white" or "black", got "blue"/);
    expect(() => parseManifestCsv('a,a_file,b\nx.png,y.png,z.png\n', 'm.csv')).toThrow(/row 2: "a_file" gives a "y\.png", but another column already gave "x\.png"/);
    expect(() => parseManifestCsv('a_file,animal\nx.png,m1\n', 'm.csv')).toThrow(/header must name a "file" column \(or "a" and "b", or "a_file" and "b_file"\), got: a_file, animal/);
    expect(() => parseManifestCsv('a_file,b_file\nx.png,\n', 'm.csv')).toThrow(FileFormatError);
  });

  it('loads separate photo and X-ray files listed by a_file/b_file, with their metadata', async () => {
    const d = join(root, 'ab');
    mkdirSync(join(d, 'photos'), { recursive: true });
    mkdirSync(join(d, 'xrays'), { recursive: true });
    await writeGray(join(d, 'photos', 'm1_p0.png'), 6, 3, 30);
    await writeGray(join(d, 'xrays', 'm1_p0.png'), 6, 3, 220);
    await writeGray(join(d, 'photos', 'm2_p0.png'), 6, 3, 40);
    await writeGray(join(d, 'xrays', 'm2_p0.png'), 6, 3, 230);
    writeFileSync(
      join(d, 'pairs.csv'),
      'a_file,b_file,animal_id,fur_colour,bed_colour,pose\nphotos/m1_p0.png,xrays/m1_p0.png,m1,white,black,0\nphotos/m2_p0.png,xrays/m2_p0.png,m2,black,black,0\n',
    );
    const ds = await loadPairedDataset(d, { manifest: 'pairs.csv', outputChannels: 1 });
    expect(ds.layout).toBe('folders');
    expect(ds.entries.map((e) => [e.name, e.animal, e.fur, e.bed, e.pose])).toEqual([
      ['photos/m1_p0.png', 'm1', 'white', 'black', 0],
      ['photos/m2_p0.png', 'm2', 'black', 'black', 0],
    ]);
    const { a, b } = await ds.load(1);
    expect([a.channels, b.channels, a.width, a.height]).toEqual([3, 1, 6, 3]);
    expect(a.data[0] * 255).toBeCloseTo(40, 3);
    expect(b.data[0] * 255).toBeCloseTo(230, 3);
    // A row naming a missing X-ray names the manifest, the row and the expected path.
    writeFileSync(join(d, 'bad.csv'), 'a_file,b_file\nphotos/m1_p0.png,xrays/gone.png\n');
    await expect(loadPairedDataset(d, { manifest: 'bad.csv' })).rejects.toThrow(/bad\.csv: line 2 names "photos\/m1_p0\.png" \/ "xrays\/gone\.png", which does not exist \(expected .*xrays\/gone\.png\)/);
  });
});
