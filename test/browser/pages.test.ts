// The browser example page (built package, real WebGPU on SwiftShader) trains and translates; a study
// report renders its images and charts. Screenshots go to test/.out/ for people to look at.
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { mkdirSync, writeFileSync } from 'node:fs';
import { resolve, join } from 'node:path';
import type { Browser } from 'puppeteer-core';
import { launchChromium, serveStatic } from '../helpers/browser.js';
import { renderReport, type StudyReport } from '../../src/study/report.js';
import { encodePng } from '../../src/data/image_node.js';
import { createImage } from '../../src/data/image.js';

const ROOT = resolve(import.meta.dirname, '../..');
const OUT = join(ROOT, 'test/.out');

async function pngDataUrl(seed: number, channels: 1 | 3): Promise<string> {
  const im = createImage(32, 16, channels, Float32Array.from({ length: 32 * 16 * channels }, (_, i) => ((i * (seed + 3)) % 97) / 96));
  return `data:image/png;base64,${Buffer.from(await encodePng(im)).toString('base64')}`;
}

describe('browser pages (headless Chromium)', () => {
  let browser: Browser;
  let server: { url: string; close: () => Promise<void> };
  beforeAll(async () => {
    mkdirSync(OUT, { recursive: true });
    server = await serveStatic();
    browser = await launchChromium();
  });
  afterAll(async () => {
    await browser?.close();
    await server?.close();
  });

  it('examples/browser trains a few steps and translates a phantom on WebGPU', async () => {
    const page = await browser.newPage();
    const errors: string[] = [];
    page.on('pageerror', (e) => errors.push(String(e)));
    await page.goto(`${server.url}/examples/browser/index.html?auto`);
    const result = (await page.evaluate('window.__done')) as { ok: boolean; error?: string; status?: string };
    expect(result.error, errors.join('\n')).toBeUndefined();
    expect(result.status).toMatch(/translated in \d+ ms/);
    // The output canvas holds a real image: not blank, not constant.
    const stats = await page.evaluate(() => {
      const c = document.getElementById('out') as HTMLCanvasElement;
      const d = c.getContext('2d')!.getImageData(0, 0, c.width, c.height).data;
      let min = 255, max = 0;
      for (let i = 0; i < d.length; i += 4) {
        min = Math.min(min, d[i]);
        max = Math.max(max, d[i]);
      }
      return { w: c.width, h: c.height, min, max };
    });
    expect(stats.w).toBe(128);
    expect(stats.max - stats.min).toBeGreaterThan(10);
    await page.screenshot({ path: join(OUT, 'browser-example.png') });
    await page.close();
  });

  it('report.html shows its charts and every image', async () => {
    const trials = await Promise.all(
      [10, 30].map(async (n, i) => ({
        name: `n${n}`,
        kind: 'size',
        trainPairs: n,
        effectivePairs: n,
        metrics: { mse: 0.02 / (i + 1), nrmse: 0.3 / (i + 1), psnr: 17 + 3 * i, ssim: 0.5 + 0.1 * i, waem: 1 + i },
        losses: Array.from({ length: 8 }, (_, s) => ({ step: s + 1, epoch: 1, G_GAN: 1 - s * 0.05, G_L1: 20 - s, D_real: 0.7, D_fake: 0.6, lr: 2e-4 })),
        samples: [await pngDataUrl(i, 1), await pngDataUrl(i + 5, 1)],
      })),
    );
    const report: StudyReport = {
      title: 'browser test report',
      createdAt: new Date().toISOString(),
      trials,
      grid: { files: ['a', 'b'], inputs: [await pngDataUrl(1, 3), await pngDataUrl(2, 3)], truths: [await pngDataUrl(3, 1), await pngDataUrl(4, 1)] },
    };
    const dir = join(OUT, 'report');
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, 'report.html'), renderReport(report));
    const page = await browser.newPage();
    await page.goto(`${server.url}/test/.out/report/report.html`);
    const r = await page.evaluate(() => ({
      images: Array.from(document.images).map((im) => im.complete && im.naturalWidth > 0),
      metricCharts: document.querySelectorAll('#metric-charts svg').length,
      lossCharts: document.querySelectorAll('#loss-charts svg').length,
      series: document.querySelectorAll('#metric-charts path.series').length,
      rows: document.querySelectorAll('#results tbody tr').length,
    }));
    expect(r.images.length).toBe(2 * 2 + 2 * 2); // photo + truth + one per trial, two rows
    expect(r.images.every(Boolean)).toBe(true);
    expect(r.metricCharts).toBe(5); // MSE, NRMSE, PSNR, SSIM, WAEM (no FID/KID here)
    expect(r.series).toBe(5);
    expect(r.lossCharts).toBe(4); // per trial: the L1 term and the adversarial terms on separate panels
    expect(r.rows).toBe(2);
    await page.screenshot({ path: join(OUT, 'report.png'), fullPage: true });
    await page.close();
  });
});
