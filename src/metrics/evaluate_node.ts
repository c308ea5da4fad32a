/**
 * Node: evaluate a folder of generated images against a folder of ground truths — per-image MSE, NRMSE, PSNR,
 * SSIM on the GPU in batches, optionally FID/KID through a {@link FeatureExtractor}, and WAEM (its FID term dropped,
 * with a warning, when there is no extractor).
 * Files are paired by name (without extension), read with readImage (8-bit / 255, 16-bit / 65535).
 */
import { readdir } from 'node:fs/promises';
import { extname, join } from 'node:path';
import { readImage } from '../data/image_node.js';
import { bothInOrder, loadAhead } from '../io/load_ahead.js';
import { convertChannels, cropImage, type ImageF32 } from '../data/image.js';
import type { GpuContext } from '../runtime/context.js';
import { FileFormatError, Pix2PixError } from '../runtime/errors.js';
import type { Tensor } from '../runtime/tensor.js';
import type { FeatureExtractor, FeatureMatrix } from './features.js';
import { fidFromFeatures } from './frechet.js';
import { kid, type KidOptions } from './kid.js';
import { computePixelMetrics, type NrmseNormalization } from './pixel.js';
import { computeSsim, ssimWindow, type SsimMode } from './ssim.js';
import { EVALUATION_DEFAULTS } from './defaults.js';
import { DEFAULT_WAEM_WEIGHTS, computeWaem, type WaemWeights } from './waem.js';

/** Pairs read ahead of the one being checked and batched (each pair is two decoded images in memory). */
const READ_AHEAD = 4;

/** Extensions of the files that are paired (others, and hidden files, are ignored). */
export const IMAGE_EXTENSIONS: readonly string[] = ['.png', '.jpg', '.jpeg', '.tif', '.tiff', '.webp'];

export interface EvaluateFoldersOptions {
  ctx: GpuContext;
  /** Folder of ground-truth images. */
  real: string;
  /** Folder of generated images; paired with `real` by file name without extension. */
  fake: string;
  /** Default {@link EVALUATION_DEFAULTS}.ssimMode ('skimage', 7x7 uniform window); 'gaussian' is the 11x11 Gaussian window. */
  ssimMode?: SsimMode;
  /** Data range for PSNR and SSIM. Default 1 (images are read into [0, 1]). */
  dataRange?: number;
  /** NRMSE denominator. Default 'euclidean'. */
  normalization?: NrmseNormalization;
  /** Convert every image to gray (1) or RGB (3); by default each file keeps its own, and pairs must agree. */
  channels?: 1 | 3;
  /**
   * The ground truths are aligned A|B images (a test folder written by `synth`, or the reference's aligned
   * datasets): the right half (B) is the real image, converted to the generated image's channel count the
   * way the trainer converts B (so a gray translation is scored against the gray X-ray). Default false.
   */
  realAligned?: boolean;
  /**
   * Name suffixes to strip before pairing, for pix2pix's results layout: `{ real: '_real_B', fake: '_fake_B' }`
   * pairs `x_real_B.png` with `x_fake_B.png` (both folders may then be the same); files without the suffix are
   * ignored.
   */
  suffix?: { real?: string; fake?: string };
  /** Backbone for FID (and KID); without one FID and KID are left out and WAEM drops its FID term (with a warning). */
  extractor?: FeatureExtractor;
  /** Older name of `extractor` (used when `extractor` is not given). */
  fidExtractor?: FeatureExtractor;
  /** KID options, or false to skip KID. Default: KID with torch-fidelity's defaults when an extractor is given. */
  kid?: KidOptions | false;
  /** WAEM weights (default {@link DEFAULT_WAEM_WEIGHTS}). */
  waemWeights?: WaemWeights;
  /** Most image pairs per GPU batch. Default: as many as `batchBytes` allows. */
  batchSize?: number;
  /** Upper bound on one batch tensor's bytes (each of real and fake). Default 64 MiB. */
  batchBytes?: number;
  /** Called after every batch with the pairs done so far. */
  onProgress?: (done: number, total: number) => void;
}

export interface PerImageMetrics {
  /** The pair's name (file name without extension and suffix). */
  file: string;
  mse: number;
  nrmse: number;
  psnr: number;
  ssim: number;
}

export interface EvaluateFoldersResult {
  n: number;
  /** Means over images (FID/KID are set-level metrics; kidStd is the std over KID subsets). */
  mean: { mse: number; nrmse: number; psnr: number; ssim: number; fid?: number; kid?: number; kidStd?: number; waem: number };
  perImage: PerImageMetrics[];
  /** E.g. fewer images than feature dimensions (biased FID), or WAEM without its FID term. */
  warnings: string[];
}

interface Pair {
  key: string;
  real: string;
  fake: string;
}

async function listImages(folder: string, suffix: string | undefined, role: string): Promise<Map<string, string>> {
  let names: string[];
  try {
    names = await readdir(folder);
  } catch (e) {
    throw new FileFormatError(folder, `cannot list the ${role} folder: ${(e as Error).message}`);
  }
  const byKey = new Map<string, string>();
  for (const name of names.sort()) {
    const ext = extname(name);
    if (name.startsWith('.') || !IMAGE_EXTENSIONS.includes(ext.toLowerCase())) continue;
    let key = name.slice(0, name.length - ext.length);
    if (suffix) {
      if (!key.endsWith(suffix)) continue;
      key = key.slice(0, key.length - suffix.length);
    }
    const prev = byKey.get(key);
    if (prev) throw new FileFormatError(join(folder, name), `two ${role} images pair as '${key}': ${prev} and ${join(folder, name)}`);
    byKey.set(key, join(folder, name));
  }
  if (byKey.size === 0) {
    throw new FileFormatError(folder, `no ${role} images (${IMAGE_EXTENSIONS.join(', ')}${suffix ? `, names ending in '${suffix}'` : ''}) in this folder`);
  }
  return byKey;
}

function unpaired(from: Map<string, string>, to: Map<string, string>): string[] {
  return [...from.entries()].filter(([k]) => !to.has(k)).map(([, f]) => f);
}

/** Pair the two folders' images by name; every image must have a partner. */
export async function pairFolders(real: string, fake: string, suffix: { real?: string; fake?: string } = {}): Promise<Pair[]> {
  const r = await listImages(real, suffix.real, 'real');
  const f = await listImages(fake, suffix.fake, 'fake');
  const show = (files: string[]) => files.slice(0, 5).join(', ') + (files.length > 5 ? `, ... (${files.length} in all)` : '');
  const noFake = unpaired(r, f);
  if (noFake.length) throw new FileFormatError(noFake[0], `no generated image with the same name in ${fake} for: ${show(noFake)}`);
  const noReal = unpaired(f, r);
  if (noReal.length) throw new FileFormatError(noReal[0], `no ground-truth image with the same name in ${real} for: ${show(noReal)}`);
  return [...r.keys()].sort().map((key) => ({ key, real: r.get(key)!, fake: f.get(key)! }));
}

const dims = (im: ImageF32) => `${im.width}x${im.height}x${im.channels}`;

function stack(ctx: GpuContext, images: ImageF32[], label: string): Tensor {
  const { width, height, channels } = images[0];
  const per = width * height * channels;
  const data = new Float32Array(per * images.length);
  images.forEach((im, i) => data.set(im.data, i * per));
  return ctx.tensor([images.length, channels, height, width], data, label);
}

function concatFeatures(parts: FeatureMatrix[], cols: number): FeatureMatrix {
  const rows = parts.reduce((s, p) => s + p.rows, 0);
  const data = new Float32Array(rows * cols);
  let off = 0;
  for (const p of parts) {
    data.set(p.data, off);
    off += p.data.length;
  }
  return { data, rows, cols };
}

async function extract(ctx: GpuContext, ext: FeatureExtractor, images: Tensor): Promise<FeatureMatrix> {
  const f = await ext.extract(ctx, images);
  try {
    ctx.checkTensor(f, `${ext.name}.extract`, [images.shape[0], ext.dims], 'features');
    return { data: await f.read(), rows: images.shape[0], cols: ext.dims };
  } finally {
    f.destroy();
  }
}

/**
 * Evaluate generated images against ground truths, pair by pair, batched on the GPU. Errors name the files:
 * a file with no partner, a size or channel mismatch, an unreadable image, an empty or missing folder.
 */
export async function evaluateFolders(opts: EvaluateFoldersOptions): Promise<EvaluateFoldersResult> {
  const { ctx } = opts;
  const mode = opts.ssimMode ?? EVALUATION_DEFAULTS.ssimMode;
  const win = ssimWindow(mode).winSize;
  const pairs = await pairFolders(opts.real, opts.fake, opts.suffix);
  const batchBytes = opts.batchBytes ?? 64 * 2 ** 20;
  const batchSize = opts.batchSize ?? Infinity;
  if (!(batchSize >= 1) || (batchSize !== Infinity && !Number.isInteger(batchSize))) {
    throw new Pix2PixError('evaluateFolders', `batchSize must be an integer >= 1, got ${batchSize}`);
  }
  const extractor = opts.extractor ?? opts.fidExtractor;
  const perImage: PerImageMetrics[] = [];
  const realFeats: FeatureMatrix[] = [];
  const fakeFeats: FeatureMatrix[] = [];
  const warnings: string[] = [];

  let batch: { pair: Pair; real: ImageF32; fake: ImageF32 }[] = [];
  const flush = async () => {
    if (!batch.length) return;
    const real = stack(ctx, batch.map((b) => b.real), 'evaluate.real');
    const fake = stack(ctx, batch.map((b) => b.fake), 'evaluate.fake');
    try {
      const px = await computePixelMetrics(ctx, real, fake, { dataRange: opts.dataRange, normalization: opts.normalization });
      const ss = await computeSsim(ctx, real, fake, { mode, dataRange: opts.dataRange });
      batch.forEach((b, i) => perImage.push({ file: b.pair.key, mse: px.mse[i], nrmse: px.nrmse[i], psnr: px.psnr[i], ssim: ss.ssim[i] }));
      if (extractor) {
        realFeats.push(await extract(ctx, extractor, real));
        fakeFeats.push(await extract(ctx, extractor, fake));
      }
    } finally {
      real.destroy();
      fake.destroy();
    }
    batch = [];
    opts.onProgress?.(perImage.length, pairs.length);
  };

  // A few pairs are read ahead (io/load_ahead.ts); each pair's ground truth is read (and fails) before its translation.
  const readPair = (pair: Pair) => bothInOrder(readImage(pair.real, opts.channels), readImage(pair.fake, opts.channels));
  let index = 0;
  for await (const read of loadAhead(pairs, readPair, READ_AHEAD)) {
    const pair = pairs[index++];
    let real = read[0];
    const fake = read[1];
    if (opts.realAligned) {
      if (real.width % 2 !== 0) throw new FileFormatError(pair.real, `an aligned A|B ground truth must have an even width, got ${real.width}`);
      real = convertChannels(cropImage(real, real.width / 2, 0, real.width / 2, real.height), opts.channels ?? fake.channels);
    }
    if (real.width !== fake.width || real.height !== fake.height || real.channels !== fake.channels) {
      const what = real.channels !== fake.channels && real.width === fake.width && real.height === fake.height ? 'channel count' : 'size';
      const looksAligned = !opts.realAligned && real.width === 2 * fake.width && real.height === fake.height;
      throw new FileFormatError(
        pair.fake,
        `${what} differs from its ground truth ${pair.real}${opts.realAligned ? ' (its B half)' : ''}: expected ${dims(real)} (W x H x C), got ${dims(fake)}` +
          (what === 'channel count' ? ' (pass channels: 1 or 3 to convert both)' : '') +
          (looksAligned ? '; the ground truth is twice as wide: if it is an aligned A|B image, pass realAligned (CLI: --real_aligned)' : ''),
      );
    }
    if (real.width < win || real.height < win) {
      throw new FileFormatError(pair.real, `image ${real.width}x${real.height} is smaller than SSIM's ${win}x${win} window (mode '${mode}')`);
    }
    const head = batch[0]?.real;
    const full = head && (batch.length + 1 > batchSize || (batch.length + 1) * head.data.length * 4 > batchBytes);
    if (head && (full || head.width !== real.width || head.height !== real.height || head.channels !== real.channels)) await flush();
    batch.push({ pair, real, fake });
  }
  await flush();

  const n = perImage.length;
  const meanOf = (k: 'mse' | 'nrmse' | 'psnr' | 'ssim') => perImage.reduce((s, p) => s + p[k], 0) / n;
  const mean: EvaluateFoldersResult['mean'] = { mse: meanOf('mse'), nrmse: meanOf('nrmse'), psnr: meanOf('psnr'), ssim: meanOf('ssim'), waem: NaN };
  if (extractor) {
    if (n < 2) throw new Pix2PixError('evaluateFolders', `FID needs at least 2 image pairs, found ${n} in ${opts.real}`);
    const rf = concatFeatures(realFeats, extractor.dims);
    const ff = concatFeatures(fakeFeats, extractor.dims);
    const r = await fidFromFeatures(ctx, rf, ff);
    mean.fid = r.fid;
    warnings.push(...r.warnings);
    if (opts.kid !== false) {
      const k = kid(rf, ff, opts.kid ?? {});
      mean.kid = k.mean;
      mean.kidStd = k.std;
    }
  }
  const w = computeWaem({ mse: mean.mse, nrmse: mean.nrmse, psnr: mean.psnr, ssim: mean.ssim, fid: mean.fid }, opts.waemWeights ?? DEFAULT_WAEM_WEIGHTS);
  mean.waem = w.waem;
  warnings.push(...w.warnings);
  return { n, mean, perImage, warnings };
}
