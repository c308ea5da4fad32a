// pytorch-fid's InceptionV3 (pool3) on the GPU vs PyTorch float64 with bit-identical synthetic weights
// (scripts/fixtures/inception.py), plus weight-file validation and the missing-weights error.
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, it, expect, afterAll, beforeAll } from 'vitest';
import { testContext } from '../helpers/gpu.js';
import { compareClose } from '../helpers/compare.js';
import { loadFixture } from '../helpers/fixtures.js';
import { hashUniform } from '../../src/runtime/random.js';
import { FileFormatError } from '../../src/runtime/errors.js';
import { serializeSafetensors } from '../../src/io/safetensors.js';
import type { StateDict } from '../../src/io/state_dict.js';
import { createInceptionExtractorFromWeights, inceptionChunks, InceptionExtractor, type InceptionStage } from '../../src/metrics/inception.js';
import { foldBatchNorm, foldInceptionStateDict, inceptionStateDictShapes, INCEPTION_CONVS, loadInceptionWeights } from '../../src/metrics/inception_weights.js';
import { fnv1a32, syntheticInceptionStateDict, syntheticInceptionTensor } from '../../src/metrics/inception_synthetic.js';
import { createInceptionExtractor, FID_WEIGHTS_ENV, MissingFidWeightsError } from '../../src/metrics/inception_node.js';

interface StageRef {
  shape: number[];
  channelMeans: number[];
  sampleIndex: number[];
  samples: number[];
  rms: number;
}
interface Run {
  name: string;
  seed: number;
  shape: number[];
  stages: Record<string, StageRef>;
  features: { shape: number[]; data: number[] };
}
interface Fixture {
  keys: Record<string, number[]>;
  probes: Record<string, number[]>;
  runs: Run[];
}

const fx = loadFixture<Fixture>('inception');
const STAGES = ['input', 'Conv2d_4a_3x3', 'Mixed_5d', 'Mixed_6e', 'Mixed_7c'] as const;

/**
 * Tolerances on max |GPU - reference|, relative to the stage's RMS (the reference is float64; we run f32
 * through 94 convolutions). Measured on lavapipe (the test prints them): input 4.0e-7, Conv2d_4a 1.6e-6,
 * Mixed_5d 2.6e-6, Mixed_6e 3.8e-6, Mixed_7c 9.2e-6, features 3.0e-6 (rgb) / 3.2e-6 (gray). The bounds
 * leave about 10x margin for other GPUs' summation orders and FMA contraction; a semantic slip
 * (count_include_pad=True in one block, say) is off by 1e-1.
 */
const TOL: Record<string, number> = { input: 4e-6, Conv2d_4a_3x3: 2e-5, Mixed_5d: 5e-5, Mixed_6e: 1e-4, Mixed_7c: 2e-4, features: 1e-4 };

function imageData(run: Run): Float32Array {
  const n = run.shape.reduce((a, b) => a * b);
  return Float32Array.from({ length: n }, (_, i) => hashUniform(run.seed, i));
}

/** Per-channel means of an [N, C, H, W] tensor, N-major as torch's t.mean(dim=(2, 3)).reshape(-1). */
function channelMeans(shape: readonly number[], data: Float32Array): Float64Array {
  const [N, C, H, W] = shape;
  const out = new Float64Array(N * C);
  for (let p = 0; p < N * C; p++) {
    let s = 0;
    for (let j = 0; j < H * W; j++) s += data[p * H * W + j];
    out[p] = s / (H * W);
  }
  return out;
}

function checkStage(label: string, ref: StageRef, got: { shape: number[]; data: Float32Array }, tol: number): string {
  expect(got.shape, `${label} shape`).toEqual(ref.shape);
  const atol = tol * ref.rms;
  const means = compareClose(channelMeans(got.shape, got.data), ref.channelMeans, { atol, rtol: 0, label: `${label} channel means` });
  const samples = compareClose(ref.sampleIndex.map((i) => got.data[i]), ref.samples, { atol, rtol: 0, label: `${label} samples` });
  if (!means.ok) throw new Error(means.message);
  if (!samples.ok) throw new Error(samples.message);
  return `${label}: max err/rms ${(Math.max(means.maxAbs, samples.maxAbs) / ref.rms).toExponential(2)} (means ${means.maxAbs.toExponential(2)}, samples ${samples.maxAbs.toExponential(2)}, rms ${ref.rms.toPrecision(3)})`;
}

describe('InceptionV3 layer table and synthetic weights', () => {
  it('has exactly the state-dict keys and shapes of pytorch-fid (torchvision Inception3 + FID blocks)', () => {
    const ours = inceptionStateDictShapes();
    const theirs = Object.entries(fx.keys).filter(([k]) => !k.endsWith('num_batches_tracked') && !k.startsWith('fc.'));
    expect(INCEPTION_CONVS.length).toBe(94);
    expect(new Map(theirs)).toEqual(ours);
    expect(fx.keys['fc.weight']).toEqual([1008, 2048]);
  });

  it('reproduces the Python formula bit for bit', () => {
    expect(fnv1a32('')).toBe(0x811c9dc5);
    expect(fnv1a32('a')).toBe(0xe40c292c);
    for (const [key, values] of Object.entries(fx.probes)) {
      const t = syntheticInceptionTensor(key, fx.keys[key]);
      expect([...t.subarray(0, 4), t[t.length - 1]], key).toEqual(values);
    }
  });

  it('splits large batches into equal chunks', () => {
    expect(inceptionChunks(3, 8)).toEqual({ batch: 3, chunks: [{ n0: 0, count: 3 }] });
    expect(inceptionChunks(10, 4)).toEqual({ batch: 4, chunks: [{ n0: 0, count: 4 }, { n0: 4, count: 4 }, { n0: 8, count: 2 }] });
    expect(inceptionChunks(17, 8).chunks.map((c) => c.count)).toEqual([6, 6, 5]);
  });

  it('folds BatchNorm exactly (float64 algebra, one f32 rounding)', () => {
    // conv(x, w) then BN == conv(x, w') + b' for a 1x1 conv on one input value.
    const { weight, bias } = foldBatchNorm([2, -3], [1.5, 0.5], [0.1, -0.2], [0.3, 0.4], [4, 0.25], 0);
    const x = 0.7;
    expect(weight[0] * x + bias[0]).toBeCloseTo(((2 * x - 0.3) / 2) * 1.5 + 0.1, 6);
    expect(weight[1] * x + bias[1]).toBeCloseTo(((-3 * x - 0.4) / 0.5) * 0.5 - 0.2, 6);
  });
});

describe('InceptionV3 weight loading', () => {
  let dict: StateDict;
  beforeAll(() => {
    dict = syntheticInceptionStateDict({ includeFc: true });
  });

  it('accepts fc and num_batches_tracked, and pytorch-fid InceptionV3 module keys (blocks.N.M)', () => {
    const withCount: StateDict = new Map(dict);
    withCount.set('Conv2d_1a_3x3.bn.num_batches_tracked', { shape: [], data: new Float32Array([0]), dtype: 'I64' });
    expect(foldInceptionStateDict(withCount).convs.size).toBe(94);
    const wrapper: StateDict = new Map();
    for (const [k, v] of dict) {
      if (k.startsWith('fc.')) continue;
      wrapper.set(k.replace(/^Conv2d_1a_3x3\./, 'blocks.0.0.').replace(/^Mixed_7c\./, 'blocks.3.2.'), v);
    }
    expect(wrapper.has('blocks.3.2.branch_pool.conv.weight')).toBe(true);
    expect(foldInceptionStateDict(wrapper).convs.get('Mixed_7c.branch_pool')!.weight).toEqual(foldInceptionStateDict(dict).convs.get('Mixed_7c.branch_pool')!.weight);
  });

  it('lists missing, unexpected and misshaped tensors of a loadPth-parsed pytorch-fid-style file', async () => {
    const path = fileURLToPath(new URL('../fixtures/inception/subset_legacy.pth', import.meta.url));
    const bytes = new Uint8Array(readFileSync(path));
    const err = await loadInceptionWeights(bytes, 'subset_legacy.pth').then(() => null, (e: unknown) => e as Error);
    expect(err).toBeInstanceOf(FileFormatError);
    const msg = err!.message;
    expect(msg).toContain('subset_legacy.pth');
    expect(msg).toContain('pt_inception-2015-12-05-6726825d.pth');
    // 94 convs x 5 tensors, less Conv2d_1a's 5 present and the misshaped one.
    expect(msg).toMatch(/missing 464 tensors: Conv2d_2a_3x3\.bn\.weight, /);
    expect(msg).toContain('unexpected 1 tensors: AuxLogits.fc.weight');
    expect(msg).toContain('misshaped 1 tensors: Conv2d_2a_3x3.conv.weight [32, 32, 3, 1], expected [32, 32, 3, 3]');
  });

  it('reads the same state dict from safetensors bytes', async () => {
    const small: StateDict = new Map([...dict].filter(([k]) => k.startsWith('Mixed_7c.branch_pool.')));
    const err = await loadInceptionWeights(serializeSafetensors(small), 'w.safetensors').then(() => null, (e: unknown) => e as Error);
    expect(err?.message).toMatch(/^w\.safetensors: .*missing 465 tensors/);
    const full = await loadInceptionWeights(serializeSafetensors(dict), 'w.safetensors');
    expect(full.convs.size).toBe(94);
  });

  it('without a weights file names the file to download', async () => {
    const ctx = await testContext();
    const saved = process.env[FID_WEIGHTS_ENV];
    delete process.env[FID_WEIGHTS_ENV];
    try {
      const err = await createInceptionExtractor(ctx).then(() => null, (e: unknown) => e as Error);
      expect(err).toBeInstanceOf(MissingFidWeightsError);
      expect(err!.message).toContain(
        "FID needs pytorch-fid's InceptionV3 weights: download pt_inception-2015-12-05-6726825d.pth " +
          '(https://github.com/mseitzer/pytorch-fid/releases/download/fid_weights/pt_inception-2015-12-05-6726825d.pth) and pass --fid-weights FILE',
      );
      const missing = await createInceptionExtractor(ctx, '/nonexistent/pt_inception.pth').then(() => null, (e: unknown) => e as Error);
      expect(missing).toBeInstanceOf(FileFormatError);
      expect(missing!.message).toMatch(/\/nonexistent\/pt_inception\.pth: no such file.*pt_inception-2015-12-05-6726825d\.pth/);
    } finally {
      if (saved !== undefined) process.env[FID_WEIGHTS_ENV] = saved;
    }
  });
});

describe('InceptionV3 forward vs PyTorch (pytorch-fid semantics, float64 reference)', async () => {
  const ctx = await testContext();
  let ex: InceptionExtractor | undefined;
  beforeAll(async () => {
    // Through safetensors bytes, as a user's converted file would arrive.
    ex = await createInceptionExtractorFromWeights(ctx, serializeSafetensors(syntheticInceptionStateDict()), { fileName: 'synthetic.safetensors' });
  });
  afterAll(() => {
    ex?.destroy();
    ctx.trimPool();
  });

  const [rgb, gray] = fx.runs;
  it('rejects images that are not [N, 1|3, H, W]', async () => {
    const bad = ctx.tensor([1, 2, 5, 5], undefined, 'bad');
    await expect(ex!.extract(ctx, bad)).rejects.toThrow(/inception\.extract: images shape/);
    bad.destroy();
  });

  it(`${rgb.name}: resized input, Conv2d_4a, Mixed_5d, Mixed_6e, Mixed_7c and the 2048-d features`, async () => {
    const images = ctx.tensor(rgb.shape, imageData(rgb), 'images');
    const t0 = performance.now();
    const got = await ex!.inspect(images, [...STAGES, 'features'] as InceptionStage[]);
    const ms = performance.now() - t0;
    images.destroy();
    const lines = STAGES.map((s) => checkStage(s, rgb.stages[s], got.get(s)!, TOL[s]));
    const feats = got.get('features')!;
    expect(feats.shape).toEqual([1, 2048]);
    const rms = Math.sqrt(rgb.features.data.reduce((a, v) => a + v * v, 0) / 2048);
    const r = compareClose(feats.data, rgb.features.data, { atol: TOL.features * rms, rtol: 0, label: 'features' });
    if (!r.ok) throw new Error(r.message);
    lines.push(`features: max err/rms ${(r.maxAbs / rms).toExponential(2)} (max abs ${r.maxAbs.toExponential(2)}, rms ${rms.toPrecision(3)})`);
    console.log(`InceptionV3 ${rgb.name} (${ms.toFixed(0)} ms incl. first-use pipeline compiles)\n  ${lines.join('\n  ')}`);
  });

  it(`${gray.name}: two gray images (tiled to RGB) through extract() in two chunks of one`, async () => {
    // Same weights on the GPU, a trunk recorded for one image: the batch runs as two chunks in one
    // submit (resize reads image n0, the tail writes row n0), exercising the batch plumbing end to end.
    const chunked = new InceptionExtractor(ctx, foldInceptionStateDict(syntheticInceptionStateDict()), { maxBatch: 1 });
    const images = ctx.tensor(gray.shape, imageData(gray), 'images');
    try {
      const t0 = performance.now();
      const out = await chunked.extract(ctx, images);
      const data = await out.read();
      const ms = performance.now() - t0;
      expect(out.shape).toEqual([2, 2048]);
      out.destroy();
      const rms = Math.sqrt(gray.features.data.reduce((a, v) => a + v * v, 0) / gray.features.data.length);
      const r = compareClose(data, gray.features.data, { atol: TOL.features * rms, rtol: 0, label: 'features' });
      if (!r.ok) throw new Error(r.message);
      console.log(`InceptionV3 ${gray.name}: two 299x299 forwards ${ms.toFixed(0)} ms; features max err/rms ${(r.maxAbs / rms).toExponential(2)}`);
    } finally {
      images.destroy();
      chunked.destroy();
    }
  });
});
