import { existsSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { required, parseSize, UsageError, type CommandSpec } from './command.js';
import { Progress } from './progress.js';

export const synthCommand: CommandSpec<Record<string, unknown>> = {
  name: 'synth',
  summary: 'synthesise the mouse-phantom dataset (photo | X-ray pairs, split by animal, with a manifest)',
  usage: 'synth --out DIR [--animals N] [--poses 5] [--size 512x1024] [--seed S] [--test-animals N]',
  options: {
    out: { type: 'string', arg: 'DIR', description: 'output folder (train/, test/, manifest.csv, manifest.json)' },
    animals: { type: 'number', description: 'animals (each in white or black fur, on a white or black bed)', default: 174 },
    poses: { type: 'number', description: 'poses per animal', default: 5 },
    size: { type: 'string', arg: 'HxW', description: 'image size of each half', default: '512x1024' },
    seed: { type: 'number', description: 'seed; the same seed gives byte-identical files', default: 0 },
    'test-animals': { type: 'number', description: 'animals held out for testing (default: 20 of 174, scaled)' },
  },
  epilog: 'The seed paper\'s dataset had 174 animals x 5 poses at 512x1024 (154 train / 20 test animals).',
  async run(opts) {
    const out = required(opts, 'out', 'synth');
    const { height, width } = parseSize(opts.size as string);
    const animals = opts.animals as number;
    if (!Number.isInteger(animals) || animals < 2) throw new UsageError(`synth: --animals must be an integer >= 2, got ${animals}`);
    const { synthesizeDataset } = await import('../data/synth_node.js');
    const bar = new Progress('synth', animals * (opts.poses as number), 'pair');
    let last = 0;
    const r = await synthesizeDataset({
      out,
      animals,
      poses: opts.poses as number,
      width,
      height,
      seed: opts.seed as number,
      testAnimals: opts['test-animals'] as number | undefined,
      onProgress: (done: number) => {
        bar.tick(done - last);
        last = done;
      },
    });
    console.log(`wrote ${r.train} training and ${r.test} test pairs to ${out}`);
  },
};

export const evaluateCommand: CommandSpec<Record<string, unknown>> = {
  name: 'evaluate',
  summary: 'score translations against ground truth: MSE, NRMSE, PSNR, SSIM, FID, KID, WAEM',
  usage: 'evaluate --real DIR --fake DIR [--ssim-mode skimage|gaussian] [--fid-weights FILE] [--json FILE]',
  options: {
    real: { type: 'string', arg: 'DIR', description: 'ground-truth images' },
    fake: { type: 'string', arg: 'DIR', description: 'generated images, paired with --real by file name' },
    'ssim-mode': { type: 'string', description: 'SSIM as skimage defaults (7x7 uniform, sample covariance) or gaussian (11x11, sigma 1.5)', default: 'skimage', choices: ['skimage', 'gaussian'] },
    'fid-weights': { type: 'string', arg: 'FILE', description: "pytorch-fid's pt_inception-2015-12-05-6726825d.pth (enables FID and KID)" },
    json: { type: 'string', arg: 'FILE', description: 'also write {"n", "mean", "perImage"} as JSON' },
    'waem-weights': { type: 'string', arg: 'JSON', description: 'WAEM weights {"a","b","c","d","e"} (default: the documented ones)' },
  },
  epilog: '8-bit images are divided by 255, 16-bit by 65535.',
  async run(opts) {
    const real = required(opts, 'real', 'evaluate');
    const fake = required(opts, 'fake', 'evaluate');
    const { createContext } = await import('../runtime/device.js');
    const { evaluateFolders } = await import('../metrics/evaluate_node.js');
    const ctx = await createContext();
    const fidWeights = (opts['fid-weights'] as string | undefined) ?? process.env.PIX2PIX_FID_WEIGHTS;
    const extractor = fidWeights ? await (await import('../metrics/inception_node.js')).createInceptionExtractor(ctx, fidWeights) : undefined;
    const waemWeights = opts['waem-weights'] ? (JSON.parse(opts['waem-weights'] as string) as import('../metrics/waem.js').WaemWeights) : undefined;
    const r = await evaluateFolders({ real, fake, ssimMode: opts['ssim-mode'] as 'skimage' | 'gaussian', fidExtractor: extractor, ctx, waemWeights });
    extractor?.destroy();
    ctx.destroy();
    for (const w of r.warnings ?? []) console.error(`warning: ${w}`);
    const rows = Object.entries(r.mean).filter(([, v]) => v !== undefined);
    console.log(`n = ${r.n}`);
    for (const [k, v] of rows) console.log(`${k.toUpperCase().padEnd(6)} ${Number(v).toPrecision(6)}`);
    if (opts.json) await writeFile(opts.json as string, JSON.stringify({ n: r.n, mean: r.mean, perImage: r.perImage }, null, 2));
  },
};

export const studyCommand: CommandSpec<Record<string, unknown>> = {
  name: 'study',
  summary: "run the seed paper's experiments (dataset size, augmentation, transfer) and write report.html",
  usage: 'study --config FILE [--out DIR] [--trial NAME] [--report-only]',
  options: {
    config: { type: 'string', arg: 'FILE', description: 'study config (JSON), e.g. examples/study-small.json' },
    out: { type: 'string', arg: 'DIR', description: 'output folder', default: 'study-out' },
    trial: { type: 'string', arg: 'NAME', description: 'run only this trial (trials can run as separate processes)' },
    'report-only': { type: 'boolean', description: 'only rebuild results.csv/json and report.html from finished trials' },
  },
  epilog: 'Finished trials are kept (trials/NAME/result.json); running the same command again resumes.',
  async run(opts) {
    const configPath = required(opts, 'config', 'study');
    if (!existsSync(configPath)) throw new UsageError(`study: no config file ${configPath}`);
    const { loadStudyConfig, runStudy, writeStudyOutputs } = await import('../study/study_node.js');
    const cfg = loadStudyConfig(configPath);
    const out = opts.out as string;
    if (opts['report-only']) {
      const r = await writeStudyOutputs(cfg, { out });
      console.log(`report: ${r.reportPath}`);
      return;
    }
    const { createContext } = await import('../runtime/device.js');
    const { abortOnSigint } = await import('./cmd_train.js');
    const ctx = await createContext();
    const ac = abortOnSigint();
    const bars = new Map<string, Progress>();
    const r = await runStudy(cfg, {
      out,
      ctx,
      only: opts.trial ? [opts.trial as string] : undefined,
      signal: ac.signal,
      onLog: (l) => console.error(l),
      onStep: (name, _step, total) => {
        let b = bars.get(name);
        if (!b) bars.set(name, (b = new Progress(name, total, 'step')));
        b.tick();
      },
    });
    ctx.destroy();
    console.log(`${r.results.length} trial(s) done; report: ${r.reportPath}`);
  },
};

export const benchCommand: CommandSpec<Record<string, unknown>> = {
  name: 'bench',
  summary: 'benchmark kernels, G forward and a training step (see bench/ in the repository)',
  usage: 'bench [--config small|256|512x1024|all] [--browser] [--json FILE]',
  options: {
    config: { type: 'string', description: 'model configuration', default: 'small', choices: ['small', '256', '512x1024', 'all'] },
    json: { type: 'string', arg: 'FILE', description: 'write all results as JSON' },
    repeats: { type: 'number', description: 'timed repetitions (median reported)', default: 10 },
    browser: { type: 'boolean', description: 'run the same cases in headless Chromium (puppeteer-core, system chromium)' },
  },
  epilog: 'The benchmark and its TF.js comparison live in the repository (npm run bench); the published package runs the self-test only.',
  async run(opts) {
    const { fileURLToPath } = await import('node:url');
    const benchPath = fileURLToPath(new URL('./bench/cli.js', import.meta.url));
    if (!existsSync(benchPath)) {
      // Published package: no TF.js, no bench build. Still check the device is correct.
      const { createContext } = await import('../runtime/device.js');
      const { selfTest } = await import('../selftest.js');
      const ctx = await createContext();
      const r = await selfTest(ctx);
      ctx.destroy();
      for (const c of r.cases) console.log(`${c.ok ? 'ok  ' : 'FAIL'} ${c.name} max abs err ${c.maxAbsError.toExponential(2)} (tol ${c.tolerance})`);
      if (!r.ok) throw new Error('self-test failed on this device');
      console.log('self-test passed; for benchmarks run `npm run bench` in a checkout of the repository');
      return;
    }
    const args = ['--config', String(opts.config), '--repeats', String(opts.repeats), ...(opts.json ? ['--json', String(opts.json)] : []), ...(opts.browser ? ['--browser'] : [])];
    process.argv = [process.argv[0], benchPath, ...args];
    await import(benchPath);
  },
};

