// The float64 CPU reference checked against independent facts about OpenCV / Albumentations (rotation matrix,
// border tables, np.rot90, cv2.resize values, Gaussian tables, HSV), and the draws against their distributions.
import { describe, it, expect } from 'vitest';
import { expectClose } from '../helpers/compare.js';
import { Rng } from '../../src/runtime/random.js';
import { parseAugmentSpec } from '../../src/data/augment_schema.js';
import { borderIndex, colorCpu, hsvToRgb, rgbToHsv, warpCpu, type PlanarImage } from '../../src/data/augment_cpu.js';
import {
  applyAffine,
  drawSample,
  gaussianKernel,
  gridAxisMap,
  invertAffine,
  ksizeFromSigma,
  rotationMatrix2D,
  sampleSeed,
  type Affine,
  type WarpOp,
} from '../../src/data/augment_params.js';

const warpOp = (matrix: Affine, w: number, h: number, border: WarpOp['border'] = 'reflect_101'): WarpOp => ({
  kind: 'warp',
  matrix,
  inverse: invertAffine(matrix),
  window: [0, 0, w, h],
  border,
  fillA: [0],
  fillB: [0],
});

describe('geometry reference', () => {
  it('rotationMatrix2D equals cv2.getRotationMatrix2D', () => {
    for (const [cx, cy, angle, scale] of [[19.5, 11, 30, 1], [3, 7, -75, 0.8], [0, 0, 180, 1.3]]) {
      const t = (angle * Math.PI) / 180;
      const a = scale * Math.cos(t);
      const b = scale * Math.sin(t);
      // OpenCV docs: [[a, b, (1 - a) cx - b cy], [-b, a, b cx + (1 - a) cy]]
      const cv: Affine = [a, b, (1 - a) * cx - b * cy, -b, a, b * cx + (1 - a) * cy];
      expectClose(rotationMatrix2D(cx, cy, angle, scale), cv, { atol: 1e-12, rtol: 0, label: `rot ${angle}` });
      const inv = invertAffine(cv);
      const [x, y] = applyAffine(inv, ...applyAffine(cv, 5, 9));
      expect(Math.hypot(x - 5, y - 9)).toBeLessThan(1e-12);
    }
  });

  it('a 90° rotation about the exact centre is np.rot90 (counter-clockwise), and a flip is exact', () => {
    const n = 7;
    const im: PlanarImage = { width: n, height: n, channels: 1, data: Float64Array.from({ length: n * n }, (_, i) => i) };
    const rot = warpCpu(im, warpOp(rotationMatrix2D((n - 1) / 2, (n - 1) / 2, 90, 1), n, n), n, n, [0]);
    for (let i = 0; i < n; i++) for (let j = 0; j < n; j++) expect(rot[i * n + j]).toBeCloseTo(im.data[j * n + (n - 1 - i)], 10);
    const flip = warpCpu(im, warpOp([-1, 0, n - 1, 0, 1, 0], n, n), n, n, [0]);
    for (let i = 0; i < n; i++) for (let j = 0; j < n; j++) expect(flip[i * n + j]).toBe(im.data[i * n + (n - 1 - j)]);
  });

  it('border modes follow cv2.borderInterpolate', () => {
    // OpenCV's documentation, for "abcdefgh" (len 8) and 6 pixels to the left / 7 to the right.
    const row = (mode: Parameters<typeof borderIndex>[2]) =>
      [...Array.from({ length: 6 }, (_, i) => borderIndex(i - 6, 8, mode)), ...Array.from({ length: 7 }, (_, i) => borderIndex(8 + i, 8, mode))]
        .map((k) => (k < 0 ? 'i' : 'abcdefgh'[k]))
        .join('');
    expect(row('reflect_101')).toBe('gfedcb' + 'gfedcba');
    expect(row('reflect')).toBe('fedcba' + 'hgfedcb');
    expect(row('replicate')).toBe('aaaaaa' + 'hhhhhhh');
    expect(row('wrap')).toBe('cdefgh' + 'abcdefg');
    expect(row('constant')).toBe('iiiiii' + 'iiiiiii');
    expect(borderIndex(-3, 1, 'reflect_101')).toBe(0);
    expect(borderIndex(-40, 8, 'reflect_101')).toBe(borderIndex(-40 + 14 * 3, 8, 'reflect_101'));
  });

  it('the crop-and-resize warp matches cv2.resize INTER_LINEAR values', () => {
    // cv2.resize(np.float32([[0, 1, 2, 3]]), (2, 1)) = [[0.5, 2.5]]; to (8, 1): half-pixel centres, edges clamped.
    const im: PlanarImage = { width: 4, height: 1, channels: 1, data: Float64Array.from([0, 1, 2, 3]) };
    const op = (outW: number): WarpOp => {
      const s = 4 / outW;
      const inverse: Affine = [s, 0, 0.5 * s - 0.5, 0, 1, 0];
      return { kind: 'warp', inverse, window: [0, 0, 4, 1], border: 'replicate', fillA: [0], fillB: [0] };
    };
    expectClose(warpCpu(im, op(2), 2, 1, [0]), [0.5, 2.5], { atol: 1e-12, rtol: 0 });
    expectClose(warpCpu(im, op(8), 8, 1, [0]), [0, 0.25, 0.75, 1.25, 1.75, 2.25, 2.75, 3], { atol: 1e-12, rtol: 0 });
  });

  it('GridDistortion axis maps follow Albumentations 1.3 grid_distortion', () => {
    // Albumentations' segments are np.linspace(prev, cur, step), end points included: not quite the identity.
    const unit = gridAxisMap(40, 5, [1, 1, 1, 1, 1, 1]);
    for (let i = 0; i < 40; i++) expect(unit[i]).toBeCloseTo(8 * Math.floor(i / 8) + ((i % 8) * 8) / 7, 12);
    const m = gridAxisMap(40, 5, [1.2, 1, 1, 1, 1, 1]);
    // First segment: np.linspace(0, 8 * 1.2, 8).
    expectClose(m.subarray(0, 8), Float64Array.from({ length: 8 }, (_, k) => (9.6 * k) / 7), { atol: 1e-12, rtol: 0 });
    expect(m[8]).toBeCloseTo(9.6, 12);
    // Width not divisible: Albumentations' last segment ends at the width.
    const r = gridAxisMap(23, 5, [1, 1, 1, 1, 1, 1]);
    expect(r[22]).toBe(23);
  });
});

describe('photometric reference', () => {
  it('cv2.getGaussianKernel: fixed tables for ksize <= 7 without sigma, normalised samples otherwise', () => {
    expect(gaussianKernel(3, 0)).toEqual([0.25, 0.5, 0.25]);
    expect(gaussianKernel(7, 0)).toEqual([0.03125, 0.109375, 0.21875, 0.28125, 0.21875, 0.109375, 0.03125]);
    const k = gaussianKernel(9, 1.5);
    expect(k.reduce((a, b) => a + b)).toBeCloseTo(1, 12);
    expect(k[0] / k[4]).toBeCloseTo(Math.exp(-16 / (2 * 2.25)), 12);
    // sigma from ksize: 0.3 ((9 - 1) / 2 - 1) + 0.8 = 1.7
    expect(gaussianKernel(9, 0)[0] / gaussianKernel(9, 0)[4]).toBeCloseTo(Math.exp(-16 / (2 * 1.7 * 1.7)), 12);
    expect(ksizeFromSigma(1)).toBe(7);
    expect(ksizeFromSigma(1.4)).toBe(9);
  });

  it('OpenCV HSV: known colours and round trips', () => {
    expectClose(rgbToHsv(1, 0, 0), [0, 1, 1], { atol: 1e-6, rtol: 0 });
    expectClose(rgbToHsv(0, 0.5, 0), [120, 1, 0.5], { atol: 1e-5, rtol: 0 });
    expectClose(rgbToHsv(0.2, 0.4, 0.8), [220, 0.75, 0.8], { atol: 1e-5, rtol: 0 });
    const rng = new Rng(3);
    for (let i = 0; i < 500; i++) {
      const c: [number, number, number] = [rng.next(), rng.next(), rng.next()];
      expectClose(hsvToRgb(...rgbToHsv(...c)), c, { atol: 1e-6, rtol: 0, label: 'round trip' });
    }
  });

  it('brightness/contrast by max and by mean, gamma, noise statistics', () => {
    const im: PlanarImage = { width: 4, height: 1, channels: 1, data: Float64Array.from([0.1, 0.2, 0.3, 0.6]) };
    expectClose(colorCpu(im, { kind: 'brightness_contrast', alpha: 1.5, beta: 0.1, byMax: true }), [0.25, 0.4, 0.55, 1], { atol: 1e-12, rtol: 0 });
    // mean 0.3; shift = beta * alpha * mean
    expectClose(colorCpu(im, { kind: 'brightness_contrast', alpha: 2, beta: 0.5, byMax: false }), [0.5, 0.7, 0.9, 1], { atol: 1e-12, rtol: 0 });
    expectClose(colorCpu(im, { kind: 'gamma', gamma: 2 }), [0.01, 0.04, 0.09, 0.36], { atol: 1e-12, rtol: 0 });
    const flat: PlanarImage = { width: 100, height: 100, channels: 1, data: new Float64Array(10000).fill(0.5) };
    const noisy = colorCpu(flat, { kind: 'noise', sigma: 0.05, mean: 0.01, seed: 77, perChannel: true });
    const mean = noisy.reduce((a, b) => a + b) / noisy.length;
    const sd = Math.sqrt(noisy.reduce((a, b) => a + (b - mean) ** 2, 0) / noisy.length);
    expect(mean).toBeCloseTo(0.51, 2);
    expect(sd).toBeGreaterThan(0.047);
    expect(sd).toBeLessThan(0.053);
  });
});

describe('parameter draws', () => {
  const size = { height: 60, width: 80 };

  it('sample seeds are seed ^ pcgHash(i) and differ by epoch', () => {
    expect(sampleSeed(5, 3)).not.toBe(sampleSeed(5, 4));
    expect(sampleSeed(5, 3, 1)).not.toBe(sampleSeed(5, 3));
    expect(sampleSeed(5, 3) ^ sampleSeed(9, 3)).toBe(5 ^ 9);
  });

  it('ShiftScaleRotate parameters stay in their ranges and p is honoured', () => {
    const spec = parseAugmentSpec({ transforms: [{ name: 'ShiftScaleRotate', p: 0.3, shift_limit: 0.05, scale_limit: [-0.2, 0.1], rotate_limit: [-10, 20] }] });
    let applied = 0;
    for (let i = 0; i < 2000; i++) {
      const s = drawSample(spec, 11, i, size).stages[0];
      if (!s.applied) continue;
      applied++;
      const p = s.params as Record<string, number>;
      expect(p.angle).toBeGreaterThanOrEqual(-10);
      expect(p.angle).toBeLessThanOrEqual(20);
      expect(p.scale).toBeGreaterThanOrEqual(0.8);
      expect(p.scale).toBeLessThanOrEqual(1.1);
      expect(Math.abs(p.dx)).toBeLessThanOrEqual(0.05);
      // The matrix sends the centre to the centre shifted by (dx W, dy H).
      const [x, y] = applyAffine((s.op as WarpOp).matrix!, 39.5, 29.5);
      expect(x).toBeCloseTo(39.5 + p.dx * 80, 9);
      expect(y).toBeCloseTo(29.5 + p.dy * 60, 9);
    }
    expect(applied / 2000).toBeGreaterThan(0.26);
    expect(applied / 2000).toBeLessThan(0.34);
  });

  it('RandomResizedCrop crops inside the image with scale and ratio in range', () => {
    const spec = parseAugmentSpec({ transforms: [{ name: 'RandomResizedCrop', height: 32, width: 32, scale: [0.3, 1], ratio: [0.75, 1.3333] }] });
    for (let i = 0; i < 500; i++) {
      const s = drawSample(spec, 2, i, size).stages[0];
      const p = s.params as Record<string, number>;
      expect(s.outSize).toEqual({ height: 32, width: 32 });
      expect(p.x + p.crop_width).toBeLessThanOrEqual(80);
      expect(p.y + p.crop_height).toBeLessThanOrEqual(60);
      // Rounding to whole pixels moves area and ratio a little.
      expect((p.crop_width * p.crop_height) / 4800).toBeGreaterThan(0.27);
      expect(p.crop_width / p.crop_height).toBeGreaterThan(0.7);
      expect(p.crop_width / p.crop_height).toBeLessThan(1.4);
    }
  });

  it('OneOf applies exactly one child, chosen in proportion to the children p', () => {
    const spec = parseAugmentSpec({
      transforms: [{ name: 'OneOf', p: 0.8, transforms: [{ name: 'RandomGamma', p: 0.25 }, { name: 'RGBShift', p: 0.75 }, { name: 'GaussNoise', p: 0 }] }],
    });
    const counts = [0, 0, 0];
    let none = 0;
    for (let i = 0; i < 4000; i++) {
      const st = drawSample(spec, 1, i, size).stages;
      const on = st.filter((s) => s.applied);
      expect(on.length).toBeLessThanOrEqual(1);
      if (on.length === 0) none++;
      else counts[st.indexOf(on[0])]++;
    }
    expect(none / 4000).toBeGreaterThan(0.17);
    expect(none / 4000).toBeLessThan(0.23);
    expect(counts[2]).toBe(0);
    expect(counts[0] / counts[1]).toBeGreaterThan(0.28);
    expect(counts[0] / counts[1]).toBeLessThan(0.39);
  });

  it('GaussianBlur draws odd kernel sizes in the limit (Albumentations rule for even draws)', () => {
    const spec = parseAugmentSpec({ transforms: [{ name: 'GaussianBlur', p: 1, blur_limit: [3, 7] }] });
    const seen = new Set<number>();
    for (let i = 0; i < 300; i++) seen.add((drawSample(spec, 1, i, size).stages[0].params as Record<string, number>).ksize);
    expect([...seen].sort()).toEqual([3, 5, 7]);
  });
});
