// scripts/sync_dist.mjs, the last step of `npm run build`: dist/ ends with exactly the new build's files, but a
// file whose bytes did not change is never removed or rewritten (same inode, same mtime: a CLI running from
// dist/ keeps finding it while the build runs), a changed one is replaced whole by a rename (a process that
// had it open keeps reading the old bytes), and files the build no longer makes go. `npm run build` goes
// through it (package.json), with tsup writing into a staging folder (tsup.config.ts reads PIX2PIX_BUILD_OUT).
import { describe, it, expect } from 'vitest';
import { existsSync, mkdirSync, mkdtempSync, openSync, readFileSync, readSync, readdirSync, statSync, utimesSync, writeFileSync, closeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
// @ts-expect-error: a plain .mjs build script without declarations
import { syncDist } from '../../scripts/sync_dist.mjs';

const ROOT = resolve(import.meta.dirname, '../..');

function writeTree(dir: string, files: Record<string, string>): void {
  for (const [rel, text] of Object.entries(files)) {
    mkdirSync(dirname(join(dir, rel)), { recursive: true });
    writeFileSync(join(dir, rel), text);
  }
}

function tree(dir: string, sub = ''): Record<string, string> {
  const out: Record<string, string> = {};
  for (const e of readdirSync(join(dir, sub), { withFileTypes: true })) {
    const rel = sub ? `${sub}/${e.name}` : e.name;
    if (e.isDirectory()) Object.assign(out, tree(dir, rel));
    else out[rel] = readFileSync(join(dir, rel), 'utf8');
  }
  return out;
}

describe('syncDist (npm run build)', () => {
  it('leaves unchanged files untouched, replaces changed ones by rename, adds new ones, removes stale ones and their empty folders', () => {
    const base = mkdtempSync(join(tmpdir(), 'sync-dist-'));
    const dist = join(base, 'dist');
    const built = join(base, 'built');
    writeTree(dist, { 'cli.js': 'cli v1', 'chunk-AAAA.js': 'shared', 'study_node-OLD.js': 'old study', 'bench/cli.js': 'bench v1', 'gone/x.js': 'x' });
    writeTree(built, { 'cli.js': 'cli v2', 'chunk-AAAA.js': 'shared', 'study_node-NEW.js': 'new study', 'bench/cli.js': 'bench v1', 'index.d.ts': 'types' });
    // An old mtime makes a rewrite with the same bytes visible.
    const old = new Date('2020-01-01T00:00:00Z');
    for (const f of ['chunk-AAAA.js', 'bench/cli.js', 'cli.js']) utimesSync(join(dist, f), old, old);
    const before = Object.fromEntries(['chunk-AAAA.js', 'bench/cli.js', 'cli.js'].map((f) => [f, statSync(join(dist, f))]));
    // A reader that opened the old cli.js before the build.
    const fd = openSync(join(dist, 'cli.js'), 'r');

    const r = syncDist(built, dist);

    expect(tree(dist)).toEqual(tree(built));
    expect(existsSync(join(dist, 'gone'))).toBe(false);
    expect({ ...r, unchanged: [...r.unchanged].sort() }).toEqual({
      unchanged: ['bench/cli.js', 'chunk-AAAA.js'],
      replaced: ['cli.js'],
      added: ['index.d.ts', 'study_node-NEW.js'],
      removed: ['gone/x.js', 'study_node-OLD.js'],
    });
    for (const f of ['chunk-AAAA.js', 'bench/cli.js']) {
      const s = statSync(join(dist, f));
      expect([s.ino, s.mtimeMs], f).toEqual([before[f].ino, before[f].mtimeMs]);
    }
    // Replaced by a rename, not rewritten in place: a new inode, and the open file still reads the old bytes.
    expect(statSync(join(dist, 'cli.js')).ino).not.toBe(before['cli.js'].ino);
    const buf = Buffer.alloc(16);
    const n = readSync(fd, buf, 0, 16, 0);
    closeSync(fd);
    expect(buf.subarray(0, n).toString()).toBe('cli v1');
    // No temporary file is left beside the targets, and the build folder is as it was.
    expect(Object.keys(tree(dist)).filter((f) => f.endsWith('.tmp'))).toEqual([]);
    expect(Object.keys(tree(built)).sort()).toEqual(['bench/cli.js', 'chunk-AAAA.js', 'cli.js', 'index.d.ts', 'study_node-NEW.js']);
  });

  it('fills a missing dist/', () => {
    const base = mkdtempSync(join(tmpdir(), 'sync-dist-'));
    writeTree(join(base, 'built'), { 'a.js': 'a', 'bench/b.js': 'b' });
    const r = syncDist(join(base, 'built'), join(base, 'dist'));
    expect(tree(join(base, 'dist'))).toEqual({ 'a.js': 'a', 'bench/b.js': 'b' });
    expect(r.added.sort()).toEqual(['a.js', 'bench/b.js']);
  });

  it('npm run build goes through the staging build, and tsup writes where it is told', () => {
    const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { scripts: Record<string, string> };
    expect(pkg.scripts.build).toBe('node scripts/build.mjs');
    const config = readFileSync(join(ROOT, 'tsup.config.ts'), 'utf8');
    // Every tsup config writes under the staging folder: no hard-coded dist/ that `clean` or a write would hit.
    expect(config).not.toMatch(/outDir: 'dist/);
    expect(config.match(/outDir: /g)?.length).toBe(3);
  });
});
