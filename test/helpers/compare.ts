// Tolerance comparison with a report that says where and by how much, as llm.c's validate_result does.

export interface CloseOptions {
  atol: number;
  rtol: number;
  label?: string;
  /** How many mismatching entries to list. */
  show?: number;
}

export interface CloseReport {
  ok: boolean;
  maxAbs: number;
  maxRel: number;
  worst: number;
  message: string;
}

/** Compare element-wise with |a - e| <= atol + rtol * |e|; the report lists the first bad entries. */
export function compareClose(actual: ArrayLike<number>, expected: ArrayLike<number>, o: CloseOptions): CloseReport {
  const label = o.label ?? 'values';
  if (actual.length !== expected.length) {
    return { ok: false, maxAbs: Infinity, maxRel: Infinity, worst: -1, message: `${label}: length ${actual.length}, expected ${expected.length}` };
  }
  let maxAbs = 0;
  let maxRel = 0;
  let worst = -1;
  let worstExcess = 0;
  const bad: string[] = [];
  let nBad = 0;
  for (let i = 0; i < expected.length; i++) {
    const a = actual[i];
    const e = expected[i];
    const abs = Math.abs(a - e);
    const rel = abs / Math.max(Math.abs(e), 1e-30);
    const finiteMismatch = Number.isFinite(a) !== Number.isFinite(e) || Number.isNaN(a) !== Number.isNaN(e);
    if (abs > maxAbs || Number.isNaN(abs)) maxAbs = Number.isNaN(abs) ? Infinity : abs;
    if (abs > o.atol && rel > maxRel) maxRel = rel;
    const excess = abs - (o.atol + o.rtol * Math.abs(e));
    if (excess > 0 || finiteMismatch || Number.isNaN(a)) {
      nBad++;
      if (bad.length < (o.show ?? 8)) bad.push(`  [${i}] got ${a}, expected ${e} (abs ${abs.toExponential(2)}, rel ${rel.toExponential(2)})`);
      if (excess > worstExcess || worst < 0) {
        worstExcess = excess;
        worst = i;
      }
    }
  }
  const head = `${label}: ${nBad}/${expected.length} outside atol=${o.atol} rtol=${o.rtol}; max abs err ${maxAbs.toExponential(3)}, max rel err ${maxRel.toExponential(3)}`;
  return { ok: nBad === 0, maxAbs, maxRel, worst, message: nBad ? `${head}\n${bad.join('\n')}` : head };
}

/** Throw with the report unless `actual` matches `expected` within tolerance; returns the max abs error. */
export function expectClose(actual: ArrayLike<number>, expected: ArrayLike<number>, o: CloseOptions): number {
  const r = compareClose(actual, expected, o);
  if (!r.ok) throw new Error(r.message);
  return r.maxAbs;
}

/** Format an index of a row-major shape as [n, c, h, w] for reports. */
export function unravel(index: number, shape: readonly number[]): number[] {
  const out: number[] = [];
  for (let d = shape.length - 1; d >= 0; d--) {
    out.unshift(index % shape[d]);
    index = Math.floor(index / shape[d]);
  }
  return out;
}
