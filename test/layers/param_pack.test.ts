// Packed parameters: values survive packing, slots are aligned views that never overlap, and one Adam
// dispatch over the packed range is torch's per-parameter Adam for every parameter (frozen ones untouched).
import { describe, it, expect } from 'vitest';
import { testContext } from '../helpers/gpu.js';
import { Conv2d, ConvTranspose2d } from '../../src/layers/conv.js';
import { BatchNorm2d } from '../../src/layers/norm.js';
import { ParameterPack } from '../../src/layers/param_pack.js';
import { adamStep } from '../../src/kernels/adam.js';
import { adamStepCpu } from '../../src/kernels/cpu/adam.js';
import { Rng } from '../../src/runtime/random.js';

describe('ParameterPack', async () => {
  const ctx = await testContext();

  const layers = () => [
    new Conv2d(ctx, 3, 5, { kernel: 4, stride: 2, padding: 1, bias: true }, 'c1'),
    new BatchNorm2d(ctx, 5, 'bn'),
    new ConvTranspose2d(ctx, 5, 7, { kernel: 3, stride: 1, padding: 1, bias: false }, 'ct'),
  ];

  it('keeps values, aligns slots to 256 bytes and gives every parameter its own views', async () => {
    const ls = layers();
    const params = ls.flatMap((l) => l.params());
    const rng = new Rng(7);
    const before = params.map((p) => rng.normals(p.value.size, 1));
    params.forEach((p, i) => p.value.write(before[i]));
    const pack = new ParameterPack(ctx, params, 'test');
    pack.ensureTrainingState();
    for (const [i, p] of params.entries()) {
      expect(Array.from(await p.value.read())).toEqual(Array.from(before[i]));
      expect(p.value.offset % 256).toBe(0);
      expect(Array.from(await p.grad!.read()).every((v) => v === 0)).toBe(true);
      for (const q of params.slice(i + 1)) expect(p.value.overlaps(q.value)).toBe(false);
      expect(p.grad!.overlaps(p.m!)).toBe(false);
    }
    expect(pack.trainableRanges()).toEqual([[0, pack.size]]);
    for (const l of ls) l.destroy();
    pack.destroy();
  });

  it('one Adam dispatch per trainable range equals per-parameter torch Adam; frozen parameters do not move', async () => {
    const ls = layers();
    const params = ls.flatMap((l) => l.params());
    params[2].frozen = true; // bn.weight: splits the pack into two ranges
    const rng = new Rng(11);
    const pack = new ParameterPack(ctx, params, 'adam');
    pack.ensureTrainingState();
    const values = params.map((p) => Float64Array.from(rng.normals(p.value.size, 1)));
    const grads = params.map((p) => rng.normals(p.value.size, 0.1));
    params.forEach((p, i) => {
      p.value.write(values[i]);
      p.grad!.write(grads[i]);
    });
    const ranges = pack.trainableRanges();
    expect(ranges.length).toBe(2);
    const o = { lr: 2e-4, beta1: 0.5, beta2: 0.999, eps: 1e-8 };
    const list = ranges.flatMap(([s, e]) =>
      adamStep(ctx, pack.values.view([e - s], s), pack.grads!.view([e - s], s), pack.m!.view([e - s], s), pack.v!.view([e - s], s), { ...o, step: 1 }),
    );
    await ctx.run(list, 'packed adam');
    for (const [i, p] of params.entries()) {
      const want = Float64Array.from(values[i]);
      if (!p.frozen) adamStepCpu(want, grads[i], new Float64Array(want.length), new Float64Array(want.length), { ...o, step: 1 });
      const got = await p.value.read();
      let worst = 0;
      got.forEach((v, k) => (worst = Math.max(worst, Math.abs(v - want[k]))));
      expect(worst, `${p.value.label}: max |gpu - cpu|`).toBeLessThan(1e-6);
    }
    for (const l of ls) l.destroy();
    pack.destroy();
  });
});
