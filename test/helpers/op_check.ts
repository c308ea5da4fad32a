// One call checks an op, tinygrad's helper_test_op for this library: for every case,
//   1. the float64 CPU reference's backward against central finite differences of its forward
//      (cases small enough for it, see `fd`), and
//   2. the GPU kernels' forward outputs and gradients against the CPU reference, with the gradient
//      tensors pre-filled with random values when the case accumulates (so overwrite vs += is tested).
// Every mismatch is collected and reported together: op, case, tensor, how many entries, the worst
// entry's index as [n, c, h, w] and the errors (compare.ts's report).
//
// An op supplies named float64 inputs, a CPU forward returning { y, ...saved }, a CPU backward returning
// one gradient per differentiable input name, and a GPU recorder that receives the same inputs as tensors
// plus dy and gradient tensors named like the CPU backward's keys. See test/kernels/group_norm.test.ts.
import { Rng } from '../../src/runtime/random.js';
import { destroyDispatches, type Dispatch, type GpuContext } from '../../src/runtime/context.js';
import type { Tensor } from '../../src/runtime/tensor.js';
import { compareClose, unravel } from './compare.js';
import { checkGradient } from './gradcheck.js';

export interface HostTensor {
  shape: readonly number[];
  data: Float64Array;
}

export type Named = Record<string, Float64Array>;

export interface Tolerance {
  atol: number;
  rtol: number;
}

export interface GpuIo<C> {
  case: C;
  /** The inputs as fp32 tensors, same names as `inputs`. */
  inputs: Record<string, Tensor>;
  /** dL/dy for the primary output y. */
  dy: Tensor;
  /** One tensor per key of the CPU backward's result; pre-filled (random) when `accumulate`. */
  grads: Record<string, Tensor>;
  accumulate: boolean;
  /** Allocate a tensor freed after the case. */
  tensor(shape: readonly number[], data?: ArrayLike<number>, label?: string): Tensor;
}

export interface OpSpec<C extends { shape: readonly number[] }> {
  /** Named in every report line. */
  op: string;
  cases: readonly C[];
  /** Shape of y (default: the case's shape). */
  outputShape?: (c: C) => readonly number[];
  /** Report label of a case (default: its shape). */
  label?: (c: C) => string;
  seed?: number;
  /** Named inputs of a case (values should be fp32-representable: the GPU sees them as f32). */
  inputs: (c: C, rng: Rng) => Record<string, HostTensor>;
  /** Float64 forward: `y` (the output the loss is taken of) plus any saved tensors worth comparing. */
  cpuForward: (c: C, x: Named) => Named & { y: Float64Array };
  /** Float64 backward: a gradient per differentiable input name. */
  cpuBackward: (c: C, x: Named, dy: Float64Array, saved: Named) => Named;
  /** Record forward and backward on the GPU; outputs named as the CPU forward's keys (at least y). */
  gpuRecord: (ctx: GpuContext, io: GpuIo<C>) => { dispatches: Dispatch[]; outputs: Record<string, Tensor> };
  /** Forward tolerance (y and saved tensors). */
  atol: number;
  rtol: number;
  /** Gradient tolerance (default: the forward's). */
  gradAtol?: number;
  gradRtol?: number;
  /** Per-tensor overrides by name ('mean', 'dgamma' is the gradient of 'gamma': use 'grad:gamma'). */
  tol?: Record<string, Tolerance>;
  /** Whether a case's gradients accumulate (default: alternate by case index). */
  accumulate?: (c: C, index: number) => boolean;
  /** Finite differences of the CPU reference: cases up to maxSize elements (default 512); eps 1e-6; tolerance 1e-6 abs, 1e-5 rel. */
  fd?: { maxSize?: number; eps?: number; atol?: number; rtol?: number; maxChecks?: number };
}

export interface OpCheckReport {
  /** Largest absolute error per tensor name over every case ('y', 'mean', 'grad:x', ...). */
  maxAbs: Record<string, number>;
  /** Cases whose CPU backward was checked by finite differences. */
  fdCases: number;
  gpuCases: number;
}

const size = (s: readonly number[]) => s.reduce((a, b) => a * b, 1);

function describeMismatch(op: string, caseLabel: string, name: string, shape: readonly number[], got: ArrayLike<number>, want: ArrayLike<number>, t: Tolerance): string | null {
  const r = compareClose(got, want, { ...t, label: `${op} ${caseLabel} ${name}` });
  if (r.ok) return null;
  const where = r.worst >= 0 ? ` worst at [${unravel(r.worst, shape).join(', ')}] of shape [${shape.join(', ')}]` : '';
  return `${r.message}\n ${where}`;
}

/**
 * Check an op on every case: CPU backward vs finite differences (small cases), GPU forward and gradients
 * vs CPU. Throws one error listing every mismatch; returns the largest errors for logging.
 */
export async function checkOp<C extends { shape: readonly number[] }>(ctx: GpuContext, spec: OpSpec<C>): Promise<OpCheckReport> {
  const report: OpCheckReport = { maxAbs: {}, fdCases: 0, gpuCases: 0 };
  const failures: string[] = [];
  const fdMax = spec.fd?.maxSize ?? 512;
  const gradTol = { atol: spec.gradAtol ?? spec.atol, rtol: spec.gradRtol ?? spec.rtol };
  const tolFor = (name: string, isGrad: boolean): Tolerance => spec.tol?.[name] ?? (isGrad ? gradTol : { atol: spec.atol, rtol: spec.rtol });
  const note = (name: string, got: ArrayLike<number>, want: ArrayLike<number>) => {
    let m = 0;
    for (let i = 0; i < want.length; i++) m = Math.max(m, Math.abs(got[i] - want[i]));
    report.maxAbs[name] = Math.max(report.maxAbs[name] ?? 0, m);
  };

  for (const [index, c] of spec.cases.entries()) {
    const caseLabel = spec.label?.(c) ?? `[${c.shape.join(', ')}]`;
    const rng = new Rng((spec.seed ?? 1) * 7919 + index * 104729 + size(c.shape));
    const inputs = spec.inputs(c, rng);
    const x: Named = Object.fromEntries(Object.entries(inputs).map(([k, v]) => [k, v.data]));
    const saved = spec.cpuForward(c, x);
    const dy = Float64Array.from(rng.normals(saved.y.length));
    const grads = spec.cpuBackward(c, x, dy, saved);
    for (const k of Object.keys(grads)) {
      if (!(k in inputs)) throw new Error(`${spec.op}: cpuBackward returned a gradient for '${k}', which is not an input (${Object.keys(inputs).join(', ')})`);
    }

    // 1. The reference's backward against finite differences of its own forward.
    if (size(c.shape) <= fdMax) {
      report.fdCases++;
      for (const [name, analytic] of Object.entries(grads)) {
        try {
          checkGradient({
            label: `${spec.op} ${caseLabel} d${name}`,
            x: x[name],
            f: (v) => spec.cpuForward(c, { ...x, [name]: v }).y,
            analytic,
            weights: dy,
            eps: spec.fd?.eps,
            atol: spec.fd?.atol,
            rtol: spec.fd?.rtol,
            maxChecks: spec.fd?.maxChecks,
          });
        } catch (e) {
          failures.push(`CPU reference backward vs finite differences: ${(e as Error).message}`);
        }
      }
    }

    // 2. The GPU kernels against the reference.
    report.gpuCases++;
    const own: Tensor[] = [];
    const tensor = (shape: readonly number[], data?: ArrayLike<number>, label = 't') => {
      const t = ctx.tensor(shape, data, label);
      own.push(t);
      return t;
    };
    try {
      const accumulate = spec.accumulate ? spec.accumulate(c, index) : index % 2 === 1;
      const gpuInputs = Object.fromEntries(Object.entries(inputs).map(([k, v]) => [k, tensor(v.shape, v.data, k)]));
      const old: Record<string, Float32Array> = {};
      const gradTensors: Record<string, Tensor> = {};
      for (const k of Object.keys(grads)) {
        old[k] = accumulate ? rng.normals(grads[k].length) : new Float32Array(grads[k].length);
        // Not accumulating: start from garbage (NaN) so a kernel that forgets to write shows.
        gradTensors[k] = tensor(inputs[k].shape, accumulate ? old[k] : new Float32Array(grads[k].length).fill(NaN), `d${k}`);
      }
      const yShape = spec.outputShape?.(c) ?? c.shape;
      if (size(yShape) !== saved.y.length) throw new Error(`${spec.op} ${caseLabel}: outputShape [${yShape.join(', ')}] does not hold the CPU forward's ${saved.y.length} values`);
      const dyT = tensor(yShape, dy, 'dy');
      const { dispatches, outputs } = spec.gpuRecord(ctx, { case: c, inputs: gpuInputs, dy: dyT, grads: gradTensors, accumulate, tensor });
      if (!outputs.y) throw new Error(`${spec.op}: gpuRecord returned no 'y' output`);
      try {
        await ctx.run(dispatches);
      } finally {
        destroyDispatches(dispatches);
      }
      for (const [name, want] of Object.entries(saved)) {
        const t = outputs[name];
        if (!t) continue; // a saved tensor the GPU keeps in another form
        const got = await t.read();
        note(name, got, want);
        const m = describeMismatch(spec.op, caseLabel, name, t.shape, got, want, tolFor(name, false));
        if (m) failures.push(m);
      }
      for (const [name, want] of Object.entries(grads)) {
        const got = await gradTensors[name].read();
        const expected = accumulate ? want.map((v, i) => v + old[name][i]) : want;
        note(`grad:${name}`, got, expected);
        const m = describeMismatch(spec.op, `${caseLabel}${accumulate ? ' (accumulating)' : ''}`, `d${name}`, inputs[name].shape, got, expected, tolFor(`grad:${name}`, true));
        if (m) failures.push(m);
      }
    } finally {
      for (const t of own) t.destroy();
    }
  }
  if (failures.length) throw new Error(`${spec.op}: ${failures.length} mismatch(es)\n${failures.join('\n')}`);
  return report;
}

/**
 * Random NCHW shapes for an op's cases: sizes drawn in the given ranges, the channel count a multiple of
 * `channelMultiple`; the set always includes an odd non-square map and a 1x1 map.
 */
export function randomNchwShapes(seed: number, count: number, o: { n?: [number, number]; c?: [number, number]; hw?: [number, number]; channelMultiple?: number } = {}): number[][] {
  const rng = new Rng(seed);
  const [nLo, nHi] = o.n ?? [1, 3];
  const [cLo, cHi] = o.c ?? [1, 6];
  const [sLo, sHi] = o.hw ?? [1, 13];
  const mult = o.channelMultiple ?? 1;
  const channels = () => mult * rng.int(cLo, cHi + 1);
  const out: number[][] = [
    [rng.int(nLo, nHi + 1), channels(), 7, 5], // odd, non-square
    [rng.int(nLo, nHi + 1), channels(), 1, 1],
  ];
  while (out.length < count) out.push([rng.int(nLo, nHi + 1), channels(), rng.int(sLo, sHi + 1), rng.int(sLo, sHi + 1)]);
  return out.slice(0, Math.max(count, 0));
}
