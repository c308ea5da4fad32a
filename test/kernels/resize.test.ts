import { describe, it, expect, afterAll } from 'vitest';
import { testContext } from '../helpers/gpu.js';
import { loadFixture } from '../helpers/fixtures.js';
import { expectClose } from '../helpers/compare.js';
import { destroyDispatches } from '../../src/runtime/context.js';
import { Rng } from '../../src/runtime/random.js';
import { resizeBilinearForward, type ResizeParams } from '../../src/kernels/resize.js';
import { resizeBilinearCpu } from '../../src/kernels/cpu/resize.js';

// [x shape, out H, out W]: up, down (no antialias), mixed, identity, 1-pixel sources, to 299x299.
const CASES: [number[], number, number][] = [
  [[1, 3, 5, 7], 11, 4],
  [[2, 2, 37, 53], 13, 29],
  [[1, 1, 1, 1], 3, 2],
  [[1, 3, 9, 9], 9, 9],
  [[1, 2, 1, 6], 4, 13],
  [[1, 3, 37, 53], 299, 299],
  [[1, 3, 400, 333], 299, 299],
];

describe('bilinear resize CPU reference', () => {
  it('matches hand-computed torch values (align_corners=False, 2 -> 4 and 4 -> 2)', () => {
    // torch: F.interpolate(tensor([[[[0., 1.]]]]), size=(1, 4), mode='bilinear') = [0, 0.25, 0.75, 1]
    expect(Array.from(resizeBilinearCpu([0, 1], [1, 1, 1, 2], 1, 4).data)).toEqual([0, 0.25, 0.75, 1]);
    // Downsampling 4 -> 2 samples at 0.5 and 2.5 (no antialias): [0.5, 2.5] for x = [0, 1, 2, 3].
    expect(Array.from(resizeBilinearCpu([0, 1, 2, 3], [1, 1, 1, 4], 1, 2).data)).toEqual([0.5, 2.5]);
    // align_corners=True, 2 -> 4: [0, 1/3, 2/3, 1].
    const ac = resizeBilinearCpu([0, 1], [1, 1, 1, 2], 1, 4, { alignCorners: true }).data;
    expectClose(ac, [0, 1 / 3, 2 / 3, 1], { atol: 1e-15, rtol: 0 });
  });
});

describe('bilinear resize GPU vs CPU reference', async () => {
  const ctx = await testContext();
  afterAll(() => ctx.trimPool());
  for (const [shape, outH, outW] of CASES) {
    for (const p of [{}, { alignCorners: true }, { mul: 2, add: -1 }] as ResizeParams[]) {
      it(`${shape.join('x')} -> ${outH}x${outW} ${JSON.stringify(p)}`, async () => {
        const rng = new Rng(shape.reduce((a, b) => a * 13 + b, outH * 7 + outW));
        const xData = Float32Array.from({ length: shape.reduce((a, b) => a * b) }, () => rng.next());
        const x = ctx.tensor(shape, xData, 'x');
        const y = ctx.tensor([shape[0], shape[1], outH, outW], undefined, 'y');
        const ds = resizeBilinearForward(ctx, y, x, p);
        await ctx.run(ds);
        // f32 source coordinates (as torch's float path) vs exact float64 ones: a few ulp of the index.
        expectClose(await y.read(), resizeBilinearCpu(xData, shape, outH, outW, p).data, { atol: 2e-6, rtol: 1e-6, label: 'resize' });
        x.destroy();
        y.destroy();
        destroyDispatches(ds);
      });
    }
  }

  it('broadcasts a gray source to 3 channels and reads from a batch offset', async () => {
    const shape = [3, 1, 6, 5];
    const rng = new Rng(9);
    const xData = Float32Array.from({ length: 90 }, () => rng.next());
    const x = ctx.tensor(shape, xData, 'x');
    const y = ctx.tensor([2, 3, 7, 11], undefined, 'y');
    const p = { srcBatchOffset: 1, mul: 2, add: -1 };
    const ds = resizeBilinearForward(ctx, y, x, p);
    await ctx.run(ds);
    const ref = resizeBilinearCpu(xData, shape, 7, 11, { ...p, channels: 3, batch: 2 }).data;
    expectClose(await y.read(), ref, { atol: 2e-6, rtol: 1e-6, label: 'gray broadcast' });
    const bad = ctx.tensor([3, 3, 7, 11], undefined, 'bad');
    expect(() => resizeBilinearForward(ctx, bad, x, p)).toThrow(/srcBatchOffset/);
    for (const t of [x, y, bad]) t.destroy();
    destroyDispatches(ds);
  });
});

interface TorchResize {
  op: string;
  params: { size: [number, number]; align_corners: boolean; stride: number };
  x: { shape: number[]; data: number[] };
  y: { shape: number[]; data: number[] };
}

describe('bilinear resize vs torch F.interpolate (scripts/fixtures/inception.py)', async () => {
  const ctx = await testContext();
  const cases = loadFixture<{ cases: TorchResize[] }>('inception_kernels').cases.filter((c) => c.op === 'resize');
  for (const c of cases) {
    const [outH, outW] = c.params.size;
    it(`${c.x.shape.join('x')} -> ${outH}x${outW} align_corners=${c.params.align_corners}`, async () => {
      const p = { alignCorners: c.params.align_corners };
      // The fixture keeps every `stride`-th output (flat order) to stay small.
      const pick = (a: ArrayLike<number>) => Array.from({ length: c.y.data.length }, (_, i) => a[i * c.params.stride]);
      const cpu = resizeBilinearCpu(c.x.data, c.x.shape, outH, outW, p);
      expect(cpu.shape).toEqual(c.y.shape);
      expectClose(pick(cpu.data), c.y.data, { atol: 1e-14, rtol: 1e-13, label: 'CPU reference vs torch' });
      const x = ctx.tensor(c.x.shape, c.x.data, 'x');
      const y = ctx.tensor(c.y.shape, undefined, 'y');
      const ds = resizeBilinearForward(ctx, y, x, p);
      await ctx.run(ds);
      expectClose(pick(await y.read()), c.y.data, { atol: 1e-6, rtol: 1e-6, label: 'GPU vs torch' });
      x.destroy();
      y.destroy();
      destroyDispatches(ds);
    });
  }
});
