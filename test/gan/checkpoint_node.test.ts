// saveCheckpoint / loadCheckpoint: the three files, atomically written, round-trip to the same model;
// a set records its step in every file and a mixed set is refused; every loading error names its file.
import { describe, it, expect, afterAll } from 'vitest';
import { mkdtemp, readdir, readFile, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { testContext } from '../helpers/gpu.js';
import { Pix2Pix } from '../../src/gan/pix2pix.js';
import { checkpointPaths, linkCheckpoint, loadCheckpoint, MixedCheckpointError, readSafetensorsMetadata, saveCheckpoint, withMetadata } from '../../src/gan/checkpoint_node.js';
import { CheckpointMismatchError, readStateDict } from '../../src/gan/state_dict.js';
import { parseSafetensorsFile, serializeSafetensors } from '../../src/io/safetensors.js';
import { fixtureBytes } from './pix2pix_fixture.js';

const ctx = await testContext();
afterAll(() => ctx.trimPool());
const esc = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

describe('checkpoint files', () => {
  it('saveCheckpoint writes latest_net_G/D and latest_optim; loadCheckpoint restores them', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'pix2pix-ck-'));
    const model = await Pix2Pix.create({ ctx, numDowns: 5, ngf: 2, ndf: 2, seed: 9 });
    try {
      const paths = await saveCheckpoint(dir, model, { tag: 'latest' });
      expect((await readdir(dir)).sort()).toEqual(['latest_net_D.safetensors', 'latest_net_G.safetensors', 'latest_optim.safetensors']);
      expect(paths.G).toBe(join(dir, 'latest_net_G.safetensors'));
      const loaded = await loadCheckpoint(dir, { ctx });
      try {
        const [a, b] = [await readStateDict(model.G), await readStateDict(loaded.G)];
        for (const [k, v] of a) expect(Array.from(b.get(k)!.data), k).toEqual(Array.from(v.data));
      } finally {
        await loaded.destroy();
      }
    } finally {
      await model.destroy();
    }
  });

  it('loads a reference latest_net_G.pth by path', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'pix2pix-pth-'));
    await writeFile(join(dir, 'latest_net_G.pth'), fixtureBytes('pix2pix/g_batch.pth'));
    const model = await loadCheckpoint({ G: join(dir, 'latest_net_G.pth') }, { ctx, discriminator: false });
    expect(model.config.generator).toMatchObject({ ngf: 1, numDowns: 5, norm: 'batch' });
    await model.destroy();
  });

  it('every file of a set records its step and epoch; a set mixed from two steps is refused, naming files and steps', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'pix2pix-mixed-'));
    const model = await Pix2Pix.create({ ctx, numDowns: 5, ngf: 2, ndf: 2, seed: 9 });
    const paths = await saveCheckpoint(dir, model, { epoch: 4 });
    await model.destroy();
    for (const f of [paths.G, paths.D, paths.optimizer]) expect(await readSafetensorsMetadata(f), f).toMatchObject({ step: '0', epoch: '4' });
    // The data is untouched by the added metadata: the file still parses to the same tensors.
    const parsed = parseSafetensorsFile(new Uint8Array(await readFile(paths.G)), paths.G);
    expect(parsed.metadata).toMatchObject({ format: 'pt', step: '0' });
    // A crash between the renames of two saves: G and D from step 6, the optimizer from step 0.
    for (const f of [paths.G, paths.D]) await writeFile(f, withMetadata(new Uint8Array(await readFile(f)), { step: '6' }));
    const err = await loadCheckpoint(dir, { ctx }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(MixedCheckpointError);
    expect((err as Error).message).toMatch(new RegExp(`${esc(paths.G)} \\(step 6\\).*${esc(paths.D)} \\(step 6\\).*${esc(paths.optimizer)} \\(step 0\\)`));
    // --init with the generator alone is not a set: it loads.
    const g = await loadCheckpoint({ G: paths.G }, { ctx, discriminator: false });
    await g.destroy();
  });

  it('a folder written by training loads for inference (discriminator: false) taking G only', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'pix2pix-infer-'));
    const model = await Pix2Pix.create({ ctx, numDowns: 5, ngf: 2, ndf: 2, seed: 3 });
    await saveCheckpoint(dir, model);
    await model.destroy();
    const g = await loadCheckpoint(dir, { ctx, discriminator: false });
    expect(g.D).toBeNull();
    await g.destroy();
  });

  it('every loading error names the file: wrong shape, wrong kind, mismatched optimizer, G/D that do not belong together', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'pix2pix-errs-'));
    const model = await Pix2Pix.create({ ctx, numDowns: 5, ngf: 2, ndf: 2, seed: 1 });
    const paths = await saveCheckpoint(dir, model);
    const other = await Pix2Pix.create({ ctx, numDowns: 5, ngf: 4, ndf: 2, inputChannels: 1, outputChannels: 1, seed: 1 });
    const otherPaths = await saveCheckpoint(join(dir, 'other'), other);
    await model.destroy();
    await other.destroy();
    const g = parseSafetensorsFile(new Uint8Array(await readFile(paths.G))).tensors;

    // A wrong-shape generator (.pth-style state dict with one tensor resized) → CheckpointMismatchError naming the path.
    const wrong = new Map(g);
    const key = [...g.keys()].find((k) => k.endsWith('model.1.model.1.weight'))!;
    wrong.set(key, { shape: [1, 1, 1, 1], data: new Float32Array(1), dtype: 'F32' });
    const wrongPath = join(dir, 'wrong_net_G.safetensors');
    await writeFile(wrongPath, serializeSafetensors(wrong));
    const e1 = await loadCheckpoint({ G: wrongPath }, { ctx, discriminator: false }).catch((e: unknown) => e);
    expect(e1).toBeInstanceOf(CheckpointMismatchError);
    expect((e1 as Error).message).toMatch(new RegExp(`^${esc(wrongPath)}: checkpoint does not match the network: .*${esc(key)}`));
    expect((e1 as CheckpointMismatchError).mismatched.map((m) => m.key)).toEqual([key]);

    // A discriminator given as the generator.
    await expect(loadCheckpoint({ G: paths.D }, { ctx, discriminator: false })).rejects.toThrow(new RegExp(`^${esc(paths.D)}: not a U-Net generator`));
    // An optimizer file whose moments do not fit the network, and one of another format.
    const badOptim = join(dir, 'bad_optim.safetensors');
    const one = { shape: [1], data: new Float32Array(1), dtype: 'F32' as const };
    await writeFile(badOptim, serializeSafetensors(new Map([['G.model.model.0.weight.exp_avg', one], ['G.model.model.0.weight.exp_avg_sq', one]]), { format: 'pix2pix-webgpu-optimizer' }));
    await expect(loadCheckpoint({ G: paths.G, D: paths.D, optimizer: badOptim }, { ctx })).rejects.toThrow(new RegExp(`^${esc(badOptim)}: .*moments size`));
    await writeFile(badOptim, withMetadata(new Uint8Array(await readFile(paths.optimizer)), { format: 'something-else' }));
    await expect(loadCheckpoint({ G: paths.G, D: paths.D, optimizer: badOptim }, { ctx })).rejects.toThrow(new RegExp(`^${esc(badOptim)}: format 'something-else'`));
    // A D from a model with other channels.
    await expect(loadCheckpoint({ G: paths.G, D: otherPaths.D }, { ctx })).rejects.toThrow(new RegExp(`^${esc(otherPaths.D)}: discriminator takes 2 input channels but the generator ${esc(paths.G)}`));
  });

  it('linkCheckpoint makes a second name for a set without a second copy of its bytes', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'pix2pix-link-'));
    const model = await Pix2Pix.create({ ctx, numDowns: 5, ngf: 2, ndf: 2, seed: 2 });
    const src = await saveCheckpoint(join(dir, 'resume', 'step-0'), model);
    await model.destroy();
    const dst = await linkCheckpoint(join(dir, 'resume', 'step-0'), dir);
    for (const k of ['G', 'D', 'optimizer'] as const) {
      expect((await stat(dst[k])).ino, k).toBe((await stat(src[k])).ino);
      expect((await stat(dst[k])).nlink, k).toBe(2);
    }
    expect(dst).toEqual(checkpointPaths(dir));
  });
});
