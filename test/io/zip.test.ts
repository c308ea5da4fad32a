import { describe, expect, it } from 'vitest';
import { crc32, isZip, listZip, readZip } from '../../src/io/zip.js';
import { FileFormatError } from '../../src/runtime/errors.js';
import { buildZip, fixtureBytes } from './helpers.js';

const text = (s: string) => new TextEncoder().encode(s);
const big = text('pix2pix '.repeat(5000));

async function refusal(bytes: Uint8Array, name: string, pattern: RegExp): Promise<void> {
  const err = await readZip(bytes, name).then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err, `${name} should be refused`).toBeInstanceOf(FileFormatError);
  expect((err as Error).message).toContain(name);
  expect((err as Error).message).toMatch(pattern);
}

describe('readZip', () => {
  it('lists the entries torch writes (stored, 64-byte aligned data)', async () => {
    const bytes = fixtureBytes('tiny_zip.pth');
    expect(isZip(bytes)).toBe(true);
    const entries = await readZip(bytes, 'tiny_zip.pth');
    expect([...entries.keys()]).toContain('tiny_zip/data.pkl');
    expect(entries.get('tiny_zip/version')).toEqual(text('3\n'));
    for (const e of listZip(bytes)) if (e.name.includes('/data/')) expect(e.dataOffset % 64).toBe(0);
  });

  it('reads stored and deflated entries, plain and with ZIP64 fields', async () => {
    const specs = [
      { name: 'a/stored.txt', data: text('hello') },
      { name: 'a/deflated.txt', data: big, deflate: true },
      { name: 'a/empty', data: new Uint8Array(0) },
    ];
    for (const zip64 of [false, true]) {
      const entries = await readZip(buildZip(specs, { zip64 }), 'x.zip');
      expect([...entries.keys()]).toEqual(specs.map((s) => s.name));
      for (const s of specs) expect(entries.get(s.name)).toEqual(s.data);
    }
    // Deflate really compressed it (so the inflate path ran).
    expect(listZip(buildZip(specs)).find((e) => e.name === 'a/deflated.txt')!.compressedSize).toBeLessThan(big.length / 10);
  });

  it('crc32 matches the standard check value', () => {
    expect(crc32(text('123456789'))).toBe(0xcbf43926);
  });

  it('names the file and entry for corrupt, truncated or unsupported archives', async () => {
    const zip = buildZip([{ name: 'w.bin', data: text('weights!') }, { name: 'z.txt', data: big, deflate: true }]);
    const [w, z] = listZip(zip);
    await refusal(zip.slice(0, zip.length - 10), 'cut.zip', /truncated zip archive: no end-of-central-directory record/);
    await refusal(zip.slice(0, 10), 'tiny.zip', /end-of-central-directory/);
    await refusal(new Uint8Array(0), 'empty.zip', /end-of-central-directory/);
    const flipped = zip.slice();
    flipped[w.dataOffset] ^= 1;
    await refusal(flipped, 'crc.zip', /entry 'w\.bin': CRC-32 is 0x[0-9a-f]{8}, expected 0x[0-9a-f]{8}/);
    const garbled = zip.slice();
    garbled.fill(0xff, z.dataOffset, z.dataOffset + 20);
    await refusal(garbled, 'inflate.zip', /entry 'z\.txt': (deflate data is corrupt|inflated to|CRC-32)/);
    // Compression method 12 (bzip2) in the central directory entry of w.bin.
    const cdOffset = new DataView(zip.buffer).getUint32(zip.length - 6, true);
    const bzip = zip.slice();
    bzip[cdOffset + 10] = 12;
    await refusal(bzip, 'bzip.zip', /entry 'w\.bin': uses compression method 12/);
    const encrypted = zip.slice();
    encrypted[cdOffset + 8] |= 1;
    await refusal(encrypted, 'enc.zip', /entry 'w\.bin': is encrypted/);
    const local = zip.slice();
    local[0] = 0; // the local header signature of w.bin
    await refusal(local, 'local.zip', /entry 'w\.bin': no local file header at byte 0/);
  });
});
