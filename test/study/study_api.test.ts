// The study runner as an app embedding the package meets it: `runStudy` and `loadStudyConfig` imported from the
// built Node entry (dist/node.js, what `pix2pix-webgpu/node` resolves to; `npm test` builds first), on a
// context from the same entry (the runner checks the context's class). A config file read with
// loadStudyConfig (its "data" relative to the file), one tiny trial trained, translated and scored, the outputs
// written; a second run reuses the finished trial; a malformed config built in code is refused up front.
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
// Types only (erased): the values below come from the built entry.
import type * as NodeEntry from '../../src/node.js';

const DIST = resolve(import.meta.dirname, '../../dist/node.js');

let lib: typeof NodeEntry;
let ctx: NodeEntry.GpuContext;
let dir: string;

beforeAll(async () => {
  expect(existsSync(DIST), `${DIST}: run npm run build`).toBe(true);
  lib = (await import(pathToFileURL(DIST).href)) as typeof NodeEntry;
  ctx = await lib.createContext();
  dir = mkdtempSync(join(tmpdir(), 'study-api-'));
  // 3 animals, 2 poses, 1 held out: 4 training pairs, 2 test pairs.
  await lib.synthesizeDataset({ out: join(dir, 'data'), animals: 3, poses: 2, width: 32, height: 32, seed: 5, testAnimals: 1 });
});
afterAll(() => ctx?.destroy());

describe('runStudy from the package entry', () => {
  it('reads a config file, runs its trial, writes the outputs; a second run reuses the trial', async () => {
    const config: NodeEntry.StudyConfig = {
      data: 'data',
      model: { inputChannels: 3, outputChannels: 1, numDowns: 5, ngf: 4, ndf: 4, lr: 2e-3 },
      train: { nEpochs: 1, nEpochsDecay: 0, seed: 1 },
      evaluate: { gridImages: 1 },
      trials: [{ name: 'n2', kind: 'size', trainPairs: 2 }],
    };
    const cfgPath = join(dir, 'study.json');
    writeFileSync(cfgPath, JSON.stringify(config));
    const cfg = lib.loadStudyConfig(cfgPath);
    expect(cfg.data).toBe(join(dir, 'data'));

    const out = join(dir, 'study');
    const steps: string[] = [];
    const logs: string[] = [];
    const r: NodeEntry.StudyRunSummary = await lib.runStudy(cfg, { out, ctx, onLog: (l) => logs.push(l), onStep: (t, s, total) => steps.push(`${t} ${s}/${total}`) });
    expect(r.ran).toEqual(['n2']);
    expect(r.reused).toEqual([]);
    expect(steps).toEqual(['n2 1/2', 'n2 2/2']);
    expect(r.results.map((t) => [t.name, t.trainPairs, t.effectivePairs])).toEqual([['n2', 2, 2]]);
    const m = r.results[0].metrics;
    for (const k of ['mse', 'psnr', 'ssim'] as const) expect(Number.isFinite(m[k]), k).toBe(true);
    expect(r.reportPath).toBe(join(out, 'report.html'));
    expect(readFileSync(r.reportPath, 'utf8')).toMatch(/<html/i);
    expect(JSON.parse(readFileSync(join(out, 'results.json'), 'utf8')).map((t: { name: string }) => t.name)).toEqual(['n2']);
    expect(existsSync(join(out, 'results.csv'))).toBe(true);

    const again = await lib.runStudy(cfg, { out, ctx });
    expect([again.ran, again.reused]).toEqual([[], ['n2']]);
    expect(again.results[0].metrics).toEqual(m);
  });

  it('refuses a malformed config built in code before making any folder (a typed error naming runStudy)', async () => {
    const out = join(dir, 'never');
    const bad = { data: join(dir, 'data'), model: {}, train: { nEpochs: 1, nEpochsDecay: 0 }, trials: [] } as NodeEntry.StudyConfig;
    const err = await lib.runStudy(bad, { out, ctx }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(lib.Pix2PixError);
    expect((err as Error).message).toBe('runStudy: a study config needs "data" and a non-empty "trials" list');
    const noTrain = { data: join(dir, 'data'), model: {}, trials: [{ name: 'a', kind: 'size', trainPairs: 1 }] } as unknown as NodeEntry.StudyConfig;
    await expect(lib.runStudy(noTrain, { out, ctx })).rejects.toThrow(/^runStudy: "train" needs integer "nEpochs" and "nEpochsDecay"/);
    expect(existsSync(out)).toBe(false);
  });
});
