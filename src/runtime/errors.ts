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

function fmt(v: unknown): string {
  if (Array.isArray(v)) return `[${v.join(', ')}]`;
  if (typeof v === 'string') return v;
  return String(v);
}
