/**
 * Dense float64 linear algebra for the Fréchet distance: Cholesky, Householder tridiagonalisation and the
 * implicit QL eigensolver for symmetric matrices (EISPACK tred2/tql2 as in JAMA, rewritten row-major so every
 * inner loop walks contiguous memory). Matrices are row-major Float64Array of n * n. All O(n^3).
 */
import { Pix2PixError, ShapeError } from '../runtime/errors.js';

function checkSquare(op: string, a: Float64Array, n: number): void {
  if (!Number.isInteger(n) || n < 1) throw new ShapeError(op, 'matrix order n', 'an integer >= 1', n);
  if (a.length !== n * n) throw new ShapeError(op, 'matrix length', n * n, a.length);
}

/** sqrt(a^2 + b^2) without overflow or needless underflow (Math.hypot is several times slower in V8). */
function hypot(a: number, b: number): number {
  const x = Math.abs(a);
  const y = Math.abs(b);
  if (x > y) {
    const r = y / x;
    return x * Math.sqrt(1 + r * r);
  }
  if (y === 0) return 0;
  const r = x / y;
  return y * Math.sqrt(1 + r * r);
}

/**
 * Cholesky factor L (lower triangular, A = L L^T) of a symmetric matrix, reading only A's lower triangle.
 * Returns null when a pivot is not positive (A not numerically positive definite). Row-oriented
 * (Cholesky-Crout): each entry is a dot product of two contiguous row prefixes. n^3 / 3 multiply-adds.
 */
export function cholesky(a: Float64Array, n: number): Float64Array | null {
  checkSquare('cholesky', a, n);
  const l = new Float64Array(n * n);
  for (let i = 0; i < n; i++) {
    const ri = i * n;
    for (let j = 0; j <= i; j++) {
      const rj = j * n;
      let s = a[ri + j];
      for (let k = 0; k < j; k++) s -= l[ri + k] * l[rj + k];
      if (i === j) {
        if (!(s > 0)) return null; // also catches NaN
        l[ri + i] = Math.sqrt(s);
      } else {
        l[ri + j] = s / l[rj + j];
      }
    }
  }
  return l;
}

const NB = 64; // cache block: a 64 x 64 float64 block is 32 KiB

/**
 * The lower triangle of L^T B L for symmetric B and lower-triangular L (full n x n result, lower part valid):
 * the symmetric matrix similar to L L^T B, used for the eigenvalues of S1 S2 when S1 = L L^T.
 * Blocked so that a 64 x 64 block of L (or of the result) stays in cache while the other operand streams by:
 * at n = 2048 the unblocked loops are memory-bound and several times slower.
 */
export function congruenceLower(l: Float64Array, b: Float64Array, n: number): Float64Array {
  checkSquare('congruence', l, n);
  checkSquare('congruence', b, n);
  // T = B L: T[i][j] = sum_{k >= j} B[i][k] L[k][j]. Four rows of L per sweep (L's zero upper triangle makes
  // the ragged edge harmless): a quarter of the loads and stores of T, measured ~2x faster in V8.
  const t = new Float64Array(n * n);
  for (let j0 = 0; j0 < n; j0 += NB) {
    const j1 = Math.min(n, j0 + NB);
    for (let k0 = j0; k0 < n; k0 += NB) {
      const k1 = Math.min(n, k0 + NB);
      for (let i = 0; i < n; i++) {
        const ri = i * n;
        let k = k0;
        for (; k + 3 < k1; k += 4) {
          const b0 = b[ri + k];
          const b1 = b[ri + k + 1];
          const b2 = b[ri + k + 2];
          const b3 = b[ri + k + 3];
          const r0 = k * n;
          const r1 = r0 + n;
          const r2 = r1 + n;
          const r3 = r2 + n;
          const jEnd = Math.min(j1, k + 4);
          for (let j = j0; j < jEnd; j++) t[ri + j] += b0 * l[r0 + j] + b1 * l[r1 + j] + b2 * l[r2 + j] + b3 * l[r3 + j];
        }
        for (; k < k1; k++) {
          const bik = b[ri + k];
          const rk = k * n;
          const jEnd = Math.min(j1, k + 1);
          for (let j = j0; j < jEnd; j++) t[ri + j] += bik * l[rk + j];
        }
      }
    }
  }
  // M = L^T T: M[a][c] = sum_{k >= a} L[k][a] T[k][c], only c <= a; four k at a time likewise.
  const m = new Float64Array(n * n);
  for (let a0 = 0; a0 < n; a0 += NB) {
    const a1 = Math.min(n, a0 + NB);
    for (let c0 = 0; c0 < a1; c0 += NB) {
      const c1 = Math.min(n, c0 + NB);
      let k = a0;
      for (; k + 3 < n; k += 4) {
        const r0 = k * n;
        const r1 = r0 + n;
        const r2 = r1 + n;
        const r3 = r2 + n;
        const aEnd = Math.min(a1, k + 4);
        for (let a = a0; a < aEnd; a++) {
          const l0 = l[r0 + a];
          const l1 = l[r1 + a];
          const l2 = l[r2 + a];
          const l3 = l[r3 + a];
          const ra = a * n;
          const cEnd = Math.min(c1, a + 1);
          for (let c = c0; c < cEnd; c++) m[ra + c] += l0 * t[r0 + c] + l1 * t[r1 + c] + l2 * t[r2 + c] + l3 * t[r3 + c];
        }
      }
      for (; k < n; k++) {
        const rk = k * n;
        const aEnd = Math.min(a1, k + 1);
        for (let a = a0; a < aEnd; a++) {
          const lka = l[rk + a];
          const ra = a * n;
          const cEnd = Math.min(c1, a + 1);
          for (let c = c0; c < cEnd; c++) m[ra + c] += lka * t[rk + c];
        }
      }
    }
  }
  return m;
}

/** C = A B for square matrices (i-k-j order: contiguous inner loop). */
export function matmul(a: Float64Array, b: Float64Array, n: number): Float64Array {
  checkSquare('matmul', a, n);
  checkSquare('matmul', b, n);
  const c = new Float64Array(n * n);
  for (let i = 0; i < n; i++) {
    const ri = i * n;
    for (let k = 0; k < n; k++) {
      const aik = a[ri + k];
      if (aik === 0) continue;
      const rk = k * n;
      for (let j = 0; j < n; j++) c[ri + j] += aik * b[rk + j];
    }
  }
  return c;
}

/**
 * Householder reduction of a symmetric matrix (lower triangle read; the input is not modified) to tridiagonal
 * T = Q^T A Q (LAPACK dsytd2's algorithm). Returns the diagonal `d`, the sub-diagonal `e` (e[i] = T[i+1][i],
 * e[n-1] = 0) and, when asked, Q^T (rows of Q^T are Q's columns). About 2/3 n^3 multiply-adds, plus 2/3 n^3 for Q.
 */
export function tridiagonalize(a: Float64Array, n: number, wantQ: boolean): { d: Float64Array; e: Float64Array; qt?: Float64Array } {
  checkSquare('tridiagonalize', a, n);
  const w = Float64Array.from(a); // working copy; lower triangle used
  const d = new Float64Array(n);
  const e = new Float64Array(n);
  const tau = new Float64Array(n);
  const p = new Float64Array(n);
  const v = new Float64Array(n);
  for (let k = 0; k < n - 2; k++) {
    // x = A[k+1.., k]: reflect it onto alpha e1.
    let norm2 = 0;
    for (let i = k + 1; i < n; i++) norm2 += w[i * n + k] ** 2;
    const x0 = w[(k + 1) * n + k];
    const tail2 = norm2 - x0 * x0;
    d[k] = w[k * n + k];
    if (tail2 <= 0) {
      // Already tridiagonal in this column: H = I.
      e[k] = x0;
      tau[k] = 0;
      continue;
    }
    const alpha = x0 >= 0 ? -Math.sqrt(norm2) : Math.sqrt(norm2);
    v[k + 1] = x0 - alpha;
    for (let i = k + 2; i < n; i++) v[i] = w[i * n + k];
    const vv = v[k + 1] * v[k + 1] + tail2;
    const t = 2 / vv;
    tau[k] = t;
    e[k] = alpha;
    // Keep v in column k (below the diagonal) for Q.
    for (let i = k + 1; i < n; i++) w[i * n + k] = v[i];
    // p = t * A22 v, with A22 symmetric and stored in its lower triangle: one contiguous pass over each row.
    p.fill(0, k + 1);
    for (let i = k + 1; i < n; i++) {
      const ri = i * n;
      const vi = v[i];
      let s = 0;
      for (let j = k + 1; j < i; j++) {
        const aij = w[ri + j];
        s += aij * v[j];
        p[j] += aij * vi;
      }
      p[i] += s + w[ri + i] * vi;
    }
    let pv = 0;
    for (let i = k + 1; i < n; i++) {
      p[i] *= t;
      pv += p[i] * v[i];
    }
    // q = p - (t / 2)(p . v) v; A22 -= v q^T + q v^T (lower triangle).
    const kk = (t / 2) * pv;
    for (let i = k + 1; i < n; i++) p[i] -= kk * v[i];
    for (let i = k + 1; i < n; i++) {
      const ri = i * n;
      const vi = v[i];
      const qi = p[i];
      for (let j = k + 1; j <= i; j++) w[ri + j] -= vi * p[j] + qi * v[j];
    }
  }
  if (n >= 2) {
    d[n - 2] = w[(n - 2) * n + n - 2];
    e[n - 2] = w[(n - 1) * n + n - 2];
  }
  d[n - 1] = w[(n - 1) * n + n - 1];
  e[n - 1] = 0;
  if (!wantQ) return { d, e };
  // Q = H_0 H_1 ... H_{n-3}, built backwards so each H_k only touches the trailing block: Z <- H_k Z.
  const z = new Float64Array(n * n);
  for (let i = 0; i < n; i++) z[i * n + i] = 1;
  const u = new Float64Array(n);
  for (let k = n - 3; k >= 0; k--) {
    const t = tau[k];
    if (t === 0) continue;
    u.fill(0, k + 1);
    for (let i = k + 1; i < n; i++) {
      const vi = w[i * n + k];
      const ri = i * n;
      for (let j = k + 1; j < n; j++) u[j] += vi * z[ri + j];
    }
    for (let i = k + 1; i < n; i++) {
      const tvi = t * w[i * n + k];
      const ri = i * n;
      for (let j = k + 1; j < n; j++) z[ri + j] -= tvi * u[j];
    }
  }
  // Q^T, so the QL rotations below mix contiguous rows.
  const qt = new Float64Array(n * n);
  for (let i = 0; i < n; i++) for (let j = 0; j < n; j++) qt[j * n + i] = z[i * n + j];
  return { d, e, qt };
}

/**
 * Eigenvalues (in `d`, overwritten) of the symmetric tridiagonal matrix (d, e) by the implicit QL method with
 * Wilkinson-like shifts (EISPACK tql2 / JAMA). With `vt` (rows = vectors, e.g. Q^T from
 * {@link tridiagonalize}) the rotations are applied to its rows, which then hold the eigenvectors of the
 * original matrix. Unsorted.
 */
export function tridiagonalQL(d: Float64Array, e: Float64Array, vt?: Float64Array): void {
  const n = d.length;
  if (e.length !== n) throw new ShapeError('tridiagonalQL', 'sub-diagonal length', n, e.length);
  if (vt && vt.length !== n * n) throw new ShapeError('tridiagonalQL', 'vector matrix length', n * n, vt.length);
  const eps = 2 ** -52;
  let f = 0;
  let tst1 = 0;
  for (let l = 0; l < n; l++) {
    tst1 = Math.max(tst1, Math.abs(d[l]) + Math.abs(e[l]));
    let m = l;
    while (m < n - 1 && Math.abs(e[m]) > eps * tst1) m++;
    if (m > l) {
      let iter = 0;
      do {
        if (++iter > 60) throw new Pix2PixError('tridiagonalQL', `no convergence for eigenvalue ${l} of ${n} after 60 QL iterations (matrix has NaN/Inf?)`);
        let g = d[l];
        let p = (d[l + 1] - g) / (2 * e[l]);
        let r = hypot(p, 1);
        if (p < 0) r = -r;
        d[l] = e[l] / (p + r);
        d[l + 1] = e[l] * (p + r);
        const dl1 = d[l + 1];
        let h = g - d[l];
        for (let i = l + 2; i < n; i++) d[i] -= h;
        f += h;
        p = d[m];
        let c = 1;
        let c2 = c;
        let c3 = c;
        const el1 = e[l + 1];
        let s = 0;
        let s2 = 0;
        for (let i = m - 1; i >= l; i--) {
          c3 = c2;
          c2 = c;
          s2 = s;
          g = c * e[i];
          h = c * p;
          r = hypot(p, e[i]);
          e[i + 1] = s * r;
          s = e[i] / r;
          c = p / r;
          p = c * d[i] - s * g;
          d[i + 1] = h + s * (c * g + s * d[i]);
          if (vt) {
            const r0 = i * n;
            const r1 = r0 + n;
            for (let k = 0; k < n; k++) {
              const hk = vt[r1 + k];
              const gk = vt[r0 + k];
              vt[r1 + k] = s * gk + c * hk;
              vt[r0 + k] = c * gk - s * hk;
            }
          }
        }
        p = (-s * s2 * c3 * el1 * e[l]) / dl1;
        e[l] = s * p;
        d[l] = c * p;
      } while (Math.abs(e[l]) > eps * tst1);
    }
    d[l] += f;
    e[l] = 0;
  }
}

/** Eigenvalues of a symmetric matrix (lower triangle read), unsorted. */
export function symmetricEigenvalues(a: Float64Array, n: number): Float64Array {
  const { d, e } = tridiagonalize(a, n, false);
  tridiagonalQL(d, e);
  return d;
}

/** Eigen-decomposition of a symmetric matrix: A = V diag(values) V^T, returned as `vt` = V^T (row i = vector i). */
export function symmetricEigen(a: Float64Array, n: number): { values: Float64Array; vt: Float64Array } {
  const { d, e, qt } = tridiagonalize(a, n, true);
  tridiagonalQL(d, e, qt);
  return { values: d, vt: qt! };
}

/**
 * Principal square root of a symmetric positive semi-definite matrix: V diag(sqrt(max(lambda, 0))) V^T
 * (eigenvalues that rounding made slightly negative are clamped to 0). Also returns the smallest eigenvalue.
 */
export function sqrtSymmetricPsd(a: Float64Array, n: number): { root: Float64Array; minEigenvalue: number } {
  const { values, vt } = symmetricEigen(a, n);
  const root = new Float64Array(n * n);
  let minEigenvalue = Infinity;
  for (let i = 0; i < n; i++) {
    minEigenvalue = Math.min(minEigenvalue, values[i]);
    const s = Math.sqrt(Math.max(values[i], 0));
    if (s === 0) continue;
    const ri = i * n;
    // root += s * v_i v_i^T (rows of vt are contiguous).
    for (let r = 0; r < n; r++) {
      const f = s * vt[ri + r];
      if (f === 0) continue;
      const rr = r * n;
      for (let c = 0; c < n; c++) root[rr + c] += f * vt[ri + c];
    }
  }
  return { root, minEigenvalue };
}
