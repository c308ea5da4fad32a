/**
 * Downloading checkpoint bytes the way web apps load models (TF.js's onProgress, transformers.js's browser
 * cache): the body is streamed so progress can be reported, an AbortSignal cancels the request or the
 * stream, and an opt-in Cache API cache keyed by URL lets a second visit load without the network.
 * Browser-safe and Node-safe: Node 20 has fetch but no Cache API, so there the cache option is ignored.
 */
import { FetchError, InvalidOptionError } from '../runtime/errors.js';

/** One progress report: bytes of `url` received so far and the expected total (null while unknown). */
export interface DownloadProgress {
  url: string;
  loaded: number;
  /** From Content-Length; null when the server sent none (or sent a compressed length). The last event has total === loaded. */
  total: number | null;
  /** True when the bytes come from the Cache API rather than the network. */
  fromCache: boolean;
}

export interface DownloadOptions {
  /** Called with 0 bytes when the response starts, after every received chunk, and once more at the end (loaded === total). */
  onProgress?: (p: DownloadProgress) => void;
  /** Aborting rejects the load with the signal's reason (an AbortError DOMException by default). */
  signal?: AbortSignal;
  /**
   * Keep downloaded files in the browser's Cache API (true: the cache 'pix2pix-webgpu'; a string: that cache)
   * and read them from there next time, keyed by URL. Ignored where the Cache API does not exist (Node,
   * insecure http:// pages other than localhost). A failed cache write does not fail the load.
   */
  cache?: boolean | string;
  /** Extra fetch options (headers, credentials, ...). */
  requestInit?: Omit<RequestInit, 'signal'>;
}

export const DEFAULT_CACHE_NAME = 'pix2pix-webgpu';

const DOWNLOAD_KEYS = ['onProgress', 'signal', 'cache', 'requestInit'] as const;

/** Split download options from other options (they arrive in one object) and check their types. */
export function splitDownloadOptions<T extends object>(opts: T & DownloadOptions, op: string): { download: DownloadOptions; rest: T } {
  const rest = { ...opts } as Record<string, unknown>;
  const download: Record<string, unknown> = {};
  for (const k of DOWNLOAD_KEYS) {
    download[k] = rest[k];
    delete rest[k];
  }
  const d = download as DownloadOptions;
  if (d.onProgress !== undefined && typeof d.onProgress !== 'function') throw new InvalidOptionError(op, 'onProgress', 'a function', d.onProgress);
  if (d.signal !== undefined && !isAbortSignal(d.signal)) throw new InvalidOptionError(op, 'signal', 'an AbortSignal', d.signal);
  if (d.cache !== undefined && typeof d.cache !== 'boolean' && (typeof d.cache !== 'string' || d.cache === '')) {
    throw new InvalidOptionError(op, 'cache', 'true, false or a cache name', d.cache);
  }
  if (d.requestInit !== undefined && (d.requestInit === null || typeof d.requestInit !== 'object')) throw new InvalidOptionError(op, 'requestInit', 'a fetch RequestInit object', d.requestInit);
  return { download: d, rest: rest as T };
}

function isAbortSignal(s: unknown): s is AbortSignal {
  return typeof s === 'object' && s !== null && typeof (s as AbortSignal).aborted === 'boolean' && typeof (s as AbortSignal).addEventListener === 'function';
}

/** The Cache API cache named by `option`, or null when not asked for or not available here. */
async function openCache(option: boolean | string | undefined): Promise<Cache | null> {
  if (!option) return null;
  const storage = (globalThis as { caches?: CacheStorage }).caches;
  if (!storage) return null;
  return storage.open(option === true ? DEFAULT_CACHE_NAME : option);
}

/** Download `url` to bytes with progress, abort and the optional cache (see {@link DownloadOptions}). */
export async function downloadBytes(url: string | URL, opts: DownloadOptions = {}, op = 'download'): Promise<Uint8Array> {
  const key = String(url);
  const signal = opts.signal;
  signal?.throwIfAborted();
  const cache = await openCache(opts.cache);
  if (cache) {
    const hit = await cache.match(key);
    if (hit) return readBody(hit, key, true, opts, op);
  }
  let res: Response;
  try {
    res = await fetch(url, { ...opts.requestInit, signal });
  } catch (e) {
    if (signal?.aborted) throw signal.reason;
    throw new FetchError(op, key, 0, e instanceof Error ? `(${e.message}${e.cause instanceof Error ? `: ${e.cause.message}` : ''})` : String(e));
  }
  if (!res.ok) {
    await res.body?.cancel().catch(() => undefined);
    throw new FetchError(op, key, res.status, res.statusText);
  }
  const bytes = await readBody(res, key, false, opts, op);
  if (cache) {
    // Stored with its length so a cached load reports a total too. A full quota must not fail a load
    // that succeeded; the next visit simply downloads again.
    const stored = new Response(bytes as Uint8Array<ArrayBuffer>, { headers: { 'content-type': res.headers.get('content-type') ?? 'application/octet-stream', 'content-length': String(bytes.byteLength) } });
    await cache.put(key, stored).catch(() => undefined);
  }
  return bytes;
}

async function readBody(res: Response, url: string, fromCache: boolean, opts: DownloadOptions, op: string): Promise<Uint8Array> {
  const signal = opts.signal;
  const report = (loaded: number, total: number | null) => opts.onProgress?.({ url, loaded, total, fromCache });
  // A Content-Length of a compressed body counts encoded bytes, not the bytes the stream yields.
  const lengthHeader = res.headers.get('content-length');
  const encoded = (res.headers.get('content-encoding') ?? 'identity') !== 'identity';
  const total = lengthHeader !== null && !encoded && /^\d+$/.test(lengthHeader) ? Number(lengthHeader) : null;
  report(0, total);
  const chunks: Uint8Array[] = [];
  let loaded = 0;
  if (res.body) {
    const reader = res.body.getReader();
    let finished = false;
    try {
      for (;;) {
        signal?.throwIfAborted();
        let chunk: ReadableStreamReadResult<Uint8Array>;
        try {
          chunk = await reader.read();
        } catch (e) {
          if (signal?.aborted) throw signal.reason;
          if (e instanceof Error && e.name === 'AbortError') throw e;
          throw new FetchError(op, url, fromCache ? 0 : res.status, `(body: ${e instanceof Error ? e.message : String(e)})`);
        }
        if (chunk.done) break;
        chunks.push(chunk.value);
        loaded += chunk.value.byteLength;
        report(loaded, total);
      }
      finished = true;
    } finally {
      // An abort, a read error or a throwing onProgress: stop the download rather than let it run on.
      if (!finished) await reader.cancel().catch(() => undefined);
    }
  }
  if (total !== null && loaded !== total) throw new FetchError(op, url, fromCache ? 0 : res.status, `(truncated: received ${loaded} of ${total} bytes)`);
  if (total === null) report(loaded, loaded);
  signal?.throwIfAborted();
  if (chunks.length === 1) return chunks[0];
  const out = new Uint8Array(loaded);
  let at = 0;
  for (const c of chunks) {
    out.set(c, at);
    at += c.byteLength;
  }
  return out;
}
