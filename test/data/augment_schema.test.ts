import { describe, it, expect } from 'vitest';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { AugmentSpecError, parseAugmentSpec, outputSize } from '../../src/data/augment_schema.js';

const EXAMPLE = fileURLToPath(new URL('../../docs/augment-example.json', import.meta.url));

describe('parseAugmentSpec', () => {
  it('fills in Albumentations defaults', () => {
    const s = parseAugmentSpec('{"transforms":[{"name":"HorizontalFlip"},{"name":"ShiftScaleRotate"},{"name":"RandomResizedCrop","height":8,"width":12},{"name":"GaussianBlur"},{"name":"GaussNoise","var_limit":30}]}');
    expect(s.p).toBe(1);
    expect(s.transforms[0]).toEqual({ name: 'HorizontalFlip', p: 0.5 });
    expect(s.transforms[1]).toEqual({
      name: 'ShiftScaleRotate',
      p: 0.5,
      shift_limit_x: [-0.0625, 0.0625],
      shift_limit_y: [-0.0625, 0.0625],
      scale_limit: [-0.1, 0.1],
      rotate_limit: [-45, 45],
      interpolation: 'bilinear',
      border_mode: 'reflect_101',
      value: [0],
      mask_value: null,
    });
    expect(s.transforms[2]).toMatchObject({ p: 1, scale: [0.08, 1], ratio: [0.75, 4 / 3] });
    expect(s.transforms[3]).toMatchObject({ blur_limit: [3, 7], sigma_limit: [0, 0] });
    expect(s.transforms[4]).toMatchObject({ var_limit: [0, 30], mean: 0, per_channel: true });
    expect(outputSize(s, 100, 200)).toEqual({ height: 8, width: 12 });
  });

  it('accepts cv2 integer codes, always_apply, a bare list, and is idempotent', () => {
    const s = parseAugmentSpec([{ name: 'Rotate', border_mode: 0, interpolation: 1, value: [10, 20, 30], always_apply: true }]);
    expect(s.transforms[0]).toMatchObject({ border_mode: 'constant', p: 1, value: [10, 20, 30] });
    const example = parseAugmentSpec(readFileSync(EXAMPLE, 'utf8'));
    expect(parseAugmentSpec(example)).toEqual(example);
    expect(parseAugmentSpec(s)).toEqual(s);
  });

  it('the documented example parses into flips, shift/scale/rotate, brightness/contrast, gamma, noise or blur', () => {
    const s = parseAugmentSpec(readFileSync(EXAMPLE, 'utf8'));
    expect(s.transforms.map((t) => t.name)).toEqual(['HorizontalFlip', 'VerticalFlip', 'ShiftScaleRotate', 'RandomBrightnessContrast', 'RandomGamma', 'OneOf']);
  });

  const bad: [string, unknown, RegExp][] = [
    ['unknown transform', [{ name: 'RandomFog' }], /parseAugmentSpec: spec\.transforms\[0\]\.name: expected one of HorizontalFlip, .*GaussianBlur, OneOf, Compose, got "RandomFog"/],
    ['unknown parameter', [{ name: 'ShiftScaleRotate', rotate_limt: 10 }], /ShiftScaleRotate: spec\.transforms\[0\]\.rotate_limt: expected a known parameter \(ShiftScaleRotate takes p, .*rotate_limit.*\), got 10/],
    ['p above 1', [{ name: 'HorizontalFlip', p: 1.5 }], /HorizontalFlip: spec\.transforms\[0\]\.p: expected a number >= 0 and <= 1, got 1\.5/],
    ['reversed range', [{ name: 'Rotate', limit: [10, -10] }], /Rotate: spec\.transforms\[0\]\.limit: expected a number x \(for \[-x, x\]\) or \[lo, hi\] with lo <= hi.*, got \[10,-10\]/],
    ['negative scalar limit', [{ name: 'Rotate', limit: -5 }], /Rotate: spec\.transforms\[0\]\.limit: .*got -5/],
    ['scale factor <= 0', [{ name: 'ShiftScaleRotate', scale_limit: [-1.5, 0] }], /ShiftScaleRotate: spec\.transforms\[0\]\.scale_limit: expected .*1 \+ each > 0, got \[-1\.5,0\]/],
    ['gamma <= 0', [{ name: 'RandomGamma', gamma_limit: [-10, 120] }], /RandomGamma: spec\.transforms\[0\]\.gamma_limit: expected .*each > 0, got \[-10,120\]/],
    ['even blur', [{ name: 'GaussianBlur', blur_limit: [4, 7] }], /GaussianBlur: spec\.transforms\[0\]\.blur_limit: expected odd kernel sizes \(or 0: size from sigma\), got \[4,7\]/],
    ['huge blur', [{ name: 'GaussianBlur', blur_limit: [3, 99] }], /GaussianBlur: spec\.transforms\[0\]\.blur_limit: expected .*<= 63, got \[3,99\]/],
    ['nearest interpolation', [{ name: 'Rotate', interpolation: 0 }], /Rotate: spec\.transforms\[0\]\.interpolation: expected 'bilinear' \(cv2\.INTER_LINEAR = 1; the only interpolation implemented\), got 0/],
    ['bad border', [{ name: 'Rotate', border_mode: 'mirror' }], /Rotate: spec\.transforms\[0\]\.border_mode: expected one of constant, replicate, reflect, wrap, reflect_101 or cv2 code 0 \(constant\), .*got "mirror"/],
    ['bad fill', [{ name: 'Rotate', value: 300 }], /Rotate: spec\.transforms\[0\]\.value: expected a number in 0\.\.255 .*, got 300/],
    ['missing crop size', [{ name: 'RandomResizedCrop', width: 8 }], /RandomResizedCrop: spec\.transforms\[0\]\.height: expected an integer >= 1 \(required\), got nothing/],
    ['crop with p < 1', [{ name: 'RandomResizedCrop', height: 8, width: 8, p: 0.5 }], /RandomResizedCrop: spec\.transforms\[0\]\.p: expected 1, outside any OneOf.*, got 0\.5/],
    ['crop in OneOf', [{ name: 'OneOf', p: 1, transforms: [{ name: 'RandomResizedCrop', height: 8, width: 8 }] }], /RandomResizedCrop: spec\.transforms\[0\]\.transforms\[0\]\.p: expected 1, outside any OneOf/],
    ['OneOf without weight', [{ name: 'OneOf', transforms: [{ name: 'RandomGamma', p: 0 }] }], /OneOf: spec\.transforms\[0\]\.transforms: expected at least one child with p > 0/],
    ['nested error path', [{ name: 'Compose', transforms: [{ name: 'OneOf', transforms: [{ name: 'RGBShift', r_shift_limit: 'x' }] }] }], /RGBShift: spec\.transforms\[0\]\.transforms\[0\]\.transforms\[0\]\.r_shift_limit: expected .*got "x"/],
    ['transforms not an array', { transforms: 3 }, /Compose: spec\.transforms: expected an array of transforms, got 3/],
  ];
  for (const [label, spec, re] of bad) {
    it(`rejects ${label}`, () => {
      let err: unknown;
      try {
        parseAugmentSpec(spec);
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(AugmentSpecError);
      expect((err as Error).message).toMatch(re);
    });
  }

  it('rejects invalid JSON, naming it', () => {
    expect(() => parseAugmentSpec('{"transforms": [')).toThrow(/parseAugmentSpec: JSON: expected valid JSON, got/);
  });
});
