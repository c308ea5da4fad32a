// The register-blocked conv kernels (shaders/conv_blocked.wgsl, impl 'blocked') against the float64 CPU
// references, for conv2d and conv_transpose2d in all three directions: odd and non-square maps, batch > 1,
// odd channel counts, 1x1 maps, strides 1/2/3 and mixed, phases without taps, kernels 1..4 and 1x7
// (<= 16 taps: larger kernels fall back to the tiled path, also checked), with several launch shapes
// (rows per thread 1, 3, 8, 16, 32, outputs per thread 1, 3, 4, 7, workgroup 32, forced row splits of the weight gradient, with and without
// the fused bias column), with and without subgroups (conv_blocked_sg.wgsl, generated steps).
import { describe, it, expect, afterAll } from 'vitest';
import { testContext } from '../helpers/gpu.js';
import { recordConvCase, type ConvCase } from '../helpers/conv_case.js';
import { destroyDispatches, type Dispatch } from '../../src/runtime/context.js';
import { Rng } from '../../src/runtime/random.js';
import { conv2dForward, conv2dBackwardWeight } from '../../src/kernels/conv2d.js';

type Case = ConvCase;

const CONV_CASES: Case[] = [
  { name: 'U-Net down k4s2p1', x: [2, 3, 8, 6], w: [5, 4, 4], p: { stride: 2, padding: 1 }, bias: true },
  { name: 'pix2pix D first layer 6->8', x: [1, 6, 16, 12], w: [8, 4, 4], p: { stride: 2, padding: 1 }, bias: true },
  { name: '2x2 map to 1x1 k4s2p1', x: [3, 5, 2, 2], w: [7, 4, 4], p: { stride: 2, padding: 1 }, bias: false },
  { name: '1x1 map k3s2p1', x: [2, 7, 1, 1], w: [5, 3, 3], p: { stride: 2, padding: 1 }, bias: true },
  { name: 'PatchGAN k4s1p1 to 1 channel', x: [2, 9, 5, 6], w: [1, 4, 4], p: { stride: 1, padding: 1 }, bias: true },
  { name: 'k3 s1 p1 odd', x: [1, 5, 7, 9], w: [3, 3, 3], p: { stride: 1, padding: 1 }, bias: true },
  { name: 'k1 s2 (phases without taps)', x: [1, 3, 7, 6], w: [5, 1, 1], p: { stride: 2 }, bias: true },
  { name: 'k1x7 p(0,3)', x: [2, 5, 6, 9], w: [3, 1, 7], p: { padding: [0, 3] }, bias: false },
  { name: 'stride (2,1) k(3,4) p(1,2)', x: [2, 3, 7, 6], w: [5, 3, 4], p: { stride: [2, 1], padding: [1, 2] }, bias: true },
  { name: 'Cout 70 (several row blocks)', x: [2, 9, 9, 9], w: [70, 4, 4], p: { stride: 2, padding: 1 }, bias: true },
  { name: 'rows 1', x: [2, 5, 9, 7], w: [3, 4, 4], p: { stride: 2, padding: 1 }, bias: true, tuning: { rows: 1 } },
  { name: 'rows 3 (M not a multiple)', x: [1, 4, 9, 10], w: [7, 3, 3], p: { stride: 1, padding: 1 }, bias: true, tuning: { rows: 3 } },
  { name: 'rows 32, wg 32', x: [2, 3, 11, 6], w: [37, 4, 4], p: { stride: 2, padding: 1 }, bias: false, tuning: { rows: 32, wg: 32 } },
  { name: 'one split', x: [2, 3, 10, 8], w: [6, 4, 4], p: { stride: 2, padding: 1 }, bias: true, tuning: { splits: 1 } },
  { name: 'a split per row', x: [3, 4, 9, 8], w: [6, 3, 3], p: { stride: 1, padding: 1 }, bias: true, tuning: { splits: 1000 } },
  { name: 'pixels 1', x: [2, 3, 9, 11], w: [6, 4, 4], p: { stride: 2, padding: 1 }, bias: true, tuning: { pixels: 1 } },
  { name: 'pixels 3 on an odd row, rows 2', x: [2, 5, 7, 13], w: [5, 4, 4], p: { stride: 1, padding: 1 }, bias: true, tuning: { pixels: 3, rows: 2 } },
  { name: 'pixels 7, k(3,4) s(2,1)', x: [1, 3, 7, 17], w: [4, 3, 4], p: { stride: [2, 1], padding: [1, 2] }, bias: false, tuning: { pixels: 7, rows: 4 } },
  { name: 'k7 (falls back to tiled)', x: [1, 3, 9, 8], w: [4, 7, 7], p: { stride: 1, padding: 3 }, bias: true },
  // The software policy's 16 rows for few-column maps (policy.ts blockedRows16MaxColumns), 24 rows: one partial block.
  { name: 'rows 16 onto a 2x4 map', x: [1, 20, 4, 8], w: [24, 4, 4], p: { stride: 2, padding: 1 }, bias: true, tuning: { rows: 16 } },
];

const CONVT_CASES: Case[] = [
  { name: 'U-Net up k4s2p1', x: [2, 5, 3, 4], w: [3, 4, 4], p: { stride: 2, padding: 1 }, bias: true },
  { name: 'bottleneck 1x1 to 2x2', x: [2, 7, 1, 1], w: [5, 4, 4], p: { stride: 2, padding: 1 }, bias: true },
  { name: 'output padding k3s2p1op1', x: [1, 3, 3, 4], w: [5, 3, 3], p: { stride: 2, padding: 1, outputPadding: 1 }, bias: false },
  { name: 'k3 s1 p1', x: [1, 6, 5, 7], w: [3, 3, 3], p: { stride: 1, padding: 1 }, bias: true },
  { name: 'k1 s2 op1 (phases without taps)', x: [1, 3, 4, 3], w: [5, 1, 1], p: { stride: 2, outputPadding: 1 }, bias: true },
  { name: 'k3 s3 p2 op2', x: [2, 3, 3, 4], w: [5, 3, 3], p: { stride: 3, padding: 2, outputPadding: 2 }, bias: true },
  { name: 'k1x7 p(0,3)', x: [2, 5, 4, 9], w: [3, 1, 7], p: { padding: [0, 3] }, bias: false },
  { name: 'stride (2,1) k(3,4) p(1,2) op(1,0)', x: [2, 3, 4, 5], w: [5, 3, 4], p: { stride: [2, 1], padding: [1, 2], outputPadding: [1, 0] }, bias: true },
  { name: 'Cout 70, Cin 9', x: [2, 9, 5, 5], w: [70, 4, 4], p: { stride: 2, padding: 1 }, bias: true },
  { name: 'rows 3', x: [2, 5, 6, 5], w: [7, 4, 4], p: { stride: 2, padding: 1 }, bias: true, tuning: { rows: 3 } },
  { name: 'rows 32, wg 32, a split per row', x: [2, 33, 5, 6], w: [3, 4, 4], p: { stride: 2, padding: 1 }, bias: true, tuning: { rows: 32, wg: 32, splits: 1000 } },
  { name: 'one split', x: [2, 5, 12, 13], w: [3, 4, 4], p: { stride: 2, padding: 1 }, bias: false, tuning: { splits: 1 } },
  { name: 'grad input pixels 3 on odd rows', x: [2, 6, 5, 7], w: [5, 4, 4], p: { stride: 2, padding: 1 }, bias: true, tuning: { pixels: 3 } },
  { name: 'k5 (falls back to tiled)', x: [2, 3, 3, 4], w: [5, 5, 5], p: { stride: 3, padding: 2, outputPadding: 2 }, bias: true },
  { name: 'rows 16 from a 2x4 map', x: [1, 24, 2, 4], w: [20, 4, 4], p: { stride: 2, padding: 1 }, bias: true, tuning: { rows: 16 } },
];

describe('blocked conv kernels vs float64 CPU reference', async () => {
  const ctx = await testContext();
  // With subgroups the gathers share their weight loads (shaders/conv_blocked_sg.wgsl): both paths run.
  const hasSubgroups = ctx.features.has('subgroups');
  const worst: Record<string, number> = {};
  const note = (key: string, err: number) => (worst[key] = Math.max(worst[key] ?? 0, err));
  afterAll(() => {
    ctx.trimPool();
    console.log(`blocked conv max abs error vs float64 CPU reference: ${Object.entries(worst).map(([k, v]) => `${k} ${v.toExponential(2)}`).join(', ')}`);
  });
  // fp32 sums of at most a few hundred O(1) terms (as the conv2d / conv_transpose2d tests).
  const tol = { atol: 2e-4, rtol: 1e-4 };

  for (const transposed of [false, true]) {
    const cases = transposed ? CONVT_CASES : CONV_CASES;
    const opName = transposed ? 'conv_transpose2d' : 'conv2d';
    cases.forEach((c, ci) => {
      for (const [accumulate, subgroups] of [[false, false], [true, false], [false, true], [true, true]]) {
        if (subgroups && !hasSubgroups) continue;
        it(`${opName} ${c.name} x${c.x.join('x')} w${c.w.join('x')} bias=${c.bias} accumulate=${accumulate} subgroups=${subgroups}`, async () => {
          const rng = new Rng(ci * 131 + (transposed ? 7 : 3) + (accumulate ? 1000 : 0));
          const run = recordConvCase(ctx, c, transposed, rng, { impl: 'blocked', blocked: { ...c.tuning, subgroups } }, accumulate);
          const taps = c.w[1] * c.w[2];
          const family = taps <= 16 ? 'blocked' : 'tiled';
          const blockedLabel = subgroups ? `\\.(gather|transposed)_sg\\.pipeline$` : `\\.(gather|transposed)\\.pipeline$`;
          expect(run.fwd[0].pipeline.label).toMatch(new RegExp(taps <= 16 ? blockedLabel : `\\.tiled\\.pipeline$`));
          expect(run.bwdIn[0].pipeline.label).toMatch(new RegExp(taps <= 16 ? blockedLabel : `\\.tiled\\.pipeline$`));
          const key = (k: string) => `${family}${subgroups && taps <= 16 ? ' sg' : ''} ${k}`;
          await run.check(opName, tol, (k, err) => note(key(k), err));
        });
      }
    });
  }

  it('conv2d weight gradient: the bias is a fused column (no bias_grad dispatch), split or not', () => {
    const x = ctx.tensor([1, 3, 16, 16], undefined, 'x');
    const dw = ctx.tensor([4, 3, 4, 4], undefined, 'dw');
    const db = ctx.tensor([4], undefined, 'db');
    const dy = ctx.tensor([1, 4, 8, 8], undefined, 'dy');
    const labels = (d: Dispatch[]) => {
      const l = d.map((e) => e.pipeline.label);
      destroyDispatches(d);
      return l;
    };
    const p = { stride: 2, padding: 1, impl: 'blocked' as const };
    expect(labels(conv2dBackwardWeight(ctx, dw, db, dy, x, { ...p, blocked: { splits: 1 } }))).toEqual(['conv2d.backwardWeight.weight_grad.pipeline']);
    expect(labels(conv2dBackwardWeight(ctx, dw, db, dy, x, { ...p, blocked: { splits: 4 } }))).toEqual([
      'conv2d.backwardWeight.weight_grad.pipeline',
      'conv2d.backwardWeight.sum_splits_bias.pipeline',
    ]);
    expect(() => conv2dForward(ctx, dy, x, dw, null, { ...p, blocked: { rows: 33 } })).toThrow(/rows per thread: expected 1\.\.32, got 33/);
    // 8 rows x 5 pixels = 40 accumulators > 32.
    expect(() => conv2dForward(ctx, dy, x, dw, null, { ...p, blocked: { rows: 8, pixels: 5 } })).toThrow(/pixels per thread: expected 1\.\.4, got 5/);
    for (const t of [x, dw, db, dy]) t.destroy();
  });

  it('subgroups only with full subgroups: a 4-thread workgroup keeps the plain gather, and asking for them is refused', () => {
    const x = ctx.tensor([1, 3, 16, 16], undefined, 'x');
    const w = ctx.tensor([4, 3, 4, 4], undefined, 'w');
    const y = ctx.tensor([1, 4, 8, 8], undefined, 'y');
    const p = { stride: 2, padding: 1, impl: 'blocked' as const };
    const d = conv2dForward(ctx, y, x, w, null, { ...p, blocked: { wg: 4 } });
    expect(d[0].pipeline.label).toBe('conv2d.forward.gather.pipeline');
    destroyDispatches(d);
    expect(() => conv2dForward(ctx, y, x, w, null, { ...p, blocked: { wg: 4, subgroups: true } })).toThrow(/subgroups for 4 threads per workgroup/);
    for (const t of [x, w, y]) t.destroy();
  });
});
