// Shared helpers for the checkpoint-format tests: fixture bytes, exact comparisons, a tiny ZIP writer.
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { deflateRawSync } from 'node:zlib';
import { expect } from 'vitest';
import type { StateDict } from '../../src/io/state_dict.js';
import { crc32 } from '../../src/io/zip.js';
import { loadFixture } from '../helpers/fixtures.js';

export interface ExpectedDict {
  keys: string[];
  tensors: Record<string, { shape: number[]; data: number[]; dtype: string }>;
}

export interface PthFixture {
  marker: string;
  state_dict: ExpectedDict;
  checkpoint: ExpectedDict;
  nested: { keys: string[] };
  safetensors: ExpectedDict & { metadata: Record<string, string> };
  view: { stride: number[]; offset: number };
}

export const fixture = loadFixture<PthFixture>('pth');

export function fixturePath(name: string): string {
  return fileURLToPath(new URL(`../fixtures/pth/${name}`, import.meta.url));
}

export function fixtureBytes(name: string): Uint8Array {
  return new Uint8Array(readFileSync(fixturePath(name)));
}

/** torch dtype names (as the fixture JSON writes them) in safetensors spelling. */
export const TORCH_DTYPES: Record<string, string> = {
  'torch.float32': 'F32',
  'torch.float16': 'F16',
  'torch.float64': 'F64',
  'torch.int64': 'I64',
  'torch.bfloat16': 'BF16',
};

/** Same keys in the same order, same shapes and dtypes, and values equal to f32 rounding of the reference. */
export function expectStateDict(actual: StateDict, expected: ExpectedDict, checkDtype = true): void {
  expect([...actual.keys()]).toEqual(expected.keys);
  for (const key of expected.keys) {
    const want = expected.tensors[key];
    const got = actual.get(key)!;
    expect(got.shape, `${key} shape`).toEqual(want.shape);
    if (checkDtype) expect(got.dtype, `${key} dtype`).toBe(TORCH_DTYPES[want.dtype]);
    expect(got.data).toBeInstanceOf(Float32Array);
    expect(Array.from(got.data), `${key} values`).toEqual(want.data.map((v) => Math.fround(v)));
  }
}

export interface ZipEntrySpec {
  name: string;
  data: Uint8Array;
  deflate?: boolean;
}

/**
 * Write a ZIP archive. With `zip64`, every central-directory size/offset is 0xFFFFFFFF and the real
 * values go into the ZIP64 extra field, and the end record points to a ZIP64 end record, as miniz
 * does for archives above 4 GiB.
 */
export function buildZip(entries: ZipEntrySpec[], { zip64 = false } = {}): Uint8Array {
  const chunks: Uint8Array[] = [];
  let offset = 0;
  const push = (b: Uint8Array) => {
    chunks.push(b);
    offset += b.length;
  };
  const central: Uint8Array[] = [];
  const enc = new TextEncoder();
  for (const e of entries) {
    const name = enc.encode(e.name);
    const body = e.deflate ? new Uint8Array(deflateRawSync(e.data)) : e.data;
    const crc = crc32(e.data);
    const local = new Uint8Array(30 + name.length);
    const lv = new DataView(local.buffer);
    lv.setUint32(0, 0x04034b50, true);
    lv.setUint16(4, 20, true);
    lv.setUint16(8, e.deflate ? 8 : 0, true);
    lv.setUint32(14, crc, true);
    lv.setUint32(18, body.length, true);
    lv.setUint32(22, e.data.length, true);
    lv.setUint16(26, name.length, true);
    local.set(name, 30);
    const localOffset = offset;
    push(local);
    push(body);
    const extra = zip64 ? new Uint8Array(4 + 24) : new Uint8Array(0);
    if (zip64) {
      const xv = new DataView(extra.buffer);
      xv.setUint16(0, 0x0001, true);
      xv.setUint16(2, 24, true);
      xv.setBigUint64(4, BigInt(e.data.length), true);
      xv.setBigUint64(12, BigInt(body.length), true);
      xv.setBigUint64(20, BigInt(localOffset), true);
    }
    const c = new Uint8Array(46 + name.length + extra.length);
    const cv = new DataView(c.buffer);
    cv.setUint32(0, 0x02014b50, true);
    cv.setUint16(4, 45, true);
    cv.setUint16(6, zip64 ? 45 : 20, true);
    cv.setUint16(10, e.deflate ? 8 : 0, true);
    cv.setUint32(16, crc, true);
    cv.setUint32(20, zip64 ? 0xffffffff : body.length, true);
    cv.setUint32(24, zip64 ? 0xffffffff : e.data.length, true);
    cv.setUint16(28, name.length, true);
    cv.setUint16(30, extra.length, true);
    cv.setUint32(42, zip64 ? 0xffffffff : localOffset, true);
    c.set(name, 46);
    c.set(extra, 46 + name.length);
    central.push(c);
  }
  const cdOffset = offset;
  for (const c of central) push(c);
  const cdSize = offset - cdOffset;
  if (zip64) {
    const rec = new Uint8Array(56);
    const rv = new DataView(rec.buffer);
    const recOffset = offset;
    rv.setUint32(0, 0x06064b50, true);
    rv.setBigUint64(4, 44n, true);
    rv.setUint16(12, 45, true);
    rv.setUint16(14, 45, true);
    rv.setBigUint64(24, BigInt(entries.length), true);
    rv.setBigUint64(32, BigInt(entries.length), true);
    rv.setBigUint64(40, BigInt(cdSize), true);
    rv.setBigUint64(48, BigInt(cdOffset), true);
    push(rec);
    const loc = new Uint8Array(20);
    const locv = new DataView(loc.buffer);
    locv.setUint32(0, 0x07064b50, true);
    locv.setBigUint64(8, BigInt(recOffset), true);
    locv.setUint32(16, 1, true);
    push(loc);
  }
  const end = new Uint8Array(22);
  const ev = new DataView(end.buffer);
  ev.setUint32(0, 0x06054b50, true);
  ev.setUint16(8, zip64 ? 0xffff : entries.length, true);
  ev.setUint16(10, zip64 ? 0xffff : entries.length, true);
  ev.setUint32(12, zip64 ? 0xffffffff : cdSize, true);
  ev.setUint32(16, zip64 ? 0xffffffff : cdOffset, true);
  push(end);
  const out = new Uint8Array(offset);
  let at = 0;
  for (const c of chunks) {
    out.set(c, at);
    at += c.length;
  }
  return out;
}

// ------------------------------------------------------------------ pickle assembly (hostile and codec tests)

export const enc = (s: string) => [...new TextEncoder().encode(s)];
export const u32 = (n: number) => [n & 0xff, (n >> 8) & 0xff, (n >> 16) & 0xff, (n >>> 24) & 0xff];
/** Pickle opcodes: BINUNICODE, BININT, GLOBAL, MARK, TUPLE. */
export const pickleStr = (s: string) => [0x58, ...u32(enc(s).length), ...enc(s)];
export const pickleInt = (n: number) => [0x4a, ...u32(n)];
export const pickleGlobal = (m: string, n: string) => [0x63, ...enc(`${m}\n${n}\n`)];
export const MARK = 0x28;
export const TUPLE = 0x74;
/** torch._utils._rebuild_tensor_v2 of FloatStorage `key` (numel elements) viewed with size/stride. */
export function tensorPickle(key: string, numel: number, size: number[], stride: number[]): number[] {
  return [
    ...pickleGlobal('torch._utils', '_rebuild_tensor_v2'), MARK,
    MARK, ...pickleStr('storage'), ...pickleGlobal('torch', 'FloatStorage'), ...pickleStr(key), ...pickleStr('cpu'), ...pickleInt(numel), TUPLE, 0x51,
    ...pickleInt(0), MARK, ...size.flatMap(pickleInt), TUPLE, MARK, ...stride.flatMap(pickleInt), TUPLE, 0x89, 0x7d, TUPLE, 0x52,
  ];
}
