// The GPU sum (two-pass tree reduction): vs the float64 reference over sizes around the chunk and
// partial boundaries and past a 2-D grid of partials; better than a serial fp32 loop; bad input.
import { describe, it, expect, afterAll } from 'vitest';
import { testContext } from '../helpers/gpu.js';
import { expectClose } from '../helpers/compare.js';
import { Rng } from '../../src/runtime/random.js';
import { GpuContext, destroyDispatches } from '../../src/runtime/context.js';
import type { Tensor } from '../../src/runtime/tensor.js';
import { sumForward, reductionPartials } from '../../src/kernels/reduce.js';
import { sumCpu, serialSumFloat32 } from '../../src/kernels/cpu/reduce.js';

describe('sum GPU vs CPU reference', async () => {
  const ctx = await testContext();
  const own: Tensor[] = [];
  const t = (shape: number[], data?: ArrayLike<number>, label = 't') => {
    const x = ctx.tensor(shape, data, label);
    own.push(x);
    return x;
  };
  afterAll(() => own.forEach((x) => x.destroy()));

  // 1 element; one chunk (1024 = WG * ITEMS) exactly and one past it; 256 * 1024 + 1 partials need a
  // finalize loop of 2 per thread; shapes of any rank.
  for (const shape of [[1], [1023], [1024], [1025], [3, 5, 7], [2, 3, 181, 257]]) {
    it(`sum ${shape.join('x')}`, async () => {
      const n = shape.reduce((a, b) => a * b, 1);
      const data = new Rng(n).normals(n);
      const x = t(shape, data), out = t([1]);
      const ds = sumForward(ctx, out, x);
      await ctx.run(ds);
      // |Σ| ~ sqrt(n); tree error ~ log2(n) ulps of the partial magnitudes.
      expectClose(await out.read(), [sumCpu(data)], { atol: 1e-5 * Math.sqrt(n), rtol: 1e-6, label: `sum of ${n}` });
      destroyDispatches(ds);
    });
  }

  it('2^21 copies of 0.1: the tree sum is accurate where a serial fp32 loop is not', async () => {
    const n = 2 ** 21; // 2048 partials: 8 per finalize thread
    expect(reductionPartials(n)).toBe(2048);
    const data = new Float32Array(n).fill(0.1);
    const x = t([n], data), out = t([1]);
    const ds = sumForward(ctx, out, x);
    await ctx.run(ds);
    const exact = sumCpu(data);
    const gpuRel = Math.abs((await out.read())[0] - exact) / exact;
    const serialRel = Math.abs(serialSumFloat32(data) - exact) / exact;
    console.log(`sum of 2^21 x 0.1: relative error GPU tree ${gpuRel.toExponential(2)}, serial fp32 loop ${serialRel.toExponential(2)}`);
    expect(gpuRel).toBeLessThan(1e-6);
    expect(serialRel).toBeGreaterThan(1e-3); // what the tree avoids: this test would catch a serial loop
    destroyDispatches(ds);
  });

  it('rejects bad input, naming the op, expected and actual', () => {
    const x = t([2, 3], undefined, 'x'), out = t([1], undefined, 'out');
    expect(() => sumForward(ctx, t([2], undefined, 'out2'), x)).toThrow(/sum\.forward: out 'out2' shape: expected \[1\], got \[2\]/);
    expect(() => sumForward(ctx, out, t([0], undefined, 'empty'))).toThrow(/sum\.forward: x elements: expected >= 1, got 0/);
    expect(() => sumForward(ctx, out, out)).toThrow(/sum\.forward: out aliasing an input: expected distinct tensors/);
    const gone = t([2], undefined, 'gone');
    gone.destroy();
    expect(() => sumForward(ctx, out, gone)).toThrow(/sum\.forward: x 'gone' used after destroy\(\)/);
    const other = new GpuContext(ctx.device, false);
    const foreign = other.tensor([1], undefined, 'foreign');
    expect(() => sumForward(ctx, foreign, x)).toThrow(/sum\.forward: out 'foreign' belongs to another device\/context/);
    foreign.destroy();
    other.destroy();
  });
});
