/**
 * Node-only checkpoint file helpers: crash-safe writes and loading by format.
 * Never imported by the browser entry (src/index.ts).
 */
import { randomBytes } from 'node:crypto';
import { copyFile, link, open, readdir, readFile, rename, unlink } from 'node:fs/promises';
import { basename, dirname, extname, join } from 'node:path';
import { FileFormatError, Pix2PixError } from '../runtime/errors.js';
import { isPth, loadPth, type PthOptions } from './pth.js';
import { parseSafetensors, serializeSafetensors, type SafetensorsOptions } from './safetensors.js';
import type { StateDict } from './state_dict.js';

/**
 * Write `bytes` to `path` atomically: into a temporary file in the same folder, fsync'd, then
 * renamed over the target. A crash leaves either the old file or the new one, never half of one.
 */
export async function writeFileAtomic(path: string, bytes: Uint8Array): Promise<void> {
  const tmp = temporaryName(path);
  let handle;
  try {
    handle = await open(tmp, 'wx', 0o644);
  } catch (e) {
    throw fileWriteError(e, path);
  }
  try {
    try {
      await handle.writeFile(bytes);
      await handle.sync();
    } finally {
      await handle.close();
    }
    await rename(tmp, path);
  } catch (e) {
    await unlink(tmp).catch(() => undefined);
    throw fileWriteError(e, path);
  }
  await syncDirectory(dirname(path));
}

/**
 * Make `path` name the same file as `existing` (a hard link), atomically replacing what `path` named.
 * Where hard links are impossible (another file system, FAT, some network shares) the bytes are copied
 * instead, still through a temporary and a rename. Used so a checkpoint set and the `latest_*` files
 * people open share their bytes on disk instead of being two copies of hundreds of megabytes.
 */
export async function linkFileAtomic(existing: string, path: string): Promise<'linked' | 'copied'> {
  const tmp = temporaryName(path);
  let how: 'linked' | 'copied' = 'linked';
  try {
    try {
      await link(existing, tmp);
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (!['EXDEV', 'EPERM', 'ENOTSUP', 'EOPNOTSUPP', 'EMLINK', 'ENOSYS'].includes(code ?? '')) throw e;
      how = 'copied';
      await copyFile(existing, tmp);
      const h = await open(tmp, 'r+');
      try {
        await h.sync();
      } finally {
        await h.close();
      }
    }
    await rename(tmp, path);
  } catch (e) {
    await unlink(tmp).catch(() => undefined);
    throw fileWriteError(e, path);
  }
  await syncDirectory(dirname(path));
  return how;
}

/** The temporary that {@link writeFileAtomic} writes before its rename: `.<name>.<pid>.<12 hex>.tmp`. */
function temporaryName(path: string): string {
  return join(dirname(path), `.${basename(path)}.${process.pid}.${randomBytes(6).toString('hex')}.tmp`);
}

const TEMPORARY = /^\..+\.(\d+)\.[0-9a-f]{12}\.tmp$/;

/**
 * Remove the temporaries that a killed {@link writeFileAtomic} left in `dir` (a kill between the write
 * and the rename). A temporary of a process that is still running (another writer) is left alone.
 * Returns the names removed.
 */
export async function removeStaleTemporaries(dir: string): Promise<string[]> {
  let names: string[];
  try {
    names = await readdir(dir);
  } catch {
    return [];
  }
  const removed: string[] = [];
  for (const name of names) {
    const m = TEMPORARY.exec(name);
    if (!m) continue;
    const pid = Number(m[1]);
    if (pid !== process.pid && processIsAlive(pid)) continue;
    try {
      await unlink(join(dir, name));
      removed.push(name);
    } catch (e) {
      throw fileWriteError(e, join(dir, name));
    }
  }
  return removed;
}

function processIsAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    // EPERM: it exists but belongs to someone else.
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Persist a rename (the directory entry). Not possible on every platform (Windows): best effort. */
async function syncDirectory(dir: string): Promise<void> {
  try {
    const d = await open(dir, 'r');
    try {
      await d.sync();
    } finally {
      await d.close();
    }
  } catch {
    // best effort
  }
}

/** Writing a file failed; names the file and says why in words (read-only, permission, disk full). */
export class FileWriteError extends Pix2PixError {
  constructor(
    readonly file: string,
    readonly code: string | undefined,
    readonly reason: string,
    /** What the caller adds, e.g. which checkpoint survived. */
    readonly note?: string,
  ) {
    // One line that reads as a sentence: "cannot write out/x.png: read-only file system (EROFS)".
    super(`cannot write ${file}`, `${code ? `${reason} (${code})` : reason}${note ? `; ${note}` : ''}`);
  }
}

const WRITE_REASONS: Record<string, string> = {
  EACCES: 'permission denied',
  EPERM: 'permission denied',
  EROFS: 'read-only file system',
  ENOSPC: 'no space left on device',
  EDQUOT: 'disk quota exceeded',
  EISDIR: 'it is a folder',
  ENOTDIR: 'a part of the path is not a folder',
  ENOENT: 'its folder does not exist',
  EMFILE: 'too many open files',
};

/**
 * Turn a Node file-system error from writing `path` into a {@link FileWriteError} that names the file.
 * Node's own messages do not always do so (an ENOSPC from write() says only "write"). Errors that are
 * not file-system errors are returned unchanged.
 */
export function fileWriteError(e: unknown, path: string): Error {
  if (e instanceof Pix2PixError) return e;
  const err = e as NodeJS.ErrnoException;
  if (!err || typeof err.code !== 'string') return e as Error;
  const reason = WRITE_REASONS[err.code] ?? err.message.replace(/^[A-Z]+: /, '');
  const out = new FileWriteError(path, err.code, reason);
  out.cause = e;
  return out;
}

/** Read a whole file as bytes. */
export async function readFileBytes(path: string): Promise<Uint8Array> {
  const buf = await readFile(path);
  return new Uint8Array(buf.buffer, buf.byteOffset, buf.byteLength);
}

/**
 * Load a checkpoint file as a StateDict: `.safetensors` as safetensors, `.pth` / `.pt` / `.bin` /
 * `.ckpt` as a torch checkpoint (zip or legacy); any other name by its first bytes.
 * Errors are FileFormatError naming `path`. `options.keep` selects the tensors to materialise (the
 * others are never decoded) and `options.budget` overrides the read budget (io/budget.ts).
 */
export async function loadStateDictFile(path: string, options: PthOptions & SafetensorsOptions = {}): Promise<StateDict> {
  const bytes = await readFileBytes(path);
  const ext = extname(path).toLowerCase();
  if (ext === '.safetensors') return parseSafetensors(bytes, path, options);
  if (['.pth', '.pt', '.bin', '.ckpt', '.tar'].includes(ext) || isPth(bytes)) return loadPth(bytes, path, options);
  if (bytes.length >= 9 && bytes[8] === 0x7b /* '{' after the u64 header length */) return parseSafetensors(bytes, path, options);
  throw new FileFormatError(path, 'unrecognised checkpoint: neither safetensors nor a torch .pth (zip or legacy pickle)');
}

/** Serialize `dict` as safetensors (F32) and write it atomically to `path`. */
export async function saveSafetensorsFile(
  path: string,
  dict: StateDict,
  metadata?: Record<string, string>,
): Promise<void> {
  await writeFileAtomic(path, serializeSafetensors(dict, metadata));
}
