import { describe, it, expect, afterAll } from 'vitest';
import { testContext } from '../helpers/gpu.js';
import { checkGradient } from '../helpers/gradcheck.js';
import { checkOp, type HostTensor, type Named, type OpSpec } from '../helpers/op_check.js';
import { destroyDispatches } from '../../src/runtime/context.js';
import { Rng } from '../../src/runtime/random.js';
import {
  conv2dForward,
  conv2dForwardDirect,
  conv2dBackwardInput,
  conv2dBackwardInputDirect,
  conv2dBackwardWeight,
  conv2dBackwardWeightDirect,
  conv2dOutputShape,
  type Conv2dParams,
} from '../../src/kernels/conv2d.js';
import { conv2dForwardCpu, conv2dBackwardCpu } from '../../src/kernels/cpu/conv2d.js';

const size = (s: readonly number[]) => s.reduce((a, b) => a * b, 1);

interface Case {
  name: string;
  x: [number, number, number, number];
  /** [Cout, KH, KW] */
  w: [number, number, number];
  p: Conv2dParams;
  bias: boolean;
}

// Odd sizes, non-square maps and kernels, batch > 1, channel counts not multiples of 4, 1x1 maps (a 2x2 map
// through k4 s2 p1 is the U-Net's last down step), strides 1 and 2 (also mixed per dimension), kernels 1, 3, 4, 7 and the
// Inception-style 1x7 / 7x1 with their (0, 3) / (3, 0) padding; Cout > 64 and K > 16 exercise several
// tiles in every GEMM dimension.
const CASES: Case[] = [
  { name: 'U-Net down k4s2p1', x: [2, 3, 8, 6], w: [5, 4, 4], p: { stride: 2, padding: 1 }, bias: true },
  { name: '1x1 map k3s2p1', x: [2, 7, 1, 1], w: [5, 3, 3], p: { stride: 2, padding: 1 }, bias: true },
  { name: '2x2 map k4s2p1 to 1x1', x: [3, 5, 2, 2], w: [7, 4, 4], p: { stride: 2, padding: 1 }, bias: false },
  { name: 'k3 s1 p1 odd', x: [1, 5, 7, 9], w: [3, 3, 3], p: { stride: 1, padding: 1 }, bias: true },
  { name: 'k1 s1 p0', x: [2, 7, 5, 3], w: [6, 1, 1], p: {}, bias: false },
  { name: 'k1 s2 (phases without taps)', x: [1, 3, 7, 6], w: [5, 1, 1], p: { stride: 2 }, bias: true },
  { name: 'k7 s1 p3', x: [1, 3, 9, 8], w: [4, 7, 7], p: { stride: 1, padding: 3 }, bias: true },
  { name: 'k1x7 p(0,3)', x: [2, 5, 6, 9], w: [3, 1, 7], p: { padding: [0, 3] }, bias: false },
  { name: 'k7x1 p(3,0)', x: [1, 6, 9, 5], w: [7, 7, 1], p: { padding: [3, 0] }, bias: true },
  { name: 'stride (2,1) k(3,4) p(1,2)', x: [2, 3, 7, 6], w: [5, 3, 4], p: { stride: [2, 1], padding: [1, 2] }, bias: true },
  { name: 'PatchGAN k4s1p1', x: [1, 9, 5, 6], w: [1, 4, 4], p: { stride: 1, padding: 1 }, bias: true },
  { name: 'wide: Cout 70, K 144, 2 tiles each way', x: [2, 9, 9, 9], w: [70, 4, 4], p: { stride: 2, padding: 1 }, bias: true },
  { name: 'long reduction (split-K)', x: [2, 3, 24, 22], w: [5, 3, 3], p: { stride: 1, padding: 1 }, bias: true },
  { name: 'long reduction k1 s2 (split-K)', x: [3, 5, 20, 17], w: [6, 1, 1], p: { stride: 2 }, bias: false },
];

describe('conv2d CPU reference', () => {
  const gradCases: Case[] = [
    { name: 'k4s2p1', x: [2, 3, 5, 4], w: [2, 4, 4], p: { stride: 2, padding: 1 }, bias: true },
    { name: 'k(1,3) s(1,2) p(0,1)', x: [1, 2, 3, 5], w: [3, 1, 3], p: { stride: [1, 2], padding: [0, 1] }, bias: true },
    { name: 'k3 s1 p0 no bias', x: [1, 3, 4, 4], w: [2, 3, 3], p: {}, bias: false },
  ];
  for (const c of gradCases) {
    it(`backward matches finite differences: ${c.name}`, () => {
      const rng = new Rng(size(c.x) * 7 + c.w[0]);
      const [N, Cin] = c.x;
      const wShape = [c.w[0], Cin, c.w[1], c.w[2]];
      const x = Float64Array.from(rng.normals(size(c.x)));
      const w = Float64Array.from(rng.normals(size(wShape)));
      const b = c.bias ? Float64Array.from(rng.normals(c.w[0])) : null;
      const yShape = conv2dOutputShape(c.x, wShape, c.p);
      const dy = Float64Array.from(rng.normals(size(yShape)));
      const g = conv2dBackwardCpu(dy, x, c.x, w, wShape, c.p, c.bias);
      // The forward is linear in each argument, so central differences are exact up to rounding (eps 1e-3).
      const opts = { weights: dy, eps: 1e-3, atol: 1e-8, rtol: 1e-8 };
      checkGradient({ ...opts, label: `${c.name} dx`, x, f: (xx) => conv2dForwardCpu(xx, c.x, w, wShape, b, c.p).data, analytic: g.dx });
      checkGradient({ ...opts, label: `${c.name} dw`, x: w, f: (ww) => conv2dForwardCpu(x, c.x, ww, wShape, b, c.p).data, analytic: g.dw });
      if (b) checkGradient({ ...opts, label: `${c.name} db`, x: b, f: (bb) => conv2dForwardCpu(x, c.x, w, wShape, bb, c.p).data, analytic: g.db! });
      expect(g.db === null).toBe(!c.bias);
      expect(N).toBeGreaterThan(0);
    });
  }

  it('matches a hand-computed 3x3 example', () => {
    // x = 1..9 in a 3x3 map, w = [[1, 0], [0, -1]] (2x2), stride 1, no padding: y[i, j] = x[i, j] - x[i+1, j+1] = -4.
    const y = conv2dForwardCpu([1, 2, 3, 4, 5, 6, 7, 8, 9], [1, 1, 3, 3], [1, 0, 0, -1], [1, 1, 2, 2], [0.5], {});
    expect(y.shape).toEqual([1, 1, 2, 2]);
    expect(Array.from(y.data)).toEqual([-3.5, -3.5, -3.5, -3.5]);
  });
});

type Impl = 'tiled' | 'direct';
const KERNELS = {
  tiled: { forward: conv2dForward, backwardInput: conv2dBackwardInput, backwardWeight: conv2dBackwardWeight },
  direct: { forward: conv2dForwardDirect, backwardInput: conv2dBackwardInputDirect, backwardWeight: conv2dBackwardWeightDirect },
};

describe('conv2d GPU vs CPU reference', async () => {
  const ctx = await testContext();
  // Largest abs error per kernel over all cases, printed at the end (the numbers quoted in reports).
  const worst: Record<string, number> = {};
  afterAll(() => {
    ctx.trimPool();
    console.log(`conv2d max abs error vs float64 CPU reference: ${Object.entries(worst).map(([k, v]) => `${k} ${v.toExponential(2)}`).join(', ')}`);
  });
  type OpCase = Case & { shape: readonly number[] };
  const wShapeOf = (c: Case) => [c.w[0], c.x[1], c.w[1], c.w[2]];
  const spec = (impl: Impl, accumulate: boolean): Omit<OpSpec<OpCase>, 'cases'> => ({
    op: `conv2d ${impl}`,
    label: (c) => `${c.name} x${c.x.join('x')} w${c.w.join('x')} bias=${c.bias}`,
    outputShape: (c) => conv2dOutputShape(c.x, wShapeOf(c), c.p),
    inputs: (c, rng): Record<string, HostTensor> => {
      const ws = wShapeOf(c);
      const inputs: Record<string, HostTensor> = {
        x: { shape: c.x, data: Float64Array.from(rng.normals(size(c.x))) },
        w: { shape: ws, data: Float64Array.from(rng.normals(size(ws), 0.5)) },
      };
      if (c.bias) inputs.b = { shape: [c.w[0]], data: Float64Array.from(rng.normals(c.w[0])) };
      return inputs;
    },
    cpuForward: (c, i) => ({ y: conv2dForwardCpu(i.x, c.x, i.w, wShapeOf(c), i.b ?? null, c.p).data }),
    cpuBackward: (c, i, dy): Named => {
      const g = conv2dBackwardCpu(dy, i.x, c.x, i.w, wShapeOf(c), c.p, c.bias);
      return c.bias ? { x: g.dx, w: g.dw, b: g.db! } : { x: g.dx, w: g.dw };
    },
    gpuRecord: (ctx, { case: c, inputs, dy, grads, accumulate: acc, tensor }) => {
      const k = KERNELS[impl];
      // The public ops pick a kernel by shape ('auto'); force each family so both see every shape.
      const cp = { ...c.p, impl };
      const yShape = conv2dOutputShape(c.x, wShapeOf(c), c.p);
      const y = tensor(yShape, new Float32Array(size(yShape)).fill(NaN), 'y'); // garbage: forward must overwrite
      return {
        dispatches: [
          ...k.forward(ctx, y, inputs.x, inputs.w, inputs.b ?? null, cp),
          ...k.backwardInput(ctx, grads.x, dy, inputs.w, { ...cp, accumulate: acc }),
          ...k.backwardWeight(ctx, grads.w, grads.b ?? null, dy, inputs.x, { ...cp, accumulate: acc }),
        ],
        outputs: { y },
      };
    },
    // fp32 sums of at most a few hundred O(1) terms: errors ~1e-6 relative to the sum of |terms|.
    atol: 2e-4,
    rtol: 1e-4,
    accumulate: () => accumulate,
    // The forward is linear in each argument, so central differences are exact up to rounding (eps 1e-3);
    // checked once per case (with the tiled kernels).
    fd: { maxSize: impl === 'tiled' ? 512 : 0, eps: 1e-3, atol: 1e-8, rtol: 1e-8 },
  });
  CASES.forEach((c, ci) => {
    for (const impl of ['tiled', 'direct'] as Impl[]) {
      // Alternate accumulate so each implementation sees both over the case list.
      const accumulate = (ci + (impl === 'direct' ? 1 : 0)) % 2 === 1;
      it(`${impl} ${c.name} x${c.x.join('x')} w${c.w.join('x')} bias=${c.bias} accumulate=${accumulate}`, async () => {
        const r = await checkOp(ctx, { ...spec(impl, accumulate), seed: ci * 101 + 13, cases: [{ ...c, shape: c.x }] });
        for (const [key, v] of Object.entries(r.maxAbs)) worst[`${impl} ${key.replace('grad:', 'd')}`] = Math.max(worst[`${impl} ${key.replace('grad:', 'd')}`] ?? 0, v);
        if (impl === 'tiled' && c.name.includes('split-K')) {
          // Proves the two-pass path ran: partial sums, then their reduction (then the bias gradient).
          const wShape = wShapeOf(c);
          const yShape = conv2dOutputShape(c.x, wShape, c.p);
          const [x, dw, dy] = [ctx.tensor(c.x), ctx.tensor(wShape), ctx.tensor(yShape)];
          const d = KERNELS.tiled.backwardWeight(ctx, dw, null, dy, x, { ...c.p, impl });
          expect(d.map((e) => e.pipeline.label)).toEqual(['conv2d.backwardWeight.tiled.pipeline', 'conv2d.backwardWeight.sum_splits.pipeline']);
          destroyDispatches(d);
          for (const t of [x, dw, dy]) t.destroy();
        }
      });
    }
  });
});

describe('conv2d kernel choice', async () => {
  const ctx = await testContext();
  it("'auto' runs the direct kernel for few output channels and the tiled one otherwise", () => {
    const x = ctx.tensor([1, 4, 8, 8], undefined, 'x');
    const wSmall = ctx.tensor([3, 4, 3, 3], undefined, 'wSmall');
    const wBig = ctx.tensor([32, 4, 3, 3], undefined, 'wBig');
    const ySmall = ctx.tensor([1, 3, 8, 8], undefined, 'ySmall');
    const yBig = ctx.tensor([1, 32, 8, 8], undefined, 'yBig');
    const small = conv2dForward(ctx, ySmall, x, wSmall, null, { padding: 1 });
    const big = conv2dForward(ctx, yBig, x, wBig, null, { padding: 1 });
    const forced = conv2dForward(ctx, ySmall, x, wSmall, null, { padding: 1, impl: 'tiled' });
    expect(small[0].pipeline.label).toBe('conv2d.forward.direct.pipeline');
    expect(big[0].pipeline.label).toBe('conv2d.forward.tiled.pipeline');
    expect(forced[0].pipeline.label).toBe('conv2d.forward.tiled.pipeline');
    destroyDispatches([...small, ...big, ...forced]);
    for (const t of [x, wSmall, wBig, ySmall, yBig]) t.destroy();
  });
});

describe('conv2d bad input', async () => {
  const ctx = await testContext();
  const make = (shape: number[]) => ctx.tensor(shape, undefined, 'bad');
  it('rejects a weight of the wrong rank', () => {
    const x = make([1, 3, 4, 4]);
    const w = make([8, 3, 4]);
    const y = make([1, 8, 2, 2]);
    expect(() => conv2dForward(ctx, y, x, w, null, { stride: 2, padding: 1 })).toThrow(/conv2d\.forward: w rank .*expected 4, got 3/);
    for (const t of [x, w, y]) t.destroy();
  });
  it('rejects an input-channel mismatch', () => {
    const x = make([1, 3, 4, 4]);
    const w = make([8, 5, 4, 4]);
    const y = make([1, 8, 2, 2]);
    expect(() => conv2dForward(ctx, y, x, w, null, { stride: 2, padding: 1 })).toThrow(/conv2d\.forward: w in-channels .*expected 3, got 5/);
    for (const t of [x, w, y]) t.destroy();
  });
  it('rejects a wrong output shape', () => {
    const x = make([1, 3, 4, 4]);
    const w = make([8, 3, 4, 4]);
    const y = make([1, 8, 4, 4]);
    expect(() => conv2dForward(ctx, y, x, w, null, { stride: 2, padding: 1 })).toThrow(/conv2d\.forward: y 'bad' shape: expected \[1, 8, 2, 2\], got \[1, 8, 4, 4\]/);
    for (const t of [x, w, y]) t.destroy();
  });
  it('rejects a wrong bias length and a wrong db length', () => {
    const x = make([1, 3, 4, 4]);
    const w = make([8, 3, 4, 4]);
    const b = make([7]);
    const y = make([1, 8, 2, 2]);
    expect(() => conv2dForward(ctx, y, x, w, b, { stride: 2, padding: 1 })).toThrow(/conv2d\.forward: b 'bad' shape: expected \[8\], got \[7\]/);
    expect(() => conv2dBackwardWeight(ctx, w, b, y, x, { stride: 2, padding: 1 })).toThrow(/conv2d\.backwardWeight: db 'bad' shape: expected \[8\], got \[7\]/);
    for (const t of [x, w, b, y]) t.destroy();
  });
  it('rejects a dy that does not match dx and w', () => {
    const dx = make([2, 3, 8, 8]);
    const w = make([4, 3, 4, 4]);
    const dy = make([2, 4, 3, 4]);
    expect(() => conv2dBackwardInput(ctx, dx, dy, w, { stride: 2, padding: 1 })).toThrow(/conv2d\.backwardInput: dy 'bad' shape: expected \[2, 4, 4, 4\], got \[2, 4, 3, 4\]/);
    expect(() => conv2dBackwardWeight(ctx, w, null, dy, dx, { stride: 2, padding: 1 })).toThrow(/conv2d\.backwardWeight: dy 'bad' shape: expected \[2, 4, 4, 4\], got \[2, 4, 3, 4\]/);
    for (const t of [dx, w, dy]) t.destroy();
  });
  it('rejects a kernel larger than the padded input, and bad strides', () => {
    const x = make([1, 3, 2, 2]);
    const w = make([4, 3, 4, 4]);
    const y = make([1, 4, 1, 1]);
    expect(() => conv2dForward(ctx, y, x, w, null, {})).toThrow(/conv2d\.forward: output size .*expected >= 1x1, got -1x-1/);
    expect(() => conv2dForward(ctx, y, x, w, null, { stride: 0, padding: 1 })).toThrow(/conv2d\.forward: stride: expected an integer >= 1, got 0/);
    expect(() => conv2dForward(ctx, y, x, w, null, { stride: 2, padding: 1.5 })).toThrow(/conv2d\.forward: padding: expected an integer >= 0, got 1.5/);
    const x4 = make([1, 3, 4, 4]);
    const y2 = make([1, 4, 2, 2]);
    expect(() => conv2dForward(ctx, y2, x4, w, null, { stride: 2, padding: 1, impl: 'fast' as 'tiled' })).toThrow(/conv2d\.forward: impl: expected 'auto', 'tiled', 'direct', 'blocked' or 'taps', got fast/);
    x4.destroy();
    y2.destroy();
    for (const t of [x, w, y]) t.destroy();
  });
  it('rejects a grid beyond the device limit (more channels than workgroups per dimension)', () => {
    const limit = ctx.limits.maxComputeWorkgroupsPerDimension;
    // The blocked gather with 8 rows puts 8 output channels per workgroup along z (rows set: on lavapipe the
    // policy would take 16 for this 1-pixel output, which halves the grid).
    const C = 8 * (limit + 1);
    const x = make([1, 1, 2, 2]);
    const w = make([C, 1, 4, 4]);
    const y = make([1, C, 1, 1]);
    expect(() => conv2dForward(ctx, y, x, w, null, { stride: 2, padding: 1, impl: 'blocked', blocked: { rows: 8 } })).toThrow(
      new RegExp(`conv2d\\.forward: workgroups per dimension is ${limit + 1}, beyond this device's limit of ${limit}`),
    );
    for (const t of [x, w, y]) t.destroy();
    // The bias gradient of that many channels (once one workgroup per channel) now folds them 64 to a workgroup.
    const x1 = make([1, 1, 1, 1]);
    const dw = make([limit + 5, 1, 1, 1]);
    const db = make([limit + 5]);
    const dy = make([1, limit + 5, 1, 1]);
    destroyDispatches(conv2dBackwardWeight(ctx, dw, db, dy, x1, {}));
    for (const t of [x1, dw, db, dy]) t.destroy();
  });
  it('rejects a destroyed tensor and an output aliasing an input', () => {
    const x = make([1, 3, 4, 4]);
    const w = make([3, 3, 3, 3]);
    const y = make([1, 3, 4, 4]);
    expect(() => conv2dForward(ctx, x, x, w, null, { padding: 1 })).toThrow(/conv2d\.forward: x and y share one buffer/);
    w.destroy();
    expect(() => conv2dForward(ctx, y, x, w, null, { padding: 1 })).toThrow(/conv2d\.forward: w 'bad' used after destroy\(\)/);
    for (const t of [x, y]) t.destroy();
  });
  it('rejects a tensor of another context', async () => {
    const { createContext } = await import('../../src/runtime/device.js');
    const other = await createContext();
    const x = make([1, 3, 4, 4]);
    const w = other.tensor([3, 3, 3, 3], undefined, 'foreign');
    const y = make([1, 3, 4, 4]);
    expect(() => conv2dForward(ctx, y, x, w, null, { padding: 1 })).toThrow(/conv2d\.forward: w 'foreign' belongs to another device\/context/);
    for (const t of [x, y, w]) t.destroy();
    other.destroy();
  });
});
