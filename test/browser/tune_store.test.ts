// The tuning store of the browser (the Cache API, src/kernels/conv/tune_store.ts) in real headless Chromium
// on SwiftShader WebGPU, through the built package as an app uses it: Pix2Pix.create({ tune: true }) tunes
// at the first step and keeps the table in the cache; after a reload (a fresh page, the same origin) a new
// model reads it, measures nothing, and its step runs the stored choices (proved with a planted 'direct'
// table that no static rule gives); a damaged entry stops create() with the cache named and the fix.
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import type { Browser, Page } from 'puppeteer-core';
import { launchChromium, serveStatic } from '../helpers/browser.js';

const DIST = resolve(import.meta.dirname, '../../dist/index.js');

type Losses = Record<'G_GAN' | 'G_L1' | 'D_real' | 'D_fake', number>;
interface ShapeRecord {
  impl: string;
  timer?: string;
  candidates: Record<string, number>;
}

describe('tuning store in headless Chromium (Cache API, built package)', () => {
  let browser: Browser;
  let server: { url: string; close: () => Promise<void> };
  let page: Page;
  const pageErrors: string[] = [];

  async function open(): Promise<void> {
    await page.goto(`${server.url}/test/browser/tune_store.html`);
    await page.waitForFunction('window.__ready === true');
  }

  beforeAll(async () => {
    if (!existsSync(DIST)) throw new Error(`${DIST} is missing: run \`npm run build\` first (npm test does)`);
    server = await serveStatic();
    browser = await launchChromium();
    page = await browser.newPage();
    page.on('pageerror', (e) => pageErrors.push(String(e)));
    await open();
  });
  afterAll(async () => {
    await browser?.close();
    await server?.close();
  });

  it('the first step fills the cache; after a reload a new model reads it, measures nothing, and runs the stored choices', async () => {
    const first = (await page.evaluate(async () => {
      const w = window as unknown as Record<string, any>;
      await caches.delete(w.CACHE);
      const m = await w.lib.Pix2Pix.create({ ...w.OPTS, tune: true });
      const before = Object.keys(await w.cacheEntries()).length;
      await m.trainStep(w.BATCH);
      const result = { before, after: await w.cacheEntries(), timestamps: m.ctx.features.has('timestamp-query'), adapter: { ...m.ctx.adapterInfo } };
      m.destroy();
      return result;
    })) as { before: number; after: Record<string, string>; timestamps: boolean; adapter: Record<string, string> };
    expect(pageErrors).toEqual([]);
    expect(first.before).toBe(0);
    const urls = Object.keys(first.after);
    expect(urls).toHaveLength(1);
    const key = [first.adapter.vendor, first.adapter.architecture, first.adapter.device, first.adapter.description].join('|');
    expect(decodeURIComponent(urls[0])).toContain(key);
    const table = JSON.parse(first.after[urls[0]]) as { adapter: Record<string, string>; shapes: Record<string, ShapeRecord> };
    expect(table.adapter.vendor).toBe(first.adapter.vendor);
    const keys = Object.keys(table.shapes);
    expect(keys.length).toBeGreaterThan(30);
    for (const r of Object.values(table.shapes)) {
      expect(r.timer).toBe(first.timestamps ? 'gpu' : 'wall');
      expect(Object.keys(r.candidates).length).toBeGreaterThanOrEqual(2);
    }

    // Plant a table no static rule gives, then start over in a fresh page of the same origin.
    for (const k of keys) table.shapes[k] = { impl: 'direct', candidates: { direct: 123.456 }, ...{ ms: 123.456 } } as ShapeRecord;
    const planted = JSON.stringify(table);
    await page.reload();
    await page.waitForFunction('window.__ready === true');
    const second = (await page.evaluate(
      async (url: string, text: string) => {
        const w = window as unknown as Record<string, any>;
        const cache = await caches.open(w.CACHE);
        await cache.put(url, new Response(text, { headers: { 'content-type': 'application/json' } }));
        const tuned = await w.lib.Pix2Pix.create({ ...w.OPTS, tune: true });
        const plain = await w.lib.Pix2Pix.create({ ...w.OPTS });
        const lossTuned = await tuned.trainStep(w.BATCH);
        const lossPlain = await plain.trainStep(w.BATCH);
        const result = { labels: w.convLabels(tuned), staticLabels: w.convLabels(plain), lossTuned, lossPlain, entries: await w.cacheEntries() };
        tuned.destroy();
        plain.destroy();
        return result;
      },
      urls[0],
      planted,
    )) as { labels: string[]; staticLabels: string[]; lossTuned: Losses; lossPlain: Losses; entries: Record<string, string> };
    expect(pageErrors).toEqual([]);
    // Nothing measured again: the entry is what was planted.
    expect(second.entries).toEqual({ [urls[0]]: planted });
    expect(second.labels.length).toBeGreaterThan(keys.length);
    for (const l of second.labels) expect(l).toMatch(/\.(direct|bias_grad\w*)\.pipeline$/);
    // The static rule (SwiftShader's picks direct for the smallest levels, so not only 'direct' is new) differs from the planted table.
    expect(second.staticLabels.filter((l) => !/\.(direct|bias_grad\w*)\.pipeline$/.test(l)).length).toBeGreaterThan(0);
    for (const k of ['G_GAN', 'G_L1', 'D_real', 'D_fake'] as const) expect(Math.abs(second.lossTuned[k] - second.lossPlain[k])).toBeLessThan(1e-4 * Math.max(1, Math.abs(second.lossPlain[k])));
  });

  it('a damaged entry stops create() with an error naming the cache and how to clear it', async () => {
    const r = (await page.evaluate(async () => {
      const w = window as unknown as Record<string, any>;
      const cache = await caches.open(w.CACHE);
      const urls = (await cache.keys()).map((q) => q.url);
      await cache.put(urls[0], new Response('{"adapter": ', { headers: { 'content-type': 'application/json' } }));
      try {
        (await w.lib.Pix2Pix.create({ ...w.OPTS, tune: true })).destroy();
        return { error: null, name: null, entries: await w.cacheEntries() };
      } catch (e) {
        return { error: String((e as Error).message), name: (e as Error).name, isFileFormat: e instanceof w.lib.FileFormatError, entries: await w.cacheEntries() };
      }
    })) as { error: string | null; name: string | null; isFileFormat?: boolean; entries: Record<string, string> };
    expect(r.isFileFormat).toBe(true);
    expect(r.error).toMatch(/Cache API 'pix2pix-webgpu-tune'.*tuning cache entry is not valid JSON \(delete it to re-tune: caches\.delete\('pix2pix-webgpu-tune'\)\)/);
    expect(Object.values(r.entries)).toEqual(['{"adapter": ']);
  });
});
