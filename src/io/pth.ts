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
 *
 * Tensors are views on storages: the pickle is read first, the tensors a caller wants are chosen
 * (`keep`), each view is checked against its storage (in range; not repeating more of it than the
 * read budget allows, as a stride-0 expand does) and only then are the storages it needs read
 * (and, in a zip, inflated) and the views copied out.
 * Browser-safe: no Node imports.
 */
import { FileFormatError, quoteUntrusted } from '../runtime/errors.js';
import { overBudget, resolveBudget, type ReadBudget, type ReaderOptions } from './budget.js';
import { PickleGlobal, STORAGE_DTYPES, StorageRef, TensorRef, unpickle, type PickleValue } from './pickle.js';
import { DTYPE_SIZES, decodeToFloat32, numelOf, type StateDict, type TensorListing } from './state_dict.js';
import { isZip, openZip } from './zip.js';

export type { StateDict, StateDictEntry, TensorListing } from './state_dict.js';

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

/** Options of {@link loadPth}. */
export interface PthOptions extends ReaderOptions {
  /**
   * Which tensors to materialise, by their (flattened, dotted) key: only those for which it returns
   * true are checked, read and copied. The others cost nothing beyond the pickle. Default: all.
   */
  keep?: (key: string) => boolean;
}

/**
 * A torch checkpoint whose pickle has been read once: its tensors listed (key, shape, dtype; file order)
 * and `read(keep)` materialising only the tensors `keep` selects. A caller that must look at shapes before
 * choosing (architecture inference) pays for one unpickling, not one per decision.
 */
export interface OpenedPth {
  tensors: TensorListing[];
  /** Check, read and copy the kept tensors (views checked against their storages before any storage is read). */
  read(keep?: (key: string) => boolean): Promise<StateDict>;
}

/**
 * Load a `.pth` / `.pt` checkpoint (zip or legacy format) as a StateDict: tensors as contiguous f32
 * (float16/bfloat16/float64/int64 storages converted, strides and storage offsets applied) in the
 * order the file holds them. A dict wrapping the state dict is unwrapped when it has a
 * 'state_dict' or 'model' entry and no tensors of its own; otherwise nested dicts and lists are
 * flattened to dotted keys ('generator.0.weight'). Non-tensor leaves (epoch, lr, ...) are skipped.
 * Throws FileFormatError naming `fileName` for a corrupt or truncated file, for a pickle that
 * names any global besides tensors and ordered dicts (it is never executed), and for anything
 * beyond the read budget (see ./budget.ts).
 */
export async function loadPth(bytes: Uint8Array, fileName = 'pth', options: PthOptions = {}): Promise<StateDict> {
  return (await openPth(bytes, fileName, options)).read(options.keep);
}

/**
 * Read a checkpoint's pickle (once) and list its tensors; {@link OpenedPth.read} then materialises the
 * ones wanted. Errors as {@link loadPth}'s, each naming `fileName`.
 */
export async function openPth(bytes: Uint8Array, fileName = 'pth', options: ReaderOptions = {}): Promise<OpenedPth> {
  const budget = resolveBudget(options.budget);
  const named = <T>(run: () => Promise<T>) => run().catch((e: unknown) => {
    if (e instanceof FileFormatError) throw e;
    // A bounds check we did not foresee (DataView RangeError, ...) still names the file.
    throw new FileFormatError(fileName, `corrupt checkpoint: ${quoteUntrusted(String((e as Error)?.message ?? e), 200)}`);
  });
  const { leaves, storage } = await named(async () => {
    const { root, storage } = isZip(bytes) ? await readZipCheckpoint(bytes, fileName, budget) : readLegacyCheckpoint(bytes, fileName, budget);
    return { leaves: tensorLeaves(root, fileName, budget), storage };
  });
  return {
    tensors: leaves.map(([key, ref]) => ({ key, shape: ref.shape.slice(), dtype: ref.storage.dtype })),
    read: (keep = () => true) => named(() => materialize(leaves, storage, fileName, budget, keep)),
  };
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

/** Reads the bytes of one storage (by key), on demand. */
type StorageSource = (key: string) => Promise<StorageBytes>;

async function readZipCheckpoint(bytes: Uint8Array, fileName: string, budget: ReadBudget): Promise<{ root: PickleValue; storage: StorageSource }> {
  const fail = (message: string): never => {
    throw new FileFormatError(fileName, message);
  };
  const archive = openZip(bytes, fileName, { budget });
  const pickles = archive.entries.map((e) => e.name).filter((n) => n === 'data.pkl' || n.endsWith('/data.pkl'));
  if (pickles.length !== 1) {
    fail(`expected one '<archive>/data.pkl' entry in the zip, found ${pickles.length} (is this a torch checkpoint?)`);
  }
  const pklName = pickles[0];
  const prefix = pklName.slice(0, pklName.length - 'data.pkl'.length);
  const orderEntry = archive.get(`${prefix}byteorder`);
  if (orderEntry && orderEntry.size > 16) fail(`entry ${quoteUntrusted(orderEntry.name)} is ${orderEntry.size} bytes, expected 'little' or 'big'`);
  const order = orderEntry ? await archive.read(orderEntry.name) : undefined;
  const byteorder = order ? new TextDecoder().decode(order).trim() : 'little';
  if (byteorder !== 'little' && byteorder !== 'big') fail(`entry ${quoteUntrusted(`${prefix}byteorder`)} says ${quoteUntrusted(byteorder, 20)}, expected 'little' or 'big'`);
  const littleEndian = byteorder === 'little';

  const refs = new Map<string, StorageRef>();
  const persistentLoad = (pid: PickleValue): PickleValue => {
    const bad = (m: string): never => fail(`${quoteUntrusted(pklName)}: ${m}`);
    if (!Array.isArray(pid) || pid.length !== 5 || pid[0] !== 'storage') {
      bad(`persistent id must be ('storage', type, key, location, numel), found a ${Array.isArray(pid) ? `${pid.length}-tuple` : typeof pid}`);
    }
    const [, type, key, , numel] = pid as PickleValue[];
    const dtype = storageType(type, bad);
    if (typeof key !== 'string' || !isCount(numel)) bad('persistent id has a bad storage key or size');
    const k = key as string;
    const known = refs.get(k);
    if (known) {
      if (known.dtype !== dtype) bad(`storage ${quoteUntrusted(k)} is used as both ${known.dtype} and ${dtype}`);
      return known;
    }
    const entry = archive.get(`${prefix}data/${k}`);
    if (!entry) bad(`storage entry ${quoteUntrusted(`${prefix}data/${k}`)} is missing from the zip`);
    // The directory's declared size is checked now; the bytes are read only if a kept tensor needs them.
    const needed = (numel as number) * DTYPE_SIZES[dtype];
    if (entry!.size < needed) bad(`storage entry ${quoteUntrusted(entry!.name)} holds ${entry!.size} bytes, expected ${needed} (${numel} × ${dtype})`);
    const ref = new StorageRef(k, dtype, numel as number);
    refs.set(k, ref);
    return ref;
  };
  const { value } = unpickle(await archive.read(pklName), fileName, { persistentLoad, where: pklName, budget });
  const storage: StorageSource = async (key) => ({ bytes: await archive.read(`${prefix}data/${key}`), littleEndian });
  return { root: value, storage };
}

function readLegacyCheckpoint(bytes: Uint8Array, fileName: string, budget: ReadBudget): { root: PickleValue; storage: StorageSource } {
  const fail = (message: string): never => {
    throw new FileFormatError(fileName, message);
  };
  if (bytes.length >= 262 && new TextDecoder().decode(bytes.subarray(257, 262)) === 'ustar') {
    fail('tar-format checkpoints (torch < 0.4) are not supported; re-save it with a recent torch');
  }
  if (!isPth(bytes)) fail('not a torch checkpoint: expected a zip archive or a pickle (starts with 0x80)');

  const magic = unpickle(bytes, fileName, { where: 'legacy magic number', budget });
  if (magic.value !== LEGACY_MAGIC) fail(`legacy checkpoint magic number is ${quoteUntrusted(String(magic.value), 40)}, expected ${LEGACY_MAGIC}`);
  const protocol = unpickle(bytes, fileName, { offset: magic.end, where: 'legacy protocol version', budget });
  if (protocol.value !== LEGACY_PROTOCOL) fail(`legacy protocol version is ${quoteUntrusted(String(protocol.value), 40)}, expected ${LEGACY_PROTOCOL}`);
  const sysInfo = unpickle(bytes, fileName, { offset: protocol.end, where: 'legacy sys_info', budget });
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
      bad(`storage ${quoteUntrusted(key as string)} is used as both ${root.dtype} and ${dtype}`);
    }
    if (viewMetadata === null) return root;
    // (view_key, offset, view_size), in elements (torch < 1.0 storage views).
    if (!Array.isArray(viewMetadata) || viewMetadata.length !== 3) bad('view metadata must be (view_key, offset, size)');
    const [viewKey, offset, size] = viewMetadata as PickleValue[];
    if (typeof viewKey !== 'string' || !isCount(offset) || !isCount(size)) bad('view metadata has a bad key, offset or size');
    if ((offset as number) + (size as number) > root.numel) bad(`storage view ${quoteUntrusted(viewKey as string)} [${offset}, +${size}) exceeds storage ${quoteUntrusted(key as string)} of ${root.numel} elements`);
    let v = views.get(viewKey as string);
    if (!v) {
      v = new StorageRef(key as string, dtype, size as number, offset as number);
      views.set(viewKey as string, v);
    }
    return v;
  };
  const object = unpickle(bytes, fileName, { offset: sysInfo.end, persistentLoad, where: 'legacy object pickle', budget });
  const keysPickle = unpickle(bytes, fileName, { offset: object.end, where: 'legacy storage key list', budget });
  const keys = keysPickle.value;
  if (!Array.isArray(keys) || !keys.every((k) => typeof k === 'string')) fail('legacy storage key list is not a list of strings');

  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const storages = new Map<string, StorageBytes>();
  let at = keysPickle.end;
  for (const key of keys as string[]) {
    const root = roots.get(key);
    const q = quoteUntrusted(key);
    if (!root) fail(`legacy storage ${q} is listed but no tensor uses it`);
    if (storages.has(key)) fail(`legacy storage ${q} is listed twice`);
    if (at + 8 > bytes.length) fail(`truncated: storage ${q} header at byte ${at} is beyond the ${bytes.length}-byte file`);
    const count = view.getBigInt64(at, littleEndian);
    if (count !== BigInt(root!.numel)) fail(`storage ${q} holds ${count} elements at byte ${at}, expected ${root!.numel}`);
    const start = at + 8;
    const end = start + root!.numel * DTYPE_SIZES[root!.dtype];
    if (end > bytes.length) fail(`truncated: storage ${q} needs bytes [${start}, ${end}) of a ${bytes.length}-byte file`);
    storages.set(key, { bytes: bytes.subarray(start, end), littleEndian });
    at = end;
  }
  for (const key of roots.keys()) if (!storages.has(key)) fail(`storage ${quoteUntrusted(key)} is used but its data is missing`);
  // Views into the file: nothing is copied until a kept tensor is materialised.
  const storage: StorageSource = async (key) => storages.get(key)!;
  return { root: object.value, storage };
}

/**
 * Tensor leaves of the unpickled object, with dotted keys, in pickle order. Containers on the
 * current path are skipped when met again: memo references can make a pickle cyclic. A container
 * shared by several references is walked once per reference (its tensors get each name), so every
 * visit is charged to the object budget and the walk is bounded in depth: a small DAG that
 * would expand into an exponential tree is refused here instead.
 */
class TensorWalk {
  private visits = 0;
  constructor(
    private readonly budget: ReadBudget,
    private readonly fail: (message: string) => never,
  ) {}

  /** The tensor leaves under `value`, with their dotted names. */
  collect(value: PickleValue, prefix: string, out: [string, TensorRef][]): void {
    // Count first, cheaply (no names, nothing kept), so that an exponential DAG is refused before
    // any name is built.
    this.count(value, new Set());
    this.named(value, prefix, out, new Set());
  }

  private count(value: PickleValue, path: Set<PickleValue>): void {
    if (++this.visits > this.budget.maxPickleObjects) {
      this.fail(`flattening the pickle into named tensors meets more than ${this.budget.maxPickleObjects} objects (shared containers are counted once per reference), ${overBudget(this.budget, 'maxPickleObjects')}`);
    }
    if (!(value instanceof Map) && !Array.isArray(value)) return;
    if (path.has(value)) return;
    if (path.size >= this.budget.maxPickleDepth) this.fail(`container nesting depth over ${this.budget.maxPickleDepth}, ${overBudget(this.budget, 'maxPickleDepth')}`);
    path.add(value);
    for (const v of value.values()) this.count(v, path);
    path.delete(value);
  }

  private named(value: PickleValue, prefix: string, out: [string, TensorRef][], path: Set<PickleValue>): void {
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
        this.named(v, prefix ? `${prefix}.${k}` : String(k), out, path);
      }
    } else {
      value.forEach((v, i) => this.named(v, prefix ? `${prefix}.${i}` : String(i), out, path));
    }
    path.delete(value);
  }
}

function unwrap(root: PickleValue, walk: TensorWalk): PickleValue {
  if (!(root instanceof Map)) return root;
  for (const v of root.values()) if (v instanceof TensorRef) return root;
  for (const key of WRAPPER_KEYS) {
    const inner = root.get(key);
    if (inner instanceof Map) {
      const found: [string, TensorRef][] = [];
      walk.collect(inner, '', found);
      if (found.length > 0) return inner;
    }
  }
  return root;
}

/** The named tensor leaves of a checkpoint's object (wrapper unwrapped), each name once; refuses a file with none. */
function tensorLeaves(root: PickleValue, fileName: string, budget: ReadBudget): [string, TensorRef][] {
  const fail = (message: string): never => {
    throw new FileFormatError(fileName, message);
  };
  const walk = new TensorWalk(budget, fail);
  const raw: [string, TensorRef][] = [];
  walk.collect(unwrap(root, walk), '', raw);
  if (raw.length === 0) fail('checkpoint holds no tensors');
  const names = new Set<string>();
  return raw.map(([rawName, ref]) => {
    const name = rawName || 'tensor';
    if (names.has(name)) fail(`tensor name ${quoteUntrusted(name)} occurs twice after flattening`);
    names.add(name);
    return [name, ref];
  });
}

async function materialize(leaves: [string, TensorRef][], storage: StorageSource, fileName: string, budget: ReadBudget, keep: (key: string) => boolean): Promise<StateDict> {
  const fail = (message: string): never => {
    throw new FileFormatError(fileName, message);
  };
  // Check every kept view against its storage before reading any storage bytes.
  const kept: [string, TensorRef][] = [];
  let total = 0;
  for (const [name, ref] of leaves) {
    if (!keep(name)) continue;
    const q = quoteUntrusted(name);
    const { storage: s, shape, stride } = ref;
    const count = numelOf(shape);
    const size = DTYPE_SIZES[s.dtype];
    const layout = `shape [${shape.slice(0, 8).join(', ')}${shape.length > 8 ? ', …' : ''}], stride [${stride.slice(0, 8).join(', ')}${stride.length > 8 ? ', …' : ''}]`;
    total += count * 4;
    if (!Number.isSafeInteger(count) || total > budget.maxTensorBytes) {
      fail(`tensor ${q}: ${layout} is ${count} elements, bringing the tensors read to ${total} bytes as f32, ${overBudget(budget, 'maxTensorBytes')}`);
    }
    let last = ref.storageOffset;
    for (let d = 0; d < shape.length; d++) if (shape[d] > 0) last += (shape[d] - 1) * stride[d];
    if (count > 0 && last >= s.numel) {
      fail(`tensor ${q}: ${layout} and offset ${ref.storageOffset} reach element ${last}, but its ${s.dtype} storage ${quoteUntrusted(s.key)} has ${s.numel}`);
    }
    // A view repeating its storage's elements (stride 0, overlapping strides) is legal in torch but
    // lets a few bytes stand for gigabytes: allow only a bounded excess over the storage itself.
    const excess = (count - s.numel) * size;
    if (excess > budget.maxViewExpansionBytes) {
      fail(`tensor ${q}: ${layout} materialises ${count} elements from a storage ${quoteUntrusted(s.key)} of ${s.numel} (${excess} bytes more than the storage), ${overBudget(budget, 'maxViewExpansionBytes')}`);
    }
    kept.push([name, ref]);
  }

  const bytesOf = new Map<string, StorageBytes>();
  const decoded = new Map<string, Float32Array>();
  const out: StateDict = new Map();
  for (const [name, ref] of kept) {
    const { storage: s, shape, stride } = ref;
    let src = bytesOf.get(s.key);
    if (!src) {
      src = await storage(s.key);
      bytesOf.set(s.key, src);
    }
    const size = DTYPE_SIZES[s.dtype];
    if ((s.elementOffset + s.numel) * size > src.bytes.length) {
      fail(`tensor ${quoteUntrusted(name)}: storage ${quoteUntrusted(s.key)} holds ${src.bytes.length} bytes, expected ${(s.elementOffset + s.numel) * size}`);
    }
    const count = numelOf(shape);
    const base = s.elementOffset + ref.storageOffset;
    let data: Float32Array;
    if (isContiguous(shape, stride)) {
      data = decodeToFloat32(src.bytes, base * size, count, s.dtype, src.littleEndian);
    } else {
      const cacheKey = `${s.key}@${s.elementOffset}`;
      let all = decoded.get(cacheKey);
      if (!all) {
        all = decodeToFloat32(src.bytes, s.elementOffset * size, s.numel, s.dtype, src.littleEndian);
        decoded.set(cacheKey, all);
      }
      data = gather(all, ref.storageOffset, shape, stride);
    }
    out.set(name, { shape: shape.slice(), data, dtype: s.dtype });
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
