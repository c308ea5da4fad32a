/**
 * The benchmark inside a browser page: the SAME case functions as `node dist/bench/cli.js` (benchKernels,
 * benchModel, benchMetrics; TF.js on the browser's own navigator.gpu), bundled for the browser into
 * dist/bench/browser.js by tsup.config.ts. bench/browser_driver.ts serves it on localhost, opens it in headless
 * Chromium through puppeteer-core and reads `window.__benchResult`; the page can also be opened by hand
 * (options come from the `opts` query parameter, JSON, see BrowserBenchOptions).
 *
 * Nothing here may import Node-only code: the bundle is checked for `node:` imports after the build.
 */
import { createContext } from '../src/runtime/device.js';
import type { BenchResult } from './harness.js';
import { benchKernels } from './cases_kernels.js';
import { benchModel, MODEL_CONFIGS, type ModelConfigName } from './cases_model.js';
import { benchMetrics } from './cases_metrics.js';

export interface BrowserBenchOptions {
  configs: ModelConfigName[];
  warmup: number;
  repeats: number;
  kernels: boolean;
  model: boolean;
  tfjs: boolean;
  metrics: boolean;
  inception: boolean;
  /** Only kernel cases whose "group name" matches this regular expression (case-insensitive). */
  filter?: string;
}

export interface BrowserBenchAdapter {
  vendor: string;
  architecture: string;
  device: string;
  description: string;
  features: string[];
  userAgent: string;
  timestampQuery: boolean;
  crossOriginIsolated: boolean;
}

export type BrowserBenchOutcome =
  | { ok: true; adapter: BrowserBenchAdapter; results: BenchResult[]; notes: string[] }
  | { ok: false; error: string; adapter?: BrowserBenchAdapter };

declare global {
  interface Window {
    __benchResult?: BrowserBenchOutcome;
    __runBench?: (o: BrowserBenchOptions) => Promise<BrowserBenchOutcome>;
  }
}

export async function runBench(o: BrowserBenchOptions): Promise<BrowserBenchOutcome> {
  let adapter: BrowserBenchAdapter | undefined;
  try {
    const ctx = await createContext();
    const { vendor, architecture, device, description } = ctx.adapterInfo;
    adapter = {
      vendor,
      architecture,
      device,
      description,
      features: [...ctx.features].map(String).sort(),
      userAgent: navigator.userAgent,
      timestampQuery: ctx.features.has('timestamp-query'),
      crossOriginIsolated: globalThis.crossOriginIsolated === true,
    };
    const log = (s: string) => console.log(`[bench] ${s}`);
    log(`adapter: ${[adapter.vendor, adapter.architecture, adapter.device, adapter.description].filter(Boolean).join(' ')}; timestamp-query: ${adapter.timestampQuery}`);
    const { warmup, repeats } = o;
    const results: BenchResult[] = [];
    const notes: string[] = [];
    const filter = o.filter ? new RegExp(o.filter, 'i') : undefined;
    for (const name of o.configs) {
      const cfg = MODEL_CONFIGS[name];
      if (!cfg) throw new Error(`unknown config ${name}`);
      if (o.kernels) {
        log(`${name}: kernels`);
        const rs = await benchKernels(ctx, { warmup, repeats, height: cfg.height, width: cfg.width, ngf: cfg.ngf, filter });
        results.push(...rs.map((r) => ({ ...r, group: `${name} ${r.group}` })));
      }
      if (o.model) {
        log(`${name}: model${o.tfjs ? ' (+ TF.js)' : ''}`);
        results.push(...(await benchModel(ctx, name, { warmup, repeats, tfjs: o.tfjs })));
      }
    }
    if (o.metrics) {
      log(`metrics${o.inception ? ' (+ Inception)' : ''}`);
      results.push(...(await benchMetrics(ctx, { warmup, repeats, inception: o.inception })));
    }
    if (o.metrics && !o.inception) notes.push('Inception features skipped in the browser by default (pass --inception to run them; synthetic weights, slow on SwiftShader)');
    ctx.destroy();
    log('done');
    return { ok: true, adapter, results, notes };
  } catch (e) {
    return { ok: false, error: e instanceof Error ? (e.stack ?? e.message) : String(e), adapter };
  }
}

window.__runBench = runBench;
// Opened with ?opts=<json>: run at once and leave the outcome where the driver polls for it.
{
  const raw = new URLSearchParams(location.search).get('opts');
  if (raw) {
    const opts = JSON.parse(raw) as BrowserBenchOptions;
    void runBench(opts).then((r) => {
      window.__benchResult = r;
      const out = document.getElementById('out');
      if (out) out.textContent = JSON.stringify(r, null, 2);
    });
  }
}
