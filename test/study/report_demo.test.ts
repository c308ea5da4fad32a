// The demo's study and its report on real phantoms, at a tiny size: every trial gets skeleton recovery beside the
// five metrics (the study recognises a phantom dataset by its synth manifest), seeds repeat size points, the
// report states the held-out animals and shows grid rows of different animals covering both fur and both bed
// colours, and `demo --fid-weights` reaches the study's evaluation settings.
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createContext } from '../../src/runtime/device.js';
import type { GpuContext } from '../../src/runtime/context.js';
import { synthesizeDataset } from '../../src/data/synth_node.js';
import { runStudy, type StudyConfig, type TrialResult } from '../../src/study/study_node.js';
import { DEMO_ANIMALS, DEMO_EPOCHS, demoDataOptions, demoStudyConfig } from '../../src/cli/cmd_demo.js';
import { parseReportData } from '../../src/study/report.js';
import { planStudy } from '../../src/study/study_config.js';
import { planDataset } from '../../src/data/synth_node.js';

let ctx: GpuContext;
let data: string;

beforeAll(async () => {
  ctx = await createContext();
  data = mkdtempSync(join(tmpdir(), 'demo-study-'));
  // 8 animals, 4 held out: one per fur x bed combination.
  await synthesizeDataset({ out: data, animals: 8, poses: 2, width: 64, height: 32, seed: 3, testAnimals: 4 });
});
afterAll(() => ctx?.destroy());

describe('demo study', () => {
  it('plans the sweep with seeds, an augmented and a transfer trial; passes FID weights on', () => {
    const cfg = demoStudyConfig('/d', { full: false, epochs: 12, height: 64, width: 128, trainPairs: 110, whiteBed: 55, blackBed: 55, fidWeights: '/w.pth' });
    expect(cfg.trials.map((t) => t.name)).toEqual(['n8-s0', 'n8-s1', 'n8-s2', 'n24-s0', 'n24-s1', 'n24-s2', 'n110', 'aug-8to32', 'transfer-w2b']);
    expect(cfg.trials.slice(0, 3).map((t) => t.seed)).toEqual([0, 1, 2]);
    expect(cfg.trials.find((t) => t.kind === 'augment')).toMatchObject({ trainPairs: 8, total: 32 });
    expect(cfg.trials.find((t) => t.kind === 'transfer')).toMatchObject({ trainPairs: 8, filter: { bed: 'black' }, pretrain: { trainPairs: 24, filter: { bed: 'white' } } });
    expect(cfg.train).toMatchObject({ nEpochs: 6, nEpochsDecay: 6 });
    expect(cfg.evaluate?.fidWeights).toBe('/w.pth');
    expect(demoStudyConfig('/d', { full: false, epochs: 2, height: 64, width: 128, trainPairs: 110, whiteBed: 55, blackBed: 55 }).evaluate?.fidWeights).toBeUndefined();
    expect(demoStudyConfig('/d', { full: false, epochs: 2, height: 64, width: 128, trainPairs: 110, whiteBed: 55, blackBed: 55, seeds: 1 }).trials.map((t) => t.name)).toEqual(['n8', 'n24', 'n110', 'aug-8to32', 'transfer-w2b']);
  });

  it('the default demo spends its 10 minutes on 250 animals and 19 epochs: 24035 steps, 20995 in the largest trial', () => {
    const data = planDataset(demoDataOptions({ full: false, animals: DEMO_ANIMALS, height: 64, width: 128 }));
    // 29 held-out animals (the paper's 20 of 174), 221 to train on: enough that held-out recovery keeps rising with steps.
    expect(data.pairs).toMatchObject({ train: 1105, test: 145 });
    expect(data.animals.filter((a) => a.split === 'test').length).toBe(29);
    const g = data.pairs.byGroup;
    const bed = (b: string) => (g[`train/white/${b}`] ?? 0) + (g[`train/black/${b}`] ?? 0);
    const cfg = demoStudyConfig('/d', { full: false, epochs: DEMO_EPOCHS, height: 64, width: 128, trainPairs: data.pairs.train, whiteBed: bed('white'), blackBed: bed('black') });
    expect(cfg.model.dropout).toBe(false);
    const plan = planStudy(cfg);
    expect(plan.trials.map((t) => t.name)).toEqual(['n8-s0', 'n8-s1', 'n8-s2', 'n24-s0', 'n24-s1', 'n24-s2', 'n1105', 'aug-8to32', 'transfer-w2b']);
    expect(plan.trials.find((t) => t.name === 'n1105')?.steps).toBe(1105 * DEMO_EPOCHS);
    expect(plan.totalSteps).toBe(24035);
    // Measured idle (cmd_demo.ts, 8 min 42 s): the 1105-pair trial 51 steps/s, ~3 s per trial to translate and
    // score beside its steps (small trials ~45 steps/s with their compile and epoch ends; the transfer's
    // pretraining one more), compiling the kernels ~8 s once and 12 s of synthesis: 8.9 minutes.
    expect(20995 / 51 + (plan.totalSteps - 20995) / 45 + 10 * 3 + 8 + 12).toBeLessThan(9.2 * 60);
  });

  it('scores skeleton recovery for every trial and reports the held-out animals and both colours in the grid', async () => {
    const cfg: StudyConfig = {
      data,
      model: { inputChannels: 3, outputChannels: 1, numDowns: 5, ngf: 4, ndf: 4, lr: 2e-3 },
      train: { nEpochs: 1, nEpochsDecay: 0, seed: 0 },
      evaluate: { gridImages: 4 },
      trials: [
        { name: 'n4-s0', kind: 'size', trainPairs: 4, seed: 0 },
        { name: 'n4-s1', kind: 'size', trainPairs: 4, seed: 1 },
      ],
    };
    const out = mkdtempSync(join(tmpdir(), 'demo-study-out-'));
    const r = await runStudy(cfg, { out, ctx });
    expect(r.results.length).toBe(2);
    for (const t of r.results as TrialResult[]) {
      expect(Number.isFinite(t.metrics.skeleton), `${t.name} skeleton`).toBe(true);
      expect(Math.abs(t.metrics.skeleton!)).toBeLessThanOrEqual(1);
    }
    // Different seeds: different weights, so different translations.
    expect(r.results[0].metrics.mse).not.toBe(r.results[1].metrics.mse);
    expect(r.results.map((t) => t.settings?.seed)).toEqual([0, 1]);
    const csv = readFileSync(join(out, 'results.csv'), 'utf8').split('\n');
    expect(csv[0].split(',')).toContain('skeleton');
    // The L1 weight is recorded per trial: the demo's differs from the reference's 100.
    const cols = csv[0].split(',');
    expect(csv[1].split(',')[cols.indexOf('lambda_l1')]).toBe(String(r.results[0].settings?.lambdaL1));
    const html = readFileSync(join(out, 'report.html'), 'utf8');
    expect(html).toMatch(/Test set: 8 images of 4 held-out animals never seen in training; fur: 2 white, 2 black; beds: 2 white, 2 black/);
    expect(html).toContain('skeleton recovery vs training pairs');
    const report = parseReportData(html)!;
    const rows = report.grid.rows!;
    expect(rows.length).toBe(4);
    expect(new Set(rows.map((g) => g.animal)).size).toBe(4);
    expect(new Set(rows.map((g) => `${g.fur}/${g.bed}`)).size).toBe(4);
    // Each grid cell is that row's translation by that trial (read from its translations folder).
    const png = readFileSync(join(out, 'trials/n4-s0/translations', `${report.grid.files[2]}.png`)).toString('base64');
    expect(report.trials[0].samples[2]).toBe(`data:image/png;base64,${png}`);
  });
});
