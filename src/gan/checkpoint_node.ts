/**
 * Node-only checkpoint files for a Pix2Pix model, in a folder as the reference lays them out
 * (`<tag>_net_G`, `<tag>_net_D`), as safetensors, each written atomically (temporary file, fsync,
 * rename), so a crash mid-save leaves the previous checkpoint intact.
 */
import { existsSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { loadStateDictFile, readFileBytes, writeFileAtomic } from '../io/atomic_node.js';
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

/** Save G, D and the optimizer state under `dir` (created if needed). Returns the paths written. */
export async function saveCheckpoint(dir: string, model: Pix2Pix, opts: { tag?: string } = {}): Promise<CheckpointPaths> {
  const paths = checkpointPaths(dir, opts.tag);
  await mkdir(dir, { recursive: true });
  const ck = await model.save();
  // The optimizer file goes last: a resume needs all three, and it names the step they belong to.
  await writeFileAtomic(paths.G, ck.G);
  if (ck.D) await writeFileAtomic(paths.D, ck.D);
  if (ck.optimizer) await writeFileAtomic(paths.optimizer, ck.optimizer);
  return paths;
}

/**
 * Load a model from `dir` (files of {@link saveCheckpoint}; D and optimizer optional), or from explicit
 * file paths, e.g. the reference's `latest_net_G.pth`. The architecture is inferred from the tensors.
 */
export async function loadCheckpoint(
  source: string | { G: string; D?: string; optimizer?: string },
  opts: Pix2PixOptions & { tag?: string } = {},
): Promise<Pix2Pix> {
  const paths = typeof source === 'string' ? checkpointPaths(source, opts.tag) : source;
  const G = await loadStateDictFile(paths.G);
  const D = paths.D && existsSync(paths.D) ? await loadStateDictFile(paths.D) : undefined;
  const optimizer = paths.optimizer && existsSync(paths.optimizer) ? await readFileBytes(paths.optimizer) : undefined;
  return Pix2Pix.fromStateDict({ G, D, optimizer }, opts);
}
