// The training step's two discriminator paths train alike: with a per-sample norm and small maps, D's fake and
// real passes run as one batch of 2N (one pass, one backward, a two-target loss step); otherwise as two passes.
// Every other test at small size takes the batched path, so this one forces the two-pass path there too
// (BATCHED_D_LIMIT, an internal test hook) and checks that both give the same losses and the same weights.
import { describe, it, expect, afterAll, afterEach, vi } from 'vitest';
import { testContext } from '../helpers/gpu.js';
import { compareClose } from '../helpers/compare.js';
import { Rng } from '../../src/runtime/random.js';
import { createImage, type ImageF32 } from '../../src/data/image.js';
import { BATCHED_D_LIMIT, Pix2Pix, type Pix2PixLosses, type Pix2PixOptions } from '../../src/gan/pix2pix.js';

const ctx = await testContext();
afterAll(() => ctx.trimPool());

const DEFAULT_LIMIT = BATCHED_D_LIMIT.maxPairBytes;
afterEach(() => {
  BATCHED_D_LIMIT.maxPairBytes = DEFAULT_LIMIT;
  vi.restoreAllMocks();
});

function images(n: number, channels: 1 | 3, size: number, seed: number): ImageF32[] {
  const rng = new Rng(seed);
  return Array.from({ length: n }, () => createImage(size, size, channels, Float32Array.from({ length: size * size * channels }, () => rng.next())));
}

function maxAbs(v: Float32Array): number {
  let m = 0;
  for (const x of v) m = Math.max(m, Math.abs(x));
  return m;
}

/**
 * Parameters whose gradient is zero up to rounding: the biases of the convolutions in front of an instance norm
 * (the norm subtracts any per-channel constant, so they change no output). Adam divides such a gradient by its
 * own size and moves them by about lr per step whatever the noise's sign, so the two paths, which round
 * differently, move them apart by ~lr without any difference in what the networks compute: they are left out.
 */
function roundingOnly(gradMax: Map<string, number>): string[] {
  const largest = (net: string) => Math.max(...[...gradMax].filter(([k]) => k.startsWith(net)).map(([, v]) => v));
  return [...gradMax].filter(([k, v]) => v < 1e-4 * largest(k.slice(0, 2))).map(([k]) => k);
}

interface Run {
  losses: Pix2PixLosses[];
  params: Map<string, Float32Array>;
  /** Each parameter's gradient at step 1 (Adam hides a wrong gradient scale from the weights; this does not). */
  grads: Map<string, Float32Array>;
  /** Each parameter's largest |gradient| at step 1. */
  gradMax: Map<string, number>;
  /** Whether the recorded step made the one-batch pair buffer (the batched path). */
  batched: boolean;
}

/** Three training steps from the seed's initial weights, with D batched or as two passes. */
async function train(opts: Pix2PixOptions, batchSize: number, batchD: boolean): Promise<Run> {
  BATCHED_D_LIMIT.maxPairBytes = batchD ? DEFAULT_LIMIT : -1;
  const labels: string[] = [];
  const tensor = ctx.tensor.bind(ctx);
  const scratch = ctx.scratch.bind(ctx);
  const spyT = vi.spyOn(ctx, 'tensor').mockImplementation((shape, data, label) => (labels.push(label ?? ''), tensor(shape, data, label)));
  const spyS = vi.spyOn(ctx, 'scratch').mockImplementation((shape, label) => (labels.push(label ?? ''), scratch(shape, label)));
  const model = await Pix2Pix.create(opts);
  try {
    const losses: Pix2PixLosses[] = [];
    const gradMax = new Map<string, number>();
    const grads = new Map<string, Float32Array>();
    for (let s = 0; s < 3; s++) {
      losses.push(await model.trainStep({ a: images(batchSize, 3, 32, 10 + s), b: images(batchSize, 1, 32, 100 + s) }));
      if (s === 0) {
        for (const [tag, net] of [['G', model.G], ['D', model.D!]] as const) {
          for (const e of net.stateEntries()) {
            if (e.kind !== 'param') continue;
            const g = await e.param.grad!.read();
            grads.set(`${tag}.${e.key}`, g);
            gradMax.set(`${tag}.${e.key}`, maxAbs(g));
          }
        }
        // The step is recorded once, at the first call: its allocations are all seen by now.
        spyT.mockRestore();
        spyS.mockRestore();
      }
    }
    const params = new Map<string, Float32Array>();
    for (const [tag, net] of [['G', model.G], ['D', model.D!]] as const) {
      for (const e of net.stateEntries()) if (e.kind === 'param') params.set(`${tag}.${e.key}`, await e.tensor.read());
    }
    return { losses, params, grads, gradMax, batched: labels.includes('pix2pix.D_pairs') };
  } finally {
    model.destroy();
  }
}

describe('batched and two-pass discriminator steps agree', () => {
  for (const ganMode of ['vanilla', 'lsgan'] as const) {
    for (const batchSize of [1, 2]) {
      it(`${ganMode}, instance norm, batch ${batchSize}: 3 steps give the same four losses, step-1 gradients and every parameter`, async () => {
        const opts: Pix2PixOptions = { ctx, inputChannels: 3, outputChannels: 1, numDowns: 5, ngf: 4, ndf: 4, norm: 'instance', dropout: false, ganMode, lr: 2e-3, seed: 11 };
        const one = await train(opts, batchSize, true);
        const two = await train(opts, batchSize, false);
        // The hook really switched paths (else this test would compare a path with itself).
        expect([one.batched, two.batched]).toEqual([true, false]);
        for (let s = 0; s < 3; s++) {
          for (const k of ['G_GAN', 'G_L1', 'D_real', 'D_fake'] as const) {
            const r = compareClose([two.losses[s][k]], [one.losses[s][k]], { atol: 1e-5, rtol: 1e-5, label: `step ${s + 1} ${k}` });
            expect(r.ok, r.message).toBe(true);
          }
        }
        const dead = roundingOnly(one.gradMax);
        expect(roundingOnly(two.gradMax)).toEqual(dead);
        // Only pre-norm biases, in both networks (3 in D: its convs 2, 5 and 8).
        expect(dead.every((k) => k.endsWith('.bias'))).toBe(true);
        expect(dead.filter((k) => k.startsWith('D.'))).toEqual(['D.model.2.bias', 'D.model.5.bias', 'D.model.8.bias']);
        expect(dead.some((k) => k.startsWith('G.'))).toBe(true);
        const failures: string[] = [];
        for (const [key, g] of one.grads) {
          if (dead.includes(key)) continue;
          const r = compareClose(two.grads.get(key)!, g, { atol: 1e-6 * one.gradMax.get(key)!, rtol: 1e-4, label: `${key} step-1 gradient` });
          if (!r.ok) failures.push(r.message);
        }
        for (const [key, v] of one.params) {
          if (dead.includes(key)) continue;
          const r = compareClose(two.params.get(key)!, v, { atol: 1e-5, rtol: 1e-5, label: key });
          if (!r.ok) failures.push(r.message);
        }
        expect(failures, failures.join('\n')).toEqual([]);
      });
    }
  }
});
