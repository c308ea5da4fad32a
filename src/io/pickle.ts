/**
 * A safe unpickler for the subset of Python's pickle (protocols 0-5 opcodes, as torch.save writes
 * them) that checkpoints need. It never executes anything from the file: GLOBAL / STACK_GLOBAL /
 * INST resolve only names on an allow-list (OrderedDict, torch's tensor rebuild functions, storage
 * classes), and REDUCE / NEWOBJ / OBJ / INST call only our own TypeScript stand-ins for the
 * allow-listed callables. Every other global (os.system, builtins.eval, ...) is refused at the
 * moment the pickle names it, before anything could use it. Opcode reference: CPython
 * Lib/pickletools.py. Browser-safe: no Node imports.
 */
import { FileFormatError, quoteUntrusted } from '../runtime/errors.js';
import { overBudget, resolveBudget, type ReadBudget } from './budget.js';

/** An allow-listed global, as an inert token (torch.FloatStorage, collections.OrderedDict, ...). */
export class PickleGlobal {
  constructor(
    readonly module: string,
    readonly name: string,
  ) {}
  get qualifiedName(): string {
    return `${this.module}.${this.name}`;
  }
}

/** A tensor storage named by a persistent id; its bytes live outside the pickle. */
export class StorageRef {
  constructor(
    /** The key of its bytes: `data/<key>` in a zip checkpoint, a root key in a legacy one. */
    readonly key: string,
    /** Element dtype, safetensors spelling ('F32', 'F16', 'I64', ...). */
    readonly dtype: string,
    /** Number of elements the file says the storage holds. */
    readonly numel: number,
    /** Legacy storage views: the element offset of this view into the root storage. */
    readonly elementOffset = 0,
  ) {}
}

/** A tensor rebuilt by torch._utils._rebuild_tensor_v2: a strided view into a storage. */
export class TensorRef {
  constructor(
    readonly storage: StorageRef,
    readonly storageOffset: number,
    readonly shape: number[],
    readonly stride: number[],
  ) {}
}

/** A value the unpickler can produce. Python dicts (and OrderedDicts) become Maps, tuples frozen arrays. */
export type PickleValue =
  | null
  | boolean
  | number
  | bigint
  | string
  | Uint8Array
  | PickleValue[]
  | Map<PickleValue, PickleValue>
  | Set<PickleValue>
  | PickleGlobal
  | StorageRef
  | TensorRef;

/** Storage classes torch pickles (in persistent ids), with the dtype each holds. */
export const STORAGE_DTYPES: Readonly<Record<string, string>> = {
  'torch.FloatStorage': 'F32',
  'torch.HalfStorage': 'F16',
  'torch.DoubleStorage': 'F64',
  'torch.BFloat16Storage': 'BF16',
  'torch.LongStorage': 'I64',
  'torch.IntStorage': 'I32',
  'torch.ShortStorage': 'I16',
  'torch.CharStorage': 'I8',
  'torch.ByteStorage': 'U8',
  'torch.BoolStorage': 'BOOL',
};

type Callable = (args: PickleValue[], fail: (message: string) => never) => PickleValue;

/** The only callables a pickle may invoke, each replaced by a function of ours. */
const CALLABLES: Readonly<Record<string, Callable>> = {
  'collections.OrderedDict': (args, fail) => {
    const out = new Map<PickleValue, PickleValue>();
    if (args.length === 0) return out;
    if (args.length === 1 && Array.isArray(args[0])) {
      for (const pair of args[0]) {
        if (!Array.isArray(pair) || pair.length !== 2) fail('OrderedDict() items must be (key, value) pairs');
        out.set((pair as PickleValue[])[0], (pair as PickleValue[])[1]);
      }
      return out;
    }
    return fail(`OrderedDict() called with ${args.length} unsupported arguments`);
  },
  'torch._utils._rebuild_tensor_v2': (args, fail) => {
    // (storage, storage_offset, size, stride, requires_grad, backward_hooks[, metadata])
    if (args.length < 4 || args.length > 7) fail(`_rebuild_tensor_v2 takes 6 or 7 arguments, found ${args.length}`);
    return rebuildTensor(args, fail);
  },
  'torch._utils._rebuild_tensor': (args, fail) => {
    // (storage, storage_offset, size, stride): torch < 1.0
    if (args.length !== 4) fail(`_rebuild_tensor takes 4 arguments, found ${args.length}`);
    return rebuildTensor(args, fail);
  },
  'torch._utils._rebuild_parameter': (args, fail) => {
    // (data, requires_grad, backward_hooks): a Parameter is its data here.
    if (args.length !== 3 || !(args[0] instanceof TensorRef)) fail('_rebuild_parameter expects (tensor, requires_grad, hooks)');
    return args[0];
  },
  'torch._utils._rebuild_parameter_with_state': (args, fail) => {
    // (data, requires_grad, backward_hooks, state)
    if (args.length !== 4 || !(args[0] instanceof TensorRef)) fail('_rebuild_parameter_with_state expects (tensor, requires_grad, hooks, state)');
    return args[0];
  },
};

function rebuildTensor(args: PickleValue[], fail: (message: string) => never): TensorRef {
  const [storage, offset, size, stride] = args;
  if (!(storage instanceof StorageRef)) fail('a tensor is rebuilt from something that is not a storage');
  const isInts = (v: PickleValue): v is number[] =>
    Array.isArray(v) && v.every((d) => typeof d === 'number' && Number.isSafeInteger(d) && d >= 0);
  if (typeof offset !== 'number' || !Number.isSafeInteger(offset) || offset < 0) fail(`tensor storage offset ${String(offset)} is not a non-negative integer`);
  if (!isInts(size) || !isInts(stride) || size.length !== stride.length) {
    fail(`tensor size ${fmt(size)} and stride ${fmt(stride)} must be equal-length lists of non-negative integers`);
  }
  return new TensorRef(storage as StorageRef, offset as number, (size as number[]).slice(), (stride as number[]).slice());
}

/** Names that may appear as globals: the callables above and the storage classes. */
function isAllowed(qualified: string): boolean {
  return qualified in CALLABLES || qualified in STORAGE_DTYPES;
}

/** Options of {@link unpickle}. */
export interface UnpickleOptions {
  /** Resolves BINPERSID ids (torch's storages); without it a persistent id is an error. */
  persistentLoad?: (pid: PickleValue) => PickleValue;
  /** Byte offset at which the pickle starts (legacy checkpoints hold several in a row). */
  offset?: number;
  /** Where in the file the pickle lives, added to messages (e.g. 'archive/data.pkl'). */
  where?: string;
  /** Limits on objects and nesting depth (defaults: {@link resolveBudget}). */
  budget?: Partial<ReadBudget> | ReadBudget;
}

/** Python's default limit on the digits of an int read from text (sys.int_info.default_max_str_digits). */
const MAX_INT_DIGITS = 4300;
/** Bytes of a binary long (LONG1 / LONG4): torch writes at most a 10-byte magic number. */
const MAX_LONG_BYTES = 1024;

/**
 * Unpickle one pickle from `bytes`. Returns its value and the byte offset just after its STOP.
 * Throws FileFormatError naming `fileName` for truncated or malformed data, an unsupported opcode,
 * any global outside the allow-list, or more objects or deeper nesting than the budget allows.
 * Memoised objects stay shared: a memo reference (BINGET) pushes the same object, never a copy.
 */
export function unpickle(
  bytes: Uint8Array,
  fileName: string,
  options: UnpickleOptions = {},
): { value: PickleValue; end: number } {
  const where = options.where ? ` (${options.where})` : '';
  let pos = options.offset ?? 0;
  let opStart = pos;
  const fail = (message: string): never => {
    throw new FileFormatError(fileName, `${message} at pickle byte ${opStart}${where}`);
  };
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const decoder = new TextDecoder();

  const need = (n: number, what: string): number => {
    if (n < 0 || pos + n > bytes.length) fail(`truncated: ${what} needs ${n} bytes, ${bytes.length - pos} left`);
    const at = pos;
    pos += n;
    return at;
  };
  const u8 = () => bytes[need(1, 'an argument')];
  const u16 = () => view.getUint16(need(2, 'an argument'), true);
  const u32 = () => view.getUint32(need(4, 'an argument'), true);
  const i32 = () => view.getInt32(need(4, 'an argument'), true);
  const u64 = (): number => {
    const v = view.getBigUint64(need(8, 'a length'), true);
    if (v > BigInt(bytes.length)) fail(`truncated: length ${v} exceeds the file`);
    return Number(v);
  };
  const raw = (n: number) => {
    const at = need(n, 'a string');
    return bytes.subarray(at, at + n);
  };
  const line = (): string => {
    const nl = bytes.indexOf(0x0a, pos);
    if (nl < 0) fail('truncated: missing end of line');
    const s = decoder.decode(bytes.subarray(pos, nl));
    pos = nl + 1;
    return s;
  };

  const budget = resolveBudget(options.budget);
  const stack: PickleValue[] = [];
  const marks: number[] = [];
  const memo = new Map<number, PickleValue>();
  let objects = 0;
  const push = (v: PickleValue): void => {
    if (++objects > budget.maxPickleObjects) fail(`more than ${budget.maxPickleObjects} objects, ${overBudget(budget, 'maxPickleObjects')}`);
    stack.push(v);
  };
  // Nesting depth of each container built so far (leaves are depth 0). Containers filled after
  // they were put into another one (through the memo) may make this an underestimate for the outer
  // one; the flattening walk in pth.ts checks the true depth of what it visits.
  const depths = new WeakMap<object, number>();
  const depthOf = (v: PickleValue): number => (v !== null && typeof v === 'object' ? (depths.get(v) ?? 0) : 0);
  const setDepth = (container: object, d: number): void => {
    if (d > budget.maxPickleDepth) fail(`container nesting depth ${d}, ${overBudget(budget, 'maxPickleDepth')}`);
    if (d > (depths.get(container) ?? 0)) depths.set(container, d);
  };
  const deepen = (container: object, items: PickleValue[]): void => {
    let d = 1;
    for (const item of items) d = Math.max(d, depthOf(item) + 1);
    setDepth(container, d);
  };
  const pop = (): PickleValue => {
    if (stack.length === 0 || (marks.length > 0 && stack.length <= marks[marks.length - 1])) fail('stack underflow');
    return stack.pop() as PickleValue;
  };
  const top = (): PickleValue => {
    if (stack.length === 0 || (marks.length > 0 && stack.length <= marks[marks.length - 1])) fail('stack underflow');
    return stack[stack.length - 1];
  };
  const popMark = (): PickleValue[] => {
    if (marks.length === 0) fail('no MARK on the stack');
    return stack.splice(marks.pop() as number);
  };
  const tuple = (items: PickleValue[]): PickleValue[] => {
    deepen(items, items);
    return Object.freeze(items) as PickleValue[];
  };
  const list = (items: PickleValue[]): PickleValue[] => {
    deepen(items, items);
    return items;
  };
  const resolveGlobal = (module: string, name: string): PickleGlobal => {
    const qualified = `${module}.${name}`;
    if (!isAllowed(qualified)) {
      throw new FileFormatError(
        fileName,
        `forbidden pickle global ${quoteUntrusted(qualified)} in ${fileName}; only tensors and ordered dicts are allowed`,
      );
    }
    return new PickleGlobal(module, name);
  };
  const call = (fn: PickleValue, args: PickleValue, opname: string): PickleValue => {
    if (!(fn instanceof PickleGlobal)) fail(`${opname} on something that is not an allowed global`);
    const callable = CALLABLES[(fn as PickleGlobal).qualifiedName];
    if (!callable) fail(`${opname} calls '${(fn as PickleGlobal).qualifiedName}', which is not a tensor or dict constructor`);
    if (!Array.isArray(args)) fail(`${opname} arguments must be a tuple`);
    const result = callable(args as PickleValue[], fail);
    if (result instanceof Map) deepen(result, [args]);
    return result;
  };
  const setItems = (target: PickleValue, items: PickleValue[]) => {
    if (!(target instanceof Map)) fail('SETITEM(S) on something that is not a dict');
    if (items.length % 2 !== 0) fail('SETITEMS with an odd number of items');
    deepen(target as object, items);
    for (let i = 0; i < items.length; i += 2) (target as Map<PickleValue, PickleValue>).set(items[i], items[i + 1]);
  };
  const append = (target: PickleValue, items: PickleValue[]) => {
    if (!Array.isArray(target) || Object.isFrozen(target)) fail('APPEND(S) on something that is not a list');
    deepen(target as object, items);
    for (const item of items) (target as PickleValue[]).push(item);
  };
  const int = (v: bigint): number | bigint => (v >= BigInt(Number.MIN_SAFE_INTEGER) && v <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : v);
  const longLE = (data: Uint8Array): number | bigint => {
    if (data.length > MAX_LONG_BYTES) fail(`a ${data.length}-byte integer; at most ${MAX_LONG_BYTES} bytes are read`);
    let v = 0n;
    for (let i = data.length - 1; i >= 0; i--) v = (v << 8n) | BigInt(data[i]);
    if (data.length > 0 && data[data.length - 1] & 0x80) v -= 1n << BigInt(8 * data.length);
    return int(v);
  };
  const decimal = (s: string, what: string): number | bigint => {
    // BigInt() of a long decimal string is quadratic: refuse what no checkpoint holds, as Python does.
    if (s.length > MAX_INT_DIGITS + 1 || !/^[+-]?\d+$/.test(s)) fail(`${what} ${quoteUntrusted(s, 40)} is not an integer of at most ${MAX_INT_DIGITS} digits`);
    return int(BigInt(s));
  };
  const memoGet = (i: number): PickleValue => {
    if (!memo.has(i)) fail(`memo entry ${i} is not defined`);
    return memo.get(i) as PickleValue;
  };

  for (;;) {
    opStart = pos;
    if (pos >= bytes.length) fail('truncated: pickle ends before its STOP opcode');
    const op = bytes[pos++];
    switch (op) {
      case 0x80: // PROTO
        if (u8() > 5) fail(`pickle protocol ${bytes[pos - 1]} is newer than 5`);
        break;
      case 0x95: // FRAME: a length hint only
        u64();
        break;
      case 0x2e: // STOP
        if (stack.length !== 1 || marks.length !== 0) fail(`STOP with ${stack.length} values on the stack`);
        return { value: stack[0], end: pos };
      case 0x28: // MARK
        marks.push(stack.length);
        break;
      case 0x30: // POP
        pop();
        break;
      case 0x31: // POP_MARK
        popMark();
        break;
      case 0x32: // DUP
        push(top());
        break;
      case 0x4e: // NONE
        push(null);
        break;
      case 0x88: // NEWTRUE
        push(true);
        break;
      case 0x89: // NEWFALSE
        push(false);
        break;
      case 0x4a: // BININT
        push(i32());
        break;
      case 0x4b: // BININT1
        push(u8());
        break;
      case 0x4d: // BININT2
        push(u16());
        break;
      case 0x8a: // LONG1
        push(longLE(raw(u8())));
        break;
      case 0x8b: {
        // LONG4
        const n = i32();
        if (n < 0) fail('LONG4 with a negative length');
        push(longLE(raw(n)));
        break;
      }
      case 0x49: {
        // INT (text): also spells booleans as 00 / 01
        const s = line();
        if (s === '00' || s === '01') push(s === '01');
        else push(decimal(s, 'INT'));
        break;
      }
      case 0x4c: {
        // LONG (text), with Python 2's trailing L
        push(decimal(line().replace(/L$/, ''), 'LONG'));
        break;
      }
      case 0x47: // BINFLOAT (big-endian)
        push(view.getFloat64(need(8, 'a float'), false));
        break;
      case 0x58: // BINUNICODE
        push(decoder.decode(raw(u32())));
        break;
      case 0x8c: // SHORT_BINUNICODE
        push(decoder.decode(raw(u8())));
        break;
      case 0x8d: // BINUNICODE8
        push(decoder.decode(raw(u64())));
        break;
      case 0x54: // BINSTRING (Python 2 str)
        push(decoder.decode(raw(i32())));
        break;
      case 0x55: // SHORT_BINSTRING
        push(decoder.decode(raw(u8())));
        break;
      case 0x42: // BINBYTES
        push(raw(u32()).slice());
        break;
      case 0x43: // SHORT_BINBYTES
        push(raw(u8()).slice());
        break;
      case 0x8e: // BINBYTES8
      case 0x96: // BYTEARRAY8
        push(raw(u64()).slice());
        break;
      case 0x29: // EMPTY_TUPLE
        push(tuple([]));
        break;
      case 0x85: // TUPLE1
        push(tuple([pop()]));
        break;
      case 0x86: {
        // TUPLE2
        const b = pop();
        push(tuple([pop(), b]));
        break;
      }
      case 0x87: {
        // TUPLE3
        const c = pop();
        const b = pop();
        push(tuple([pop(), b, c]));
        break;
      }
      case 0x74: // TUPLE
        push(tuple(popMark()));
        break;
      case 0x5d: // EMPTY_LIST
        push([]);
        break;
      case 0x6c: // LIST
        push(list(popMark()));
        break;
      case 0x61: {
        // APPEND
        const v = pop();
        append(top(), [v]);
        break;
      }
      case 0x65: {
        // APPENDS
        const items = popMark();
        append(top(), items);
        break;
      }
      case 0x7d: // EMPTY_DICT
        push(new Map());
        break;
      case 0x64: {
        // DICT
        const d = new Map<PickleValue, PickleValue>();
        setItems(d, popMark());
        push(d);
        break;
      }
      case 0x73: {
        // SETITEM
        const v = pop();
        const k = pop();
        setItems(top(), [k, v]);
        break;
      }
      case 0x75: {
        // SETITEMS
        const items = popMark();
        setItems(top(), items);
        break;
      }
      case 0x8f: // EMPTY_SET
        push(new Set());
        break;
      case 0x90: {
        // ADDITEMS
        const items = popMark();
        const s = top();
        if (!(s instanceof Set)) fail('ADDITEMS on something that is not a set');
        deepen(s as Set<PickleValue>, items);
        for (const v of items) (s as Set<PickleValue>).add(v);
        break;
      }
      case 0x91: {
        // FROZENSET
        const items = popMark();
        const s = new Set(items);
        deepen(s, items);
        push(s);
        break;
      }
        break;
      case 0x71: // BINPUT
        memo.set(u8(), top());
        break;
      case 0x72: // LONG_BINPUT
        memo.set(u32(), top());
        break;
      case 0x94: // MEMOIZE
        memo.set(memo.size, top());
        break;
      case 0x70: {
        // PUT (text)
        const s = line();
        if (!/^\d{1,10}$/.test(s)) fail(`PUT index ${quoteUntrusted(s, 40)} is not a memo index`);
        memo.set(Number(s), top());
        break;
      }
      case 0x68: // BINGET
        push(memoGet(u8()));
        break;
      case 0x6a: // LONG_BINGET
        push(memoGet(u32()));
        break;
      case 0x67: {
        // GET (text)
        const s = line();
        if (!/^\d{1,10}$/.test(s)) fail(`GET index ${quoteUntrusted(s, 40)} is not a memo index`);
        push(memoGet(Number(s)));
        break;
      }
      case 0x63: {
        // GLOBAL: "module\nname\n"
        const module = line();
        push(resolveGlobal(module, line()));
        break;
      }
      case 0x93: {
        // STACK_GLOBAL
        const name = pop();
        const module = pop();
        if (typeof module !== 'string' || typeof name !== 'string') fail('STACK_GLOBAL needs two strings');
        push(resolveGlobal(module as string, name as string));
        break;
      }
      case 0x69: {
        // INST: "module\nname\n", arguments since MARK
        const module = line();
        const cls = resolveGlobal(module, line());
        push(call(cls, popMark(), 'INST'));
        break;
      }
      case 0x6f: {
        // OBJ: MARK cls args...
        const items = popMark();
        if (items.length === 0) fail('OBJ without a class');
        push(call(items[0], items.slice(1), 'OBJ'));
        break;
      }
      case 0x52: {
        // REDUCE
        const args = pop();
        const fn = pop();
        push(call(fn, args, 'REDUCE'));
        break;
      }
      case 0x81: {
        // NEWOBJ: cls.__new__(cls, *args)
        const args = pop();
        const cls = pop();
        push(call(cls, args, 'NEWOBJ'));
        break;
      }
      case 0x92: {
        // NEWOBJ_EX
        const kwargs = pop();
        const args = pop();
        const cls = pop();
        if (!(kwargs instanceof Map) || kwargs.size > 0) fail('NEWOBJ_EX with keyword arguments');
        push(call(cls, args, 'NEWOBJ_EX'));
        break;
      }
      case 0x62: {
        // BUILD: obj.__setstate__(state). Only dicts may get one (state_dict._metadata); it is dropped.
        const state = pop();
        const obj = top();
        if (!(obj instanceof Map)) fail(`BUILD on ${describe(obj)}; only ordered dicts may carry state`);
        void state;
        break;
      }
      case 0x51: {
        // BINPERSID
        const pid = pop();
        if (!options.persistentLoad) fail('persistent id outside a checkpoint');
        push(options.persistentLoad!(pid));
        break;
      }
      case 0x50: // PERSID (text)
        fail('text persistent ids (PERSID) are not used by torch and not supported');
        break;
      case 0x82:
      case 0x83:
      case 0x84: // EXT1/2/4: the copyreg extension registry names globals by number
        fail('pickle extension codes (EXT) are not allowed');
        break;
      case 0x97:
      case 0x98: // NEXT_BUFFER / READONLY_BUFFER
        fail('out-of-band pickle buffers are not supported');
        break;
      default:
        fail(`unsupported pickle opcode 0x${op.toString(16).padStart(2, '0')}`);
    }
  }
}

function describe(v: PickleValue): string {
  if (v instanceof TensorRef) return 'a tensor';
  if (v instanceof StorageRef) return 'a storage';
  if (v instanceof PickleGlobal) return `'${v.qualifiedName}'`;
  if (Array.isArray(v)) return 'a list';
  return typeof v;
}

function fmt(v: PickleValue): string {
  if (!Array.isArray(v)) return describe(v);
  const shown = v.slice(0, 8).map((x) => (typeof x === 'string' ? quoteUntrusted(x, 20) : typeof x === 'number' || typeof x === 'bigint' ? String(x) : describe(x)));
  return `[${shown.join(', ')}${v.length > 8 ? `, … ${v.length - 8} more` : ''}]`;
}
