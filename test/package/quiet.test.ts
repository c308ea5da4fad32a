// A library call prints nothing unless asked: Dawn's two "maxDynamic...BuffersPerPipelineLayout artificially
// reduced" warnings (printed from native code at adapter discovery) are filtered, everything else on stderr
// still gets through, and `dawnWarnings: true` lets them out. Runs the built package in a child process.
import { describe, it, expect } from 'vitest';
import { spawnSync } from 'node:child_process';
import { closeSync, existsSync, mkdtempSync, openSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';

// PIX2PIX_PACK_ROOT: test another build of this tree (as test/package/consumer.test.ts does).
const DIST = resolve(process.env.PIX2PIX_PACK_ROOT ?? resolve(import.meta.dirname, '../..'), 'dist/index.js');
const WARNING = /maxDynamic(Uniform|Storage)BuffersPerPipelineLayout artificially reduced/g;

const script = (contexts: number, dawnWarnings: boolean) => `
import { createContext } from ${JSON.stringify(pathToFileURL(DIST).href)};
console.error('before');
for (let i = 0; i < ${contexts}; i++) {
  const ctx = await createContext({ dawnWarnings: ${dawnWarnings} });
  ctx.destroy();
}
console.error('after');
`;

type Stderr = 'file' | 'pipe' | 'socket';

/** Run the script with stderr as a file (`2> log`), a real pipe (`| cat`), or a socket (Node's stdio 'pipe'). */
function stderrOf(code: string, kind: Stderr): string {
  const env = { ...process.env, XDG_RUNTIME_DIR: process.env.XDG_RUNTIME_DIR ?? tmpdir() };
  if (kind === 'socket') {
    const r = spawnSync(process.execPath, ['--input-type=module', '-e', code], { env, encoding: 'utf8', timeout: 120_000 });
    expect(r.status, r.stderr).toBe(0);
    return r.stderr;
  }
  const dir = mkdtempSync(join(tmpdir(), 'pix2pix-quiet-'));
  try {
    const errPath = join(dir, 'stderr');
    const fd = openSync(errPath, 'w');
    const r =
      kind === 'file'
        ? spawnSync(process.execPath, ['--input-type=module', '-e', code], { env, timeout: 120_000, stdio: ['ignore', 'ignore', fd] })
        : spawnSync('bash', ['-c', 'set -o pipefail; "$0" --input-type=module -e "$1" 2>&1 >/dev/null | cat >&2', process.execPath, code], {
            env,
            timeout: 120_000,
            stdio: ['ignore', 'ignore', fd],
          });
    closeSync(fd);
    expect(r.status).toBe(0);
    return readFileSync(errPath, 'utf8');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

describe('quiet by default (built package, Dawn in a child process)', () => {
  it.each(['file', 'pipe'] as const)('creating contexts prints nothing but the caller’s own lines (stderr a %s)', (kind) => {
    if (!existsSync(DIST)) throw new Error(`${DIST} is missing: run \`npm run build\` first (npm test does)`);
    expect(stderrOf(script(2, false), kind)).toBe('before\nafter\n');
  });

  it('with a socket for stderr the warnings appear at most once per process, not per context', () => {
    const err = stderrOf(script(3, false), 'socket');
    expect(err.match(WARNING)?.length ?? 0).toBeLessThanOrEqual(2);
    expect(err.startsWith('before\n') && err.endsWith('after\n')).toBe(true);
  });

  it('dawnWarnings: true lets Dawn’s warnings through (they are real on this driver, so the filter is tested)', () => {
    const err = stderrOf(script(1, true), 'file');
    expect(err.match(WARNING)?.length).toBe(2);
  });
});
