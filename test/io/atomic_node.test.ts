import { copyFileSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { loadStateDictFile, readFileBytes, saveSafetensorsFile, writeFileAtomic } from '../../src/io/atomic_node.js';
import { FileFormatError } from '../../src/runtime/errors.js';
import { expectStateDict, fixture, fixturePath } from './helpers.js';

const dir = mkdtempSync(join(tmpdir(), 'pix2pix-io-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('atomic checkpoint files', () => {
  it('writeFileAtomic replaces the target and leaves no temporary file', async () => {
    const path = join(dir, 'a.bin');
    writeFileSync(path, 'old contents');
    await writeFileAtomic(path, new Uint8Array([1, 2, 3]));
    expect(Array.from(await readFileBytes(path))).toEqual([1, 2, 3]);
    await writeFileAtomic(path, new Uint8Array([4]));
    expect(Array.from(readFileSync(path))).toEqual([4]);
    expect(readdirSync(dir).filter((f) => f.includes('a.bin'))).toEqual(['a.bin']);
  });

  it('a failed write leaves the old file untouched and no temporary behind', async () => {
    const path = join(dir, 'keep.bin');
    writeFileSync(path, 'precious');
    // Renaming a file over a directory fails after the temporary was written.
    const asDir = join(dir, 'adir');
    await import('node:fs/promises').then((fs) => fs.mkdir(join(asDir, 'inner'), { recursive: true }));
    await expect(writeFileAtomic(asDir, new Uint8Array(8))).rejects.toThrow();
    await expect(writeFileAtomic(join(dir, 'missing', 'x.bin'), new Uint8Array(8))).rejects.toThrow(/ENOENT/);
    expect(readFileSync(path, 'utf8')).toBe('precious');
    expect(readdirSync(dir).filter((f) => f.endsWith('.tmp'))).toEqual([]);
  });

  it('loadStateDictFile chooses the format by extension, else by the first bytes', async () => {
    expectStateDict(await loadStateDictFile(fixturePath('tiny_zip.pth')), fixture.state_dict);
    expectStateDict(await loadStateDictFile(fixturePath('tiny_legacy.pth')), fixture.state_dict);
    expectStateDict(await loadStateDictFile(fixturePath('python.safetensors')), fixture.safetensors);
    for (const [src, name] of [['tiny_zip.pth', 'zip.weights'], ['tiny_legacy.pth', 'legacy.weights'], ['python.safetensors', 'st.weights']]) {
      copyFileSync(fixturePath(src), join(dir, name));
    }
    expectStateDict(await loadStateDictFile(join(dir, 'zip.weights')), fixture.state_dict);
    expectStateDict(await loadStateDictFile(join(dir, 'legacy.weights')), fixture.state_dict);
    expectStateDict(await loadStateDictFile(join(dir, 'st.weights')), fixture.safetensors);
    writeFileSync(join(dir, 'junk.weights'), 'definitely not a checkpoint');
    await expect(loadStateDictFile(join(dir, 'junk.weights'))).rejects.toThrow(FileFormatError);
    await expect(loadStateDictFile(join(dir, 'junk.weights'))).rejects.toThrow(/junk\.weights.*unrecognised checkpoint/);
  });

  it('saveSafetensorsFile → loadStateDictFile round-trips, and errors name the path', async () => {
    const sd = await loadStateDictFile(fixturePath('tiny_legacy.pth'));
    const path = join(dir, 'g.safetensors');
    await saveSafetensorsFile(path, sd, { epoch: '3' });
    expectStateDict(await loadStateDictFile(path), fixture.state_dict, false);
    writeFileSync(path, readFileSync(path).subarray(0, 100));
    await expect(loadStateDictFile(path)).rejects.toThrow(new RegExp(`${path.replace(/[.\\]/g, '\\$&')}: `));
  });
});
