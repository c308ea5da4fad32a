import { defineConfig } from 'vitest/config';
import { readFileSync } from 'node:fs';

// Load `*.wgsl` imports as text, exactly as tsup's text loader does for the build.
const wgslAsText = {
  name: 'wgsl-as-text',
  enforce: 'pre' as const,
  load(id: string) {
    if (!id.endsWith('.wgsl')) return null;
    return `export default ${JSON.stringify(readFileSync(id, 'utf8'))};`;
  },
};

export default defineConfig({
  plugins: [wgslAsText],
  test: {
    include: ['test/**/*.test.ts'],
    testTimeout: 600_000,
    hookTimeout: 600_000,
    pool: 'forks',
    poolOptions: { forks: { maxForks: 2, minForks: 1 } },
    reporters: ['default'],
  },
});
