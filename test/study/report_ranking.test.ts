// The expert's loop, as in the paper, in real Chromium: the report's blinded ranking mode shows each photo's
// translations in a random order without names; a scripted "expert" ranks them by how close each looks to the
// ground truth (mean absolute difference, read from the page's own images), exports ranking.json (a real
// download), and `waem` fits WAEM's weights to it, prints the Kendall taus and rewrites the report.
// The trials' SSIM is deliberately made to disagree with the images: the fit must learn to ignore it.
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import type { Browser } from 'puppeteer-core';
import { launchChromium, serveStatic } from '../helpers/browser.js';
import { parseReportData, renderReport, type StudyReport, type TrialReport } from '../../src/study/report.js';
import { encodePng } from '../../src/data/image_node.js';
import { createImage, type ImageF32 } from '../../src/data/image.js';
import { Rng } from '../../src/runtime/random.js';
import { waemCommand } from '../../src/cli/cmd_waem.js';

const OUT = join(resolve(import.meta.dirname, '../..'), 'test/.out');
const W = 64;
const H = 32;
const url = async (im: ImageF32) => `data:image/png;base64,${Buffer.from(await encodePng(im)).toString('base64')}`;

function truthImage(seed: number): ImageF32 {
  const im = createImage(W, H, 1);
  for (let y = 0; y < H; y++) for (let x = 0; x < W; x++) im.data[y * W + x] = 0.5 + 0.35 * Math.sin((x + seed * 7) / 5) * Math.cos((y + seed) / 4);
  return im;
}

function noisy(im: ImageF32, sigma: number, rng: Rng): ImageF32 {
  return { ...im, data: im.data.map((v) => Math.min(1, Math.max(0, v + rng.normal(0, sigma)))) };
}

describe('blinded ranking → ranking.json → waem → report', () => {
  let browser: Browser;
  let server: Awaited<ReturnType<typeof serveStatic>>;
  const dir = mkdtempSync(join(tmpdir(), 'ranking-'));
  beforeAll(async () => {
    server = await serveStatic(dir);
    browser = await launchChromium();
  });
  afterAll(async () => {
    await browser?.close();
    await server?.close();
  });

  it('a scripted expert ranks the blind translations, exports ranking.json, and waem fits and rewrites the report', async () => {
    // Four trials whose translations get worse with more noise; the pixel metrics agree, SSIM says the opposite.
    const sigmas = [0.02, 0.08, 0.15, 0.3];
    const names = ['n110', 'n24-s0', 'n8-s0', 'aug-8to32'];
    const truths = [0, 1, 2].map(truthImage);
    const rng = new Rng(7);
    const trials: TrialReport[] = [];
    for (const [i, sigma] of sigmas.entries()) {
      const fakes = truths.map((t) => noisy(t, sigma, rng));
      let mse = 0;
      for (const [k, f] of fakes.entries()) mse += f.data.reduce((s, v, q) => s + (v - truths[k].data[q]) ** 2, 0) / f.data.length / fakes.length;
      trials.push({
        name: names[i],
        kind: i === 3 ? 'augment' : 'size',
        trainPairs: [110, 24, 8, 8][i],
        effectivePairs: [110, 24, 8, 32][i],
        metrics: { mse, nrmse: Math.sqrt(mse) / 0.5, psnr: 10 * Math.log10(1 / mse), ssim: 0.5 + 0.1 * i, waem: 1, skeleton: 0.6 - 0.1 * i },
        losses: [],
        samples: await Promise.all(fakes.map(url)),
      });
    }
    const report: StudyReport = {
      title: 'ranking test',
      createdAt: new Date().toISOString(),
      trials,
      grid: { files: ['m001_p0', 'm002_p0', 'm003_p0'], inputs: await Promise.all(truths.map((t) => url({ ...createImage(W, H, 3), data: new Float32Array(W * H * 3).fill(0.4) }))), truths: await Promise.all(truths.map(url)) },
    };
    writeFileSync(join(dir, 'report.html'), renderReport(report));
    writeFileSync(join(dir, 'results.json'), JSON.stringify(trials.map(({ samples: _s, losses: _l, ...t }) => t), null, 2));

    const downloads = join(dir, 'downloads');
    mkdirSync(downloads);
    const page = await browser.newPage();
    const cdp = await browser.target().createCDPSession();
    await cdp.send('Browser.setDownloadBehavior', { behavior: 'allow', downloadPath: downloads });
    await page.goto(`${server.url}/report.html`);
    expect(await page.$eval('#ranking-export', (b) => (b as HTMLButtonElement).disabled)).toBe(true);
    await page.click('#ranking-start');
    // Blind: no trial name anywhere in the ranking section.
    const text = await page.$eval('#ranking', (el) => el.textContent ?? '');
    for (const n of names) expect(text).not.toContain(n);
    const items = await page.$$('.rank-item');
    expect(items.length).toBe(3);
    const orders: number[][] = [];
    for (const item of items) {
      // The expert looks: mean absolute difference of each candidate to the ground truth, from the page's pixels.
      const diffs = await item.evaluate(async (el) => {
        const read = async (img: HTMLImageElement) => {
          await img.decode();
          const c = document.createElement('canvas');
          c.width = img.naturalWidth;
          c.height = img.naturalHeight;
          const g = c.getContext('2d')!;
          g.drawImage(img, 0, 0);
          return g.getImageData(0, 0, c.width, c.height).data;
        };
        const truth = await read(el.querySelector('img.rank-truth') as HTMLImageElement);
        const out: number[] = [];
        for (const cand of Array.from(el.querySelectorAll('.rank-candidate img'))) {
          const d = await read(cand as HTMLImageElement);
          let s = 0;
          for (let i = 0; i < d.length; i += 4) s += Math.abs(d[i] - truth[i]);
          out.push(s / (d.length / 4));
        }
        return out;
      });
      const order = diffs.map((d, k) => [d, k]).sort((a, b) => a[0] - b[0]).map(([, k]) => k);
      orders.push(order);
      const buttons = await item.$$('.rank-candidate');
      for (const k of order) await buttons[k].click();
      const badges = await item.$$eval('.rank-badge', (b) => b.map((x) => x.textContent));
      expect(badges.map(Number).sort()).toEqual([1, 2, 3, 4]);
    }
    // Random order: the three photos do not all show the trials in one order (chance (1/24)^2 of a false failure is avoided by checking the exported mapping instead).
    expect(await page.$eval('#ranking-status', (e) => e.textContent)).toBe('3 of 3 photos ranked');
    await page.click('#ranking-export');
    const file = join(downloads, 'ranking.json');
    for (let i = 0; i < 100 && !existsSync(file); i++) await new Promise((r) => setTimeout(r, 100));
    expect(existsSync(file), 'ranking.json downloaded').toBe(true);
    await page.screenshot({ path: join((mkdirSync(OUT, { recursive: true }), OUT), 'report_ranking.png'), fullPage: true });
    await page.close();
    const ranking = JSON.parse(readFileSync(file, 'utf8'));
    expect(ranking.trials).toEqual(names);
    // The expert saw the noise: every photo ranked from least to most noisy.
    for (const im of ranking.images) expect(im.order).toEqual(names);

    // Fit WAEM to the expert, print the taus, rewrite the report.
    const logs: string[] = [];
    const log = console.log;
    console.log = (...a: unknown[]) => void logs.push(a.join(' '));
    try {
      await waemCommand.run({ results: join(dir, 'results.json'), ranking: file } as never, []);
    } finally {
      console.log = log;
    }
    const printed = logs.join('\n');
    expect(printed).toMatch(/fitted WAEM weights: a=\S+ b=\S+ c=\S+ d=\S+ e=\S+/);
    expect(printed).toMatch(/WAEM \(fitted\)\s+1\.000/);
    expect(printed).toMatch(/\bmse\s+1\.000/);
    expect(printed).toMatch(/\bssim\s+-1\.000/);
    expect(printed).toMatch(/\bskeleton\s+1\.000/);
    const saved = JSON.parse(readFileSync(join(dir, 'waem_weights.json'), 'utf8'));
    expect(saved.waemWeights.d).toBe(0); // SSIM disagrees with the expert: no weight
    // No FID in these results: the shares are those of the four terms that exist.
    expect(saved.shares[4]).toBe(0);
    expect(saved.shares.reduce((s: number, v: number) => s + v, 0)).toBeCloseTo(1, 9);
    const html = readFileSync(join(dir, 'report.html'), 'utf8');
    const data = parseReportData(html)!;
    expect(data.waem!.source).toContain("fitted to an expert's blind ranking of 3 photos");
    const waems = data.trials.map((t) => t.metrics.waem!);
    expect(waems).toEqual([...waems].sort((a, b) => b - a)); // the fitted WAEM orders the trials as the expert did
    expect(new Set(waems).size).toBe(4);

    // The rewritten page shows the fitted weights and the agreement, and still ranks.
    const page2 = await browser.newPage();
    await page2.goto(`${server.url}/report.html`);
    const shown = await page2.$eval('#waem-weights', (e) => e.textContent ?? '');
    expect(shown).toContain("fitted to an expert's blind ranking");
    expect(shown).toMatch(/WAEM \(fitted\) 1\.00/);
    await page2.click('#ranking-start');
    expect((await page2.$$('.rank-item')).length).toBe(3);
    await page2.close();
  });

  it('waem refuses a ranking that does not match the results, naming the flag', async () => {
    writeFileSync(join(dir, 'bad.json'), JSON.stringify({ trials: ['n110', 'nope'], images: [{ file: 'a', order: ['nope', 'n110'] }] }));
    await expect(waemCommand.run({ results: join(dir, 'results.json'), ranking: join(dir, 'bad.json') } as never, [])).rejects.toThrow(/--ranking .*trial 'nope' is not in the results/);
    await expect(waemCommand.run({ results: join(dir, 'missing.json'), ranking: join(dir, 'bad.json') } as never, [])).rejects.toThrow(/--results .*no such file/);
  });
});
