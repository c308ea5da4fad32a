// The built package (dist/) in real headless Chromium on SwiftShader WebGPU: the self-test (conv forward and
// backward against the CPU reference) must pass inside a validation error scope.
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import type { Browser } from 'puppeteer-core';
import { launchChromium, serveStatic } from '../helpers/browser.js';

const DIST = resolve(import.meta.dirname, '../../dist/index.js');

describe('browser smoke test (headless Chromium, built package)', () => {
  let browser: Browser;
  let server: { url: string; close: () => Promise<void> };
  beforeAll(async () => {
    if (!existsSync(DIST)) throw new Error(`${DIST} is missing: run \`npm run build\` first (npm test does)`);
    server = await serveStatic();
    browser = await launchChromium();
  });
  afterAll(async () => {
    await browser?.close();
    await server?.close();
  });

  it('runs the kernel self-test with no validation error', async () => {
    const page = await browser.newPage();
    const logs: string[] = [];
    page.on('console', (m) => logs.push(m.text()));
    page.on('pageerror', (e) => logs.push(String(e)));
    await page.goto(`${server.url}/test/browser/smoke.html`);
    const hasGpu = await page.evaluate(() => 'gpu' in navigator);
    expect(hasGpu, 'navigator.gpu must exist on a localhost page').toBe(true);
    const result = (await page.evaluate('window.__result')) as { ok: boolean; error?: string; validationError: string | null; cases: unknown[] };
    expect(result.error, `page error: ${result.error}\n${logs.join('\n')}`).toBeUndefined();
    expect(result.validationError).toBeNull();
    expect(result.cases.length).toBeGreaterThan(0);
    expect(result.ok, JSON.stringify(result.cases, null, 2)).toBe(true);
    await page.close();
  });
});
