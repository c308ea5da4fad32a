// The launch shapes SwiftShader's policy picks for more, smaller workgroups (policy.ts tiledTuning,
// directTuning): the tiled kernels with 32x32 and 16x16 output tiles (8x8 and 4x4 threads, tiled.ts withTile) and
// the direct kernels with small workgroups, each forced on its own against the float64 CPU references, for
// conv2d and conv_transpose2d in all three directions: odd and non-square maps, batch > 1, channel counts that
// are not multiples of the tile (several row tiles, a partial last one), reductions that are not multiples of
// the 16-deep K step, the weight gradient's split-K with a partial last split, accumulate on and off. Then the
// rule itself: which launch each class's static policy gives.
import { describe, it, expect, afterAll } from 'vitest';
import { testContext } from '../helpers/gpu.js';
import { recordConvCase, size, type ConvCase } from '../helpers/conv_case.js';
import { destroyDispatches } from '../../src/runtime/context.js';
import { Rng } from '../../src/runtime/random.js';
import { conv2dForward, conv2dBackwardWeight, type BlockedTuning, type ConvImpl } from '../../src/kernels/conv2d.js';
import { STATIC_POLICIES, directTuning, staticImpl, tiledTuning, useStaticPolicy } from '../../src/kernels/conv/policy.js';
import type { ConvGeometry } from '../../src/kernels/conv/params.js';

type Case = ConvCase;

// Conv cases: M 37 (two 32-row tiles, three 16-row tiles, the last partial), K = 3*16 = 48 / 5*9 = 45 (not a
// multiple of 16 in the second), columns past a tile's end, and one with a long reduction (N*Ho*Wo = 2880: the
// weight gradient splits it into 12 slices of 240, the last one partial when the shape is odd).
const CONV_CASES: Case[] = [
  { name: 'k4s2p1 odd map, 37 out', x: [2, 3, 9, 7], w: [37, 4, 4], p: { stride: 2, padding: 1 }, bias: true },
  { name: 'k3s1p1 5->6, 7x9', x: [1, 5, 7, 9], w: [6, 3, 3], p: { stride: 1, padding: 1 }, bias: true },
  { name: 'stride (2,1) k(3,4) p(1,2)', x: [2, 3, 7, 6], w: [5, 3, 4], p: { stride: [2, 1], padding: [1, 2] }, bias: false },
  { name: 'long reduction (split-K) 40x37', x: [2, 3, 40, 37], w: [4, 3, 3], p: { stride: 1, padding: 1 }, bias: true },
  { name: 'PatchGAN k4s1p1 to 1 channel', x: [2, 9, 5, 6], w: [1, 4, 4], p: { stride: 1, padding: 1 }, bias: true },
];

const CONVT_CASES: Case[] = [
  { name: 'U-Net up k4s2p1, 5 -> 37', x: [2, 5, 3, 4], w: [37, 4, 4], p: { stride: 2, padding: 1 }, bias: true },
  { name: 'k3 s3 p2 op2', x: [2, 3, 3, 4], w: [5, 3, 3], p: { stride: 3, padding: 2, outputPadding: 2 }, bias: true },
  { name: 'k1 s2 op1 (phases without taps)', x: [1, 3, 4, 3], w: [5, 1, 1], p: { stride: 2, outputPadding: 1 }, bias: false },
  { name: 'long reduction (split-K) 17 -> 3, 20x19', x: [2, 17, 20, 19], w: [3, 4, 4], p: { stride: 2, padding: 1 }, bias: true },
];

const LAUNCHES: { impl: ConvImpl; tuning: BlockedTuning; label: string }[] = [
  { impl: 'tiled', tuning: { tile: 32 }, label: 'tiled 32' },
  { impl: 'tiled', tuning: { tile: 16 }, label: 'tiled 16' },
  { impl: 'direct', tuning: { wg: 8 }, label: 'direct wg 8' },
  { impl: 'direct', tuning: { wg: 24 }, label: 'direct wg 24' },
];

describe('small-workgroup conv launches (tiled 32/16, direct wg < 256) vs float64 CPU reference', async () => {
  const ctx = await testContext();
  const worst: Record<string, number> = {};
  const note = (key: string, err: number) => (worst[key] = Math.max(worst[key] ?? 0, err));
  afterAll(() => {
    ctx.trimPool();
    console.log(`small-launch conv max abs error vs float64 CPU reference: ${Object.entries(worst).map(([k, v]) => `${k} ${v.toExponential(2)}`).join(', ')}`);
  });
  // fp32 sums of at most a few thousand O(1) terms.
  const tol = { atol: 5e-4, rtol: 1e-4 };

  for (const transposed of [false, true]) {
    const cases = transposed ? CONVT_CASES : CONV_CASES;
    const opName = transposed ? 'conv_transpose2d' : 'conv2d';
    cases.forEach((c, ci) => {
      for (const launch of LAUNCHES) {
        for (const accumulate of [false, true]) {
          it(`${opName} ${launch.label} ${c.name} x${c.x.join('x')} w${c.w.join('x')} bias=${c.bias} accumulate=${accumulate}`, async () => {
            const rng = new Rng(ci * 97 + (transposed ? 5 : 2) + (accumulate ? 500 : 0));
            const run = recordConvCase(ctx, c, transposed, rng, { impl: launch.impl, blocked: launch.tuning }, accumulate);
            const entry = launch.impl === 'tiled' ? /\.tiled\.pipeline$/ : /\.direct\.pipeline$/;
            for (const d of [run.fwd[0], run.bwdIn[0], run.bwdW[0]]) expect(d.pipeline.label).toMatch(entry);
            if (launch.impl === 'direct') {
              // wg threads per workgroup over every element of dst (ctx.grid folds past 65535 groups; never here).
              expect(run.fwd[0].workgroups[0]).toBe(Math.ceil(size(run.yShape) / launch.tuning.wg!));
              expect(run.bwdW[0].workgroups[0]).toBe(Math.ceil(size(run.wShape) / launch.tuning.wg!));
            }
            await run.check(opName, tol, (k, err) => note(`${launch.label} ${k}`, err));
          });
        }
      }
    });
  }

  it('the split-K cases really split: the tiled weight gradient with a 32 tile has a partial-sum pass', () => {
    const x = ctx.tensor([2, 3, 40, 37], undefined, 'x');
    const dw = ctx.tensor([4, 3, 3, 3], undefined, 'dw');
    const dy = ctx.tensor([2, 4, 40, 37], undefined, 'dy');
    const d = conv2dBackwardWeight(ctx, dw, null, dy, x, { padding: 1, impl: 'tiled', blocked: { tile: 32 } });
    expect(d.map((e) => e.pipeline.label)).toEqual(['conv2d.backwardWeight.tiled.pipeline', 'conv2d.backwardWeight.sum_splits.pipeline']);
    // K = 27 columns in one 32 tile, M = 4 in one, 2*40*37 = 2960 reduction steps in slices: more than one, the last partial.
    expect(d[0].workgroups.slice(0, 2)).toEqual([1, 1]);
    expect(d[0].workgroups[2]).toBeGreaterThan(1);
    destroyDispatches(d);
    for (const t of [x, dw, dy]) t.destroy();
  });

  it('refuses a tile the shaders do not have and a direct workgroup over 256', () => {
    const x = ctx.tensor([1, 3, 8, 8], undefined, 'x');
    const w = ctx.tensor([4, 3, 4, 4], undefined, 'w');
    const y = ctx.tensor([1, 4, 4, 4], undefined, 'y');
    const p = { stride: 2, padding: 1 };
    expect(() => conv2dForward(ctx, y, x, w, null, { ...p, impl: 'tiled', blocked: { tile: 8 } })).toThrow(/tiled tile size \(tuning tile\): expected 64, 32, 16, got 8/);
    expect(() => conv2dForward(ctx, y, x, w, null, { ...p, impl: 'direct', blocked: { wg: 512 } })).toThrow(/direct workgroup size \(tuning wg\): expected an integer in 1\.\.256, got 512/);
    for (const t of [x, w, y]) t.destroy();
  });

  it("SwiftShader's rule: smaller tiles and direct workgroups until the launch has enough workgroups; every other class launches as before", () => {
    const geo = (o: Partial<ConvGeometry>): ConvGeometry => ({ batch: 1, M: 64, C: 32, inH: 8, inW: 16, outH: 4, outW: 8, KH: 4, KW: 4, sh: 2, sw: 2, ph: 1, pw: 1, ...o });
    const ss = STATIC_POLICIES.swiftshader;
    // The U-Net's 32->64 down level: 32 columns x 64 rows is one 64-tile, four 32-tiles (< 16), so 32 (the floor).
    expect(tiledTuning('gather', geo({}), {}, ss)).toEqual({ tile: 32 });
    // D's 32->64 k4s1 level at batch 2: 210 columns, four 64-tiles; 7 x 2 = 14 32-tiles, still < 16, floor 32.
    expect(tiledTuning('gather', geo({ batch: 2, inH: 8, inW: 16, outH: 7, outW: 15, sh: 1, sw: 1 }), {}, ss)).toEqual({ tile: 32 });
    // A launch with 16 64-tiles keeps them; the caller's tile wins.
    expect(tiledTuning('gather', geo({ M: 128, batch: 2, outH: 16, outW: 32 }), {}, ss)).toEqual({});
    expect(tiledTuning('gather', geo({}), { tile: 64 }, ss)).toEqual({ tile: 64 });
    // The weight gradient counts K x M tiles: 32*16 = 512 columns x 64 rows = 8 64-tiles, 32 32-tiles.
    expect(tiledTuning('weightGrad', geo({}), {}, ss)).toEqual({ tile: 32 });
    expect(tiledTuning('weightGrad', geo({ M: 128, C: 64 }), {}, ss)).toEqual({});
    // A tile at least twice M is halved down to 16 (D's 8->16 weight gradient; the U-Net's 3->8 first level).
    expect(tiledTuning('weightGrad', geo({ M: 16, C: 8, batch: 2, inH: 32, inW: 64, outH: 16, outW: 32 }), {}, ss)).toEqual({ tile: 16 });
    expect(tiledTuning('weightGrad', geo({ M: 8, C: 3, inH: 64, inW: 128, outH: 32, outW: 64 }), {}, ss)).toEqual({ tile: 16 });
    expect(tiledTuning('gather', geo({ M: 17, batch: 8, outH: 32, outW: 32 }), {}, ss)).toEqual({ tile: 32 });
    // Weight gradients are tiled from 2 rows (the split-K tiles beat one thread per weight), direct for 1.
    expect(staticImpl('weightGrad', geo({ M: 16, C: 8, outH: 16, outW: 32 }), ss)).toBe('tiled');
    expect(staticImpl('weightGrad', geo({ M: 1, C: 64, outH: 6, outW: 14, sh: 1, sw: 1 }), ss)).toBe('direct');
    // Direct: 2048 outputs are 8 groups of 256, 64 of 32; 512 are 64 of 8; 768 weights 96 of 8.
    expect(directTuning('transposed', geo({ C: 128, M: 64, outH: 4, outW: 8 }), {}, ss)).toEqual({ wg: 64 });
    expect(directTuning('gather', geo({ outH: 2, outW: 4 }), {}, ss)).toEqual({ wg: 16 });
    expect(directTuning('weightGrad', geo({ M: 8, C: 6 }), {}, ss)).toEqual({ wg: 16 });
    expect(directTuning('gather', geo({ M: 1, outH: 1, outW: 2 }), {}, ss)).toEqual({ wg: 8 });
    expect(directTuning('gather', geo({ M: 64, batch: 8, outH: 32, outW: 32 }), {}, ss)).toEqual({});
    for (const cls of ['software', 'integrated', 'discrete'] as const) {
      expect(tiledTuning('gather', geo({}), {}, STATIC_POLICIES[cls])).toEqual({});
      expect(tiledTuning('weightGrad', geo({}), {}, STATIC_POLICIES[cls])).toEqual({});
      expect(directTuning('gather', geo({ outH: 2, outW: 4 }), {}, STATIC_POLICIES[cls])).toEqual({});
    }
  });

  it("'auto' launches what the rule says: 32-tiles and 32-thread direct groups under SwiftShader's policy, 64 and 256 under lavapipe's", () => {
    const x = ctx.tensor([1, 32, 8, 16], undefined, 'x');
    const w = ctx.tensor([64, 32, 4, 4], undefined, 'w');
    const y = ctx.tensor([1, 64, 4, 8], undefined, 'y');
    const x2 = ctx.tensor([1, 64, 4, 8], undefined, 'x2');
    const w2 = ctx.tensor([64, 64, 4, 4], undefined, 'w2');
    const y2 = ctx.tensor([1, 64, 2, 4], undefined, 'y2');
    const p = { stride: 2, padding: 1 };
    const grids = () => {
      const t = conv2dForward(ctx, y, x, w, null, { ...p, impl: 'tiled' });
      const d = conv2dForward(ctx, y2, x2, w2, null, { ...p, impl: 'direct' });
      const out = [t[0].workgroups, d[0].workgroups];
      destroyDispatches([...t, ...d]);
      return out;
    };
    try {
      useStaticPolicy(ctx, STATIC_POLICIES.swiftshader);
      // 32 columns x 64 rows: one column tile of 32, two row tiles; 512 outputs in groups of 16.
      expect(grids()).toEqual([[1, 1, 2], [32, 1, 1]]);
      useStaticPolicy(ctx, STATIC_POLICIES.software);
      expect(grids()).toEqual([[1, 1, 1], [2, 1, 1]]);
    } finally {
      useStaticPolicy(ctx, null);
    }
    for (const t of [x, w, y, x2, w2, y2]) t.destroy();
  });
});
