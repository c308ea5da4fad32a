#!/usr/bin/env node
// `npm run build`: tsup into a fresh staging folder, then bring dist/ in line with it file by file (see
// syncDist). tsup's own `clean` emptied dist/ at the start of every build and wrote it back over the next
// seconds to a minute (declarations), so a CLI started in that window found no dist/cli.js, and a running one
// (`node dist/cli.js demo`, minutes long) died at its next lazy import of a chunk that was gone. Now dist/ is
// never empty, unchanged files (most chunks: their names are hashes of their contents) are never touched, and a
// changed file is replaced by a rename (a reader sees the old file or the new one, never a partial one). What a
// running CLI can still meet is a chunk whose contents changed: its old name is removed at the end, as the
// published package must hold only this build's files.
import { spawnSync } from 'node:child_process';
import { mkdirSync, readFileSync, rmSync, utimesSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { syncDist } from './sync_dist.mjs';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
// Inside the repository (.tmp/ is git-ignored) so that the renames stay on one file system.
const staging = join(root, '.tmp', `build-${process.pid}`);
rmSync(staging, { recursive: true, force: true });
mkdirSync(staging, { recursive: true });
let status = 1;
try {
  const pkg = createRequire(import.meta.url).resolve('tsup/package.json');
  const tsup = join(dirname(pkg), JSON.parse(readFileSync(pkg, 'utf8')).bin.tsup);
  const r = spawnSync(process.execPath, [tsup, ...process.argv.slice(2)], { cwd: root, stdio: 'inherit', env: { ...process.env, PIX2PIX_BUILD_OUT: staging } });
  status = r.status ?? 1;
  if (status === 0) {
    const s = syncDist(staging, join(root, 'dist'));
    // `npm run example` rebuilds when a source is newer than dist/cli.js: date the build there even when
    // cli.js's bytes did not change (a new timestamp, same file: a running CLI is not affected).
    const now = new Date();
    utimesSync(join(root, 'dist', 'cli.js'), now, now);
    if (process.env.PIX2PIX_BUILD_VERBOSE) console.log(`dist: ${s.replaced.length} replaced, ${s.added.length} added, ${s.removed.length} removed, ${s.unchanged.length} unchanged`);
  }
} finally {
  rmSync(staging, { recursive: true, force: true });
}
process.exit(status);
