// The training loop: what it writes, and that an interrupted run resumed from its checkpoint ends with
// exactly the weights of an uninterrupted run with the same seed.
import { describe, it, expect } from 'vitest';
import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { testContext } from '../helpers/gpu.js';
import { trainPix2Pix, type PairSource } from '../../src/train/trainer_node.js';
import { createImage } from '../../src/data/image.js';
import { Rng } from '../../src/runtime/random.js';
import { readStateDict } from '../../src/gan/state_dict.js';
import type { Pix2PixOptions } from '../../src/gan/pix2pix.js';
import { linearLrFactorForEpoch } from '../../src/gan/lr_policy.js';

function pairs(n: number): PairSource[] {
  return Array.from({ length: n }, (_, i) => ({
    name: `p${i}`,
    load: async () => {
      const rng = new Rng(100 + i);
      const a = createImage(40, 32, 3, Float32Array.from({ length: 40 * 32 * 3 }, () => rng.next()));
      const b = createImage(40, 32, 1, Float32Array.from({ length: 40 * 32 }, (_, j) => a.data[j] * 0.5 + 0.25));
      return { a, b };
    },
  }));
}

describe('trainPix2Pix', async () => {
  const ctx = await testContext();
  const model: Pix2PixOptions = { ctx, inputChannels: 3, outputChannels: 1, numDowns: 5, ngf: 2, ndf: 2, norm: 'batch', dropout: true, nEpochs: 2, nEpochsDecay: 1, seed: 5 };
  const preprocess = { preprocess: 'crop' as const, loadSize: 40, cropSize: 32, flip: true };

  it('writes checkpoints, the loss log, samples and options; a resumed run equals an uninterrupted one', async () => {
    const full = mkdtempSync(join(tmpdir(), 'train-full-'));
    const a = await trainPix2Pix(pairs(3), { out: full, model, preprocess, saveEpochFreq: 1 });
    expect(a.steps).toBe(9);
    for (const f of ['latest_net_G.safetensors', 'latest_net_D.safetensors', 'latest_optim.safetensors', '1_net_G.safetensors', '2_net_G.safetensors', 'options.json', 'train_state.json', 'samples/epoch_001.png', 'samples/epoch_003.png']) {
      expect(existsSync(join(full, f)), f).toBe(true);
    }
    const log = readFileSync(join(full, 'loss_log.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l));
    expect(log.map((l) => l.step)).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9]);
    expect(log[0]).toHaveProperty('G_GAN');
    // The reference steps its LambdaLR at the start of each epoch: epoch e trains at lr * lambda_rule(e).
    expect(log[0].lr).toBeCloseTo(2e-4 * linearLrFactorForEpoch(1, { nEpochs: 2, nEpochsDecay: 1 }), 12);
    expect(log[8].lr).toBeCloseTo(2e-4 * linearLrFactorForEpoch(3, { nEpochs: 2, nEpochsDecay: 1 }), 12);
    expect(log[8].lr).toBeLessThan(log[0].lr);
    const gFull = await readStateDict(a.model.G);
    a.model.destroy();

    // Interrupted after 4 of 9 steps (mid-epoch), then resumed in a new model.
    const part = mkdtempSync(join(tmpdir(), 'train-part-'));
    const b = await trainPix2Pix(pairs(3), { out: part, model, preprocess, maxSteps: 4 });
    expect(b.interrupted).toBe(true);
    expect(b.steps).toBe(4);
    b.model.destroy();
    const c = await trainPix2Pix(pairs(3), { out: part, model, preprocess, resume: true });
    expect(c.steps).toBe(9);
    const gResumed = await readStateDict(c.model.G);
    c.model.destroy();
    for (const [k, v] of gFull) expect(Array.from(gResumed.get(k)!.data), k).toEqual(Array.from(v.data));
    const log2 = readFileSync(join(part, 'loss_log.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l));
    expect(log2.map((l) => l.G_L1)).toEqual(log.map((l) => l.G_L1));
  });

  it('an aborted run saves and reports where it stopped', async () => {
    const out = mkdtempSync(join(tmpdir(), 'train-abort-'));
    const ac = new AbortController();
    const r = await trainPix2Pix(pairs(3), { out, model, preprocess, signal: ac.signal, onStep: (s) => s.step === 2 && ac.abort() });
    expect(r.interrupted).toBe(true);
    expect(JSON.parse(readFileSync(join(out, 'train_state.json'), 'utf8'))).toMatchObject({ epoch: 1, iter: 2, step: 2 });
    r.model.destroy();
  });

  it('trains with on-the-fly GPU augmentation', async () => {
    const out = mkdtempSync(join(tmpdir(), 'train-aug-'));
    const spec = { transforms: [{ name: 'HorizontalFlip', p: 0.5 }, { name: 'RandomBrightnessContrast', p: 1 }] };
    const r = await trainPix2Pix(pairs(2), { out, model: { ...model, nEpochs: 1, nEpochsDecay: 0 }, preprocess, augment: { spec } });
    expect(r.steps).toBe(2);
    expect(Number.isFinite(r.lastLosses!.G_L1)).toBe(true);
    r.model.destroy();
  });
});
