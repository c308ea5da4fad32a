/**
 * Minimal ZIP reader for PyTorch checkpoints (APPNOTE.TXT, PKWARE): the central directory is the
 * index, each entry's local header gives where its data starts. Stored entries are returned as
 * views into the input (no copy); deflated ones are inflated with DecompressionStream('deflate-raw').
 * ZIP64 (end-of-central-directory record and the 0x0001 extra field) is read as torch/miniz
 * writes it for archives or entries above 4 GiB. Every entry's CRC-32 is checked.
 * Browser-safe: no Node imports.
 */
import { FileFormatError } from '../runtime/errors.js';

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
}

/** True if `bytes` starts like a ZIP archive (a local file header). */
export function isZip(bytes: Uint8Array): boolean {
  return bytes.length >= 4 && bytes[0] === 0x50 && bytes[1] === 0x4b && bytes[2] === 0x03 && bytes[3] === 0x04;
}

/**
 * Read the central directory: entry metadata in directory order, without touching the data.
 * Throws FileFormatError naming `fileName` (and the entry) for anything malformed or unsupported.
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
    const bad = (message: string): never => fail(`entry '${name}': ${message}`);
    // ZIP64 extended information: only the fields whose 32-bit value is 0xFFFFFFFF, in this order.
    for (let x = at + 46 + nameLen; x + 4 <= at + 46 + nameLen + extraLen; ) {
      const id = view.getUint16(x, true);
      const len = view.getUint16(x + 2, true);
      if (id === 0x0001) {
        let f = x + 4;
        const next = (what: string): number => {
          if (f + 8 > x + 4 + len) bad(`ZIP64 extra field lacks the ${what}`);
          const v = u64(f, `entry '${name}' ${what}`);
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
    entries.push({ name, method, compressedSize, size, crc32, dataOffset });
    at = end;
  }
  return entries;
}

/**
 * Read every entry of a ZIP archive. Stored entries are views into `bytes`; deflated ones are
 * inflated (hence async). Throws FileFormatError naming the file and the entry on any problem,
 * including a CRC-32 mismatch.
 */
export async function readZip(bytes: Uint8Array, fileName = 'zip'): Promise<Map<string, Uint8Array>> {
  const out = new Map<string, Uint8Array>();
  for (const entry of listZip(bytes, fileName)) {
    const raw = bytes.subarray(entry.dataOffset, entry.dataOffset + entry.compressedSize);
    const data = entry.method === 0 ? raw : await inflateRaw(raw, fileName, entry.name);
    if (data.length !== entry.size) {
      throw new FileFormatError(fileName, `entry '${entry.name}': inflated to ${data.length} bytes, expected ${entry.size}`);
    }
    const crc = crc32(data);
    if (crc !== entry.crc32) {
      throw new FileFormatError(
        fileName,
        `entry '${entry.name}': CRC-32 is ${hex(crc)}, expected ${hex(entry.crc32)} (corrupt data)`,
      );
    }
    if (out.has(entry.name)) throw new FileFormatError(fileName, `entry '${entry.name}' appears twice`);
    out.set(entry.name, data);
  }
  return out;
}

async function inflateRaw(raw: Uint8Array, fileName: string, entry: string): Promise<Uint8Array> {
  if (typeof DecompressionStream === 'undefined') {
    throw new FileFormatError(fileName, `entry '${entry}' is deflate-compressed and this runtime has no DecompressionStream`);
  }
  try {
    const stream = new Blob([raw as Uint8Array<ArrayBuffer>]).stream().pipeThrough(new DecompressionStream('deflate-raw'));
    const chunks: Uint8Array[] = [];
    let total = 0;
    const reader = stream.getReader();
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      chunks.push(value);
      total += value.length;
    }
    const out = new Uint8Array(total);
    let at = 0;
    for (const c of chunks) {
      out.set(c, at);
      at += c.length;
    }
    return out;
  } catch (e) {
    throw new FileFormatError(fileName, `entry '${entry}': deflate data is corrupt (${(e as Error).message})`);
  }
}

let crcTable: Uint32Array | undefined;

/** CRC-32 (IEEE 802.3, reflected polynomial 0xEDB88320), as ZIP stores it. */
export function crc32(data: Uint8Array): number {
  if (!crcTable) {
    crcTable = new Uint32Array(256);
    for (let n = 0; n < 256; n++) {
      let c = n;
      for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
      crcTable[n] = c >>> 0;
    }
  }
  const table = crcTable;
  let c = 0xffffffff;
  for (let i = 0; i < data.length; i++) c = table[(c ^ data[i]) & 0xff] ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

function hex(v: number): string {
  return `0x${v.toString(16).padStart(8, '0')}`;
}
