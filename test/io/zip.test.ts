import { describe, expect, it, vi } from 'vitest';
import * as zlib from 'node:zlib';
import { crc32, crc32Portable, isZip, listZip, readZip } from '../../src/io/zip.js';
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
    expect(crc32Portable(text('123456789'))).toBe(0xcbf43926);
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

/** The textbook byte-at-a-time CRC-32 (the reader's before): the reference the fast ones are checked and timed against. */
const BYTE_TABLE = Uint32Array.from({ length: 256 }, (_, n) => {
  let c = n;
  for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
  return c >>> 0;
});
function crc32Bytewise(data: Uint8Array): number {
  const table = BYTE_TABLE;
  let c = 0xffffffff;
  for (let i = 0; i < data.length; i++) c = table[(c ^ data[i]) & 0xff] ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

function randomBytes(n: number, seed: number): Uint8Array {
  const out = new Uint8Array(n);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < n; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    out[i] = x & 0xff;
  }
  return out;
}

/** node:zlib's own crc32 where this Node has it (>= 20.15), as a second, independent reference. */
const zlibCrc32 = (zlib as { crc32?: (d: Uint8Array) => number }).crc32;
const hasNativeCrc = typeof zlibCrc32 === 'function' && typeof process.getBuiltinModule === 'function';

describe('crc32: fast and exact (a 216 MB checkpoint spent 1.2 s of its load here byte at a time)', () => {
  it('crc32 and the portable slice-by-8 agree with the byte-at-a-time reference (and node:zlib) at every length and alignment', () => {
    const data = randomBytes(1 << 20, 7);
    const failures: string[] = [];
    for (let offset = 0; offset < 8; offset++) {
      for (let len = 0; len <= 70; len++) {
        const part = data.subarray(offset, offset + len);
        const want = crc32Bytewise(part);
        if (crc32Portable(part) !== want) failures.push(`portable, offset ${offset} length ${len}`);
        if (crc32(part) !== want) failures.push(`crc32, offset ${offset} length ${len}`);
        if (zlibCrc32 && zlibCrc32(part) !== want) failures.push(`the reference disagrees with node:zlib, offset ${offset} length ${len}`);
      }
    }
    const odd = data.subarray(3, data.length - 2);
    expect([crc32Portable(odd), crc32(odd)]).toEqual([crc32Bytewise(odd), crc32Bytewise(odd)]);
    expect(failures).toEqual([]);
    // One flipped bit anywhere changes it.
    const flipped = odd.slice();
    flipped[123457] ^= 0x10;
    expect(crc32Portable(flipped)).not.toBe(crc32Portable(odd));
  });

  it('is several times faster than the byte-at-a-time loop (node:zlib where present, else slice-by-8)', () => {
    const data = randomBytes(16 << 20, 11);
    // Best of three, timed against the reference in the same process, so a busy machine slows both alike.
    const best = (f: (d: Uint8Array) => number) => {
      let ms = Infinity;
      for (let r = 0; r < 3; r++) {
        const t0 = performance.now();
        f(data);
        ms = Math.min(ms, performance.now() - t0);
      }
      return ms;
    };
    const bytewise = best(crc32Bytewise);
    const portable = best(crc32Portable);
    const chosen = best(crc32);
    console.log(`[crc32] 16 MiB: byte at a time ${bytewise.toFixed(0)} ms, slice-by-8 ${portable.toFixed(0)} ms, crc32 ${chosen.toFixed(0)} ms${hasNativeCrc ? ' (node:zlib)' : ''}`);
    expect(bytewise / portable).toBeGreaterThan(1.5);
    if (hasNativeCrc) expect(bytewise / chosen).toBeGreaterThan(4);
  });

  it('without node:zlib (as in a browser) the portable CRC reads entries and still names a corrupt one', async () => {
    vi.resetModules();
    // (A Node without getBuiltinModule takes the portable path anyway.)
    const hidden = typeof process.getBuiltinModule === 'function' ? vi.spyOn(process, 'getBuiltinModule').mockImplementation(() => undefined as never) : null;
    try {
      const fresh = await import('../../src/io/zip.js');
      const zip = buildZip([{ name: 'w.bin', data: text('weights!') }, { name: 'z.txt', data: big, deflate: true }]);
      expect((await fresh.readZip(zip, 'ok.zip')).get('z.txt')).toEqual(big);
      const flipped = zip.slice();
      flipped[fresh.listZip(zip)[0].dataOffset] ^= 1;
      const err = await fresh.readZip(flipped, 'crc.zip').catch((e: unknown) => e as Error);
      expect(err).toMatchObject({ name: 'FileFormatError' });
      expect((err as Error).message).toMatch(/^crc\.zip: entry 'w\.bin': CRC-32 is 0x[0-9a-f]{8}, expected 0x[0-9a-f]{8} \(corrupt data\)$/);
      if (hidden) expect(hidden).toHaveBeenCalledWith('node:zlib');
    } finally {
      hidden?.mockRestore();
      vi.resetModules();
    }
  });
});
