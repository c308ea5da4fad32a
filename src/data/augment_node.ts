/**
 * Offline dataset expansion (Node): read aligned A|B images (pix2pix's "aligned" format: photo on the left half,
 * X-ray on the right), write the originals plus k augmented copies of each pair, in the same format.
 *
 * Counts: n pairs become n * (1 + copies). The paper's set went 823 → 5175 pairs (×6.29), which no whole number
 * of copies gives (823 × 6 = 4938, 823 × 7 = 5761); `total: 5175` spreads the 4352 extra pairs as 5 copies of
 * every pair plus a 6th copy of the first 237 (in file-name order).
 *
 * Names: `<name>.<ext>` (the original, copied byte for byte) and `<name><suffix><j>.png` for copy j = 1..k.
 * Copy j of file `<name>` draws from sample index fnv1a(`<name>#<j>`), so a pair's copies do not change when files
 * are added or removed. Augmented values are rounded to 8 bits (round half up, as cv2's saturate_cast).
 */
import { copyFile, mkdir, readdir } from 'node:fs/promises';
import { basename, extname, join, resolve } from 'node:path';
import type { GpuContext } from '../runtime/context.js';
import { createContext } from '../runtime/device.js';
import { FileFormatError, ShapeError } from '../runtime/errors.js';
import { createImage, cropImage, type ImageF32 } from './image.js';
import { readImage, writePng } from './image_node.js';
import { parseAugmentSpec, type AugmentSpec } from './augment_schema.js';
import { Augmenter } from './augment.js';
import { drawSample } from './augment_params.js';
import { augmentPairCpu } from './augment_cpu.js';

const IMAGE_EXT = /\.(png|jpe?g|tiff?|webp)$/i;

export interface ExpandOptions {
  inDir: string;
  outDir: string;
  /** Augmented copies per pair (k): n pairs become n * (1 + k). Give this or `total`. */
  copies?: number;
  /** Pairs wanted in all, originals included: copies are spread so the count is exact (e.g. 823 → 5175). */
  total?: number;
  /** Pipeline (JSON text, object, or parsed spec). */
  spec: AugmentSpec | string | object;
  seed: number;
  /** Device for the GPU path (default: a new context, destroyed at the end). */
  ctx?: GpuContext;
  /** 'gpu' (default) or 'cpu' (the float64 reference; no device needed). */
  backend?: 'gpu' | 'cpu';
  /** Suffix before the copy number (default `_aug`). */
  suffix?: string;
  /** Called after each input file. */
  onProgress?: (done: number, total: number, file: string) => void;
}

export interface ExpandResult {
  /** Input pairs found. */
  pairs: number;
  /** Augmented pairs written. */
  augmented: number;
  /** Every file written (originals and copies), in order. */
  files: string[];
}

/** FNV-1a 32-bit hash of a string: the stable sample index of one copy. */
export function fnv1a(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h >>> 0;
}

/** Copies per file so that `files` pairs become `total` (originals included); the first files get the remainder. */
export function copiesPerFile(files: number, opts: { copies?: number; total?: number }): number[] {
  if ((opts.copies === undefined) === (opts.total === undefined)) throw new ShapeError('expandDataset', 'copies / total', 'exactly one of them', `${opts.copies} / ${opts.total}`);
  if (opts.copies !== undefined) {
    if (!Number.isInteger(opts.copies) || opts.copies < 0) throw new ShapeError('expandDataset', 'copies', 'an integer >= 0', opts.copies);
    return new Array(files).fill(opts.copies);
  }
  const total = opts.total!;
  if (!Number.isInteger(total) || total < files) throw new ShapeError('expandDataset', 'total', `an integer >= the ${files} input pairs`, total);
  if (files === 0) return [];
  const extra = total - files;
  const base = Math.floor(extra / files);
  const rest = extra % files;
  return Array.from({ length: files }, (_, i) => base + (i < rest ? 1 : 0));
}

/** Place A and B side by side (the aligned format). */
function hconcat(a: ImageF32, b: ImageF32): ImageF32 {
  const out = createImage(a.width + b.width, a.height, a.channels);
  const W = out.width;
  for (let c = 0; c < a.channels; c++) {
    for (let y = 0; y < a.height; y++) {
      out.data.set(a.data.subarray(c * a.width * a.height + y * a.width, c * a.width * a.height + (y + 1) * a.width), c * W * a.height + y * W);
      out.data.set(b.data.subarray(c * b.width * b.height + y * b.width, c * b.width * b.height + (y + 1) * b.width), c * W * a.height + y * W + a.width);
    }
  }
  return out;
}

/** Round to 8-bit levels so writePng's truncation keeps the nearest level (v → (round(255 v) + 0.5) / 255, clipped). */
function quantize(im: ImageF32): ImageF32 {
  const d = new Float32Array(im.data.length);
  for (let i = 0; i < d.length; i++) {
    const q = Math.round(Math.min(1, Math.max(0, im.data[i])) * 255);
    d[i] = Math.min(1, (q + 0.25) / 255);
  }
  return { ...im, data: d };
}

/**
 * Write the originals and augmented copies of every aligned A|B image in `inDir` to `outDir`. Each pair's copies
 * run as one batch on the GPU (or on the CPU reference with `backend: 'cpu'`).
 */
export async function expandDataset(opts: ExpandOptions): Promise<ExpandResult> {
  const spec = parseAugmentSpec(opts.spec);
  const inDir = resolve(opts.inDir);
  const outDir = resolve(opts.outDir);
  if (inDir === outDir) throw new ShapeError('expandDataset', 'outDir', 'a folder other than inDir', outDir);
  const suffix = opts.suffix ?? '_aug';
  const names = (await readdir(inDir)).filter((n) => IMAGE_EXT.test(n)).sort();
  const perFile = copiesPerFile(names.length, opts);
  await mkdir(outDir, { recursive: true });
  const backend = opts.backend ?? 'gpu';
  const ownCtx = backend === 'gpu' && !opts.ctx;
  const ctx = backend === 'gpu' ? (opts.ctx ?? (await createContext())) : null;
  const files: string[] = [];
  let augmented = 0;
  try {
    for (let f = 0; f < names.length; f++) {
      const name = names[f];
      const src = join(inDir, name);
      const dst = join(outDir, name);
      await copyFile(src, dst);
      files.push(dst);
      const k = perFile[f];
      if (k > 0) {
        const ab = await readImage(src);
        if (ab.width % 2 !== 0) throw new FileFormatError(src, `aligned A|B image needs an even width, got ${ab.width}`);
        const w = ab.width / 2;
        const a = cropImage(ab, 0, 0, w, ab.height);
        const b = cropImage(ab, w, 0, w, ab.height);
        const stem = basename(name, extname(name));
        const indices = Array.from({ length: k }, (_, j) => fnv1a(`${stem}#${j + 1}`));
        const outs = ctx ? await augmentOnGpu(ctx, spec, opts.seed, a, b, indices) : indices.map((i) => augmentOnCpu(spec, opts.seed, a, b, i));
        for (let j = 0; j < k; j++) {
          const path = join(outDir, `${stem}${suffix}${j + 1}.png`);
          await writePng(path, quantize(hconcat(outs[j].a, outs[j].b)));
          files.push(path);
          augmented++;
        }
      }
      opts.onProgress?.(f + 1, names.length, name);
    }
  } finally {
    if (ownCtx) ctx?.destroy();
  }
  return { pairs: names.length, augmented, files };
}

function augmentOnCpu(spec: AugmentSpec, seed: number, a: ImageF32, b: ImageF32, index: number): { a: ImageF32; b: ImageF32 } {
  const r = augmentPairCpu(a, b, drawSample(spec, seed, index, { height: a.height, width: a.width }));
  const im = (p: typeof r.a): ImageF32 => ({ width: p.width, height: p.height, channels: p.channels as 1 | 3, data: Float32Array.from(p.data) });
  return { a: im(r.a), b: im(r.b) };
}

async function augmentOnGpu(ctx: GpuContext, spec: AugmentSpec, seed: number, a: ImageF32, b: ImageF32, indices: number[]): Promise<{ a: ImageF32; b: ImageF32 }[]> {
  const k = indices.length;
  const aug = new Augmenter(ctx, spec, seed, [0, 1]);
  const tile = (im: ImageF32) => {
    const d = new Float32Array(im.data.length * k);
    for (let j = 0; j < k; j++) d.set(im.data, j * im.data.length);
    return ctx.tensor([k, im.channels, im.height, im.width], d, 'expand.input');
  };
  const ta = tile(a);
  const tb = tile(b);
  const size = aug.outputSize(a.height, a.width);
  const oa = ctx.tensor([k, a.channels, size.height, size.width], undefined, 'expand.outA');
  const ob = ctx.tensor([k, b.channels, size.height, size.width], undefined, 'expand.outB');
  try {
    await aug.run(ta, tb, oa, ob, { sampleIndex: indices });
    const [da, db] = [await oa.read(), await ob.read()];
    const per = (c: number) => c * size.height * size.width;
    return indices.map((_, j) => ({
      a: { width: size.width, height: size.height, channels: a.channels, data: da.slice(j * per(a.channels), (j + 1) * per(a.channels)) },
      b: { width: size.width, height: size.height, channels: b.channels, data: db.slice(j * per(b.channels), (j + 1) * per(b.channels)) },
    }));
  } finally {
    for (const t of [ta, tb, oa, ob]) t.destroy();
  }
}
