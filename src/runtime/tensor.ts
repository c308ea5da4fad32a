import type { GpuContext } from './context.js';
import { Pix2PixError, ShapeError } from './errors.js';

/** Number of elements of a shape. */
export function numel(shape: readonly number[]): number {
  let n = 1;
  for (const d of shape) n *= d;
  return n;
}

/**
 * Where a tensor's bytes live. Most storages own a pooled GPUBuffer from the start. A *transient*
 * storage (created by `ctx.scratch` while a graph is being recorded) gets its place later, when
 * {@link planMemory} assigns it a slice of an arena shared with other transients whose lifetimes do
 * not overlap; until then `buffer` is null and binding it is deferred.
 */
export class TensorStorage {
  buffer: GPUBuffer | null;
  /** Byte offset of this storage inside `buffer` (0 unless planned into an arena). */
  offset = 0;
  /** Set when the memory plan that placed this storage has been destroyed. */
  released = false;

  constructor(
    /** Bytes available to tensors over this storage (the buffer's size for pooled buffers). */
    readonly bytes: number,
    readonly transient: boolean,
    buffer: GPUBuffer | null,
    readonly label: string,
    /** Bytes of the tensor the storage was made for; views covering fewer bytes bind only their range. */
    readonly dataBytes = bytes,
  ) {
    this.buffer = buffer;
  }
}

/**
 * An f32 tensor: a shape over (a slice of) a {@link TensorStorage}, NCHW for images. The tensor owns
 * its storage unless it was created as a view (`reshape`, `view`). Using a tensor after `destroy()`
 * throws, naming the op.
 */
export class Tensor {
  readonly shape: readonly number[];
  readonly size: number;
  readonly storage: TensorStorage;
  private alive = true;

  constructor(
    readonly ctx: GpuContext,
    shape: readonly number[],
    storage: GPUBuffer | TensorStorage,
    readonly label: string,
    private readonly owned = true,
    /** Byte offset of this tensor inside its storage (views into a larger tensor). */
    readonly byteOffset = 0,
  ) {
    for (const d of shape) {
      if (!Number.isInteger(d) || d < 0) throw new ShapeError(`Tensor(${label})`, 'dimension', 'a non-negative integer', d);
    }
    this.shape = Object.freeze([...shape]);
    this.size = numel(shape);
    this.storage = storage instanceof TensorStorage ? storage : new TensorStorage(storage.size, false, storage, label, Math.max(numel(shape) * 4, 4));
    if (this.storage.bytes < byteOffset + this.size * 4) {
      throw new ShapeError(`Tensor(${label})`, 'storage bytes', `>= ${byteOffset + this.size * 4}`, this.storage.bytes);
    }
  }

  get destroyed(): boolean {
    return !this.alive || this.storage.released;
  }

  /** Whether the tensor's memory is assigned (false for a transient whose graph is not planned yet). */
  get placed(): boolean {
    return this.storage.buffer !== null;
  }

  /** The GPUBuffer holding the tensor (at byte `offset`); throws if destroyed or not yet planned. */
  get buffer(): GPUBuffer {
    if (this.destroyed) throw new Pix2PixError(this.label, 'tensor used after destroy()');
    const b = this.storage.buffer;
    if (!b) throw new Pix2PixError(this.label, 'transient tensor has no memory yet: plan its graph with planMemory() before use');
    return b;
  }

  /** Byte offset of the tensor's first element inside `buffer`. */
  get offset(): number {
    return this.storage.offset + this.byteOffset;
  }

  /** Byte size of the tensor's data (may be less than the buffer's size when pooled). */
  get byteLength(): number {
    return this.size * 4;
  }

  /** Whether the tensor covers its whole storage (not a narrower view). */
  get whole(): boolean {
    return this.byteOffset === 0 && Math.max(this.byteLength, 4) >= this.storage.dataBytes;
  }

  /** Whether two tensors may share bytes (same storage, overlapping byte ranges, or the same planned memory). */
  overlaps(other: Tensor): boolean {
    const a0 = this.offset;
    const b0 = other.offset;
    const sameMemory = this.storage === other.storage || (this.storage.buffer !== null && this.storage.buffer === other.storage.buffer);
    if (!sameMemory) return false;
    return a0 < b0 + Math.max(other.byteLength, 1) && b0 < a0 + Math.max(this.byteLength, 1);
  }

  /** Copy data from the CPU into the tensor. */
  write(data: ArrayLike<number>): this {
    if (data.length !== this.size) throw new ShapeError(`${this.label}.write`, 'data length', this.size, data.length);
    const f32 = data instanceof Float32Array ? data : Float32Array.from(data as ArrayLike<number>);
    this.ctx.device.queue.writeBuffer(this.buffer, this.offset, f32.buffer, f32.byteOffset, this.size * 4);
    return this;
  }

  /** Read the tensor back to the CPU. */
  read(): Promise<Float32Array> {
    return this.ctx.read(this);
  }

  /** A tensor with another shape over the same memory (no copy); the view does not own it. */
  reshape(shape: readonly number[], label = this.label): Tensor {
    const n = numel(shape);
    if (n !== this.size) throw new ShapeError(`${this.label}.reshape`, 'element count', this.size, n);
    return new Tensor(this.ctx, shape, this.storage, label, false, this.byteOffset);
  }

  /**
   * A view of `shape` starting `elementOffset` elements into this tensor (no copy, not owned). The
   * U-Net's skip blocks use channel slices of batch-1 maps so that producers write straight into the
   * concatenated buffer.
   */
  view(shape: readonly number[], elementOffset: number, label = this.label): Tensor {
    const n = numel(shape);
    if (!Number.isInteger(elementOffset) || elementOffset < 0 || elementOffset + n > this.size) {
      throw new ShapeError(`${this.label}.view`, 'view range (elements)', `within [0, ${this.size})`, `[${elementOffset}, ${elementOffset + n})`);
    }
    return new Tensor(this.ctx, shape, this.storage, label, false, this.byteOffset + elementOffset * 4);
  }

  /**
   * Release the GPU memory: returned to the context's pool for reuse (or, with `pool: false`, freed
   * now), or left to its memory plan for transients. Idempotent.
   */
  destroy(opts: { pool?: boolean } = {}): void {
    if (!this.alive) return;
    this.alive = false;
    if (this.owned && !this.storage.transient && this.storage.buffer) {
      if (opts.pool ?? true) this.ctx.releaseBuffer(this.storage.buffer);
      else this.ctx.freeBuffer(this.storage.buffer);
      this.storage.buffer = null;
      this.storage.released = true;
    }
  }
}
