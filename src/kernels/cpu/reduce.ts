// Float64 CPU reference for the GPU sum. A float64 running sum over up to ~1e8 fp32 values is exact to
// ~1e-16 * n relative, far below the fp32 tree reduction's error, so it serves as the true value.

/** Σ x[i] in float64. */
export function sumCpu(x: ArrayLike<number>): number {
  let s = 0;
  for (let i = 0; i < x.length; i++) s += x[i];
  return s;
}

/** Σ x[i] accumulated in fp32 one element at a time: the naive GPU loop the tree reduction avoids. */
export function serialSumFloat32(x: ArrayLike<number>): number {
  let s = 0;
  for (let i = 0; i < x.length; i++) s = Math.fround(s + x[i]);
  return s;
}
