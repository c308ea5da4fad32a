import { describe, it, expect } from 'vitest';
import { mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import { testContext } from '../helpers/gpu.js';
import { copiesPerFile, expandDataset } from '../../src/data/augment_node.js';
import { readImage } from '../../src/data/image_node.js';

const EXAMPLE = readFileSync(new URL('../../docs/augment-example.json', import.meta.url), 'utf8');

/** Aligned A|B PNGs (A: gradient photo, B: a bright square on black), 2w x h, RGB. */
async function makeDataset(n: number, w = 20, h = 14): Promise<string> {
  const dir = mkdtempSync(join(tmpdir(), 'aug-in-'));
  for (let i = 0; i < n; i++) {
    const px = Buffer.alloc(2 * w * h * 3);
    for (let y = 0; y < h; y++) {
      for (let x = 0; x < 2 * w; x++) {
        for (let c = 0; c < 3; c++) {
          const inB = x >= w;
          const bx = x - w;
          const v = inB ? (bx >= 6 && bx < 10 && y >= 4 && y < 8 ? 255 : 0) : (x * 11 + y * 7 + c * 50 + i * 30) % 256;
          px[(y * 2 * w + x) * 3 + c] = v;
        }
      }
    }
    await sharp(px, { raw: { width: 2 * w, height: h, channels: 3 } }).png().toFile(join(dir, `mouse_${i}.png`));
  }
  writeFileSync(join(dir, 'notes.txt'), 'not an image');
  return dir;
}

describe('offline dataset expansion', async () => {
  const ctx = await testContext();

  it('writes the originals plus k augmented copies per pair, same size, aligned format', async () => {
    const inDir = await makeDataset(3);
    const outDir = mkdtempSync(join(tmpdir(), 'aug-out-'));
    const r = await expandDataset({ inDir, outDir, copies: 2, spec: EXAMPLE, seed: 1, ctx });
    expect(r).toMatchObject({ pairs: 3, augmented: 6 });
    const names = readdirSync(outDir).sort();
    expect(names).toEqual(['mouse_0.png', 'mouse_0_aug1.png', 'mouse_0_aug2.png', 'mouse_1.png', 'mouse_1_aug1.png', 'mouse_1_aug2.png', 'mouse_2.png', 'mouse_2_aug1.png', 'mouse_2_aug2.png']);
    for (const n of names) {
      const im = await readImage(join(outDir, n));
      expect([im.width, im.height, im.channels]).toEqual([40, 14, 3]);
    }
    // Originals are copied byte for byte.
    expect(readFileSync(join(outDir, 'mouse_1.png'))).toEqual(readFileSync(join(inDir, 'mouse_1.png')));
    // Same seed: same files; the GPU and the CPU reference agree to within one 8-bit level.
    const again = mkdtempSync(join(tmpdir(), 'aug-out-'));
    await expandDataset({ inDir, outDir: again, copies: 2, spec: EXAMPLE, seed: 1, ctx });
    const cpu = mkdtempSync(join(tmpdir(), 'aug-out-'));
    await expandDataset({ inDir, outDir: cpu, copies: 2, spec: EXAMPLE, seed: 1, backend: 'cpu' });
    for (const n of names) {
      const [a, b, c] = await Promise.all([outDir, again, cpu].map((d) => readImage(join(d, n))));
      expect(b.data).toEqual(a.data);
      let worst = 0;
      for (let i = 0; i < a.data.length; i++) worst = Math.max(worst, Math.abs(a.data[i] - c.data[i]));
      expect(worst).toBeLessThanOrEqual(1 / 255 + 1e-6);
    }
  });

  it('RandomResizedCrop changes the written size; total spreads copies exactly (823 -> 5175)', async () => {
    const inDir = await makeDataset(2);
    const outDir = mkdtempSync(join(tmpdir(), 'aug-out-'));
    const spec = { transforms: [{ name: 'HorizontalFlip' }, { name: 'RandomResizedCrop', height: 10, width: 12 }] };
    const r = await expandDataset({ inDir, outDir, total: 5, spec, seed: 3, ctx });
    expect(r).toMatchObject({ pairs: 2, augmented: 3 });
    expect(readdirSync(outDir).sort()).toEqual(['mouse_0.png', 'mouse_0_aug1.png', 'mouse_0_aug2.png', 'mouse_1.png', 'mouse_1_aug1.png']);
    const im = await readImage(join(outDir, 'mouse_0_aug2.png'));
    expect([im.width, im.height]).toEqual([24, 10]);
    const per = copiesPerFile(823, { total: 5175 });
    expect(per.reduce((a, b) => a + b) + 823).toBe(5175);
    expect(per.filter((k) => k === 6).length).toBe(237);
    expect(copiesPerFile(823, { copies: 5 }).reduce((a, b) => a + b) + 823).toBe(4938);
  });

  it('rejects bad arguments', async () => {
    const inDir = await makeDataset(1);
    await expect(expandDataset({ inDir, outDir: inDir, copies: 1, spec: EXAMPLE, seed: 1, ctx })).rejects.toThrow(/outDir: expected a folder other than inDir/);
    await expect(expandDataset({ inDir, outDir: inDir + '-x', spec: EXAMPLE, seed: 1, ctx })).rejects.toThrow(/copies \/ total: expected exactly one of them/);
    await expect(expandDataset({ inDir, outDir: inDir + '-y', copies: 1, spec: '[{"name":"Blur"}]', seed: 1, ctx })).rejects.toThrow(/got "Blur"/);
  });
});
