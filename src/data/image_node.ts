/**
 * Image files in Node, through sharp: PNG, JPEG, TIFF; 8- or 16-bit; gray or RGB (alpha dropped).
 * 8-bit values are divided by 255, 16-bit by 65535. Errors name the file.
 */
import { FileFormatError } from '../runtime/errors.js';
import { toUint8Interleaved, type ImageF32 } from './image.js';
import { importOptional } from '../runtime/optional_deps.js';

type SharpModule = typeof import('sharp').default;
let sharpPromise: Promise<SharpModule> | null = null;
function loadSharp(): Promise<SharpModule> {
  // sharp is an optional peer dependency: missing, it is a MissingDependencyError naming the install command.
  sharpPromise ??= importOptional<unknown>('image file (sharp)', 'sharp').then((m) => ((m as unknown as { default?: SharpModule }).default ?? m) as SharpModule);
  return sharpPromise;
}

/** Read an image file into planar [0, 1] floats. `channels` forces gray (1) or RGB (3). */
export async function readImage(path: string, channels?: 1 | 3): Promise<ImageF32> {
  const sharp = await loadSharp();
  let raw: { data: Buffer; info: { width: number; height: number; channels: number } };
  let depth: string;
  try {
    const img = sharp(path, { failOn: 'error' });
    const meta = await img.metadata();
    depth = meta.depth ?? 'uchar';
    const sixteen = depth === 'ushort' || depth === 'short';
    let pipe = img.removeAlpha();
    const srcChannels = (meta.channels ?? 3) - (meta.hasAlpha ? 1 : 0);
    const want = channels ?? (srcChannels >= 3 ? 3 : 1);
    pipe = want === 1 ? pipe.toColourspace(sixteen ? 'grey16' : 'b-w') : pipe.toColourspace(sixteen ? 'rgb16' : 'srgb');
    raw = await pipe.raw({ depth: sixteen ? 'ushort' : 'uchar' }).toBuffer({ resolveWithObject: true });
    depth = sixteen ? 'ushort' : 'uchar';
  } catch (e) {
    throw new FileFormatError(path, `cannot read image: ${(e as Error).message}`);
  }
  const { width, height, channels: got } = raw.info;
  const c = (channels ?? (got >= 3 ? 3 : 1)) as 1 | 3;
  if (got !== c) throw new FileFormatError(path, `expected ${c} channel(s) after conversion, got ${got}`);
  const plane = width * height;
  const data = new Float32Array(plane * c);
  if (depth === 'ushort') {
    const src = new Uint16Array(raw.data.buffer, raw.data.byteOffset, raw.data.byteLength / 2);
    for (let p = 0; p < plane; p++) for (let k = 0; k < c; k++) data[k * plane + p] = src[p * c + k] / 65535;
  } else {
    const src = raw.data;
    for (let p = 0; p < plane; p++) for (let k = 0; k < c; k++) data[k * plane + p] = src[p * c + k] / 255;
  }
  return { width, height, channels: c, data };
}

/** Write an 8-bit PNG (gray for 1 channel). Values are truncated like the reference's tensor2im. */
export async function writePng(path: string, im: ImageF32): Promise<void> {
  const sharp = await loadSharp();
  const buf = toUint8Interleaved(im);
  try {
    await sharp(Buffer.from(buf.buffer, buf.byteOffset, buf.byteLength), { raw: { width: im.width, height: im.height, channels: im.channels } })
      .png()
      .toFile(path);
  } catch (e) {
    throw new FileFormatError(path, `cannot write PNG: ${(e as Error).message}`);
  }
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
    throw new FileFormatError(path, `cannot write PNG: ${(e as Error).message}`);
  }
}

/** Width, height and channel count (alpha excluded) from the file's header, without decoding pixels. */
export async function readImageInfo(path: string): Promise<{ width: number; height: number; channels: 1 | 3 }> {
  const sharp = await loadSharp();
  try {
    const meta = await sharp(path).metadata();
    if (!meta.width || !meta.height) throw new Error('no image size in the header');
    const c = (meta.channels ?? 3) - (meta.hasAlpha ? 1 : 0);
    return { width: meta.width, height: meta.height, channels: c >= 3 ? 3 : 1 };
  } catch (e) {
    throw new FileFormatError(path, `cannot read image: ${(e as Error).message}`);
  }
}
