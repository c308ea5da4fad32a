// A torch checkpoint's pickle is read once per load: architecture inference takes the tensors' shapes from the
// listing that opening the file gives, and the same opened file then materialises the network's tensors.
// (Before, inference and loading each unpickled the file.) Counted on the real unpickler, with torch-written files.
import { readFileSync } from 'node:fs';
import { afterAll, describe, expect, it, vi } from 'vitest';
import { testContext } from '../helpers/gpu.js';

const fixtureBytes = (name: string) => new Uint8Array(readFileSync(new URL(`../fixtures/${name}`, import.meta.url)));

const calls = vi.hoisted(() => ({ unpickle: 0 }));
vi.mock('../../src/io/pickle.js', async (importOriginal) => {
  const real = await importOriginal<typeof import('../../src/io/pickle.js')>();
  return {
    ...real,
    unpickle: (...args: Parameters<typeof real.unpickle>) => {
      calls.unpickle++;
      return real.unpickle(...args);
    },
  };
});

const { Pix2Pix } = await import('../../src/gan/pix2pix.js');
const ctx = await testContext();
afterAll(() => ctx.trimPool());

describe('one unpickling per .pth load', () => {
  // A zip checkpoint has one pickle (data.pkl); a legacy one five in a row (magic, protocol, sys_info, object, storage keys).
  it.each([
    ['pix2pix/g_batch.pth', 1],
    ['pix2pix/g_instance_legacy.pth', 5],
  ])('Pix2Pix.fromStateDict(%s) unpickles it once (%i pickle(s))', async (file, pickles) => {
    calls.unpickle = 0;
    const model = await Pix2Pix.fromStateDict({ G: { data: fixtureBytes(file), name: file } }, { ctx, discriminator: false });
    await model.destroy();
    expect(calls.unpickle).toBe(pickles);
  });
});
