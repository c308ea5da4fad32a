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
import { STATIC_POLICIES, tunedChoices, useStaticPolicy, useTunedChoices, type StaticPolicy, type TunedChoice } from '../src/kernels/conv/policy.js';
import { CacheApiTuneStore } from '../src/kernels/conv/tune_store.js';
import type { DeviceClass } from '../src/kernels/conv/device_class.js';
import { Pix2Pix } from '../src/gan/pix2pix.js';
import type { Dispatch, GpuContext } from '../src/runtime/context.js';
import { formatProfile, profileDispatches } from './profile_dispatches.js';

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
  /**
   * Conv selections to compare in the model cases, each a run of its own (with TF.js again beside it when
   * `tfjs`), in turn for `rounds` rounds: a device class's static policy ('software' is lavapipe's rule,
   * 'swiftshader' SwiftShader's) or 'tuned' (the `small`-shaped step tuned once in this page before the rounds,
   * its table kept in the Cache API store), or a class's policy with scalar fields changed, for A/B runs of a rule
   * change: 'swiftshader+directMinWorkgroups=0', 'swiftshader+directMaxRows.weightGrad=0'. Absent: the adapter's own policy (and any table already applied).
   */
  policies?: (DeviceClass | 'tuned' | `${DeviceClass}+${string}`)[];
  /** Rounds over `policies`; default 1. */
  rounds?: number;
  /** Timed runs per candidate when tuning (default 3). */
  tuneRepeats?: number;
  /**
   * With `policies` and `model`: after each policy's model cases, the step's dispatches timed one by one with GPU
   * timestamps (bench/profile_dispatches.ts), every dispatch with its grid, as notes.
   */
  profile?: boolean;
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

/**
 * A class's static policy with `+field=value` overrides: a scalar field, a per-kind field for every kind, or
 * one kind of it ('swiftshader+directMinWorkgroups=0+blockedMaxRows=0+directMaxRows.weightGrad=0').
 */
function policyNamed(name: string): StaticPolicy {
  const [cls, ...sets] = name.split('+');
  const base = STATIC_POLICIES[cls as DeviceClass];
  if (!base) throw new Error(`unknown policy class ${cls}; one of ${Object.keys(STATIC_POLICIES).join(', ')}`);
  const p: Record<string, unknown> = { ...base };
  for (const s of sets) {
    const [path, v] = s.split('=');
    const [k, kind] = path.split('.');
    const value = Number(v);
    if (!Number.isFinite(value)) throw new Error(`policy ${name}: ${v} is not a number`);
    if (typeof p[k] === 'number' && !kind) p[k] = value;
    else if (p[k] && typeof p[k] === 'object') {
      const perKind = { ...(p[k] as Record<string, number>) };
      if (kind && !(kind in perKind)) throw new Error(`policy ${name}: ${k} has no kind ${kind}`);
      for (const kk of Object.keys(perKind)) if (!kind || kk === kind) perKind[kk] = value;
      p[k] = perKind;
    } else throw new Error(`policy ${name}: ${k} is not a field of StaticPolicy`);
  }
  return p as unknown as StaticPolicy;
}

/** The `small`-shaped step's dispatches of a fresh model under the policy in force, each timed alone. */
async function profileStep(ctx: GpuContext, name: ModelConfigName): Promise<string[]> {
  const c = MODEL_CONFIGS[name];
  const model = await Pix2Pix.create({ ctx, inputChannels: c.channels, outputChannels: c.channels, numDowns: c.numDowns, ngf: c.ngf, ndf: c.ndf, norm: 'instance', seed: 1 });
  const shape = [1, c.channels, c.height, c.width];
  const n = shape.reduce((x, y) => x * y);
  const a = ctx.tensor(shape, Float32Array.from({ length: n }, (_, i) => Math.sin(i)));
  const b = ctx.tensor(shape, Float32Array.from({ length: n }, (_, i) => Math.cos(i)));
  try {
    await model.trainStep({ a, b });
    const list = (model as unknown as { graph: { list: Dispatch[] } }).graph.list;
    return formatProfile(list, await profileDispatches(ctx, list, 2), true);
  } finally {
    a.destroy();
    b.destroy();
    await model.destroy();
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
      if (o.model && o.policies?.length) {
        // The tuned table first (its own model, the Cache API store), then the rounds, each policy in turn.
        let table: ReadonlyMap<string, TunedChoice> = new Map();
        if (o.policies.includes('tuned')) {
          const t0 = performance.now();
          const tuner = await Pix2Pix.create({ ctx, inputChannels: cfg.channels, outputChannels: cfg.channels, numDowns: cfg.numDowns, ngf: cfg.ngf, ndf: cfg.ndf, norm: 'instance', dropout: true, seed: 1 });
          const tuned = await tuner.tuneConv([1, cfg.channels, cfg.height, cfg.width], { store: new CacheApiTuneStore(), repeats: o.tuneRepeats ?? 3, log });
          await tuner.destroy();
          table = new Map(tunedChoices(ctx));
          const counts: Record<string, number> = {};
          for (const r of Object.values(tuned.shapes)) counts[`${r.impl}${r.subgroups === false ? ' (no subgroups)' : ''}`] = (counts[`${r.impl}${r.subgroups === false ? ' (no subgroups)' : ''}`] ?? 0) + 1;
          notes.push(`tuned ${Object.keys(tuned.shapes).length} conv shapes in ${((performance.now() - t0) / 1000).toFixed(0)} s: ${JSON.stringify(counts)}`);
        }
        for (let round = 1; round <= (o.rounds ?? 1); round++) {
          for (const policy of o.policies) {
            useTunedChoices(ctx, policy === 'tuned' ? table : new Map());
            useStaticPolicy(ctx, policy === 'tuned' ? null : policyNamed(policy));
            log(`${name}: model, policy ${policy}, round ${round}${o.tfjs ? ' (+ TF.js)' : ''}`);
            const rs = await benchModel(ctx, name, { warmup, repeats, tfjs: o.tfjs });
            results.push(...rs.map((r) => ({ ...r, group: `${r.group} [${policy} r${round}]` })));
            if (o.profile && adapter.timestampQuery) notes.push(`profile, policy ${policy}, round ${round}:`, ...(await profileStep(ctx, name)));
          }
        }
        useTunedChoices(ctx, new Map());
        useStaticPolicy(ctx, null);
      } else if (o.model) {
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
