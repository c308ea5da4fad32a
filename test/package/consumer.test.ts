// The package as an app meets it: `npm pack`, install the tarball into fresh projects outside the repository
// (a browser app with no Node dependencies; a Node app with `webgpu` and `sharp`), type-check the README's
// quickstart strictly, bundle it for the browser (esbuild and webpack 5), run the bundle in headless Chromium
// and a training step in Node. Installs come from the npm registry/cache; the tools (tsc, esbuild, webpack)
// are the repository's, run on the consumer's files, which resolve only the consumer's node_modules.
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { spawn } from 'node:child_process';
import { closeSync, existsSync, mkdirSync, openSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { createRequire } from 'node:module';
import type { Browser } from 'puppeteer-core';
import { launchChromium, serveStatic } from '../helpers/browser.js';

const REPO = resolve(import.meta.dirname, '../..');
// The checkout to pack (default: this one, built by `npm test`); set to pack another build of the same tree.
const PACK_ROOT = process.env.PIX2PIX_PACK_ROOT ?? REPO;
const TSC = join(REPO, 'node_modules/typescript/bin/tsc');
const requireFromRepo = createRequire(join(REPO, 'package.json'));
const NPM_FLAGS = ['--prefer-offline', '--no-audit', '--no-fund', '--loglevel=error'];
const PKG = JSON.parse(readFileSync(join(PACK_ROOT, 'package.json'), 'utf8')) as {
  name: string;
  version: string;
  peerDependencies: Record<string, string>;
  repository?: unknown;
};

/** The environment without `npm test`'s own npm_* variables (they would point nested npm runs at the repo). */
function consumerEnv(): NodeJS.ProcessEnv {
  const keep = new Set(['npm_config_cache', 'npm_config_registry', 'npm_config_userconfig']);
  return Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.toLowerCase().startsWith('npm_') || keep.has(k.toLowerCase())));
}

/** Run a command without blocking the event loop (a blocked test worker misses vitest's RPC deadlines). */
function run(
  cmd: string,
  args: string[],
  cwd: string,
  opts: { timeoutMs?: number; stderrFd?: number } = {},
): Promise<{ stdout: string; stderr: string; status: number | null }> {
  return new Promise((res, rej) => {
    const child = spawn(cmd, args, { cwd, env: consumerEnv(), stdio: ['ignore', 'pipe', opts.stderrFd ?? 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout!.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr?.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    const timer = setTimeout(() => child.kill('SIGKILL'), opts.timeoutMs ?? 300_000);
    child.on('error', rej);
    child.on('close', (status) => {
      clearTimeout(timer);
      res({ stdout, stderr, status });
    });
  });
}

async function mustRun(cmd: string, args: string[], cwd: string): Promise<string> {
  const r = await run(cmd, args, cwd);
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} (in ${cwd}) exited ${r.status}:\n${r.stderr}\n${r.stdout}`);
  return r.stdout;
}

function treeBytes(dir: string): number {
  let total = 0;
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) total += treeBytes(p);
    else if (e.isFile()) total += statSync(p).size;
  }
  return total;
}

function findFiles(dir: string, test: (name: string) => boolean, out: string[] = []): string[] {
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) findFiles(p, test, out);
    else if (test(e.name)) out.push(p);
  }
  return out;
}

/** A README snippet as a module, with the inputs the snippets leave to the reader (a, b, photo) declared. */
function snippetModule(block: string): string {
  return [
    "import type { ImageF32 } from 'pix2pix-webgpu';",
    'declare const a: ImageF32[];',
    'declare const b: ImageF32[];',
    'declare const photo: ImageF32;',
    block,
    'export {};',
  ].join('\n');
}

/** Every ```ts block of the README, in order. */
function readmeSnippets(): string[] {
  const readme = readFileSync(join(PACK_ROOT, 'README.md'), 'utf8');
  return [...readme.matchAll(/```ts\n([\s\S]*?)```/g)].map((m) => m[1]);
}

/** The README's library quickstart: the browser apps compile it (the other snippets may use the Node entry). */
function quickstartSource(): string {
  const readme = readFileSync(join(PACK_ROOT, 'README.md'), 'utf8');
  const section = readme.slice(readme.indexOf('## Quickstart'));
  const block = /```ts\n([\s\S]*?)```/.exec(section)?.[1];
  if (!block) throw new Error('README.md has no ```ts block under "## Quickstart"');
  return snippetModule(block);
}

const NODE_APP_TS = `
import { Pix2Pix, createContext, type ImageF32 } from 'pix2pix-webgpu';
import { readImage, writePng, saveCheckpoint, loadCheckpoint } from 'pix2pix-webgpu/node';
const ctx = await createContext();
const model = await Pix2Pix.create({ ctx, numDowns: 5, ngf: 4, ndf: 4, inputChannels: 3, outputChannels: 1 });
const photo: ImageF32 = await readImage('photo.png', 3);
const xray: ImageF32 = await model.translate(photo);
await writePng('xray.png', xray);
await saveCheckpoint('checkpoints', model);
const again: Pix2Pix = await loadCheckpoint('checkpoints');
again.destroy();
`;

const tsconfig = (compilerOptions: Record<string, unknown>, files: string[]) =>
  JSON.stringify({
    compilerOptions: { strict: true, skipLibCheck: false, noEmit: true, target: 'ES2022', ...compilerOptions },
    files,
  });

// A browser app: translate a 32×32 image with a tiny freshly initialised model; report what came back.
const BROWSER_ENTRY = `
import { Pix2Pix } from 'pix2pix-webgpu';
window.translateOnce = async () => {
  const model = await Pix2Pix.create({ numDowns: 5, ngf: 4, ndf: 4, inputChannels: 3, outputChannels: 1, seed: 1 });
  const data = new Float32Array(3 * 32 * 32);
  for (let i = 0; i < data.length; i++) data[i] = (i % 97) / 96;
  const out = await model.translate({ width: 32, height: 32, channels: 3, data });
  model.destroy();
  let finite = true, lo = Infinity, hi = -Infinity;
  for (const v of out.data) { finite &&= Number.isFinite(v); lo = Math.min(lo, v); hi = Math.max(hi, v); }
  return { width: out.width, height: out.height, channels: out.channels, length: out.data.length, finite, lo, hi };
};
`;

// A Node app: one training step and one translation; everything it prints to stderr is a failure.
const NODE_TRAIN = `
import { Pix2Pix } from 'pix2pix-webgpu';
const img = (c, k) => {
  const data = new Float32Array(c * 32 * 32);
  for (let i = 0; i < data.length; i++) data[i] = ((i * k) % 101) / 100;
  return { width: 32, height: 32, channels: c, data };
};
const model = await Pix2Pix.create({ numDowns: 5, ngf: 4, ndf: 4, inputChannels: 3, outputChannels: 1, seed: 2 });
const losses = await model.trainStep({ a: [img(3, 7)], b: [img(1, 13)] });
const out = await model.translate(img(3, 7));
model.destroy();
console.log(JSON.stringify({ losses, out: [out.width, out.height, out.channels] }));
`;

describe('the packed package in fresh consumer projects', () => {
  let tmp: string;
  let tarball: string;
  let packedFiles: string[];
  let web: string;
  let nodeApp: string;
  const sizes: Record<string, number> = {};

  beforeAll(async () => {
    if (!existsSync(join(PACK_ROOT, 'dist/index.js'))) throw new Error(`${PACK_ROOT}/dist is missing: run \`npm run build\` first (npm test does)`);
    tmp = mkdtempSync(join(tmpdir(), 'pix2pix-consumer-'));
    const packed = JSON.parse(await mustRun('npm', ['pack', '--pack-destination', tmp, '--json', '--loglevel=error'], PACK_ROOT)) as {
      filename: string;
      size: number;
      unpackedSize: number;
      files: { path: string }[];
    }[];
    tarball = join(tmp, packed[0]!.filename);
    packedFiles = packed[0]!.files.map((f) => f.path);
    sizes.tarball = packed[0]!.size;
    sizes.unpacked = packed[0]!.unpackedSize;

    web = join(tmp, 'web-app');
    mkdirSync(web);
    writeFileSync(join(web, 'package.json'), JSON.stringify({ name: 'web-app', private: true, type: 'module' }));
    await mustRun('npm', ['install', tarball, ...NPM_FLAGS], web);

    nodeApp = join(tmp, 'node-app');
    mkdirSync(nodeApp);
    writeFileSync(join(nodeApp, 'package.json'), JSON.stringify({ name: 'node-app', private: true, type: 'module' }));
    // The README's one command for Node and the CLI (plus @types/node for the type check).
    const peers = Object.entries(PKG.peerDependencies).map(([n, r]) => `${n}@${r}`);
    await mustRun('npm', ['install', tarball, ...peers, '@types/node@20', ...NPM_FLAGS], nodeApp);
  });

  afterAll(() => {
    console.log(`[consumer] sizes (bytes): ${JSON.stringify(sizes)}`);
    if (tmp) rmSync(tmp, { recursive: true, force: true });
  });

  it('ships LICENSE, the TypeScript 5 entries and the README images, and no source maps', () => {
    for (const f of ['LICENSE', 'package.json', 'README.md', 'dist/index.js', 'dist/index.d.ts', 'dist/node.d.ts', 'types/ts5/index.d.ts', 'types/ts5/node.d.ts']) {
      expect(packedFiles, f).toContain(f);
    }
    expect(packedFiles.filter((f) => f.endsWith('.map'))).toEqual([]);
    expect(packedFiles.filter((f) => f.startsWith('dist/bench'))).toEqual([]);
    // The registry resolves relative README links against the `repository` field only; without one, images
    // render from absolute URLs. jsDelivr serves this version's own files, so each image must be shipped too.
    const readme = readFileSync(join(PACK_ROOT, 'README.md'), 'utf8');
    const images = [...readme.matchAll(/!\[[^\]]*\]\(([^)\s]+)\)/g)].map((m) => m[1]!);
    expect(images.length).toBeGreaterThan(0);
    const cdn = `https://cdn.jsdelivr.net/npm/${PKG.name}@${PKG.version}/`;
    for (const src of images) {
      if (PKG.repository && !/^[a-z]+:/.test(src)) continue;
      expect(src.startsWith(cdn), `README image ${src}: with no "repository" in package.json it must be ${cdn}<shipped path>`).toBe(true);
      expect(packedFiles, `README image ${src}`).toContain(src.slice(cdn.length));
    }
  });

  it('a browser-only install pulls no native binaries', () => {
    const nm = join(web, 'node_modules');
    const top = readdirSync(nm).filter((n) => !n.startsWith('.'));
    expect(top.sort()).toEqual(['@webgpu', 'pix2pix-webgpu']);
    expect(readdirSync(join(nm, '@webgpu'))).toEqual(['types']);
    expect(findFiles(nm, (n) => n.endsWith('.node') || n.endsWith('.so') || n.endsWith('.dll') || n.endsWith('.dylib'))).toEqual([]);
    sizes.browserInstall = treeBytes(nm);
    expect(sizes.browserInstall).toBeLessThan(5 << 20);
    // The Node app did get the natives (the one install command works).
    expect(existsSync(join(nodeApp, 'node_modules/webgpu/package.json'))).toBe(true);
    expect(existsSync(join(nodeApp, 'node_modules/sharp/package.json'))).toBe(true);
  });

  it('the README quickstart type-checks strictly (skipLibCheck false) with and without the DOM lib, and every README snippet in a Node app', async () => {
    writeFileSync(join(web, 'quickstart.ts'), quickstartSource());
    const variants: [string, Record<string, unknown>][] = [
      ['browser, DOM lib', { module: 'ES2022', moduleResolution: 'bundler', lib: ['ES2022', 'DOM'], types: [] }],
      ['no DOM lib, no @types', { module: 'ES2022', moduleResolution: 'bundler', lib: ['ES2022'], types: [] }],
    ];
    for (const [name, options] of variants) {
      writeFileSync(join(web, 'tsconfig.json'), tsconfig(options, ['quickstart.ts']));
      const r = await run(process.execPath, [TSC, '-p', '.'], web);
      expect(r.stdout + r.stderr, name).toBe('');
      expect(r.status, name).toBe(0);
    }
    const snippets = readmeSnippets();
    expect(snippets.length, 'README ```ts blocks').toBeGreaterThanOrEqual(3);
    const snippetFiles = snippets.map((block, i) => {
      writeFileSync(join(nodeApp, `readme_snippet_${i + 1}.ts`), snippetModule(block));
      return `readme_snippet_${i + 1}.ts`;
    });
    writeFileSync(join(nodeApp, 'app.ts'), NODE_APP_TS);
    writeFileSync(join(nodeApp, 'tsconfig.json'), tsconfig({ module: 'nodenext', moduleResolution: 'nodenext', lib: ['ES2022'], types: ['node'] }, [...snippetFiles, 'app.ts']));
    const r = await run(process.execPath, [TSC, '-p', '.'], nodeApp);
    expect(r.stdout + r.stderr, 'Node app (nodenext, @types/node, no DOM lib)').toBe('');
  });

  it('esbuild bundles a browser entry with no Node built-ins or native packages, and it translates in Chromium', async () => {
    const esbuild = requireFromRepo('esbuild') as typeof import('esbuild');
    writeFileSync(join(web, 'entry.js'), BROWSER_ENTRY);
    mkdirSync(join(web, 'public'), { recursive: true });
    const result = await esbuild.build({
      absWorkingDir: web,
      entryPoints: ['entry.js'],
      bundle: true,
      format: 'esm',
      platform: 'browser',
      minify: true,
      outfile: 'public/bundle.js',
      metafile: true,
      logLevel: 'silent',
    });
    expect(result.errors).toEqual([]);
    expect(result.warnings).toEqual([]);
    const inputs = Object.keys(result.metafile.inputs);
    const outside = inputs.filter((p) => p !== 'entry.js' && !p.startsWith('node_modules/pix2pix-webgpu/dist/'));
    expect(outside, 'only the entry and the package dist are bundled').toEqual([]);
    const output = Object.values(result.metafile.outputs)[0]!;
    expect(output.imports, 'the bundle imports nothing (no node: built-ins, no externals)').toEqual([]);
    const code = readFileSync(join(web, 'public/bundle.js'), 'utf8');
    expect(code).not.toMatch(/\brequire\(|from\s*["'](node:|webgpu|sharp)|import\(["'](node:|webgpu|sharp)/);
    sizes.esbuildBundle = code.length;
    writeFileSync(join(web, 'public/index.html'), '<!doctype html><meta charset="utf-8"><script type="module" src="bundle.js"></script>');

    const server = await serveStatic(join(web, 'public'));
    let browser: Browser | undefined;
    try {
      browser = await launchChromium();
      const page = await browser.newPage();
      const errors: string[] = [];
      page.on('pageerror', (e) => errors.push(String(e)));
      await page.goto(`${server.url}/index.html`);
      await page.waitForFunction('typeof window.translateOnce === "function"', { timeout: 30_000 });
      const out = (await page.evaluate('window.translateOnce()')) as Record<string, unknown>;
      expect(errors).toEqual([]);
      expect(out).toMatchObject({ width: 32, height: 32, channels: 1, length: 32 * 32, finite: true });
      expect(out.lo as number).toBeGreaterThanOrEqual(0);
      expect(out.hi as number).toBeLessThanOrEqual(1);
      expect(out.hi as number).toBeGreaterThan(out.lo as number);
    } finally {
      await browser?.close();
      await server.close();
    }
  });

  it('webpack 5 bundles it with no warnings (no "Critical dependency" for the lazy Node-only imports)', async () => {
    const webpack = requireFromRepo('webpack') as typeof import('webpack');
    writeFileSync(join(web, 'entry.js'), BROWSER_ENTRY);
    const stats = await new Promise<import('webpack').Stats>((res, rej) =>
      webpack(
        {
          context: web,
          entry: './entry.js',
          mode: 'production',
          target: 'web',
          output: { path: join(web, 'webpack-out'), filename: 'bundle.js' },
          // Only the consumer's node_modules: nothing may come from the repository's.
          resolve: { modules: [join(web, 'node_modules')] },
          optimization: { minimize: false },
          performance: { hints: false },
          infrastructureLogging: { level: 'none' },
        },
        (err, s) => (err || !s ? rej(err ?? new Error('webpack returned no stats')) : res(s)),
      ),
    );
    const info = stats.toJson({ all: false, errors: true, warnings: true, assets: true });
    expect((info.errors ?? []).map((e) => e.message)).toEqual([]);
    expect((info.warnings ?? []).map((w) => w.message)).toEqual([]);
    sizes.webpackBundleUnminified = statSync(join(web, 'webpack-out/bundle.js')).size;
  });

  it('in Node without the optional peers, GPU work fails with one typed error naming the install command', async () => {
    const r = await run(
      process.execPath,
      ['--input-type=module', '-e', "import { createContext } from 'pix2pix-webgpu'; try { await createContext(); } catch (e) { console.log(JSON.stringify({ name: e.name, message: e.message })); }"],
      web,
    );
    expect(r.stderr).toBe('');
    const e = JSON.parse(r.stdout) as { name: string; message: string };
    expect(e.name).toBe('MissingDependencyError');
    expect(e.message).toContain('`webgpu`');
    expect(e.message).toContain('npm install webgpu sharp');
    expect(e.message).not.toContain('\n');
  });

  it('require() loads the package where Node supports require(esm), else fails with ERR_REQUIRE_ESM', async () => {
    const r = await run(process.execPath, ['-e', "const m = require('pix2pix-webgpu'); console.log(typeof m.Pix2Pix)"], web);
    if ((process.features as { require_module?: boolean }).require_module) {
      expect(r.stdout.trim()).toBe('function');
    } else {
      expect(r.stderr).toContain('ERR_REQUIRE_ESM');
    }
  });

  it('in Node with webgpu installed: one training step and a translation, with nothing on stderr', async () => {
    writeFileSync(join(nodeApp, 'train.mjs'), NODE_TRAIN);
    // stderr goes to a file, as with `2> log` (a socket, Node's stdio 'pipe', cannot be filtered: see device.ts).
    const errPath = join(tmp, 'train.stderr');
    const errFd = openSync(errPath, 'w');
    const r = await run(process.execPath, ['train.mjs'], nodeApp, { stderrFd: errFd });
    closeSync(errFd);
    expect(readFileSync(errPath, 'utf8')).toBe('');
    expect(r.status).toBe(0);
    const { losses, out } = JSON.parse(r.stdout) as { losses: Record<string, number>; out: number[] };
    expect(Object.keys(losses).sort()).toEqual(['D_fake', 'D_real', 'G_GAN', 'G_L1']);
    for (const v of Object.values(losses)) expect(Number.isFinite(v)).toBe(true);
    expect(out).toEqual([32, 32, 1]);
    // The CLI from the same install.
    const help = await run(process.execPath, [join(nodeApp, 'node_modules/.bin/pix2pix-webgpu'), '--help'], nodeApp);
    expect(help.status, help.stderr).toBe(0);
    expect(help.stdout).toContain('demo');
    // A CLI command that writes PNGs through sharp, found from the package's own lazy import.
    const synth = await run(process.execPath, [join(nodeApp, 'node_modules/.bin/pix2pix-webgpu'), 'synth', '--out', 'phantoms', '--animals', '2', '--poses', '1', '--size', '32x64'], nodeApp);
    expect(synth.status, synth.stderr).toBe(0);
    expect(findFiles(join(nodeApp, 'phantoms'), (n) => n.endsWith('.png')).length).toBeGreaterThan(0);
  });
});
