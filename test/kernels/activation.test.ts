import { describe, it, expect, afterAll } from 'vitest';
import { testContext } from '../helpers/gpu.js';
import { expectClose } from '../helpers/compare.js';
import { checkGradient } from '../helpers/gradcheck.js';
import { destroyDispatches } from '../../src/runtime/context.js';
import { Rng } from '../../src/runtime/random.js';
import { activationForward, activationBackward, activationBackwardNeeds, type Activation } from '../../src/kernels/activation.js';
import { activationForwardCpu, activationBackwardCpu } from '../../src/kernels/cpu/activation.js';

const ACTS: Activation[] = ['relu', 'leaky_relu', 'tanh', 'sigmoid'];
// Odd, non-square, batch > 1, channels not a multiple of 4, 1x1 bottleneck.
const SHAPES = [[1, 1, 1, 1], [2, 3, 5, 7], [3, 5, 1, 1], [1, 7, 13, 4]];

describe('activation CPU reference', () => {
  for (const act of ACTS) {
    it(`${act} backward matches finite differences`, () => {
      const rng = new Rng(1);
      // Keep x away from the ReLU kink at 0, where the derivative is undefined.
      const x = Float64Array.from({ length: 40 }, () => {
        const v = rng.normal();
        return Math.abs(v) < 1e-3 ? 0.5 : v;
      });
      const w = Float64Array.from({ length: 40 }, () => rng.normal());
      checkGradient({ label: act, x, f: (xx) => activationForwardCpu(xx, act), analytic: activationBackwardCpu(w, x, act), weights: w });
    });
  }
});

describe('activation GPU vs CPU reference', async () => {
  const ctx = await testContext();
  afterAll(() => ctx.trimPool());
  for (const act of ACTS) {
    for (const shape of SHAPES) {
      it(`${act} ${shape.join('x')}`, async () => {
        const rng = new Rng(shape.reduce((a, b) => a * 31 + b, 7));
        const n = shape.reduce((a, b) => a * b);
        const xData = rng.normals(n, 2);
        const dyData = rng.normals(n);
        const x = ctx.tensor(shape, xData, 'x');
        const y = ctx.tensor(shape, undefined, 'y');
        const dy = ctx.tensor(shape, dyData, 'dy');
        const dx = ctx.tensor(shape, rng.normals(n), 'dx');
        const dxBefore = await dx.read();
        const fwd = activationForward(ctx, y, x, act);
        await ctx.run(fwd);
        const saved = activationBackwardNeeds(act) === 'x' ? x : y;
        const bwd = activationBackward(ctx, dx, dy, saved, act, { accumulate: true });
        await ctx.run(bwd);
        // fp32: tanh/exp differ from float64 by a few ulp.
        expectClose(await y.read(), activationForwardCpu(xData, act), { atol: 1e-6, rtol: 1e-5, label: `${act}.forward` });
        const ref = activationBackwardCpu(dyData, xData, act).map((g, i) => g + dxBefore[i]);
        expectClose(await dx.read(), ref, { atol: 1e-5, rtol: 1e-5, label: `${act}.backward (accumulate)` });
        for (const t of [x, y, dy, dx]) t.destroy();
        destroyDispatches([...fwd, ...bwd]);
      });
    }
  }
});

describe('activation NaN', async () => {
  const ctx = await testContext();
  it('propagates NaN through every activation, as torch does (the NaN-loss check depends on it)', async () => {
    for (const act of ACTS) {
      const x = ctx.tensor([3], [NaN, -1, 1], 'x');
      const y = ctx.tensor([3], undefined, 'y');
      const ds = activationForward(ctx, y, x, act);
      await ctx.run(ds);
      const out = await y.read();
      expect(Number.isNaN(out[0]), `${act}(NaN)`).toBe(true);
      destroyDispatches(ds);
      x.destroy();
      y.destroy();
    }
  });
});

describe('activation bad input', async () => {
  const ctx = await testContext();
  it('rejects a shape mismatch, naming op, expected and actual', () => {
    const x = ctx.tensor([1, 2, 3, 3]);
    const y = ctx.tensor([1, 2, 3, 4]);
    expect(() => activationForward(ctx, y, x, 'relu')).toThrow(/relu\.forward: y 'tensor' shape: expected \[1, 2, 3, 3\], got \[1, 2, 3, 4\]/);
    x.destroy();
    y.destroy();
  });
  it('rejects a destroyed tensor', () => {
    const x = ctx.tensor([4]);
    const y = ctx.tensor([4]);
    x.destroy();
    expect(() => activationForward(ctx, y, x, 'tanh')).toThrow(/tanh\.forward: x 'tensor' used after destroy\(\)/);
    y.destroy();
  });
});
