/**
 * safetensors (https://github.com/huggingface/safetensors, "Format" in its README):
 *   u64 little-endian N | N bytes of UTF-8 JSON header | raw little-endian tensor data.
 * The header maps each tensor name to {dtype, shape, data_offsets: [begin, end]} (offsets relative
 * to the start of the data) and may hold "__metadata__": {string: string}.
 * We read F32, F16, BF16, F64, I64 (and the other integer types) into f32; we write F32 only.
 * Browser-safe: works on a Uint8Array, no Node imports.
 */
import { FileFormatError, ShapeError, quoteUntrusted } from '../runtime/errors.js';
import { overBudget, resolveBudget, type ReaderOptions } from './budget.js';
import { DTYPE_SIZES, HOST_LITTLE_ENDIAN, decodeToFloat32, numelOf, type StateDict, type TensorListing } from './state_dict.js';

export type { StateDict, StateDictEntry } from './state_dict.js';

/** Options of {@link parseSafetensors}. The header limit defaults to the reference reader's 100 MB. */
export interface SafetensorsOptions extends ReaderOptions {
  /** Which tensors to decode, by name (all are still checked). Default: all. */
  keep?: (name: string) => boolean;
}

/** A value from the file, as JSON (which quotes strings itself), escaped and cut short for a message. */
function shown(v: unknown): string {
  let text: string;
  try {
    text = JSON.stringify(v) ?? String(v);
  } catch {
    text = String(v);
  }
  const quoted = quoteUntrusted(text, 60);
  return quoted.endsWith("'") ? quoted.slice(1, -1) : quoted;
}

/** A parsed safetensors file: its tensors in file (data offset) order and its `__metadata__`. */
export interface SafetensorsFile {
  tensors: StateDict;
  metadata: Record<string, string>;
}

/**
 * Parse a safetensors file into a StateDict (values as f32, in the order of their data in the file).
 * Throws FileFormatError naming `fileName` for a truncated file, bad JSON, an unknown dtype, or
 * offsets that lie outside the data, overlap, leave gaps, or do not match dtype × shape.
 */
export function parseSafetensors(bytes: Uint8Array, fileName = 'safetensors', options: SafetensorsOptions = {}): StateDict {
  return parseSafetensorsFile(bytes, fileName, options).tensors;
}

/** Like {@link parseSafetensors}, and also returns the header's `__metadata__`. */
export function parseSafetensorsFile(bytes: Uint8Array, fileName = 'safetensors', options: SafetensorsOptions = {}): SafetensorsFile {
  const file = openSafetensors(bytes, fileName, options);
  return { tensors: file.read(options.keep), metadata: file.metadata };
}

/** A safetensors file whose header has been checked: its tensors listed (file order), its metadata, and a reader. */
export interface OpenedSafetensors {
  tensors: TensorListing[];
  metadata: Record<string, string>;
  /** Decode the tensors `keep` selects (default all) into f32, charging them to the read budget. */
  read(keep?: (name: string) => boolean): StateDict;
}

/**
 * Check a safetensors header (every tensor's dtype, shape and offsets, the data tiled exactly) without
 * decoding any tensor: what a caller needs to choose tensors by shape before reading them.
 * Throws FileFormatError naming `fileName`, as {@link parseSafetensors}.
 */
export function openSafetensors(bytes: Uint8Array, fileName = 'safetensors', options: ReaderOptions = {}): OpenedSafetensors {
  const fail = (message: string): never => {
    throw new FileFormatError(fileName, message);
  };
  const budget = resolveBudget(options.budget);
  if (bytes.length < 8) fail(`file is ${bytes.length} bytes; a safetensors file starts with an 8-byte header length`);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const headerLen64 = view.getBigUint64(0, true);
  if (headerLen64 > BigInt(bytes.length - 8)) {
    fail(`header length is ${headerLen64} bytes but only ${bytes.length - 8} bytes follow it (truncated or not safetensors)`);
  }
  const headerLen = Number(headerLen64);
  if (headerLen > budget.maxHeaderBytes) fail(`header length ${headerLen} is ${overBudget(budget, 'maxHeaderBytes')}`);
  if (headerLen < 2) fail(`header length is ${headerLen}; expected a JSON object`);

  let header: unknown;
  try {
    const text = new TextDecoder('utf-8', { fatal: true }).decode(bytes.subarray(8, 8 + headerLen));
    header = JSON.parse(text);
  } catch (e) {
    fail(`header is not valid UTF-8 JSON: ${quoteUntrusted((e as Error).message, 160)}`);
  }
  if (header === null || typeof header !== 'object' || Array.isArray(header)) {
    fail(`header must be a JSON object, found ${Array.isArray(header) ? 'an array' : typeof header}`);
  }

  const dataStart = 8 + headerLen;
  const dataLen = bytes.length - dataStart;
  const metadata: Record<string, string> = {};
  interface Info {
    name: string;
    dtype: string;
    shape: number[];
    begin: number;
    end: number;
  }
  const infos: Info[] = [];
  for (const [name, raw] of Object.entries(header as Record<string, unknown>)) {
    if (name === '__metadata__') {
      if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) fail(`__metadata__ must be an object of strings`);
      for (const [k, v] of Object.entries(raw as Record<string, unknown>)) {
        if (typeof v !== 'string') fail(`__metadata__[${quoteUntrusted(k)}] must be a string, found ${typeof v}`);
        metadata[k] = v as string;
      }
      continue;
    }
    const tensor = `tensor ${quoteUntrusted(name)}`;
    const info = raw as { dtype?: unknown; shape?: unknown; data_offsets?: unknown };
    if (info === null || typeof info !== 'object') fail(`${tensor}: expected {dtype, shape, data_offsets}, found ${shown(raw)}`);
    const dtype = info.dtype;
    if (typeof dtype !== 'string' || !(dtype in DTYPE_SIZES)) {
      fail(`${tensor}: dtype ${shown(dtype)} is not one of ${Object.keys(DTYPE_SIZES).join(', ')}`);
    }
    const shape = info.shape;
    if (!Array.isArray(shape) || !shape.every((d) => Number.isSafeInteger(d) && d >= 0)) {
      fail(`${tensor}: shape must be a list of non-negative integers, found ${shown(shape)}`);
    }
    const offsets = info.data_offsets;
    if (!Array.isArray(offsets) || offsets.length !== 2 || !offsets.every((o) => Number.isSafeInteger(o) && o >= 0)) {
      fail(`${tensor}: data_offsets must be [begin, end], found ${shown(offsets)}`);
    }
    const [begin, end] = offsets as number[];
    if (begin > end) fail(`${tensor}: data_offsets [${begin}, ${end}] end before they begin`);
    if (end > dataLen) {
      fail(`${tensor}: data_offsets [${begin}, ${end}] run past the ${dataLen} bytes of data (truncated file?)`);
    }
    const expectedBytes = numelOf(shape as number[]) * DTYPE_SIZES[dtype as string];
    if (end - begin !== expectedBytes) {
      fail(`${tensor}: ${dtype} × [${(shape as number[]).slice(0, 8).join(', ')}${(shape as number[]).length > 8 ? ', …' : ''}] needs ${expectedBytes} bytes, data_offsets [${begin}, ${end}] hold ${end - begin}`);
    }
    infos.push({ name, dtype: dtype as string, shape: shape as number[], begin, end });
  }

  // File order is data order (JSON.parse moves integer-like keys first, so the header's key order
  // is not reliable). The reference reader requires the tensors to tile the data exactly.
  const ordered = infos.map((info, i) => ({ info, i })).sort((a, b) => a.info.begin - b.info.begin || a.i - b.i);
  let cursor = 0;
  for (const { info } of ordered) {
    if (info.begin < cursor) fail(`tensor ${quoteUntrusted(info.name)}: data_offsets [${info.begin}, ${info.end}] overlap the previous tensor, which ends at ${cursor}`);
    if (info.begin > cursor) fail(`tensor ${quoteUntrusted(info.name)}: data_offsets begin at ${info.begin}, expected ${cursor} (gap in the data)`);
    cursor = info.end;
  }
  if (cursor !== dataLen) fail(`tensors cover ${cursor} bytes of data but the file has ${dataLen} (trailing bytes)`);

  const read = (keep: (name: string) => boolean = () => true): StateDict => {
    const tensors: StateDict = new Map();
    let total = 0;
    for (const { info } of ordered) {
      if (!keep(info.name)) continue;
      const count = numelOf(info.shape);
      total += count * 4;
      if (total > budget.maxTensorBytes) fail(`tensor ${quoteUntrusted(info.name)} brings the tensors read to ${total} bytes as f32, ${overBudget(budget, 'maxTensorBytes')}`);
      tensors.set(info.name, {
        shape: info.shape.slice(),
        data: decodeToFloat32(bytes, dataStart + info.begin, count, info.dtype),
        dtype: info.dtype,
      });
    }
    return tensors;
  };
  return { tensors: ordered.map(({ info }) => ({ key: info.name, shape: info.shape.slice(), dtype: info.dtype })), metadata, read };
}

/**
 * Serialize a StateDict as safetensors, every tensor as F32 in insertion order. The header is
 * padded with spaces to a multiple of 8 bytes, as the reference writer does, so the data is aligned.
 * Throws ShapeError if an entry's data length does not match its shape.
 */
export function serializeSafetensors(dict: StateDict, metadata?: Record<string, string>): Uint8Array {
  const op = 'serializeSafetensors';
  // Built by hand rather than with one JSON.stringify so that integer-like names keep their order.
  const parts: string[] = [];
  if (metadata && Object.keys(metadata).length > 0) {
    for (const [k, v] of Object.entries(metadata)) {
      if (typeof v !== 'string') throw new ShapeError(op, `metadata['${k}'] type`, 'string', typeof v);
    }
    parts.push(`"__metadata__":${JSON.stringify(metadata)}`);
  }
  let offset = 0;
  for (const [name, entry] of dict) {
    if (name === '__metadata__' || name.length === 0) throw new ShapeError(op, 'tensor name', 'a non-empty name other than __metadata__', JSON.stringify(name));
    if (!entry.shape.every((d) => Number.isSafeInteger(d) && d >= 0)) throw new ShapeError(op, `'${name}' shape`, 'non-negative integers', entry.shape);
    const count = numelOf(entry.shape);
    if (entry.data.length !== count) throw new ShapeError(op, `'${name}' data length for shape [${entry.shape.join(', ')}]`, count, entry.data.length);
    parts.push(`${JSON.stringify(name)}:{"dtype":"F32","shape":${JSON.stringify(entry.shape)},"data_offsets":[${offset},${offset + count * 4}]}`);
    offset += count * 4;
  }
  const json = new TextEncoder().encode(`{${parts.join(',')}}`);
  const headerLen = json.length + ((8 - (json.length % 8)) % 8);
  const out = new Uint8Array(8 + headerLen + offset);
  new DataView(out.buffer).setBigUint64(0, BigInt(headerLen), true);
  out.set(json, 8);
  out.fill(0x20, 8 + json.length, 8 + headerLen);
  const dataView = new DataView(out.buffer, 8 + headerLen);
  let at = 8 + headerLen;
  for (const entry of dict.values()) {
    if (HOST_LITTLE_ENDIAN) {
      out.set(new Uint8Array(entry.data.buffer, entry.data.byteOffset, entry.data.byteLength), at);
    } else {
      for (let i = 0; i < entry.data.length; i++) dataView.setFloat32(at - 8 - headerLen + i * 4, entry.data[i], true);
    }
    at += entry.data.byteLength;
  }
  return out;
}
