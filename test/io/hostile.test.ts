// Regression tests for the hostile checkpoint files of issue 11: each file is built here, byte by
// byte, small, and each once exhausted memory, hung, or echoed something it should not have.
import { deflateRawSync } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { loadPth } from '../../src/io/pth.js';
import { listZip, readZip } from '../../src/io/zip.js';
import { parseSafetensors } from '../../src/io/safetensors.js';
import { unpickle } from '../../src/io/pickle.js';
import { checkStateDict, loadStateDictInto, CheckpointMismatchError, type HasState } from '../../src/gan/state_dict.js';
import type { StateDict } from '../../src/io/state_dict.js';
import { FileFormatError, Pix2PixError, ShapeError, quoteUntrusted } from '../../src/runtime/errors.js';
import { DEFAULT_READ_BUDGET, resolveBudget } from '../../src/io/budget.js';
import { crc32 } from '../../src/io/zip.js';
import { buildZip, enc, fixture, fixtureBytes, pickleStr as str, tensorPickle as tensor } from './helpers.js';

// ------------------------------------------------------------------ pickle assembly

function concat(...parts: (number[] | Uint8Array)[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}
/** {name: value-bytes} as a protocol-2 pickle. */
function dictPickle(items: [string, number[]][]): Uint8Array {
  return new Uint8Array([0x80, 2, 0x7d, ...items.flatMap(([k, v]) => [...str(k), ...v, 0x73]), 0x2e]);
}

/** tiny_zip.pth with its data.pkl replaced (its storages stay, e.g. 'tiny_zip/data/0' of F32). */
async function withPickle(pkl: Uint8Array, extra: { name: string; data: Uint8Array; deflate?: boolean }[] = []): Promise<Uint8Array> {
  const entries = await readZip(fixtureBytes('tiny_zip.pth'), 'tiny_zip.pth');
  return buildZip([...[...entries].map(([name, data]) => ({ name, data: name.endsWith('data.pkl') ? pkl : data })), ...extra]);
}

async function refusal(promise: Promise<unknown>, name: string): Promise<FileFormatError> {
  const err = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err, `${name} should be refused`).toBeInstanceOf(FileFormatError);
  const message = (err as Error).message;
  expect(message).toContain(name);
  expect(message).not.toMatch(/[\n\r\x1b]/);
  expect(message.length).toBeLessThan(1000);
  return err as FileFormatError;
}

/** Largest growth of JS heap + ArrayBuffer bytes seen while `fn` runs (sampled every millisecond). */
async function peakGrowth(fn: () => Promise<unknown>): Promise<number> {
  const mem = () => {
    const m = process.memoryUsage();
    return m.heapUsed + m.arrayBuffers;
  };
  const base = mem();
  let peak = 0;
  const timer = setInterval(() => (peak = Math.max(peak, mem() - base)), 1);
  try {
    await fn();
  } catch {
    // the caller checks the outcome separately
  } finally {
    clearInterval(timer);
    peak = Math.max(peak, mem() - base);
  }
  return peak;
}

const MiB = 1 << 20;

// ------------------------------------------------------------------ zip assembly with lies

interface LocalSpec {
  name: string;
  body: Uint8Array; // as stored in the archive
  method: 0 | 8;
  size: number; // declared uncompressed size
  crc: number;
}
/** A zip whose central directory lists `central` (name, index of a local entry, declared size). */
function rawZip(locals: LocalSpec[], central: { name: string; local: number; size?: number }[]): Uint8Array {
  const parts: number[][] = [];
  const offsets: number[] = [];
  let offset = 0;
  for (const l of locals) {
    const name = enc(l.name);
    const h = new Uint8Array(30);
    const v = new DataView(h.buffer);
    v.setUint32(0, 0x04034b50, true);
    v.setUint16(4, 20, true);
    v.setUint16(8, l.method, true);
    v.setUint32(14, l.crc, true);
    v.setUint32(18, l.body.length, true);
    v.setUint32(22, l.size, true);
    v.setUint16(26, name.length, true);
    offsets.push(offset);
    parts.push([...h, ...name]);
    offset += 30 + name.length;
    parts.push(Array.from(l.body));
    offset += l.body.length;
  }
  const cdOffset = offset;
  for (const c of central) {
    const l = locals[c.local];
    const name = enc(c.name);
    const h = new Uint8Array(46);
    const v = new DataView(h.buffer);
    v.setUint32(0, 0x02014b50, true);
    v.setUint16(4, 20, true);
    v.setUint16(6, 20, true);
    v.setUint16(10, l.method, true);
    v.setUint32(16, l.crc, true);
    v.setUint32(20, l.body.length, true);
    v.setUint32(24, c.size ?? l.size, true);
    v.setUint16(28, name.length, true);
    v.setUint32(42, offsets[c.local], true);
    parts.push([...h, ...name]);
    offset += 46 + name.length;
  }
  const end = new Uint8Array(22);
  const ev = new DataView(end.buffer);
  ev.setUint32(0, 0x06054b50, true);
  ev.setUint16(8, central.length, true);
  ev.setUint16(10, central.length, true);
  ev.setUint32(12, offset - cdOffset, true);
  ev.setUint32(16, cdOffset, true);
  parts.push(Array.from(end));
  const out = new Uint8Array(offset + 22);
  let at = 0;
  for (const p of parts) {
    // Large bodies: copy in chunks (spread of a multi-megabyte array would overflow the stack).
    out.set(p, at);
    at += p.length;
  }
  return out;
}

/** Raw deflate of `n` zero bytes (a 64 MiB run compresses to about 64 KB). */
const zeros = (n: number) => new Uint8Array(deflateRawSync(new Uint8Array(n)));
const BOMB_SIZE = 64 * MiB;
const bomb = zeros(BOMB_SIZE);
const bombCrc = crc32(new Uint8Array(BOMB_SIZE));

describe('hostile pickles', () => {
  it('a DAG of shared lists (x = (x, x) forty times) is refused by the object budget, not expanded', async () => {
    const dag = [...tensor('0', 1, [], [])];
    for (let i = 0; i < 40; i++) dag.push(0x32, 0x86); // DUP, TUPLE2
    const file = await withPickle(dictPickle([['w', dag]]));
    expect(file.length).toBeLessThan(5000);
    const started = performance.now();
    const err = await refusal(loadPth(file, 'dag.pth'), 'dag.pth');
    expect(err.message).toMatch(/budget/);
    expect(performance.now() - started).toBeLessThan(5000);
  });

  it('memoised objects stay shared: a small DAG is one object referenced twice, and loads', async () => {
    const pkl = new Uint8Array([0x80, 2, 0x5d, 0x71, 1, 0x30, 0x68, 1, 0x68, 1, 0x86, 0x2e]); // l = []; (l, l)
    const { value } = unpickle(pkl, 'shared.pkl');
    expect((value as unknown[])[0]).toBe((value as unknown[])[1]);
    const dag = [...tensor('0', 1, [], [])];
    for (let i = 0; i < 3; i++) dag.push(0x32, 0x86);
    const sd = await loadPth(await withPickle(dictPickle([['w', dag]])), 'small_dag.pth');
    expect(sd.size).toBe(8);
    expect(sd.get('w.0.1.0')!.data[0]).toBe(Math.fround(fixture.state_dict.tensors['0.weight'].data[0]));
  });

  it('a pickle nested deeper than the depth budget is refused by name', async () => {
    const deep = [...tensor('0', 1, [], [])];
    for (let i = 0; i < 5000; i++) deep.push(0x85); // TUPLE1, 5000 levels
    const err = await refusal(loadPth(await withPickle(dictPickle([['w', deep]])), 'deep.pth'), 'deep.pth');
    expect(err.message).toMatch(/depth.*budget/);
  });

  it('a 5 MB text line (INT opcode) gives a short message, not the line', async () => {
    const pkl = concat([0x80, 2, 0x49], new Uint8Array(5 * MiB).fill(0x78), [0x0a, 0x2e]);
    const err = await refusal(loadPth(await withPickle(pkl), 'long_line.pth'), 'long_line.pth');
    expect(err.message).toMatch(/INT/);
  });

  it('a huge decimal INT is refused quickly (no quadratic BigInt parse)', async () => {
    const pkl = concat([0x80, 2, 0x49], new Uint8Array(MiB).fill(0x39), [0x0a, 0x2e]);
    const started = performance.now();
    expect(() => unpickle(pkl, 'digits.pkl')).toThrow(FileFormatError);
    expect(performance.now() - started).toBeLessThan(1000);
  });
});

describe('hostile tensors', () => {
  it('a stride-0 expand of one element to 16384 x 16384 is refused, not materialised to 1 GB', async () => {
    const file = await withPickle(dictPickle([['x', tensor('0', 1, [16384, 16384], [0, 0])]]));
    expect(file.length).toBeLessThan(5000);
    const err = await refusal(loadPth(file, 'expand.pth'), 'expand.pth');
    expect(err.message).toMatch(/'x'.*storage/);
  });

  it('only the requested keys are materialised (a keep predicate skips the rest)', async () => {
    const sd = await loadPth(fixtureBytes('tiny_zip.pth'), 'tiny_zip.pth', { keep: (k) => k === '0.weight' });
    expect([...sd.keys()]).toEqual(['0.weight']);
    // An unwanted hostile tensor is never materialised, so it cannot hurt.
    const file = await withPickle(
      dictPickle([
        ['x', tensor('0', 1, [16384, 16384], [0, 0])],
        ['w', tensor('0', 1, [1], [1])],
      ]),
    );
    const only = await loadPth(file, 'expand_unused.pth', { keep: (k) => k === 'w' });
    expect([...only.keys()]).toEqual(['w']);
  });

  it('a view reaching past its storage is refused naming the tensor', async () => {
    const file = await withPickle(dictPickle([['v', tensor('0', 4, [3, 3], [2, 1])]]));
    const err = await refusal(loadPth(file, 'past.pth'), 'past.pth');
    expect(err.message).toMatch(/'v'/);
  });

  it('the tensor-bytes budget can be lowered (and a refused file names the budget)', async () => {
    const err = await refusal(loadPth(fixtureBytes('tiny_zip.pth'), 'tiny_zip.pth', { budget: { maxTensorBytes: 16 } }), 'tiny_zip.pth');
    expect(err.message).toMatch(/maxTensorBytes/);
  });
});

describe('hostile zips', () => {
  it('an unused bomb entry is never inflated (entries are inflated lazily)', async () => {
    const entries = await readZip(fixtureBytes('tiny_zip.pth'), 'tiny_zip.pth');
    // Beside the checkpoint: a 64 KB deflate stream of 64 MiB of zeros that nothing uses, with a
    // wrong CRC-32, so that inflating it at all (seconds) and checking it would fail the load.
    const locals: LocalSpec[] = [...entries].map(([name, data]) => ({ name, body: data, method: 0, size: data.length, crc: crc32(data) }));
    locals.push({ name: 'tiny_zip/bomb', body: bomb, method: 8, size: BOMB_SIZE, crc: bombCrc ^ 1 });
    const zip = rawZip(locals, locals.map((l, i) => ({ name: l.name, local: i })));
    const started = performance.now();
    const sd = await loadPth(zip, 'bomb_unused.pth');
    expect(sd.size).toBe(fixture.state_dict.keys.length);
    expect(performance.now() - started).toBeLessThan(2000);
  });

  it('an entry declaring less than it inflates to stops at its declared size', async () => {
    const zip = rawZip([{ name: 'a', body: bomb, method: 8, size: 1000, crc: 0 }], [{ name: 'a', local: 0 }]);
    let err: unknown;
    const started = performance.now();
    const growth = await peakGrowth(() => readZip(zip, 'liar.zip').catch((e) => (err = e)));
    expect(err).toBeInstanceOf(FileFormatError);
    expect((err as Error).message).toMatch(/liar\.zip.*'a'.*declared/);
    expect(growth).toBeLessThan(64 * MiB);
    expect(performance.now() - started).toBeLessThan(2000);
  });

  it('an entry declaring more than deflate can expand (or than the budget) is refused before inflating', async () => {
    const small = zeros(MiB); // about 1 KB
    const zip = rawZip([{ name: 'a', body: small, method: 8, size: 2_300_000_000, crc: 0 }], [{ name: 'a', local: 0 }]);
    const err = await refusal(readZip(zip, 'huge.zip'), 'huge.zip');
    expect(err.message).toMatch(/'a'.*declares 2300000000/);
    // An honest 64 MiB entry under a 16 MiB budget.
    const honest = rawZip([{ name: 'b', body: bomb, method: 8, size: BOMB_SIZE, crc: bombCrc }], [{ name: 'b', local: 0 }]);
    let e2: unknown;
    const growth = await peakGrowth(() => readZip(honest, 'honest.zip', { budget: { maxInflatedBytes: 16 * MiB } }).catch((e) => (e2 = e)));
    expect(e2).toBeInstanceOf(FileFormatError);
    expect((e2 as Error).message).toMatch(/maxInflatedBytes/);
    expect(growth).toBeLessThan(8 * MiB);
  });

  it('central-directory entries that overlap one another are refused', async () => {
    const central = Array.from({ length: 8 }, (_, i) => ({ name: `copy${i}`, local: 0 }));
    const zip = rawZip([{ name: 'copy0', body: bomb, method: 8, size: BOMB_SIZE, crc: bombCrc }], central);
    expect(() => listZip(zip, 'overlap.zip')).toThrow(/overlap\.zip.*overlap/);
    await refusal(readZip(zip, 'overlap.zip'), 'overlap.zip');
  });
});

describe('hostile names and values', () => {
  const ansi = '\x1b[2J\x1b[H\x1b[32mall OK\x1b[0m\nsecond line';

  it('a safetensors key with ANSI escapes and newlines is escaped in the message', () => {
    const json = JSON.stringify({ [ansi]: { dtype: 'X99', shape: [1], data_offsets: [0, 4] } });
    const bytes = new Uint8Array(8 + json.length + 4);
    new DataView(bytes.buffer).setBigUint64(0, BigInt(json.length), true);
    bytes.set(enc(json), 8);
    let err: unknown;
    try {
      parseSafetensors(bytes, 'ansi.safetensors');
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(FileFormatError);
    const message = (err as Error).message;
    expect(message).not.toMatch(/[\x00-\x1f\x7f]/);
    expect(message).toContain('\\x1b[2J');
  });

  it('a 5 MB value in a safetensors header is not echoed in full', () => {
    const json = new TextEncoder().encode(JSON.stringify({ t: 'y'.repeat(5 * MiB) }));
    const bytes = new Uint8Array(8 + json.length);
    new DataView(bytes.buffer).setBigUint64(0, BigInt(json.length), true);
    bytes.set(json, 8);
    expect(() => parseSafetensors(bytes, 'big.safetensors')).toThrow(FileFormatError);
    try {
      parseSafetensors(bytes, 'big.safetensors');
    } catch (e) {
      expect((e as Error).message.length).toBeLessThan(1000);
    }
  });

  it('checkStateDict escapes ANSI keys, names the source and caps the list', () => {
    const dict: StateDict = new Map();
    dict.set(ansi, { shape: [1], data: new Float32Array(1), dtype: 'F32' });
    for (let i = 0; i < 10_000; i++) dict.set(`junk.${i}`, { shape: [1], data: new Float32Array(1), dtype: 'F32' });
    const net: HasState = { stateEntries: () => [], normPaths: () => [] };
    let err: unknown;
    try {
      checkStateDict(dict, net, '/ckpt/latest_net_G.pth');
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(CheckpointMismatchError);
    const message = (err as Error).message;
    expect(message).toContain('/ckpt/latest_net_G.pth');
    expect(message).not.toMatch(/[\x00-\x1f\x7f]/);
    expect(message.length).toBeLessThan(4000);
    expect((err as CheckpointMismatchError).unexpected.length).toBe(10_001);
  });

  it('NaN or Inf weights are refused naming the tensor and the file, and nothing is written', () => {
    const written: string[] = [];
    const entry = (key: string) => ({ key, kind: 'param', shape: [2], tensor: { write: () => written.push(key) } });
    const net = { stateEntries: () => [entry('a.weight'), entry('b.weight')], normPaths: () => [] } as unknown as HasState;
    for (const bad of [NaN, Infinity, -Infinity]) {
      const dict: StateDict = new Map([
        ['a.weight', { shape: [2], data: new Float32Array([1, 2]), dtype: 'F32' }],
        ['b.weight', { shape: [2], data: new Float32Array([0, bad]), dtype: 'F32' }],
      ]);
      let err: unknown;
      try {
        loadStateDictInto(net, dict, '/ckpt/latest_net_G.pth');
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(Pix2PixError);
      expect((err as Error).message).toMatch(/\/ckpt\/latest_net_G\.pth.*'b\.weight'.*(NaN|Infinity)/);
      expect(written).toEqual([]);
    }
  });
});

describe('quoteUntrusted and the read budget', () => {
  it('quoteUntrusted escapes control, bidi and separator characters and caps the length', () => {
    expect(quoteUntrusted('model.0.weight')).toBe("'model.0.weight'");
    expect(quoteUntrusted('a\x1b[2Jb\nc\rd\u0000e\u009bf')).toBe("'a\\x1b[2Jb\\x0ac\\x0dd\\x00e\\x9bf'");
    expect(quoteUntrusted('x\u202ey\u2028z\u200bw')).toBe("'x\\u202ey\\u2028z\\u200bw'");
    expect(quoteUntrusted("it's \\")).toBe("'it\\'s \\\\'");
    const long = quoteUntrusted('y'.repeat(52_000_000), 50);
    expect(long).toBe(`'${'y'.repeat(50)}'… (51999950 more characters)`);
    // Astral characters are not split in half.
    expect(quoteUntrusted('😀😀😀', 4)).toBe("'😀😀'… (2 more characters)");
  });

  it('the budget comes from the call, else the environment, else the defaults; bad values are refused', async () => {
    expect(resolveBudget()).toEqual(DEFAULT_READ_BUDGET);
    process.env.PIX2PIX_MAX_TENSOR_BYTES = '16';
    try {
      expect(resolveBudget().maxTensorBytes).toBe(16);
      const err = await refusal(loadPth(fixtureBytes('tiny_zip.pth'), 'env.pth'), 'env.pth');
      expect(err.message).toMatch(/maxTensorBytes=16 .*PIX2PIX_MAX_TENSOR_BYTES/);
      // A per-call value wins over the environment.
      expect((await loadPth(fixtureBytes('tiny_zip.pth'), 'env.pth', { budget: { maxTensorBytes: 1 << 20 } })).size).toBe(fixture.state_dict.keys.length);
      process.env.PIX2PIX_MAX_TENSOR_BYTES = 'lots';
      expect(() => resolveBudget()).toThrow(ShapeError);
    } finally {
      delete process.env.PIX2PIX_MAX_TENSOR_BYTES;
    }
    expect(() => resolveBudget({ maxPickleDepth: 0 })).toThrow(ShapeError);
  });

  it('the unpickler counts the objects it makes', () => {
    const pkl = new Uint8Array([0x80, 2, 0x28, ...Array(20).fill(0x4e), 0x6c, 0x2e]); // [None] * 20
    expect((unpickle(pkl, 'ok.pkl').value as unknown[]).length).toBe(20);
    expect(() => unpickle(pkl, 'many.pkl', { budget: { maxPickleObjects: 10 } })).toThrow(/many\.pkl: more than 10 objects.*maxPickleObjects/);
  });

  it('safetensors: the header budget and the keep predicate', () => {
    const bytes = fixtureBytes('python.safetensors');
    expect(() => parseSafetensors(bytes, 'h.safetensors', { budget: { maxHeaderBytes: 64 } })).toThrow(/h\.safetensors: header length \d+ is beyond the read budget maxHeaderBytes=64/);
    const all = parseSafetensors(bytes, 'p.safetensors');
    const first = [...all.keys()][0];
    expect([...parseSafetensors(bytes, 'p.safetensors', { keep: (k) => k === first }).keys()]).toEqual([first]);
  });
});
