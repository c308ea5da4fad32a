/**
 * Minimal ZIP reader for PyTorch checkpoints (APPNOTE.TXT, PKWARE): the central directory is the
 * index, each entry's local header gives where its data starts. Stored entries are returned as
 * views into the input (no copy); deflated ones are inflated with DecompressionStream('deflate-raw').
 * ZIP64 (end-of-central-directory record and the 0x0001 extra field) is read as torch/miniz
 * writes it for archives or entries above 4 GiB. Every entry's CRC-32 is checked.
 *
 * Hostile archives: entries are inflated lazily (only those read), a declared size must be one
 * deflate can produce from the entry's compressed bytes and must fit the read budget before any
 * inflating starts, inflating stops at the declared size, and entries may not overlap one
 * another (many directory entries pointing at one bomb) or the central directory.
 * Browser-safe: no Node imports.
 */
import { FileFormatError, quoteUntrusted } from '../runtime/errors.js';
import { overBudget, resolveBudget, type ReaderOptions } from './budget.js';

/** Deflate's largest expansion: 258 bytes per 2-bit code, about 1032:1, plus slack for tiny streams. */
const MAX_DEFLATE_RATIO = 1032;
const DEFLATE_SLACK = 1024;

const SIG_LOCAL = 0x04034b50;
const SIG_CENTRAL = 0x02014b50;
const SIG_EOCD = 0x06054b50;
const SIG_ZIP64_EOCD = 0x06064b50;
const SIG_ZIP64_LOCATOR = 0x07064b50;

/** One entry's metadata, as the central directory describes it. */
export interface ZipEntryInfo {
  name: string;
  method: number;
  compressedSize: number;
  size: number;
  crc32: number;
  /** Byte offset of the entry's data (after its local header) in the archive. */
  dataOffset: number;
  /** Byte offset of the entry's local header. */
  localOffset: number;
}

/** An archive whose entries are read (and inflated) one by one, on request. */
export interface ZipArchive {
  /** Entries in central-directory order. */
  readonly entries: readonly ZipEntryInfo[];
  /** The entry called `name`, if any. */
  get(name: string): ZipEntryInfo | undefined;
  /** The bytes of entry `name` (a view for a stored entry), CRC-checked; charged to the inflate budget. */
  read(name: string): Promise<Uint8Array>;
}

/** True if `bytes` starts like a ZIP archive (a local file header). */
export function isZip(bytes: Uint8Array): boolean {
  return bytes.length >= 4 && bytes[0] === 0x50 && bytes[1] === 0x4b && bytes[2] === 0x03 && bytes[3] === 0x04;
}

/**
 * Read the central directory: entry metadata in directory order, without touching the data.
 * Throws FileFormatError naming `fileName` (and the entry) for anything malformed or unsupported,
 * for entries that overlap, repeat a name, or declare more than their compressed bytes can inflate to.
 */
export function listZip(bytes: Uint8Array, fileName = 'zip'): ZipEntryInfo[] {
  const fail = (message: string): never => {
    throw new FileFormatError(fileName, message);
  };
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const u64 = (at: number, what: string): number => {
    const v = view.getBigUint64(at, true);
    if (v > BigInt(Number.MAX_SAFE_INTEGER)) fail(`${what} ${v} is too large`);
    return Number(v);
  };

  // The end-of-central-directory record is the last 22 bytes plus a comment of up to 65535 bytes.
  let eocd = -1;
  for (let at = bytes.length - 22; at >= 0 && at >= bytes.length - 22 - 0xffff; at--) {
    if (view.getUint32(at, true) === SIG_EOCD && at + 22 + view.getUint16(at + 20, true) <= bytes.length) {
      eocd = at;
      break;
    }
  }
  if (eocd < 0) {
    fail(
      isZip(bytes)
        ? `truncated zip archive: no end-of-central-directory record in its ${bytes.length} bytes`
        : `not a zip archive: no end-of-central-directory record in its ${bytes.length} bytes`,
    );
  }

  let count = view.getUint16(eocd + 10, true);
  let cdSize = view.getUint32(eocd + 12, true);
  let cdOffset = view.getUint32(eocd + 16, true);
  if (count === 0xffff || cdSize === 0xffffffff || cdOffset === 0xffffffff) {
    const loc = eocd - 20;
    if (loc < 0 || view.getUint32(loc, true) !== SIG_ZIP64_LOCATOR) fail('ZIP64 sizes are flagged but the ZIP64 locator is missing');
    const rec = u64(loc + 8, 'ZIP64 record offset');
    if (rec + 56 > bytes.length || view.getUint32(rec, true) !== SIG_ZIP64_EOCD) fail(`no ZIP64 end-of-central-directory record at byte ${rec}`);
    count = u64(rec + 32, 'entry count');
    cdSize = u64(rec + 40, 'central directory size');
    cdOffset = u64(rec + 48, 'central directory offset');
  }
  if (cdOffset + cdSize > bytes.length) {
    fail(`central directory [${cdOffset}, ${cdOffset + cdSize}) lies beyond the ${bytes.length}-byte file (truncated)`);
  }

  const entries: ZipEntryInfo[] = [];
  const decoder = new TextDecoder();
  let at = cdOffset;
  for (let i = 0; i < count; i++) {
    if (at + 46 > cdOffset + cdSize || view.getUint32(at, true) !== SIG_CENTRAL) {
      fail(`central directory entry ${i} of ${count} is missing or corrupt at byte ${at}`);
    }
    const flags = view.getUint16(at + 8, true);
    const method = view.getUint16(at + 10, true);
    const crc32 = view.getUint32(at + 16, true);
    let compressedSize = view.getUint32(at + 20, true);
    let size = view.getUint32(at + 24, true);
    const nameLen = view.getUint16(at + 28, true);
    const extraLen = view.getUint16(at + 30, true);
    const commentLen = view.getUint16(at + 32, true);
    let localOffset = view.getUint32(at + 42, true);
    const end = at + 46 + nameLen + extraLen + commentLen;
    if (end > cdOffset + cdSize) fail(`central directory entry ${i} runs past the directory`);
    const name = decoder.decode(bytes.subarray(at + 46, at + 46 + nameLen));
    const bad = (message: string): never => fail(`entry ${quoteUntrusted(name)}: ${message}`);
    // ZIP64 extended information: only the fields whose 32-bit value is 0xFFFFFFFF, in this order.
    for (let x = at + 46 + nameLen; x + 4 <= at + 46 + nameLen + extraLen; ) {
      const id = view.getUint16(x, true);
      const len = view.getUint16(x + 2, true);
      if (id === 0x0001) {
        let f = x + 4;
        const next = (what: string): number => {
          if (f + 8 > x + 4 + len) bad(`ZIP64 extra field lacks the ${what}`);
          const v = u64(f, `entry ${quoteUntrusted(name)} ${what}`);
          f += 8;
          return v;
        };
        if (size === 0xffffffff) size = next('uncompressed size');
        if (compressedSize === 0xffffffff) compressedSize = next('compressed size');
        if (localOffset === 0xffffffff) localOffset = next('local header offset');
      }
      x += 4 + len;
    }
    if (flags & 1) bad('is encrypted');
    if (method !== 0 && method !== 8) bad(`uses compression method ${method}; only stored (0) and deflate (8) are supported`);
    if (method === 0 && compressedSize !== size) bad(`is stored but its sizes differ (${compressedSize} vs ${size})`);
    if (localOffset + 30 > bytes.length || view.getUint32(localOffset, true) !== SIG_LOCAL) {
      bad(`no local file header at byte ${localOffset} (truncated or corrupt)`);
    }
    const dataOffset = localOffset + 30 + view.getUint16(localOffset + 26, true) + view.getUint16(localOffset + 28, true);
    if (dataOffset + compressedSize > bytes.length) {
      bad(`data [${dataOffset}, ${dataOffset + compressedSize}) lies beyond the ${bytes.length}-byte file (truncated)`);
    }
    if (dataOffset + compressedSize > cdOffset) {
      bad(`data [${dataOffset}, ${dataOffset + compressedSize}) runs into the central directory at byte ${cdOffset}`);
    }
    if (method === 8 && size > compressedSize * MAX_DEFLATE_RATIO + DEFLATE_SLACK) {
      bad(`declares ${size} bytes from ${compressedSize} compressed bytes, more than deflate can produce (a zip bomb or a corrupt size)`);
    }
    entries.push({ name, method, compressedSize, size, crc32, dataOffset, localOffset });
    at = end;
  }

  // Each entry must own its bytes: no two directory entries may share (or overlap) a local header
  // or its data, or one compressed bomb could be listed a thousand times.
  const seen = new Set<string>();
  for (const e of entries) {
    if (seen.has(e.name)) fail(`entry ${quoteUntrusted(e.name)} appears twice`);
    seen.add(e.name);
  }
  const byOffset = [...entries].sort((a, b) => a.localOffset - b.localOffset);
  for (let i = 1; i < byOffset.length; i++) {
    const prev = byOffset[i - 1];
    const cur = byOffset[i];
    const prevEnd = prev.dataOffset + prev.compressedSize;
    if (cur.localOffset < prevEnd) {
      fail(`entries ${quoteUntrusted(prev.name)} [${prev.localOffset}, ${prevEnd}) and ${quoteUntrusted(cur.name)} (from byte ${cur.localOffset}) overlap`);
    }
  }
  return entries;
}

/**
 * Open an archive: read and check its directory now, inflate entries only when read. The total
 * inflated by one archive is limited by the read budget's maxInflatedBytes.
 */
export function openZip(bytes: Uint8Array, fileName = 'zip', options: ReaderOptions = {}): ZipArchive {
  const budget = resolveBudget(options.budget);
  const entries = listZip(bytes, fileName);
  const byName = new Map(entries.map((e) => [e.name, e]));
  let inflated = 0;
  return {
    entries,
    get: (name) => byName.get(name),
    async read(name) {
      const entry = byName.get(name);
      if (!entry) throw new FileFormatError(fileName, `no entry ${quoteUntrusted(name)} in the archive`);
      const what = `entry ${quoteUntrusted(entry.name)}`;
      const raw = bytes.subarray(entry.dataOffset, entry.dataOffset + entry.compressedSize);
      let data = raw;
      if (entry.method !== 0) {
        if (inflated + entry.size > budget.maxInflatedBytes) {
          throw new FileFormatError(fileName, `${what} declares ${entry.size} bytes, which with the ${inflated} already inflated is ${overBudget(budget, 'maxInflatedBytes')}`);
        }
        inflated += entry.size;
        data = await inflateRaw(raw, entry.size, fileName, what);
      }
      const crc = crc32(data);
      if (crc !== entry.crc32) {
        throw new FileFormatError(fileName, `${what}: CRC-32 is ${hex(crc)}, expected ${hex(entry.crc32)} (corrupt data)`);
      }
      return data;
    },
  };
}

/**
 * Read every entry of a ZIP archive. Stored entries are views into `bytes`; deflated ones are
 * inflated (hence async), within the read budget. Throws FileFormatError naming the file and the
 * entry on any problem, including a CRC-32 mismatch.
 */
export async function readZip(bytes: Uint8Array, fileName = 'zip', options: ReaderOptions = {}): Promise<Map<string, Uint8Array>> {
  const archive = openZip(bytes, fileName, options);
  const out = new Map<string, Uint8Array>();
  for (const entry of archive.entries) out.set(entry.name, await archive.read(entry.name));
  return out;
}

/** Inflate `raw` into exactly `size` bytes; stop (and refuse) as soon as it would produce more. */
async function inflateRaw(raw: Uint8Array, size: number, fileName: string, what: string): Promise<Uint8Array> {
  if (typeof DecompressionStream === 'undefined') {
    throw new FileFormatError(fileName, `${what} is deflate-compressed and this runtime has no DecompressionStream`);
  }
  const out = new Uint8Array(size);
  let at = 0;
  let overflow = false;
  try {
    const stream = new Blob([raw as Uint8Array<ArrayBuffer>]).stream().pipeThrough(new DecompressionStream('deflate-raw'));
    const reader = stream.getReader();
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      if (at + value.length > size) {
        overflow = true;
        await reader.cancel().catch(() => undefined);
        break;
      }
      out.set(value, at);
      at += value.length;
    }
  } catch (e) {
    throw new FileFormatError(fileName, `${what}: deflate data is corrupt (${quoteUntrusted((e as Error).message, 200)})`);
  }
  if (overflow) throw new FileFormatError(fileName, `${what} inflates to more than its declared ${size} bytes; stopped there`);
  if (at !== size) throw new FileFormatError(fileName, `${what}: inflated to ${at} bytes, expected ${size}`);
  return out;
}

/** The slice-by-8 tables: table k (k*256 .. k*256+255) is the CRC of a byte followed by k zero bytes. */
let crcTables: Uint32Array | undefined;

function crcTablesNow(): Uint32Array {
  if (!crcTables) {
    const t = new Uint32Array(8 * 256);
    for (let n = 0; n < 256; n++) {
      let c = n;
      for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
      t[n] = c >>> 0;
    }
    for (let n = 0; n < 256; n++) for (let k = 1; k < 8; k++) t[k * 256 + n] = (t[(k - 1) * 256 + n] >>> 8) ^ t[t[(k - 1) * 256 + n] & 0xff];
    crcTables = t;
  }
  return crcTables;
}

/** Words are read straight from the buffer as little-endian; a big-endian host takes the byte loop throughout. */
const LITTLE_ENDIAN = new Uint8Array(new Uint32Array([1]).buffer)[0] === 1;
const NO_WORDS = new Uint32Array(0);

/**
 * CRC-32 in portable TypeScript, slice-by-8 (eight bytes per step through eight tables, read as two aligned
 * 32-bit words): about 3x the byte-at-a-time loop, which took 1.2 s of a 216 MB checkpoint's 1.3 s load.
 * The browser's path; tested against a byte-at-a-time reference and node:zlib's.
 */
export function crc32Portable(data: Uint8Array): number {
  const t = crcTablesNow();
  let c = 0xffffffff;
  const n = data.length;
  let i = 0;
  // Bytes up to a 4-byte boundary of the underlying buffer, then pairs of words, then the rest.
  for (; i < n && (data.byteOffset + i) & 3; i++) c = t[(c ^ data[i]) & 0xff] ^ (c >>> 8);
  const words = LITTLE_ENDIAN ? ((n - i) >>> 3) << 1 : 0;
  // (A short input may end before the boundary: then there are no words, and no view to make.)
  const w = words > 0 ? new Uint32Array(data.buffer, data.byteOffset + i, words) : NO_WORDS;
  for (let j = 0; j < words; j += 2) {
    const lo = c ^ w[j];
    const hi = w[j + 1];
    c =
      t[1792 + (lo & 0xff)] ^
      t[1536 + ((lo >>> 8) & 0xff)] ^
      t[1280 + ((lo >>> 16) & 0xff)] ^
      t[1024 + (lo >>> 24)] ^
      t[768 + (hi & 0xff)] ^
      t[512 + ((hi >>> 8) & 0xff)] ^
      t[256 + ((hi >>> 16) & 0xff)] ^
      t[hi >>> 24];
  }
  for (i += words * 4; i < n; i++) c = t[(c ^ data[i]) & 0xff] ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

type Crc32 = (data: Uint8Array) => number;
let nativeCrc: Crc32 | null | undefined;

/**
 * node:zlib's crc32 (native, Node >= 20.15), reached through process.getBuiltinModule (Node >= 20.16) rather
 * than an import, so this file stays browser-safe and bundlers see no Node module; null where either is missing.
 */
function nativeCrc32(): Crc32 | null {
  if (nativeCrc === undefined) {
    const proc = (globalThis as { process?: { getBuiltinModule?: (id: string) => unknown } }).process;
    let zlib: { crc32?: (data: Uint8Array) => number } | undefined;
    try {
      zlib = proc?.getBuiltinModule?.('node:zlib') as typeof zlib;
    } catch {
      zlib = undefined;
    }
    const native = zlib?.crc32;
    nativeCrc = typeof native === 'function' ? (data) => native(data) >>> 0 : null;
  }
  return nativeCrc;
}

/** CRC-32 (IEEE 802.3, reflected polynomial 0xEDB88320), as ZIP stores it: node:zlib's where present, else portable. */
export function crc32(data: Uint8Array): number {
  return (nativeCrc32() ?? crc32Portable)(data);
}

function hex(v: number): string {
  return `0x${v.toString(16).padStart(8, '0')}`;
}
