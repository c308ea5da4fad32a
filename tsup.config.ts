import { defineConfig, type Options } from 'tsup';

type Plugin = NonNullable<Options['esbuildPlugins']>[number];

// WGSL files are inlined as strings so the package is a single set of JS files.
const wgsl = { '.wgsl': 'text' } as const;

// `npm run build` (scripts/build.mjs) builds into a staging folder and then updates dist/ in place, so that a
// running CLI never finds dist/ emptied; `clean` below empties only that folder.
const OUT = process.env.PIX2PIX_BUILD_OUT ?? 'dist';

// The browser benchmark bundle must not reach Node-only code: fail the build on any such static import.
const NODE_ONLY = /^(node:.*|webgpu|sharp|puppeteer-core|fs|path|os|module|url|child_process|worker_threads)$/;
const refuseNodeOnly: Plugin = {
  name: 'refuse-node-only',
  setup(build) {
    build.onResolve({ filter: NODE_ONLY }, (args) => ({
      errors: [{ text: `Node-only import "${args.path}" from ${args.importer} in the browser benchmark bundle` }],
    }));
  },
};

export default defineConfig([
  // The library. `index` is the browser-safe core (no runtime imports at all); `node` adds Dawn + sharp
  // helpers; `cli` is the bin.
  {
    entry: { index: 'src/index.ts', node: 'src/node.ts', cli: 'src/cli/main.ts' },
    outDir: OUT,
    format: ['esm'],
    target: 'es2022',
    platform: 'neutral',
    // The declarations use the global GPU* types, which TypeScript 6+ has in its DOM lib (and which need DOM
    // names such as EventTarget and ImageBitmap anyway): the reference makes them compile for a consumer whose
    // `lib` lacks "dom". TypeScript 5.x gets types/ts5/*.d.ts (package.json "types@<6"), which add @webgpu/types.
    dts: { entry: { index: 'src/index.ts', node: 'src/node.ts' }, banner: '/// <reference lib="dom" />' },
    // No source maps in the package: the JS is not minified, and maps that point at unshipped sources (or
    // double the install with embedded ones) help no one.
    sourcemap: false,
    clean: true,
    splitting: true,
    treeshake: true,
    loader: wgsl,
    external: ['webgpu', 'sharp', 'puppeteer-core', 'node:*'],
    // wgpu-matrix (affine matrices for augmentation) is bundled, so the browser build imports nothing.
    noExternal: ['wgpu-matrix'],
  },
  // The benchmark (not published: see package.json "files"). TF.js, its comparison peer, is bundled in:
  // tfjs-core's ESM files import without extensions, which Node's own loader refuses.
  {
    entry: { cli: 'bench/cli.ts', profile: 'bench/profile_step.ts' },
    outDir: `${OUT}/bench`,
    format: ['esm'],
    target: 'es2022',
    platform: 'node',
    sourcemap: false,
    clean: false,
    loader: wgsl,
    // puppeteer-core is only loaded (dynamically, by bench/browser_driver.ts) for `--browser`.
    external: ['webgpu', 'sharp', 'puppeteer-core'],
    noExternal: [/^@tensorflow\//],
    // Bundled CommonJS inside an ES module still calls require() for Node built-ins.
    banner: { js: "import { createRequire as __createRequire } from 'node:module'; const require = __createRequire(import.meta.url);" },
  },
  // The same benchmark cases for a browser page (`node dist/bench/cli.js --browser` serves it to headless
  // Chromium): one self-contained ES module, dist/bench/browser.js, everything (TF.js included) inlined.
  {
    entry: { browser: 'bench/browser_entry.ts' },
    outDir: `${OUT}/bench`,
    format: ['esm'],
    target: 'es2022',
    platform: 'browser',
    sourcemap: false,
    clean: false,
    splitting: false,
    treeshake: true,
    loader: wgsl,
    noExternal: [/.*/],
    // Keep `node:` specifiers as written (tsup would strip the prefix and mark them external) so the guard sees them.
    removeNodeProtocol: false,
    esbuildPlugins: [refuseNodeOnly],
  },
]);
