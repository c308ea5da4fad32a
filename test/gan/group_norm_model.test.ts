// norm: 'group' as a model option: the group count rule, a tiny model that trains (finite, decreasing
// loss, the norms' own parameters move) and round-trips save/load exactly.
import { describe, it, expect } from 'vitest';
import { testContext } from '../helpers/gpu.js';
import { Rng } from '../../src/runtime/random.js';
import { createImage, type ImageF32 } from '../../src/data/image.js';
import { Pix2Pix, type Pix2PixOptions } from '../../src/gan/pix2pix.js';
import { GroupNorm2d, normGroupsFor } from '../../src/layers/norm.js';

const ctx = await testContext();

function images(n: number, seed: number, size = 32): ImageF32[] {
  const rng = new Rng(seed);
  return Array.from({ length: n }, () => createImage(size, size, 3, Float32Array.from({ length: size * size * 3 }, () => rng.next())));
}

describe('normGroupsFor: the largest divisor of the channel count not above normGroups', () => {
  it('clips to a divisor', () => {
    expect(normGroupsFor(64)).toBe(32);
    expect(normGroupsFor(512)).toBe(32);
    expect(normGroupsFor(24)).toBe(24); // C <= 32: one channel per group (instance norm with an affine)
    expect(normGroupsFor(48)).toBe(24);
    expect(normGroupsFor(12, 8)).toBe(6);
    expect(normGroupsFor(7, 4)).toBe(1); // a prime above the limit: layer norm
    expect(normGroupsFor(8, 1)).toBe(1);
    expect(() => normGroupsFor(8, 0)).toThrow(/normGroups: expected a positive integer, got 0/);
  });
});

describe("Pix2Pix.create({ norm: 'group' })", () => {
  // ngf 4: channels 4..32, so normGroups 2 gives real groups of 2 to 16 channels.
  const TINY: Pix2PixOptions = { ctx, numDowns: 5, ngf: 4, ndf: 4, norm: 'group', normGroups: 2, dropout: false, lr: 2e-3, seed: 7 };

  it('builds GroupNorm2d layers with the resolved group count, weight 1 and bias 0, no running statistics', async () => {
    const model = await Pix2Pix.create(TINY);
    try {
      const keys = model.G.stateEntries().map((e) => e.key);
      expect(keys.some((k) => k.endsWith('running_mean'))).toBe(false);
      const norms = model.G.levels.flatMap((b) => [b.downNorm, b.upNorm]).filter((n): n is GroupNorm2d => n instanceof GroupNorm2d);
      expect(norms.length).toBe(7); // levels 2-4: down and up norms; level 5 (innermost): its up norm
      for (const n of norms) {
        expect(n.groups).toBe(2);
        expect(Array.from(await n.weight.value.read())).toEqual(new Array(n.channels).fill(1));
        expect(Array.from(await n.bias.value.read())).toEqual(new Array(n.channels).fill(0));
      }
      // Convs before a group norm have no bias (as with batch norm): the norm's mean subtraction cancels it.
      expect(keys).not.toContain('model.model.1.model.1.bias');
      expect(model.D!.normPaths()).toEqual(['model.3', 'model.6', 'model.9']);
    } finally {
      await model.destroy();
    }
  });

  it('trains: finite losses, L1 falls on a fixed batch, the norms learn; save/load round-trips', async () => {
    const model = await Pix2Pix.create(TINY);
    const copy = await Pix2Pix.create({ ...TINY, seed: 99 });
    try {
      // A smooth input and a learnable target (its negative): random targets leave L1 little to fall to.
      const a = createImage(32, 32, 3, Float32Array.from({ length: 3 * 32 * 32 }, (_, i) => 0.5 + 0.4 * Math.sin((i % 32) / 5 + Math.floor(i / 32) / 7 + Math.floor(i / 1024))));
      const b = createImage(32, 32, 3, a.data.map((v) => 1 - v));
      const batch = { a: [a], b: [b] };
      const l1: number[] = [];
      for (let s = 0; s < 8; s++) {
        const losses = await model.trainStep(batch);
        for (const v of Object.values(losses)) expect(Number.isFinite(v)).toBe(true);
        l1.push(losses.G_L1);
      }
      expect(l1[7], `G_L1 per step: ${l1.map((v) => v.toFixed(2)).join(', ')}`).toBeLessThan(l1[0] * 0.9);
      const norm = model.G.levels[1].downNorm as GroupNorm2d;
      const w = await norm.weight.value.read();
      expect(w.some((v) => v !== 1)).toBe(true);

      const saved = await model.save();
      await copy.load(saved);
      const again = await copy.save();
      expect(Buffer.from(again.G).equals(Buffer.from(saved.G))).toBe(true);
      expect(Buffer.from(again.D!).equals(Buffer.from(saved.D!))).toBe(true);
      const probe = images(1, 3)[0];
      const [p, q] = [await model.translate(probe), await copy.translate(probe)];
      expect(Array.from(q.data)).toEqual(Array.from(p.data));
      // Both keep training identically from the loaded state (optimizer moments included).
      const [next, nextCopy] = [await model.trainStep(batch), await copy.trainStep(batch)];
      expect(nextCopy).toEqual(next);
    } finally {
      await model.destroy();
      await copy.destroy();
    }
  });
});
