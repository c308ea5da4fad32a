/**
 * Node-only checkpoint files for a Pix2Pix model, in a folder as the reference lays them out
 * (`<tag>_net_G`, `<tag>_net_D`), as safetensors, each written atomically (temporary file, fsync,
 * rename), so a crash mid-save leaves the previous checkpoint intact.
 *
 * The three files of one save are one set: each records the training step (and the epoch, when the
 * trainer knows it) in its safetensors metadata, and {@link loadCheckpoint} refuses a set whose files
 * come from different steps (a crash between two renames), naming each file and its step, instead of
 * silently pairing a step-6 generator with a step-3 optimizer.
 */
import { existsSync } from 'node:fs';
import { mkdir, open } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileWriteError, linkFileAtomic, readFileBytes, writeFileAtomic } from '../io/atomic_node.js';
import { Pix2PixError } from '../runtime/errors.js';
import { Pix2Pix, type Pix2PixOptions } from './pix2pix.js';

export interface CheckpointPaths {
  G: string;
  D: string;
  optimizer: string;
}

/** File names for a tag: `<tag>_net_G.safetensors`, `<tag>_net_D.safetensors`, `<tag>_optim.safetensors`. */
export function checkpointPaths(dir: string, tag = 'latest'): CheckpointPaths {
  return {
    G: join(dir, `${tag}_net_G.safetensors`),
    D: join(dir, `${tag}_net_D.safetensors`),
    optimizer: join(dir, `${tag}_optim.safetensors`),
  };
}

/** The files of one checkpoint set come from different training steps. */
export class MixedCheckpointError extends Pix2PixError {
  constructor(
    readonly files: { file: string; step: number }[],
    hint = '',
  ) {
    super('checkpoint set', `files from different training steps: ${files.map((f) => `${f.file} (step ${f.step})`).join(', ')}; a crash or a copy mixed two saves${hint ? `. ${hint}` : ''}`);
  }
}

/** Save G, D and the optimizer state under `dir` (created if needed). Returns the paths written. */
export async function saveCheckpoint(dir: string, model: Pix2Pix, opts: { tag?: string; epoch?: number } = {}): Promise<CheckpointPaths> {
  const paths = checkpointPaths(dir, opts.tag);
  try {
    await mkdir(dir, { recursive: true });
  } catch (e) {
    throw fileWriteError(e, dir);
  }
  const ck = await model.save();
  const set: Record<string, string> = { step: String(model.steps) };
  if (opts.epoch !== undefined) set.epoch = String(opts.epoch);
  // The optimizer file goes last: a resume needs all three, and it names the step they belong to.
  await writeFileAtomic(paths.G, withMetadata(ck.G, set));
  if (ck.D) await writeFileAtomic(paths.D, withMetadata(ck.D, set));
  if (ck.optimizer) await writeFileAtomic(paths.optimizer, withMetadata(ck.optimizer, set));
  return paths;
}

/**
 * Make `to`'s files of tag `toTag` the files of the set in `from` (hard links where the file system
 * allows, else copies; each replaced atomically). Files that `from` lacks are left as they are.
 */
export async function linkCheckpoint(from: string, to: string, opts: { fromTag?: string; toTag?: string } = {}): Promise<CheckpointPaths> {
  const src = checkpointPaths(from, opts.fromTag);
  const dst = checkpointPaths(to, opts.toTag);
  for (const k of ['G', 'D', 'optimizer'] as const) if (existsSync(src[k])) await linkFileAtomic(src[k], dst[k]);
  return dst;
}

/**
 * Load a model from `dir` (files of {@link saveCheckpoint}; D and optimizer optional), or from explicit
 * file paths, e.g. the reference's `latest_net_G.pth`. The architecture is inferred from the tensors.
 * With `discriminator: false` (inference) only G is read: a training folder's D and optimizer are ignored.
 * Every error names the file it concerns; a set whose files record different steps is refused
 * ({@link MixedCheckpointError}).
 */
export async function loadCheckpoint(
  source: string | { G: string; D?: string; optimizer?: string },
  opts: Pix2PixOptions & { tag?: string } = {},
): Promise<Pix2Pix> {
  const all: Partial<CheckpointPaths> = typeof source === 'string' ? checkpointPaths(source, opts.tag) : source;
  const withD = opts.discriminator !== false;
  const G = all.G!;
  const D = withD && all.D && existsSync(all.D) ? all.D : undefined;
  const optimizer = withD && all.optimizer && existsSync(all.optimizer) ? all.optimizer : undefined;
  await checkCheckpointSet({ G, D, optimizer }, typeof source === 'string' ? source : undefined);

  // The model reads only the tensors its networks take, and names these paths in every error.
  const named = async (path: string | undefined) => (path ? { data: await readFileBytes(path), name: path } : undefined);
  const [g, d, opt] = [await named(G), await named(D), await named(optimizer)];
  return Pix2Pix.fromStateDict({ G: g!, D: d, optimizer: opt }, opts);
}

/**
 * The step each file of a set records (safetensors metadata `step`; older optimizer files: `trainSteps`).
 * Files without one (the reference's .pth, checkpoints from before steps were recorded) are not compared.
 * Throws {@link MixedCheckpointError} when the recorded steps differ.
 */
export async function checkCheckpointSet(paths: { G: string; D?: string; optimizer?: string }, dir?: string): Promise<number | null> {
  const files: { file: string; step: number }[] = [];
  for (const file of [paths.G, paths.D, paths.optimizer]) {
    if (!file) continue;
    const meta = await readSafetensorsMetadata(file);
    const raw = meta?.step ?? meta?.trainSteps;
    if (raw !== undefined && Number.isFinite(Number(raw))) files.push({ file, step: Number(raw) });
  }
  if (new Set(files.map((f) => f.step)).size > 1) {
    let hint = '';
    const base = dir ?? dirname(paths.G);
    const state = join(base, 'train_state.json');
    if (existsSync(state)) hint = `The last complete set of a training run is the folder that ${state} names (train --resume repairs the latest_* files from it)`;
    throw new MixedCheckpointError(files, hint);
  }
  return files.length ? files[0].step : null;
}

/**
 * The `__metadata__` of a safetensors file, reading only its header; null when the file is not
 * safetensors-shaped (a .pth), so that the full reader reports what is wrong with it.
 */
export async function readSafetensorsMetadata(path: string): Promise<Record<string, string> | null> {
  let handle;
  try {
    handle = await open(path, 'r');
  } catch {
    return null; // the loader reports the missing or unreadable file
  }
  try {
    const size = (await handle.stat()).size;
    const head = new Uint8Array(8);
    if (size < 8 || (await handle.read(head, 0, 8, 0)).bytesRead < 8) return null;
    const n = Number(new DataView(head.buffer).getBigUint64(0, true));
    // Our headers are a few kB; a larger or impossible length is not one of ours, let the reader judge it.
    if (n < 2 || n > 16 << 20 || n > size - 8) return null;
    const json = new Uint8Array(n);
    await handle.read(json, 0, n, 8);
    const header = JSON.parse(new TextDecoder().decode(json)) as { __metadata__?: Record<string, string> };
    return header && typeof header === 'object' && header.__metadata__ && typeof header.__metadata__ === 'object' ? header.__metadata__ : {};
  } catch {
    return null;
  } finally {
    await handle.close();
  }
}

/** `bytes` (a safetensors file) with `extra` merged into its header's `__metadata__`; tensor data unchanged. */
export function withMetadata(bytes: Uint8Array, extra: Record<string, string>): Uint8Array {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const n = Number(view.getBigUint64(0, true));
  const header = JSON.parse(new TextDecoder().decode(bytes.subarray(8, 8 + n))) as Record<string, unknown>;
  header.__metadata__ = { ...((header.__metadata__ as Record<string, string>) ?? {}), ...extra };
  let text = JSON.stringify(header);
  // The format pads the header with spaces so that the data starts 8-byte aligned.
  text += ' '.repeat((8 - ((8 + new TextEncoder().encode(text).length) % 8)) % 8);
  const json = new TextEncoder().encode(text);
  const out = new Uint8Array(8 + json.length + (bytes.length - 8 - n));
  new DataView(out.buffer).setBigUint64(0, BigInt(json.length), true);
  out.set(json, 8);
  out.set(bytes.subarray(8 + n), 8 + json.length);
  return out;
}
