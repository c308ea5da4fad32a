// The fuzz corpus generator: seeded mutations and truncations of a valid file. The corpus is never
// stored; the same seed always gives the same cases, so a failure names a reproducible case.

/** mulberry32: a small, fast, seeded 32-bit PRNG. */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Byte and word values that tend to sit on boundaries of length and offset checks. */
const INTERESTING_BYTES = [0x00, 0x01, 0x7f, 0x80, 0xfe, 0xff, 0x0a, 0x1b, 0x2e, 0x28];
const INTERESTING_WORDS = [0, 1, 0x7f, 0x80, 0xff, 0x100, 0x7fff, 0x8000, 0xffff, 0x10000, 0x7fffffff, 0x80000000, 0xfffffffe, 0xffffffff];

export interface Mutant {
  /** What was done, for the failure message (reproducible from the seed). */
  name: string;
  bytes: Uint8Array;
}

/** One random mutation of `src` (a new array; `src` is untouched). */
function mutateOnce(src: Uint8Array, rand: () => number): { bytes: Uint8Array; what: string } {
  const n = src.length;
  const at = () => Math.floor(rand() * Math.max(1, n));
  const kind = Math.floor(rand() * 8);
  switch (kind) {
    case 0: {
      const cut = at();
      return { bytes: src.slice(0, cut), what: `truncate@${cut}` };
    }
    case 1: {
      const out = src.slice();
      const flips = 1 + Math.floor(rand() * 8);
      for (let i = 0; i < flips && n > 0; i++) out[at()] ^= 1 << Math.floor(rand() * 8);
      return { bytes: out, what: `flip${flips}` };
    }
    case 2: {
      const out = src.slice();
      const k = 1 + Math.floor(rand() * 4);
      for (let i = 0; i < k && n > 0; i++) out[at()] = INTERESTING_BYTES[Math.floor(rand() * INTERESTING_BYTES.length)];
      return { bytes: out, what: `bytes${k}` };
    }
    case 3: {
      const out = src.slice();
      if (n < 4) return { bytes: out, what: 'word(none)' };
      const p = Math.floor(rand() * (n - 3));
      const w = INTERESTING_WORDS[Math.floor(rand() * INTERESTING_WORDS.length)] ^ (rand() < 0.2 ? n : 0);
      new DataView(out.buffer).setUint32(p, w >>> 0, rand() < 0.7);
      return { bytes: out, what: `word@${p}=${w >>> 0}` };
    }
    case 4: {
      const p = at();
      const end = Math.min(n, p + 1 + Math.floor(rand() * 64));
      const out = new Uint8Array(n - (end - p));
      out.set(src.subarray(0, p));
      out.set(src.subarray(end), p);
      return { bytes: out, what: `delete@${p}+${end - p}` };
    }
    case 5: {
      const from = at();
      const len = 1 + Math.floor(rand() * 64);
      const chunk = src.subarray(from, from + len);
      const p = at();
      const out = new Uint8Array(n + chunk.length);
      out.set(src.subarray(0, p));
      out.set(chunk, p);
      out.set(src.subarray(p), p + chunk.length);
      return { bytes: out, what: `dup@${from}+${len}->${p}` };
    }
    case 6: {
      const p = at();
      const len = 1 + Math.floor(rand() * 16);
      const out = new Uint8Array(n + len);
      out.set(src.subarray(0, p));
      for (let i = 0; i < len; i++) out[p + i] = Math.floor(rand() * 256);
      out.set(src.subarray(p), p + len);
      return { bytes: out, what: `insert@${p}+${len}` };
    }
    default: {
      // Copy a run of bytes over another place (lengths and offsets end up in other fields).
      const out = src.slice();
      const from = at();
      const chunk = src.subarray(from, Math.min(n, from + 1 + Math.floor(rand() * 16)));
      const to = Math.floor(rand() * Math.max(1, n - chunk.length + 1));
      out.set(chunk, to);
      return { bytes: out, what: `overwrite@${from}+${chunk.length}->${to}` };
    }
  }
}

/**
 * `count` mutants of `base` from `seed`: each is one to three stacked mutations, and every tenth
 * case is a plain truncation. `fix` may repair checksums afterwards so the mutation reaches past
 * them (a zip CRC, PNG chunk CRCs).
 */
export function* mutants(base: Uint8Array, seed: number, count: number, fix?: (bytes: Uint8Array) => Uint8Array): Generator<Mutant> {
  const rand = prng(seed);
  for (let i = 0; i < count; i++) {
    let bytes = base;
    const steps: string[] = [];
    if (i % 10 === 0) {
      const cut = Math.floor(rand() * base.length);
      bytes = base.slice(0, cut);
      steps.push(`truncate@${cut}`);
    } else {
      const k = 1 + Math.floor(rand() * 3);
      for (let j = 0; j < k; j++) {
        const m = mutateOnce(bytes, rand);
        bytes = m.bytes;
        steps.push(m.what);
      }
      if (fix) bytes = fix(bytes);
    }
    yield { name: `seed ${seed} case ${i}: ${steps.join(', ')}`, bytes };
  }
}
