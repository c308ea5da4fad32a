// The built CLI's study command as users and cluster schedulers run it: the shipped examples from the repository
// root and from examples/ (paths relative to the config file), three workers started at once on one study
// folder (each trial runs exactly once, and the merged results equal a sequential run's), job-array indexes from
// the scheduler's variables, --plan, --dry-run and --report-only, and the cluster examples against the plan.
import { describe, it, expect, beforeAll } from 'vitest';
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';

const ROOT = resolve(import.meta.dirname, '../..');
// PIX2PIX_E2E_CLI: a private build while others rebuild dist/ in a shared checkout.
const CLI = process.env.PIX2PIX_E2E_CLI ?? join(ROOT, 'dist/cli.js');
const EXAMPLE = 'examples/study-small.json';

function cli(args: string[], o: { cwd?: string; env?: Record<string, string> } = {}): Promise<{ code: number | null; out: string; err: string }> {
  return new Promise((done) => {
    const child = spawn(process.execPath, [CLI, ...args], { cwd: o.cwd ?? ROOT, env: { ...process.env, ...o.env }, timeout: 600_000 });
    let out = '';
    let err = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (err += d));
    child.on('close', (code) => done({ code, out, err }));
  });
}

/** results.json without what legitimately differs between runs (timings). */
function results(dir: string): unknown[] {
  return (JSON.parse(readFileSync(join(dir, 'results.json'), 'utf8')) as Record<string, unknown>[]).map(({ seconds: _s, ...r }) => r);
}
const csvWithoutSeconds = (dir: string) =>
  readFileSync(join(dir, 'results.csv'), 'utf8')
    .trim()
    .split('\n')
    .map((l) => l.split(',').slice(0, -1).join(','));

let data: string;
let sequential: string;

beforeAll(async () => {
  // Tiny phantoms: 12 animals (25 white-bed and 25 black-bed training pairs), 32x64.
  data = mkdtempSync(join(tmpdir(), 'study-cli-data-'));
  const s = await cli(['synth', '--out', data, '--animals', '12', '--size', '32x64', '--test-animals', '2', '--seed', '3']);
  expect(s.code, s.err).toBe(0);
});

describe('study CLI', () => {
  it('every example that study --help and the README name exists; every shipped config loads and plans', async () => {
    const help = await cli(['study', '--help']);
    expect(help.code).toBe(0);
    const readme = readFileSync(join(ROOT, 'README.md'), 'utf8');
    const named = new Set([...`${help.out}\n${readme}`.matchAll(/examples\/[\w./-]*\w/g)].map((m) => m[0]));
    expect(named.has(EXAMPLE)).toBe(true);
    for (const p of named) expect(existsSync(join(ROOT, p)), `${p} is named but missing`).toBe(true);
    for (const f of readdirSync(join(ROOT, 'examples')).filter((n) => n.endsWith('.json'))) {
      const r = await cli(['study', '--config', `examples/${f}`, '--plan']);
      expect(r.code, `${f}: ${r.err}`).toBe(0);
      expect(JSON.parse(r.out).trials.length).toBeGreaterThan(0);
    }
  });

  it('paths in a config are relative to the config file, from the repository root or from examples/', async () => {
    const fromRoot = await cli(['study', '--config', EXAMPLE, '--plan']);
    const fromExamples = await cli(['study', '--config', 'study-small.json', '--plan'], { cwd: join(ROOT, 'examples') });
    expect(fromRoot.code, fromRoot.err).toBe(0);
    expect(fromExamples.code, fromExamples.err).toBe(0);
    expect(JSON.parse(fromRoot.out).data).toBe(join(ROOT, 'demo-out/data'));
    expect(fromExamples.out).toBe(fromRoot.out);
  });

  it('runs the shipped example (sequentially), then reuses every finished trial', async () => {
    sequential = mkdtempSync(join(tmpdir(), 'study-seq-'));
    // From examples/: the augmentation spec (../docs/...) must resolve against the config, --data against the cwd.
    const r = await cli(['study', '--config', 'study-small.json', '--data', data, '--out', sequential], { cwd: join(ROOT, 'examples') });
    expect(r.code, r.err).toBe(0);
    expect(r.out).toMatch(/4 of 4 trial\(s\) done \(4 run here\)/);
    const rows = results(sequential) as { name: string; effectivePairs: number; settings: { imageSize: string; steps: number } }[];
    expect(rows.map((x) => [x.name, x.effectivePairs, x.settings.imageSize, x.settings.steps])).toEqual([
      ['n10', 10, '32x64', 20],
      ['n20', 20, '32x64', 40],
      ['aug-10-to-30', 30, '32x64', 60],
      ['transfer-w2b', 10, '32x64', 60],
    ]);
    const again = await cli(['study', '--config', EXAMPLE, '--data', data, '--out', sequential]);
    expect(again.code, again.err).toBe(0);
    expect(again.out).toMatch(/4 of 4 trial\(s\) done \(0 run here\)/);
    expect(again.err).toMatch(/reused finished trials: n10, n20, aug-10-to-30, transfer-w2b/);
  });

  it('three workers at once on one folder: each trial runs exactly once; the merged report equals the sequential run', async () => {
    expect(sequential, 'needs the sequential run above').toBeTruthy();
    const out = mkdtempSync(join(tmpdir(), 'study-par-'));
    const workers = await Promise.all([0, 1, 2].map(() => cli(['study', '--config', EXAMPLE, '--data', data, '--out', out])));
    for (const w of workers) expect(w.code, w.err).toBe(0);
    const logs = workers.map((w) => w.err).join('\n');
    for (const t of ['n10', 'n20', 'aug-10-to-30', 'transfer-w2b']) {
      expect(logs.match(new RegExp(`\\[${t}\\] training on`, 'g')) ?? [], t).toHaveLength(1);
      const steps = readFileSync(join(out, 'trials', t, 'checkpoints/loss_log.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l).step);
      expect(steps, t).toEqual(steps.map((_: number, i: number) => i + 1));
      expect(existsSync(join(out, 'trials', t, 'claim.json')), `${t} claim released`).toBe(false);
    }
    expect(logs.match(/\[transfer-w2b\] pretraining on/g) ?? []).toHaveLength(1);
    const ranHere = workers.map((w) => Number(/\((\d+) run here\)/.exec(w.out)![1]));
    expect(ranHere.reduce((a, b) => a + b, 0)).toBe(4);
    const merged = await cli(['study', '--config', EXAMPLE, '--data', data, '--out', out, '--report-only']);
    expect(merged.code, merged.err).toBe(0);
    expect(merged.out).toMatch(/4 of 4 trial\(s\) merged; report: .*report\.html/);
    expect(results(out)).toEqual(results(sequential));
    expect(csvWithoutSeconds(out)).toEqual(csvWithoutSeconds(sequential));
    expect(readFileSync(join(out, 'report.html'), 'utf8')).toContain('transfer-w2b');

    // A job-array task: the index comes from the scheduler's variable; a finished trial is not run again.
    const cases: [Record<string, string>, string][] = [
      [{ SLURM_ARRAY_TASK_ID: '1' }, 'n20'],
      [{ JOB_COMPLETION_INDEX: '3' }, 'transfer-w2b'],
    ];
    for (const [env, name] of cases) {
      const t = await cli(['study', '--config', EXAMPLE, '--data', data, '--out', out, '--trial-index', 'env'], { env: { SLURM_ARRAY_TASK_ID: '', JOB_COMPLETION_INDEX: '', ...env } });
      expect(t.code, t.err).toBe(0);
      expect(t.err).toContain(`trial ${Object.values(env)[0]} of 4: ${name}`);
      expect(t.out).toMatch(/\(0 run here\)/);
    }
    const bad = await cli(['study', '--config', EXAMPLE, '--data', data, '--out', out, '--trial-index', '4']);
    expect(bad.code).not.toBe(0);
    expect(bad.err).toMatch(/trial index 4 is out of range: the study has 4 trials/);
  });

  it('--dry-run prints trials, pair counts, steps and an estimated time on this adapter', async () => {
    const r = await cli(['study', '--config', EXAMPLE, '--data', data, '--dry-run']);
    expect(r.code, r.err).toBe(0);
    expect(r.out).toMatch(/aug-10-to-30\s+augment\s+10\s+30\s+2\s+60 .*augment to 30/);
    expect(r.out).toMatch(/total: 180 training steps/);
    expect(r.out).toMatch(/estimated time: [\d.]+ (s|min) on .* s\/step; median of \d+ timed steps of this network at 32x64/);
  });

  it('the cluster examples run the trials of the plan they name', async () => {
    const slurm = readFileSync(join(ROOT, 'examples/cluster/study-slurm.sh'), 'utf8');
    const job = readFileSync(join(ROOT, 'examples/cluster/study-indexed-job.yaml'), 'utf8');
    const plan = JSON.parse((await cli(['study', '--config', 'examples/study-seed.json', '--plan'])).out) as { trials: unknown[] };
    const n = plan.trials.length;
    expect(slurm).toContain(`#SBATCH --array=0-${n - 1}`);
    expect(slurm).toMatch(/CONFIG=\$\{CONFIG:-examples\/study-seed\.json\}/);
    expect(slurm).toContain('--trial-index env');
    expect(job).toContain(`completions: ${n}`);
    expect(job).toContain('completionMode: Indexed');
    expect(job).toMatch(/"--config", "examples\/study-seed\.json"/);
    expect(job).toMatch(/"--trial-index", "env"/);
  });
});
