// Pix2Pix.create({ tune: true }) in Node with the default tuning store (the JSON file under $XDG_CACHE_HOME):
// the first training step tunes the step's conv shapes with GPU timestamps and writes the file; a second
// model (its own context) reads the table at creation, does not measure again, and its step runs the stored
// choices (proved by planting a table the static policy would never give: 'direct' for every shape, and
// checking the step's conv dispatches and losses). A damaged file stops create() with the file named.
// The tuning runs with `tune: { repeats: 1, warmup: 0 }` (the default timing, 5 timed rounds and a warm-up
// per candidate, takes several seconds more on lavapipe and proves nothing more here); the number of GPU
// submissions during the first step shows that this timing, not the default, was used.
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync, mkdirSync } from 'node:fs';
import { homedir, tmpdir } from 'node:os';
import { join } from 'node:path';
import { Pix2Pix, resolvePix2PixOptions, type Pix2PixOptions } from '../../src/gan/pix2pix.js';
import { FileFormatError, InvalidOptionError } from '../../src/runtime/errors.js';
import { Rng } from '../../src/runtime/random.js';
import type { Dispatch } from '../../src/runtime/context.js';
import type { ImageF32 } from '../../src/data/image.js';
import { tunedChoices } from '../../src/kernels/conv/policy.js';
import { adapterIdentity, adapterKey } from '../../src/kernels/conv/device_class.js';
import type { AdapterTuning } from '../../src/kernels/conv/tune_store.js';

// The smallest model: 5 downs (32x32), 4 base channels; instance norm as the benchmarks use.
// The quickest timing: one timed round per candidate and no warm-up round.
const OPTS: Pix2PixOptions = { inputChannels: 3, outputChannels: 3, numDowns: 5, ngf: 4, ndf: 4, norm: 'instance', dropout: true, seed: 3, tune: { repeats: 1, warmup: 0 } };

function images(seed: number): ImageF32[] {
  const rng = new Rng(seed);
  return [{ width: 32, height: 32, channels: 3, data: rng.normals(3 * 32 * 32, 0.5) }];
}
const BATCH = { a: images(1), b: images(2) };

/** The conv dispatches of the model's recorded training step, by pipeline label. */
function convLabels(model: Pix2Pix): string[] {
  const list = (model as unknown as { graph: { list: Dispatch[] } }).graph.list;
  return list.filter((d) => /^(conv2d|convTranspose2d)\./.test(d.op)).map((d) => d.pipeline.label);
}

describe('Pix2Pix.create({ tune: true }) with the Node file store', () => {
  let dir: string;
  let file: string;
  const savedCacheHome = process.env.XDG_CACHE_HOME;
  const savedMesaCache = process.env.MESA_SHADER_CACHE_DIR;
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'pix2pix-tune-'));
    // Mesa (lavapipe) keeps its compiled shaders under $XDG_CACHE_HOME too (the folder it names its cache in):
    // keep that where it was, or every kernel the tuning tries would compile cold (minutes on a loaded 2-core
    // machine instead of seconds).
    process.env.MESA_SHADER_CACHE_DIR ??= savedCacheHome || join(homedir(), '.cache');
    process.env.XDG_CACHE_HOME = dir;
    file = join(dir, 'pix2pix-webgpu', 'tune.json');
  });
  afterAll(() => {
    if (savedCacheHome === undefined) delete process.env.XDG_CACHE_HOME;
    else process.env.XDG_CACHE_HOME = savedCacheHome;
    if (savedMesaCache === undefined) delete process.env.MESA_SHADER_CACHE_DIR;
    else process.env.MESA_SHADER_CACHE_DIR = savedMesaCache;
    rmSync(dir, { recursive: true, force: true });
  });

  it('the first step tunes and fills the cache; a second model reads it at creation, measures nothing, and its step runs the stored choices', async () => {
    // 1. Nothing stored: create() applies nothing, the first step measures every conv shape of the step and saves.
    const first = await Pix2Pix.create(OPTS);
    let key: string;
    let n: number;
    try {
      expect(tunedChoices(first.ctx).size).toBe(0);
      expect(existsSync(file)).toBe(false);
      // Count the queue's submissions: the GPU-timestamp tuner submits one per round (warm-ups, the
      // calibration round, then the timed rounds), so each shape costs 2 with this timing and 7 by default.
      const queue = first.ctx.device.queue;
      const submit = queue.submit.bind(queue);
      let submits = 0;
      queue.submit = (buffers: Iterable<GPUCommandBuffer>) => {
        submits++;
        submit(buffers);
      };
      try {
        await first.trainStep(BATCH);
      } finally {
        queue.submit = submit;
      }
      key = adapterKey(adapterIdentity(first.ctx));
      const saved = JSON.parse(readFileSync(file, 'utf8')) as { version: number; adapters: Record<string, AdapterTuning> };
      expect(saved.version).toBe(1);
      expect(Object.keys(saved.adapters)).toEqual([key]);
      const shapes = saved.adapters[key].shapes;
      n = Object.keys(shapes).length;
      // 5 downs + 5 ups of the U-Net and the PatchGAN's 5 convs, each forward, grad input (not the first layers) and grad weight.
      expect(n).toBeGreaterThan(30);
      // 2 per shape, plus the step's own few (the default timing would be 7 per shape).
      expect(submits).toBeGreaterThanOrEqual(2 * n);
      expect(submits).toBeLessThan(3 * n);
      for (const r of Object.values(shapes)) {
        expect(r.timer).toBe('gpu');
        expect(Object.keys(r.candidates).length).toBeGreaterThanOrEqual(2);
      }
      expect(Object.keys(shapes).some((k) => k.startsWith('weightGrad') && k.endsWith(' bias'))).toBe(true);
      expect(tunedChoices(first.ctx).size).toBe(n);
    } finally {
      first.destroy();
    }

    // 2. Plant a table no static rule gives ('direct' everywhere, marked times) to see that it is read and used.
    const planted = JSON.parse(readFileSync(file, 'utf8')) as { version: number; adapters: Record<string, AdapterTuning> };
    for (const k of Object.keys(planted.adapters[key].shapes)) planted.adapters[key].shapes[k] = { impl: 'direct', ms: 123.456, candidates: { direct: 123.456 } };
    const text = `${JSON.stringify(planted)}\n`;
    writeFileSync(file, text);

    const tuned = await Pix2Pix.create(OPTS);
    const plain = await Pix2Pix.create({ ...OPTS, tune: false });
    try {
      expect(tuned.ctx).not.toBe(plain.ctx);
      // create() read the table onto the new context.
      const table = tunedChoices(tuned.ctx);
      expect(table.size).toBe(n);
      expect([...table.values()].every((c) => c.impl === 'direct')).toBe(true);
      const lossTuned = await tuned.trainStep(BATCH);
      const lossPlain = await plain.trainStep(BATCH);
      // No shape was measured again: the file is byte for byte what was planted.
      expect(readFileSync(file, 'utf8')).toBe(text);
      // The step runs the stored choice: every conv launch is the direct kernel (plus the bias-gradient pass
      // the direct weight gradient needs); the untuned model's step runs the static policy's kernels.
      const labels = convLabels(tuned);
      expect(labels.length).toBeGreaterThan(n);
      for (const l of labels) expect(l).toMatch(/\.(direct|bias_grad\w*)\.pipeline$/);
      const staticLabels = convLabels(plain);
      expect(staticLabels.filter((l) => /\.direct\.pipeline$/.test(l))).toEqual([]);
      // Same model, seed and batch: the same losses to float rounding, whichever kernels ran.
      for (const k of ['G_GAN', 'G_L1', 'D_real', 'D_fake'] as const) expect(Math.abs(lossTuned[k] - lossPlain[k])).toBeLessThan(1e-4 * Math.max(1, Math.abs(lossPlain[k])));
    } finally {
      tuned.destroy();
      plain.destroy();
    }
    // Tuning compiles every candidate of every conv shape of the step (~190 pipelines on lavapipe, seconds
    // each under load): 36 s at load average 6-7 with Mesa's shader cache warm, 3 to 13 minutes at load 13-20.
  }, 1_800_000);

  it('tune takes true, false or its timing; anything else is refused with the option named', () => {
    expect(resolvePix2PixOptions({ tune: true })).toMatchObject({ tune: true, tuneTiming: { repeats: 5, warmup: 1 } });
    expect(resolvePix2PixOptions({})).toMatchObject({ tune: false, tuneTiming: { repeats: 5, warmup: 1 } });
    expect(resolvePix2PixOptions({ tune: { repeats: 2 } })).toMatchObject({ tune: true, tuneTiming: { repeats: 2, warmup: 1 } });
    expect(resolvePix2PixOptions({ tune: { repeats: 1, warmup: 0 } })).toMatchObject({ tune: true, tuneTiming: { repeats: 1, warmup: 0 } });
    const bad = (tune: unknown) => () => resolvePix2PixOptions({ tune } as Pix2PixOptions);
    expect(bad('yes')).toThrow(InvalidOptionError);
    expect(bad('yes')).toThrow(/option tune: expected true, false or \{ repeats\?: number, warmup\?: number \}, got/);
    expect(bad(null)).toThrow(/option tune:/);
    expect(bad([1])).toThrow(/option tune:/);
    expect(bad({ repeats: 0 })).toThrow(/option tune\.repeats: expected an integer >= 1, got 0/);
    expect(bad({ warmup: -1 })).toThrow(/option tune\.warmup: expected an integer >= 0, got -1/);
    expect(bad({ repeats: 1.5 })).toThrow(/option tune\.repeats:/);
  });

  it('a damaged cache file stops create() with an error naming the file (the file is left as it was)', async () => {
    mkdirSync(join(dir, 'pix2pix-webgpu'), { recursive: true });
    writeFileSync(file, '{"version": 1, "adapters": ');
    const err = await Pix2Pix.create(OPTS).then(
      (m) => {
        m.destroy();
        return null;
      },
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(FileFormatError);
    expect(String((err as Error).message)).toMatch(/pix2pix-webgpu[/\\]tune\.json.*not valid JSON \(delete the file to re-tune\)/);
    expect(readFileSync(file, 'utf8')).toBe('{"version": 1, "adapters": ');
  });
});
