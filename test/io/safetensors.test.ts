import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadPth } from '../../src/io/pth.js';
import { parseSafetensors, parseSafetensorsFile, serializeSafetensors } from '../../src/io/safetensors.js';
import type { StateDict } from '../../src/io/state_dict.js';
import { FileFormatError, ShapeError } from '../../src/runtime/errors.js';
import { expectStateDict, fixture, fixtureBytes } from './helpers.js';

/** A safetensors file with the given header object and `dataLen` zero bytes of data. */
function craft(header: unknown, dataLen: number, { rawHeader }: { rawHeader?: string } = {}): Uint8Array {
  const json = new TextEncoder().encode(rawHeader ?? JSON.stringify(header));
  const out = new Uint8Array(8 + json.length + dataLen);
  new DataView(out.buffer).setBigUint64(0, BigInt(json.length), true);
  out.set(json, 8);
  return out;
}

function refusal(bytes: Uint8Array, name: string, pattern: RegExp): void {
  let err: unknown;
  try {
    parseSafetensors(bytes, name);
  } catch (e) {
    err = e;
  }
  expect(err, `${name} should be refused`).toBeInstanceOf(FileFormatError);
  expect((err as Error).message).toContain(name);
  expect((err as Error).message).toMatch(pattern);
}

describe('safetensors', () => {
  it('reads the file python wrote by hand from the spec: F32, I64, F16, F64, BF16, empty', () => {
    const file = parseSafetensorsFile(fixtureBytes('python.safetensors'), 'python.safetensors');
    expectStateDict(file.tensors, fixture.safetensors);
    expect(file.metadata).toEqual(fixture.safetensors.metadata);
  });

  it('round-trips a state dict exactly: keys, order, shapes, values, metadata', async () => {
    const sd = await loadPth(fixtureBytes('tiny_zip.pth'), 'tiny_zip.pth');
    // Integer-like names are where JSON object order would betray us.
    sd.set('7', { shape: [2], data: new Float32Array([NaN, -Infinity]), dtype: 'F32' });
    sd.set('10', { shape: [0, 4], data: new Float32Array(0), dtype: 'F32' });
    const bytes = serializeSafetensors(sd, { epoch: '12', note: 'ünïcode' });
    const headerLen = Number(new DataView(bytes.buffer).getBigUint64(0, true));
    expect(headerLen % 8).toBe(0);
    const header = new TextDecoder().decode(bytes.subarray(8, 8 + headerLen));
    expect(header).toMatch(/^\{.*\} *$/);
    const back = parseSafetensorsFile(bytes, 'roundtrip.safetensors');
    expect(back.metadata).toEqual({ epoch: '12', note: 'ünïcode' });
    expect([...back.tensors.keys()]).toEqual([...sd.keys()]);
    for (const [k, v] of sd) {
      const got = back.tensors.get(k)!;
      expect(got.shape).toEqual(v.shape);
      expect(got.dtype).toBe('F32');
      expect(Array.from(got.data)).toEqual(Array.from(v.data));
    }
    // Writing what we read gives the same bytes.
    expect(serializeSafetensors(back.tensors, back.metadata)).toEqual(bytes);
  });

  it('reads data at an unaligned offset inside a larger buffer', () => {
    const dict: StateDict = new Map([['w', { shape: [3], data: new Float32Array([1.5, -2, 3.25]), dtype: 'F32' }]]);
    const bytes = serializeSafetensors(dict);
    const big = new Uint8Array(bytes.length + 3);
    big.set(bytes, 3);
    expect(Array.from(parseSafetensors(big.subarray(3), 'x').get('w')!.data)).toEqual([1.5, -2, 3.25]);
  });

  it('reads a file given as a Node Buffer (readFileSync) with its F32 tensors intact', () => {
    // Buffer.slice() is a view: decoding must not take the .buffer of one (the whole file, or Node's pool).
    const dir = mkdtempSync(join(tmpdir(), 'safetensors-buffer-'));
    const dict: StateDict = new Map([
      ['a', { shape: [2, 3], data: Float32Array.from([1, 2, 3, 4, 5, 6]), dtype: 'F32' }],
      ['b', { shape: [4], data: Float32Array.from([-1, 0.5, 7, 8]), dtype: 'F32' }],
    ]);
    writeFileSync(join(dir, 'small.safetensors'), serializeSafetensors(dict));
    const buffer = readFileSync(join(dir, 'small.safetensors'));
    const back = parseSafetensors(buffer, 'small.safetensors');
    for (const [k, v] of dict) expect(Array.from(back.get(k)!.data), k).toEqual(Array.from(v.data));
  });

  it('serialize refuses data that does not match its shape', () => {
    const dict: StateDict = new Map([['w', { shape: [2, 2], data: new Float32Array(3), dtype: 'F32' }]]);
    expect(() => serializeSafetensors(dict)).toThrow(ShapeError);
    expect(() => serializeSafetensors(dict)).toThrow(/expected 4, got 3/);
  });

  it('truncated files (cut anywhere) are FileFormatErrors naming the file', () => {
    const bytes = fixtureBytes('python.safetensors');
    for (const cut of [0, 4, 7, 8, 9, 50, 100, 150, 200, 300, 400, bytes.length - 1]) {
      refusal(bytes.slice(0, cut), `python.safetensors[:${cut}]`, /./);
    }
  });

  it('names what is wrong in a corrupt header: expected vs found', () => {
    const t = (dtype: string, shape: number[], begin: number, end: number) => ({ dtype, shape, data_offsets: [begin, end] });
    const len = new Uint8Array(8);
    new DataView(len.buffer).setBigUint64(0, 1n << 40n, true);
    refusal(len, 'huge.safetensors', /header length is 1099511627776 bytes but only 0 bytes follow/);
    refusal(craft(null, 0, { rawHeader: '{"a": {"dtype": "F32",' }), 'json.safetensors', /not valid UTF-8 JSON/);
    refusal(craft([1, 2], 0), 'array.safetensors', /must be a JSON object, found an array/);
    refusal(craft({ a: t('F32', [2], 0, 8) }, 4), 'short.safetensors', /'a': data_offsets \[0, 8\] run past the 4 bytes of data/);
    refusal(craft({ a: t('F32', [3], 0, 8) }, 8), 'size.safetensors', /F32 × \[3\] needs 12 bytes, data_offsets \[0, 8\] hold 8/);
    refusal(craft({ a: t('F16', [2], 0, 4), b: t('F16', [2], 2, 6) }, 6), 'overlap.safetensors', /'b'.*overlap the previous tensor, which ends at 4/);
    refusal(craft({ a: t('F16', [2], 0, 4), b: t('F16', [2], 6, 10) }, 10), 'gap.safetensors', /'b'.*begin at 6, expected 4/);
    refusal(craft({ a: t('F16', [2], 0, 4) }, 6), 'trailing.safetensors', /cover 4 bytes of data but the file has 6/);
    refusal(craft({ a: t('Q4', [2], 0, 4) }, 4), 'dtype.safetensors', /dtype "Q4" is not one of F32/);
    refusal(craft({ a: t('F32', [-1], 0, 0) }, 0), 'shape.safetensors', /shape must be a list of non-negative integers/);
    refusal(craft({ a: { dtype: 'F32', shape: [1] } }, 4), 'offsets.safetensors', /data_offsets must be \[begin, end\]/);
    refusal(craft({ a: t('F32', [1], 4, 0) }, 4), 'reversed.safetensors', /end before they begin/);
    refusal(craft({ __metadata__: { epoch: 3 } }, 0), 'meta.safetensors', /__metadata__\['epoch'\] must be a string/);
  });
});
