// Where measured conv choices are kept between runs, per adapter: a JSON file in Node, the Cache API in
// the browser, or memory. Browser-safe: the Node store loads node:fs/os/path only when used (as device.ts does).
import { FileFormatError } from '../../runtime/errors.js';
import type { ConvImpl } from './common.js';
import type { AdapterIdentity } from './device_class.js';
import { adapterKey } from './device_class.js';
import type { TunedChoice } from './policy.js';

/** One measured shape: the choice kept and the median ms per launch of every candidate tried (by label). */
export interface TuneRecord extends TunedChoice {
  ms: number;
  candidates: Record<string, number>;
  /** The clock that measured it: GPU timestamps or the CPU's clock around submit-and-wait (absent in older caches). */
  timer?: 'gpu' | 'wall';
  /** Launches of the chosen candidate back to back per timed pass. */
  launches?: number;
}

/** The choices measured on one adapter, by shape key (policy.ts shapeKey). */
export interface AdapterTuning {
  adapter: AdapterIdentity;
  shapes: Record<string, TuneRecord>;
}

/** Storage of per-adapter tuning tables. */
export interface TuneStore {
  /** A human-readable location (file path, cache name) for messages. */
  readonly location: string;
  load(adapter: AdapterIdentity): Promise<AdapterTuning | null>;
  save(tuning: AdapterTuning): Promise<void>;
}

const IMPLS: readonly ConvImpl[] = ['tiled', 'direct', 'blocked', 'taps'];

/**
 * Check one adapter's table read back from storage; throws FileFormatError naming `where` and the `fix`.
 * A damaged or foreign cache is an error rather than ignored: a cache path given by mistake (another
 * program's JSON) must not be overwritten, and a silently dropped table would mean silently slower kernels.
 */
export function checkAdapterTuning(v: unknown, where: string, fix = 'delete the file to re-tune'): AdapterTuning {
  const bad = (what: string): never => {
    throw new FileFormatError(where, `tuning cache ${what} (${fix})`);
  };
  if (!v || typeof v !== 'object') bad('entry is not an object');
  const t = v as AdapterTuning;
  if (!t.adapter || typeof t.adapter !== 'object' || !t.shapes || typeof t.shapes !== 'object') bad('entry lacks adapter or shapes');
  for (const [key, r] of Object.entries(t.shapes)) {
    if (!r || !IMPLS.includes(r.impl) || (r.subgroups !== undefined && typeof r.subgroups !== 'boolean') || typeof r.ms !== 'number') bad(`shape '${key}' has no valid impl/subgroups/ms`);
  }
  return t;
}

/** Keeps tables in memory (tests, or a session that should not persist). */
export class MemoryTuneStore implements TuneStore {
  readonly location = 'memory';
  private readonly tables = new Map<string, AdapterTuning>();
  async load(adapter: AdapterIdentity): Promise<AdapterTuning | null> {
    return this.tables.get(adapterKey(adapter)) ?? null;
  }
  async save(tuning: AdapterTuning): Promise<void> {
    this.tables.set(adapterKey(tuning.adapter), structuredClone(tuning));
  }
}

const NODE_FS = 'node:fs/promises';
const NODE_OS = 'node:os';
const NODE_PATH = 'node:path';

interface FileShape {
  version: 1;
  adapters: Record<string, AdapterTuning>;
}

/**
 * One JSON file holding every adapter's table ({ version: 1, adapters: { "<vendor>|<arch>|<device>|<description>": ... } }).
 * Default path: $XDG_CACHE_HOME/pix2pix-webgpu/tune.json, else ~/.cache/pix2pix-webgpu/tune.json.
 */
export class FileTuneStore implements TuneStore {
  constructor(readonly location: string) {}

  static async defaultPath(): Promise<string> {
    const { homedir } = (await import(/* webpackIgnore: true */ /* @vite-ignore */ NODE_OS)) as { homedir(): string };
    const { join } = (await import(/* webpackIgnore: true */ /* @vite-ignore */ NODE_PATH)) as { join(...p: string[]): string };
    const base = process.env.XDG_CACHE_HOME || join(homedir(), '.cache');
    return join(base, 'pix2pix-webgpu', 'tune.json');
  }

  private async readAll(): Promise<FileShape> {
    const fs = (await import(/* webpackIgnore: true */ /* @vite-ignore */ NODE_FS)) as typeof import('node:fs/promises');
    let text: string;
    try {
      text = await fs.readFile(this.location, 'utf8');
    } catch (e) {
      if ((e as { code?: string }).code === 'ENOENT') return { version: 1, adapters: {} };
      throw e;
    }
    let v: unknown;
    try {
      v = JSON.parse(text);
    } catch {
      throw new FileFormatError(this.location, 'tuning cache is not valid JSON (delete the file to re-tune)');
    }
    const f = v as FileShape;
    if (!f || f.version !== 1 || !f.adapters || typeof f.adapters !== 'object') throw new FileFormatError(this.location, 'tuning cache is not { version: 1, adapters } (delete the file to re-tune)');
    return f;
  }

  async load(adapter: AdapterIdentity): Promise<AdapterTuning | null> {
    const entry = (await this.readAll()).adapters[adapterKey(adapter)];
    return entry ? checkAdapterTuning(entry, this.location) : null;
  }

  async save(tuning: AdapterTuning): Promise<void> {
    const fs = (await import(/* webpackIgnore: true */ /* @vite-ignore */ NODE_FS)) as typeof import('node:fs/promises');
    const { dirname } = (await import(/* webpackIgnore: true */ /* @vite-ignore */ NODE_PATH)) as { dirname(p: string): string };
    const all = await this.readAll();
    all.adapters[adapterKey(tuning.adapter)] = tuning;
    await fs.mkdir(dirname(this.location), { recursive: true });
    // Write then rename, so a reader never sees half a file.
    const tmp = `${this.location}.${process.pid}.tmp`;
    await fs.writeFile(tmp, `${JSON.stringify(all, null, 1)}\n`);
    await fs.rename(tmp, this.location);
  }
}

/** The browser's Cache API: one response per adapter in the cache named `location`. */
export class CacheApiTuneStore implements TuneStore {
  constructor(readonly location = 'pix2pix-webgpu-tune') {}

  private get fix(): string {
    return `delete it to re-tune: caches.delete('${this.location}')`;
  }

  private url(adapter: AdapterIdentity): string {
    return `https://pix2pix-webgpu.invalid/tune/${encodeURIComponent(adapterKey(adapter))}`;
  }

  async load(adapter: AdapterIdentity): Promise<AdapterTuning | null> {
    const cache = await caches.open(this.location);
    const hit = await cache.match(this.url(adapter));
    if (!hit) return null;
    let v: unknown;
    try {
      v = await hit.json();
    } catch {
      throw new FileFormatError(`Cache API '${this.location}'`, `tuning cache entry is not valid JSON (${this.fix})`);
    }
    return checkAdapterTuning(v, `Cache API '${this.location}'`, this.fix);
  }

  async save(tuning: AdapterTuning): Promise<void> {
    const cache = await caches.open(this.location);
    await cache.put(this.url(tuning.adapter), new Response(JSON.stringify(tuning), { headers: { 'content-type': 'application/json' } }));
  }
}

/** Node: the JSON file at `path` (default {@link FileTuneStore.defaultPath}); browser: the Cache API; elsewhere memory. */
export async function defaultTuneStore(path?: string): Promise<TuneStore> {
  if (typeof process !== 'undefined' && process.versions?.node) return new FileTuneStore(path ?? (await FileTuneStore.defaultPath()));
  if (typeof caches !== 'undefined') return new CacheApiTuneStore();
  return new MemoryTuneStore();
}
