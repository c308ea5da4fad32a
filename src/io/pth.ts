/**
 * PyTorch checkpoints (torch.save) → StateDict, in both formats torch has written:
 *  (a) zip (torch >= 1.6): `<prefix>/data.pkl` is the object pickle whose persistent ids
 *      ('storage', storage_type, key, location, numel) name raw storages `<prefix>/data/<key>`;
 *      `<prefix>/byteorder` ('little' / 'big') exists from torch 2.1 on, little before.
 *  (b) legacy (torch < 1.6, or `_use_new_zipfile_serialization=False`): a run of pickles
 *      (magic number, protocol version, sys_info, the object with persistent ids
 *      ('storage', storage_type, root_key, location, numel, view_metadata), the sorted storage
 *      keys) followed, per key, by an i64 element count and the storage's raw bytes.
 * See torch/serialization.py (_save, _legacy_save, _load, _legacy_load). Only tensors and
 * (ordered) dicts are unpickled, through the safe unpickler in ./pickle.ts.
 * Browser-safe: no Node imports.
 */
import { FileFormatError } from '../runtime/errors.js';
import { PickleGlobal, STORAGE_DTYPES, StorageRef, TensorRef, unpickle, type PickleValue } from './pickle.js';
import { DTYPE_SIZES, decodeToFloat32, numelOf, type StateDict } from './state_dict.js';
import { isZip, readZip } from './zip.js';

export type { StateDict, StateDictEntry } from './state_dict.js';

/** torch.serialization.MAGIC_NUMBER, the first pickle of a legacy checkpoint. */
const LEGACY_MAGIC = 0x1950a86a20f9469cfc6cn;
/** torch.serialization.PROTOCOL_VERSION. */
const LEGACY_PROTOCOL = 1001;

/** Keys under which training checkpoints commonly wrap their state dict (tried in this order). */
const WRAPPER_KEYS = ['state_dict', 'model', 'model_state_dict'];

/** Where a storage's bytes are: a region of the file and how to read it. */
interface StorageBytes {
  bytes: Uint8Array;
  littleEndian: boolean;
}

/**
 * Load a `.pth` / `.pt` checkpoint (zip or legacy format) as a StateDict: tensors as contiguous f32
 * (float16/bfloat16/float64/int64 storages converted, strides and storage offsets applied) in the
 * order the file holds them. A dict wrapping the state dict is unwrapped when it has a
 * 'state_dict' or 'model' entry and no tensors of its own; otherwise nested dicts and lists are
 * flattened to dotted keys ('generator.0.weight'). Non-tensor leaves (epoch, lr, ...) are skipped.
 * Throws FileFormatError naming `fileName` for a corrupt or truncated file, and for a pickle that
 * names any global besides tensors and ordered dicts (it is never executed).
 */
export async function loadPth(bytes: Uint8Array, fileName = 'pth'): Promise<StateDict> {
  try {
    const { root, storages } = isZip(bytes) ? await readZipCheckpoint(bytes, fileName) : readLegacyCheckpoint(bytes, fileName);
    return materialize(root, storages, fileName);
  } catch (e) {
    if (e instanceof FileFormatError) throw e;
    // A bounds check we did not foresee (DataView RangeError, ...) still names the file.
    throw new FileFormatError(fileName, `corrupt checkpoint: ${(e as Error).message}`);
  }
}

/** True if `bytes` looks like a torch checkpoint (zip archive or a legacy pickle stream). */
export function isPth(bytes: Uint8Array): boolean {
  return isZip(bytes) || (bytes.length >= 2 && bytes[0] === 0x80 && bytes[1] >= 2 && bytes[1] <= 5);
}

function storageType(value: PickleValue, fail: (m: string) => never): string {
  if (!(value instanceof PickleGlobal) || !(value.qualifiedName in STORAGE_DTYPES)) {
    fail(`persistent id names storage type ${value instanceof PickleGlobal ? value.qualifiedName : typeof value}, not a torch storage class`);
  }
  return STORAGE_DTYPES[(value as PickleGlobal).qualifiedName];
}

function isCount(v: PickleValue): v is number {
  return typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;
}

async function readZipCheckpoint(bytes: Uint8Array, fileName: string) {
  const fail = (message: string): never => {
    throw new FileFormatError(fileName, message);
  };
  const entries = await readZip(bytes, fileName);
  const pickles = [...entries.keys()].filter((n) => n === 'data.pkl' || n.endsWith('/data.pkl'));
  if (pickles.length !== 1) {
    fail(`expected one '<archive>/data.pkl' entry in the zip, found ${pickles.length} (is this a torch checkpoint?)`);
  }
  const pklName = pickles[0];
  const prefix = pklName.slice(0, pklName.length - 'data.pkl'.length);
  const order = entries.get(`${prefix}byteorder`);
  const byteorder = order ? new TextDecoder().decode(order).trim() : 'little';
  if (byteorder !== 'little' && byteorder !== 'big') fail(`entry '${prefix}byteorder' says '${byteorder}', expected 'little' or 'big'`);
  const littleEndian = byteorder === 'little';

  const storages = new Map<string, StorageBytes>();
  const refs = new Map<string, StorageRef>();
  const persistentLoad = (pid: PickleValue): PickleValue => {
    const bad = (m: string): never => fail(`${pklName}: ${m}`);
    if (!Array.isArray(pid) || pid.length !== 5 || pid[0] !== 'storage') {
      bad(`persistent id must be ('storage', type, key, location, numel), found a ${Array.isArray(pid) ? `${pid.length}-tuple` : typeof pid}`);
    }
    const [, type, key, , numel] = pid as PickleValue[];
    const dtype = storageType(type, bad);
    if (typeof key !== 'string' || !isCount(numel)) bad('persistent id has a bad storage key or size');
    const k = key as string;
    const known = refs.get(k);
    if (known) {
      if (known.dtype !== dtype) bad(`storage '${k}' is used as both ${known.dtype} and ${dtype}`);
      return known;
    }
    const entryName = `${prefix}data/${k}`;
    const data = entries.get(entryName);
    if (!data) bad(`storage entry '${entryName}' is missing from the zip`);
    const needed = (numel as number) * DTYPE_SIZES[dtype];
    if (data!.length < needed) bad(`storage entry '${entryName}' holds ${data!.length} bytes, expected ${needed} (${numel} × ${dtype})`);
    storages.set(k, { bytes: data!, littleEndian });
    const ref = new StorageRef(k, dtype, numel as number);
    refs.set(k, ref);
    return ref;
  };
  const { value } = unpickle(entries.get(pklName)!, fileName, { persistentLoad, where: pklName });
  return { root: value, storages };
}

function readLegacyCheckpoint(bytes: Uint8Array, fileName: string) {
  const fail = (message: string): never => {
    throw new FileFormatError(fileName, message);
  };
  if (bytes.length >= 262 && new TextDecoder().decode(bytes.subarray(257, 262)) === 'ustar') {
    fail('tar-format checkpoints (torch < 0.4) are not supported; re-save it with a recent torch');
  }
  if (!isPth(bytes)) fail('not a torch checkpoint: expected a zip archive or a pickle (starts with 0x80)');

  const magic = unpickle(bytes, fileName, { where: 'legacy magic number' });
  if (magic.value !== LEGACY_MAGIC) fail(`legacy checkpoint magic number is ${String(magic.value)}, expected ${LEGACY_MAGIC}`);
  const protocol = unpickle(bytes, fileName, { offset: magic.end, where: 'legacy protocol version' });
  if (protocol.value !== LEGACY_PROTOCOL) fail(`legacy protocol version is ${String(protocol.value)}, expected ${LEGACY_PROTOCOL}`);
  const sysInfo = unpickle(bytes, fileName, { offset: protocol.end, where: 'legacy sys_info' });
  if (!(sysInfo.value instanceof Map)) fail('legacy sys_info is not a dict');
  const littleEndian = (sysInfo.value as Map<PickleValue, PickleValue>).get('little_endian') !== false;

  // Root storages by key (dtype and element count); views of them come back as offset StorageRefs.
  const roots = new Map<string, StorageRef>();
  const views = new Map<string, StorageRef>();
  const persistentLoad = (pid: PickleValue): PickleValue => {
    const bad = (m: string): never => fail(`legacy object pickle: ${m}`);
    if (!Array.isArray(pid) || pid.length !== 6 || pid[0] !== 'storage') {
      bad(`persistent id must be ('storage', type, key, location, numel, view_metadata), found a ${Array.isArray(pid) ? `${pid.length}-tuple` : typeof pid}`);
    }
    const [, type, key, , numel, viewMetadata] = pid as PickleValue[];
    const dtype = storageType(type, bad);
    if (typeof key !== 'string' || !isCount(numel)) bad('persistent id has a bad storage key or size');
    let root = roots.get(key as string);
    if (!root) {
      root = new StorageRef(key as string, dtype, numel as number);
      roots.set(key as string, root);
    } else if (root.dtype !== dtype) {
      bad(`storage '${key}' is used as both ${root.dtype} and ${dtype}`);
    }
    if (viewMetadata === null) return root;
    // (view_key, offset, view_size), in elements (torch < 1.0 storage views).
    if (!Array.isArray(viewMetadata) || viewMetadata.length !== 3) bad('view metadata must be (view_key, offset, size)');
    const [viewKey, offset, size] = viewMetadata as PickleValue[];
    if (typeof viewKey !== 'string' || !isCount(offset) || !isCount(size)) bad('view metadata has a bad key, offset or size');
    if ((offset as number) + (size as number) > root.numel) bad(`storage view '${viewKey}' [${offset}, +${size}) exceeds storage '${key}' of ${root.numel} elements`);
    let v = views.get(viewKey as string);
    if (!v) {
      v = new StorageRef(key as string, dtype, size as number, offset as number);
      views.set(viewKey as string, v);
    }
    return v;
  };
  const object = unpickle(bytes, fileName, { offset: sysInfo.end, persistentLoad, where: 'legacy object pickle' });
  const keysPickle = unpickle(bytes, fileName, { offset: object.end, where: 'legacy storage key list' });
  const keys = keysPickle.value;
  if (!Array.isArray(keys) || !keys.every((k) => typeof k === 'string')) fail('legacy storage key list is not a list of strings');

  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const storages = new Map<string, StorageBytes>();
  let at = keysPickle.end;
  for (const key of keys as string[]) {
    const root = roots.get(key);
    if (!root) fail(`legacy storage '${key}' is listed but no tensor uses it`);
    if (at + 8 > bytes.length) fail(`truncated: storage '${key}' header at byte ${at} is beyond the ${bytes.length}-byte file`);
    const count = view.getBigInt64(at, littleEndian);
    if (count !== BigInt(root!.numel)) fail(`storage '${key}' holds ${count} elements at byte ${at}, expected ${root!.numel}`);
    const start = at + 8;
    const end = start + root!.numel * DTYPE_SIZES[root!.dtype];
    if (end > bytes.length) fail(`truncated: storage '${key}' needs bytes [${start}, ${end}) of a ${bytes.length}-byte file`);
    storages.set(key, { bytes: bytes.subarray(start, end), littleEndian });
    at = end;
  }
  for (const key of roots.keys()) if (!storages.has(key)) fail(`storage '${key}' is used but its data is missing`);
  return { root: object.value, storages };
}

/**
 * Tensor leaves of the unpickled object, with dotted keys, in pickle order. Containers on the
 * current path are skipped when met again: memo references can make a pickle cyclic.
 */
function collectTensors(value: PickleValue, prefix: string, out: [string, TensorRef][], path = new Set<PickleValue>()): void {
  if (value instanceof TensorRef) {
    out.push([prefix, value]);
    return;
  }
  if (!(value instanceof Map) && !Array.isArray(value)) return;
  if (path.has(value)) return;
  path.add(value);
  if (value instanceof Map) {
    for (const [k, v] of value) {
      if (typeof k !== 'string' && typeof k !== 'number' && typeof k !== 'bigint') continue;
      collectTensors(v, prefix ? `${prefix}.${k}` : String(k), out, path);
    }
  } else {
    value.forEach((v, i) => collectTensors(v, prefix ? `${prefix}.${i}` : String(i), out, path));
  }
  path.delete(value);
}

function unwrap(root: PickleValue): PickleValue {
  if (!(root instanceof Map)) return root;
  for (const v of root.values()) if (v instanceof TensorRef) return root;
  for (const key of WRAPPER_KEYS) {
    const inner = root.get(key);
    if (inner instanceof Map) {
      const found: [string, TensorRef][] = [];
      collectTensors(inner, '', found);
      if (found.length > 0) return inner;
    }
  }
  return root;
}

function materialize(root: PickleValue, storages: Map<string, StorageBytes>, fileName: string): StateDict {
  const fail = (message: string): never => {
    throw new FileFormatError(fileName, message);
  };
  const leaves: [string, TensorRef][] = [];
  collectTensors(unwrap(root), '', leaves);
  if (leaves.length === 0) fail('checkpoint holds no tensors');
  const decoded = new Map<string, Float32Array>();
  const out: StateDict = new Map();
  for (const [rawName, ref] of leaves) {
    const name = rawName || 'tensor';
    if (out.has(name)) fail(`tensor name '${name}' occurs twice after flattening`);
    const { storage, shape, stride } = ref;
    const src = storages.get(storage.key);
    if (!src) fail(`tensor '${name}': storage '${storage.key}' has no data`);
    const count = numelOf(shape);
    let last = ref.storageOffset;
    for (let d = 0; d < shape.length; d++) if (shape[d] > 0) last += (shape[d] - 1) * stride[d];
    if (count > 0 && last >= storage.numel) {
      fail(`tensor '${name}': shape [${shape.join(', ')}], stride [${stride.join(', ')}] and offset ${ref.storageOffset} reach element ${last}, but its ${storage.dtype} storage '${storage.key}' has ${storage.numel}`);
    }
    const base = storage.elementOffset + ref.storageOffset;
    const size = DTYPE_SIZES[storage.dtype];
    let data: Float32Array;
    if (isContiguous(shape, stride)) {
      data = decodeToFloat32(src!.bytes, base * size, count, storage.dtype, src!.littleEndian);
    } else {
      const cacheKey = `${storage.key}@${storage.elementOffset}`;
      let all = decoded.get(cacheKey);
      if (!all) {
        all = decodeToFloat32(src!.bytes, storage.elementOffset * size, storage.numel, storage.dtype, src!.littleEndian);
        decoded.set(cacheKey, all);
      }
      data = gather(all, ref.storageOffset, shape, stride);
    }
    out.set(name, { shape: shape.slice(), data, dtype: storage.dtype });
  }
  return out;
}

function isContiguous(shape: number[], stride: number[]): boolean {
  let expected = 1;
  for (let d = shape.length - 1; d >= 0; d--) {
    if (shape[d] !== 1 && stride[d] !== expected) return false;
    expected *= shape[d];
  }
  return true;
}

/** Copy a strided view into a new contiguous row-major array. */
function gather(src: Float32Array, offset: number, shape: number[], stride: number[]): Float32Array {
  const count = numelOf(shape);
  const out = new Float32Array(count);
  if (count === 0) return out;
  const nd = shape.length;
  const index = new Array<number>(nd).fill(0);
  let at = offset;
  for (let i = 0; i < count; i++) {
    out[i] = src[at];
    // Odometer increment over the multi-index, innermost dimension first.
    for (let d = nd - 1; d >= 0; d--) {
      index[d]++;
      at += stride[d];
      if (index[d] < shape[d]) break;
      at -= stride[d] * shape[d];
      index[d] = 0;
    }
  }
  return out;
}
