/**
 * Node-only checkpoint file helpers: crash-safe writes and loading by format.
 * Never imported by the browser entry (src/index.ts).
 */
import { randomBytes } from 'node:crypto';
import { open, readFile, rename, unlink } from 'node:fs/promises';
import { basename, dirname, extname, join } from 'node:path';
import { FileFormatError } from '../runtime/errors.js';
import { isPth, loadPth } from './pth.js';
import { parseSafetensors, serializeSafetensors } from './safetensors.js';
import type { StateDict } from './state_dict.js';

/**
 * Write `bytes` to `path` atomically: into a temporary file in the same folder, fsync'd, then
 * renamed over the target. A crash leaves either the old file or the new one, never half of one.
 */
export async function writeFileAtomic(path: string, bytes: Uint8Array): Promise<void> {
  const dir = dirname(path);
  const tmp = join(dir, `.${basename(path)}.${process.pid}.${randomBytes(6).toString('hex')}.tmp`);
  const handle = await open(tmp, 'wx', 0o644);
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
    throw e;
  }
  // Persist the rename itself (the directory entry). Not possible on every platform (Windows).
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

/** Read a whole file as bytes. */
export async function readFileBytes(path: string): Promise<Uint8Array> {
  const buf = await readFile(path);
  return new Uint8Array(buf.buffer, buf.byteOffset, buf.byteLength);
}

/**
 * Load a checkpoint file as a StateDict: `.safetensors` as safetensors, `.pth` / `.pt` / `.bin` /
 * `.ckpt` as a torch checkpoint (zip or legacy); any other name by its first bytes.
 * Errors are FileFormatError naming `path`.
 */
export async function loadStateDictFile(path: string): Promise<StateDict> {
  const bytes = await readFileBytes(path);
  const ext = extname(path).toLowerCase();
  if (ext === '.safetensors') return parseSafetensors(bytes, path);
  if (['.pth', '.pt', '.bin', '.ckpt', '.tar'].includes(ext) || isPth(bytes)) return loadPth(bytes, path);
  if (bytes.length >= 9 && bytes[8] === 0x7b /* '{' after the u64 header length */) return parseSafetensors(bytes, path);
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
