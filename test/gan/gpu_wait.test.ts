// Pacing the wait for a training step (src/gan/gpu_wait.ts): in Node, Dawn's mapAsync polls on the JavaScript
// thread, so trainStep sleeps through most of the step's expected time (less what has passed since its GPU work
// began) first. The estimate is the shortest recent
// step, a sleep that outlasted the work shortens the next one, and the pacing is on in Node and reaches trainStep.
import { describe, it, expect } from 'vitest';
import { testContext } from '../helpers/gpu.js';
import { GpuWaitPacer, WAIT_POLLS, pacingWanted } from '../../src/gan/gpu_wait.js';
import { Pix2Pix } from '../../src/gan/pix2pix.js';
import { Rng } from '../../src/runtime/random.js';

describe('GpuWaitPacer', () => {
  it('sleeps a fraction of the shortest recent step, after the warm-up steps', () => {
    const p = new GpuWaitPacer(true, 0.8, 3, 2);
    expect(p.sleepMs()).toBe(0);
    p.record(50);
    expect(p.sleepMs()).toBe(0);
    p.record(30);
    expect(p.sleepMs()).toBeCloseTo(24);
    p.record(90); // a slow step does not lengthen the sleep
    expect(p.sleepMs()).toBeCloseTo(24);
    p.record(40);
    p.record(45); // 30 has left the window of 3: [90, 40, 45]
    expect(p.sleepMs()).toBeCloseTo(32);
    p.record(Number.NaN);
    p.record(-1);
    expect(p.sleepMs()).toBeCloseTo(32);
    p.reset();
    expect(p.sleepMs()).toBe(0);
  });

  it('comes down to the real time when a sleep outlasted the work', () => {
    const p = new GpuWaitPacer(true, 0.8, 8, 1);
    p.record(100);
    // The work now takes 20 ms; a step measures max(work, sleep): the sleep shrinks to 0.8 x 20 in a few steps.
    for (let i = 0; i < 12; i++) p.record(Math.max(20, p.sleepMs()));
    expect(p.sleepMs()).toBeCloseTo(16);
  });

  it('counts the time already spent since the work began (the step was submitted while the one before it ran)', () => {
    const p = new GpuWaitPacer(true, 0.8, 4, 1);
    p.record(30);
    expect(p.sleepMs(0)).toBeCloseTo(24);
    expect(p.sleepMs(10)).toBeCloseTo(14);
    expect(p.sleepMs(40)).toBe(0);
    // With the next step queued behind it, the wait can sleep nearer the expected end: the GPU stays busy.
    expect(p.sleepMs(0, true)).toBeCloseTo(28.5);
    expect(p.sleepMs(10, true)).toBeCloseTo(18.5);
  });

  it('is wanted where waiting polls and the kernels run on the CPU', () => {
    expect(pacingWanted('software', true)).toBe(true);
    expect(pacingWanted('integrated', true)).toBe(false);
    expect(pacingWanted('discrete', true)).toBe(false);
    expect(pacingWanted('software', false)).toBe(false);
  });

  it('does nothing when disabled', async () => {
    const p = new GpuWaitPacer(false);
    for (let i = 0; i < 5; i++) p.record(40);
    expect(p.sleepMs()).toBe(0);
    const t0 = performance.now();
    await p.pace();
    expect(performance.now() - t0).toBeLessThan(20);
  });

  it('pace() sleeps at least sleepMs', async () => {
    const p = new GpuWaitPacer(true, 1, 4, 1);
    p.record(30);
    const t0 = performance.now();
    await p.pace();
    expect(performance.now() - t0).toBeGreaterThanOrEqual(29);
  });
});

describe('trainStep paces its wait in Node', async () => {
  const ctx = await testContext();

  it('polling is detected in Node, and the steps train the pacer (this adapter is a software one)', async () => {
    expect(WAIT_POLLS).toBe(true);
    const model = await Pix2Pix.create({ ctx, numDowns: 5, ngf: 2, ndf: 2, norm: 'instance', dropout: false, seed: 5 });
    const rng = new Rng(2);
    const shape = [1, 3, 32, 32];
    const a = ctx.tensor(shape, rng.normals(3 * 32 * 32, 0.5));
    const b = ctx.tensor(shape, rng.normals(3 * 32 * 32, 0.5));
    const pacer = (model as unknown as { waitPacer: GpuWaitPacer }).waitPacer;
    expect(pacer.sleepMs()).toBe(0);
    for (let i = 0; i < 3; i++) await model.trainStep({ a, b });
    expect(pacer.sleepMs()).toBeGreaterThan(0);
    await model.destroy();
    a.destroy();
    b.destroy();
  });
});
