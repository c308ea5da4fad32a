import { existsSync, rmSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { loadPth } from '../../src/io/pth.js';
import { listZip, readZip } from '../../src/io/zip.js';
import { FileFormatError } from '../../src/runtime/errors.js';
import { buildZip, expectStateDict, fixture, fixtureBytes } from './helpers.js';

async function refusal(bytes: Uint8Array, name: string): Promise<FileFormatError> {
  const err = await loadPth(bytes, name).then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err, `${name} should be refused`).toBeInstanceOf(FileFormatError);
  expect((err as FileFormatError).message).toContain(name);
  return err as FileFormatError;
}

describe('loadPth', () => {
  it('loads the zip format (torch >= 1.6) with exact values and key order', async () => {
    const sd = await loadPth(fixtureBytes('tiny_zip.pth'), 'tiny_zip.pth');
    expectStateDict(sd, fixture.state_dict);
    expect(sd.get('1.num_batches_tracked')).toMatchObject({ dtype: 'I64', shape: [], data: new Float32Array([3]) });
  });

  it('loads the legacy format (torch < 1.6) identically', async () => {
    const sd = await loadPth(fixtureBytes('tiny_legacy.pth'), 'tiny_legacy.pth');
    expectStateDict(sd, fixture.state_dict);
  });

  it('makes a strided, offset view of a shared storage contiguous', async () => {
    // The fixture's view is base[1:3, 1:5].t(): strides (1, 6) at storage offset 7.
    expect(fixture.view).toEqual({ stride: [1, 6], offset: 7 });
    const sd = await loadPth(fixtureBytes('tiny_zip.pth'), 'tiny_zip.pth');
    const base = sd.get('extra.base')!;
    const view = sd.get('extra.view')!;
    expect(view.shape).toEqual([4, 2]);
    for (let i = 0; i < 4; i++) for (let j = 0; j < 2; j++) expect(view.data[i * 2 + j]).toBe(base.data[(1 + j) * 6 + 1 + i]);
  });

  it('unwraps {"model": state_dict} and {"state_dict": ...}, skipping non-tensor leaves', async () => {
    expectStateDict(await loadPth(fixtureBytes('checkpoint_zip.pth'), 'checkpoint_zip.pth'), fixture.checkpoint);
    expectStateDict(await loadPth(fixtureBytes('wrapped_legacy.pth'), 'wrapped_legacy.pth'), fixture.checkpoint);
  });

  it('flattens other nested dicts to dotted keys', async () => {
    const sd = await loadPth(fixtureBytes('nested_zip.pth'), 'nested_zip.pth');
    expect([...sd.keys()]).toEqual(fixture.nested.keys);
  });

  it('refuses a zip pickle that calls os.system, and runs nothing', async () => {
    rmSync(fixture.marker, { force: true });
    const err = await refusal(fixtureBytes('malicious_zip.pth'), 'malicious_zip.pth');
    expect(err.message).toContain(
      "forbidden pickle global 'os.system' in malicious_zip.pth; only tensors and ordered dicts are allowed",
    );
    expect(existsSync(fixture.marker)).toBe(false);
  });

  it('refuses a legacy pickle that calls posix.system (what pickle writes for os.system on Linux)', async () => {
    rmSync(fixture.marker, { force: true });
    const err = await refusal(fixtureBytes('malicious_legacy.pth'), 'malicious_legacy.pth');
    expect(err.message).toContain("forbidden pickle global 'posix.system'");
    expect(existsSync(fixture.marker)).toBe(false);
  });

  for (const file of ['tiny_zip.pth', 'tiny_legacy.pth']) {
    it(`${file}: every truncation gives a FileFormatError naming the file`, async () => {
      const bytes = fixtureBytes(file);
      const cuts = new Set([0, 1, 2, 8, 20, 64, 200, bytes.length - 22, bytes.length - 8, bytes.length - 1]);
      for (let f = 0.05; f < 1; f += 0.05) cuts.add(Math.floor(bytes.length * f));
      for (const cut of cuts) await refusal(bytes.slice(0, cut), `${file}[:${cut}]`);
    });
  }

  it('legacy: a wrong magic number, a garbage opcode or a short storage is a FileFormatError', async () => {
    const bytes = fixtureBytes('tiny_legacy.pth');
    const magic = bytes.slice();
    magic[5] ^= 0xff; // inside the LONG1 magic number
    expect((await refusal(magic, 'magic.pth')).message).toContain('magic number');
    const opcode = bytes.slice();
    opcode[140] = 0xff; // inside the object pickle
    await refusal(opcode, 'opcode.pth');
    // Drop one byte from the middle of the storage data: every later storage is misread.
    const cut = new Uint8Array(bytes.length - 1);
    cut.set(bytes.subarray(0, bytes.length - 40));
    cut.set(bytes.subarray(bytes.length - 39), bytes.length - 40);
    await refusal(cut, 'shifted.pth');
  });

  it('zip: corrupt storage bytes fail the CRC; a broken or truncated data.pkl is named', async () => {
    const bytes = fixtureBytes('tiny_zip.pth');
    const flipped = bytes.slice();
    const data0 = listZip(bytes).find((e) => e.name === 'tiny_zip/data/0')!;
    flipped[data0.dataOffset + 5] ^= 0x10;
    expect((await refusal(flipped, 'flipped.pth')).message).toMatch(/CRC-32.*corrupt/);

    const entries = await readZip(bytes, 'tiny_zip.pth');
    const rebuild = (patch: (pkl: Uint8Array) => Uint8Array) =>
      buildZip([...entries].map(([name, data]) => ({ name, data: name.endsWith('data.pkl') ? patch(data) : data })));
    const short = await refusal(rebuild((p) => p.slice(0, p.length >> 1)), 'short_pkl.pth');
    expect(short.message).toMatch(/truncated.*tiny_zip\/data\.pkl/);
    const missing = await refusal(
      buildZip([...entries].filter(([n]) => n !== 'tiny_zip/data/3').map(([name, data]) => ({ name, data }))),
      'missing.pth',
    );
    expect(missing.message).toContain("storage entry 'tiny_zip/data/3' is missing");
    await refusal(buildZip([...entries].filter(([n]) => !n.endsWith('data.pkl')).map(([name, data]) => ({ name, data }))), 'nopkl.pth');
  });

  it('zip: reads a checkpoint whose entries are deflated, and one with ZIP64 fields', async () => {
    const entries = await readZip(fixtureBytes('tiny_zip.pth'), 'tiny_zip.pth');
    const specs = [...entries].map(([name, data]) => ({ name, data }));
    expectStateDict(await loadPth(buildZip(specs.map((s) => ({ ...s, deflate: true }))), 'deflated.pth'), fixture.state_dict);
    expectStateDict(await loadPth(buildZip(specs, { zip64: true }), 'zip64.pth'), fixture.state_dict);
  });

  it('zip: a big-endian byteorder entry is honoured', async () => {
    const entries = await readZip(fixtureBytes('tiny_zip.pth'), 'tiny_zip.pth');
    const swapped = [...entries].map(([name, data]) => {
      if (name !== 'tiny_zip/data/0') return { name, data };
      const out = data.slice(); // '0.weight' is F32: reverse each 4-byte word
      for (let i = 0; i < out.length; i += 4) out.subarray(i, i + 4).reverse();
      return { name, data: out };
    });
    swapped.push({ name: 'tiny_zip/byteorder', data: new TextEncoder().encode('big') });
    const sd = await loadPth(buildZip(swapped), 'big.pth');
    expect(Array.from(sd.get('0.weight')!.data)).toEqual(fixture.state_dict.tensors['0.weight'].data.map(Math.fround));
  });

  it('random bytes and empty files are FileFormatErrors', async () => {
    await refusal(new Uint8Array(0), 'empty.pth');
    await refusal(new Uint8Array(100).map((_, i) => (i * 37) & 0xff), 'noise.pth');
    await refusal(new TextEncoder().encode('<html>not found</html>'), 'html.pth');
  });
});

describe('loadPth: hostile structure', () => {
  it('a cyclic object pickle is flattened once, not forever', async () => {
    const entries = await readZip(fixtureBytes('malicious_zip.pth'), 'malicious_zip.pth');
    // {'weight': tensor, 'self': <the dict itself>} built from the storage torch wrote.
    const unicode = (s: string) => [0x58, s.length, 0, 0, 0, ...new TextEncoder().encode(s)];
    const pkl = new Uint8Array([
      0x80, 2, 0x7d, 0x71, 0, ...unicode('weight'),
      0x63, ...new TextEncoder().encode('torch._utils\n_rebuild_tensor_v2\n'), 0x28,
      0x28, ...unicode('storage'), 0x63, ...new TextEncoder().encode('torch\nFloatStorage\n'), ...unicode('0'), ...unicode('cpu'), 0x4b, 1, 0x74, 0x51,
      0x4b, 0, 0x29, 0x29, 0x89, 0x7d, 0x74, 0x52, 0x73,
      ...unicode('self'), 0x68, 0, 0x73, 0x2e,
    ]);
    const specs = [...entries].map(([name, data]) => ({ name, data: name.endsWith('data.pkl') ? pkl : data }));
    const sd = await loadPth(buildZip(specs), 'cycle.pth');
    expect([...sd.keys()]).toEqual(['weight']);
    expect(sd.get('weight')).toMatchObject({ shape: [], data: new Float32Array([fixture.state_dict.tensors['extra.scalar'].data[0]]) });
  });
});
