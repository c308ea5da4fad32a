// `demo --full` is the seed's own configuration, exactly (issue 14 #5): 174 animals (86 white, 88 black) split
// 154/20 by animal into 823 training and 117 test pairs, real sizes 50-700, augmentation to exactly 5175,
// transfer from white to black beds, unet_256 + 70x70 PatchGAN, 200 epochs at 512x1024. `--dry-run` prints
// that plan with an estimated time on this adapter and writes nothing (run through the BUILT CLI). `synth --white
// --pairs` writes a seed-shaped set (exact fur and pair counts) from the command line.
import { describe, it, expect } from 'vitest';
import { existsSync, mkdtempSync, readdirSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { NO_GPU_ENV, cli, said } from './cli_helpers.js';
import { demoDataOptions, demoStudyConfig } from '../../src/cli/cmd_demo.js';
import { planDataset, SEED_DATASET, synthesizeDataset } from '../../src/data/synth_node.js';
import { planStudy } from '../../src/study/study_config.js';

describe('demo --full: the seed configuration', () => {
  it('plans the exact seed data and trials', () => {
    const dataOpts = demoDataOptions({ full: true, animals: 26, height: 512, width: 1024 });
    expect(dataOpts).toMatchObject({ ...SEED_DATASET, height: 512, width: 1024 });
    const data = planDataset(dataOpts);
    expect(data.pairs).toMatchObject({ train: 823, test: 117, total: 940 });
    expect(data.animalCounts).toMatchObject({ 'train/white': 76, 'train/black': 78, 'test/white': 10, 'test/black': 10 });
    const g = data.pairs.byGroup;
    const bed = (b: string) => g[`train/white/${b}`] + g[`train/black/${b}`];
    const cfg = demoStudyConfig('/d', { full: true, epochs: 12, height: 512, width: 1024, trainPairs: data.pairs.train, whiteBed: bed('white'), blackBed: bed('black') });
    expect(cfg.model).toMatchObject({ netG: 'unet_256', ngf: 64, ndf: 64, nLayersD: 3, norm: 'batch', dropout: true });
    expect(cfg.train.nEpochs + cfg.train.nEpochsDecay).toBe(200);
    const plan = planStudy(cfg);
    expect(plan.trials.map((t) => [t.name, t.kind, t.realPairs, t.pairsPerEpoch, t.epochs])).toEqual([
      ['n50', 'size', 50, 50, 200],
      ['n100', 'size', 100, 100, 200],
      ['n200', 'size', 200, 200, 200],
      ['n400', 'size', 400, 400, 200],
      ['n700', 'size', 700, 700, 200],
      ['aug-823to5175', 'augment', 823, 5175, 200],
      ['transfer-w2b', 'transfer', 200, 200, 200],
    ]);
    const transfer = cfg.trials[6];
    expect(transfer.filter).toEqual({ bed: 'black' });
    expect(transfer.pretrain).toEqual({ trainPairs: 400, filter: { bed: 'white' } });
    expect(plan.totalSteps).toBe((50 + 100 + 200 + 400 + 700 + 5175 + 200 + 400) * 200);
  });

  it('--dry-run prints the data, trials, pair counts, steps and estimated time, and writes nothing', async () => {
    const out = join(mkdtempSync(join(tmpdir(), 'demo-plan-')), 'never');
    const r = await cli(['demo', '--full', '--dry-run', '--out', out], { timeoutMs: 180_000 });
    expect(r.code, said(r).join('\n')).toBe(0);
    const o = r.out;
    expect(o).toMatch(/174 phantom animals \(86 white, 88 black\) at 512x1024, split by animal; 940 pairs/);
    expect(o).toMatch(/train: 154 animals \(76 white, 78 black\), 823 pairs \(412 on white beds, 411 on black beds\)/);
    expect(o).toMatch(/test: +20 animals \(10 white, 10 black\), 117 pairs/);
    expect(o).toMatch(/7 trial\(s\), data .*, images 512x1024/);
    for (const [name, kind, real, perEpoch, steps] of [
      ['n50', 'size', 50, 50, 10000],
      ['n100', 'size', 100, 100, 20000],
      ['n200', 'size', 200, 200, 40000],
      ['n400', 'size', 400, 400, 80000],
      ['n700', 'size', 700, 700, 140000],
      ['aug-823to5175', 'augment', 823, 5175, 1035000],
      ['transfer-w2b', 'transfer', 200, 200, 120000],
    ] as const) {
      expect(o).toMatch(new RegExp(`\\d ${name} +${kind} +${real} +${perEpoch} +200 +${steps} +[\\d.]+ (s|min|h|days)`));
    }
    expect(o).toMatch(/augment to 5175/);
    expect(o).toMatch(/after pretraining on 400 pairs x 200 epochs \(80000 steps\); filter \{"bed":"black"\}/);
    expect(o).toMatch(/total: 1445000 training steps/);
    expect(o).toMatch(/estimated time: [\d.]+ (s|min|h|days) on .+ \([\d.e+-]+ s\/step; /);
    expect(o).toMatch(/dry run: nothing synthesised, trained or written/);
    expect(existsSync(out)).toBe(false);
  }, 200_000);

  it('the default demo --dry-run plans its own phantoms and trials; --full refuses a folder of other data', async () => {
    const root = mkdtempSync(join(tmpdir(), 'demo-plan-'));
    const r = await cli(['demo', '--dry-run', '--out', join(root, 'never'), '--animals', '8', '--size', '32x64', '--epochs', '2'], { timeoutMs: 180_000 });
    expect(r.code, said(r).join('\n')).toBe(0);
    expect(r.out).toMatch(/8 phantom animals \(4 white, 4 black\) at 32x64, split by animal; 40 pairs/);
    expect(r.out).toMatch(/train: 4 animals .*, 20 pairs/);
    expect(r.out).toMatch(/aug-\d+to\d+ +augment/);
    expect(existsSync(join(root, 'never'))).toBe(false);
    // A demo folder made without --full is not the seed's data: refused before any training, named with counts.
    const out = join(root, 'small');
    await synthesizeDataset({ out: join(out, 'data'), animals: 4, poses: 2, width: 32, height: 16, seed: 0, testAnimals: 2 });
    const before = readdirSync(out).sort();
    const f = await cli(['demo', '--full', '--dry-run', '--out', out], { timeoutMs: 180_000 });
    expect(f.code).toBe(2);
    expect(said(f).join('\n')).toMatch(/data already holds phantoms from another run \(it holds 4 animals, 8 pairs \(4 train\) at 16x32, this run asks for 174 animals, 940 pairs \(823 train\) at 512x1024\): use another --out/);
    expect(readdirSync(out).sort()).toEqual(before);
    // Nor is it a plain demo's at another size: a rerun with other --size/--animals used to train on the old
    // phantoms silently. Refused before the GPU is touched (no Vulkan driver reachable here).
    const g = await cli(['demo', '--out', out, '--animals', '4', '--size', '32x64'], { timeoutMs: 180_000, env: NO_GPU_ENV });
    expect(g.code, g.err).toBe(2);
    expect(said(g).join('\n')).toMatch(/it holds 4 animals, 8 pairs \(4 train\) at 16x32, this run asks for 4 animals, 20 pairs \(\d+ train\) at 32x64\): use another --out, or delete .*data to synthesise anew/);
    expect(readdirSync(out).sort()).toEqual(before);
  }, 200_000);

  it('synth --white --pairs writes exact fur and pair counts (the seed-shaped set, small); bad values are refused', async () => {
    const root = mkdtempSync(join(tmpdir(), 'synth-pairs-'));
    const out = join(root, 'data');
    const r = await cli(['synth', '--out', out, '--animals', '10', '--white', '3', '--test_animals', '2', '--pairs', '43,11', '--size', '16x32'], { timeoutMs: 120_000, env: NO_GPU_ENV });
    expect(r.code, said(r).join('\n')).toBe(0);
    expect(r.out).toMatch(/wrote 43 training and 11 test pairs/);
    const m = JSON.parse(readFileSync(join(out, 'manifest.json'), 'utf8')) as { entries: { split: string; animal: string; fur: string }[] };
    const furs = new Map(m.entries.map((e) => [e.animal, e.fur]));
    expect([...furs.values()].filter((f) => f === 'white').length).toBe(3);
    expect(m.entries.filter((e) => e.split === 'train').length).toBe(43);
    expect(m.entries.filter((e) => e.split === 'test').length).toBe(11);
    // The library's plan for the same options is what was written.
    const plan = planDataset({ animals: 10, white: 3, testAnimals: 2, pairs: { train: 43, test: 11 }, seed: 0 });
    expect(plan.pairs).toMatchObject({ train: 43, test: 11 });
    for (const [args, why] of [
      [['--pairs', '43,11', '--poses', '2'], /--pairs and --poses: give one/],
      [['--pairs', '43'], /--pairs must be TRAIN,TEST \(two integers, e.g. 823,117\), got 43/],
      [['--pairs', '5,11'], /--pairs 5,11: .*pairs.train.*>= 8/],
      [['--white', '11'], /--white must be at most --animals = 10, got 11/],
    ] as const) {
      const bad = await cli(['synth', '--out', join(root, 'never'), '--animals', '10', '--test_animals', '2', '--size', '16x32', ...args], { timeoutMs: 60_000, env: NO_GPU_ENV });
      expect(bad.code, said(bad).join('\n')).toBe(2);
      expect(said(bad).join('\n')).toMatch(why);
    }
    expect(existsSync(join(root, 'never'))).toBe(false);
  }, 200_000);
});
