// Channel concat: CPU reference backward vs finite differences; GPU vs CPU reference (exact: copies) on
// many shapes, accumulate/overwrite, one-sided gradients; bad input.
import { describe, it, expect, afterAll } from 'vitest';
import { testContext } from '../helpers/gpu.js';
import { expectClose } from '../helpers/compare.js';
import { checkGradient } from '../helpers/gradcheck.js';
import { Rng } from '../../src/runtime/random.js';
import { GpuContext, destroyDispatches } from '../../src/runtime/context.js';
import type { Tensor } from '../../src/runtime/tensor.js';
import { concatChannelsForward, concatChannelsBackward } from '../../src/kernels/concat.js';
import { concatChannelsForwardCpu, concatChannelsBackwardCpu } from '../../src/kernels/cpu/concat.js';

const size = (s: readonly number[]) => s.reduce((a, b) => a * b, 1);

describe('concat CPU reference', () => {
  it('backward (the split) matches finite differences for both inputs', () => {
    const sa = [2, 3, 2, 3], sb = [2, 2, 2, 3];
    const rng = new Rng(1);
    const a = Float64Array.from(rng.normals(size(sa))), b = Float64Array.from(rng.normals(size(sb)));
    const w = Float64Array.from(rng.normals(size(sa) + size(sb)));
    const { da, db } = concatChannelsBackwardCpu(w, [2, 5, 2, 3], 3);
    checkGradient({ label: 'concat da', x: a, f: (aa) => concatChannelsForwardCpu(aa, sa, b, sb), analytic: da, weights: w });
    checkGradient({ label: 'concat db', x: b, f: (bb) => concatChannelsForwardCpu(a, sa, bb, sb), analytic: db, weights: w });
  });
});

describe('concat GPU vs CPU reference', async () => {
  const ctx = await testContext();
  const own: Tensor[] = [];
  const t = (shape: number[], data?: ArrayLike<number>, label = 't') => {
    const x = ctx.tensor(shape, data, label);
    own.push(x);
    return x;
  };
  afterAll(() => own.forEach((x) => x.destroy()));

  for (const [sa, sb] of [
    [[1, 1, 1, 1], [1, 2, 1, 1]],
    [[2, 3, 5, 7], [2, 5, 5, 7]],
    [[3, 7, 1, 1], [3, 1, 1, 1]],
    [[2, 6, 13, 4], [2, 3, 13, 4]],
  ]) {
    it(`${sa.join('x')} + ${sb.join('x')}: forward, accumulating and overwriting split`, async () => {
      const rng = new Rng(size(sa) + size(sb));
      const ad = rng.normals(size(sa)), bd = rng.normals(size(sb));
      const yShape = [sa[0], sa[1] + sb[1], sa[2], sa[3]];
      const dyd = rng.normals(size(yShape));
      const a = t(sa, ad), b = t(sb, bd), y = t(yShape), dy = t(yShape, dyd);
      const da = t(sa, new Float32Array(size(sa)).fill(1)), db = t(sb, new Float32Array(size(sb)).fill(5));
      const daAcc = t(sa, new Float32Array(size(sa)).fill(1)), dbAcc = t(sb, new Float32Array(size(sb)).fill(0.25));
      const ds = [
        ...concatChannelsForward(ctx, y, a, b),
        ...concatChannelsBackward(ctx, da, db, dy),
        ...concatChannelsBackward(ctx, daAcc, dbAcc, dy, { accumulate: true }),
      ];
      await ctx.run(ds);
      const ref = concatChannelsForwardCpu(ad, sa, bd, sb);
      const split = concatChannelsBackwardCpu(dyd, yShape, sa[1]);
      // Pure copies: exact. Accumulation adds one rounding.
      expectClose(await y.read(), ref, { atol: 0, rtol: 0, label: 'concat y' });
      expectClose(await da.read(), split.da, { atol: 0, rtol: 0, label: 'concat da' });
      expectClose(await db.read(), split.db, { atol: 0, rtol: 0, label: 'concat db' });
      expectClose(await daAcc.read(), split.da.map((v) => v + 1), { atol: 1e-7, rtol: 1e-7, label: 'concat da (accumulate)' });
      expectClose(await dbAcc.read(), split.db.map((v) => v + 0.25), { atol: 1e-7, rtol: 1e-7, label: 'concat db (accumulate)' });
      destroyDispatches(ds);
    });
  }

  it('one-sided gradients: da only, db only (split point from db or channelsA)', async () => {
    const sa = [2, 3, 2, 2], sb = [2, 4, 2, 2], yShape = [2, 7, 2, 2];
    const dyd = new Rng(4).normals(size(yShape));
    const dy = t(yShape, dyd), da = t(sa), db = t(sb), db2 = t(sb);
    const ds = [
      ...concatChannelsBackward(ctx, da, null, dy),
      ...concatChannelsBackward(ctx, null, db, dy),
      ...concatChannelsBackward(ctx, null, db2, dy, { channelsA: 3 }),
    ];
    expect(ds.length).toBe(3);
    await ctx.run(ds);
    const split = concatChannelsBackwardCpu(dyd, yShape, 3);
    expectClose(await da.read(), split.da, { atol: 0, rtol: 0, label: 'da only' });
    expectClose(await db.read(), split.db, { atol: 0, rtol: 0, label: 'db only' });
    expectClose(await db2.read(), split.db, { atol: 0, rtol: 0, label: 'db only, channelsA' });
    destroyDispatches(ds);
  });

  it('rejects bad input, naming the op, expected and actual', () => {
    const a = t([2, 3, 4, 4], undefined, 'a'), b = t([2, 2, 4, 4], undefined, 'b'), y = t([2, 5, 4, 4], undefined, 'y');
    expect(() => concatChannelsForward(ctx, t([2, 4, 4, 4], undefined, 'y4'), a, b)).toThrow(/concat\.forward: y 'y4' shape: expected \[2, 5, 4, 4\], got \[2, 4, 4, 4\]/);
    expect(() => concatChannelsForward(ctx, y, a, t([2, 2, 4, 5], undefined, 'b5'))).toThrow(/concat\.forward: b shape \(N, H, W as a\): expected \[2, 2, 4, 4\], got \[2, 2, 4, 5\]/);
    expect(() => concatChannelsForward(ctx, y, a, t([1, 2, 4, 4]))).toThrow(/concat\.forward: b shape \(N, H, W as a\): expected \[2, 2, 4, 4\], got \[1, 2, 4, 4\]/);
    expect(() => concatChannelsForward(ctx, y, t([6, 16]), b)).toThrow(/concat\.forward: a\/b rank: expected 4, got 2\/4/);
    expect(() => concatChannelsBackward(ctx, null, null, y)).toThrow(/concat\.backward: gradients: expected da and\/or db, got neither/);
    expect(() => concatChannelsBackward(ctx, t([2, 5, 4, 4]), null, y)).toThrow(/concat\.backward: channels of a \(split point of dy's 5 channels\): expected 1\.\.4, got 5/);
    expect(() => concatChannelsBackward(ctx, null, b, y, { channelsA: 2 })).toThrow(/concat\.backward: db 'b' shape: expected \[2, 3, 4, 4\], got \[2, 2, 4, 4\]/);
    expect(() => concatChannelsBackward(ctx, a, t([2, 3, 4, 4], undefined, 'db3'), y)).toThrow(/concat\.backward: db 'db3' shape: expected \[2, 2, 4, 4\], got \[2, 3, 4, 4\]/);
    const gone = t([2, 3, 4, 4], undefined, 'gone');
    gone.destroy();
    expect(() => concatChannelsForward(ctx, y, gone, b)).toThrow(/concat\.forward: a 'gone' used after destroy\(\)/);
    expect(() => concatChannelsBackward(ctx, gone, b, y)).toThrow(/concat\.backward: da 'gone' used after destroy\(\)/);
    const other = new GpuContext(ctx.device, false);
    const foreign = other.tensor([2, 2, 4, 4], undefined, 'foreign');
    expect(() => concatChannelsForward(ctx, y, a, foreign)).toThrow(/concat\.forward: b 'foreign' belongs to another device\/context/);
    foreign.destroy();
    other.destroy();
  });
});
