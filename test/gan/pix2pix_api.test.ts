// The model's public API as an app meets it (issue 12): calls made at once queue and give what sequential
// calls give; every option and input is checked with a typed error naming it; fromUrl downloads with
// progress, abort and HTTP errors naming the URL (Node's fetch against a local node:http server).
import { describe, it, expect, afterAll, beforeAll } from 'vitest';
import { createServer, type Server } from 'node:http';
import { testContext } from '../helpers/gpu.js';
import { Rng } from '../../src/runtime/random.js';
import { FetchError, FileFormatError, InvalidOptionError, ModelBusyError, Pix2PixError, ShapeError } from '../../src/runtime/errors.js';
import { createImage, type ImageF32 } from '../../src/data/image.js';
import { Pix2Pix, type Pix2PixCheckpoint, type Pix2PixLosses, type Pix2PixOptions } from '../../src/gan/pix2pix.js';
import { PIX2PIX_DEFAULTS, resolvePix2PixOptions } from '../../src/gan/options.js';
import type { DownloadProgress } from '../../src/gan/from_url.js';

const ctx = await testContext();
afterAll(() => ctx.trimPool());

// Tiny: 5 downs (32x32 images), 2 base channels; batch norm and dropout, so step order changes the result.
const TINY: Pix2PixOptions = { ctx, numDowns: 5, ngf: 2, ndf: 2, norm: 'batch', dropout: true, seed: 11 };

function images(n: number, channels: 1 | 3, seed: number, size = 32): ImageF32[] {
  const rng = new Rng(seed);
  return Array.from({ length: n }, () => createImage(size, size, channels, Float32Array.from({ length: size * size * channels }, () => rng.next())));
}
const batch = (seed: number) => ({ a: images(1, 3, seed), b: images(1, 3, seed + 500) });

function expectSameCheckpoint(x: Pix2PixCheckpoint, y: Pix2PixCheckpoint): void {
  expect(Buffer.from(x.G).equals(Buffer.from(y.G))).toBe(true);
  expect(Buffer.from(x.D!).equals(Buffer.from(y.D!))).toBe(true);
  expect(Buffer.from(x.optimizer!).equals(Buffer.from(y.optimizer!))).toBe(true);
}

describe('calls made at once queue in order', () => {
  it('trainStep x3, translate and save fired together give exactly the sequential results', async () => {
    const together = await Pix2Pix.create(TINY);
    const oneByOne = await Pix2Pix.create(TINY);
    try {
      const probe = images(1, 3, 99)[0];
      // No awaits between the calls: before the queue the second step mapped the first's read-back buffer
      // while it was pending (OperationError in Dawn) and the model was left unusable.
      const [l1, l2, mid, l3, ck] = await Promise.all([
        together.trainStep(batch(1)),
        together.trainStep(batch(2)),
        together.translate(probe),
        together.trainStep(batch(3)),
        together.save(),
      ]);
      const s1 = await oneByOne.trainStep(batch(1));
      const s2 = await oneByOne.trainStep(batch(2));
      const sMid = await oneByOne.translate(probe);
      const s3 = await oneByOne.trainStep(batch(3));
      const sCk = await oneByOne.save();
      expect([l1, l2, l3]).toEqual([s1, s2, s3]);
      expect(l1).not.toEqual(l2);
      expect(Array.from(mid.data)).toEqual(Array.from(sMid.data));
      expectSameCheckpoint(ck, sCk);
      expect(together.steps).toBe(3);
      expect(together.pendingCalls).toBe(0);
    } finally {
      await together.destroy();
      await oneByOne.destroy();
    }
  });

  it("the next step is submitted before the previous one's losses are read; destroy() waits for the read-backs", async () => {
    const model = await Pix2Pix.create(TINY);
    const ref = await Pix2Pix.create(TINY);
    try {
      const p1 = model.trainStep(batch(1));
      const p2 = model.trainStep(batch(2));
      let secondDone = false;
      void p2.then(() => (secondDone = true));
      const l1 = await p1;
      // Step 2 left the queue (submitted: the step count moves at submission) before step 1's losses came back,
      // and its own losses are still on their way.
      expect(model.steps).toBe(2);
      expect(model.pendingCalls).toBe(0);
      expect(secondDone).toBe(false);
      const p3 = model.trainStep(batch(3));
      const closed = model.destroy();
      const got = [l1, await p2, await p3];
      await closed;
      expect(got).toEqual([await ref.trainStep(batch(1)), await ref.trainStep(batch(2)), await ref.trainStep(batch(3))]);
    } finally {
      await model.destroy();
      await ref.destroy();
    }
  });

  it('a call that fails rejects alone: the calls queued behind it run as if it had not been made', async () => {
    const model = await Pix2Pix.create(TINY);
    const ref = await Pix2Pix.create(TINY);
    try {
      const garbage = new Uint8Array(64).fill(7); // fails inside the queue, when load parses it
      const [first, bad, second] = await Promise.allSettled([model.trainStep(batch(4)), model.load({ G: garbage }), model.trainStep(batch(5))]);
      expect(first.status).toBe('fulfilled');
      expect(bad.status).toBe('rejected');
      expect((bad as PromiseRejectedResult).reason).toBeInstanceOf(FileFormatError);
      expect(second.status).toBe('fulfilled');
      const r1 = await ref.trainStep(batch(4));
      const r2 = await ref.trainStep(batch(5));
      expect([(first as PromiseFulfilledResult<Pix2PixLosses>).value, (second as PromiseFulfilledResult<Pix2PixLosses>).value]).toEqual([r1, r2]);
      // A load that succeeds while steps are queued lands between them in call order.
      const saved = await ref.save();
      const [, , after] = await Promise.all([model.trainStep(batch(6)), model.load(saved), model.trainStep(batch(7))]);
      expect(after).toEqual(await ref.trainStep(batch(7)));
    } finally {
      await model.destroy();
      await ref.destroy();
    }
  });

  it('setEpoch takes effect in call order; updateLearningRate refuses while calls are queued', async () => {
    const model = await Pix2Pix.create({ ...TINY, nEpochs: 2, nEpochsDecay: 2 });
    const ref = await Pix2Pix.create({ ...TINY, nEpochs: 2, nEpochsDecay: 2 });
    try {
      const p1 = model.trainStep(batch(8));
      expect(model.setEpoch(2)).toBeCloseTo(2e-4 * (2 / 3), 12); // epoch 2 of 2 + 2: lambda = 1 - 1/3
      expect(() => model.updateLearningRate()).toThrow(ModelBusyError);
      const p2 = model.trainStep(batch(9));
      const [a, b] = await Promise.all([p1, p2]);
      expect(model.lr).toBeCloseTo(2e-4 * (2 / 3), 12);
      const r1 = await ref.trainStep(batch(8));
      ref.setEpoch(2);
      const r2 = await ref.trainStep(batch(9));
      expect([a, b]).toEqual([r1, r2]);
      expectSameCheckpoint(await model.save(), await ref.save());
      // Had the rate changed before step 1 (setEpoch applied at once, not in call order), step 2 would differ.
      const early = await Pix2Pix.create({ ...TINY, nEpochs: 2, nEpochsDecay: 2 });
      early.setEpoch(2);
      await early.trainStep(batch(8));
      expect(await early.trainStep(batch(9))).not.toEqual(r2);
      await early.destroy();
      expect(model.updateLearningRate()).toBeCloseTo(2e-4 * (1 / 3), 12); // idle again: allowed
    } finally {
      await model.destroy();
      await ref.destroy();
    }
  });

  it('two models on one context run their calls side by side and get their sequential results', async () => {
    const x = await Pix2Pix.create(TINY);
    const y = await Pix2Pix.create({ ...TINY, seed: 12 });
    try {
      const together = await Promise.all([x.trainStep(batch(1)), y.trainStep(batch(2)), x.translate(images(1, 3, 5)[0]), y.trainStep(batch(3)), x.save(), y.save()]);
      const x2 = await Pix2Pix.create(TINY);
      const y2 = await Pix2Pix.create({ ...TINY, seed: 12 });
      const alone = [await x2.trainStep(batch(1)), await y2.trainStep(batch(2)), await x2.translate(images(1, 3, 5)[0]), await y2.trainStep(batch(3)), await x2.save(), await y2.save()];
      expect(together.slice(0, 2)).toEqual(alone.slice(0, 2));
      expect(Array.from((together[2] as ImageF32).data)).toEqual(Array.from((alone[2] as ImageF32).data));
      expect(together[3]).toEqual(alone[3]);
      expectSameCheckpoint(together[4] as Pix2PixCheckpoint, alone[4] as Pix2PixCheckpoint);
      expectSameCheckpoint(together[5] as Pix2PixCheckpoint, alone[5] as Pix2PixCheckpoint);
      await x2.destroy();
      await y2.destroy();
    } finally {
      await x.destroy();
      await y.destroy();
    }
  });

  it('destroy() lets queued calls finish, then refuses new ones', async () => {
    const model = await Pix2Pix.create(TINY);
    const pending = model.translate(images(1, 3, 1)[0]);
    const closed = model.destroy();
    await expect(model.translate(images(1, 3, 1)[0])).rejects.toThrow(/used after destroy/);
    const out = await pending;
    expect(out.data.length).toBe(32 * 32 * 3);
    await closed;
    await expect(model.save()).rejects.toBeInstanceOf(Pix2PixError);
    await model.destroy(); // twice is fine
  });
});

describe('options are checked at the boundary', () => {
  const bad: [Partial<Record<keyof Pix2PixOptions, unknown>>, string, RegExp][] = [
    [{ netG: 'resnet_9blocks' }, 'netG', /one of 'unet_128', 'unet_256', got 'resnet_9blocks' \('resnet_9blocks' is the reference's but not implemented/],
    [{ netG: 'resnet_6blocks' }, 'netG', /not implemented/],
    [{ netG: 'unet_999' }, 'netG', /option netG: expected one of 'unet_128', 'unet_256', got 'unet_999'$/],
    [{ norm: 'layer' }, 'norm', /option norm: expected one of 'batch', 'instance', 'group', 'none', got 'layer'/],
    [{ norm: 'group', normGroups: 0 }, 'normGroups', /option normGroups: expected an integer >= 1/],
    [{ ganMode: 'wgan' }, 'ganMode', /option ganMode: expected one of 'vanilla', 'lsgan', got 'wgan'/],
    [{ ganMode: 'wgangp' }, 'ganMode', /not implemented/],
    [{ lr: 'fast' }, 'lr', /option lr: expected a finite number >= 0, got 'fast'/],
    [{ lr: NaN }, 'lr', /got NaN/],
    [{ ngf: 2.5 }, 'ngf', /option ngf: expected an integer >= 1, got 2.5/],
    [{ ngf: '64' }, 'ngf', /got '64'/],
    [{ numDowns: 4 }, 'numDowns', /expected an integer in \[5, 16\], got 4/],
    [{ inputChannels: 0 }, 'inputChannels', /got 0/],
    [{ beta1: 1 }, 'beta1', /in \[0, 1\), got 1/],
    [{ dropout: 'no' }, 'dropout', /expected true or false, got 'no'/],
    [{ discriminator: 0 }, 'discriminator', /true or false/],
    [{ batchSize: 0 }, 'batchSize', /got 0/],
    [{ seed: 1.5 }, 'seed', /got 1.5/],
    [{ nEpochsDecay: -1 }, 'nEpochsDecay', /got -1/],
    [{ freeze: { encoderLevels: 9 } }, 'freeze.encoderLevels', /option freeze.encoderLevels: expected an integer in \[0, 5\], got 9/],
    [{ freeze: true }, 'freeze', /got true/],
    [{ ctx: {} }, 'ctx', /expected a GpuContext/],
    [{ norm: 'batch\n\u001b[31mok' }, 'norm', /got 'batch\\x0a\\x1b\[31mok'$/], // control characters shown, never printed
  ];
  for (const [opts, option, message] of bad) {
    it(`${JSON.stringify(opts)} throws InvalidOptionError naming ${option}`, async () => {
      const err = await Pix2Pix.create({ ctx, numDowns: 5, ...opts } as Pix2PixOptions).then(
        () => null,
        (e: unknown) => e,
      );
      expect(err).toBeInstanceOf(InvalidOptionError);
      expect((err as InvalidOptionError).option).toBe(option);
      expect((err as Error).message).toMatch(/^Pix2Pix\.create: /);
      expect((err as Error).message).toMatch(message);
    });
  }

  it('defaults live in one place and give the reference configuration', () => {
    const c = resolvePix2PixOptions({});
    expect(c.generator).toEqual({ inputChannels: 3, outputChannels: 3, numDowns: 8, ngf: 64, norm: 'batch', dropout: true });
    expect(c.discriminator).toEqual({ inputChannels: 6, ndf: 64, nLayers: 3, norm: 'batch' });
    expect([c.ganMode, c.lambdaL1, c.lr, c.beta1, c.beta2, c.nEpochs, c.nEpochsDecay, c.epochCount, c.batchSize, c.seed]).toEqual(['vanilla', 100, 2e-4, 0.5, 0.999, 100, 100, 1, 1, 0]);
    expect(resolvePix2PixOptions({ netG: 'unet_128' }).generator.numDowns).toBe(7);
    expect(resolvePix2PixOptions({ netG: 'unet_128', numDowns: 6, ngf: undefined }).generator).toMatchObject({ numDowns: 6, ngf: PIX2PIX_DEFAULTS.ngf });
    expect(resolvePix2PixOptions({ discriminator: false }).discriminator).toBeNull();
  });

  it('fromStateDict checks its options too', async () => {
    const model = await Pix2Pix.create({ ...TINY, discriminator: false });
    const ck = await model.save();
    await model.destroy();
    await expect(Pix2Pix.fromStateDict({ G: ck.G }, { ctx, ganMode: 'wgan' as never })).rejects.toThrow(/^Pix2Pix\.fromStateDict: option ganMode/);
    await expect(Pix2Pix.fromStateDict({ G: 'G.safetensors' as never }, { ctx })).rejects.toThrow(/option G: expected file bytes \(Uint8Array\) or a state dict \(Map\), got 'G.safetensors'/);
  });
});

describe('inputs are checked at the boundary', () => {
  let model: Pix2Pix;
  beforeAll(async () => {
    model = await Pix2Pix.create(TINY);
  });
  afterAll(() => model.destroy());

  it('image data shorter than width x height x channels is a ShapeError, not a NaN step', async () => {
    const short = { width: 32, height: 32, channels: 3 as const, data: new Float32Array(32 * 32 * 3 - 5) };
    await expect(model.trainStep({ a: [short], b: images(1, 3, 1) })).rejects.toThrow(
      new ShapeError('Pix2Pix.trainStep', 'batch.a[0].data length (width x height x channels = 32 x 32 x 3)', 3072, 3067),
    );
    await expect(model.translate(short)).rejects.toThrow(/Pix2Pix\.translate: image\[0\]\.data length .*expected 3072, got 3067/);
    // The model is untouched: a real step afterwards is finite.
    const losses = await model.trainStep(batch(1));
    expect(Object.values(losses).every(Number.isFinite)).toBe(true);
  });

  it('NaN pixels, wrong channels, bad fields and wrong batch shapes are named', async () => {
    const nan = images(2, 3, 2);
    nan[1].data[17] = NaN;
    await expect(model.trainStep({ a: nan, b: images(2, 3, 3) })).rejects.toThrow(/option batch\.a\[1\]\.data: expected finite values \(images in \[0, 1\]\), got NaN \(at index 17\)/);
    await expect(model.trainStep({ a: images(1, 1, 2), b: images(1, 3, 3) })).rejects.toThrow(/batch\.a channels: expected 3, got 1/);
    await expect(model.trainStep({ a: [{ width: 32, height: 32, channels: 2, data: new Float32Array(2048) }] as never, b: images(1, 3, 3) })).rejects.toThrow(/option batch\.a\[0\]\.channels: expected 1 or 3, got 2/);
    await expect(model.trainStep({ a: [{ width: 32, height: 32, channels: 3, data: [0, 1] }] as never, b: images(1, 3, 3) })).rejects.toThrow(/batch\.a\[0\]\.data: expected a Float32Array, got \[0,1\]/);
    await expect(model.trainStep({ a: [], b: [] })).rejects.toThrow(/batch\.a image count: expected >= 1, got 0/);
    await expect(model.trainStep(null as never)).rejects.toThrow(/option batch/);
    await expect(model.trainStep({ a: images(1, 3, 1, 48), b: images(1, 3, 2, 48) })).rejects.toThrow(/Pix2Pix\.trainStep: image size.*multiples of 32, got 48x48/);
    const t = ctx.tensor([1, 3, 32, 32], undefined, 'gone');
    t.destroy();
    await expect(model.translate(t)).rejects.toThrow(/option input: expected a live Tensor, got a Tensor \('gone' was destroyed\)/);
    await expect(model.translate(images(1, 3, 1)[0], { eval: 'yes' } as never)).rejects.toThrow(/Pix2Pix\.translate: option eval: expected true or false, got 'yes'/);
    await expect(model.load({ G: new Uint8Array(8), D: 'x' } as never)).rejects.toThrow(/option D: expected file bytes/);
    expect(() => model.setEpoch(1.5)).toThrow(/option epoch: expected an integer, got 1.5/);
    expect(model.steps).toBe(1); // none of these reached the GPU
  });
});

/** What `p` rejects with (failing the test if it resolves). */
async function rejection(p: Promise<unknown>): Promise<{ name: string; message: string }> {
  return p.then(
    () => {
      throw new Error('expected a rejection');
    },
    (e: { name: string; message: string }) => ({ name: e.name, message: e.message }),
  );
}

/** A local server for checkpoint files: counts hits per path, can stall mid-body or answer 404. */
async function checkpointServer(files: Record<string, Uint8Array>): Promise<{ url: string; hits: Map<string, number>; stalled: Set<unknown>; close: () => Promise<void> }> {
  const hits = new Map<string, number>();
  const stalled = new Set<unknown>(); // stalled responses whose client has not gone away yet
  const server: Server = createServer((req, res) => {
    const path = new URL(req.url ?? '/', 'http://x').pathname;
    hits.set(path, (hits.get(path) ?? 0) + 1);
    const name = path.replace(/^\/(stall\/)?/, '');
    const body = files[name];
    if (!body) {
      res.writeHead(404, 'Not Found').end('no such checkpoint');
      return;
    }
    res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': String(body.length) });
    // Several chunks, so progress has steps; a stalled file sends its first chunk and then nothing.
    const chunk = Math.ceil(body.length / 4);
    if (path.startsWith('/stall/')) {
      res.write(body.subarray(0, chunk));
      stalled.add(res);
      res.on('close', () => stalled.delete(res));
      req.on('close', () => res.destroy());
      return;
    }
    let at = 0;
    const next = () => {
      if (at >= body.length) return void res.end();
      res.write(body.subarray(at, at + chunk), () => setTimeout(next, 20));
      at += chunk;
    };
    next();
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as { port: number }).port;
  return {
    url: `http://127.0.0.1:${port}`,
    hits,
    stalled,
    close: () =>
      new Promise((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
}

describe('Pix2Pix.fromUrl in Node', () => {
  let served: Awaited<ReturnType<typeof checkpointServer>>;
  let source: Pix2Pix;
  let ck: Pix2PixCheckpoint;
  beforeAll(async () => {
    source = await Pix2Pix.create(TINY);
    await source.trainStep(batch(1));
    ck = await source.save();
    served = await checkpointServer({ 'G.safetensors': ck.G, 'D.safetensors': ck.D!, 'optimizer.safetensors': ck.optimizer!, 'junk.safetensors': new Uint8Array(100).fill(3) });
  });
  afterAll(async () => {
    await source.destroy();
    await served.close();
  });

  it('streams G, D and optimizer with progress that ends at the total, and resumes exactly', async () => {
    const events: DownloadProgress[] = [];
    const model = await Pix2Pix.fromUrl(
      { G: `${served.url}/G.safetensors`, D: `${served.url}/D.safetensors`, optimizer: new URL(`${served.url}/optimizer.safetensors`) },
      { ...TINY, onProgress: (p) => events.push(p) },
    );
    try {
      const forG = events.filter((e) => e.url.endsWith('/G.safetensors'));
      expect(forG[0]).toEqual({ url: `${served.url}/G.safetensors`, loaded: 0, total: ck.G.length, fromCache: false });
      expect(forG.some((e) => e.loaded > 0 && e.loaded < ck.G.length)).toBe(true); // sent in four chunks
      expect(forG.at(-1)).toEqual({ url: `${served.url}/G.safetensors`, loaded: ck.G.length, total: ck.G.length, fromCache: false });
      expect(forG.map((e) => e.loaded)).toEqual([...forG.map((e) => e.loaded)].sort((x, y) => x - y));
      expect(events.filter((e) => e.url.endsWith('/optimizer.safetensors')).at(-1)!.loaded).toBe(ck.optimizer!.length);
      expect(model.steps).toBe(1);
      // Same weights and optimizer state: the next step matches the source's.
      expect(await model.trainStep(batch(2))).toEqual(await source.trainStep(batch(2)));
    } finally {
      await model.destroy();
    }
  });

  it('HTTP errors, unparsable files and bad URLs name the URL', async () => {
    const missing = `${served.url}/nope.safetensors`;
    const err = await Pix2Pix.fromUrl({ G: missing }, { ctx }).then(
      () => null,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(FetchError);
    expect((err as FetchError).status).toBe(404);
    expect((err as Error).message).toBe(`Pix2Pix.fromUrl: ${missing}: HTTP 404 Not Found`);
    await expect(Pix2Pix.fromUrl({ G: `${served.url}/junk.safetensors` }, { ctx })).rejects.toThrow(`G checkpoint ${served.url}/junk.safetensors`);
    await expect(Pix2Pix.fromUrl({ G: 'http://127.0.0.1:1/G.safetensors' }, { ctx })).rejects.toThrow(/Pix2Pix\.fromUrl: http:\/\/127\.0\.0\.1:1\/G\.safetensors: no response/);
    await expect(Pix2Pix.fromUrl({ G: 42 } as never, { ctx })).rejects.toThrow(/option urls\.G: expected a URL/);
    await expect(Pix2Pix.fromUrl({ G: `${served.url}/G.safetensors` }, { ctx, norm: 'layer' as never })).rejects.toThrow(/option norm/);
    await expect(Pix2Pix.fromUrl({ G: `${served.url}/G.safetensors` }, { ctx, onProgress: 'log' as never })).rejects.toThrow(/option onProgress: expected a function/);
  });

  it('abort rejects with an AbortError, mid-body or before the request', async () => {
    const controller = new AbortController();
    const events: DownloadProgress[] = [];
    const loading = Pix2Pix.fromUrl(
      { G: `${served.url}/stall/G.safetensors` },
      {
        ctx,
        signal: controller.signal,
        onProgress: (p) => {
          events.push(p);
          if (p.loaded > 0) controller.abort();
        },
      },
    );
    expect(await rejection(loading)).toMatchObject({ name: 'AbortError' });
    expect(events.at(-1)!.loaded).toBeLessThan(ck.G.length);
    const before = served.hits.get('/G.safetensors') ?? 0;
    expect(await rejection(Pix2Pix.fromUrl({ G: `${served.url}/G.safetensors` }, { ctx, signal: AbortSignal.abort() }))).toMatchObject({ name: 'AbortError' });
    expect(served.hits.get('/G.safetensors') ?? 0).toBe(before);
  });

  it('a failed file stops the other downloads', async () => {
    const err = await rejection(Pix2Pix.fromUrl({ G: `${served.url}/missing-G.safetensors`, D: `${served.url}/stall/D.safetensors` }, { ctx }));
    expect(err).toMatchObject({ name: 'FetchError', message: `Pix2Pix.fromUrl: ${served.url}/missing-G.safetensors: HTTP 404 Not Found` });
    // The stalled D download was cancelled (its connection closed), not left running in the background.
    for (let i = 0; i < 100 && served.stalled.size > 0; i++) await new Promise((r) => setTimeout(r, 20));
    expect(served.stalled.size).toBe(0);
  });

  it('cache is ignored in Node (no Cache API): each load requests the file', async () => {
    expect((globalThis as { caches?: unknown }).caches).toBeUndefined();
    const before = served.hits.get('/G.safetensors') ?? 0;
    for (let i = 0; i < 2; i++) await (await Pix2Pix.fromUrl({ G: `${served.url}/G.safetensors` }, { ctx, discriminator: false, cache: true })).destroy();
    expect(served.hits.get('/G.safetensors')).toBe(before + 2);
  });
});
