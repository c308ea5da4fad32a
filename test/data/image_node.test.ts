import { describe, it, expect } from 'vitest';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import { readImage, writePng } from '../../src/data/image_node.js';
import { createImage } from '../../src/data/image.js';

const dir = mkdtempSync(join(tmpdir(), 'img-'));

describe('image I/O (sharp)', () => {
  it('round-trips an 8-bit RGB PNG exactly', async () => {
    const im = createImage(5, 3, 3);
    for (let i = 0; i < im.data.length; i++) im.data[i] = ((i * 37) % 256) / 255;
    const p = join(dir, 'rgb.png');
    await writePng(p, im);
    const back = await readImage(p);
    expect(back.channels).toBe(3);
    expect([back.width, back.height]).toEqual([5, 3]);
    for (let i = 0; i < im.data.length; i++) expect(Math.round(back.data[i] * 255)).toBe(Math.round(im.data[i] * 255));
  });
  it('reads 16-bit gray PNG divided by 65535', async () => {
    const raw = new Uint16Array([0, 1000, 65535, 30000]);
    const p = join(dir, 'g16.png');
    await sharp(raw, { raw: { width: 2, height: 2, channels: 1 } }).toColourspace('grey16').png().toFile(p);
    const im = await readImage(p);
    expect(im.channels).toBe(1);
    expect(Array.from(im.data).map((v) => Math.round(v * 65535))).toEqual([0, 1000, 65535, 30000]);
  });
  it('names the file when it is corrupt', async () => {
    const p = join(dir, 'bad.png');
    writeFileSync(p, Buffer.from('not a png at all'));
    await expect(readImage(p)).rejects.toThrow(/bad\.png: cannot read image/);
  });
});
