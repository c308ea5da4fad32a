import { describe, it, expect, afterAll } from 'vitest';
import { testContext } from '../helpers/gpu.js';
import { expectClose } from '../helpers/compare.js';
import { destroyDispatches } from '../../src/runtime/context.js';
import { Rng } from '../../src/runtime/random.js';
import { createAugmenter } from '../../src/data/augment.js';
import { augmentPairCpu, type PlanarImage } from '../../src/data/augment_cpu.js';
import { applyAffine, type SampleDraw, type WarpOp } from '../../src/data/augment_params.js';

// Small, odd, non-square images: lavapipe is slow, and odd sizes catch off-by-one centres.
const H = 23;
const W = 40;
const CA = 3;
const CB = 1;
const N = 3;

function randomImage(rng: Rng, c: number, h = H, w = W): PlanarImage {
  return { width: w, height: h, channels: c, data: Float64Array.from({ length: c * h * w }, () => rng.next()) };
}

/** N samples packed NCHW, in [-1, 1] when `signed`. */
function pack(images: PlanarImage[], signed: boolean): Float32Array {
  const per = images[0].data.length;
  const d = new Float32Array(per * images.length);
  images.forEach((im, n) => im.data.forEach((v, i) => (d[n * per + i] = signed ? v * 2 - 1 : v)));
  return d;
}

const maxErrors: Record<string, number> = {};

describe('augmentation GPU vs float64 CPU reference', async () => {
  const ctx = await testContext();
  afterAll(() => {
    ctx.trimPool();
    // The numbers quoted in the report: max |GPU - CPU| per transform, in [0, 1] units.
    console.log('max abs error GPU vs CPU (values in [0, 1]):\n' + Object.entries(maxErrors).map(([k, v]) => `  ${k.padEnd(48)} ${v.toExponential(2)}`).join('\n'));
  });

  /** Run `transform` (p = 1) on N random pairs and compare both outputs with the CPU reference. */
  async function check(label: string, transform: object, atol: number, o: { signed?: boolean; ca?: number; h?: number; w?: number; partial?: boolean } = {}) {
    const signed = o.signed ?? true;
    const ca = o.ca ?? CA;
    const h = o.h ?? H;
    const w = o.w ?? W;
    const rng = new Rng(label.length * 7919 + 13);
    const as = Array.from({ length: N }, () => randomImage(rng, ca, h, w));
    const bs = Array.from({ length: N }, () => randomImage(rng, CB, h, w));
    const aug = createAugmenter(ctx, { transforms: [{ p: 1, ...transform }] }, { seed: 1234, range: signed ? [-1, 1] : [0, 1] });
    const size = aug.outputSize(h, w);
    const a = ctx.tensor([N, ca, h, w], pack(as, signed), 'a');
    const b = ctx.tensor([N, CB, h, w], pack(bs, signed), 'b');
    const outA = ctx.tensor([N, ca, size.height, size.width], undefined, 'outA');
    const outB = ctx.tensor([N, CB, size.height, size.width], undefined, 'outB');
    const draws = await aug.run(a, b, outA, outB, { sampleIndex: 10 });
    const toUnit = (d: Float32Array) => (signed ? d.map((v) => (v + 1) / 2) : d);
    const gotA = toUnit(await outA.read());
    const gotB = toUnit(await outB.read());
    let worst = 0;
    draws.forEach((draw, n) => {
      if (!o.partial) expect(draw.stages.every((s) => s.applied)).toBe(true);
      const ref = augmentPairCpu(as[n], bs[n], draw);
      const perA = ref.a.data.length;
      const perB = ref.b.data.length;
      worst = Math.max(worst, expectClose(gotA.subarray(n * perA, (n + 1) * perA), ref.a.data, { atol, rtol: 0, label: `${label} A[${n}]` }));
      worst = Math.max(worst, expectClose(gotB.subarray(n * perB, (n + 1) * perB), ref.b.data, { atol, rtol: 0, label: `${label} B[${n}]` }));
    });
    maxErrors[label] = worst;
    for (const t of [a, b, outA, outB]) t.destroy();
    return draws;
  }

  it('HorizontalFlip and VerticalFlip are exact permutations', async () => {
    await check('HorizontalFlip', { name: 'HorizontalFlip' }, 1e-6);
    await check('VerticalFlip', { name: 'VerticalFlip' }, 1e-6);
  });

  for (const border of ['constant', 'replicate', 'reflect', 'wrap', 'reflect_101']) {
    it(`Rotate, border ${border}`, async () => {
      await check(`Rotate (${border})`, { name: 'Rotate', limit: 40, border_mode: border, value: [40, 80, 120], mask_value: 200 }, 2e-5);
    });
  }

  it('ShiftScaleRotate (default reflect_101), in [-1, 1] and in [0, 1]', async () => {
    const spec = { name: 'ShiftScaleRotate', shift_limit: 0.1, scale_limit: 0.3, rotate_limit: 30 };
    const draws = await check('ShiftScaleRotate', spec, 2e-5);
    expect(new Set(draws.map((d) => d.stages[0].params!.angle)).size).toBe(N);
    await check('ShiftScaleRotate (range [0, 1])', spec, 2e-5, { signed: false });
  });

  it('RandomResizedCrop (crop + cv2.resize bilinear, new size)', async () => {
    await check('RandomResizedCrop 16x20', { name: 'RandomResizedCrop', height: 16, width: 20, scale: [0.2, 1] }, 2e-5);
    await check('RandomResizedCrop 31x50 (upscale)', { name: 'RandomResizedCrop', height: 31, width: 50, scale: [0.1, 0.5] }, 2e-5);
  });

  it('GridDistortion', async () => {
    await check('GridDistortion', { name: 'GridDistortion', num_steps: 5, distort_limit: 0.3 }, 2e-5);
  });

  it('RandomBrightnessContrast (by max and by mean)', async () => {
    await check('RandomBrightnessContrast', { name: 'RandomBrightnessContrast', brightness_limit: 0.3, contrast_limit: 0.3 }, 1e-6);
    await check('RandomBrightnessContrast (by mean)', { name: 'RandomBrightnessContrast', brightness_limit: 0.3, contrast_limit: 0.3, brightness_by_max: false }, 1e-6);
  });

  it('RandomGamma', async () => {
    await check('RandomGamma', { name: 'RandomGamma', gamma_limit: [60, 160] }, 2e-6);
  });

  it('HueSaturationValue (RGB and gray A)', async () => {
    await check('HueSaturationValue', { name: 'HueSaturationValue', hue_shift_limit: 60, sat_shift_limit: 60, val_shift_limit: 40 }, 2e-6);
    await check('HueSaturationValue (gray A)', { name: 'HueSaturationValue' }, 1e-6, { ca: 1 });
  });

  it('RGBShift', async () => {
    await check('RGBShift', { name: 'RGBShift', r_shift_limit: 40, g_shift_limit: 40, b_shift_limit: 40 }, 1e-6);
  });

  it('GaussNoise (per channel and shared)', async () => {
    await check('GaussNoise', { name: 'GaussNoise', var_limit: [100, 400] }, 2e-6);
    await check('GaussNoise (per_channel false)', { name: 'GaussNoise', var_limit: [100, 400], per_channel: false, mean: 10 }, 2e-6);
  });

  it('GaussianBlur (OpenCV tables, sigma, size from sigma)', async () => {
    await check('GaussianBlur', { name: 'GaussianBlur', blur_limit: [3, 7] }, 2e-6);
    await check('GaussianBlur (sigma)', { name: 'GaussianBlur', blur_limit: [3, 9], sigma_limit: [0.5, 2] }, 2e-6);
    await check('GaussianBlur (ksize from sigma)', { name: 'GaussianBlur', blur_limit: 0, sigma_limit: [1, 1.5] }, 2e-6);
  });

  it('a full pipeline with OneOf, in [-1, 1]', async () => {
    await check(
      'pipeline',
      {
        name: 'Compose',
        transforms: [
          { name: 'HorizontalFlip', p: 0.5 },
          { name: 'ShiftScaleRotate', p: 0.8, border_mode: 'constant' },
          { name: 'OneOf', p: 1, transforms: [{ name: 'RandomGamma' }, { name: 'RandomBrightnessContrast' }] },
          { name: 'GaussNoise', p: 0.7 },
        ],
      },
      3e-5,
      { partial: true },
    );
  });
});

describe('augmentation keeps pairs aligned', async () => {
  const ctx = await testContext();

  it('a marker lands at the same place in A and B, where the matrix sends it', async () => {
    const h = 32;
    const w = 48;
    // A bright 3x3 square centred at (mx, my) in every channel of A (3) and B (1).
    const mx = 18;
    const my = 12;
    const marker = (c: number) => {
      const d = new Float32Array(c * h * w).fill(-1);
      for (let k = 0; k < c; k++) for (let y = my - 1; y <= my + 1; y++) for (let x = mx - 1; x <= mx + 1; x++) d[k * h * w + y * w + x] = 1;
      return d;
    };
    const n = 4;
    const tile = (d: Float32Array) => {
      const out = new Float32Array(d.length * n);
      for (let i = 0; i < n; i++) out.set(d, i * d.length);
      return out;
    };
    const a = ctx.tensor([n, 3, h, w], tile(marker(3)), 'a');
    const b = ctx.tensor([n, 1, h, w], tile(marker(1)), 'b');
    const outA = ctx.tensor([n, 3, h, w]);
    const outB = ctx.tensor([n, 1, h, w]);
    const aug = createAugmenter(
      ctx,
      { transforms: [{ name: 'HorizontalFlip' }, { name: 'ShiftScaleRotate', p: 1, shift_limit: 0.1, scale_limit: 0.2, rotate_limit: 45, border_mode: 'constant', value: 0 }] },
      { seed: 99 },
    );
    const draws = await aug.run(a, b, outA, outB, { sampleIndex: 0 });
    const gotA = await outA.read();
    const gotB = await outB.read();
    // Centroid of the marker's mass ((v + 1) / 2) in one plane.
    const centroid = (d: Float32Array, off: number) => {
      let m = 0;
      let sx = 0;
      let sy = 0;
      for (let y = 0; y < h; y++) {
        for (let x = 0; x < w; x++) {
          const v = (d[off + y * w + x] + 1) / 2;
          m += v;
          sx += v * x;
          sy += v * y;
        }
      }
      return [sx / m, sy / m];
    };
    // Where the matrices send the marker's centre: compose the applied stages' forward matrices.
    const expected = (draw: SampleDraw) => {
      let p: [number, number] = [mx, my];
      for (const s of draw.stages) if (s.applied) p = applyAffine((s.op as WarpOp).matrix!, p[0], p[1]);
      return p;
    };
    expect(draws.some((d) => d.stages[0].applied) && draws.some((d) => !d.stages[0].applied)).toBe(true);
    for (let i = 0; i < n; i++) {
      const cb = centroid(gotB, i * h * w);
      const want = expected(draws[i]);
      for (let c = 0; c < 3; c++) {
        const ca = centroid(gotA, (i * 3 + c) * h * w);
        expect(Math.hypot(ca[0] - cb[0], ca[1] - cb[1])).toBeLessThan(1e-4);
      }
      // Bilinear resampling of a small square moves its centroid by a small fraction of a pixel.
      expect(Math.hypot(cb[0] - want[0], cb[1] - want[1])).toBeLessThan(0.1);
    }
    for (const t of [a, b, outA, outB]) t.destroy();
  });
});

describe('augmentation determinism and probabilities', async () => {
  const ctx = await testContext();
  const spec = {
    transforms: [
      { name: 'HorizontalFlip' },
      { name: 'ShiftScaleRotate', p: 0.7 },
      { name: 'RandomBrightnessContrast', p: 0.7 },
      { name: 'GaussNoise', p: 0.7 },
    ],
  };
  const rng = new Rng(5);
  const n = 4;
  const aData = pack(Array.from({ length: n }, () => randomImage(rng, 3)), true);
  const bData = pack(Array.from({ length: n }, () => randomImage(rng, 1)), true);

  async function runOnce(seed: number, sampleIndex: number | number[], s: object = spec): Promise<[Float32Array, Float32Array]> {
    const a = ctx.tensor([n, 3, H, W], aData);
    const b = ctx.tensor([n, 1, H, W], bData);
    const outA = ctx.tensor([n, 3, H, W]);
    const outB = ctx.tensor([n, 1, H, W]);
    const aug = createAugmenter(ctx, s, { seed });
    const list = aug.apply(a, b, outA, outB, { sampleIndex });
    await ctx.run(list);
    destroyDispatches(list);
    const r: [Float32Array, Float32Array] = [await outA.read(), await outB.read()];
    for (const t of [a, b, outA, outB]) t.destroy();
    return r;
  }

  it('the same seed gives the same output, another seed another', async () => {
    const [a1, b1] = await runOnce(7, 0);
    const [a2, b2] = await runOnce(7, 0);
    const [a3] = await runOnce(8, 0);
    expect(a1).toEqual(a2);
    expect(b1).toEqual(b2);
    expect(a1).not.toEqual(a3);
  });

  it('a sample gets the same augmentation wherever it sits in the batch', async () => {
    const [a1] = await runOnce(7, [0, 1, 2, 3]);
    const plane = 3 * H * W;
    // Same input in every slot: sample 3 in slot 0 must equal sample 3 in slot 3 of the first run.
    const sameInput = pack(Array.from({ length: n }, () => ({ width: W, height: H, channels: 3, data: Float64Array.from(aData.subarray(0, plane), (v) => (v + 1) / 2) })), true);
    const a = ctx.tensor([n, 3, H, W], sameInput);
    const b = ctx.tensor([n, 1, H, W], bData);
    const outA = ctx.tensor([n, 3, H, W]);
    const outB = ctx.tensor([n, 1, H, W]);
    const aug = createAugmenter(ctx, spec, { seed: 7 });
    await aug.run(a, b, outA, outB, { sampleIndex: [0, 5, 6, 0] });
    const got = await outA.read();
    expect(got.subarray(3 * plane, 4 * plane)).toEqual(a1.subarray(0, plane));
    expect(aug.describe(0, { height: H, width: W })).toEqual(aug.describe(0, { height: H, width: W }));
    for (const t of [a, b, outA, outB]) t.destroy();
  });

  it('p = 0 is the identity, p = 1 always applies', async () => {
    const zero = { transforms: spec.transforms.map((t) => ({ ...t, p: 0 })) };
    const [a0, b0] = await runOnce(7, 0, zero);
    expect(a0).toEqual(aData);
    expect(b0).toEqual(bData);
    const aug = createAugmenter(ctx, { transforms: spec.transforms.map((t) => ({ ...t, p: 1 })) }, { seed: 3 });
    for (let i = 0; i < 200; i++) expect(aug.describe(i, { height: H, width: W }).stages.every((s) => s.applied)).toBe(true);
    const top0 = createAugmenter(ctx, { ...spec, p: 0 }, { seed: 3 });
    for (let i = 0; i < 50; i++) expect(top0.describe(i, { height: H, width: W }).stages.some((s) => s.applied)).toBe(false);
  });

  it('the plan replays with new parameters per update, without new dispatches', async () => {
    const a = ctx.tensor([n, 3, H, W], aData);
    const b = ctx.tensor([n, 1, H, W], bData);
    const outA = ctx.tensor([n, 3, H, W]);
    const outB = ctx.tensor([n, 1, H, W]);
    const aug = createAugmenter(ctx, spec, { seed: 7 });
    const plan = aug.plan(a, b, outA, outB);
    const [ref] = await runOnce(7, 4);
    plan.update({ sampleIndex: 0 });
    await ctx.run(plan.dispatches);
    const first = await outA.read();
    const created = ctx.stats.buffersCreated;
    plan.update({ sampleIndex: 4 });
    await ctx.run(plan.dispatches);
    expect(ctx.stats.buffersCreated).toBe(created);
    const second = await outA.read();
    expect(second).toEqual(ref);
    expect(second).not.toEqual(first);
    plan.update({ sampleIndex: 4, epoch: 1 });
    await ctx.run(plan.dispatches);
    expect(await outA.read()).not.toEqual(ref);
    plan.destroy();
    for (const t of [a, b, outA, outB]) t.destroy();
  });

  it('rejects mismatched tensors and channel counts, naming the transform', () => {
    const a = ctx.tensor([2, 1, H, W]);
    const b = ctx.tensor([2, 1, H, W]);
    const outA = ctx.tensor([2, 1, H, W]);
    const outB = ctx.tensor([2, 1, H + 1, W]);
    const aug = createAugmenter(ctx, { transforms: [{ name: 'VerticalFlip' }] }, { seed: 1 });
    expect(() => aug.plan(a, b, outA, outB)).toThrow(/augment: outB 'tensor' shape: expected \[2, 1, 23, 40\], got \[2, 1, 24, 40\]/);
    const outB2 = ctx.tensor([2, 1, H, W]);
    const rgb = createAugmenter(ctx, { transforms: [{ name: 'RGBShift' }] }, { seed: 1 });
    expect(() => rgb.plan(a, b, outA, outB2)).toThrow(/RGBShift: spec\.transforms\[0\]: channels of A: expected 3, got 1/);
    const fill = createAugmenter(ctx, { transforms: [{ name: 'Rotate', border_mode: 'constant', value: [1, 2, 3] }] }, { seed: 1 });
    expect(() => fill.plan(a, b, outA, outB2)).toThrow(/Rotate: spec\.transforms\[0\]\.value: values: expected 1 or 1 \(channels of A\), got 3/);
    expect(() => aug.plan(a, b, a, outB2)).toThrow(/distinct from the inputs/);
    for (const t of [a, b, outA, outB, outB2]) t.destroy();
  });
});
