import { copyFileSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { appendFile, chmod, mkdir } from 'node:fs/promises';
import { FileWriteError, fileWriteError, linkFileAtomic, loadStateDictFile, readFileBytes, removeStaleTemporaries, saveSafetensorsFile, writeFileAtomic } from '../../src/io/atomic_node.js';
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
    await expect(writeFileAtomic(join(dir, 'missing', 'x.bin'), new Uint8Array(8))).rejects.toThrow(/^cannot write .*missing\/x\.bin: its folder does not exist \(ENOENT\)$/);
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

describe('write errors name the file and say why', () => {
  it('a read-only folder is reported as permission denied, naming the file (as a non-root user)', async () => {
    const ro = join(dir, 'readonly');
    await mkdir(ro);
    await chmod(ro, 0o555);
    const target = join(ro, 'latest_net_G.safetensors');
    let message: string;
    if (process.getuid?.() === 0) {
      // root writes anywhere: run the same call as 'nobody' in a child.
      await chmod(dir, 0o755);
      const script = `import { writeFileAtomic } from ${JSON.stringify(join(process.cwd(), 'src/io/atomic_node.ts'))};
        writeFileAtomic(${JSON.stringify(target)}, new Uint8Array(4)).then(() => console.log('WROTE'), (e) => console.log(e.constructor.name + ' ' + e.message));`;
      const file = join(dir, 'as_nobody.ts');
      writeFileSync(file, script);
      const r = spawnSync(join(process.cwd(), 'node_modules/.bin/vite-node'), [file], { uid: 65534, gid: 65534, encoding: 'utf8', timeout: 60_000 });
      message = (r.stdout + r.stderr).trim().split('\n').pop()!;
    } else {
      message = await writeFileAtomic(target, new Uint8Array(4)).then(() => 'WROTE', (e: Error) => `${e.constructor.name} ${e.message}`);
    }
    expect(message).toBe(`FileWriteError cannot write ${target}: permission denied (EACCES)`);
  }, 90_000);

  it('disk full (ENOSPC from a real write) names the file; read-only file systems say so', async () => {
    // /dev/full fails every write with ENOSPC, as a full disk does; Node's own message names no file.
    const raw = await appendFile('/dev/full', 'x').then(() => null, (e: unknown) => e);
    expect((raw as Error).message).not.toMatch(/\/dev\/full/);
    const e = fileWriteError(raw, 'out/loss_log.jsonl');
    expect(e).toBeInstanceOf(FileWriteError);
    expect(e.message).toBe('cannot write out/loss_log.jsonl: no space left on device (ENOSPC)');
    const rofs = Object.assign(new Error("EROFS: read-only file system, open 'x'"), { code: 'EROFS' });
    expect(fileWriteError(rofs, 'out/x.png').message).toBe('cannot write out/x.png: read-only file system (EROFS)');
    const plain = new TypeError('not a file-system error');
    expect(fileWriteError(plain, 'x')).toBe(plain);
  });
});

describe('stale temporaries and links', () => {
  it('removeStaleTemporaries removes what killed writers left, not a live writer\'s file nor other files', async () => {
    const d = join(dir, 'stale');
    await mkdir(d);
    // The pid of a process that has exited.
    const dead = spawnSync(process.execPath, ['-e', 'console.log(process.pid)'], { encoding: 'utf8' }).stdout.trim();
    const stale = `.latest_net_G.safetensors.${dead}.0123456789ab.tmp`;
    const mine = `.latest_optim.safetensors.${process.pid}.abcdefabcdef.tmp`;
    const live = `.latest_net_D.safetensors.${process.ppid}.abcdefabcdef.tmp`;
    for (const f of [stale, mine, live, 'latest_net_G.safetensors', 'notes.tmp']) writeFileSync(join(d, f), 'x');
    expect((await removeStaleTemporaries(d)).sort()).toEqual([stale, mine].sort());
    expect(readdirSync(d).sort()).toEqual([live, 'latest_net_G.safetensors', 'notes.tmp'].sort());
    expect(await removeStaleTemporaries(join(dir, 'no-such-folder'))).toEqual([]);
  });

  it('linkFileAtomic gives a file a second name (same bytes on disk), replacing the target atomically', async () => {
    const a = join(dir, 'set_G.bin');
    const b = join(dir, 'latest_G.bin');
    writeFileSync(a, 'new');
    writeFileSync(b, 'old');
    expect(await linkFileAtomic(a, b)).toBe('linked');
    expect(readFileSync(b, 'utf8')).toBe('new');
    const { statSync } = await import('node:fs');
    expect(statSync(b).ino).toBe(statSync(a).ino);
    expect(readdirSync(dir).filter((f) => f.endsWith('.tmp'))).toEqual([]);
  });
});
