// saveCheckpoint / loadCheckpoint: the three files, atomically written, round-trip to the same model.
import { describe, it, expect, afterAll } from 'vitest';
import { mkdtemp, readdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { testContext } from '../helpers/gpu.js';
import { Pix2Pix } from '../../src/gan/pix2pix.js';
import { loadCheckpoint, saveCheckpoint } from '../../src/gan/checkpoint_node.js';
import { readStateDict } from '../../src/gan/state_dict.js';
import { fixtureBytes } from './pix2pix_fixture.js';
import { writeFile } from 'node:fs/promises';

const ctx = await testContext();
afterAll(() => ctx.trimPool());

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
        loaded.destroy();
      }
    } finally {
      model.destroy();
    }
  });

  it('loads a reference latest_net_G.pth by path', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'pix2pix-pth-'));
    await writeFile(join(dir, 'latest_net_G.pth'), fixtureBytes('pix2pix/g_batch.pth'));
    const model = await loadCheckpoint({ G: join(dir, 'latest_net_G.pth') }, { ctx, discriminator: false });
    expect(model.config.generator).toMatchObject({ ngf: 1, numDowns: 5, norm: 'batch' });
    model.destroy();
  });
});
