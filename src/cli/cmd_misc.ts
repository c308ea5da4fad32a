import { existsSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { defineCommand, required, parseSize, UsageError } from './command.js';
import { Progress } from './progress.js';
import { EVALUATION_DEFAULTS, SSIM_MODES } from '../metrics/defaults.js';

export const synthCommand = defineCommand({
  name: 'synth',
  summary: 'synthesise the mouse-phantom dataset (photo | X-ray pairs, split by animal, with a manifest)',
  usage: 'synth --out DIR [--animals N] [--poses 5 | --pairs TRAIN,TEST] [--white N] [--size 512x1024] [--seed S] [--test_animals N]',
  options: {
    out: { type: 'string', arg: 'DIR', description: 'output folder (train/, test/, manifest.csv, manifest.json)' },
    animals: { type: 'count', min: 2, description: 'animals (each in white or black fur, on a white or black bed)', default: 174 },
    poses: { type: 'count', min: 1, description: 'poses per animal (default 5; not with --pairs)' },
    pairs: { type: 'string', arg: 'TRAIN,TEST', description: "exact training and test pair counts instead of --poses: each animal of a split gets the same number of views, some one more (the seed: 823,117)" },
    white: { type: 'count', description: 'white-furred animals, the rest black (default about half; the seed: 86 of 174)' },
    size: { type: 'string', arg: 'HxW', description: 'image size of each half', default: '512x1024' },
    seed: { type: 'count', description: 'seed; the same seed gives byte-identical files', default: 0 },
    test_animals: { type: 'count', description: 'animals held out for testing (default: 20 of 174, scaled)' },
  },
  epilog: "The seed paper's dataset: 174 animals (86 white, 88 black), 154 train / 20 test animals, 823 + 117 pairs at 512x1024:\n  synth --out seed-data --animals 174 --white 86 --test_animals 20 --pairs 823,117",
  async run(opts) {
    const out = required(opts, 'out', 'synth');
    const { height, width } = parseSize(opts.size);
    const animals = opts.animals;
    if (opts.test_animals !== undefined && opts.test_animals > animals - 1) {
      throw new UsageError(`--test_animals must be at most --animals - 1 = ${animals - 1} (at least one animal trains), got ${opts.test_animals}`);
    }
    if (opts.white !== undefined && opts.white > animals) throw new UsageError(`--white must be at most --animals = ${animals}, got ${opts.white}`);
    let pairs: { train: number; test: number } | undefined;
    if (opts.pairs !== undefined) {
      if (opts.poses !== undefined) throw new UsageError('--pairs and --poses: give one (--pairs sets the views per animal itself)');
      const m = /^\s*(\d+)\s*,\s*(\d+)\s*$/.exec(opts.pairs);
      if (!m) throw new UsageError(`--pairs must be TRAIN,TEST (two integers, e.g. 823,117), got ${opts.pairs}`);
      pairs = { train: Number(m[1]), test: Number(m[2]) };
      // The same check synthesizeDataset makes, before any folder is made: every animal needs one view.
      const { planDataset } = await import('../data/synth_node.js');
      try {
        planDataset({ animals, seed: opts.seed, testAnimals: opts.test_animals, white: opts.white, pairs });
      } catch (e) {
        throw new UsageError(`--pairs ${opts.pairs}: ${(e as Error).message}`);
      }
    }
    const poses = pairs ? undefined : (opts.poses ?? 5);
    const { mkdir } = await import('node:fs/promises');
    try {
      await mkdir(out, { recursive: true });
    } catch (e) {
      throw new UsageError(`--out ${out}: cannot create this folder (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`);
    }
    const { synthesizeDataset } = await import('../data/synth_node.js');
    const total = pairs ? pairs.train + pairs.test : animals * poses!;
    const bar = new Progress('synth', total, 'pair');
    let last = 0;
    const r = await synthesizeDataset({
      out,
      animals,
      poses,
      pairs,
      white: opts.white,
      width,
      height,
      seed: opts.seed,
      testAnimals: opts.test_animals,
      onProgress: (done: number) => {
        bar.tick(done - last);
        last = done;
      },
    });
    console.log(`wrote ${r.train} training and ${r.test} test pairs to ${out}`);
  },
});

/**
 * JSON for metrics: a non-finite number (PSNR of identical images is +Infinity) is written as the string
 * "Infinity", "-Infinity" or "NaN", never as null (JSON has no such numbers, and null reads as "missing").
 * Read back with `JSON.parse(text, (k, v) => (v === 'Infinity' || v === '-Infinity' || v === 'NaN' ? Number(v) : v))`.
 */
export function metricsJson(value: unknown): string {
  return JSON.stringify(value, (_k, v: unknown) => (typeof v === 'number' && !Number.isFinite(v) ? String(v) : v), 2);
}

/** A folder argument that must exist (checked before the GPU is touched); the error names the flag. */
async function existingFolder(flag: string, path: string): Promise<void> {
  const { stat } = await import('node:fs/promises');
  const st = await stat(path).catch(() => null);
  if (!st) throw new UsageError(`--${flag} ${path}: no such folder`);
  if (!st.isDirectory()) throw new UsageError(`--${flag} ${path}: not a folder (give the folder of images)`);
}

export const evaluateCommand = defineCommand({
  name: 'evaluate',
  summary: 'score translations against ground truth: MSE, NRMSE, PSNR, SSIM, FID, KID, WAEM',
  usage: `evaluate --real DIR --fake DIR [--real_aligned] [--ssim_mode ${SSIM_MODES.join('|')}] [--fid_weights FILE] [--json FILE]`,
  options: {
    real: { type: 'string', arg: 'DIR', description: 'ground-truth images, or a test folder of aligned A|B images (see --real_aligned)' },
    fake: { type: 'string', arg: 'DIR', description: 'generated images, paired with --real by file name' },
    real_aligned: { type: 'boolean', description: 'the --real images are aligned A|B pairs: score against the right half (B); automatic for datasets written by synth/demo' },
    ssim_mode: { type: 'string', description: 'SSIM as skimage defaults (7x7 uniform, sample covariance) or gaussian (11x11, sigma 1.5)', default: EVALUATION_DEFAULTS.ssimMode, choices: SSIM_MODES },
    fid_weights: { type: 'string', exists: 'file', arg: 'FILE', description: "pytorch-fid's pt_inception-2015-12-05-6726825d.pth (enables FID and KID)" },
    json: { type: 'string', arg: 'FILE', description: 'also write {"n", "mean", "perImage"} as JSON (non-finite values as strings, see below)' },
    waem_weights: { type: 'string', arg: 'JSON', description: 'WAEM weights {"a","b","c","d","e"} (default: the documented ones)' },
  },
  epilog: [
    '8-bit images are divided by 255, 16-bit by 65535.',
    'Example (a synth/demo test folder and its translations): evaluate --real data/test --fake translated',
    'JSON: a PSNR of identical images is +Infinity, written as the string "Infinity" (also "-Infinity", "NaN"); a',
    'missing metric is absent, never null. Read it back with JSON.parse(text, (k, v) => (v === "Infinity" ? Infinity : v)).',
  ].join('\n'),
  async run(opts) {
    const real = required(opts, 'real', 'evaluate');
    const fake = required(opts, 'fake', 'evaluate');
    // Arguments and files first: a typo must not wait for (or fail on) the GPU.
    await existingFolder('real', real);
    await existingFolder('fake', fake);
    const fidWeights = opts.fid_weights ?? process.env.PIX2PIX_FID_WEIGHTS;
    if (fidWeights && !existsSync(fidWeights)) throw new UsageError(`${opts.fid_weights ? '--fid_weights' : 'PIX2PIX_FID_WEIGHTS'} ${fidWeights}: no such file`);
    let waemWeights: import('../metrics/waem.js').WaemWeights | undefined;
    if (opts.waem_weights) {
      try {
        waemWeights = JSON.parse(opts.waem_weights) as import('../metrics/waem.js').WaemWeights;
      } catch (e) {
        throw new UsageError(`--waem_weights expects JSON such as {"a":1,"b":1,"c":1,"d":1,"e":1}: ${(e as Error).message}`);
      }
    }
    const { evaluateFolders, pairFolders } = await import('../metrics/evaluate_node.js');
    const { datasetManifest } = await import('./cmd_translate.js');
    const { resolve } = await import('node:path');
    const manifest = datasetManifest(resolve(real));
    const realAligned = opts.real_aligned || manifest !== undefined;
    if (manifest && !opts.real_aligned) console.error(`evaluate: ${real} is an aligned photo | target dataset (${manifest.path}): scoring against the target (right) half`);
    try {
      await pairFolders(real, fake);
    } catch (e) {
      const phases = ['test', 'train'].filter((p) => existsSync(`${real}/${p}`));
      throw new UsageError(`--real ${real} / --fake ${fake}: ${(e as Error).message}${phases.length ? ` (a dataset folder: did you mean --real ${real}/${phases[0]}?)` : ''}`);
    }
    const { createContext } = await import('../runtime/device.js');
    const ctx = await createContext();
    const extractor = fidWeights ? await (await import('../metrics/inception_node.js')).createInceptionExtractor(ctx, fidWeights) : undefined;
    const r = await evaluateFolders({ real, fake, realAligned, ssimMode: opts.ssim_mode, fidExtractor: extractor, ctx, waemWeights });
    extractor?.destroy();
    ctx.destroy();
    for (const w of r.warnings ?? []) console.error(`warning: ${w}`);
    const rows = Object.entries(r.mean).filter(([, v]) => v !== undefined);
    console.log(`n = ${r.n}`);
    for (const [k, v] of rows) console.log(`${k.toUpperCase().padEnd(6)} ${Number(v).toPrecision(6)}`);
    if (opts.json) await writeFile(opts.json, metricsJson({ n: r.n, mean: r.mean, perImage: r.perImage }));
  },
});

export const studyCommand = defineCommand({
  name: 'study',
  summary: "run the seed paper's experiments (dataset size, augmentation, transfer) and write report.html",
  usage: 'study --config FILE [--out DIR] [--data DIR] [--trial NAME | --trial-index I|env] [--plan | --dry-run | --report-only]',
  options: {
    config: { type: 'string', arg: 'FILE', description: 'study config (JSON; its paths are relative to the file), e.g. examples/study-small.json' },
    out: { type: 'string', arg: 'DIR', description: 'output folder (shared by all workers of one study)', default: 'study-out' },
    data: { type: 'string', arg: 'DIR', description: "dataset folder, instead of the config's \"data\" (relative to the working folder)" },
    trial: { type: 'string', arg: 'NAME', description: 'run only this trial' },
    'trial-index': { type: 'string', arg: 'I|env', description: 'run only the I-th trial of --plan (0-based); env: from SLURM_ARRAY_TASK_ID, JOB_COMPLETION_INDEX or PIX2PIX_TRIAL_INDEX' },
    plan: { type: 'boolean', description: 'print the trials as JSON (index, name, pairs, steps) and exit; no device needed' },
    'dry-run': { type: 'boolean', description: 'print the plan with an estimated time on this adapter (times a few training steps) and exit' },
    'report-only': { type: 'boolean', description: 'only merge finished trials into results.csv/json and report.html' },
    'claim-timeout': { type: 'number', arg: 'SECONDS', description: "take over a trial whose worker's heartbeat is older than this", default: 600 },
  },
  epilog: [
    'Finished trials are kept (trials/NAME/result.json with the settings that produced it); running again resumes,',
    'and a trial whose settings or data changed is re-run (the log names what changed).',
    'Any number of workers can share one --out: each trial is claimed (trials/NAME/claim.json) by one worker at a time.',
    'Cluster job arrays: examples/cluster/study-slurm.sh (Slurm) and examples/cluster/study-indexed-job.yaml (Kubernetes).',
    'Example: pix2pix-webgpu study --config examples/study-small.json --data demo-out/data --dry-run',
  ].join('\n'),
  async run(opts) {
    const configPath = required(opts, 'config', 'study');
    if (!existsSync(configPath)) throw new UsageError(`study: no config file ${configPath}`);
    const modes = (['plan', 'dry-run', 'report-only'] as const).filter((m) => opts[m]);
    if (modes.length > 1) throw new UsageError(`study: --${modes.join(' and --')} cannot be combined`);
    if (opts.trial && opts['trial-index'] !== undefined) throw new UsageError('study: give --trial or --trial-index, not both');
    const claimTimeout = opts['claim-timeout'];
    if (!(claimTimeout > 0)) throw new UsageError(`study: --claim-timeout must be a positive number of seconds, got ${claimTimeout}`);
    if (opts.data !== undefined && !existsSync(opts.data)) throw new UsageError(`study: --data ${opts.data} does not exist`);
    const study = await import('../study/study_node.js');
    const cfg = study.loadStudyConfig(configPath, { dataOverride: opts.data });
    const out = opts.out;
    if (opts.plan) {
      console.log(JSON.stringify(study.planStudy(cfg), null, 2));
      return;
    }
    if (opts['report-only']) {
      const r = await study.writeStudyOutputs(cfg, { out });
      if (r.missing.length) console.error(`not finished: ${r.missing.join(', ')}`);
      if (r.stale.length) console.error(`left out (results from other settings; run the study to redo them): ${r.stale.join(', ')}`);
      console.log(`${r.results.length} of ${cfg.trials.length} trial(s) merged; report: ${r.reportPath}`);
      return;
    }
    if (!existsSync(cfg.data)) throw new UsageError(`study: data folder ${cfg.data} does not exist (set "data" in ${configPath}, relative to it, or pass --data DIR)`);
    let only: string[] | undefined;
    if (opts.trial) only = [opts.trial];
    else if (opts['trial-index'] !== undefined) {
      const i = study.resolveTrialIndex(opts['trial-index'], cfg.trials.length);
      only = [cfg.trials[i].name];
      console.error(`study: trial ${i} of ${cfg.trials.length}: ${only[0]}`);
    }
    const { createContext } = await import('../runtime/device.js');
    const ctx = await createContext();
    if (opts['dry-run']) {
      try {
        const plan = await study.estimateStudy(cfg, ctx);
        console.log(study.formatPlan(plan));
      } finally {
        ctx.destroy();
      }
      return;
    }
    const { abortOnSigint } = await import('./cmd_train.js');
    const ac = abortOnSigint();
    const bars = new Map<string, Progress>();
    const runOnce = () =>
      study.runStudy(cfg, {
        out,
        ctx,
        only,
        staleClaimSeconds: claimTimeout,
        signal: ac.signal,
        onLog: (l) => console.error(l),
        onStep: (name, _step, total) => {
          let b = bars.get(name);
          if (!b) bars.set(name, (b = new Progress(name, total, 'step')));
          b.tick();
        },
      });
    let r = await runOnce();
    // A task for one trial (a job-array task, --trial) must not report success while another worker holds its
    // trial: that worker may be a dead pod whose claim goes stale only after --claim-timeout. Wait and retry.
    while (only && r.claimedElsewhere.length > 0 && !ac.signal.aborted) {
      console.error(`study: waiting for ${r.claimedElsewhere.map((c) => c.name).join(', ')} (held by another worker; taken over when its heartbeat is older than ${claimTimeout} s)`);
      await new Promise((done) => setTimeout(done, Math.min(30, claimTimeout / 4) * 1000));
      r = await runOnce();
    }
    ctx.destroy();
    if (r.reused.length) console.error(`reused finished trials: ${r.reused.join(', ')}`);
    if (r.claimedElsewhere.length) console.error(`running in other workers: ${r.claimedElsewhere.map((c) => c.name).join(', ')} (merge later with --report-only)`);
    console.log(`${r.results.length} of ${cfg.trials.length} trial(s) done (${r.ran.length} run here); report: ${r.reportPath}`);
  },
});

export const benchCommand = defineCommand({
  name: 'bench',
  summary: 'benchmark kernels, G forward and a training step (in a checkout of the repository); device self-test otherwise',
  usage: 'bench [--config small|256|512x1024|all] [--browser] [--json FILE]',
  // No declared defaults: an option given explicitly must be honoured or refused, never silently dropped
  // (the published package has no benchmark and would otherwise run the self-test in its place).
  options: {
    config: { type: 'string', description: 'model configuration (default small)', choices: ['small', '256', '512x1024', 'all'] },
    json: { type: 'string', arg: 'FILE', description: 'write all results as JSON' },
    repeats: { type: 'count', min: 1, description: 'timed repetitions, median reported (default 10)' },
    browser: { type: 'boolean', description: 'run the same cases in headless Chromium (puppeteer-core, system chromium)' },
  },
  epilog: [
    'The benchmark and its TF.js comparison live in the repository (npm run bench builds dist/bench/cli.js); the',
    'published package leaves dist/bench out (package.json "files"), so there `bench` without options runs the',
    'device self-test, and `bench` with options stops and says so.',
  ].join('\n'),
  async run(opts) {
    const { fileURLToPath } = await import('node:url');
    const benchPath = fileURLToPath(new URL('./bench/cli.js', import.meta.url));
    const given = [opts.config && '--config', opts.repeats !== undefined && '--repeats', opts.json && '--json', opts.browser && '--browser'].filter((x): x is string => !!x);
    if (!existsSync(benchPath)) {
      if (given.length) {
        throw new UsageError(
          `${given.join(', ')} need the benchmark (${benchPath}), which the published package does not include; ` +
            'in a checkout of the repository run `npm run bench -- ' + given.join(' ') + ' ...`, or run `bench` without options for the device self-test',
        );
      }
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
    const args = ['--config', opts.config ?? 'small', '--repeats', String(opts.repeats ?? 10), ...(opts.json ? ['--json', opts.json] : []), ...(opts.browser ? ['--browser'] : [])];
    // The benchmark parses process.argv when it loads (it is its own program), so hand it ours.
    process.argv = [process.argv[0], benchPath, ...args];
    await import(benchPath);
  },
});
