/**
 * The in-memory form every checkpoint reader returns, and the dtype decoding they share.
 * Browser-safe: no Node imports.
 */

/** One tensor of a checkpoint: its shape, its values as f32 (contiguous, row-major) and the dtype it was stored in. */
export interface StateDictEntry {
  shape: number[];
  data: Float32Array;
  /** The dtype in the file, spelled as safetensors does: 'F32', 'F16', 'BF16', 'F64', 'I64', 'I32', 'I16', 'I8', 'U8', 'BOOL'. */
  dtype: string;
}

/** One tensor of a checkpoint as listed before any of its data is read: its key, shape and stored dtype. */
export interface TensorListing {
  key: string;
  shape: number[];
  dtype: string;
}

/** Named tensors in file order (a Map keeps insertion order, also for keys that look like integers). */
export type StateDict = Map<string, StateDictEntry>;

/** Bytes per element of each dtype we can decode. */
export const DTYPE_SIZES: Readonly<Record<string, number>> = {
  F32: 4,
  F16: 2,
  BF16: 2,
  F64: 8,
  I64: 8,
  I32: 4,
  I16: 2,
  I8: 1,
  U8: 1,
  BOOL: 1,
};

/** Number of elements of a shape (1 for a scalar). */
export function numelOf(shape: readonly number[]): number {
  let n = 1;
  for (const d of shape) n *= d;
  return n;
}

/** WebGPU platforms are little-endian, but stay correct elsewhere. */
export const HOST_LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

/**
 * Decode `count` elements of `dtype` starting at byte `byteOffset` of `bytes` into a new Float32Array.
 * The caller has checked that the range lies inside `bytes`. I64 values beyond 2^24 round to the
 * nearest f32, as `tensor.float()` does.
 */
export function decodeToFloat32(
  bytes: Uint8Array,
  byteOffset: number,
  count: number,
  dtype: string,
  littleEndian = true,
): Float32Array {
  if (dtype === 'F32' && littleEndian === HOST_LITTLE_ENDIAN) {
    // One copy into an aligned buffer of its own, whatever the offset into the file. Not bytes.slice(): on a
    // Node Buffer (a Uint8Array whose slice() is a view) its .buffer is the whole file or Node's shared pool.
    const out = new Float32Array(count);
    new Uint8Array(out.buffer).set(bytes.subarray(byteOffset, byteOffset + count * 4));
    return out;
  }
  const out = new Float32Array(count);
  const size = DTYPE_SIZES[dtype];
  const view = new DataView(bytes.buffer, bytes.byteOffset + byteOffset, count * size);
  const le = littleEndian;
  switch (dtype) {
    case 'F32':
      for (let i = 0; i < count; i++) out[i] = view.getFloat32(i * 4, le);
      break;
    case 'F16':
      for (let i = 0; i < count; i++) out[i] = halfToFloat(view.getUint16(i * 2, le));
      break;
    case 'BF16': {
      // bfloat16 is the top half of an f32: shift its bits up and reinterpret.
      const bits = new Uint32Array(out.buffer);
      for (let i = 0; i < count; i++) bits[i] = view.getUint16(i * 2, le) << 16;
      break;
    }
    case 'F64':
      for (let i = 0; i < count; i++) out[i] = view.getFloat64(i * 8, le);
      break;
    case 'I64':
      for (let i = 0; i < count; i++) {
        const lo = view.getUint32(i * 8 + (le ? 0 : 4), le);
        const hi = view.getInt32(i * 8 + (le ? 4 : 0), le);
        out[i] = hi * 4294967296 + lo;
      }
      break;
    case 'I32':
      for (let i = 0; i < count; i++) out[i] = view.getInt32(i * 4, le);
      break;
    case 'I16':
      for (let i = 0; i < count; i++) out[i] = view.getInt16(i * 2, le);
      break;
    case 'I8':
      for (let i = 0; i < count; i++) out[i] = view.getInt8(i);
      break;
    case 'U8':
    case 'BOOL':
      for (let i = 0; i < count; i++) out[i] = view.getUint8(i);
      break;
    default:
      throw new Error(`decodeToFloat32: unknown dtype ${dtype}`);
  }
  return out;
}

/** IEEE 754 binary16 → number (subnormals, infinities and NaN included). */
export function halfToFloat(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const exp = (h >> 10) & 0x1f;
  const frac = h & 0x3ff;
  if (exp === 0) return sign * frac * 2 ** -24;
  if (exp === 31) return frac ? NaN : sign * Infinity;
  return sign * (1 + frac / 1024) * 2 ** (exp - 15);
}
