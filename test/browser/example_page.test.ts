// The browser example page as a user meets it: started by the real `serve` command (node dist/cli.js serve),
// driven in headless Chromium by its buttons: a double-click on train, an uploaded photo that is not a
// phantom and not the model's aspect ratio, a checkpoint loaded by URL, and the page opened as a file.
// Screenshots go to test/.out/example-page/ for people to look at.
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { spawn, execFileSync, type ChildProcess } from 'node:child_process';
import { copyFileSync, cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import sharp from 'sharp';
import type { Browser, ElementHandle, Page } from 'puppeteer-core';
import { launchChromium } from '../helpers/browser.js';

const ROOT = resolve(import.meta.dirname, '../..');
const CLI = join(ROOT, 'dist/cli.js');
const OUT = join(ROOT, 'test/.out/example-page');

interface Served {
  url: string;
  /** Everything it printed so far. */
  output: () => string;
  proc: ChildProcess;
  stop: () => Promise<void>;
}

/** Run `serve` as a user would and read the URL it prints. */
async function serve(cli: string, args: string[]): Promise<Served> {
  const proc = spawn(process.execPath, [cli, 'serve', ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  const url = await new Promise<string>((ok, fail) => {
    const timer = setTimeout(() => fail(new Error(`serve printed no URL in 20 s: ${out}`)), 20_000);
    const read = (b: Buffer) => {
      out += b.toString();
      const m = /(http:\/\/127\.0\.0\.1:\d+\/\S*)/.exec(out);
      // Its last start-up line ends with "Ctrl-C stops".
      if (m && /Ctrl-C stops\n/.test(out)) {
        clearTimeout(timer);
        ok(m[1]);
      }
    };
    proc.stdout!.on('data', read);
    proc.stderr!.on('data', read);
    proc.on('exit', (code) => fail(new Error(`serve exited with ${code}: ${out}`)));
  });
  return {
    url,
    output: () => out,
    proc,
    stop: () =>
      new Promise<void>((done) => {
        if (proc.exitCode !== null) return done();
        proc.on('exit', () => done());
        proc.kill('SIGTERM');
      }),
  };
}

/** Record every text the progress line and status show, and whether the buttons were disabled at that moment. */
async function recordProgress(page: Page): Promise<void> {
  await page.evaluate(() => {
    const w = window as unknown as { __log: { text: string; busyControls: boolean; allDisabled: boolean }[] };
    w.__log = [];
    const note = () => {
      const buttons = Array.from(document.querySelectorAll('fieldset button, fieldset input, fieldset select')) as HTMLButtonElement[];
      w.__log.push({
        text: document.getElementById('progress-text')!.textContent ?? '',
        busyControls: buttons.some((b) => b.disabled),
        allDisabled: buttons.every((b) => b.disabled),
      });
    };
    new MutationObserver(note).observe(document.getElementById('progress-text')!, { childList: true, characterData: true, subtree: true });
  });
}
const progressLog = (page: Page) => page.evaluate(() => (window as unknown as { __log: { text: string; allDisabled: boolean }[] }).__log);

const idle = (page: Page, timeout = 120_000) => page.waitForFunction(() => (window as unknown as { __busy?: boolean }).__busy === false, { timeout });
const statusText = (page: Page) => page.$eval('#status', (e) => e.textContent ?? '');

/** RGB of canvas pixels at (x, y) in canvas pixels. */
function pixels(page: Page, id: string, points: [number, number][]): Promise<{ w: number; h: number; rgb: number[][] }> {
  return page.evaluate(
    (id, points) => {
      const c = document.getElementById(id) as HTMLCanvasElement;
      const d = c.getContext('2d')!.getImageData(0, 0, c.width, c.height).data;
      return { w: c.width, h: c.height, rgb: points.map(([x, y]) => [d[4 * (y * c.width + x)], d[4 * (y * c.width + x) + 1], d[4 * (y * c.width + x) + 2]]) };
    },
    id,
    points,
  );
}
/** Spread of the red channel over a canvas (0 for a blank or constant one). */
const canvasRange = (page: Page, id: string) =>
  page.evaluate((id) => {
    const c = document.getElementById(id) as HTMLCanvasElement;
    const d = c.getContext('2d')!.getImageData(0, 0, c.width, c.height).data;
    let min = 255,
      max = 0;
    for (let i = 0; i < d.length; i += 4) {
      min = Math.min(min, d[i]);
      max = Math.max(max, d[i]);
    }
    return max - min;
  }, id);

describe('examples/browser served by `pix2pix-webgpu serve` (headless Chromium)', () => {
  let browser: Browser;
  let server: Served;
  let files: string;
  let page: Page;
  const errors: string[] = [];

  beforeAll(async () => {
    if (!existsSync(CLI)) throw new Error(`${CLI} is missing: npm run build first`);
    mkdirSync(OUT, { recursive: true });
    // A folder for `serve --files`: a generator checkpoint as the PyTorch reference writes it.
    files = mkdtempSync(join(tmpdir(), 'serve-files-'));
    copyFileSync(join(ROOT, 'test/fixtures/pix2pix/g_batch.pth'), join(files, 'latest_net_G.pth'));
    server = await serve(CLI, ['--port', '0', '--files', files]);
    browser = await launchChromium();
    page = await browser.newPage();
    await page.setViewport({ width: 1000, height: 900 });
    page.on('pageerror', (e) => errors.push(String(e)));
  }, 60_000);
  /** The page at the served URL, ready (kept between tests, so they build on each other; each runs alone too). */
  async function openPage(fresh = false) {
    if (!fresh && page.url().startsWith(server.url)) return;
    await page.goto(server.url);
    await page.waitForFunction(() => /^ready/.test(document.getElementById('status')!.textContent ?? ''), { timeout: 30_000 });
  }
  afterAll(async () => {
    await browser?.close();
    await server?.stop();
    if (files) rmSync(files, { recursive: true, force: true });
  });

  it('serve prints a 127.0.0.1 URL, serves the page and dist/, and nothing else of the package', async () => {
    expect(server.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/examples\/browser\/$/);
    const origin = new URL(server.url).origin;
    const root = await fetch(`${origin}/`, { redirect: 'manual' });
    expect(root.status).toBe(302);
    expect(root.headers.get('location')).toBe('/examples/browser/');
    const html = await fetch(server.url);
    expect(html.status).toBe(200);
    expect(html.headers.get('content-type')).toMatch(/^text\/html/);
    // The page imports the package as published: dist/index.js, found next to examples/ by a relative URL.
    expect(await html.text()).toContain("import('../../dist/index.js')");
    const lib = await fetch(`${origin}/dist/index.js`);
    expect(lib.status).toBe(200);
    expect(lib.headers.get('content-type')).toMatch(/^text\/javascript/);
    expect((await fetch(`${origin}/package.json`)).status).toBe(404);
    expect((await fetch(`${origin}/src/index.ts`)).status).toBe(404);
    expect((await fetch(`${origin}/dist/..%2fpackage.json`)).status).toBe(403);
    expect((await fetch(`${origin}/files/latest_net_G.pth`)).headers.get('content-length')).toBe(String(readFileSync(join(files, 'latest_net_G.pth')).length));
  });

  it('serve refuses a bad --port or --files in one line that names the flag, and a busy port', async () => {
    const run = (args: string[]) => {
      try {
        execFileSync(process.execPath, [CLI, 'serve', ...args], { stdio: 'pipe', timeout: 15_000 });
        return { code: 0, err: '' };
      } catch (e) {
        const x = e as { status: number; stderr: Buffer };
        return { code: x.status, err: x.stderr.toString().trim() };
      }
    };
    const badPort = run(['--port', '70000']);
    expect(badPort.code).toBe(2);
    expect(badPort.err).toMatch(/--port must be an integer from 0 to 65535, got 70000$/);
    const badFiles = run(['--files', '/nonexistent-folder']);
    expect(badFiles.code).toBe(2);
    expect(badFiles.err).toMatch(/--files must be a folder, got '\/nonexistent-folder'/);
    const busy = run(['--port', new URL(server.url).port]);
    expect(busy.code).toBe(2);
    expect(busy.err).toMatch(/port \d+ on 127\.0\.0\.1 is in use: pass another --port \(0 picks a free one\)$/);
  });

  it('opened as a file, the page says how to serve it instead of "loading…"', async () => {
    const p = await browser.newPage();
    await p.setViewport({ width: 1000, height: 700 });
    await p.goto(`file://${join(ROOT, 'examples/browser/index.html')}`);
    const s = await statusText(p);
    expect(s).not.toMatch(/loading/);
    expect(s).toContain('npm run example');
    expect(s).toContain('npx pix2pix-webgpu serve');
    expect(await p.$$eval('fieldset button', (bs) => bs.every((b) => (b as HTMLButtonElement).disabled))).toBe(true);
    await p.screenshot({ path: join(OUT, 'file-protocol.png') });
    await p.close();
  });

  it('creates a model; a double-click on train runs 5 steps once, with progress and the buttons disabled', async () => {
    await openPage(true);
    await page.click('#new');
    await idle(page);
    expect(await statusText(page)).toMatch(/^new model ready/);

    await page.click('#phantom');
    await idle(page);
    expect(await page.$eval('#truth-figure', (f) => (f as HTMLElement).hidden)).toBe(false);

    await recordProgress(page);
    await page.click('#train', { count: 2 });
    // Mid-run: the bar shows the step and the buttons are off.
    await page.waitForFunction(() => /training step 3 of 5/.test(document.getElementById('progress-text')!.textContent ?? ''), { timeout: 60_000 });
    expect(await page.$eval('#progress', (p) => (p as HTMLProgressElement).hidden)).toBe(false);
    expect(await page.$eval('#train', (b) => (b as HTMLButtonElement).disabled)).toBe(true);
    await page.screenshot({ path: join(OUT, 'training-progress.png') });
    // A click while it runs is ignored too.
    await page.evaluate(() => document.getElementById('train')!.click());
    await idle(page);

    expect(errors).toEqual([]);
    expect(await statusText(page)).toMatch(/^trained 5 steps \(\d+ ms\/step\): G_GAN [\d.]+ G_L1/);
    expect(await page.evaluate(() => (window as unknown as { __state: { model: { steps: number } } }).__state.model.steps)).toBe(5);
    const log = await progressLog(page);
    const steps = log.map((l) => /training step (\d) of 5/.exec(l.text)?.[1]).filter(Boolean);
    expect(steps).toEqual(['1', '2', '3', '4', '5']);
    expect(log.find((l) => l.text.startsWith('training step 1'))!.text).toMatch(/compiles its kernels/);
    expect(log.find((l) => l.text.startsWith('training step 4'))!.text).toMatch(/\d+ ms\/step/);
    // Every progress text appeared with every control disabled; afterwards they are enabled again.
    expect(log.filter((l) => l.text !== '').every((l) => l.allDisabled)).toBe(true);
    expect(await page.$$eval('fieldset button', (bs) => bs.every((b) => !(b as HTMLButtonElement).disabled))).toBe(true);
    expect(await page.$eval('#progress', (p) => (p as HTMLProgressElement).hidden)).toBe(true);

    await page.click('#translate');
    await idle(page);
    expect(await statusText(page)).toMatch(/^translated in \d+ ms/);
    expect(await canvasRange(page, 'out')).toBeGreaterThan(10);
    expect(await page.$eval('#truth-figure', (f) => (f as HTMLElement).hidden)).toBe(false);
    await page.screenshot({ path: join(OUT, 'phantom-trained-translated.png'), fullPage: true });
  }, 180_000);

  it('an uploaded portrait photo keeps its aspect ratio (padded or cropped, as the page says) and hides the ground truth', async () => {
    // 90x120 (3:4 portrait; the model takes 128x64, 2:1): left half red, right half blue.
    const w = 90,
      h = 120;
    const raw = Buffer.alloc(w * h * 3);
    for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) raw.set(x < w / 2 ? [220, 30, 30] : [30, 30, 220], 3 * (y * w + x));
    const photo = join(OUT, 'portrait-red-blue.png');
    await openPage();
    await sharp(raw, { raw: { width: w, height: h, channels: 3 } }).png().toFile(photo);

    const input = (await page.$('#photo')) as ElementHandle<HTMLInputElement>;
    await input.uploadFile(photo);
    await page.waitForFunction(() => /^photo loaded/.test(document.getElementById('status')!.textContent ?? ''), { timeout: 30_000 });
    await idle(page);
    // Padded: scaled to 48x64 in the middle, black bars left and right.
    expect(await statusText(page)).toBe('photo loaded: 90×120 → 128×64, aspect ratio kept, padded: black bars left and right');
    expect(await page.$eval('#in-caption', (c) => c.textContent)).toContain('padded: black bars left and right');
    expect(await page.$eval('#truth-figure', (f) => (f as HTMLElement).hidden)).toBe(true);
    expect(await canvasRange(page, 'truth')).toBe(0);
    expect(await canvasRange(page, 'out')).toBe(0); // the previous translation is cleared with the photo
    const padded = await pixels(page, 'in', [[10, 32], [50, 32], [78, 32], [118, 32]]);
    expect([padded.w, padded.h]).toEqual([128, 64]);
    const [leftBar, red, blue, rightBar] = padded.rgb;
    expect(Math.max(...leftBar, ...rightBar)).toBeLessThan(5);
    expect(red[0]).toBeGreaterThan(200);
    expect(red[2]).toBeLessThan(50);
    expect(blue[2]).toBeGreaterThan(200);
    expect(blue[0]).toBeLessThan(50);
    await page.click('#translate');
    await idle(page);
    expect(await statusText(page)).toMatch(/^translated in \d+ ms/);
    expect(await page.$eval('#truth-figure', (f) => (f as HTMLElement).hidden)).toBe(true);
    await page.screenshot({ path: join(OUT, 'upload-padded.png'), fullPage: true });

    // Cropped: scaled to 128x171, top and bottom cut off; red fills the left, blue the right.
    await page.select('#fit', 'crop');
    expect(await statusText(page)).toBe('photo re-fitted: 90×120 → 128×64, aspect ratio kept, cropped: top and bottom cut off (63% of the photo)');
    const cropped = await pixels(page, 'in', [[2, 2], [60, 32], [68, 32], [125, 61]]);
    expect(cropped.rgb[0][0]).toBeGreaterThan(200);
    expect(cropped.rgb[1][0]).toBeGreaterThan(200);
    expect(cropped.rgb[2][2]).toBeGreaterThan(200);
    expect(cropped.rgb[3][2]).toBeGreaterThan(200);
    await page.screenshot({ path: join(OUT, 'upload-cropped.png'), fullPage: true });
    await page.select('#fit', 'pad');
  }, 120_000);

  it('loads a checkpoint from a URL (cross-origin, with download progress), then translates with it', async () => {
    await openPage();
    if (!(await page.evaluate(() => (window as unknown as { __state: { model: unknown } }).__state.model))) {
      await page.click('#new');
      await idle(page);
    }
    // A 404 is reported as such, on the page.
    await page.$eval('#url', (e) => ((e as HTMLInputElement).value = ''));
    await page.type('#url', '/files/missing.pth');
    await page.click('#load-url');
    await idle(page);
    expect(await statusText(page)).toMatch(/http:\/\/127\.0\.0\.1:\d+\/files\/missing\.pth: HTTP 404/);
    expect(await page.$eval('#status', (s) => s.className)).toBe('error');

    // localhost is another origin than the page's 127.0.0.1: the server's CORS header lets it through.
    const url = `http://localhost:${new URL(server.url).port}/files/latest_net_G.pth`;
    const bytes = readFileSync(join(files, 'latest_net_G.pth')).length;
    const kb = `${(bytes / 1024).toFixed(1)} KB`;
    await page.$eval('#url', (e) => ((e as HTMLInputElement).value = ''));
    await page.type('#url', url);
    // The page uses the library's Pix2Pix.fromUrl when the built dist has it, else fetches the bytes itself:
    // load once each way (the second with fromUrl removed from the class), both with the same progress.
    type Win = { __state: { model: { constructor: { fromUrl?: unknown } } } };
    const libraryHasFromUrl = await page.evaluate(() => typeof (window as unknown as Win).__state.model.constructor.fromUrl === 'function');
    for (const way of libraryHasFromUrl ? ['Pix2Pix.fromUrl', 'fetch'] : ['fetch']) {
      if (way === 'fetch') await page.evaluate(() => delete (window as unknown as Win).__state.model.constructor.fromUrl);
      await recordProgress(page);
      await page.click('#load-url');
      await idle(page);
      expect(await statusText(page), way).toMatch(/^loaded latest_net_G\.pth: 3→\d channels, \d downs, ngf \d+, batch norm; photos are fitted to \d+×\d+\./);
      expect(await page.$eval('#model-info', (e) => e.textContent), way).toMatch(/^model: latest_net_G\.pth: unet, \d downs, .* generator only/);
      const log = await progressLog(page);
      expect(log.map((l) => l.text), way).toContain(`downloading ${kb} of ${kb}`);
      expect(log.filter((l) => l.text !== '').every((l) => l.allDisabled), way).toBe(true);
    }
    // The uploaded photo is still there, re-fitted to the loaded model's size; translating uses the checkpoint.
    expect(await page.$eval('#truth-figure', (f) => (f as HTMLElement).hidden)).toBe(true);
    await page.click('#translate');
    await idle(page);
    expect(await statusText(page)).toMatch(/^translated in \d+ ms/);
    expect(await canvasRange(page, 'out')).toBeGreaterThan(10);
    // Loaded without a discriminator: train says so instead of failing.
    await page.click('#train');
    await idle(page);
    expect(await statusText(page)).toMatch(/loaded without a discriminator/);
    expect(errors).toEqual([]);
    await page.screenshot({ path: join(OUT, 'checkpoint-url.png'), fullPage: true });

    // serve --files names the generator it found with a page URL that fills the URL field in.
    const hint = /with latest_net_G\.pth in the URL field: (\S+)/.exec(server.output());
    expect(hint?.[1]).toBe(`${server.url}?checkpoint=/files/latest_net_G.pth`);
    const p = await browser.newPage();
    await p.goto(hint![1]);
    await p.waitForFunction(() => /^ready/.test(document.getElementById('status')!.textContent ?? ''), { timeout: 30_000 });
    expect(await p.$eval('#url', (e) => (e as HTMLInputElement).value)).toBe('/files/latest_net_G.pth');
    await p.close();
  }, 120_000);

  it('the published package holds the page next to dist/, and `serve` from node_modules serves both', async () => {
    // The files npm would publish, laid out as an installed dependency.
    const listing = JSON.parse(execFileSync('npm', ['pack', '--dry-run', '--json', '--ignore-scripts'], { cwd: ROOT, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] })) as {
      files: { path: string }[];
    }[];
    const packed = listing[0].files.map((f) => f.path);
    expect(packed).toContain('examples/browser/index.html');
    expect(packed).toContain('dist/index.js');
    expect(packed).toContain('dist/cli.js');
    const app = mkdtempSync(join(tmpdir(), 'app-'));
    try {
      const pkg = join(app, 'node_modules/pix2pix-webgpu');
      for (const f of packed) {
        mkdirSync(dirname(join(pkg, f)), { recursive: true });
        cpSync(join(ROOT, f), join(pkg, f));
      }
      // Runtime dependencies of the CLI as npm would install them beside it.
      for (const dep of ['webgpu', 'sharp']) symlinkSync(join(ROOT, 'node_modules', dep), join(app, 'node_modules', dep));
      const installed = await serve(join(pkg, 'dist/cli.js'), ['--port', '0']);
      try {
        expect(installed.output()).toContain(`serving ${pkg} (dist/ and examples/browser/ only)`);
        const p = await browser.newPage();
        await p.goto(installed.url);
        await p.waitForFunction(() => /^ready/.test(document.getElementById('status')!.textContent ?? ''), { timeout: 30_000 });
        await p.close();
      } finally {
        await installed.stop();
      }
    } finally {
      rmSync(app, { recursive: true, force: true });
    }
  }, 60_000);
});
