import { defineConfig } from 'tsup';

// One ESM build. `index` is the browser-safe core (no runtime imports at all); `node` adds Dawn + sharp
// helpers; `cli` is the bin. WGSL files are inlined as strings so the package is a single set of JS files.
export default defineConfig({
  entry: {
    index: 'src/index.ts',
    node: 'src/node.ts',
    cli: 'src/cli/main.ts',
  },
  format: ['esm'],
  target: 'es2022',
  platform: 'neutral',
  dts: { entry: { index: 'src/index.ts', node: 'src/node.ts' } },
  sourcemap: true,
  clean: true,
  splitting: true,
  treeshake: true,
  loader: { '.wgsl': 'text' },
  external: ['webgpu', 'sharp', 'puppeteer-core', 'node:*'],
});
