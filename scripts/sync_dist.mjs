// Bring a build folder (dist/) in line with a freshly built one without ever emptying it (scripts/build.mjs says
// why). Files with the same bytes are left alone, new and changed ones are copied beside their target and
// renamed over it (atomic on one file system), and files the new build no longer makes are removed last.
import { copyFileSync, existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmdirSync, statSync, unlinkSync } from 'node:fs';
import { dirname, join } from 'node:path';

/** Relative paths of the files under `dir` (none if it does not exist). */
function listFiles(dir, sub = '') {
  if (!existsSync(join(dir, sub))) return [];
  const out = [];
  for (const e of readdirSync(join(dir, sub), { withFileTypes: true })) {
    const rel = sub ? join(sub, e.name) : e.name;
    if (e.isDirectory()) out.push(...listFiles(dir, rel));
    else out.push(rel);
  }
  return out;
}

function sameBytes(a, b) {
  if (statSync(a).size !== statSync(b).size) return false;
  return readFileSync(a).equals(readFileSync(b));
}

/**
 * Make `dest` hold exactly the files of `built` (same relative paths, same bytes). Returns what it did, by
 * relative path. `built` is left as it was.
 */
export function syncDist(built, dest) {
  const fresh = listFiles(built);
  const freshSet = new Set(fresh);
  const result = { unchanged: [], replaced: [], added: [], removed: [] };
  for (const rel of fresh) {
    const src = join(built, rel);
    const dst = join(dest, rel);
    const exists = existsSync(dst);
    if (exists && statSync(dst).isFile() && sameBytes(src, dst)) {
      result.unchanged.push(rel);
      continue;
    }
    mkdirSync(dirname(dst), { recursive: true });
    // A hidden temporary name in the same folder: the rename is what makes the new file appear, whole.
    const tmp = join(dirname(dst), `.${process.pid}.${Math.random().toString(36).slice(2)}.tmp`);
    copyFileSync(src, tmp);
    renameSync(tmp, dst);
    (exists ? result.replaced : result.added).push(rel);
  }
  for (const rel of listFiles(dest)) {
    if (freshSet.has(rel)) continue;
    unlinkSync(join(dest, rel));
    result.removed.push(rel);
  }
  removeEmptyDirs(dest, true);
  return result;
}

/** Remove folders left empty under `dir` (not `dir` itself when `keep`). */
function removeEmptyDirs(dir, keep) {
  if (!existsSync(dir)) return;
  for (const e of readdirSync(dir, { withFileTypes: true })) if (e.isDirectory()) removeEmptyDirs(join(dir, e.name), false);
  if (!keep && readdirSync(dir).length === 0) rmdirSync(dir);
}
