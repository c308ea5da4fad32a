/**
 * Image files in Node, through sharp: PNG, JPEG, TIFF; 8- or 16-bit integer, or 32/64-bit float;
 * gray or RGB (alpha dropped). 8-bit values are divided by 255, 16-bit by 65535; float samples
 * are read as stored (expected in [0, 1]), never cut to 8 bits. Other sample formats (32-bit
 * integers, complex) are refused. The header is read first: an image with more pixels than the
 * read budget's maxImagePixels is refused before any pixel is decoded. Errors name the file.
 */
import { FileFormatError, quoteUntrusted } from '../runtime/errors.js';
import { BUDGET_ENV, resolveBudget } from '../io/budget.js';
import { convertChannels, toUint8Interleaved, type ImageF32 } from './image.js';

type SharpModule = typeof import('sharp').default;
let sharpPromise: Promise<SharpModule> | null = null;
function loadSharp(): Promise<SharpModule> {
  sharpPromise ??= import('sharp').then((m) => ((m as unknown as { default?: SharpModule }).default ?? m) as SharpModule);
  return sharpPromise;
}

/**
 * libvips reports several lines (one per layer of the decoder), which may quote bytes of the file:
 * join them into one line, escape what is left, and cap the length.
 */
function decoderMessage(e: unknown): string {
  const text = String((e as Error)?.message ?? e)
    .split(/\r?\n/)
    .map((l) => l.trim())
    .filter(Boolean)
    .join('; ');
  const quoted = quoteUntrusted(text, 300);
  return quoted.endsWith("'") ? quoted.slice(1, -1) : quoted;
}

/** Options of {@link readImage}. */
export interface ReadImageOptions {
  /** Largest width × height to decode (default: the read budget's maxImagePixels, 64 Mpx). */
  maxPixels?: number;
}

const INTEGER_DEPTHS: Record<string, 'uchar' | 'ushort'> = { uchar: 'uchar', char: 'uchar', ushort: 'ushort', short: 'ushort' };

/** Read an image file into planar [0, 1] floats. `channels` forces gray (1) or RGB (3). */
export async function readImage(path: string, channels?: 1 | 3, options: ReadImageOptions = {}): Promise<ImageF32> {
  const sharp = await loadSharp();
  const maxPixels = options.maxPixels ?? resolveBudget().maxImagePixels;
  let meta: Awaited<ReturnType<ReturnType<SharpModule>['metadata']>>;
  try {
    // The header only: nothing is decoded yet.
    meta = await sharp(path, { failOn: 'error', limitInputPixels: false }).metadata();
  } catch (e) {
    throw new FileFormatError(path, `cannot read image: ${decoderMessage(e)}`);
  }
  const w = meta.width ?? 0;
  const h = meta.height ?? 0;
  if (!w || !h) throw new FileFormatError(path, 'cannot read image: no image size in the header');
  checkPixels(path, w, h, maxPixels);
  const depth = meta.depth ?? 'uchar';
  const isFloat = depth === 'float' || depth === 'double';
  if (!isFloat && !(depth in INTEGER_DEPTHS)) {
    throw new FileFormatError(path, `image samples are '${depth}'; only 8- and 16-bit integers and 32/64-bit floats are read (convert the image)`);
  }
  const srcChannels = (meta.channels ?? 3) - (meta.hasAlpha ? 1 : 0);
  const want = channels ?? (srcChannels >= 3 ? 3 : 1);
  let raw: { data: Buffer; info: { width: number; height: number; channels: number } };
  try {
    // limitInputPixels again, in case the decoder finds a different size than the header said.
    const img = sharp(path, { failOn: 'error', limitInputPixels: maxPixels }).removeAlpha();
    if (isFloat) {
      // Keep the samples as stored: no colour-space conversion (which would assume 8-bit ranges).
      raw = await img.raw({ depth: 'float' }).toBuffer({ resolveWithObject: true });
    } else {
      const sixteen = INTEGER_DEPTHS[depth] === 'ushort';
      const pipe = want === 1 ? img.toColourspace(sixteen ? 'grey16' : 'b-w') : img.toColourspace(sixteen ? 'rgb16' : 'srgb');
      raw = await pipe.raw({ depth: sixteen ? 'ushort' : 'uchar' }).toBuffer({ resolveWithObject: true });
    }
  } catch (e) {
    throw new FileFormatError(path, `cannot read image: ${decoderMessage(e)}`);
  }
  const { width, height, channels: got } = raw.info;
  const plane = width * height;
  if (isFloat) {
    if (got !== 1 && got !== 3) throw new FileFormatError(path, `float image has ${got} channels; expected gray or RGB`);
    const src = new Float32Array(raw.data.buffer, raw.data.byteOffset, raw.data.byteLength / 4);
    const data = new Float32Array(plane * got);
    for (let p = 0; p < plane; p++) {
      for (let k = 0; k < got; k++) {
        const v = src[p * got + k];
        if (!Number.isFinite(v)) throw new FileFormatError(path, `float image holds a non-finite sample (${v}) at pixel ${p % width},${Math.floor(p / width)}`);
        data[k * plane + p] = v;
      }
    }
    return convertChannels({ width, height, channels: got as 1 | 3, data }, want);
  }
  const c = want as 1 | 3;
  if (got !== c) throw new FileFormatError(path, `expected ${c} channel(s) after conversion, got ${got}`);
  const data = new Float32Array(plane * c);
  if (raw.data.byteLength === plane * c * 2) {
    const src = new Uint16Array(raw.data.buffer, raw.data.byteOffset, raw.data.byteLength / 2);
    for (let p = 0; p < plane; p++) for (let k = 0; k < c; k++) data[k * plane + p] = src[p * c + k] / 65535;
  } else {
    const src = raw.data;
    for (let p = 0; p < plane; p++) for (let k = 0; k < c; k++) data[k * plane + p] = src[p * c + k] / 255;
  }
  return { width, height, channels: c, data };
}

/** Options of {@link writePng}. */
export interface WritePngOptions {
  /** 8 (default; values truncated like the reference's tensor2im) or 16 (values rounded to 1/65535). */
  bitDepth?: 8 | 16;
}

/**
 * Write a PNG: gray (one channel, not RGB) for 1-channel images, RGB for 3. 8-bit by default, with
 * values truncated like the reference's tensor2im; 16-bit on request.
 */
export async function writePng(path: string, im: ImageF32, options: WritePngOptions = {}): Promise<void> {
  const sharp = await loadSharp();
  const raw = { width: im.width, height: im.height, channels: im.channels };
  try {
    if (options.bitDepth === 16) {
      const buf = toUint16Interleaved(im);
      await sharp(buf, { raw })
        .toColourspace(im.channels === 1 ? 'grey16' : 'rgb16')
        .png()
        .toFile(path);
    } else {
      const buf = toUint8Interleaved(im);
      await sharp(Buffer.from(buf.buffer, buf.byteOffset, buf.byteLength), { raw })
        .toColourspace(im.channels === 1 ? 'b-w' : 'srgb')
        .png()
        .toFile(path);
    }
  } catch (e) {
    throw new FileFormatError(path, `cannot write PNG: ${decoderMessage(e)}`);
  }
}

/** Planar [0, 1] floats → interleaved 16-bit samples, rounded and clamped. */
function toUint16Interleaved(im: ImageF32): Uint16Array {
  const { width, height, channels } = im;
  const plane = width * height;
  const out = new Uint16Array(plane * channels);
  for (let c = 0; c < channels; c++) {
    for (let p = 0; p < plane; p++) {
      const v = Math.round(im.data[c * plane + p] * 65535);
      out[p * channels + c] = v < 0 ? 0 : v > 65535 ? 65535 : Number.isNaN(v) ? 0 : v;
    }
  }
  return out;
}

/** Encode an 8-bit PNG in memory (for reports and data URLs). */
export async function encodePng(im: ImageF32): Promise<Uint8Array> {
  const sharp = await loadSharp();
  const buf = toUint8Interleaved(im);
  const out = await sharp(Buffer.from(buf.buffer, buf.byteOffset, buf.byteLength), { raw: { width: im.width, height: im.height, channels: im.channels } })
    .png()
    .toBuffer();
  return new Uint8Array(out.buffer, out.byteOffset, out.byteLength);
}

/**
 * Write a small palette PNG (libimagequant, `colours` <= 256, no dithering): for documentation images,
 * not for data (it is lossy).
 */
export async function writePngPalette(path: string, im: ImageF32, colours = 256): Promise<void> {
  const sharp = await loadSharp();
  const buf = toUint8Interleaved(im);
  try {
    await sharp(Buffer.from(buf.buffer, buf.byteOffset, buf.byteLength), { raw: { width: im.width, height: im.height, channels: im.channels } })
      .png({ palette: true, colours, dither: 0, compressionLevel: 9, effort: 10 })
      .toFile(path);
  } catch (e) {
    throw new FileFormatError(path, `cannot write PNG: ${decoderMessage(e)}`);
  }
}

/**
 * Width, height and channel count (alpha excluded) from the file's header, without decoding pixels.
 * Refuses, like {@link readImage}, an image beyond the pixel limit, so a folder scan finds it early.
 */
export async function readImageInfo(path: string, options: ReadImageOptions = {}): Promise<{ width: number; height: number; channels: 1 | 3 }> {
  const sharp = await loadSharp();
  let meta: Awaited<ReturnType<ReturnType<SharpModule>['metadata']>>;
  try {
    meta = await sharp(path, { limitInputPixels: false }).metadata();
  } catch (e) {
    throw new FileFormatError(path, `cannot read image: ${decoderMessage(e)}`);
  }
  if (!meta.width || !meta.height) throw new FileFormatError(path, 'cannot read image: no image size in the header');
  checkPixels(path, meta.width, meta.height, options.maxPixels ?? resolveBudget().maxImagePixels);
  const c = (meta.channels ?? 3) - (meta.hasAlpha ? 1 : 0);
  return { width: meta.width, height: meta.height, channels: c >= 3 ? 3 : 1 };
}

function checkPixels(path: string, w: number, h: number, maxPixels: number): void {
  if (w * h > maxPixels) {
    throw new FileFormatError(
      path,
      `image is ${w}x${h} (${w * h} pixels), beyond the pixel limit of ${maxPixels} (raise it with the maxPixels option or the environment variable ${BUDGET_ENV.maxImagePixels})`,
    );
  }
}
