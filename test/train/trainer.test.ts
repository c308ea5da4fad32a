// The training loop: what it writes, and that an interrupted run resumed from its checkpoint ends with
// exactly the weights of an uninterrupted run with the same seed.
import { describe, it, expect } from 'vitest';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { testContext } from '../helpers/gpu.js';
import { trainPix2Pix, type PairSource } from '../../src/train/trainer_node.js';
import { createImage } from '../../src/data/image.js';
import { Rng } from '../../src/runtime/random.js';
import { readStateDict } from '../../src/gan/state_dict.js';
import type { StateDict } from '../../src/io/state_dict.js';
import { loadCheckpoint, MixedCheckpointError, withMetadata } from '../../src/gan/checkpoint_node.js';
import { createContext } from '../../src/runtime/device.js';
import { DeviceLostError, FileFormatError } from '../../src/runtime/errors.js';
import { FileWriteError } from '../../src/io/atomic_node.js';
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

const readLog = (dir: string) => readFileSync(join(dir, 'loss_log.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { step: number; G_L1: number });
const esc = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

describe('trainPix2Pix', async () => {
  const ctx = await testContext();
  const model: Pix2PixOptions = { ctx, inputChannels: 3, outputChannels: 1, numDowns: 5, ngf: 2, ndf: 2, norm: 'batch', dropout: true, nEpochs: 2, nEpochsDecay: 1, seed: 5 };
  const preprocess = { preprocess: 'crop' as const, loadSize: 40, cropSize: 32, flip: true };
  /** G and the loss log of an uninterrupted 9-step run (set by the first test). */
  let reference: { G: StateDict; log: { step: number; G_L1: number }[] } | null = null;
  const expectReferenceWeights = async (G: StateDict) => {
    for (const [k, v] of reference!.G) expect(Array.from(G.get(k)!.data), k).toEqual(Array.from(v.data));
  };

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
    reference = { G: gFull, log };
    await a.model.destroy();

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

  it("reads the next batch while a step trains; a pair that fails to load stops the run at the step that needs it, with the steps before it logged", async () => {
    const out = mkdtempSync(join(tmpdir(), 'train-prefetch-'));
    let stepsDone = 0;
    let calls = 0;
    const doneAtLoad: number[] = [];
    const src = pairs(3).map((p) => ({
      ...p,
      load: async () => {
        calls++;
        doneAtLoad.push(stepsDone);
        // The 6th load: the second batch of epoch 2, read ahead while step 4 trains (loads 1-3 are epoch 1's
        // batches, 4 its sample, 5 epoch 2's first batch).
        if (calls === 6) throw new Error('pair unreadable');
        return p.load();
      },
    }));
    // No pair cache: every epoch reads its pairs again.
    const err = await trainPix2Pix(src, { out, model, preprocess, pairCacheBytes: 0, onStep: (s) => (stepsDone = s.step) }).catch((e: unknown) => e);
    expect((err as Error).message).toBe('pair unreadable');
    // Batch 2 is asked for before step 1 is done, batch 3 before step 2 (whose losses are read after step 3 is
    // submitted): one batch ahead of the step, two ahead of the losses (without loading ahead: 0, 1, 2).
    expect(doneAtLoad.slice(0, 3)).toEqual([0, 0, 0]);
    expect(doneAtLoad[5]).toBe(3);
    // Step 4 trained; step 5 could not. The log holds steps 1-4 (flushed on the error), the checkpoint is step 3's.
    expect(readLog(out).map((l) => l.step)).toEqual([1, 2, 3, 4]);
    expect(JSON.parse(readFileSync(join(out, 'train_state.json'), 'utf8')).step).toBe(3);
  });

  it('checkpointSeconds: epochs end without a save until the interval has passed; the last epoch and a stop always save, and a resume from there equals an uninterrupted run', async () => {
    const out = mkdtempSync(join(tmpdir(), 'train-ckpt-interval-'));
    const committedAtEpochEnd: (number | null)[] = [];
    const committed = () => (existsSync(join(out, 'train_state.json')) ? (JSON.parse(readFileSync(join(out, 'train_state.json'), 'utf8')) as { step: number }).step : null);
    // Stopped in epoch 3 (after step 7): epochs 1 and 2 ended within the hour, so nothing was saved until the stop.
    const b = await trainPix2Pix(pairs(3), { out, model, preprocess, checkpointSeconds: 3600, maxSteps: 7, onEpoch: () => committedAtEpochEnd.push(committed()) });
    expect(committedAtEpochEnd).toEqual([null, null]);
    expect(b.interrupted).toBe(true);
    expect(committed()).toBe(7);
    await b.model.destroy();
    const c = await trainPix2Pix(pairs(3), { out, model, preprocess, checkpointSeconds: 3600, resume: true, onEpoch: () => committedAtEpochEnd.push(committed()) });
    expect(committedAtEpochEnd).toEqual([null, null, 9]); // the last epoch saves
    expect(c.steps).toBe(9);
    await expectReferenceWeights(await readStateDict(c.model.G));
    expect(readLog(out).map((l) => l.G_L1)).toEqual(reference!.log.map((l) => l.G_L1));
    await c.model.destroy();
    // The default saves every epoch.
    const every: (number | null)[] = [];
    const outEvery = mkdtempSync(join(tmpdir(), 'train-ckpt-every-'));
    const d = await trainPix2Pix(pairs(3), { out: outEvery, model: { ...model, nEpochs: 1, nEpochsDecay: 1 }, preprocess, onEpoch: () => every.push(JSON.parse(readFileSync(join(outEvery, 'train_state.json'), 'utf8')).step) });
    expect(every).toEqual([3, 6]);
    await d.model.destroy();
  });

  it('keeps decoded pairs in memory within pairCacheBytes: each is loaded once, or every epoch with no budget; the weights are the same', async () => {
    const counted = (budget: number | undefined) => {
      const loads = new Map<string, number>();
      const src = pairs(3).map((p) => ({ ...p, load: () => (loads.set(p.name, (loads.get(p.name) ?? 0) + 1), p.load()) }));
      return { loads, src, budget };
    };
    const bytesPerPair = 40 * 32 * 4 * 4; // 40x32, 3 + 1 channels, float32
    const runs = [counted(undefined), counted(0), counted(bytesPerPair)];
    const weights: StateDict[] = [];
    for (const r of runs) {
      const out = mkdtempSync(join(tmpdir(), 'train-cache-'));
      // samplePair: the epoch's sample is loaded through its own source, not counted here.
      const t = await trainPix2Pix(r.src, { out, model, preprocess, pairCacheBytes: r.budget, samplePair: pairs(1)[0] });
      weights.push(await readStateDict(t.model.G));
      await t.model.destroy();
    }
    expect([...runs[0].loads.values()]).toEqual([1, 1, 1]); // the default budget holds all three
    expect([...runs[1].loads.values()]).toEqual([3, 3, 3]); // 3 epochs, no cache
    // Room for one pair: the first one decoded stays, the others are read every epoch.
    expect([...runs[2].loads.values()].sort()).toEqual([1, 3, 3]);
    for (const w of weights.slice(1)) for (const [k, v] of weights[0]) expect(Array.from(w.get(k)!.data), k).toEqual(Array.from(v.data));
  });

  it('an aborted run saves and reports where it stopped', async () => {
    const out = mkdtempSync(join(tmpdir(), 'train-abort-'));
    const ac = new AbortController();
    // Step 1's losses are read once step 2 is submitted: an abort there lets step 2 finish, and stops before step 3.
    const r = await trainPix2Pix(pairs(3), { out, model, preprocess, signal: ac.signal, onStep: (s) => s.step === 1 && ac.abort() });
    expect(r.interrupted).toBe(true);
    expect(JSON.parse(readFileSync(join(out, 'train_state.json'), 'utf8'))).toMatchObject({ epoch: 1, iter: 2, step: 2, checkpoint: join('resume', 'step-2') });
    // One copy on disk: the latest_* files are the committed set's files (hard links), not second copies.
    expect(readdirSync(join(out, 'resume'))).toEqual(['step-2']);
    for (const f of ['latest_net_G.safetensors', 'latest_net_D.safetensors', 'latest_optim.safetensors']) {
      expect(statSync(join(out, f)).ino, f).toBe(statSync(join(out, 'resume', 'step-2', f)).ino);
    }
    await r.model.destroy();
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

describe('trainPix2Pix under faults', async () => {
  const ctx = await testContext();
  const model: Pix2PixOptions = { ctx, inputChannels: 3, outputChannels: 1, numDowns: 5, ngf: 2, ndf: 2, norm: 'batch', dropout: true, nEpochs: 2, nEpochsDecay: 1, seed: 5 };
  const preprocess = { preprocess: 'crop' as const, loadSize: 40, cropSize: 32, flip: true };
  let reference: StateDict | null = null;
  const uninterrupted = async () => {
    if (!reference) {
      const r = await trainPix2Pix(pairs(3), { out: mkdtempSync(join(tmpdir(), 'train-ref-')), model, preprocess });
      reference = await readStateDict(r.model.G);
      await r.model.destroy();
    }
    return reference;
  };
  const expectSameWeights = async (G: StateDict) => {
    for (const [k, v] of await uninterrupted()) expect(Array.from(G.get(k)!.data), k).toEqual(Array.from(v.data));
  };

  it('disk full mid-run: the error names the log and the intact checkpoint; after space is freed --resume drops the torn record and stale leftovers', async () => {
    const out = mkdtempSync(join(tmpdir(), 'train-full-disk-'));
    const logPath = join(out, 'loss_log.jsonl');
    let saved = '';
    const run = trainPix2Pix(pairs(3), {
      out, model, preprocess,
      onStep: (s) => {
        if (s.step !== 4) return;
        // From here on every write to the log fails as on a full disk (/dev/full answers ENOSPC).
        saved = readFileSync(logPath, 'utf8');
        rmSync(logPath);
        symlinkSync('/dev/full', logPath);
      },
    });
    const err = await run.catch((e: unknown) => e);
    expect(err).toBeInstanceOf(FileWriteError);
    expect((err as Error).message).toBe(`cannot write ${logPath}: no space left on device (ENOSPC); the last checkpoint in ${out} (step 3) is intact: run again with --resume to continue from it`);

    // Space freed; the log ends in the record that was being written when the disk filled.
    rmSync(logPath);
    writeFileSync(logPath, `${saved}{"epoch":2,"iter":2,"step":5,"G_GAN":0.69`);
    // A kill also leaves temporaries of atomic writes and an uncommitted checkpoint folder.
    const dead = spawnSync(process.execPath, ['-e', 'console.log(process.pid)'], { encoding: 'utf8' }).stdout.trim();
    const leftovers = [join(out, `.latest_net_G.safetensors.${dead}.0123456789ab.tmp`), join(out, 'resume', 'step-3', `.latest_optim.safetensors.${dead}.0123456789ab.tmp`), join(out, 'resume', 'step-7')];
    writeFileSync(leftovers[0], 'partial');
    writeFileSync(leftovers[1], 'partial');
    mkdirSync(leftovers[2]);
    writeFileSync(join(leftovers[2], 'latest_net_G.safetensors'), 'partial');

    const notices: string[] = [];
    const r = await trainPix2Pix(pairs(3), { out, model, preprocess, resume: true, onNotice: (m) => notices.push(m) });
    expect(r.steps).toBe(9);
    expect(notices).toEqual([
      expect.stringMatching(/^removed 3 leftover\(s\) of an interrupted run: /),
      `${logPath}: dropped a torn last record (41 bytes, written when the disk filled or the run was killed mid-write)`,
    ]);
    expect(r.notices).toEqual(notices);
    for (const f of leftovers) expect(existsSync(f), f).toBe(false);
    expect(readLog(out).map((l) => l.step)).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9]);
    await expectSameWeights(await readStateDict(r.model.G));
    await r.model.destroy();
  });

  it('a read-only output folder is reported as such (permission denied, naming the path), as a non-root user', async () => {
    const parent = mkdtempSync(join(tmpdir(), 'train-ro-'));
    chmodSync(parent, 0o555);
    const out = join(parent, 'experiment');
    let message: string;
    if (process.getuid?.() === 0) {
      // root writes anywhere: the same call as 'nobody' in a child, through the built package (npm test
      // builds first), which fails before any GPU work.
      const script = `import(${JSON.stringify(join(process.cwd(), 'dist/node.js'))}).then(({ trainPix2Pix }) =>
        trainPix2Pix([{ name: 'p', load: async () => { throw new Error('not reached'); } }], { out: ${JSON.stringify(out)}, model: {}, preprocess: { preprocess: 'none', loadSize: 32, cropSize: 32, flip: false } }))
        .then(() => console.log('TRAINED'), (e) => console.log(e.constructor.name + ' ' + e.message));`;
      const r = spawnSync(process.execPath, ['--input-type=module', '-e', script], { uid: 65534, gid: 65534, encoding: 'utf8', timeout: 60_000 });
      message = (r.stdout + r.stderr).trim().split('\n').pop()!;
    } else {
      message = await trainPix2Pix(pairs(1), { out, model, preprocess }).then(() => 'TRAINED', (e: Error) => `${e.constructor.name} ${e.message}`);
    }
    expect(message).toBe(`FileWriteError cannot write ${join(out, 'samples')}: permission denied (EACCES)`);
  }, 90_000);

  it('a record that is not JSON before the last line stops --resume naming the file and line', async () => {
    const out = mkdtempSync(join(tmpdir(), 'train-badlog-'));
    const b = await trainPix2Pix(pairs(3), { out, model, preprocess, maxSteps: 2 });
    await b.model.destroy();
    const logPath = join(out, 'loss_log.jsonl');
    const lines = readFileSync(logPath, 'utf8').split('\n');
    lines[0] = lines[0].slice(0, 20);
    writeFileSync(logPath, lines.join('\n'));
    const err = await trainPix2Pix(pairs(3), { out, model, preprocess, resume: true }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(FileFormatError);
    expect((err as Error).message).toMatch(new RegExp(`^${esc(logPath)}: line 1 is not a loss record`));
    // A damaged train_state.json is named too (it was a bare JSON SyntaxError).
    writeFileSync(join(out, 'train_state.json'), '{"epoch":1,');
    await expect(trainPix2Pix(pairs(3), { out, model, preprocess, resume: true })).rejects.toThrow(new RegExp(`^${esc(join(out, 'train_state.json'))}: not a training state`));
  });

  // The reference updates D before computing G's loss against it: an absurd learning rate wrecks D in the first step.
  const blowUp: Pix2PixOptions = { ...model, lr: 1e30 };

  it('NaN at step 1 says no checkpoint exists and prints NaN; later, it names the kept checkpoint, and --resume repairs a mixed latest_* set first', async () => {
    const fresh = mkdtempSync(join(tmpdir(), 'train-nan1-'));
    const e1 = (await trainPix2Pix(pairs(3), { out: fresh, model: blowUp, preprocess }).catch((e: unknown) => e)) as Error;
    expect(e1.message).toMatch(/^train: non-finite loss at training step 1 \(G_GAN \S+, G_L1 \S+, D_real \S+, D_fake \S+\); stopped at epoch 1, iteration 1\. No checkpoint had been saved yet/);
    expect(e1.message).toMatch(/NaN|Infinity/);
    expect(e1.message).not.toMatch(/null|was kept/);

    const out = mkdtempSync(join(tmpdir(), 'train-nan5-'));
    const b = await trainPix2Pix(pairs(3), { out, model, preprocess, maxSteps: 4 });
    await b.model.destroy();
    // A kill while the latest_* files were refreshed: the optimizer file is from another save.
    const optim = join(out, 'latest_optim.safetensors');
    const bytes = withMetadata(new Uint8Array(readFileSync(optim)), { step: '2' });
    rmSync(optim); // a new inode: the committed set's file (a hard link) stays as it was
    writeFileSync(optim, bytes);
    await expect(loadCheckpoint(out, { ctx })).rejects.toThrow(MixedCheckpointError);
    const e2 = (await trainPix2Pix(pairs(3), { out, model: blowUp, preprocess, resume: true }).catch((e: unknown) => e)) as Error;
    expect(e2.message).toMatch(new RegExp(`non-finite loss at training step 5 .*The last good checkpoint in ${esc(out)} \\(step 4\\) was kept`));
    const repaired = await loadCheckpoint(out, { ctx });
    expect(repaired.steps).toBe(4);
    await repaired.destroy();
  });

  it('device loss mid-training ends the run with DeviceLostError, the last checkpoint intact and --resume working', async () => {
    const out = mkdtempSync(join(tmpdir(), 'train-lost-'));
    const doomed = await createContext();
    const err = await trainPix2Pix(pairs(3), { out, model: { ...model, ctx: doomed }, preprocess, onStep: (s) => s.step === 4 && doomed.device.destroy() }).catch((e: unknown) => e);
    doomed.destroy();
    expect(err).toBeInstanceOf(DeviceLostError);
    expect((err as Error).message).toMatch(new RegExp(`^train: GPU device lost .*the last checkpoint in ${esc(out)} \\(step 3\\) is intact: run again with --resume`));
    const intact = await loadCheckpoint(out, { ctx });
    expect(intact.steps).toBe(3);
    await intact.destroy();
    const r = await trainPix2Pix(pairs(3), { out, model, preprocess, resume: true });
    expect(r.steps).toBe(9);
    await expectSameWeights(await readStateDict(r.model.G));
    await r.model.destroy();
  });
});
