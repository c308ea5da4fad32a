/**
 * Runs the benchmark in headless Chromium (`node dist/bench/cli.js --browser`): serves dist/bench (the
 * browser bundle built from bench/browser_entry.ts) and a small page on http://localhost (WebGPU needs a
 * secure context; about:blank and data: pages have no navigator.gpu), launches the system Chromium through
 * puppeteer-core with WebGPU on SwiftShader, and polls the page for its outcome.
 *
 * Node-only; loaded by bench/cli.ts with a dynamic import so the plain Node bench never needs puppeteer-core.
 * The Chromium flags are the ones test/helpers/browser.ts uses (bench does not import test code).
 */
import { createServer } from 'node:http';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, extname, join, normalize, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { BrowserBenchOptions, BrowserBenchOutcome } from './browser_entry.js';

export const DEFAULT_CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';

export const CHROMIUM_ARGS = [
  '--no-sandbox',
  '--enable-unsafe-webgpu',
  '--enable-unsafe-swiftshader',
  '--use-webgpu-adapter=swiftshader',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--no-first-run',
  '--disable-quic',
  // A long benchmark must not be slowed down as a "background" page.
  '--disable-background-timer-throttling',
  '--disable-renderer-backgrounding',
  '--disable-backgrounding-occluded-windows',
];

export interface DriverOptions {
  /** Chromium executable (default: $CHROMIUM_PATH or /usr/bin/chromium). */
  chromium?: string;
  /** Folder holding browser.js (default: next to this module when bundled, else ../dist/bench). */
  distDir?: string;
  /** Give up after this long, ms (default 30 minutes: SwiftShader is slow). */
  timeoutMs?: number;
  /** Progress lines from the page (default: stderr). */
  log?: (line: string) => void;
}

const PAGE = `<!doctype html>
<meta charset="utf-8">
<title>pix2pix-webgpu benchmark</title>
<pre id="out">running</pre>
<script type="module" src="./browser.js"></script>
`;

const TYPES: Record<string, string> = { '.js': 'text/javascript', '.mjs': 'text/javascript', '.map': 'application/json', '.html': 'text/html', '.json': 'application/json' };

function findDist(): string {
  const here = dirname(fileURLToPath(import.meta.url));
  for (const d of [here, resolve(here, '../dist/bench')]) if (existsSync(join(d, 'browser.js'))) return d;
  throw new Error(`dist/bench/browser.js not found (looked next to ${here} and in ../dist/bench): run \`npm run build\` first`);
}

/** Serve `root` and the bench page on an ephemeral localhost port, cross-origin isolated (finer performance.now()). */
async function serve(root: string): Promise<{ url: string; close: () => Promise<void> }> {
  const server = createServer(async (req, res) => {
    const headers = { 'cross-origin-opener-policy': 'same-origin', 'cross-origin-embedder-policy': 'require-corp', 'cache-control': 'no-store' };
    const path = normalize(decodeURIComponent(new URL(req.url ?? '/', 'http://x').pathname)).replace(/^[/\\]+/, '');
    if (path === 'favicon.ico') {
      res.writeHead(204, headers).end();
      return;
    }
    if (path === '' || path === '.' || path === 'index.html') {
      res.writeHead(200, { ...headers, 'content-type': 'text/html' }).end(PAGE);
      return;
    }
    const file = join(root, path);
    if (!file.startsWith(root)) {
      res.writeHead(403, headers).end();
      return;
    }
    try {
      const body = await readFile(file);
      res.writeHead(200, { ...headers, 'content-type': TYPES[extname(file)] ?? 'application/octet-stream' }).end(body);
    } catch {
      res.writeHead(404, headers).end('not found');
    }
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as { port: number }).port;
  return {
    url: `http://localhost:${port}/`,
    close: () =>
      new Promise<void>((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
}

/** Run the benchmark in headless Chromium and return the page's outcome (results, adapter info, notes). */
export async function runBrowserBench(bench: BrowserBenchOptions, o: DriverOptions = {}): Promise<BrowserBenchOutcome> {
  const chromium = o.chromium ?? DEFAULT_CHROMIUM;
  if (!existsSync(chromium)) throw new Error(`Chromium not found at ${chromium}: apt-get install chromium, or pass --chromium PATH (or set CHROMIUM_PATH)`);
  const log = o.log ?? ((s: string) => console.error(s));
  const timeoutMs = o.timeoutMs ?? 30 * 60_000;
  const root = resolve(o.distDir ?? findDist());
  const { default: puppeteer } = await import('puppeteer-core');
  const server = await serve(root);
  const userDataDir = await mkdtemp(join(tmpdir(), 'bench-chromium-'));
  const browser = await puppeteer.launch({ executablePath: chromium, headless: true, userDataDir, args: CHROMIUM_ARGS, protocolTimeout: timeoutMs + 60_000 });
  try {
    const page = await browser.newPage();
    page.setDefaultTimeout(timeoutMs);
    page.on('console', (m) => {
      const t = m.text();
      if (t.startsWith('[bench]') || m.type() === 'error' || m.type() === 'warn') log(`chromium: ${t}`);
    });
    page.on('pageerror', (e) => log(`chromium page error: ${String(e)}`));
    await page.goto(`${server.url}?opts=${encodeURIComponent(JSON.stringify(bench))}`, { waitUntil: 'load', timeout: 120_000 });
    const hasGpu = await page.evaluate(() => 'gpu' in navigator);
    if (!hasGpu) throw new Error('navigator.gpu is missing in the page: Chromium started without WebGPU (check the flags and the Chromium version)');
    // Poll with short evaluations rather than one long-awaited promise (no protocol timeout to hit).
    const t0 = Date.now();
    for (;;) {
      const r = (await page.evaluate(() => window.__benchResult ?? null)) as BrowserBenchOutcome | null;
      if (r) return r;
      if (Date.now() - t0 > timeoutMs) throw new Error(`the browser benchmark did not finish within ${Math.round(timeoutMs / 1000)} s`);
      await new Promise((res) => setTimeout(res, 1000));
    }
  } finally {
    await browser.close().catch(() => undefined);
    await server.close();
    await rm(userDataDir, { recursive: true, force: true }).catch(() => undefined);
  }
}
