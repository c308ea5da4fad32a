// image_browser.ts in headless Chromium: decode a PNG made by sharp and re-encode it, pixel-exact.
import { describe, it, expect, afterAll } from 'vitest';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { build } from 'esbuild';
import sharp from 'sharp';
import type { Browser } from 'puppeteer-core';
import { launchChromium, serveStatic } from '../helpers/browser.js';

const dir = mkdtempSync(join(tmpdir(), 'imgbrowser-'));
let browser: Browser | undefined;
let server: { url: string; close: () => Promise<void> } | undefined;

afterAll(async () => {
  await browser?.close();
  await server?.close();
});

describe('image_browser', () => {
  it('imageFromBitmap reads what sharp wrote; imageToBlob writes a PNG sharp reads back exactly', async () => {
    await build({
      entryPoints: [resolve(import.meta.dirname, '../../src/data/image_browser.ts')],
      bundle: true,
      format: 'esm',
      outfile: join(dir, 'image_browser.js'),
      logLevel: 'silent',
    });
    const w = 7;
    const h = 5;
    const raw = Buffer.alloc(w * h * 3);
    for (let i = 0; i < raw.length; i++) raw[i] = (i * 53 + 11) % 256;
    writeFileSync(join(dir, 'in.png'), await sharp(raw, { raw: { width: w, height: h, channels: 3 } }).png().toBuffer());
    // The page script is plain text so vitest does not transform it.
    const script = `
      import * as m from './image_browser.js';
      const blob = await (await fetch('/in.png')).blob();
      const im = await m.imageFromBitmap(blob);
      const gray = await m.imageFromBitmap(await createImageBitmap(blob), 1);
      const out = await m.imageToBlob(im);
      const bytes = Array.from(new Uint8Array(await out.arrayBuffer()));
      let bad = '';
      try { await m.imageFromBitmap(new Blob([new Uint8Array([1, 2, 3])], { type: 'image/png' })); } catch (e) { bad = e.message; }
      window.__result = { w: im.width, h: im.height, c: im.channels, data: Array.from(im.data), gray0: gray.data[0], grayC: gray.channels, type: out.type, bytes, bad };
    `;
    writeFileSync(join(dir, 'index.html'), `<!doctype html><title>t</title><script type="module">${script}</script>`);
    server = await serveStatic(dir);
    browser = await launchChromium();
    const page = await browser.newPage();
    const errors: string[] = [];
    page.on('pageerror', (e) => errors.push(String(e)));
    await page.goto(`${server.url}/index.html`);
    await page.waitForFunction('window.__result || document.title === "x"', { timeout: 30_000 }).catch(() => undefined);
    expect(errors).toEqual([]);
    const result = (await page.evaluate('window.__result')) as {
      w: number; h: number; c: number; data: number[]; gray0: number; grayC: number; type: string; bytes: number[]; bad: string;
    };
    expect([result.w, result.h, result.c]).toEqual([w, h, 3]);
    for (let p = 0; p < w * h; p++) for (let c = 0; c < 3; c++) expect(Math.round(result.data[c * w * h + p] * 255)).toBe(raw[p * 3 + c]);
    expect(result.grayC).toBe(1);
    expect(result.gray0 * 255).toBeCloseTo(0.299 * raw[0] + 0.587 * raw[1] + 0.114 * raw[2], 3);
    expect(result.type).toBe('image/png');
    const back = await sharp(Buffer.from(result.bytes)).removeAlpha().raw().toBuffer({ resolveWithObject: true });
    expect([back.info.width, back.info.height]).toEqual([w, h]);
    expect(Buffer.compare(back.data, raw)).toBe(0);
    expect(result.bad).toMatch(/cannot decode image/);
  });
});
