/**
 * Skeleton recovery for a folder of translations of a phantom dataset's test images (Node). The dataset's
 * manifest.json (written by `synth`/`demo`) records the generator, seed and size; with the animals' ids and
 * the test split it regenerates every animal exactly (planAnimals), renders each test pose with its bone layer
 * and body mask, and checks that the regenerated X-ray is the stored one before scoring, so a manifest that
 * does not match its images fails loudly instead of scoring against the wrong skeleton.
 */
import { existsSync, readFileSync, statSync } from 'node:fs';
import { basename, extname, join } from 'node:path';
import { FileFormatError } from '../runtime/errors.js';
import { readImage } from '../data/image_node.js';
import { bothInOrder, loadAhead } from '../io/load_ahead.js';
import { renderPhantomPair, FIELD_OF_VIEW_MM } from '../data/phantom.js';
import { planAnimals } from '../data/synth_node.js';
import { skeletonRecovery, skeletonScale, type SkeletonTruth } from './skeleton.js';

interface PhantomManifest {
  generator?: string;
  seed?: number;
  width?: number;
  height?: number;
  entries?: { file?: string; split?: string; animal?: string; fur?: string; bed?: string; pose?: number }[];
}

export interface PhantomTruth extends SkeletonTruth {
  /** The regenerated X-ray (noise and all, so it equals the stored truth up to 8-bit rounding). */
  xray: Float32Array;
  animal: string;
  fur: string;
  bed: string;
  pose: number;
}

function isPhantomManifest(m: PhantomManifest): boolean {
  return typeof m.generator === 'string' && m.generator.includes('mouse phantoms') && Array.isArray(m.entries);
}

/** True when `dataDir` holds a phantom dataset this module can regenerate (its manifest.json says so). */
export function isPhantomDataset(dataDir: string): boolean {
  const p = join(dataDir, 'manifest.json');
  if (!existsSync(p)) return false;
  try {
    return isPhantomManifest(JSON.parse(readFileSync(p, 'utf8')) as PhantomManifest);
  } catch {
    return false;
  }
}

/**
 * The last dataset's truths, kept while they fit TRUTH_CACHE_BYTES: a study scores every trial against the same
 * test set, and rendering the demo's 145 test phantoms again took ~2.6 s of each of its nine trials. Keyed by
 * the manifest's path and text, so a dataset synthesised anew in the same folder is rendered anew.
 */
let truthCache: { key: string; truths: Map<string, PhantomTruth> } | null = null;
/** 256 MiB: the demo's test set (145 x 64x128) takes 14 MB; the seed's 117 at 512x1024 would take ~740 MB, rendered each time. */
const TRUTH_CACHE_BYTES = 256 * 2 ** 20;

/** The phantom truth (bone layer, body mask, X-ray) of every test image, keyed by file stem (m006_p0). Shared: read only. */
export function phantomTestTruths(dataDir: string): Map<string, PhantomTruth> {
  const path = join(dataDir, 'manifest.json');
  const text = readFileSync(path, 'utf8');
  const key = `${path}\u0000${text}`;
  if (truthCache?.key === key) return truthCache.truths;
  const truths = renderTestTruths(path, JSON.parse(text) as PhantomManifest);
  let bytes = 0;
  for (const t of truths.values()) bytes += 4 * (t.bone.length + t.body.length + t.xray.length);
  truthCache = bytes <= TRUTH_CACHE_BYTES ? { key, truths } : null;
  return truths;
}

function renderTestTruths(path: string, m: PhantomManifest): Map<string, PhantomTruth> {
  if (!isPhantomManifest(m) || !m.width || !m.height || m.seed === undefined) {
    throw new FileFormatError(path, 'not a phantom manifest (needs generator, seed, width, height, entries)');
  }
  const entries = m.entries!;
  const animals = [...new Set(entries.map((e) => e.animal))];
  const testAnimals = new Set(entries.filter((e) => e.split === 'test').map((e) => e.animal));
  // The white-fur count too: a seed-shaped set (synth's `white`, e.g. 86 of 174) deals fur differently.
  const white = new Set(entries.filter((e) => e.fur === 'white').map((e) => e.animal)).size;
  const plan = planAnimals(animals.length, m.seed, testAnimals.size, { white });
  const byId = new Map(plan.map((p) => [p.animal.id, p]));
  const out = new Map<string, PhantomTruth>();
  for (const e of entries) {
    if (e.split !== 'test' || !e.file) continue;
    const p = byId.get(e.animal ?? '');
    if (!p || p.split !== 'test' || p.animal.fur !== e.fur || p.animal.bed !== e.bed) {
      throw new FileFormatError(path, `entry ${e.file}: animal ${e.animal} (${e.fur}/${e.bed}, test) is not what seed ${m.seed} with ${animals.length} animals generates`);
    }
    const r = renderPhantomPair(p.animal, e.pose ?? 0, { width: m.width, height: m.height }, { withMasks: true });
    out.set(basename(e.file, extname(e.file)), {
      width: m.width,
      height: m.height,
      bone: r.boneLayer!.data,
      body: r.bodyMask!.data,
      xray: r.xray.data,
      animal: p.animal.id,
      fur: p.animal.fur,
      bed: p.animal.bed,
      pose: e.pose ?? 0,
    });
  }
  return out;
}

/**
 * Stored X-rays already found to match their regenerated truth: a study checks the same test set after every
 * trial. Keyed by the file's path, size and modification time and by the truth it was checked against.
 */
const realChecked = new Set<string>();
const truthIds = new WeakMap<PhantomTruth, number>();
let nextTruthId = 0;
function realCheckKey(path: string, t: PhantomTruth): string | null {
  let id = truthIds.get(t);
  if (id === undefined) truthIds.set(t, (id = nextTruthId++));
  try {
    const st = statSync(path);
    return `${path}\u0000${st.size}\u0000${st.mtimeMs}\u0000${id}`;
  } catch {
    return null; // missing: the read reports it
  }
}

export interface SkeletonFolderResult {
  /** Mean skeleton recovery over the scored images. */
  mean: number;
  perImage: { file: string; skeleton: number }[];
}

/**
 * Score every translation in `fakeDir` (files named like the test images: m006_p0.png) against the phantom
 * truth of `dataDir`. With `checkTruth`, the regenerated X-ray must match the stored real image in `realDir`
 * (mean absolute difference under 1/255 beyond 8-bit rounding).
 */
export async function skeletonRecoveryFolder(o: { data: string; fake: string; real?: string; files: readonly string[] }): Promise<SkeletonFolderResult> {
  const truths = phantomTestTruths(o.data);
  const perImage: { file: string; skeleton: number }[] = [];
  // Every file's truth is looked up before any is read, so a stray file is named at once.
  const jobs = o.files.map((file) => {
    const stem = basename(file, extname(file));
    const t = truths.get(stem);
    if (!t) throw new FileFormatError(join(o.fake, file), `no phantom test image named ${stem} in ${join(o.data, 'manifest.json')}`);
    const realPath = o.real ? join(o.real, file) : null;
    const realKey = realPath ? realCheckKey(realPath, t) : null;
    return { file, t, realPath: realPath && !(realKey && realChecked.has(realKey)) ? realPath : null, realKey };
  });
  // Reads run a few files ahead (io/load_ahead.ts); the stored X-ray of each is read (and fails) before its translation.
  const readJob = (j: (typeof jobs)[number]) => bothInOrder(j.realPath ? readImage(j.realPath, 1) : Promise.resolve(null), readImage(join(o.fake, j.file), 1));
  let index = 0;
  for await (const [real, fake] of loadAhead(jobs, readJob, 4)) {
    const { file, t, realPath, realKey } = jobs[index++];
    if (realPath && real) {
      let d = 0;
      for (let q = 0; q < t.xray.length; q++) d += Math.abs(real.data[q] - t.xray[q]);
      if (d / t.xray.length > 2 / 255) throw new FileFormatError(realPath, `the stored X-ray is not the phantom the manifest regenerates (mean difference ${(d / t.xray.length).toFixed(4)})`);
      if (realKey) realChecked.add(realKey);
    }
    perImage.push({ file, skeleton: skeletonRecovery(fake, t, skeletonScale(t.width, FIELD_OF_VIEW_MM.width)) });
  }
  const mean = perImage.length ? perImage.reduce((s, p) => s + p.skeleton, 0) / perImage.length : NaN;
  return { mean, perImage };
}
