// Trials on several GPU contexts at once (runStudy's moreContexts, the demo's --parallel): the costliest trial
// starts first, the trials really overlap, every result equals the sequential run's, and an abort in one lane
// stops the other at its next step with both trials resumable.
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { existsSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createContext } from '../../src/runtime/device.js';
import type { GpuContext } from '../../src/runtime/context.js';
import { synthesizeDataset } from '../../src/data/synth_node.js';
import { runStudy, type StudyConfig } from '../../src/study/study_node.js';

let ctx: GpuContext;
let ctx2: GpuContext;
let data: string;

beforeAll(async () => {
  ctx = await createContext();
  ctx2 = await createContext();
  data = mkdtempSync(join(tmpdir(), 'study-par-data-'));
  // 4 animals, 2 poses, 1 held out: 6 training pairs, 2 test pairs.
  await synthesizeDataset({ out: data, animals: 4, poses: 2, width: 32, height: 32, seed: 5, testAnimals: 1 });
});
afterAll(() => {
  ctx?.destroy();
  ctx2?.destroy();
});

const config = (): StudyConfig => ({
  data,
  model: { inputChannels: 3, outputChannels: 1, numDowns: 5, ngf: 4, ndf: 4, lr: 2e-3 },
  train: { nEpochs: 2, nEpochsDecay: 1, seed: 1 },
  evaluate: { gridImages: 1 },
  trials: [
    { name: 'n2', kind: 'size', trainPairs: 2 },
    { name: 'n6', kind: 'size', trainPairs: 6 },
    { name: 'n3', kind: 'size', trainPairs: 3 },
  ],
});

describe('runStudy with more contexts', () => {
  it('starts the costliest trial first, overlaps trials, and gives the sequential results', async () => {
    const sequential = await runStudy(config(), { out: mkdtempSync(join(tmpdir(), 'study-seq-')), ctx });
    // ctx2's pipelines compiled first (seconds on lavapipe), so that its lane trains while n6 does.
    await runStudy(config(), { out: mkdtempSync(join(tmpdir(), 'study-warm-')), ctx: ctx2, only: ['n2'] });
    const events: string[] = [];
    const started: string[] = [];
    const parallel = await runStudy(config(), {
      out: mkdtempSync(join(tmpdir(), 'study-par-')),
      ctx,
      moreContexts: [ctx2],
      onStep: (t, s, total) => events.push(`${t} ${s}/${total}`),
      onLog: (l) => started.push(...(/^\[(\w+)\] training on/.exec(l)?.slice(1) ?? [])),
    });
    expect(parallel.ran.sort()).toEqual(['n2', 'n3', 'n6']);
    // Costliest first: n6 (18 steps) and n3 (9) start at once, n2 (6) when a lane is free.
    expect([started.slice(0, 2).sort(), started[2]]).toEqual([['n3', 'n6'], 'n2']);
    const during = events.slice(events.indexOf('n6 1/18'), events.indexOf('n6 18/18'));
    expect(during.some((e) => e.startsWith('n3 '))).toBe(true);
    // Rows in the config's order, and the same numbers as one trial after another.
    expect(parallel.results.map((r) => r.name)).toEqual(['n2', 'n6', 'n3']);
    for (const [i, r] of parallel.results.entries()) expect(r.metrics, r.name).toEqual(sequential.results[i].metrics);
  });

  it('an abort in one lane stops the other; a second run resumes both', async () => {
    const out = mkdtempSync(join(tmpdir(), 'study-par-abort-'));
    const ac = new AbortController();
    const seen = new Set<string>();
    const err = await runStudy(config(), {
      out,
      ctx,
      moreContexts: [ctx2],
      signal: ac.signal,
      onStep: (t) => {
        seen.add(t);
        // Both lanes are training: stop.
        if (seen.size === 2) ac.abort();
      },
    }).then(
      () => null,
      (e: unknown) => e,
    );
    expect(String(err)).toMatch(/interrupted/);
    // Neither trial finished nor kept its claim.
    for (const t of ['n2', 'n3', 'n6']) {
      expect(existsSync(join(out, 'trials', t, 'result.json')), t).toBe(false);
      expect(existsSync(join(out, 'trials', t, 'claim.json')), t).toBe(false);
    }
    const again = await runStudy(config(), { out, ctx, moreContexts: [ctx2] });
    expect(again.results.map((r) => r.name)).toEqual(['n2', 'n6', 'n3']);
  });
});
