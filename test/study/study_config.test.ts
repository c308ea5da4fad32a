// The study's plan, config checks, settings diffs, trial indexes from job-array variables and the per-trial
// claim that keeps concurrent workers off each other's trials. No device needed.
import { describe, it, expect } from 'vitest';
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir, hostname } from 'node:os';
import { join, resolve } from 'node:path';
import { planStudy, validateStudyConfig, configDifferences, pairsPerEpoch, trainStepMacs, type StudyConfig } from '../../src/study/study_config.js';
import { claimTrial, loadStudyConfig, resolveTrialIndex } from '../../src/study/study_node.js';

const ROOT = resolve(import.meta.dirname, '../..');

const base = (): StudyConfig => ({
  data: '/nowhere',
  model: { numDowns: 5, ngf: 4, ndf: 4 },
  train: { nEpochs: 2, nEpochsDecay: 1, batchSize: 2 },
  trials: [
    { name: 'n10', kind: 'size', trainPairs: 10 },
    { name: 'aug', kind: 'augment', trainPairs: 823, total: 5175 },
    { name: 'aug-k', kind: 'augment', trainPairs: 7, copies: 2 },
    { name: 'tr', kind: 'transfer', trainPairs: 5, pretrain: { trainPairs: 9, nEpochs: 1, nEpochsDecay: 0 } },
  ],
});

describe('study plan', () => {
  it('counts pairs and steps as the trainer does, augment by copies or to an exact total', () => {
    const p = planStudy(base());
    expect(p.trials.map((t) => t.index)).toEqual([0, 1, 2, 3]);
    expect(p.trials.map((t) => t.pairsPerEpoch)).toEqual([10, 5175, 21, 5]);
    // floor(pairs / batch) iterations per epoch, 3 epochs.
    expect(p.trials.map((t) => t.steps)).toEqual([15, 2587 * 3, 10 * 3, 2 * 3]);
    expect(p.trials[3].pretrain).toEqual({ pairs: 9, epochs: 1, steps: 4 });
    expect(p.trials[3].totalSteps).toBe(6 + 4);
    expect(p.totalSteps).toBe(15 + 2587 * 3 + 30 + 10);
    expect(p.trials[1].augment).toEqual({ total: 5175 });
    expect(pairsPerEpoch({ name: 'x', kind: 'augment', trainPairs: 4 })).toBe(24); // default 5 copies
  });

  it('the shipped seed config plans 823 -> 5175 pairs and 200 epochs of unet_256', () => {
    const cfg = loadStudyConfig(join(ROOT, 'examples/study-seed.json'));
    const p = planStudy(cfg);
    const aug = p.trials.find((t) => t.kind === 'augment')!;
    expect([aug.realPairs, aug.pairsPerEpoch, aug.epochs, aug.steps]).toEqual([823, 5175, 200, 5175 * 200]);
    expect(p.trials.filter((t) => t.kind === 'size').map((t) => t.realPairs)).toEqual([50, 100, 200, 400, 700]);
    expect(cfg.model.netG).toBe('unet_256');
  });

  it('refuses bad configs with the trial and field named', () => {
    const bad = (edit: (c: StudyConfig) => void) => {
      const c = base();
      edit(c);
      return () => validateStudyConfig(c, 'cfg.json');
    };
    expect(bad((c) => (c.trials[1].copies = 3))).toThrow(/'aug'.*"copies" or "total", not both/);
    expect(bad((c) => (c.trials[1].total = 100))).toThrow(/'aug': total must be an integer >= 823, got 100/);
    expect(bad((c) => (c.trials[0].copies = 1))).toThrow(/'n10'.*belong to augment trials/);
    expect(bad((c) => (c.train.nEpochs = 1.5))).toThrow(/"train" needs integer "nEpochs"/);
    expect(bad((c) => (c.trials[0].trainPairs = 0))).toThrow(/'n10': trainPairs must be an integer >= 1/);
    expect(bad((c) => (c.model = { ...c.model, norm: 'instance', normGroups: 4 }))).toThrow(/^cfg\.json: "model": normGroups 4 applies only to norm 'group', got norm 'instance'$/);
    expect(bad((c) => (c.model = { ...c.model, norm: undefined, normGroups: 4 }))).toThrow(/normGroups 4 applies only to norm 'group', got norm 'batch'/);
    expect(bad((c) => (c.model = { ...c.model, norm: 'group', normGroups: 4 }))).not.toThrow();
  });

  it('names each setting that differs', () => {
    expect(configDifferences({ train: { nEpochs: 4, seed: 0 }, trial: { total: 30 } }, { train: { nEpochs: 2, seed: 0 }, trial: {} })).toEqual(['train.nEpochs 4 → 2', 'trial.total 30 → –']);
    expect(configDifferences({ a: [1, 2] }, { a: [1, 2] })).toEqual([]);
  });

  it('multiply-adds grow with pixels and width (the estimate scales a probe by them)', () => {
    const small = trainStepMacs({ numDowns: 6, ngf: 8, ndf: 8 }, 64, 128).step;
    expect(trainStepMacs({ numDowns: 6, ngf: 8, ndf: 8 }, 128, 256).step / small).toBeCloseTo(4, 0);
    const full = trainStepMacs({ netG: 'unet_256', ngf: 64, ndf: 64, outputChannels: 1 }, 512, 1024).step;
    expect(full / small).toBeGreaterThan(2000);
  });
});

describe('trial index for job arrays', () => {
  it('takes a number, or the scheduler variable with env', () => {
    expect(resolveTrialIndex('2', 4, {})).toBe(2);
    expect(resolveTrialIndex('env', 4, { SLURM_ARRAY_TASK_ID: '3' })).toBe(3);
    expect(resolveTrialIndex('env', 4, { JOB_COMPLETION_INDEX: '1' })).toBe(1);
    expect(resolveTrialIndex('env', 4, { PIX2PIX_TRIAL_INDEX: '0' })).toBe(0);
    expect(() => resolveTrialIndex('env', 4, {})).toThrow(/SLURM_ARRAY_TASK_ID, JOB_COMPLETION_INDEX, PIX2PIX_TRIAL_INDEX/);
    expect(() => resolveTrialIndex('env', 4, { SLURM_ARRAY_TASK_ID: '4' })).toThrow(/SLURM_ARRAY_TASK_ID.*out of range: the study has 4 trials \(0\.\.3/);
    expect(() => resolveTrialIndex('-1', 4, {})).toThrow(/expected a trial index 0\.\.3 or 'env', got '-1'/);
  });
});

describe('trial claims', () => {
  it('one claimant at a time; released claims can be taken again', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'claim-'));
    const results = await Promise.all(Array.from({ length: 8 }, () => claimTrial(dir)));
    const winners = results.filter((r) => 'release' in r);
    expect(winners).toHaveLength(1);
    const w = winners[0] as Exclude<(typeof results)[number], { heldBy: unknown }>;
    for (const r of results) if ('heldBy' in r) expect(r.heldBy?.token).toBe(w.info.token);
    const claim = JSON.parse(readFileSync(join(dir, 'claim.json'), 'utf8'));
    expect(claim).toMatchObject({ host: hostname(), pid: process.pid });
    await w.release();
    expect(existsSync(join(dir, 'claim.json'))).toBe(false);
    const again = await claimTrial(dir);
    expect('release' in again).toBe(true);
    if ('release' in again) await again.release();
  });

  it('takes over a claim whose process is gone, or whose heartbeat is too old, and no other', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'claim-'));
    // A process that has exited: its pid is free.
    const dead = await new Promise<number>((done) => {
      const c = spawn(process.execPath, ['-e', '0']);
      c.on('exit', () => done(c.pid!));
    });
    writeFileSync(join(dir, 'claim.json'), JSON.stringify({ token: 'old', host: hostname(), pid: dead, startedAt: 'then' }));
    const logs: string[] = [];
    const c1 = await claimTrial(dir, { onLog: (l) => logs.push(l) });
    expect('release' in c1).toBe(true);
    expect(logs.join('\n')).toMatch(/taking over a stale claim .*pid \d+.*process gone/);
    if ('release' in c1) await c1.release();

    // Another host's claim: alive while its heartbeat is fresh, stale once older than the timeout.
    writeFileSync(join(dir, 'claim.json'), JSON.stringify({ token: 'far', host: 'other-node', pid: 1, startedAt: 'then' }));
    const held = await claimTrial(dir, { staleClaimSeconds: 60 });
    expect(held).toEqual({ heldBy: { token: 'far', host: 'other-node', pid: 1, startedAt: 'then' } });
    const old = new Date(Date.now() - 120_000);
    utimesSync(join(dir, 'claim.json'), old, old);
    const c2 = await claimTrial(dir, { staleClaimSeconds: 60 });
    expect('release' in c2).toBe(true);
    if ('release' in c2) await c2.release();
  });
});
