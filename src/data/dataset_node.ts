/**
 * Paired image datasets on disk (Node). Three layouts, as the reference pix2pix and the seed paper use:
 *  - aligned: a folder of A|B images side by side (the reference's `--dataset_mode aligned`), each split
 *    into halves; with train/ and test/ subfolders, `phase` picks one (without it, all are listed and
 *    each entry's `split` is its subfolder);
 *  - paired folders: A/ and B/ (or A/<phase>/ and B/<phase>/), matched by file name without extension;
 *  - a manifest (CSV or JSON, see manifest.ts) naming the files with animal, fur, bed, pose and split;
 *    picked up automatically when manifest.csv or manifest.json is in the folder or its parent.
 *
 * Opening checks every file's header (sizes, A/B agreement) so errors surface before training; with
 * `skipBad` each image is also fully decoded and bad pairs are skipped and listed instead of thrown.
 * Errors are {@link FileFormatError}s that name the file, and what was expected against what was found.
 */
import { existsSync, statSync } from 'node:fs';
import { readdir, readFile } from 'node:fs/promises';
import { basename, dirname, extname, join, relative, resolve, sep } from 'node:path';
import { FileFormatError } from '../runtime/errors.js';
import { convertChannels, cropImage, type ImageF32 } from './image.js';
import { readImage, readImageInfo } from './image_node.js';
import { parseManifest, type ManifestEntry } from './manifest.js';

/** One image pair: an aligned A|B file (`path`) or separate files (`aPath`, `bPath`). */
export interface PairEntry {
  /** Unique name: the path relative to the dataset folder, with '/' separators. */
  name: string;
  path?: string;
  aPath?: string;
  bPath?: string;
  animal?: string;
  fur?: string;
  bed?: string;
  pose?: number;
  split?: string;
}

export interface PairedDatasetOptions {
  /** Channels of A (input) after loading: 1 = ITU-R 601 luma, as PIL's convert('L'). Default 3. */
  inputChannels?: 1 | 3;
  /** Channels of B (output). Default 3 (the reference's output_nc); 1 for gray X-rays. */
  outputChannels?: 1 | 3;
  /** Skip unreadable or inconsistent pairs (listed in `skipped`) instead of throwing. */
  skipBad?: boolean;
  /** Fully decode every image when opening (default: true with skipBad, else header checks only). */
  verify?: boolean;
  /** Manifest file (CSV or JSON); by default manifest.csv / manifest.json in the folder or its parent. */
  manifest?: string;
  /** Subfolder to load (train, test, ...), as the reference's --phase. */
  phase?: string;
  /** 'BtoA' swaps A and B, as the reference's --direction. */
  direction?: 'AtoB' | 'BtoA';
}

export interface PairedDataset {
  /** The folder that was opened (after `phase`). */
  root: string;
  layout: 'aligned' | 'folders';
  /** The manifest that listed the files, if any. */
  manifest?: string;
  entries: PairEntry[];
  skipped: { file: string; reason: string }[];
  /** Load pair i as [0, 1] images: a = input (inputChannels), b = output (outputChannels). */
  load(i: number): Promise<{ a: ImageF32; b: ImageF32 }>;
}

/** Image file extensions read (sharp): PNG, JPEG, TIFF, WebP. */
export const IMAGE_EXTENSIONS = ['.png', '.jpg', '.jpeg', '.tif', '.tiff', '.webp'];

function isImage(name: string): boolean {
  return !name.startsWith('.') && IMAGE_EXTENSIONS.includes(extname(name).toLowerCase());
}

function isDir(p: string): boolean {
  try {
    return statSync(p).isDirectory();
  } catch {
    return false;
  }
}

async function listImages(dir: string): Promise<string[]> {
  const names = await readdir(dir);
  return names.filter((n) => isImage(n) && !isDir(join(dir, n))).sort();
}

function stem(name: string): string {
  return basename(name, extname(name));
}

function posix(p: string): string {
  return p.split(sep).join('/');
}

const SPLIT_FOLDERS = ['train', 'val', 'test'];

function findManifest(root: string, explicit: string | undefined): string | undefined {
  if (explicit !== undefined) {
    const candidates = [resolve(explicit), resolve(root, explicit)];
    const found = candidates.find((p) => existsSync(p));
    if (!found) throw new FileFormatError(explicit, `manifest not found (looked at ${candidates.join(' and ')})`);
    return found;
  }
  for (const d of [root, dirname(root)]) {
    for (const n of ['manifest.csv', 'manifest.json']) if (existsSync(join(d, n))) return join(d, n);
  }
  return undefined;
}

/**
 * Open a paired dataset: list its pairs, check them, and return a loader. See the file comment for
 * the layouts. Throws {@link FileFormatError} naming the folder or file for: a missing or empty folder,
 * an A with no B partner (or B with no A), A/B sizes that differ, an aligned image of odd width, a
 * manifest row naming a missing file, and (without skipBad) any unreadable image.
 */
export async function loadPairedDataset(dir: string, opts: PairedDatasetOptions = {}): Promise<PairedDataset> {
  const inputChannels = opts.inputChannels ?? 3;
  const outputChannels = opts.outputChannels ?? 3;
  const skipBad = opts.skipBad ?? false;
  const verify = opts.verify ?? skipBad;
  const skipped: { file: string; reason: string }[] = [];
  const base = resolve(dir);
  if (!isDir(base)) throw new FileFormatError(dir, existsSync(base) ? 'is not a folder' : 'no such folder');

  let root = base;
  let pairedA: string | undefined;
  let pairedB: string | undefined;
  if (opts.phase !== undefined) {
    if (isDir(join(base, opts.phase))) root = join(base, opts.phase);
    else if (isDir(join(base, 'A', opts.phase)) && isDir(join(base, 'B', opts.phase))) {
      pairedA = join(base, 'A', opts.phase);
      pairedB = join(base, 'B', opts.phase);
    } else throw new FileFormatError(dir, `no "${opts.phase}" subfolder (nor A/${opts.phase} and B/${opts.phase})`);
  }
  if (!pairedA && isDir(join(root, 'A')) && isDir(join(root, 'B'))) {
    pairedA = join(root, 'A');
    pairedB = join(root, 'B');
  }

  /** A problem with one pair: thrown, or recorded and skipped with skipBad. */
  const bad = (file: string, reason: string): void => {
    if (!skipBad) throw new FileFormatError(file, reason);
    skipped.push({ file, reason });
  };

  let entries: PairEntry[] = [];
  let manifestPath = pairedA ? (opts.manifest !== undefined ? findManifest(root, opts.manifest) : undefined) : findManifest(root, opts.manifest);
  if (manifestPath) {
    const mpath = manifestPath;
    const mdir = dirname(mpath);
    const rows: ManifestEntry[] = parseManifest(await readFile(mpath, 'utf8'), mpath);
    const rowName = (i: number) => (mpath.toLowerCase().endsWith('.json') ? `entry ${i}` : `line ${i + 2}`);
    rows.forEach((row, i) => {
      const meta = { animal: row.animal, fur: row.fur, bed: row.bed, pose: row.pose, split: row.split };
      const files = row.file !== undefined ? [resolve(mdir, row.file)] : [resolve(mdir, row.a!), resolve(mdir, row.b!)];
      // With a phase (or a manifest one folder up), keep only the rows inside the opened folder.
      if (root !== mdir && files.some((f) => !f.startsWith(root + sep))) return;
      const missing = files.filter((f) => !existsSync(f));
      if (missing.length > 0) {
        const what = row.file !== undefined ? `"${row.file}"` : `"${row.a}" / "${row.b}"`;
        bad(mpath, `${rowName(i)} names ${what}, which does not exist (expected ${missing.join(', ')})`);
        return;
      }
      const name = posix(relative(base, files[0]));
      if (files.length === 1) entries.push({ name, path: files[0], ...clean(meta) });
      else entries.push({ name, aPath: files[0], bPath: files[1], ...clean(meta) });
    });
    if (entries.length === 0 && skipped.length === 0) {
      // An explicit manifest must list something; one found in the parent may be about other folders.
      if (opts.manifest !== undefined) throw new FileFormatError(manifestPath, `lists no pairs under ${root}`);
      manifestPath = undefined;
    }
  }
  if (manifestPath) {
    // listed above
  } else if (pairedA && pairedB) {
    const aNames = await listImages(pairedA);
    const bNames = await listImages(pairedB);
    const bByStem = new Map<string, string>();
    for (const n of bNames) {
      if (bByStem.has(stem(n))) bad(join(pairedB, n), `two B images share the name "${stem(n)}" (${bByStem.get(stem(n))} and ${n})`);
      else bByStem.set(stem(n), n);
    }
    if (aNames.length === 0 && bNames.length === 0) throw new FileFormatError(pairedA, `no images found in ${pairedA} or ${pairedB} (looked for ${IMAGE_EXTENSIONS.join(' ')})`);
    const used = new Set<string>();
    for (const n of aNames) {
      const partner = bByStem.get(stem(n));
      if (partner === undefined) {
        bad(join(pairedA, n), `A image has no B partner: expected ${join(pairedB, stem(n))}.* (${IMAGE_EXTENSIONS.join(' ')})`);
        continue;
      }
      used.add(partner);
      entries.push({ name: posix(relative(base, join(pairedA, n))), aPath: join(pairedA, n), bPath: join(pairedB, partner) });
    }
    for (const n of bNames) {
      if (!used.has(n) && bByStem.get(stem(n)) === n) bad(join(pairedB, n), `B image has no A partner: expected ${join(pairedA, stem(n))}.*`);
    }
  } else {
    const names = await listImages(root);
    for (const n of names) entries.push({ name: posix(relative(base, join(root, n))), path: join(root, n) });
    if (names.length === 0 && opts.phase === undefined) {
      for (const s of SPLIT_FOLDERS) {
        const sub = join(root, s);
        if (!isDir(sub)) continue;
        for (const n of await listImages(sub)) entries.push({ name: posix(relative(base, join(sub, n))), path: join(sub, n), split: s });
      }
    }
    if (entries.length === 0) {
      throw new FileFormatError(root, `no images found (looked for ${IMAGE_EXTENSIONS.join(' ')}${opts.phase === undefined ? `, also in ${SPLIT_FOLDERS.join('/, ')}/` : ''})`);
    }
  }

  // Header checks (and full decodes with verify), a few files at a time.
  const ok: boolean[] = new Array(entries.length).fill(true);
  const check = async (e: PairEntry, i: number): Promise<void> => {
    try {
      if (e.path) {
        const info = await readImageInfo(e.path);
        if (info.width % 2 !== 0) throw new FileFormatError(e.path, `aligned A|B image must have an even width (two halves), got ${info.width}x${info.height}`);
        if (verify) await readImage(e.path);
      } else {
        const [ia, ib] = await Promise.all([readImageInfo(e.aPath!), readImageInfo(e.bPath!)]);
        if (ia.width !== ib.width || ia.height !== ib.height) {
          throw new FileFormatError(e.bPath!, `B size ${ib.width}x${ib.height} does not match its A partner ${e.aPath} (${ia.width}x${ia.height})`);
        }
        if (verify) await Promise.all([readImage(e.aPath!), readImage(e.bPath!)]);
      }
    } catch (err) {
      if (!(err instanceof FileFormatError) || !skipBad) throw err;
      skipped.push({ file: err.file, reason: err.message.slice(err.file.length + 2) });
      ok[i] = false;
    }
  };
  for (let i = 0; i < entries.length; i += 8) {
    // Settle the whole batch, then report the first bad file in folder order: which read fails first in time
    // depends on the machine's load, and the same folder should always give the same error.
    const settled = await Promise.allSettled(entries.slice(i, i + 8).map((e, j) => check(e, i + j)));
    const failed = settled.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (failed) throw failed.reason;
  }
  entries = entries.filter((_, i) => ok[i]);
  if (entries.length === 0) throw new FileFormatError(root, `no readable pairs (skipped ${skipped.length}: ${skipped.slice(0, 3).map((s) => s.file).join(', ')})`);

  const swap = opts.direction === 'BtoA';
  const load = async (i: number): Promise<{ a: ImageF32; b: ImageF32 }> => {
    const e = entries[i];
    if (!e) throw new FileFormatError(root, `pair index ${i} out of range [0, ${entries.length})`);
    let a: ImageF32;
    let b: ImageF32;
    if (e.path) {
      const ab = await readImage(e.path);
      if (ab.width % 2 !== 0) throw new FileFormatError(e.path, `aligned A|B image must have an even width, got ${ab.width}`);
      const w = ab.width / 2;
      a = cropImage(ab, 0, 0, w, ab.height);
      b = cropImage(ab, w, 0, w, ab.height);
    } else {
      [a, b] = await Promise.all([readImage(e.aPath!), readImage(e.bPath!)]);
      if (a.width !== b.width || a.height !== b.height) {
        throw new FileFormatError(e.bPath!, `B size ${b.width}x${b.height} does not match its A partner ${e.aPath} (${a.width}x${a.height})`);
      }
    }
    if (swap) [a, b] = [b, a];
    return { a: convertChannels(a, inputChannels), b: convertChannels(b, outputChannels) };
  };
  return { root, layout: pairedA ? 'folders' : entries.some((e) => e.aPath) ? 'folders' : 'aligned', manifest: manifestPath, entries, skipped, load };
}

function clean<T extends object>(o: T): Partial<T> {
  const out: Partial<T> = {};
  for (const [k, v] of Object.entries(o)) if (v !== undefined) (out as Record<string, unknown>)[k] = v;
  return out;
}
