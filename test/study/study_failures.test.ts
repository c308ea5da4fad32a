// A looping study worker does not stop at the first failed trial: the failure is recorded (the trial's claim
// released, so any worker may retry it), the remaining trials run, the outputs of every finished trial are
// written, and the run ends with an error naming the failed trials — a non-zero exit for the built CLI.
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createContext } from '../../src/runtime/device.js';
import type { GpuContext } from '../../src/runtime/context.js';
import { synthesizeDataset } from '../../src/data/synth_node.js';
import { runStudy, StudyTrialsFailedError, type StudyConfig } from '../../src/study/study_node.js';
import { CLI, cli, said } from '../e2e/cli_helpers.js';

let ctx: GpuContext;
let data: string;
/** The first test's study folder: n3 finished there, n50 and n60 failed. */
let studied: string;

beforeAll(async () => {
  ctx = await createContext();
  data = mkdtempSync(join(tmpdir(), 'study-fail-data-'));
  // 3 animals, 2 poses, 1 held out: 4 training pairs.
  await synthesizeDataset({ out: data, animals: 3, poses: 2, width: 32, height: 32, seed: 5, testAnimals: 1 });
});
afterAll(() => ctx?.destroy());

// The first and third trials ask for more pairs than the data folder has: they fail once claimed, before training.
const config = (): StudyConfig => ({
  data,
  model: { inputChannels: 3, outputChannels: 1, numDowns: 5, ngf: 4, ndf: 4, lr: 2e-3 },
  train: { nEpochs: 1, nEpochsDecay: 0, seed: 1 },
  evaluate: { gridImages: 1 },
  trials: [
    { name: 'n50', kind: 'size', trainPairs: 50 },
    { name: 'n3', kind: 'size', trainPairs: 3 },
    { name: 'n60', kind: 'size', trainPairs: 60 },
  ],
});

describe('a study worker goes on past a failed trial', () => {
  it('records the failures, runs the other trials, writes their outputs, then throws naming the failed trials', async () => {
    const out = mkdtempSync(join(tmpdir(), 'study-fail-'));
    studied = out;
    const logs: string[] = [];
    const err = await runStudy(config(), { out, ctx, onLog: (l) => logs.push(l) }).then(
      () => null,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(StudyTrialsFailedError);
    const failed = err as StudyTrialsFailedError;
    expect(failed.failures.map((f) => f.name)).toEqual(['n50', 'n60']);
    expect(failed.message).toMatch(/^study: 2 trial\(s\) failed: 'n50' \(.*asked for 50 pairs, but only 4 are available\); 'n60' \(.*asked for 60 pairs/);
    expect(failed.summary.ran).toEqual(['n3']);
    expect(failed.summary.results.map((r) => r.name)).toEqual(['n3']);
    expect(logs.join('\n')).toMatch(/\[n50\] failed: .*; going on with the remaining trials/);
    // The trial after the failure ran to its result; the failed ones hold no claim (another worker may retry them).
    expect(existsSync(join(out, 'trials/n3/result.json'))).toBe(true);
    for (const t of ['n50', 'n60']) expect(existsSync(join(out, 'trials', t, 'claim.json')), t).toBe(false);
    expect(JSON.parse(readFileSync(join(out, 'results.json'), 'utf8')).map((r: { name: string }) => r.name)).toEqual(['n3']);
  });

  it('the built CLI: study exits non-zero naming the failed trials, after going on with the others', async () => {
    expect(existsSync(CLI), `${CLI}: run npm run build`).toBe(true);
    expect(studied, 'needs the study folder of the test above').toBeTruthy();
    // On the folder above, where n3 is finished (training it again in a second process would prove nothing the
    // test above does not): the worker fails n50, goes on to n3 (reused), writes the outputs of the study (its
    // results.json, removed here, comes back with n3) and only then exits non-zero.
    const dir = mkdtempSync(join(tmpdir(), 'study-fail-cli-'));
    const cfgPath = join(dir, 'study.json');
    writeFileSync(cfgPath, JSON.stringify({ ...config(), trials: config().trials.slice(0, 2) }));
    rmSync(join(studied, 'results.json'));
    const r = await cli(['study', '--config', cfgPath, '--out', studied]);
    expect(r.code, r.err).toBe(1);
    expect(said(r).join('\n')).toMatch(/study: 1 trial\(s\) failed: 'n50' \(.*asked for 50 pairs/);
    expect(JSON.parse(readFileSync(join(studied, 'results.json'), 'utf8')).map((x: { name: string }) => x.name)).toEqual(['n3']);
  });
});
