// The built package in headless Chromium (SwiftShader WebGPU), as a web app uses the model: calls fired at
// once (Promise.all, a double click) queue and give the sequential results, and Pix2Pix.fromUrl streams a
// checkpoint from a local node:http server with progress, abort, a Cache API cache and named HTTP errors.
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { createServer, type Server } from 'node:http';
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { extname, join, normalize, resolve } from 'node:path';
import type { Browser, Page } from 'puppeteer-core';
import { launchChromium } from '../helpers/browser.js';
import { testContext } from '../helpers/gpu.js';
import { createImage } from '../../src/data/image.js';
import { Pix2Pix, type Pix2PixCheckpoint } from '../../src/gan/pix2pix.js';

const ROOT = resolve(import.meta.dirname, '../..');
const DIST = join(ROOT, 'dist/index.js');
const TYPES: Record<string, string> = { '.html': 'text/html', '.js': 'text/javascript', '.map': 'application/json' };

/** The same deterministic image in Node and in the page (no shared RNG needed). */
const PATTERN = (seed: number, i: number) => ((i * 7919 + seed * 104729) % 1000) / 1000;

/**
 * The repository's files plus /ckpt/<name> checkpoints: sent in four chunks with a Content-Length;
 * /ckpt/stall/<name> sends one chunk and then nothing; unknown names are 404. Checkpoint requests are counted.
 */
async function serve(files: Record<string, Uint8Array>): Promise<{ url: string; hits: Map<string, number>; close: () => Promise<void> }> {
  const hits = new Map<string, number>();
  const server: Server = createServer(async (req, res) => {
    const path = decodeURIComponent(new URL(req.url ?? '/', 'http://x').pathname);
    if (path.startsWith('/ckpt/')) {
      hits.set(path, (hits.get(path) ?? 0) + 1);
      const body = files[path.replace(/^\/ckpt\/(stall\/)?/, '')];
      if (!body) return void res.writeHead(404, 'Not Found').end('no such checkpoint');
      res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': String(body.length) });
      const chunk = Math.ceil(body.length / 4);
      if (path.startsWith('/ckpt/stall/')) {
        res.write(body.subarray(0, chunk));
        req.on('close', () => res.destroy());
        return;
      }
      let at = 0;
      const next = () => {
        if (at >= body.length) return void res.end();
        res.write(body.subarray(at, at + chunk), () => setTimeout(next, 20));
        at += chunk;
      };
      return next();
    }
    const file = join(ROOT, normalize(path).replace(/^[/\\]+/, ''));
    if (!file.startsWith(ROOT)) return void res.writeHead(403).end();
    try {
      const body = await readFile(file);
      res.writeHead(200, { 'content-type': TYPES[extname(file)] ?? 'application/octet-stream' }).end(body);
    } catch {
      res.writeHead(404).end('not found');
    }
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as { port: number }).port;
  // localhost is a secure context: navigator.gpu and the Cache API exist there.
  return {
    url: `http://localhost:${port}`,
    hits,
    close: () =>
      new Promise((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
}

describe('model API in headless Chromium (built package)', () => {
  let browser: Browser;
  let server: Awaited<ReturnType<typeof serve>>;
  let page: Page;
  let ck: Pix2PixCheckpoint;
  let nodeTranslation: Float32Array;
  const pageErrors: string[] = [];

  beforeAll(async () => {
    if (!existsSync(DIST)) throw new Error(`${DIST} is missing: run \`npm run build\` first (npm test does)`);
    // A tiny trained model saved in Node (Dawn); the page loads it over HTTP.
    const ctx = await testContext();
    const model = await Pix2Pix.create({ ctx, numDowns: 5, ngf: 2, ndf: 2, seed: 21 });
    const image = (seed: number) => createImage(32, 32, 3, Float32Array.from({ length: 32 * 32 * 3 }, (_, i) => PATTERN(seed, i)));
    await model.trainStep({ a: [image(1)], b: [image(2)] });
    ck = await model.save();
    nodeTranslation = (await model.translate(image(3), { eval: true })).data;
    await model.destroy();
    server = await serve({ 'G.safetensors': ck.G, 'D.safetensors': ck.D! });
    browser = await launchChromium();
    page = await browser.newPage();
    page.on('pageerror', (e) => pageErrors.push(String(e)));
    await page.goto(`${server.url}/test/browser/model_api.html`);
    await page.waitForFunction('window.__ready === true', { timeout: 30_000 });
  });
  afterAll(async () => {
    await browser?.close();
    await server?.close();
  });

  it('trainStep x3, translate and save fired at once equal the sequential calls; a double click trains twice', async () => {
    const result = await page.evaluate(async (patternSrc: string) => {
      const lib = (window as unknown as { lib: typeof import('../../src/index.js') }).lib;
      const pattern = new Function('seed', 'i', `return (${patternSrc})(seed, i)`) as (s: number, i: number) => number;
      const image = (seed: number) => lib.createImage(32, 32, 3, Float32Array.from({ length: 32 * 32 * 3 }, (_, i) => pattern(seed, i)));
      const batch = (s: number) => ({ a: [image(s)], b: [image(s + 50)] });
      const ctx = await lib.createContext();
      const opts = { ctx, numDowns: 5, ngf: 2, ndf: 2, seed: 5 };
      const together = await lib.Pix2Pix.create(opts);
      const oneByOne = await lib.Pix2Pix.create(opts);
      const [l1, l2, mid, l3, saved] = await Promise.all([
        together.trainStep(batch(1)),
        together.trainStep(batch(2)),
        together.translate(image(9)),
        together.trainStep(batch(3)),
        together.save(),
      ]);
      const s1 = await oneByOne.trainStep(batch(1));
      const s2 = await oneByOne.trainStep(batch(2));
      const sMid = await oneByOne.translate(image(9));
      const s3 = await oneByOne.trainStep(batch(3));
      const sSaved = await oneByOne.save();
      const same = (x: Uint8Array, y: Uint8Array) => x.length === y.length && x.every((v, i) => v === y[i]);
      const w = window as unknown as { clickModel: unknown; clickBatch: unknown };
      w.clickModel = together;
      w.clickBatch = batch(4);
      return {
        losses: JSON.stringify([l1, l2, l3]) === JSON.stringify([s1, s2, s3]),
        lossesDiffer: JSON.stringify(l1) !== JSON.stringify(l2),
        translation: mid.data.every((v, i) => v === sMid.data[i]),
        checkpoint: same(saved.G, sSaved.G) && same(saved.D!, sSaved.D!) && same(saved.optimizer!, sSaved.optimizer!),
        steps: together.steps,
      };
    }, PATTERN.toString());
    expect(pageErrors).toEqual([]);
    expect(result).toEqual({ losses: true, lossesDiffer: true, translation: true, checkpoint: true, steps: 3 });

    // Two clicks in quick succession: the handler starts a step per click without awaiting the last.
    await page.click('#step', { count: 2 });
    await page.waitForFunction('window.clicks.length === 2');
    const clicks = (await page.evaluate(async () => {
      const w = window as unknown as { clicks: Promise<unknown>[]; clickModel: { steps: number; save(): Promise<unknown> } };
      const results = await Promise.all(w.clicks);
      await w.clickModel.save(); // still usable (this used to fail with AbortError after the map error)
      return { results, steps: w.clickModel.steps };
    })) as { results: { ok: boolean; error?: string }[]; steps: number };
    expect(clicks.results.map((r) => r.error ?? 'ok')).toEqual(['ok', 'ok']);
    expect(clicks.steps).toBe(5);
  });

  it('fromUrl: progress ends at the total, the cached second load makes no request, abort and 404 reject by name', async () => {
    const hitsBefore = new Map(server.hits);
    const result = await page.evaluate(async () => {
      const lib = (window as unknown as { lib: typeof import('../../src/index.js') }).lib;
      const events: { url: string; loaded: number; total: number | null; fromCache: boolean }[] = [];
      const urls = { G: '/ckpt/G.safetensors', D: '/ckpt/D.safetensors' };
      const opts = { cache: 'model-api-test', onProgress: (p: (typeof events)[number]) => events.push(p) };
      await caches.delete('model-api-test');
      const first = await lib.Pix2Pix.fromUrl(urls, opts);
      const image = lib.createImage(32, 32, 3, Float32Array.from({ length: 32 * 32 * 3 }, (_, i) => ((i * 7919 + 3 * 104729) % 1000) / 1000));
      const translation = Array.from((await first.translate(image, { eval: true })).data);
      const firstEvents = events.splice(0);
      await first.destroy();
      const second = await lib.Pix2Pix.fromUrl(urls, opts);
      const secondTranslation = Array.from((await second.translate(image, { eval: true })).data);
      const secondEvents = events.splice(0);
      await second.destroy();

      const controller = new AbortController();
      const abortEvents: number[] = [];
      const aborted = await lib.Pix2Pix.fromUrl(
        { G: '/ckpt/stall/G.safetensors' },
        {
          signal: controller.signal,
          onProgress: (p) => {
            abortEvents.push(p.loaded);
            if (p.loaded > 0) controller.abort();
          },
        },
      ).then(
        () => 'resolved',
        (e: Error) => e.name,
      );
      const missing = await lib.Pix2Pix.fromUrl({ G: '/ckpt/missing.safetensors' }).then(
        () => null,
        (e: Error & { status?: number; url?: string }) => ({ name: e.name, message: e.message, status: e.status, url: e.url }),
      );
      return { firstEvents, secondEvents, translation, secondTranslation, aborted, abortEvents, missing };
    });
    expect(pageErrors).toEqual([]);
    for (const [name, size] of [['G', ck.G.length], ['D', ck.D!.length]] as const) {
      const url = `/ckpt/${name}.safetensors`;
      const first = result.firstEvents.filter((e) => e.url === url);
      expect(first[0]).toEqual({ url, loaded: 0, total: size, fromCache: false });
      expect(first.some((e) => e.loaded > 0 && e.loaded < size)).toBe(true); // sent in four chunks
      expect(first.at(-1)).toEqual({ url, loaded: size, total: size, fromCache: false });
      const second = result.secondEvents.filter((e) => e.url === url);
      expect(second.at(-1)).toEqual({ url, loaded: size, total: size, fromCache: true });
      // One request for both loads: the second came from the Cache API.
      expect(server.hits.get(url)).toBe((hitsBefore.get(url) ?? 0) + 1);
    }
    // The model loaded in the page computes what the model saved in Node computed (different GPUs: float tolerance).
    const maxErr = Math.max(...result.translation.map((v, i) => Math.abs(v - nodeTranslation[i])));
    expect(maxErr).toBeLessThan(1e-3);
    expect(result.secondTranslation).toEqual(result.translation);
    expect(result.aborted).toBe('AbortError');
    expect(Math.max(...result.abortEvents)).toBeLessThan(ck.G.length);
    expect(result.missing).toEqual({
      name: 'FetchError',
      message: 'Pix2Pix.fromUrl: /ckpt/missing.safetensors: HTTP 404 Not Found',
      status: 404,
      url: '/ckpt/missing.safetensors',
    });
  });
});
