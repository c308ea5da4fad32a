import { describe, it, expect } from 'vitest';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import { readImage, readImageInfo, writePng } from '../../src/data/image_node.js';
import { createImage } from '../../src/data/image.js';
import { FileFormatError } from '../../src/runtime/errors.js';
import { crc32 } from '../../src/io/zip.js';
import { deflateSync } from 'node:zlib';

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

// ------------------------------------------------------------------ hostile and high-precision images

/** A big-endian-free little TIFF: one strip, uncompressed, `bits` per sample, SampleFormat `format` (1 uint, 3 float). */
function tiff(width: number, height: number, samples: ArrayBufferView, bits: number, format: 1 | 3): Uint8Array {
  const data = new Uint8Array(samples.buffer, samples.byteOffset, samples.byteLength);
  const tags: [number, number, number][] = [
    [256, 3, width], // ImageWidth
    [257, 3, height], // ImageLength
    [258, 3, bits], // BitsPerSample
    [259, 3, 1], // Compression: none
    [262, 3, 1], // PhotometricInterpretation: BlackIsZero
    [273, 4, 0], // StripOffsets (patched below)
    [277, 3, 1], // SamplesPerPixel
    [278, 3, height], // RowsPerStrip
    [279, 4, data.length], // StripByteCounts
    [339, 3, format], // SampleFormat
  ];
  const ifdSize = 2 + tags.length * 12 + 4;
  const out = new Uint8Array(8 + ifdSize + data.length);
  const v = new DataView(out.buffer);
  out.set([0x49, 0x49, 42, 0]); // 'II', 42
  v.setUint32(4, 8, true);
  v.setUint16(8, tags.length, true);
  tags.forEach(([tag, type, value], i) => {
    const at = 10 + i * 12;
    v.setUint16(at, tag, true);
    v.setUint16(at + 2, type, true);
    v.setUint32(at + 4, 1, true);
    if (tag === 273) value = 8 + ifdSize;
    if (type === 3) v.setUint16(at + 8, value, true);
    else v.setUint32(at + 8, value, true);
  });
  out.set(data, 8 + ifdSize);
  return out;
}

/** PNG chunk with its CRC. */
function chunk(type: string, body: Uint8Array): Uint8Array {
  const out = new Uint8Array(12 + body.length);
  const v = new DataView(out.buffer);
  v.setUint32(0, body.length);
  out.set(new TextEncoder().encode(type), 4);
  out.set(body, 8);
  v.setUint32(8 + body.length, crc32(out.subarray(4, 8 + body.length)));
  return out;
}

describe('image I/O: hostile files and precision', () => {
  it('a small PNG declaring 16000x16000 is refused from its header, naming the file, the size and the limit', async () => {
    const ihdr = new Uint8Array(13);
    const v = new DataView(ihdr.buffer);
    v.setUint32(0, 16000);
    v.setUint32(4, 16000);
    ihdr.set([8, 0, 0, 0, 0], 8); // 8-bit gray
    const rows = deflateSync(new Uint8Array(16001 * 64)); // only 64 rows of data
    const png = Buffer.concat([Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]), chunk('IHDR', ihdr), chunk('IDAT', rows), chunk('IEND', new Uint8Array(0))]);
    const p = join(dir, 'huge.png');
    writeFileSync(p, png);
    expect(png.length).toBeLessThan(10_000);
    const err = await readImage(p).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(FileFormatError);
    expect((err as Error).message).toMatch(/huge\.png.*16000x16000.*limit/);
    // The header-only probe a folder scan uses refuses it too.
    await expect(readImageInfo(p)).rejects.toThrow(/huge\.png.*16000x16000.*limit/);
    // A lowered budget refuses a small image the same way.
    await writePng(join(dir, 'small.png'), createImage(40, 30, 3));
    await expect(readImage(join(dir, 'small.png'), undefined, { maxPixels: 1000 })).rejects.toThrow(/small\.png.*40x30.*1000/);
  });

  it('a truncated JPEG gives a one-line message (libvips reports several lines)', async () => {
    const p = join(dir, 'cut.jpg');
    writeFileSync(p, Buffer.from([0xff, 0xd8, 0xff, 0xe0, 0x00, 0x10, 0x4a, 0x46, 0x49, 0x46, 0x00, 0x01]));
    const err = await readImage(p).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(FileFormatError);
    expect((err as Error).message).toMatch(/cut\.jpg: cannot read image: /);
    expect((err as Error).message).not.toMatch(/[\n\r]/);
  });

  it('reads a 32-bit float TIFF at float precision (not cut to 8 bits)', async () => {
    const values = new Float32Array([0.123456, 0.5, 0.999001, 0.0001, 0.25, 0.7071]);
    const p = join(dir, 'float.tif');
    writeFileSync(p, tiff(3, 2, values, 32, 3));
    const im = await readImage(p);
    expect([im.width, im.height, im.channels]).toEqual([3, 2, 1]);
    expect(Array.from(im.data)).toEqual(Array.from(values));
    const rgb = await readImage(p, 3);
    expect(Array.from(rgb.data.subarray(6, 12))).toEqual(Array.from(values));
  });

  it('reads a 16-bit TIFF at 16-bit precision', async () => {
    const values = new Uint16Array([0, 1, 1000, 40000, 65534, 65535]);
    const p = join(dir, 'u16.tif');
    writeFileSync(p, tiff(3, 2, values, 16, 1));
    const im = await readImage(p);
    expect(Array.from(im.data).map((x) => Math.round(x * 65535))).toEqual(Array.from(values));
  });

  it('writes a 1-channel image as an 8-bit gray PNG, or 16-bit gray on request', async () => {
    const im = createImage(4, 2, 1);
    for (let i = 0; i < im.data.length; i++) im.data[i] = i / 7;
    const p8 = join(dir, 'gray8.png');
    await writePng(p8, im);
    expect(await sharp(p8).metadata()).toMatchObject({ channels: 1, depth: 'uchar' });
    const back8 = await readImage(p8);
    expect(back8.channels).toBe(1);
    expect(Array.from(back8.data).map((x) => Math.round(x * 255))).toEqual(Array.from(im.data).map((x) => Math.floor(x * 255)));
    const p16 = join(dir, 'gray16.png');
    await writePng(p16, im, { bitDepth: 16 });
    expect(await sharp(p16).metadata()).toMatchObject({ channels: 1, depth: 'ushort' });
    const back16 = await readImage(p16);
    for (let i = 0; i < im.data.length; i++) expect(Math.abs(back16.data[i] - im.data[i])).toBeLessThanOrEqual(0.5 / 65535 + 1e-7);
  });
});
