/**
 * Images in the browser (or any worker with createImageBitmap and OffscreenCanvas): decode to
 * {@link ImageF32} and encode to PNG. 8-bit only (canvas), values divided by 255. No Node imports.
 *
 * Colour management: createImageBitmap is asked not to convert colour spaces or premultiply alpha,
 * so pixel values match what sharp reads in Node for sRGB PNGs (alpha is dropped, as there).
 */
import { FileFormatError } from '../runtime/errors.js';
import { createImage, toUint8Interleaved, type ImageF32 } from './image.js';

function canvas2d(width: number, height: number): { canvas: OffscreenCanvas; ctx: OffscreenCanvasRenderingContext2D } {
  if (typeof OffscreenCanvas === 'undefined') throw new FileFormatError('image', 'OffscreenCanvas is not available in this environment');
  const canvas = new OffscreenCanvas(width, height);
  const ctx = canvas.getContext('2d', { willReadFrequently: true, colorSpace: 'srgb' } as CanvasRenderingContext2DSettings) as OffscreenCanvasRenderingContext2D | null;
  if (!ctx) throw new FileFormatError('image', 'could not get a 2d context on an OffscreenCanvas');
  return { canvas, ctx };
}

/**
 * Decode an ImageBitmap or an image Blob (PNG, JPEG, WebP: what the browser decodes) into planar [0, 1]
 * floats. `channels` 1 converts with ITU-R 601 luma (as the Node reader's RGB → gray); default 3.
 */
export async function imageFromBitmap(source: ImageBitmap | Blob, channels: 1 | 3 = 3): Promise<ImageF32> {
  let bitmap: ImageBitmap;
  let owned = false;
  if (typeof Blob !== 'undefined' && source instanceof Blob) {
    try {
      bitmap = await createImageBitmap(source, { colorSpaceConversion: 'none', premultiplyAlpha: 'none' });
      owned = true;
    } catch (e) {
      const name = (source as File).name ?? `blob (${source.type || 'unknown type'}, ${source.size} bytes)`;
      throw new FileFormatError(name, `cannot decode image: ${(e as Error).message}`);
    }
  } else bitmap = source as ImageBitmap;
  try {
    const { width, height } = bitmap;
    const { ctx } = canvas2d(width, height);
    ctx.drawImage(bitmap, 0, 0);
    const rgba = ctx.getImageData(0, 0, width, height).data;
    const im = createImage(width, height, channels);
    const plane = width * height;
    if (channels === 3) {
      for (let p = 0; p < plane; p++) {
        im.data[p] = rgba[4 * p] / 255;
        im.data[plane + p] = rgba[4 * p + 1] / 255;
        im.data[2 * plane + p] = rgba[4 * p + 2] / 255;
      }
    } else {
      for (let p = 0; p < plane; p++) im.data[p] = (0.299 * rgba[4 * p] + 0.587 * rgba[4 * p + 1] + 0.114 * rgba[4 * p + 2]) / 255;
    }
    return im;
  } finally {
    if (owned) bitmap.close();
  }
}

/** Encode an image as an 8-bit PNG Blob (values truncated like the reference's tensor2im; gray tiled to RGB). */
export async function imageToBlob(im: ImageF32): Promise<Blob> {
  const { width, height, channels } = im;
  const px = toUint8Interleaved(im);
  const rgba = new Uint8ClampedArray(width * height * 4);
  for (let p = 0; p < width * height; p++) {
    const r = px[p * channels];
    rgba[4 * p] = r;
    rgba[4 * p + 1] = channels === 3 ? px[p * 3 + 1] : r;
    rgba[4 * p + 2] = channels === 3 ? px[p * 3 + 2] : r;
    rgba[4 * p + 3] = 255;
  }
  const { canvas, ctx } = canvas2d(width, height);
  ctx.putImageData(new ImageData(rgba, width, height), 0, 0);
  return canvas.convertToBlob({ type: 'image/png' });
}
