// The tap-blocked weight-gradient kernels (impl 'taps': shaders/conv_weight_grad_taps.wgsl and, with
// subgroups, the generated shaders/conv_weight_grad_taps_sg.wgsl) against the float64 CPU references, for
// conv2d (dw and the fused db column) and conv_transpose2d (dw; db by the bias_grad pass): fixed edge cases
// (1x1 maps, odd channel counts, batch > 1, strides 1-3 and mixed, kernels 1..4 and 1x7 / 4x2, rows past M,
// kernel rows past KH, the pix2pix k4 s2 p1 and k4 s1 p1 shapes) and seeded random shapes, each with and
// without subgroups, accumulate on and off, and several launch shapes (rows, kernel rows, pixels per step,
// workgroup size, row splits); the bias gradient pass both ways (serial and workgroup per channel); and that
// conv2d's bias gradient adds no column block to the grid.
// A mismatch reports the index, value and error (test/helpers/compare.ts).
import { describe, it, expect, afterAll } from 'vitest';
import { runAndRead, testContext } from '../helpers/gpu.js';
import { expectClose, unravel } from '../helpers/compare.js';
import { destroyDispatches, type Dispatch } from '../../src/runtime/context.js';
import { Rng } from '../../src/runtime/random.js';
import { conv2dBackwardWeight, conv2dOutputShape, encodeBiasGrad, type BlockedTuning } from '../../src/kernels/conv2d.js';
import { convTranspose2dBackwardWeight, convTranspose2dOutputShape } from '../../src/kernels/conv_transpose2d.js';
import { conv2dBackwardCpu } from '../../src/kernels/cpu/conv2d.js';
import { convTranspose2dBackwardCpu } from '../../src/kernels/cpu/conv_transpose2d.js';
import { deviceClass, isSoftwareClass } from '../../src/kernels/conv/device_class.js';
import { size, type ConvCase } from '../helpers/conv_case.js';

interface Case extends ConvCase {
  transposed: boolean;
}

const k4s2 = { stride: 2, padding: 1 };
const FIXED: Case[] = [
  { name: 'U-Net down k4s2p1', transposed: false, x: [2, 3, 8, 6], w: [5, 4, 4], p: k4s2, bias: true },
  { name: 'PatchGAN k4s1p1 to 1 channel', transposed: false, x: [2, 9, 5, 6], w: [1, 4, 4], p: { stride: 1, padding: 1 }, bias: true },
  { name: 'PatchGAN k4s1p1 32->64 shape', transposed: false, x: [1, 32, 8, 16], w: [64, 4, 4], p: { stride: 1, padding: 1 }, bias: true },
  { name: 'conv 6->8 64x128 (splits)', transposed: false, x: [1, 6, 64, 128], w: [8, 4, 4], p: k4s2, bias: true },
  { name: '2x2 map to 1x1', transposed: false, x: [3, 5, 2, 2], w: [7, 4, 4], p: k4s2, bias: false },
  { name: '1x1 map k3s2p1', transposed: false, x: [2, 7, 1, 1], w: [5, 3, 3], p: { stride: 2, padding: 1 }, bias: true },
  { name: 'k1 s2', transposed: false, x: [1, 3, 7, 6], w: [5, 1, 1], p: { stride: 2 }, bias: true },
  { name: 'k1x7 p(0,3)', transposed: false, x: [2, 5, 6, 9], w: [3, 1, 7], p: { padding: [0, 3] }, bias: false },
  { name: 'k4x2 s(1,3) p(2,0)', transposed: false, x: [2, 3, 7, 11], w: [6, 4, 2], p: { stride: [1, 3], padding: [2, 0] }, bias: true },
  { name: 'stride (2,1) k(3,4) p(1,2)', transposed: false, x: [2, 3, 7, 6], w: [5, 3, 4], p: { stride: [2, 1], padding: [1, 2] }, bias: true },
  { name: 'Cout 70 (row blocks, rows past M)', transposed: false, x: [2, 9, 9, 9], w: [70, 4, 4], p: k4s2, bias: true },
  { name: 'rows 1, one split', transposed: false, x: [2, 5, 9, 7], w: [3, 4, 4], p: k4s2, bias: true, tuning: { rows: 1, splits: 1 } },
  { name: 'rows 3, kernel rows 3 (past KH)', transposed: false, x: [1, 4, 9, 10], w: [7, 4, 4], p: { stride: 1, padding: 1 }, bias: true, tuning: { rows: 3, kernelRows: 3 } },
  { name: 'rows 16, pixels 1, wg 8', transposed: false, x: [2, 3, 11, 6], w: [37, 4, 4], p: k4s2, bias: false, tuning: { rows: 16, pixels: 1, wg: 8 } },
  { name: 'kernel rows 4, rows 4, a split per row', transposed: false, x: [3, 4, 9, 8], w: [6, 4, 4], p: k4s2, bias: true, tuning: { rows: 4, kernelRows: 4, splits: 1000 } },
  { name: 'kernel rows 2, pixels 9 (span 20)', transposed: false, x: [2, 5, 7, 21], w: [5, 4, 4], p: k4s2, bias: true, tuning: { kernelRows: 2, pixels: 9 } },
  { name: 'pixels 3 on an odd row, wg 32', transposed: false, x: [2, 5, 7, 13], w: [5, 4, 4], p: { stride: 1, padding: 1 }, bias: true, tuning: { pixels: 3, wg: 32 } },
  // The bias summed from the broadcast grad values (no bias column): several row and column blocks, rows
  // past M, splits, and step lists that do not fill the subgroup's lanes (rows 3 x pixels 3 = 9 values).
  { name: 'bias with 2 column blocks, 5 row blocks, 3 splits', transposed: false, x: [2, 32, 9, 7], w: [37, 4, 4], p: k4s2, bias: true, tuning: { splits: 3 } },
  { name: 'bias, rows 3, pixels 3, 2 splits', transposed: false, x: [3, 5, 11, 6], w: [7, 3, 4], p: { stride: [1, 2], padding: 1 }, bias: true, tuning: { rows: 3, pixels: 3, splits: 2 } },
  { name: 'U-Net up k4s2p1', transposed: true, x: [2, 5, 3, 4], w: [3, 4, 4], p: k4s2, bias: true },
  { name: 'bottleneck 1x1 to 2x2', transposed: true, x: [2, 7, 1, 1], w: [5, 4, 4], p: k4s2, bias: true },
  { name: 'convT 128->32 4x8 shape', transposed: true, x: [1, 128, 4, 8], w: [32, 4, 4], p: k4s2, bias: true },
  { name: 'output padding k3s2p1op1', transposed: true, x: [1, 3, 3, 4], w: [5, 3, 3], p: { stride: 2, padding: 1, outputPadding: 1 }, bias: false },
  { name: 'k3 s3 p2 op2', transposed: true, x: [2, 3, 3, 4], w: [5, 3, 3], p: { stride: 3, padding: 2, outputPadding: 2 }, bias: true },
  { name: 'Cout 70, Cin 9, kernel rows 2', transposed: true, x: [2, 9, 5, 5], w: [70, 4, 4], p: k4s2, bias: true, tuning: { kernelRows: 2 } },
  { name: 'rows 32 (M 33), a split per row', transposed: true, x: [2, 33, 5, 6], w: [3, 2, 2], p: k4s2, bias: true, tuning: { rows: 32, splits: 1000 } },
];

/** Seeded random shapes: batch 1-3, channels 1-13, maps 1-12 (non-square), kernels up to 4x4, strides 1-3. */
function randomCases(count: number, seed: number): Case[] {
  const rng = new Rng(seed);
  const out: Case[] = [];
  while (out.length < count) {
    const transposed = rng.bool();
    const KH = rng.int(1, 5);
    const KW = rng.int(1, 5);
    const sh = rng.int(1, 4);
    const sw = rng.int(1, 4);
    const ph = rng.int(0, KH);
    const pw = rng.int(0, KW);
    const x: Case['x'] = [rng.int(1, 4), rng.int(1, 14), rng.int(1, 13), rng.int(1, 13)];
    const p: Case['p'] = { stride: [sh, sw], padding: [ph, pw] };
    if (transposed) p.outputPadding = [rng.int(0, sh), rng.int(0, sw)];
    const w: Case['w'] = [rng.int(1, 14), KH, KW];
    const wShape = transposed ? [x[1], w[0], KH, KW] : [w[0], x[1], KH, KW];
    try {
      if (transposed) convTranspose2dOutputShape(x, wShape, p);
      else conv2dOutputShape(x, wShape, p);
    } catch {
      continue; // padding larger than the kernel allows, or an empty output
    }
    const tuning: BlockedTuning = {};
    if (rng.bool(0.3)) tuning.kernelRows = rng.int(1, 5);
    if (rng.bool(0.3)) tuning.rows = rng.int(1, Math.min(16, Math.floor(64 / ((tuning.kernelRows ?? 1) * KW))) + 1);
    if (rng.bool(0.3)) tuning.splits = rng.int(1, 6);
    out.push({ name: `random ${out.length}`, transposed, x, w, p, bias: rng.bool(), tuning });
  }
  return out;
}

describe('tap-blocked weight-gradient kernels vs float64 CPU reference', async () => {
  const ctx = await testContext();
  const hasSubgroups = ctx.features.has('subgroups');
  const worst: Record<string, number> = {};
  const note = (key: string, err: number) => (worst[key] = Math.max(worst[key] ?? 0, err));
  afterAll(() => {
    ctx.trimPool();
    console.log(`taps weight grad max abs error vs float64 CPU reference: ${Object.entries(worst).map(([k, v]) => `${k} ${v.toExponential(2)}`).join(', ')}`);
  });
  // fp32 sums of up to a few thousand O(1) products (conv 6->8 64x128: 2048 pixels per weight).
  const tol = { atol: 1e-3, rtol: 1e-4 };

  const cases = [...FIXED, ...randomCases(24, 20251127)];
  cases.forEach((c, ci) => {
    for (const subgroups of hasSubgroups ? [true, false] : [false]) {
      for (const accumulate of [false, true]) {
        const op = c.transposed ? 'conv_transpose2d' : 'conv2d';
        const tag = `${op} ${c.name} x${c.x.join('x')} w${c.w.join('x')} p${JSON.stringify(c.p)} bias=${c.bias} ${JSON.stringify(c.tuning ?? {})} subgroups=${subgroups} accumulate=${accumulate}`;
        it(tag, async () => {
          const rng = new Rng(ci * 977 + (subgroups ? 5 : 0) + (accumulate ? 1000 : 0));
          const wShape = c.transposed ? [c.x[1], c.w[0], c.w[1], c.w[2]] : [c.w[0], c.x[1], c.w[1], c.w[2]];
          const yShape = c.transposed ? convTranspose2dOutputShape(c.x, wShape, c.p) : conv2dOutputShape(c.x, wShape, c.p);
          const bSize = c.w[0];
          const xData = rng.normals(size(c.x));
          const wData = rng.normals(size(wShape), 0.5);
          const dyData = rng.normals(size(yShape));
          const dwOld = rng.normals(size(wShape));
          const dbOld = rng.normals(bSize);
          const x = ctx.tensor(c.x, xData, 'x');
          const dy = ctx.tensor(yShape, dyData, 'dy');
          const dw = ctx.tensor(wShape, dwOld, 'dw');
          const db = c.bias ? ctx.tensor([bSize], dbOld, 'db') : null;
          const bp = { ...c.p, impl: 'taps' as const, blocked: { ...c.tuning, subgroups }, accumulate };
          const d = c.transposed ? convTranspose2dBackwardWeight(ctx, dw, db, dy, x, bp) : conv2dBackwardWeight(ctx, dw, db, dy, x, bp);
          expect(d[0].pipeline.label).toMatch(subgroups ? /\.weight_grad_taps_sg\.pipeline$/ : /\.weight_grad_taps\.pipeline$/);
          const g = c.transposed ? convTranspose2dBackwardCpu(dyData, xData, c.x, wData, wShape, c.p, c.bias) : conv2dBackwardCpu(dyData, xData, c.x, wData, wShape, c.p, c.bias);
          const plus = (r: Float64Array, old: Float32Array) => (accumulate ? r.map((v, i) => v + old[i]) : r);
          const key = subgroups ? 'subgroups' : 'plain';
          const got = await runAndRead(ctx, d, dw);
          try {
            note(`${key} dw`, expectClose(got, plus(g.dw, dwOld), { ...tol, label: `${op} dw ${wShape.join('x')}` }));
          } catch (e) {
            // Name the first bad weight as [row, channel, kh, kw] as well as its flat index.
            const want = plus(g.dw, dwOld);
            const bad = got.findIndex((v, i) => !(Math.abs(v - want[i]) <= tol.atol + tol.rtol * Math.abs(want[i])));
            throw new Error(`${(e as Error).message}\n  first bad weight at [${unravel(bad, wShape).join(', ')}]`);
          }
          if (db) note(`${key} db`, expectClose(await db.read(), plus(g.db!, dbOld), { ...tol, label: `${op} db` }));
          for (const t of [x, dy, dw, db]) t?.destroy();
        });
      }
    }
  });

  // The bias gradient pass (conv_transpose2d's db, and conv2d's with the tiled and direct kernels): one thread
  // per channel up to 8192 values per channel, a workgroup per channel above; both forced on every shape.
  const BIAS_SHAPES = [[1, 3, 64, 128], [2, 5, 1, 1], [3, 7, 5, 9], [2, 3, 65, 71], [1, 67, 3, 2], [1, 1, 97, 89]];
  for (const shape of BIAS_SHAPES) {
    for (const serial of [true, false, undefined]) {
      for (const accumulate of [false, true]) {
        it(`bias grad ${shape.join('x')} serial=${serial ?? 'auto'} accumulate=${accumulate}`, async () => {
          const [N, C, H, W] = shape;
          const rng = new Rng(N * 1000 + C * 10 + H + (accumulate ? 7 : 0));
          const dyData = rng.normals(size(shape));
          const old = rng.normals(C);
          const dy = ctx.tensor(shape, dyData, 'dy');
          const db = ctx.tensor([C], old, 'db');
          const d = [encodeBiasGrad(ctx, 'bias_grad test', db, dy, accumulate, serial)];
          expect(d[0].pipeline.label).toMatch((serial ?? N * H * W <= 8192) ? /\.bias_grad_serial\.pipeline$/ : /\.bias_grad\.pipeline$/);
          const want = new Float64Array(C);
          for (let n = 0; n < N; n++) for (let c = 0; c < C; c++) for (let i = 0; i < H * W; i++) want[c] += dyData[(n * C + c) * H * W + i];
          if (accumulate) want.forEach((v, c) => (want[c] = v + old[c]));
          // Sums of up to 2 * 65 * 71 values of size ~1 in fp32.
          note('bias grad', expectClose(await runAndRead(ctx, d, db), want, { atol: 2e-3, rtol: 1e-4, label: `db of ${shape.join('x')}` }));
          dy.destroy();
          db.destroy();
        });
      }
    }
  }

  it("impl 'taps' means 'blocked' for forward and grad input, and checks its launch shape", () => {
    const x = ctx.tensor([1, 3, 16, 16], undefined, 'x');
    const dw = ctx.tensor([4, 3, 4, 4], undefined, 'dw');
    const db = ctx.tensor([4], undefined, 'db');
    const dy = ctx.tensor([1, 4, 8, 8], undefined, 'dy');
    const labels = (d: Dispatch[]) => {
      const l = d.map((e) => e.pipeline.label.split('.').slice(-2, -1)[0]);
      destroyDispatches(d);
      return l;
    };
    const p = { stride: 2, padding: 1, impl: 'taps' as const };
    expect(labels(conv2dBackwardWeight(ctx, dw, db, dy, x, { ...p, blocked: { splits: 1, subgroups: false } }))).toEqual(['weight_grad_taps']);
    expect(labels(conv2dBackwardWeight(ctx, dw, db, dy, x, { ...p, blocked: { splits: 4, subgroups: false } }))).toEqual(['weight_grad_taps', 'sum_splits_bias']);
    // 8 rows x 3 kernel rows x 4 taps = 96 accumulators > 64.
    expect(() => conv2dBackwardWeight(ctx, dw, db, dy, x, { ...p, blocked: { rows: 8, kernelRows: 3 } })).toThrow(/rows per thread: expected 1\.\.5, got 8/);
    // Span (pixels - 1) * 2 + 4 <= 20.
    expect(() => conv2dBackwardWeight(ctx, dw, db, dy, x, { ...p, blocked: { pixels: 10 } })).toThrow(/pixels per step: expected 1\.\.9, got 10/);
    for (const t of [x, dw, db, dy]) t.destroy();
  });

  it('the bias gradient takes no column of its own (conv 16->32 k4: its 64 columns fill one workgroup, as without a bias)', () => {
    const x = ctx.tensor([1, 16, 16, 32], undefined, 'x');
    const dw = ctx.tensor([32, 16, 4, 4], undefined, 'dw');
    const db = ctx.tensor([32], undefined, 'db');
    const dy = ctx.tensor([1, 32, 8, 16], undefined, 'dy');
    for (const subgroups of ctx.features.has('subgroups') ? [true, false] : [false]) {
      for (const bias of [db, null]) {
        const d = conv2dBackwardWeight(ctx, dw, bias, dy, x, { stride: 2, padding: 1, impl: 'taps', blocked: { splits: 1, rows: 8, wg: 64, subgroups } });
        expect(d.map((e) => e.workgroups)).toEqual([[1, 4, 1]]);
        destroyDispatches(d);
      }
    }
    for (const t of [x, dw, db, dy]) t.destroy();
  });

  it("the default launch splits a one-workgroup grid into 2 only off software adapters (there the sum pass costs more than it saves)", () => {
    const x = ctx.tensor([1, 3, 64, 128], undefined, 'x');
    const dw = ctx.tensor([8, 3, 4, 4], undefined, 'dw');
    const db = ctx.tensor([8], undefined, 'db');
    const dy = ctx.tensor([1, 8, 32, 64], undefined, 'dy');
    const d = conv2dBackwardWeight(ctx, dw, db, dy, x, { stride: 2, padding: 1, impl: 'taps' });
    const software = isSoftwareClass(deviceClass(ctx));
    expect(d.map((e) => e.pipeline.label.includes('sum_splits_bias'))).toEqual(software ? [false] : [false, true]);
    destroyDispatches(d);
    for (const t of [x, dw, db, dy]) t.destroy();
  });
});
