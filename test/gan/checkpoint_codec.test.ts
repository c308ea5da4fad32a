// The checkpoint codec (src/gan/checkpoint_codec.ts): architecture inference from the few tensors it looks
// at, only the tensors a model takes materialised (a huge unrelated tensor in a .pth or safetensors file is
// named but never decoded), every error naming the file given, and translate(tensor) staying on the GPU.
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, describe, expect, it, vi } from 'vitest';
import { testContext } from '../helpers/gpu.js';
import { Rng } from '../../src/runtime/random.js';
import { Tensor } from '../../src/runtime/tensor.js';
import { createImage, imagesToTensorData, tensorDataToImages } from '../../src/data/image.js';
import { serializeSafetensors } from '../../src/io/safetensors.js';
import type { StateDict } from '../../src/io/state_dict.js';
import { BUDGET_ENV } from '../../src/io/budget.js';
import { Pix2Pix } from '../../src/gan/pix2pix.js';
import { loadCheckpoint, saveCheckpoint, withMetadata } from '../../src/gan/checkpoint_node.js';
import { FileFormatError, ShapeError } from '../../src/runtime/errors.js';
import { NLayerDiscriminator, UnetGenerator } from '../../src/gan/networks.js';
import { CheckpointMismatchError, inferDiscriminatorConfig, inferGeneratorConfig, readStateDict } from '../../src/gan/state_dict.js';
import { decodeCheckpoint, encodeStateDict } from '../../src/gan/checkpoint_codec.js';
import { loadInceptionWeights } from '../../src/metrics/inception_weights.js';
import { buildZip, pickleStr as str, tensorPickle } from '../io/helpers.js';

const ctx = await testContext();
afterAll(() => ctx.trimPool());

const MiB = 1 << 20;
const TINY = { ctx, numDowns: 5, ngf: 2, ndf: 2, seed: 5 } as const;

/** Read budget lowered for one test: materialising the big tensor would then be a FileFormatError. */
function lowTensorBudget(bytes: number): void {
  process.env[BUDGET_ENV.maxTensorBytes] = String(bytes);
}
afterEach(() => {
  delete process.env[BUDGET_ENV.maxTensorBytes];
});

/** Largest growth of JS heap + ArrayBuffer bytes while `fn` runs (sampled every millisecond). */
async function peakGrowth<T>(fn: () => Promise<T>): Promise<{ peak: number; result: T | unknown }> {
  const mem = () => {
    const m = process.memoryUsage();
    return m.heapUsed + m.arrayBuffers;
  };
  const base = mem();
  let peak = 0;
  const timer = setInterval(() => (peak = Math.max(peak, mem() - base)), 1);
  let result: T | unknown;
  try {
    result = await fn();
  } catch (e) {
    result = e;
  } finally {
    clearInterval(timer);
    peak = Math.max(peak, mem() - base);
  }
  return { peak, result };
}

// ------------------------------------------------------------------ a torch zip checkpoint, assembled here

const contiguous = (shape: number[]) => shape.map((_, i) => shape.slice(i + 1).reduce((a, b) => a * b, 1));

/**
 * `dict` as torch.save writes it (zip format: archive/data.pkl + one storage per tensor), plus optional
 * stride-0 views: a few bytes on disk that materialise to `shape` (e.g. 16384 x 16384 = 1 GiB of f32).
 */
function torchZip(dict: StateDict, expanded: { key: string; shape: number[] }[] = []): Uint8Array {
  const items: number[] = [];
  const storages: { name: string; data: Uint8Array }[] = [];
  let i = 0;
  for (const [key, v] of dict) {
    const shape = v.shape.length ? v.shape : [];
    items.push(...str(key), ...tensorPickle(String(i), v.data.length, shape, contiguous(shape)), 0x73);
    storages.push({ name: `archive/data/${i}`, data: new Uint8Array(v.data.buffer, v.data.byteOffset, v.data.byteLength) });
    i++;
  }
  for (const { key, shape } of expanded) {
    items.push(...str(key), ...tensorPickle(String(i), 1, shape, shape.map(() => 0)), 0x73);
    storages.push({ name: `archive/data/${i}`, data: new Uint8Array(4) });
    i++;
  }
  const pkl = new Uint8Array([0x80, 2, 0x7d, ...items, 0x2e]);
  return buildZip([{ name: 'archive/data.pkl', data: pkl }, ...storages]);
}

/** A tiny model's G (and D) state dicts, F32 as torch would hold them (num_batches_tracked as a 1-element tensor). */
async function tinyStateDicts(): Promise<{ G: StateDict; D: StateDict }> {
  const model = await Pix2Pix.create(TINY);
  const G = await readStateDict(model.G);
  const D = await readStateDict(model.D!);
  await model.destroy();
  return { G, D };
}

describe('architecture inference reads shapes only', () => {
  it('every norm (group included, told from batch norm by its missing running statistics) and depth', () => {
    for (const norm of ['batch', 'instance', 'group', 'none'] as const) {
      for (const numDowns of [5, 7]) {
        const groups = norm === 'group' ? { normGroups: 2 } : {};
        const G = new UnetGenerator(ctx, { inputChannels: 3, outputChannels: 1, numDowns, ngf: 2, norm, ...groups, dropout: false });
        const D = new NLayerDiscriminator(ctx, { inputChannels: 4, ndf: 2, nLayers: numDowns - 4, norm, ...groups });
        const shapes = (entries: { key: string; shape: readonly number[] }[]) => new Map(entries.map((e) => [e.key, { shape: e.shape }]));
        expect(inferGeneratorConfig(shapes(G.stateEntries()), groups), `${norm}/${numDowns}`).toEqual({ inputChannels: 3, outputChannels: 1, numDowns, ngf: 2, norm, ...groups, dropout: true });
        expect(inferDiscriminatorConfig(shapes(D.stateEntries()), 'd', groups)).toEqual({ inputChannels: 4, ndf: 2, nLayers: numDowns - 4, norm, ...groups });
        G.destroy();
        D.destroy();
      }
    }
  });

  it('decodeCheckpoint keeps what keep selects and lists the rest in file order', async () => {
    const { G } = await tinyStateDicts();
    const keys = [...G.keys()];
    for (const bytes of [encodeStateDict(G), torchZip(G)]) {
      const out = await decodeCheckpoint(bytes, 'g', { keep: (k) => k === keys[1] });
      expect([...out.tensors.keys()]).toEqual([keys[1]]);
      expect(out.skipped).toEqual(keys.filter((k) => k !== keys[1]));
    }
  });
});

describe('only what the model needs is materialised', () => {
  it('a safetensors G with an extra 200 MB tensor: refused naming the tensor and the file, the tensor never decoded', async () => {
    const { G } = await tinyStateDicts();
    const withBig: StateDict = new Map(G);
    withBig.set('ema.big', { shape: [50, MiB], data: new Float32Array(50 * MiB), dtype: 'F32' });
    const bytes = encodeStateDict(withBig);
    withBig.delete('ema.big');
    expect(bytes.length).toBeGreaterThan(200 * 1e6);
    // Decoding the big tensor would now be a FileFormatError (the budget) instead of a mismatch.
    lowTensorBudget(16 * MiB);
    const { peak, result } = await peakGrowth(() => Pix2Pix.fromStateDict({ G: { data: bytes, name: 'runs/big_net_G.safetensors' } }, { ctx, discriminator: false }));
    expect(result).toBeInstanceOf(CheckpointMismatchError);
    expect((result as CheckpointMismatchError).unexpected).toEqual(['ema.big']);
    expect((result as Error).message).toMatch(/^runs\/big_net_G\.safetensors: checkpoint does not match the network: unexpected 1 tensor\(s\): 'ema\.big'/);
    expect(peak).toBeLessThan(40 * MiB);
  });

  it('a .pth G with a stride-0 tensor that would materialise to 1 GiB: named as unexpected, never materialised', async () => {
    const { G, D } = await tinyStateDicts();
    const big = [{ key: 'extra.big', shape: [16384, 16384] }];
    const file = torchZip(G, big);
    expect(file.length).toBeLessThan(100_000);
    const { peak, result } = await peakGrowth(() => Pix2Pix.fromStateDict({ G: { data: file, name: 'old/latest_net_G.pth' }, D: { data: torchZip(D, big), name: 'old/latest_net_D.pth' } }, { ...TINY }));
    // Without `keep`, the reader refuses the view itself (FileFormatError on the expansion budget).
    expect(result).toBeInstanceOf(CheckpointMismatchError);
    expect((result as Error).message).toMatch(/^old\/latest_net_G\.pth: .*unexpected 1 tensor\(s\): 'extra\.big'/);
    expect(peak).toBeLessThan(40 * MiB);
    // The same file without the extra tensor loads, and equals the weights it was made from.
    const model = await Pix2Pix.fromStateDict({ G: torchZip(G), D: torchZip(D) }, { ...TINY });
    const back = await readStateDict(model.G);
    for (const [k, v] of G) expect(back.get(k)!.data, k).toEqual(v.data);
    // load() into a live model reads the same way.
    const err = await model.load({ G: { data: file, name: 'old/latest_net_G.pth' } }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(CheckpointMismatchError);
    expect((err as CheckpointMismatchError).unexpected).toEqual(['extra.big']);
    await model.destroy();
  });

  it("an optimizer file's moments for other parameters are not decoded", async () => {
    const model = await Pix2Pix.create(TINY);
    const rng = new Rng(1);
    const im = () => createImage(32, 32, 3, Float32Array.from({ length: 32 * 32 * 3 }, () => rng.next()));
    await model.trainStep({ a: [im()], b: [im()] });
    const ck = await model.save();
    await model.destroy();
    // Our optimizer file with a 64 MB moment for a parameter no network has.
    const { parseSafetensorsFile } = await import('../../src/io/safetensors.js');
    const opt = parseSafetensorsFile(ck.optimizer!);
    opt.tensors.set('G.other.weight.exp_avg', { shape: [16, MiB], data: new Float32Array(16 * MiB), dtype: 'F32' });
    const optBytes = serializeSafetensors(opt.tensors, opt.metadata);
    lowTensorBudget(16 * MiB);
    const resumed = await Pix2Pix.fromStateDict({ G: ck.G, D: ck.D, optimizer: { data: optBytes, name: 'run/latest_optim.safetensors' } }, { ...TINY });
    expect(resumed.steps).toBe(1);
    await resumed.destroy();
  });

  it('Inception weights from bytes: an extra tensor is listed as unexpected and never decoded; fc is not read', async () => {
    const one = (shape: number[]) => ({ shape, data: new Float32Array(shape.reduce((a, b) => a * b, 1)), dtype: 'F32' });
    const dict: StateDict = new Map([
      ['Conv2d_1a_3x3.conv.weight', one([32, 3, 3, 3])],
      ['fc.weight', one([1008, 2048])],
      ['aux.big', one([8, MiB])],
    ]);
    lowTensorBudget(4 * MiB); // fc (8 MB) and aux.big (32 MB) would both exceed it if decoded
    for (const [bytes, name] of [
      [serializeSafetensors(dict), 'w.safetensors'],
      [torchZip(dict), 'w.pth'],
    ] as const) {
      const err = await loadInceptionWeights(bytes, name).then(() => null, (e: unknown) => e as Error);
      expect(err!.message).toMatch(new RegExp(`^${name.replace('.', '\\.')}: .*missing 469 tensors: .*unexpected 1 tensors: aux\\.big$`));
    }
  });
});

describe("checkpoints of a norm: 'group' model load through every entry", () => {
  // ngf 4 gives norm layers of 4 to 32 channels: 2 groups differ from the default 32's (4 to 32 groups).
  const GROUP = { ...TINY, ngf: 4, ndf: 4, norm: 'group', normGroups: 2, dropout: false } as const;
  const rng = new Rng(3);
  const image = () => createImage(32, 32, 3, Float32Array.from({ length: 32 * 32 * 3 }, () => rng.next()));

  it('fromStateDict (file bytes, a saved folder, state dicts) infers group norm and its group count; translations equal the trained model', async () => {
    const model = await Pix2Pix.create(GROUP);
    await model.trainStep({ a: [image()], b: [image()] });
    const ck = await model.save();
    const probe = image();
    const want = Array.from((await model.translate(probe, { eval: true })).data);
    const same = async (m: Pix2Pix, what: string) => {
      expect(m.config.generator, what).toMatchObject({ norm: 'group', normGroups: 2 });
      expect(Array.from((await m.translate(probe, { eval: true })).data), what).toEqual(want);
      await m.destroy();
    };
    const fromBytes = await Pix2Pix.fromStateDict({ G: ck.G, D: ck.D, optimizer: ck.optimizer }, { ctx });
    expect(fromBytes.config.discriminator).toMatchObject({ norm: 'group', normGroups: 2 });
    expect(fromBytes.steps).toBe(1);
    await same(fromBytes, 'bytes');
    const dir = await mkdtemp(join(tmpdir(), 'pix2pix-group-'));
    await saveCheckpoint(dir, model);
    await same(await loadCheckpoint(dir, { ctx, discriminator: false }), 'folder');
    // A state dict has no metadata: the group count comes from the options.
    await same(await Pix2Pix.fromStateDict({ G: await readStateDict(model.G) }, { ctx, discriminator: false, normGroups: 2 }), 'state dict');
    await model.destroy();
  });

  it('a D recording another group count than G, or a malformed record, is refused naming the file', async () => {
    const model = await Pix2Pix.create(GROUP);
    const ck = await model.save();
    await model.destroy();
    const err = await Pix2Pix.fromStateDict({ G: ck.G, D: { data: withMetadata(ck.D!, { normGroups: '4' }), name: 'run/latest_net_D.safetensors' } }, { ctx }).catch((e: unknown) => e);
    expect((err as Error).message).toBe("run/latest_net_D.safetensors: discriminator normGroups 4 differs from the generator's 2 (G checkpoint); one model has one group count");
    // load() into a live model with another group count (the shapes fit any count).
    const live = await Pix2Pix.create({ ...GROUP, discriminator: false });
    await expect(live.load({ G: { data: withMetadata(ck.G, { normGroups: '4' }), name: 'other_net_G.safetensors' } })).rejects.toThrow(
      /^other_net_G\.safetensors: checkpoint was trained with normGroups 4 but the network has normGroups 2$/,
    );
    await live.load({ G: ck.G });
    await live.destroy();
    const bad = await Pix2Pix.fromStateDict({ G: { data: withMetadata(ck.G, { normGroups: '2x' }), name: 'run/latest_net_G.safetensors' } }, { ctx }).catch((e: unknown) => e);
    expect(bad).toBeInstanceOf(FileFormatError);
    expect((bad as Error).message).toBe("run/latest_net_G.safetensors: metadata normGroups is '2x', expected a positive integer");
  });
});

describe('an optimizer file is checked against the model it loads into', () => {
  it("a file from an untrained model (no moments) of another architecture: ShapeError naming the file, expected and actual", async () => {
    const small = await Pix2Pix.create(TINY);
    const smallCk = await small.save();
    await small.destroy();
    const large = await Pix2Pix.create({ ...TINY, ngf: 4, ndf: 4 });
    const largeCk = await large.save();
    await large.destroy();
    const optimizer = { data: smallCk.optimizer!, name: 'run/latest_optim.safetensors' };
    const err = await Pix2Pix.fromStateDict({ G: largeCk.G, D: largeCk.D, optimizer }, { ctx }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ShapeError);
    expect((err as Error).message).toMatch(
      /^run\/latest_optim\.safetensors: optimizer state for another architecture \(\d+ parameter\(s\) differ, first 'G\.model\.model\.0\.weight': model 192 values, file 96 values\); parameters: expected \d+ parameters of \d+ values, got \d+ parameters of \d+ values$/,
    );
    // load() into a live model checks the same way; the matching file loads.
    const model = await Pix2Pix.fromStateDict({ G: smallCk.G, D: smallCk.D, optimizer }, { ctx });
    await expect(model.load({ G: smallCk.G, optimizer: { data: largeCk.optimizer!, name: 'big_optim.safetensors' } })).rejects.toThrow(/^big_optim\.safetensors: optimizer state for another architecture/);
    // An inference model without D takes a training file's optimizer state for G.
    const gOnly = await Pix2Pix.fromStateDict({ G: smallCk.G, optimizer }, { ctx, discriminator: false });
    await gOnly.destroy();
    await model.destroy();
  });
});

describe('every error names the file the caller gave', () => {
  it('a wrong-shape .pth on disk: loadCheckpoint and fromStateDict name its path', async () => {
    const { G } = await tinyStateDicts();
    const key = [...G.keys()].find((k) => k.endsWith('model.1.model.1.weight'))!;
    const wrong: StateDict = new Map(G);
    wrong.set(key, { shape: [1, 1, 1, 1], data: new Float32Array(1), dtype: 'F32' });
    const dir = await mkdtemp(join(tmpdir(), 'pix2pix-codec-'));
    const path = join(dir, 'latest_net_G.pth');
    await writeFile(path, torchZip(wrong));
    const esc = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
    const e1 = await loadCheckpoint({ G: path }, { ctx, discriminator: false }).catch((e: unknown) => e);
    expect(e1).toBeInstanceOf(CheckpointMismatchError);
    expect((e1 as Error).message).toMatch(new RegExp(`^${esc(path)}: checkpoint does not match the network: 1 tensor\\(s\\) with the wrong shape: '${esc(key)}'`));
    const e2 = await Pix2Pix.fromStateDict({ G: { data: torchZip(wrong), name: path } }, { ctx, discriminator: false }).catch((e: unknown) => e);
    expect((e2 as Error).message.startsWith(`${path}: checkpoint does not match`)).toBe(true);
    // Unnamed sources keep the generic label.
    const e3 = await Pix2Pix.fromStateDict({ G: torchZip(wrong) }, { ctx, discriminator: false }).catch((e: unknown) => e);
    expect((e3 as Error).message.startsWith('G checkpoint: checkpoint does not match')).toBe(true);
    // A named source must carry bytes or a Map and a name.
    await expect(Pix2Pix.fromStateDict({ G: { data: 'x', name: path } as never }, { ctx })).rejects.toThrow(/option G: expected file bytes/);
  });
});

describe('translate(tensor) stays on the GPU', () => {
  it('returns a tensor equal to the image path, with no read-back', async () => {
    const model = await Pix2Pix.create({ ...TINY, discriminator: false });
    const rng = new Rng(9);
    const images = [0, 1].map(() => createImage(32, 64, 3, Float32Array.from({ length: 32 * 64 * 3 }, () => rng.next())));
    const viaImages = await model.translate(images, { eval: true });
    const d = imagesToTensorData(images);
    // The input as a view at an offset inside a larger tensor: the copy must honour it.
    const size = d.data.length;
    const big = ctx.tensor([2 * size], Float32Array.from({ length: 2 * size }, (_, i) => (i < size ? 7 : d.data[i - size])), 'test.big');
    const input = big.view(d.shape, size, 'test.input');
    const reads = vi.spyOn(ctx, 'read');
    const out = await model.translate(input, { eval: true });
    expect(reads).not.toHaveBeenCalled();
    reads.mockRestore();
    expect(out).toBeInstanceOf(Tensor);
    expect(out.shape).toEqual([2, 3, 64, 32]);
    const back = tensorDataToImages(out.shape, await out.read());
    back.forEach((im, i) => expect(im.data).toEqual(viaImages[i].data));
    out.destroy();
    big.destroy();
    await model.destroy();
  });
});
