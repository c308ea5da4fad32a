// Seeded mutation fuzzing of every file reader: .pth (zip and legacy), safetensors, PNG. Each case
// must end in a successful, well-formed load or in one of the library's typed errors whose message
// is one short line; never an untyped exception, never a hang, never unbounded memory. The corpus
// is generated here from fixed seeds (./mutate.ts), so every failure names a reproducible case.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { readImage, writePng } from '../../src/data/image_node.js';
import { createImage } from '../../src/data/image.js';
import { loadPth } from '../../src/io/pth.js';
import { parseSafetensors } from '../../src/io/safetensors.js';
import { numelOf, type StateDict } from '../../src/io/state_dict.js';
import { crc32, readZip } from '../../src/io/zip.js';
import { Pix2PixError } from '../../src/runtime/errors.js';
import { buildZip, fixtureBytes } from './helpers.js';
import { mutants, type Mutant } from './mutate.js';

const CASES = 300;
const dir = mkdtempSync(join(tmpdir(), 'fuzz-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const mem = () => {
  const m = process.memoryUsage();
  return m.heapUsed + m.arrayBuffers;
};

interface Tally {
  loaded: number;
  refused: number;
  slowestMs: number;
  peakGrowth: number;
}

/** Run every case; check each outcome; return what happened (for the assertions on time and memory). */
async function fuzz(cases: Iterable<Mutant>, load: (bytes: Uint8Array, name: string) => Promise<unknown>, check: (result: unknown) => void): Promise<Tally> {
  const tally: Tally = { loaded: 0, refused: 0, slowestMs: 0, peakGrowth: 0 };
  const base = mem();
  for (const c of cases) {
    const started = performance.now();
    let result: unknown;
    let error: unknown;
    try {
      result = await load(c.bytes, 'fuzzed.bin');
    } catch (e) {
      error = e;
    }
    tally.slowestMs = Math.max(tally.slowestMs, performance.now() - started);
    if (error === undefined) {
      check(result);
      tally.loaded++;
    } else {
      if (!(error instanceof Pix2PixError)) throw new Error(`${c.name}: untyped ${String((error as Error)?.stack ?? error)}`);
      const message = error.message;
      expect(message, c.name).toContain('fuzzed');
      expect(message, c.name).not.toMatch(/[\n\r\x1b]/);
      expect(message.length, c.name).toBeLessThan(1500);
      tally.refused++;
    }
    tally.peakGrowth = Math.max(tally.peakGrowth, mem() - base);
  }
  return tally;
}

function checkDict(result: unknown): void {
  for (const [key, v] of result as StateDict) {
    expect(v.data, key).toBeInstanceOf(Float32Array);
    expect(v.data.length, key).toBe(numelOf(v.shape));
  }
}

function expectBounded(t: Tally): void {
  if (process.env.FUZZ_VERBOSE) console.log(JSON.stringify(t));
  expect(t.loaded + t.refused).toBeGreaterThan(0);
  expect(t.slowestMs).toBeLessThan(3000);
  expect(t.peakGrowth).toBeLessThan(256 * 2 ** 20);
}

/** Recompute every whole PNG chunk's CRC, so that mutations reach the decoder instead of the CRC check. */
function fixPngCrcs(bytes: Uint8Array): Uint8Array {
  const out = bytes.slice();
  const v = new DataView(out.buffer);
  let at = 8;
  while (at + 12 <= out.length) {
    const len = v.getUint32(at);
    if (at + 12 + len > out.length) break;
    v.setUint32(at + 8 + len, crc32(out.subarray(at + 4, at + 8 + len)));
    at += 12 + len;
  }
  return out;
}

describe('fuzz: every reader fails typed, in one line, in bounded time and memory', () => {
  it('.pth zip: the archive mutated, and data.pkl mutated inside a valid archive', async () => {
    const base = fixtureBytes('tiny_zip.pth');
    const load = (b: Uint8Array, n: string) => loadPth(b, n);
    expectBounded(await fuzz(mutants(base, 1, CASES / 2), load, checkDict));
    const entries = [...(await readZip(base, 'tiny_zip.pth'))];
    const pkl = entries.find(([n]) => n.endsWith('data.pkl'))![1];
    const rebuilt = (function* () {
      for (const m of mutants(pkl, 2, CASES / 2)) {
        yield { name: m.name, bytes: buildZip(entries.map(([name, data]) => ({ name, data: name.endsWith('data.pkl') ? m.bytes : data }))) };
      }
    })();
    const t = await fuzz(rebuilt, load, checkDict);
    expectBounded(t);
    expect(t.refused).toBeGreaterThan(CASES / 4); // the mutations did reach the unpickler
  });

  it('.pth legacy', async () => {
    expectBounded(await fuzz(mutants(fixtureBytes('tiny_legacy.pth'), 3, CASES), (b, n) => loadPth(b, n), checkDict));
  });

  it('safetensors', async () => {
    expectBounded(await fuzz(mutants(fixtureBytes('python.safetensors'), 4, CASES), async (b, n) => parseSafetensors(b, n), checkDict));
  });

  it('JPEG', async () => {
    const { default: sharp } = await import('sharp');
    const rgb = new Uint8Array(16 * 12 * 3).map((_, i) => (i * 37) & 0xff);
    const base = new Uint8Array(await sharp(rgb, { raw: { width: 16, height: 12, channels: 3 } }).jpeg({ quality: 80 }).toBuffer());
    let n = 0;
    const load = async (bytes: Uint8Array) => {
      const p = join(dir, `fuzzed-${n++ % 4}.jpg`);
      writeFileSync(p, bytes);
      return readImage(p, undefined, { maxPixels: 1 << 20 });
    };
    const checkImage = (r: unknown) => {
      const im = r as { width: number; height: number; channels: number; data: Float32Array };
      expect(im.data.length).toBe(im.width * im.height * im.channels);
    };
    expectBounded(await fuzz(mutants(base, 7, CASES / 2), load, checkImage));
  });

  it('PNG (8-bit RGB and 16-bit gray), with and without repaired chunk CRCs', async () => {
    const rgb = createImage(12, 9, 3);
    for (let i = 0; i < rgb.data.length; i++) rgb.data[i] = ((i * 53) % 256) / 255;
    const gray = createImage(10, 7, 1);
    for (let i = 0; i < gray.data.length; i++) gray.data[i] = ((i * 2711) % 65536) / 65535;
    await writePng(join(dir, 'rgb.png'), rgb);
    await writePng(join(dir, 'gray16.png'), gray, { bitDepth: 16 });
    const { readFileSync } = await import('node:fs');
    let n = 0;
    // A file per case: sharp reads paths. The pixel limit is lowered so that a mutated header
    // declaring a large image is refused quickly (the default limit is tested elsewhere).
    const load = async (bytes: Uint8Array) => {
      const p = join(dir, `fuzzed-${n++ % 4}.png`);
      writeFileSync(p, bytes);
      return readImage(p, undefined, { maxPixels: 1 << 20 });
    };
    const checkImage = (r: unknown) => {
      const im = r as { width: number; height: number; channels: number; data: Float32Array };
      expect(im.data.length).toBe(im.width * im.height * im.channels);
      for (const v of im.data) expect(Number.isFinite(v)).toBe(true);
    };
    for (const [file, seed] of [['rgb.png', 5], ['gray16.png', 6]] as const) {
      const base = new Uint8Array(readFileSync(join(dir, file)));
      expectBounded(await fuzz(mutants(base, seed, CASES / 4), load, checkImage));
      expectBounded(await fuzz(mutants(base, seed + 10, CASES / 4, fixPngCrcs), load, checkImage));
    }
  });
});
