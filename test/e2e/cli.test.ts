// The built CLI as a user runs it: --help of every command, the demo at a tiny size (what it writes),
// and a training run killed with SIGKILL mid-way then resumed, ending exactly where an uninterrupted run ends.
import { describe, it, expect } from 'vitest';
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { parseSafetensors } from '../../src/io/safetensors.js';

const ROOT = resolve(import.meta.dirname, '../..');
const CLI = process.env.PIX2PIX_E2E_CLI ?? join(ROOT, 'dist/cli.js');

/** Run the CLI without blocking this worker (a blocking spawnSync starves vitest's RPC and fails the run). */
function cli(args: string[], timeoutMs = 600_000): Promise<{ code: number | null; out: string; err: string }> {
  return new Promise((done) => {
    const child = spawn(process.execPath, [CLI, ...args], { cwd: ROOT, timeout: timeoutMs });
    let out = '';
    let err = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (err += d));
    child.on('close', (code) => done({ code, out, err }));
  });
}

describe('CLI', () => {
  it('is built (npm test builds it first)', () => expect(existsSync(CLI), `${CLI}: run npm run build`).toBe(true));

  it('--help for the tool and every command', async () => {
    const top = await cli(['--help']);
    expect(top.code).toBe(0);
    for (const cmd of ['demo', 'synth', 'train', 'translate', 'evaluate', 'study', 'bench']) {
      expect(top.out).toContain(`  ${cmd}`);
      const h = await cli([cmd, '--help']);
      expect(h.code, cmd).toBe(0);
      expect(h.out).toMatch(new RegExp(`^pix2pix-webgpu ${cmd}: `));
      expect(h.out).toContain('Usage: pix2pix-webgpu');
      expect(h.out).toContain('--help');
    }
    expect((await cli(['train', '--help'])).out).toMatch(/--lambda_L1 N\s+weight of the L1 loss \(>= 0; default 100\)/);
    expect((await cli(['train', '--help'])).out).toMatch(/--batch_size N\s+batch size \(integer >= 1; default 1\)/);
    expect((await cli(['translate', '--help'])).out).toContain('--checkpoint FILE|DIR');
  });

  it('bad input is one clear line and a non-zero exit', async () => {
    const unknown = await cli(['frobnicate']);
    expect(unknown.code).toBe(2);
    expect(unknown.err).toMatch(/unknown command 'frobnicate'/);
    const flag = await cli(['train', '--no-such-flag']);
    expect(flag.code).toBe(2);
    expect(flag.err.trim().split('\n')).toHaveLength(1);
    const missing = await cli(['translate', '--checkpoint', '/nonexistent.pth', '--input', join(ROOT, 'docs/phantoms'), '--out', tmpdir()]);
    expect(missing.code).toBe(2);
    expect(missing.err).toMatch(/--checkpoint \/nonexistent\.pth: no such file/);
    expect(missing.err.trim().split('\n').filter((l) => !l.startsWith('Warning:'))).toHaveLength(1);
  });

  it('demo at a tiny size writes data, checkpoints, metrics and a report with charts and the image grid', async () => {
    const out = mkdtempSync(join(tmpdir(), 'demo-'));
    const r = await cli(['demo', '--out', out, '--size', '32x64', '--animals', '8', '--epochs', '1']);
    expect(r.code, r.err).toBe(0);
    expect(r.out).toMatch(/report: .*report\.html/);
    expect(existsSync(join(out, 'data/manifest.json'))).toBe(true);
    const trials = readdirSync(join(out, 'study/trials'));
    expect(trials.length).toBeGreaterThanOrEqual(4);
    for (const t of trials) {
      expect(existsSync(join(out, 'study/trials', t, 'checkpoints/latest_net_G.safetensors')), t).toBe(true);
      const m = JSON.parse(readFileSync(join(out, 'study/trials', t, 'metrics.json'), 'utf8'));
      expect(m.n).toBeGreaterThan(0);
      for (const k of ['mse', 'nrmse', 'psnr', 'ssim', 'waem']) expect(Number.isFinite(m.mean[k]), `${t} ${k}`).toBe(true);
    }
    const results = JSON.parse(readFileSync(join(out, 'study/results.json'), 'utf8'));
    expect(results.map((x: { name: string }) => x.name).sort()).toEqual([...trials].sort());
    const html = readFileSync(join(out, 'study/report.html'), 'utf8');
    expect(html).toContain('id="metric-charts"');
    expect((html.match(/<svg /g) ?? []).length).toBeGreaterThanOrEqual(5 + trials.length);
    // The grid shows one seed per size point (n8-s0 for n8-s0..s2): photo, truth and one column per point.
    const points = new Set(trials.map((t) => t.replace(/-s\d+$/, ''))).size;
    expect((html.match(/<img src="data:image\/png;base64,/g) ?? []).length).toBeGreaterThanOrEqual(4 * (points + 2));
  });

  it('train killed with SIGKILL and resumed ends with the weights of an uninterrupted run', async () => {
    const data = mkdtempSync(join(tmpdir(), 'data-'));
    expect((await cli(['synth', '--out', data, '--animals', '3', '--poses', '2', '--size', '32x32', '--seed', '4'])).code).toBe(0);
    const common = ['--dataroot', data, '--num_downs', '5', '--ngf', '2', '--ndf', '2', '--output_nc', '1', '--n_epochs', '2', '--n_epochs_decay', '2', '--preprocess', 'none', '--seed', '3'];
    const full = mkdtempSync(join(tmpdir(), 'full-'));
    expect((await cli(['train', ...common, '--checkpoints', full])).code).toBe(0);

    const killed = mkdtempSync(join(tmpdir(), 'killed-'));
    const child = spawn(process.execPath, [CLI, 'train', ...common, '--checkpoints', killed], { cwd: ROOT, stdio: 'ignore' });
    // Kill once a few steps are logged (mid-run, possibly mid-save).
    await new Promise<void>((done) => {
      const timer = setInterval(() => {
        const log = join(killed, 'loss_log.jsonl');
        if (existsSync(log) && readFileSync(log, 'utf8').split('\n').filter(Boolean).length >= 5) {
          child.kill('SIGKILL');
          clearInterval(timer);
          done();
        }
      }, 20);
      child.on('exit', () => {
        clearInterval(timer);
        done();
      });
    });
    const resumed = await cli(['train', ...common, '--checkpoints', killed, '--resume']);
    expect(resumed.code, resumed.err).toBe(0);
    const a = parseSafetensors(readFileSync(join(full, 'latest_net_G.safetensors')));
    const b = parseSafetensors(readFileSync(join(killed, 'latest_net_G.safetensors')));
    for (const [k, v] of a) expect(Array.from(b.get(k)!.data), k).toEqual(Array.from(v.data));
    const steps = (dir: string) => readFileSync(join(dir, 'loss_log.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l).step);
    expect(steps(killed)).toEqual(steps(full));
  });
});
