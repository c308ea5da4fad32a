import { describe, it, expect, afterAll } from 'vitest';
import { testContext } from '../helpers/gpu.js';
import { expectClose } from '../helpers/compare.js';
import { destroyDispatches } from '../../src/runtime/context.js';
import { Rng } from '../../src/runtime/random.js';
import { channelSliceCopy } from '../../src/kernels/channel_slice.js';
import { channelSliceCopyCpu } from '../../src/kernels/cpu/channel_slice.js';

describe('channel slice copy GPU vs CPU reference', async () => {
  const ctx = await testContext();
  afterAll(() => ctx.trimPool());

  it('assembles a concatenation from branches (with and without ReLU)', async () => {
    const [N, H, W] = [2, 5, 3];
    const branches = [3, 1, 4];
    const Ct = 9; // one channel left untouched at the end
    const rng = new Rng(4);
    const dstInit = rng.normals(N * Ct * H * W);
    const dst = ctx.tensor([N, Ct, H, W], dstInit, 'dst');
    let ref: Float64Array = Float64Array.from(dstInit);
    const ds = [];
    const srcs = [];
    let c0 = 0;
    for (const [k, Cb] of branches.entries()) {
      const data = rng.normals(N * Cb * H * W);
      const src = ctx.tensor([N, Cb, H, W], data, `src${k}`);
      srcs.push(src);
      const relu = k !== 1;
      ds.push(...channelSliceCopy(ctx, dst, src, { c0, relu }));
      ref = channelSliceCopyCpu(ref, [N, Ct, H, W], data, [N, Cb, H, W], c0, relu);
      c0 += Cb;
    }
    await ctx.run(ds);
    expectClose(await dst.read(), ref, { atol: 0, rtol: 0, label: 'channel slice' });
    for (const t of [dst, ...srcs]) t.destroy();
    destroyDispatches(ds);
  });

  it('rejects a range past the end and mismatched sizes', async () => {
    const dst = ctx.tensor([1, 4, 2, 2], undefined, 'dst');
    const src = ctx.tensor([1, 3, 2, 2], undefined, 'src');
    const other = ctx.tensor([1, 3, 2, 3], undefined, 'other');
    expect(() => channelSliceCopy(ctx, dst, src, { c0: 2 })).toThrow(/channel range \[2, 5\)/);
    expect(() => channelSliceCopy(ctx, dst, other)).toThrow(/spatial/);
    for (const t of [dst, src, other]) t.destroy();
  });
});
