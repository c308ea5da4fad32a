// The browser benchmark (dist/bench/browser.js, built from bench/browser_entry.ts) in real headless Chromium on
// SwiftShader WebGPU, driven the way `node dist/bench/cli.js --browser` drives it: one tiny kernel case must
// come back with a finite positive time and the browser's adapter info.
import { describe, it, expect } from 'vitest';
import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import { runBrowserBench } from '../../bench/browser_driver.js';

const DIST = resolve(import.meta.dirname, '../../dist/bench');

describe('browser benchmark (headless Chromium, built bench bundle)', () => {
  it('times one elementwise kernel case in the page', async () => {
    if (!existsSync(resolve(DIST, 'browser.js'))) throw new Error(`${DIST}/browser.js is missing: run \`npm run build\` first (npm test does)`);
    const logs: string[] = [];
    const outcome = await runBrowserBench(
      { configs: ['small'], warmup: 1, repeats: 1, kernels: true, model: false, tfjs: false, metrics: false, inception: false, filter: '^activation leaky_relu forward' },
      { distDir: DIST, timeoutMs: 120_000, log: (s) => logs.push(s) },
    );
    expect(outcome.ok, `${outcome.ok ? '' : outcome.error}\n${logs.join('\n')}`).toBe(true);
    if (!outcome.ok) return;
    expect(outcome.adapter.vendor || outcome.adapter.architecture, 'adapter info').not.toBe('');
    expect(outcome.results).toHaveLength(1);
    const [r] = outcome.results;
    expect(r.group).toBe('small activation');
    expect(r.name).toMatch(/^leaky_relu forward/);
    expect(Number.isFinite(r.ms) && r.ms > 0, `ms = ${r.ms}`).toBe(true);
    if (r.gpuMs !== undefined) expect(Number.isFinite(r.gpuMs) && r.gpuMs > 0, `gpuMs = ${r.gpuMs}`).toBe(true);
  });
});
