import { describe, expect, it } from 'vitest';
import { PickleGlobal, StorageRef, TensorRef, unpickle, type PickleValue } from '../../src/io/pickle.js';
import { FileFormatError } from '../../src/runtime/errors.js';

/** Assemble a pickle: numbers are opcode/argument bytes, strings are their UTF-8 bytes. */
function p(...parts: (number | string | number[])[]): Uint8Array {
  const out: number[] = [];
  for (const part of parts) {
    if (typeof part === 'number') out.push(part);
    else if (typeof part === 'string') out.push(...new TextEncoder().encode(part));
    else out.push(...part);
  }
  return new Uint8Array(out);
}
const u32 = (n: number) => [n & 0xff, (n >> 8) & 0xff, (n >> 16) & 0xff, (n >>> 24) & 0xff];
const unicode = (s: string) => [0x58, ...u32(new TextEncoder().encode(s).length), ...new TextEncoder().encode(s)];
const PROTO2 = [0x80, 2];

function refused(bytes: Uint8Array, pattern: RegExp, options = {}): void {
  let err: unknown;
  try {
    unpickle(bytes, 'evil.pkl', options);
  } catch (e) {
    err = e;
  }
  expect(err).toBeInstanceOf(FileFormatError);
  expect((err as Error).message).toContain('evil.pkl');
  expect((err as Error).message).toMatch(pattern);
}

describe('safe unpickler', () => {
  it('refuses every global outside the allow-list, by name, whatever opcode names it', () => {
    for (const name of ['os.system', 'posix.system', 'nt.system', 'builtins.eval', '__builtin__.getattr', 'subprocess.Popen', 'subprocess.check_output', 'torch.storage._load_from_bytes', 'torch.load', 'numpy.core.multiarray._reconstruct']) {
      const dot = name.lastIndexOf('.');
      const [module, attr] = [name.slice(0, dot), name.slice(dot + 1)];
      const message = new RegExp(`forbidden pickle global '${name.replace(/\./g, '\\.')}' in evil\\.pkl; only tensors and ordered dicts are allowed`);
      // GLOBAL (protocol 0-3), as (os.system, ('echo pwned',)) via REDUCE
      refused(p(...PROTO2, 'c', `${module}\n${attr}\n`, ...unicode('echo pwned'), 0x85, 'R', '.'), message);
      // STACK_GLOBAL (protocol 4)
      refused(p(0x80, 4, ...unicode(module), ...unicode(attr), 0x93, ')', 'R', '.'), message);
      // INST (protocol 0)
      refused(p('(', ...unicode('x'), 'i', `${module}\n${attr}\n`, '.'), message);
    }
  });

  it('calls nothing but the rebuild functions: allow-listed non-callables are refused too', () => {
    refused(p(...PROTO2, 'c', 'torch\nFloatStorage\n', ')', 'R', '.'), /REDUCE calls 'torch\.FloatStorage', which is not a tensor or dict constructor/);
    refused(p(...PROTO2, 'c', 'torch\nFloatStorage\n', ')', 0x81, '.'), /NEWOBJ calls 'torch\.FloatStorage'/);
    refused(p(...PROTO2, ...unicode('os.system'), ')', 'R', '.'), /REDUCE on something that is not an allowed global/);
    refused(p(...PROTO2, 0x82, 1, '.'), /extension codes \(EXT\) are not allowed/);
    // BUILD on anything but a dict (object.__setstate__ would be a call)
    refused(p(...PROTO2, ']', '}', 'b', '.'), /BUILD on a list; only ordered dicts may carry state/);
  });

  it('builds an OrderedDict with _metadata state as torch writes it, keeping key order', () => {
    const value = unpickle(
      p(...PROTO2, 'c', 'collections\nOrderedDict\n', 'q', 0, ')', 'R', 'q', 1,
        '(', ...unicode('10'), 'K', 1, ...unicode('2'), 'J', ...u32(-5), ...unicode('a'), 'N', 'u',
        '}', ...unicode('_metadata'), 'h', 0, ')', 'R', 's', 'b', '.'),
      'ok.pkl',
    ).value as Map<PickleValue, PickleValue>;
    expect(value).toBeInstanceOf(Map);
    expect([...value.entries()]).toEqual([['10', 1], ['2', -5], ['a', null]]);
  });

  it('decodes scalars: LONG1 (negative, huge), BINFLOAT, bools, bytes, memo, tuples, sets', () => {
    const bytes = p(0x80, 4, 0x95, ...u32(60), 0, 0, 0, 0, '(',
      0x8a, 2, 0x00, 0xff, // LONG1 -256
      0x8a, 10, 0x6c, 0xfc, 0x9c, 0x46, 0xf9, 0x20, 0x6a, 0xa8, 0x50, 0x19, // torch's magic number
      'G', 0x3f, 0xf8, 0, 0, 0, 0, 0, 0, // BINFLOAT 1.5
      0x88, 0x89, 'C', 2, 0xde, 0xad, 0x8c, 1, 'x', 0x94, 'h', 0,
      'K', 1, 'K', 2, 0x86, 0x8f, '(', 'K', 3, 0x90, 'l', '.', 'trailing bytes');
    const { value, end } = unpickle(bytes, 'ok.pkl');
    expect(value).toEqual([-256, 0x1950a86a20f9469cfc6cn, 1.5, true, false, new Uint8Array([0xde, 0xad]), 'x', 'x', [1, 2], new Set([3])]);
    expect(end).toBe(bytes.length - 'trailing bytes'.length);
  });

  it('rebuilds tensors only from storages given by persistent_load, with checked sizes and strides', () => {
    const storage = new StorageRef('0', 'F32', 6);
    const persistentLoad = (pid: PickleValue) => {
      expect(pid).toEqual(['storage', new PickleGlobal('torch', 'FloatStorage'), '0', 'cpu', 6]);
      return storage;
    };
    const tensor = (shape: number[], stride: number[]) =>
      p(...PROTO2, 'c', 'torch._utils\n_rebuild_tensor_v2\n', '(',
        '(', ...unicode('storage'), 'c', 'torch\nFloatStorage\n', ...unicode('0'), ...unicode('cpu'), 'K', 6, 't', 'Q',
        'K', 1, '(', ...shape.flatMap((d) => ['K', d]), 't', '(', ...stride.flatMap((d) => ['K', d]), 't',
        0x89, 'c', 'collections\nOrderedDict\n', ')', 'R', 't', 'R', '.');
    const value = unpickle(tensor([2, 2], [1, 2]), 'ok.pkl', { persistentLoad }).value;
    expect(value).toEqual(new TensorRef(storage, 1, [2, 2], [1, 2]));
    refused(tensor([2, 2], [1]), /size \[2, 2\] and stride \[1\] must be equal-length/, { persistentLoad });
    refused(tensor([2, 2], [1, 2]), /persistent id outside a checkpoint/);
  });

  it('truncated or malformed pickles are FileFormatErrors with the byte offset', () => {
    const good = p(...PROTO2, '}', ...unicode('key'), ...unicode('value'), 's', '.');
    for (let cut = 0; cut < good.length; cut++) refused(good.slice(0, cut), /truncated|underflow|STOP/);
    refused(p(...PROTO2, 0x58, 0xff, 0xff, 0xff, 0x7f, 'a'), /truncated: a string needs 2147483647 bytes/);
    refused(p(...PROTO2, 'h', 9, '.'), /memo entry 9 is not defined at pickle byte 2/);
    refused(p(...PROTO2, 's', '.'), /stack underflow/);
    refused(p(...PROTO2, 0xfe, '.'), /unsupported pickle opcode 0xfe at pickle byte 2/);
    refused(p(...PROTO2, 'N', 'N', '.'), /STOP with 2 values on the stack/);
  });
});

describe('safe unpickler: hostile structure', () => {
  it('a self-referencing list unpickles without recursion', () => {
    // l = []; l.append(l)
    const value = unpickle(p(...PROTO2, ']', 'q', 0, 'h', 0, 'a', '.'), 'cycle.pkl').value as PickleValue[];
    expect(value[0]).toBe(value);
  });
});
