import { describe, it, expect, afterAll } from 'vitest';
import { testContext } from '../helpers/gpu.js';
import { loadFixture } from '../helpers/fixtures.js';
import { expectClose } from '../helpers/compare.js';
import { destroyDispatches } from '../../src/runtime/context.js';
import { Rng } from '../../src/runtime/random.js';
import { ShapeError } from '../../src/runtime/errors.js';
import { avgPool2dForward, globalAvgPoolForward, maxPool2dForward, pool2dOutputShape, type AvgPool2dParams } from '../../src/kernels/pool.js';
import { avgPool2dCpu, globalAvgPoolCpu, maxPool2dCpu } from '../../src/kernels/cpu/pool.js';

// Odd, non-square, batch > 1, 1-pixel-wide maps, the Inception configurations (k3 s2; k3 s1 p1).
const SHAPES = [[1, 1, 3, 3], [2, 3, 9, 14], [1, 5, 17, 4], [3, 2, 7, 1 + 2], [1, 4, 35, 35]];
const PARAMS: AvgPool2dParams[] = [
  { kernel: 3, stride: 2 },
  { kernel: 3, stride: 1, padding: 1 },
  { kernel: 3, stride: 1, padding: 1, countIncludePad: false },
  { kernel: [3, 2], stride: [1, 2], padding: [1, 0], countIncludePad: false },
  { kernel: 2 },
];

describe('pool2d output shape', () => {
  it('follows floor mode and rejects too much padding', () => {
    expect(pool2dOutputShape([1, 64, 147, 147], { kernel: 3, stride: 2 })).toEqual([1, 64, 73, 73]);
    expect(pool2dOutputShape([2, 8, 8, 8], { kernel: 3, stride: 1, padding: 1 })).toEqual([2, 8, 8, 8]);
    expect(() => pool2dOutputShape([1, 1, 5, 5], { kernel: 3, padding: 2 })).toThrow(ShapeError);
    expect(() => pool2dOutputShape([1, 1, 2, 2], { kernel: 3 })).toThrow(/output size/);
  });
});

describe('pool2d CPU reference', () => {
  it('avg count_include_pad counts the padded zeros, as torch', () => {
    // 2x2 ones, k3 s1 p1: every window holds 4 ones; torch gives 4/9 with padding counted, 1 without.
    const x = [1, 1, 1, 1];
    expect(Array.from(avgPool2dCpu(x, [1, 1, 2, 2], { kernel: 3, stride: 1, padding: 1 }).data)).toEqual([4 / 9, 4 / 9, 4 / 9, 4 / 9]);
    expect(Array.from(avgPool2dCpu(x, [1, 1, 2, 2], { kernel: 3, stride: 1, padding: 1, countIncludePad: false }).data)).toEqual([1, 1, 1, 1]);
  });
});

describe('pool2d GPU vs CPU reference', async () => {
  const ctx = await testContext();
  afterAll(() => ctx.trimPool());
  for (const shape of SHAPES) {
    for (const p of PARAMS) {
      let outShape: number[];
      try {
        outShape = pool2dOutputShape(shape, p);
      } catch {
        continue; // kernel larger than this input
      }
      it(`${shape.join('x')} ${JSON.stringify(p)}`, async () => {
        const rng = new Rng(shape.reduce((a, b) => a * 31 + b, 3));
        const xData = rng.normals(shape.reduce((a, b) => a * b), 2);
        const x = ctx.tensor(shape, xData, 'x');
        const yMax = ctx.tensor(outShape, undefined, 'y.max');
        const yAvg = ctx.tensor(outShape, undefined, 'y.avg');
        const ds = [...maxPool2dForward(ctx, yMax, x, p), ...avgPool2dForward(ctx, yAvg, x, p)];
        await ctx.run(ds);
        // max is exact; avg sums at most 9 f32 values and divides once.
        expectClose(await yMax.read(), maxPool2dCpu(xData, shape, p).data, { atol: 0, rtol: 0, label: 'max_pool2d' });
        expectClose(await yAvg.read(), avgPool2dCpu(xData, shape, p).data, { atol: 1e-6, rtol: 1e-6, label: 'avg_pool2d' });
        for (const t of [x, yMax, yAvg]) t.destroy();
        destroyDispatches(ds);
      });
    }
  }

  for (const shape of [[1, 1, 1, 1], [2, 7, 8, 8], [1, 3, 13, 5]]) {
    it(`global average ${shape.join('x')}`, async () => {
      const rng = new Rng(shape.reduce((a, b) => a * 17 + b, 5));
      const xData = rng.normals(shape.reduce((a, b) => a * b));
      const x = ctx.tensor(shape, xData, 'x');
      const y = ctx.tensor([shape[0], shape[1], 1, 1], undefined, 'y');
      const ds = globalAvgPoolForward(ctx, y, x);
      await ctx.run(ds);
      expectClose(await y.read(), globalAvgPoolCpu(xData, shape).data, { atol: 1e-6, rtol: 1e-5, label: 'global_avg_pool' });
      x.destroy();
      y.destroy();
      destroyDispatches(ds);
    });
  }

  it('max pool propagates NaN as torch', async () => {
    const xData = new Float32Array(16).map((_, i) => i);
    xData[5] = NaN;
    const x = ctx.tensor([1, 1, 4, 4], xData, 'x');
    const y = ctx.tensor([1, 1, 4, 4], undefined, 'y');
    const ds = maxPool2dForward(ctx, y, x, { kernel: 3, stride: 1, padding: 1 });
    await ctx.run(ds);
    const got = Array.from(await y.read());
    const ref = Array.from(maxPool2dCpu(xData, [1, 1, 4, 4], { kernel: 3, stride: 1, padding: 1 }).data);
    expect(got.map(Number.isNaN)).toEqual(ref.map(Number.isNaN));
    expect(got.filter((v) => !Number.isNaN(v))).toEqual(ref.filter((v) => !Number.isNaN(v)));
    x.destroy();
    y.destroy();
    destroyDispatches(ds);
  });

  it('rejects a wrong output shape, naming the op', async () => {
    const x = ctx.tensor([1, 2, 9, 9], undefined, 'x');
    const y = ctx.tensor([1, 2, 5, 5], undefined, 'y');
    expect(() => maxPool2dForward(ctx, y, x, { kernel: 3, stride: 2 })).toThrow(/max_pool2d\.forward.*\[1, 2, 4, 4\]/);
    x.destroy();
    y.destroy();
  });
});

interface TorchCase {
  op: string;
  params: { kernel_size: number | number[]; stride?: number | number[]; padding?: number | number[]; count_include_pad?: boolean };
  x: { shape: number[]; data: number[] };
  y: { shape: number[]; data: number[] };
}

describe('pool2d vs torch (scripts/fixtures/inception.py)', async () => {
  const ctx = await testContext();
  const cases = loadFixture<{ cases: TorchCase[] }>('inception_kernels').cases.filter((c) => c.op !== 'resize');
  for (const c of cases) {
    it(`${c.op} ${c.x.shape.join('x')} ${JSON.stringify(c.params)}`, async () => {
      const asPair = (v: number | number[] | undefined) => (v === undefined ? undefined : typeof v === 'number' ? v : ([v[0], v[1]] as [number, number]));
      const p: AvgPool2dParams = { kernel: asPair(c.params.kernel_size)!, stride: asPair(c.params.stride), padding: asPair(c.params.padding), countIncludePad: c.params.count_include_pad };
      const cpu = c.op === 'max_pool2d' ? maxPool2dCpu(c.x.data, c.x.shape, p) : avgPool2dCpu(c.x.data, c.x.shape, p);
      expect(cpu.shape).toEqual(c.y.shape);
      expectClose(cpu.data, c.y.data, { atol: 1e-14, rtol: 1e-14, label: `${c.op} CPU reference vs torch` });
      const x = ctx.tensor(c.x.shape, c.x.data, 'x');
      const y = ctx.tensor(c.y.shape, undefined, 'y');
      const ds = c.op === 'max_pool2d' ? maxPool2dForward(ctx, y, x, p) : avgPool2dForward(ctx, y, x, p);
      await ctx.run(ds);
      expectClose(await y.read(), c.y.data, { atol: 1e-6, rtol: 1e-6, label: `${c.op} GPU vs torch` });
      x.destroy();
      y.destroy();
      destroyDispatches(ds);
    });
  }
});
