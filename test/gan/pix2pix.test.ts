// Pix2Pix behaviour: checkpoints (naming, inference, validation, save/load, resume), image sizes,
// NaN detection, allocation-free steady state, freezing, dropout seeding, the LR policy.
import { describe, it, expect, afterAll } from 'vitest';
import { testContext } from '../helpers/gpu.js';
import { Rng } from '../../src/runtime/random.js';
import { FileFormatError } from '../../src/runtime/errors.js';
import { createImage, type ImageF32 } from '../../src/data/image.js';
import { parseSafetensors } from '../../src/io/safetensors.js';
import type { StateDict } from '../../src/io/state_dict.js';
import { NonFiniteLossError, Pix2Pix, padReflect, type Pix2PixOptions } from '../../src/gan/pix2pix.js';
import { CheckpointMismatchError, inferDiscriminatorConfig, inferGeneratorConfig, readStateDict } from '../../src/gan/state_dict.js';
import { UnetGenerator, NLayerDiscriminator } from '../../src/gan/networks.js';
import { linearLambda, linearLrFactorForEpoch } from '../../src/gan/lr_policy.js';
import { fixture, fixtureBytes } from './pix2pix_fixture.js';

const ctx = await testContext();
afterAll(() => ctx.trimPool());

// Tiny: 5 downs (32x32 images), 2 base channels, batch norm and dropout (the reference's defaults).
const TINY: Pix2PixOptions = { ctx, numDowns: 5, ngf: 2, ndf: 2, norm: 'batch', dropout: true, seed: 3 };

function randomImages(n: number, channels: 1 | 3, w: number, h: number, seed: number): ImageF32[] {
  const rng = new Rng(seed);
  return Array.from({ length: n }, () => createImage(w, h, channels, Float32Array.from({ length: w * h * channels }, () => rng.next())));
}

function batch(seed: number, n = 2, size = 32) {
  return { a: randomImages(n, 3, size, size, seed), b: randomImages(n, 3, size, size, seed + 1000) };
}

async function allValues(sd: StateDict): Promise<Map<string, Float32Array>> {
  return new Map([...sd].map(([k, v]) => [k, v.data]));
}

function maxDiff(a: Map<string, Float32Array>, b: Map<string, Float32Array>): number {
  let m = 0;
  for (const [k, v] of a) {
    const w = b.get(k)!;
    for (let i = 0; i < v.length; i++) m = Math.max(m, Math.abs(v[i] - w[i]));
  }
  return m;
}

describe('state dicts: reference key names and architecture inference', () => {
  for (const name of ['instance', 'batch'] as const) {
    it(`${name}: G and D keys and shapes equal PyTorch's state_dict() order`, () => {
      const f = fixture[name];
      const c = f.config;
      const G = new UnetGenerator(ctx, { inputChannels: 3, outputChannels: 1, numDowns: c.numDowns, ngf: c.ngf, norm: c.norm, dropout: false });
      const D = new NLayerDiscriminator(ctx, { inputChannels: 4, ndf: c.ndf, nLayers: c.nLayersD, norm: c.norm });
      expect(G.stateEntries().map((e) => [e.key, [...e.shape]])).toEqual(f.recipeG.map((r) => [r.key, r.shape]));
      expect(D.stateEntries().map((e) => [e.key, [...e.shape]])).toEqual(f.recipeD.map((r) => [r.key, r.shape]));
      const shapes: StateDict = new Map(f.recipeG.map((r) => [r.key, { shape: r.shape, data: new Float32Array(0), dtype: 'F32' }]));
      expect(inferGeneratorConfig(shapes)).toEqual({ inputChannels: 3, outputChannels: 1, numDowns: c.numDowns, ngf: c.ngf, norm: c.norm, dropout: true });
      const dShapes: StateDict = new Map(f.recipeD.map((r) => [r.key, { shape: r.shape, data: new Float32Array(0), dtype: 'F32' }]));
      expect(inferDiscriminatorConfig(dShapes)).toEqual({ inputChannels: 4, ndf: c.ndf, nLayers: c.nLayersD, norm: c.norm });
      G.destroy();
      D.destroy();
    });
  }

  it('unet_256 / unet_128 depth and dropout placement', () => {
    const G = new UnetGenerator(ctx, { inputChannels: 3, outputChannels: 3, numDowns: 8, ngf: 1, norm: 'batch', dropout: true });
    const keys = G.stateEntries().map((e) => e.key);
    expect(keys[0]).toBe('model.model.0.weight');
    expect(keys).toContain('model.model.3.bias'); // outermost convT always has a bias
    expect(keys).not.toContain('model.model.0.bias'); // batch norm: convs without bias
    expect(keys).toContain('model.model.1.model.3.model.3.model.3.model.3.model.3.model.3.model.1.weight'); // innermost down conv (level 8)
    expect(G.levels.map((b) => !!b.dropout)).toEqual([false, false, false, false, true, true, true, false]);
    G.destroy();
  });
});

describe('loading checkpoints', () => {
  it('a checkpoint with missing, extra and misshapen tensors is refused, listing each', async () => {
    const model = await Pix2Pix.create(TINY);
    try {
      const sd = await readStateDict(model.G);
      sd.delete('model.model.1.model.2.running_var');
      sd.set('model.model.9.weight', { shape: [1], data: new Float32Array(1), dtype: 'F32' });
      sd.set('model.model.0.weight', { shape: [2, 3, 3, 3], data: new Float32Array(54), dtype: 'F32' });
      const err = await model.load({ G: sd }).catch((e) => e);
      expect(err).toBeInstanceOf(CheckpointMismatchError);
      expect(err.missing).toEqual(['model.model.1.model.2.running_var']);
      expect(err.unexpected).toEqual(['model.model.9.weight']);
      expect(err.mismatched.map((m: { key: string }) => m.key)).toEqual(['model.model.0.weight']);
      // Key names echoed from a file are quoted (control characters escaped), see quoteUntrusted.
      expect(err.message).toMatch(/'model\.model\.0\.weight' expected \[2, 3, 4, 4\] got \[2, 3, 3, 3\]/);
    } finally {
      model.destroy();
    }
  });

  it('a pickle that calls a forbidden global is refused cleanly', async () => {
    const bytes = fixtureBytes('pth/malicious_zip.pth');
    await expect(Pix2Pix.fromStateDict({ G: bytes }, { ctx })).rejects.toBeInstanceOf(FileFormatError);
  });

  it('a D checkpoint for another G is refused', async () => {
    const a = await Pix2Pix.create(TINY);
    const b = await Pix2Pix.create({ ...TINY, outputChannels: 1 });
    try {
      const ga = (await a.save()).G;
      const db = (await b.save()).D!;
      await expect(Pix2Pix.fromStateDict({ G: ga, D: db }, { ctx })).rejects.toThrow(/discriminator input channels/);
    } finally {
      a.destroy();
      b.destroy();
    }
  });
});

describe('training', () => {
  it('save -> load -> translate is identical; resume (2 steps + save/load + 1) equals 3 steps', async () => {
    const ref = await Pix2Pix.create(TINY);
    const first = await Pix2Pix.create(TINY);
    let resumed: Pix2Pix | null = null;
    try {
      for (let s = 0; s < 3; s++) await ref.trainStep(batch(10 + s));
      for (let s = 0; s < 2; s++) await first.trainStep(batch(10 + s));
      const ck = await first.save();
      resumed = await Pix2Pix.fromStateDict(ck, { ...TINY });
      const img = randomImages(1, 3, 32, 32, 99);
      const [y1, y2] = [await first.translate(img, { seed: 5 }), await resumed.translate(img, { seed: 5 })];
      expect(Array.from(y2[0].data)).toEqual(Array.from(y1[0].data));
      const [e1, e2] = [await first.translate(img, { eval: true }), await resumed.translate(img, { eval: true })];
      expect(Array.from(e2[0].data)).toEqual(Array.from(e1[0].data));

      await resumed.trainStep(batch(12));
      expect(resumed.steps).toBe(3);
      const gRef = await allValues(await readStateDict(ref.G));
      const gRes = await allValues(await readStateDict(resumed.G));
      const dRef = await allValues(await readStateDict(ref.D!));
      const dRes = await allValues(await readStateDict(resumed.D!));
      expect(maxDiff(gRef, gRes)).toBe(0);
      expect(maxDiff(dRef, dRes)).toBe(0);
      expect(gRes.get('model.model.1.model.2.num_batches_tracked')![0]).toBe(3);
      expect(dRes.get('model.3.num_batches_tracked')![0]).toBe(9);
    } finally {
      ref.destroy();
      first.destroy();
      resumed?.destroy();
    }
  });

  it('a steady-state training step creates no GPU buffers', async () => {
    const model = await Pix2Pix.create(TINY);
    try {
      await model.trainStep(batch(1));
      await model.trainStep(batch(2));
      const before = ctx.stats.buffersCreated;
      const losses = await model.trainStep(batch(3));
      expect(ctx.stats.buffersCreated).toBe(before);
      for (const v of Object.values(losses)) expect(Number.isFinite(v)).toBe(true);
    } finally {
      model.destroy();
    }
  });

  it('a NaN loss throws an error naming the step', async () => {
    const model = await Pix2Pix.create(TINY);
    try {
      await model.trainStep(batch(1));
      // Loading NaN weights is refused (a corrupt checkpoint), so poison the live weights on the GPU instead:
      // this is what a diverging run looks like.
      const entry = model.G.stateEntries().find((e) => e.key === 'model.model.0.weight');
      if (!entry || entry.kind !== 'param') throw new Error('model.model.0.weight is not a parameter');
      const w = entry.tensor;
      w.write(new Float32Array(w.size).fill(NaN));
      const err = await model.trainStep(batch(2)).catch((e) => e);
      expect(err).toBeInstanceOf(NonFiniteLossError);
      expect(err.step).toBe(2);
      expect(err.message).toMatch(/training step 2/);
      // Losses are printed as numbers (JSON would print NaN as null).
      expect(err.message).toMatch(/G_GAN (NaN|-?Infinity|[-\d.e]+), G_L1 (NaN|Infinity)/);
      expect(err.message).not.toMatch(/null/);
    } finally {
      model.destroy();
    }
  });

  it('frozen encoder levels and a frozen discriminator get no updates', async () => {
    const model = await Pix2Pix.create({ ...TINY, freeze: { encoderLevels: 2, discriminator: true } });
    try {
      const g0 = await allValues(await readStateDict(model.G));
      const d0 = await allValues(await readStateDict(model.D!));
      await model.trainStep(batch(4));
      const g1 = await allValues(await readStateDict(model.G));
      const d1 = await allValues(await readStateDict(model.D!));
      const changed = (k: string, a: Map<string, Float32Array>, b: Map<string, Float32Array>) => a.get(k)!.some((v, i) => v !== b.get(k)![i]);
      expect(changed('model.model.0.weight', g0, g1)).toBe(false); // level 1 encoder
      expect(changed('model.model.1.model.1.weight', g0, g1)).toBe(false); // level 2 encoder conv
      expect(changed('model.model.1.model.2.weight', g0, g1)).toBe(false); // level 2 encoder norm
      expect(changed('model.model.1.model.3.model.1.weight', g0, g1)).toBe(true); // level 3 encoder trains
      expect(changed('model.model.3.weight', g0, g1)).toBe(true); // decoder trains
      for (const k of d0.keys()) if (!/running|num_batches/.test(k)) expect(changed(k, d0, d1), k).toBe(false);
    } finally {
      model.destroy();
    }
  });
});

describe('translation', () => {
  it('rejects sizes that are not multiples of 2^numDowns, or pads by reflection and crops back', async () => {
    const model = await Pix2Pix.create({ ...TINY, discriminator: false });
    try {
      const odd = randomImages(1, 3, 40, 30, 7)[0];
      await expect(model.translate(odd)).rejects.toThrow(/multiples of 2\^5 = 32/);
      const y = await model.translate(odd, { pad: true, eval: true });
      expect([y.width, y.height, y.channels]).toEqual([40, 30, 3]);
      // Same as translating the reflect-padded 64x32 image and cropping its top-left 40x30.
      const padded = padReflect(odd.data, [1, 3, 30, 40], 32, 64);
      const big = await model.translate(createImage(64, 32, 3, padded.data), { eval: true });
      for (let c = 0; c < 3; c++) for (let r = 0; r < 30; r++) for (let x = 0; x < 40; x++) {
        expect(y.data[(c * 30 + r) * 40 + x]).toBe(big.data[(c * 32 + r) * 64 + x]);
      }
    } finally {
      model.destroy();
    }
  });

  it('non-square images; dropout is seeded in default mode and off in eval mode', async () => {
    // 6 downs: the reference puts Dropout(0.5) in numDowns - 5 = 1 block.
    const model = await Pix2Pix.create({ ...TINY, numDowns: 6, discriminator: false });
    try {
      const img = randomImages(1, 3, 128, 64, 8)[0];
      const s1 = await model.translate(img, { seed: 1 });
      const s1b = await model.translate(img, { seed: 1 });
      const s2 = await model.translate(img, { seed: 2 });
      expect([s1.width, s1.height]).toEqual([128, 64]);
      expect(Array.from(s1b.data)).toEqual(Array.from(s1.data));
      expect(Array.from(s2.data)).not.toEqual(Array.from(s1.data));
      const e1 = await model.translate(img, { eval: true, seed: 1 });
      const e2 = await model.translate(img, { eval: true, seed: 2 });
      expect(Array.from(e2.data)).toEqual(Array.from(e1.data));
    } finally {
      model.destroy();
    }
  });
});

describe('linear learning-rate policy (reference lambda_rule)', () => {
  it('matches lambda_rule and the start-of-epoch scheduler step', () => {
    const p = { nEpochs: 100, nEpochsDecay: 100 };
    expect(linearLambda(0, p)).toBe(1);
    expect(linearLambda(99, p)).toBe(1);
    expect(linearLambda(100, p)).toBeCloseTo(1 - 1 / 101, 12);
    expect(linearLambda(200, p)).toBeCloseTo(1 - 101 / 101, 12);
    expect(linearLrFactorForEpoch(1, p)).toBe(1);
    expect(linearLrFactorForEpoch(99, p)).toBe(1);
    expect(linearLrFactorForEpoch(100, p)).toBeCloseTo(1 - 1 / 101, 12);
    expect(linearLrFactorForEpoch(200, p)).toBeCloseTo(0, 12);
    expect(linearLambda(5, { nEpochs: 3, nEpochsDecay: 4, epochCount: 2 })).toBeCloseTo(1 - 4 / 5, 12);
  });
});

void parseSafetensors;
