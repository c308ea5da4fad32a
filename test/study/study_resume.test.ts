// Resuming a study with other settings: a finished trial is reused only when the settings that produced it
// (recorded in its result.json) are the ones asked for now; otherwise it is re-run, and the log says which
// trial and what changed. Evaluation-only changes re-score the kept weights.
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createContext } from '../../src/runtime/device.js';
import type { GpuContext } from '../../src/runtime/context.js';
import { synthesizeDataset } from '../../src/data/synth_node.js';
import { runStudy, writeStudyOutputs, type StudyConfig, type TrialResult } from '../../src/study/study_node.js';

let ctx: GpuContext;
let data: string;

beforeAll(async () => {
  ctx = await createContext();
  data = mkdtempSync(join(tmpdir(), 'study-data-'));
  await synthesizeDataset({ out: data, animals: 3, poses: 2, width: 32, height: 32, seed: 5, testAnimals: 1 });
});
afterAll(() => ctx?.destroy());

const config = (nEpochs: number, gridImages = 2): StudyConfig => ({
  data,
  model: { inputChannels: 3, outputChannels: 1, numDowns: 5, ngf: 4, ndf: 4, lr: 2e-3 },
  train: { nEpochs, nEpochsDecay: 0, seed: 1 },
  evaluate: { gridImages },
  trials: [{ name: 'n3', kind: 'size', trainPairs: 3 }],
});

async function run(cfg: StudyConfig, out: string) {
  const logs: string[] = [];
  let steps = 0;
  const r = await runStudy(cfg, { out, ctx, onLog: (l) => logs.push(l), onStep: () => steps++ });
  const result = JSON.parse(readFileSync(join(out, 'trials/n3/result.json'), 'utf8')) as TrialResult;
  const losses = readFileSync(join(out, 'trials/n3/checkpoints/loss_log.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { step: number; G_L1: number });
  return { r, logs: logs.join('\n'), steps, result, losses };
}

describe('study resume with changed settings', () => {
  it('reuses matching trials, re-runs changed ones from scratch and says what changed, re-scores on evaluation changes', async () => {
    const out = mkdtempSync(join(tmpdir(), 'study-out-'));
    const first = await run(config(1), out);
    expect(first.r.ran).toEqual(['n3']);
    expect(first.steps).toBe(3);
    expect(first.result.config?.train.nEpochs).toBe(1);
    expect(first.result.settings).toMatchObject({ imageSize: '32x32', numDowns: 5, ngf: 4, ndf: 4, nEpochs: 1, nEpochsDecay: 0, lr: 2e-3, steps: 3, realPairs: 3, pairsPerEpoch: 3 });
    expect(first.result.config?.data.manifestHash).toMatch(/^[0-9a-f]{64}$/);

    const same = await run(config(1), out);
    expect(same.r.reused).toEqual(['n3']);
    expect(same.steps).toBe(0);

    // Two epochs asked for now: the one-epoch result must not be kept or relabelled.
    const more = await run(config(2), out);
    expect(more.r.ran).toEqual(['n3']);
    expect(more.logs).toMatch(/\[n3\] re-running from scratch: its earlier run used other settings \(train\.nEpochs 1 → 2\)/);
    expect(more.steps).toBe(6);
    expect(more.losses.map((l) => l.step)).toEqual([1, 2, 3, 4, 5, 6]);
    // A fresh start with the same seed: its first step is the first run's first step (not a continuation).
    expect(more.losses[0].G_L1).toBe(first.losses[0].G_L1);
    expect(more.result.config?.train.nEpochs).toBe(2);
    expect(more.result.settings?.nEpochs).toBe(2);
    expect(more.r.results.map((r) => r.settings?.steps)).toEqual([6]);

    // Only the evaluation changed: the weights are kept (no training step), the scores redone.
    const regrid = await run(config(2, 1), out);
    expect(regrid.r.ran).toEqual(['n3']);
    expect(regrid.steps).toBe(0);
    expect(regrid.logs).toMatch(/\[n3\] re-evaluating its trained weights: evaluation settings changed \(evaluate\.gridImages 2 → 1\)/);
    expect(regrid.result.samples).toHaveLength(1);
    expect(regrid.result.config?.evaluate.gridImages).toBe(1);

    // The report leaves out a result from other settings instead of labelling it with the current ones.
    const stale = await writeStudyOutputs(config(3, 1), { out });
    expect(stale.stale).toEqual(['n3']);
    expect(stale.results).toEqual([]);
    expect(readFileSync(stale.reportPath, 'utf8')).toMatch(/Left out \(results from other settings; run the study to redo them\): n3/);

    // A result written before settings were recorded is not trusted.
    const path = join(out, 'trials/n3/result.json');
    const { config: _c, ...legacy } = JSON.parse(readFileSync(path, 'utf8')) as TrialResult;
    writeFileSync(path, JSON.stringify(legacy));
    rmSync(join(out, 'trials/n3/trial.json'));
    const again = await run(config(2, 1), out);
    expect(again.logs).toMatch(/\[n3\] re-running from scratch: .*no record of its settings/);
    expect(again.steps).toBe(6);
  });

  it('a changed dataset (other manifest) re-runs the trial', async () => {
    const out = mkdtempSync(join(tmpdir(), 'study-out-'));
    const other = mkdtempSync(join(tmpdir(), 'study-data2-'));
    await synthesizeDataset({ out: other, animals: 3, poses: 2, width: 32, height: 32, seed: 6, testAnimals: 1 });
    await run(config(1), out);
    const moved = await run({ ...config(1), data: other }, out);
    expect(moved.r.ran).toEqual(['n3']);
    expect(moved.logs).toMatch(/\[n3\] re-running from scratch: .*manifestHash [0-9a-f"]+ → /);
  });
});
