import type { GpuContext } from './context.js';
import { Pix2PixError, ShapeError } from './errors.js';

/** Number of elements of a shape. */
export function numel(shape: readonly number[]): number {
  let n = 1;
  for (const d of shape) n *= d;
  return n;
}

/**
 * An f32 tensor living in one GPUBuffer, NCHW for images. The tensor owns its buffer unless it was
 * created as a view with `owned = false`. Using a tensor after `destroy()` throws, naming the op.
 */
export class Tensor {
  readonly shape: readonly number[];
  readonly size: number;
  private _buffer: GPUBuffer | null;

  constructor(
    readonly ctx: GpuContext,
    shape: readonly number[],
    buffer: GPUBuffer,
    readonly label: string,
    private readonly owned = true,
  ) {
    for (const d of shape) {
      if (!Number.isInteger(d) || d < 0) throw new ShapeError(`Tensor(${label})`, 'dimension', 'a non-negative integer', d);
    }
    this.shape = Object.freeze([...shape]);
    this.size = numel(shape);
    if (buffer.size < this.size * 4) {
      throw new ShapeError(`Tensor(${label})`, 'buffer bytes', `>= ${this.size * 4}`, buffer.size);
    }
    this._buffer = buffer;
  }

  get destroyed(): boolean {
    return this._buffer === null;
  }

  /** The GPUBuffer; throws if the tensor was destroyed. */
  get buffer(): GPUBuffer {
    if (!this._buffer) throw new Pix2PixError(this.label, 'tensor used after destroy()');
    return this._buffer;
  }

  /** Byte size of the tensor's data (may be less than the buffer's size when pooled). */
  get byteLength(): number {
    return this.size * 4;
  }

  /** Copy data from the CPU into the tensor. */
  write(data: ArrayLike<number>): this {
    if (data.length !== this.size) throw new ShapeError(`${this.label}.write`, 'data length', this.size, data.length);
    const f32 = data instanceof Float32Array ? data : Float32Array.from(data as ArrayLike<number>);
    this.ctx.device.queue.writeBuffer(this.buffer, 0, f32.buffer, f32.byteOffset, this.size * 4);
    return this;
  }

  /** Read the tensor back to the CPU. */
  read(): Promise<Float32Array> {
    return this.ctx.read(this);
  }

  /** A tensor with another shape over the same buffer (no copy); the view does not own the buffer. */
  reshape(shape: readonly number[], label = this.label): Tensor {
    const n = numel(shape);
    if (n !== this.size) throw new ShapeError(`${this.label}.reshape`, 'element count', this.size, n);
    return new Tensor(this.ctx, shape, this.buffer, label, false);
  }

  /** Release the GPU memory (returned to the context's pool for reuse). Idempotent. */
  destroy(): void {
    if (!this._buffer) return;
    if (this.owned) this.ctx.releaseBuffer(this._buffer);
    this._buffer = null;
  }
}
