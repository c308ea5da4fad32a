import { describe, it, expect } from 'vitest';
import { resizeBicubic, preprocessPair, flipHorizontal } from '../../src/train/preprocess.js';
import { createImage } from '../../src/data/image.js';
import { Rng } from '../../src/runtime/random.js';

describe('preprocessing', () => {
  it('bicubic resize keeps a constant image constant and hits the target size', () => {
    const im = createImage(17, 9, 3, new Float32Array(17 * 9 * 3).fill(0.25));
    const r = resizeBicubic(im, 8, 30);
    expect([r.width, r.height]).toEqual([8, 30]);
    for (const v of r.data) expect(v).toBeCloseTo(0.25, 6);
  });
  it('upsampling a linear ramp stays monotone and within range', () => {
    const im = createImage(4, 1, 1, Float32Array.from([0, 0.25, 0.5, 0.75]));
    const r = resizeBicubic(im, 8, 1);
    for (let i = 1; i < 8; i++) expect(r.data[i]).toBeGreaterThanOrEqual(r.data[i - 1] - 1e-9);
  });
  it('crops and flips A and B identically', () => {
    const a = createImage(10, 6, 1, Float32Array.from({ length: 60 }, (_, i) => i / 60));
    const b = createImage(10, 6, 1, Float32Array.from({ length: 60 }, (_, i) => i / 60));
    for (let s = 0; s < 5; s++) {
      const r = preprocessPair(a, b, { preprocess: 'crop', loadSize: 10, cropSize: 4, flip: true }, new Rng(s));
      expect(r.a.width).toBe(4);
      expect(Array.from(r.a.data)).toEqual(Array.from(r.b.data));
    }
  });
  it('flip is an involution', () => {
    const a = createImage(5, 3, 3, Float32Array.from({ length: 45 }, (_, i) => i));
    expect(Array.from(flipHorizontal(flipHorizontal(a)).data)).toEqual(Array.from(a.data));
  });
  it('rejects a pair of different sizes', () => {
    expect(() => preprocessPair(createImage(4, 4, 1), createImage(4, 5, 1), { preprocess: 'none', loadSize: 4, cropSize: 4, flip: false }, new Rng(1))).toThrow(
      /preprocessPair: B size: expected 4x4 \(as A\), got 4x5/,
    );
  });
});
