/**
 * Typed errors. Every error names the op (or file) it came from and, where it is a mismatch,
 * the expected and the actual value, so a failure points at its cause rather than at a later submit.
 */

/** Base class: all library errors carry the name of the op that raised them. */
export class Pix2PixError extends Error {
  constructor(
    readonly op: string,
    message: string,
  ) {
    super(`${op}: ${message}`);
    this.name = new.target.name;
  }
}

/** A shape, length or argument did not match what the op expects. */
export class ShapeError extends Pix2PixError {
  constructor(
    op: string,
    what: string,
    readonly expected: unknown,
    readonly actual: unknown,
  ) {
    super(op, `${what}: expected ${fmt(expected)}, got ${fmt(actual)}`);
  }
}

/** A request exceeds a limit of this device (buffer size, workgroups, ...). */
export class DeviceLimitError extends Pix2PixError {
  constructor(
    op: string,
    what: string,
    readonly limit: number,
    readonly actual: number,
  ) {
    super(op, `${what} is ${actual}, beyond this device's limit of ${limit}`);
  }
}

/** WebGPU reported a validation or out-of-memory error while running the op. */
export class GpuValidationError extends Pix2PixError {
  constructor(op: string, readonly gpuMessage: string) {
    super(op, `WebGPU error: ${gpuMessage}`);
  }
}

/** The device was lost (driver reset, destroy(), out of memory on some drivers). */
export class DeviceLostError extends Pix2PixError {
  constructor(op: string, readonly reason: string, readonly lostMessage: string) {
    super(op, `GPU device lost (${reason}): ${lostMessage}`);
  }
}

/** No WebGPU adapter could be acquired; the message says how to get one. */
export class NoAdapterError extends Pix2PixError {
  constructor(message: string) {
    super('acquireDevice', message);
  }
}

/** A file could not be read or has the wrong content; names the file. */
export class FileFormatError extends Pix2PixError {
  constructor(readonly file: string, message: string) {
    super(file, message);
  }
}

/**
 * An option or argument at the public API is not one the library accepts: names the option, the allowed
 * values and the value given (e.g. `Pix2Pix.create: option netG: expected one of 'unet_128', 'unet_256', got 'unet_999'`).
 */
export class InvalidOptionError extends Pix2PixError {
  constructor(
    op: string,
    readonly option: string,
    readonly allowed: string,
    readonly given: unknown,
    note?: string,
  ) {
    super(op, `option ${option}: expected ${allowed}, got ${describeValue(given)}${note ? ` (${note})` : ''}`);
  }
}

/** A model method that cannot wait for the model's queued GPU work was called while that work runs. */
export class ModelBusyError extends Pix2PixError {
  constructor(op: string, pending: number) {
    super(op, `the model has ${pending} queued call(s) running; await them first (this method is synchronous and cannot wait its turn)`);
  }
}

/** A download failed: names the URL and the HTTP status (0 when no response arrived, e.g. a network error). */
export class FetchError extends Pix2PixError {
  constructor(
    op: string,
    readonly url: string,
    readonly status: number,
    detail: string,
  ) {
    super(op, `${url}: ${status ? `HTTP ${status}` : 'no response'}${detail ? ` ${detail}` : ''}`);
  }
}

/** A value as a user would have typed it: strings quoted, objects as JSON, so `'5'` and `5` read differently. */
function describeValue(v: unknown): string {
  if (typeof v === 'string') return quoteUntrusted(v, 80); // a value from a form or URL must not break the one-line message
  if (typeof v === 'number' || typeof v === 'boolean' || typeof v === 'bigint' || v === undefined || v === null) return String(v);
  if (typeof v === 'function') return 'a function';
  if (ArrayBuffer.isView(v)) return `${v.constructor.name}(${(v as unknown as ArrayLike<unknown>).length})`;
  // Class instances (a GPUDevice, a Tensor) by their class: their JSON is empty or huge.
  const proto = Object.getPrototypeOf(v) as { constructor?: { name?: string } } | null;
  if (proto && proto !== Object.prototype && proto !== Array.prototype && proto.constructor?.name) return `a ${proto.constructor.name}`;
  try {
    const json = JSON.stringify(v);
    return json.length > 80 ? `${json.slice(0, 77)}...` : json;
  } catch {
    return Object.prototype.toString.call(v);
  }
}

function fmt(v: unknown): string {
  if (Array.isArray(v)) return `[${v.join(', ')}]`;
  if (typeof v === 'string') return v;
  return String(v);
}

/**
 * Quote a string that came from a file (a tensor key, a metadata value, a text line) for an error
 * message: control characters (ANSI escapes, newlines, C1 codes, Unicode line separators and
 * bidirectional overrides) are written as visible escapes, so a hostile name can neither
 * rewrite the terminal nor split the one-line message, and anything beyond `max` characters is
 * cut, saying how much was left out. The result is wrapped in single quotes.
 */
export function quoteUntrusted(s: string, max = 120): string {
  const chars = Array.from(String(s).slice(0, max * 2 + 2));
  const total = s.length;
  let out = '';
  let shown = 0;
  for (const ch of chars) {
    if (shown >= max) break;
    out += escapeChar(ch);
    shown += ch.length;
  }
  const rest = total - shown;
  return rest > 0 ? `'${out}'… (${rest} more characters)` : `'${out}'`;
}

function escapeChar(ch: string): string {
  const code = ch.codePointAt(0)!;
  if (ch === "'") return "\\'";
  if (ch === '\\') return '\\\\';
  if (code < 0x20 || (code >= 0x7f && code <= 0x9f)) return `\\x${code.toString(16).padStart(2, '0')}`;
  // Line/paragraph separators, bidi embeddings/overrides/isolates, zero-width and BOM characters.
  if ((code >= 0x2028 && code <= 0x202e) || (code >= 0x2066 && code <= 0x2069) || (code >= 0x200b && code <= 0x200f) || code === 0xfeff) {
    return `\\u${code.toString(16).padStart(4, '0')}`;
  }
  // Lone surrogates (from a broken UTF-16 source) are escaped too, so the output is valid text.
  if (code >= 0xd800 && code <= 0xdfff) return `\\u${code.toString(16)}`;
  return ch;
}
