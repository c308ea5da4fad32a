import { defineConfig } from 'tsup';

// WGSL files are inlined as strings so the package is a single set of JS files.
const wgsl = { '.wgsl': 'text' } as const;

export default defineConfig([
  // The library. `index` is the browser-safe core (no runtime imports at all); `node` adds Dawn + sharp
  // helpers; `cli` is the bin.
  {
    entry: { index: 'src/index.ts', node: 'src/node.ts', cli: 'src/cli/main.ts' },
    format: ['esm'],
    target: 'es2022',
    platform: 'neutral',
    dts: { entry: { index: 'src/index.ts', node: 'src/node.ts' } },
    sourcemap: true,
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
    outDir: 'dist/bench',
    format: ['esm'],
    target: 'es2022',
    platform: 'node',
    sourcemap: false,
    clean: false,
    loader: wgsl,
    external: ['webgpu', 'sharp'],
    noExternal: [/^@tensorflow\//],
    // Bundled CommonJS inside an ES module still calls require() for Node built-ins.
    banner: { js: "import { createRequire as __createRequire } from 'node:module'; const require = __createRequire(import.meta.url);" },
  },
]);
