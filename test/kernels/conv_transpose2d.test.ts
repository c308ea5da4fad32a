import { describe, it, expect, afterAll } from 'vitest';
import { testContext } from '../helpers/gpu.js';
import { checkGradient } from '../helpers/gradcheck.js';
import { Rng } from '../../src/runtime/random.js';
import { convTranspose2dForward, convTranspose2dBackwardInput, convTranspose2dBackwardWeight, convTranspose2dOutputShape, type ConvTranspose2dParams } from '../../src/kernels/conv_transpose2d.js';
import { recordConvCase, size } from '../helpers/conv_case.js';
import { convTranspose2dForwardCpu, convTranspose2dBackwardCpu } from '../../src/kernels/cpu/conv_transpose2d.js';
import { conv2dForwardCpu } from '../../src/kernels/cpu/conv2d.js';

const dot = (a: ArrayLike<number>, b: ArrayLike<number>) => {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += a[i] * b[i];
  return s;
};

interface Case {
  name: string;
  x: [number, number, number, number];
  /** [Cout, KH, KW] */
  w: [number, number, number];
  p: ConvTranspose2dParams;
  bias: boolean;
}

// The U-Net decoder's k4 s2 p1 (including the 1x1 bottleneck to 2x2), output padding, odd and non-square
// maps, batch > 1, channel counts not multiples of 4, kernels 1, 3, 4, 5, 7 and 1x7 / 7x1, strides 1, 2, 3
// and mixed per dimension (every output phase, including phases that no tap reaches), several tiles in
// every GEMM dimension, and a reduction long enough for split-K.
const CASES: Case[] = [
  { name: 'U-Net up k4s2p1', x: [2, 5, 3, 4], w: [3, 4, 4], p: { stride: 2, padding: 1 }, bias: true },
  { name: 'bottleneck 1x1 to 2x2 k4s2p1', x: [2, 7, 1, 1], w: [5, 4, 4], p: { stride: 2, padding: 1 }, bias: true },
  { name: 'output padding k3s2p1op1', x: [1, 3, 3, 4], w: [5, 3, 3], p: { stride: 2, padding: 1, outputPadding: 1 }, bias: false },
  { name: 'k3 s1 p1', x: [1, 6, 5, 7], w: [3, 3, 3], p: { stride: 1, padding: 1 }, bias: true },
  { name: 'k1 s1', x: [2, 7, 3, 5], w: [6, 1, 1], p: {}, bias: false },
  { name: 'k1 s2 op1 (phases without taps)', x: [1, 3, 4, 3], w: [5, 1, 1], p: { stride: 2, outputPadding: 1 }, bias: true },
  { name: 'k5 s3 p2 op2', x: [2, 3, 3, 4], w: [5, 5, 5], p: { stride: 3, padding: 2, outputPadding: 2 }, bias: true },
  { name: 'k7 s1 p3', x: [1, 3, 6, 5], w: [4, 7, 7], p: { padding: 3 }, bias: true },
  { name: 'k1x7 p(0,3)', x: [2, 5, 4, 9], w: [3, 1, 7], p: { padding: [0, 3] }, bias: false },
  { name: 'k7x1 p(3,0)', x: [1, 6, 9, 4], w: [7, 7, 1], p: { padding: [3, 0] }, bias: true },
  { name: 'stride (2,1) k(3,4) p(1,2) op(1,0)', x: [2, 3, 4, 5], w: [5, 3, 4], p: { stride: [2, 1], padding: [1, 2], outputPadding: [1, 0] }, bias: true },
  { name: 'wide: Cout 70, Cin 9, k4s2p1', x: [2, 9, 5, 5], w: [70, 4, 4], p: { stride: 2, padding: 1 }, bias: true },
  { name: 'long reduction (split-K)', x: [2, 3, 16, 15], w: [5, 3, 3], p: { padding: 1 }, bias: true },
  { name: 'long reduction k4s2p1 (split-K)', x: [2, 5, 12, 13], w: [3, 4, 4], p: { stride: 2, padding: 1 }, bias: false },
];

describe('conv_transpose2d CPU reference', () => {
  const gradCases: Case[] = [
    { name: 'k4s2p1', x: [2, 3, 3, 2], w: [2, 4, 4], p: { stride: 2, padding: 1 }, bias: true },
    { name: 'k(1,3) s(2,1) p(0,1) op(1,0)', x: [1, 2, 3, 4], w: [3, 1, 3], p: { stride: [2, 1], padding: [0, 1], outputPadding: [1, 0] }, bias: true },
    { name: 'k3 s1 no bias', x: [1, 3, 3, 3], w: [2, 3, 3], p: {}, bias: false },
  ];
  for (const c of gradCases) {
    it(`backward matches finite differences: ${c.name}`, () => {
      const rng = new Rng(size(c.x) * 5 + c.w[0]);
      const wShape = [c.x[1], c.w[0], c.w[1], c.w[2]];
      const x = Float64Array.from(rng.normals(size(c.x)));
      const w = Float64Array.from(rng.normals(size(wShape)));
      const b = c.bias ? Float64Array.from(rng.normals(c.w[0])) : null;
      const dy = Float64Array.from(rng.normals(size(convTranspose2dOutputShape(c.x, wShape, c.p))));
      const g = convTranspose2dBackwardCpu(dy, x, c.x, w, wShape, c.p, c.bias);
      const opts = { weights: dy, eps: 1e-3, atol: 1e-8, rtol: 1e-8 };
      checkGradient({ ...opts, label: `${c.name} dx`, x, f: (xx) => convTranspose2dForwardCpu(xx, c.x, w, wShape, b, c.p).data, analytic: g.dx });
      checkGradient({ ...opts, label: `${c.name} dw`, x: w, f: (ww) => convTranspose2dForwardCpu(x, c.x, ww, wShape, b, c.p).data, analytic: g.dw });
      if (b) checkGradient({ ...opts, label: `${c.name} db`, x: b, f: (bb) => convTranspose2dForwardCpu(x, c.x, w, wShape, bb, c.p).data, analytic: g.db! });
      expect(g.db === null).toBe(!c.bias);
    });
  }

  it('is the adjoint of conv2d: <conv2d(u, w), v> = <u, convT(v, w)>', () => {
    // Independent cross-check of the two references (one gathers, the other scatters).
    const rng = new Rng(3);
    const uShape = [2, 3, 7, 6];
    const wShape = [4, 3, 4, 4]; // conv2d [Cout, Cin, KH, KW] = convT [Cin', Cout', KH, KW] with Cin' = 4
    const p = { stride: 2, padding: 1 };
    const u = rng.normals(size(uShape));
    const w = rng.normals(size(wShape));
    const cu = conv2dForwardCpu(u, uShape, w, wShape, null, p);
    const v = rng.normals(size(cu.shape));
    // conv2d maps 7 rows to 3; convT maps 3 back to (3-1)*2 - 2 + 4 = 6, so output padding 1 restores 7 (and 6 for width).
    const tv = convTranspose2dForwardCpu(v, cu.shape, w, wShape, null, { ...p, outputPadding: [1, 0] });
    expect(tv.shape).toEqual(uShape);
    expect(dot(cu.data, v)).toBeCloseTo(dot(u, tv.data), 9);
  });

  it('matches a hand-computed example', () => {
    // One input pixel per channel-1 map [[1, 2]], kernel [[1, 10], [100, 1000]], stride 2: two stamps side by side.
    const y = convTranspose2dForwardCpu([1, 2], [1, 1, 1, 2], [1, 10, 100, 1000], [1, 1, 2, 2], [0.5], { stride: 2 });
    expect(y.shape).toEqual([1, 1, 2, 4]);
    expect(Array.from(y.data)).toEqual([1.5, 10.5, 2.5, 20.5, 100.5, 1000.5, 200.5, 2000.5]);
  });
});

type Impl = 'tiled' | 'direct';

describe('conv_transpose2d GPU vs CPU reference', async () => {
  const ctx = await testContext();
  // Largest abs error per kernel over all cases, printed at the end (the numbers quoted in reports).
  const worst: Record<string, number> = {};
  const note = (key: string, err: number) => (worst[key] = Math.max(worst[key] ?? 0, err));
  afterAll(() => {
    ctx.trimPool();
    console.log(`conv_transpose2d max abs error vs float64 CPU reference: ${Object.entries(worst).map(([k, v]) => `${k} ${v.toExponential(2)}`).join(', ')}`);
  });
  CASES.forEach((c, ci) => {
    for (const impl of ['tiled', 'direct'] as Impl[]) {
      const accumulate = (ci + (impl === 'direct' ? 1 : 0)) % 2 === 1;
      it(`${impl} ${c.name} x${c.x.join('x')} w${c.w.join('x')} bias=${c.bias} accumulate=${accumulate}`, async () => {
        // The public ops pick a kernel by shape ('auto'); force each family so both see every shape.
        const run = recordConvCase(ctx, c, true, new Rng(ci * 97 + 5), { impl }, accumulate);
        // fp32 sums of at most a few hundred O(1) terms.
        await run.check(impl, { atol: 2e-4, rtol: 1e-4 }, (k, err) => note(`${impl} ${k}`, err));
      });
    }
  });
});

describe('conv_transpose2d bad input', async () => {
  const ctx = await testContext();
  const make = (shape: number[]) => ctx.tensor(shape, undefined, 'bad');
  it('rejects a weight of the wrong rank and an input-channel mismatch', () => {
    const x = make([1, 4, 2, 2]);
    const y = make([1, 3, 4, 4]);
    const w3 = make([4, 3, 4]);
    const wBad = make([3, 4, 4, 4]); // conv2d layout by mistake: [Cout, Cin, ...]
    expect(() => convTranspose2dForward(ctx, y, x, w3, null, { stride: 2, padding: 1 })).toThrow(/convTranspose2d\.forward: w rank .*expected 4, got 3/);
    expect(() => convTranspose2dForward(ctx, y, x, wBad, null, { stride: 2, padding: 1 })).toThrow(/convTranspose2d\.forward: w in-channels .*expected 4, got 3/);
    for (const t of [x, y, w3, wBad]) t.destroy();
  });
  it('rejects a wrong output shape, bias length and db length', () => {
    const x = make([1, 4, 2, 2]);
    const w = make([4, 3, 4, 4]);
    const y = make([1, 3, 5, 4]);
    const yOk = make([1, 3, 4, 4]);
    const b = make([4]);
    expect(() => convTranspose2dForward(ctx, y, x, w, null, { stride: 2, padding: 1 })).toThrow(/convTranspose2d\.forward: y 'bad' shape: expected \[1, 3, 4, 4\], got \[1, 3, 5, 4\]/);
    expect(() => convTranspose2dForward(ctx, yOk, x, w, b, { stride: 2, padding: 1 })).toThrow(/convTranspose2d\.forward: b 'bad' shape: expected \[3\], got \[4\]/);
    expect(() => convTranspose2dBackwardWeight(ctx, w, b, yOk, x, { stride: 2, padding: 1 })).toThrow(/convTranspose2d\.backwardWeight: db 'bad' shape: expected \[3\], got \[4\]/);
    expect(() => convTranspose2dBackwardInput(ctx, x, y, w, { stride: 2, padding: 1 })).toThrow(/convTranspose2d\.backwardInput: dy 'bad' shape: expected \[1, 3, 4, 4\], got \[1, 3, 5, 4\]/);
    for (const t of [x, w, y, yOk, b]) t.destroy();
  });
  it('rejects output padding not smaller than the stride', () => {
    const x = make([1, 4, 2, 2]);
    const w = make([4, 3, 4, 4]);
    const y = make([1, 3, 6, 6]);
    expect(() => convTranspose2dForward(ctx, y, x, w, null, { stride: 2, padding: 1, outputPadding: 2 })).toThrow(
      /convTranspose2d\.forward: outputPadding \(must be smaller than stride\): expected < \[2, 2\], got \[2, 2\]/,
    );
    for (const t of [x, w, y]) t.destroy();
  });
  it('rejects a destroyed tensor and an output aliasing an input', () => {
    const x = make([1, 3, 4, 4]);
    const w = make([3, 3, 3, 3]);
    const dy = make([1, 3, 4, 4]);
    expect(() => convTranspose2dBackwardInput(ctx, dy, dy, w, { padding: 1 })).toThrow(/convTranspose2d\.backwardInput: dy and dx share one buffer/);
    dy.destroy();
    expect(() => convTranspose2dBackwardInput(ctx, x, dy, w, { padding: 1 })).toThrow(/convTranspose2d\.backwardInput: dy 'bad' used after destroy\(\)/);
    for (const t of [x, w]) t.destroy();
  });
});
