// Shared by the end-to-end CLI tests: run the BUILT CLI (dist/cli.js) as a user does, without blocking the
// vitest worker (a blocking spawnSync starves vitest's RPC and fails the run).
import { spawn } from 'node:child_process';
import { join, resolve } from 'node:path';

export const ROOT = resolve(import.meta.dirname, '../..');
/** The built CLI; PIX2PIX_E2E_CLI points these tests at another build (e.g. of an older commit, to see them fail there). */
export const CLI = process.env.PIX2PIX_E2E_CLI ?? join(ROOT, 'dist/cli.js');

export interface CliResult {
  code: number | null;
  out: string;
  err: string;
}

/** `node dist/cli.js ...args`; `env` is added to this process's environment. */
export function cli(args: string[], opts: { env?: Record<string, string>; timeoutMs?: number; script?: string } = {}): Promise<CliResult> {
  return new Promise((done) => {
    const child = spawn(process.execPath, [opts.script ?? CLI, ...args], { cwd: ROOT, timeout: opts.timeoutMs ?? 600_000, env: { ...process.env, ...opts.env } });
    let out = '';
    let err = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (err += d));
    child.on('close', (code) => done({ code, out, err }));
  });
}

/** stderr without the Vulkan loader's and Dawn's own warnings: what the CLI itself said. */
export function said(r: CliResult): string[] {
  return r.err
    .split('\n')
    .filter((l) => l.trim() && !/^Warning:|^\s+at |maxDynamic/.test(l))
    .map((l) => l.replace(/\r/g, ''));
}

/** A Vulkan loader pointed at a driver list that does not exist: any attempt to create a GPU device fails. */
export const NO_GPU_ENV = { VK_ICD_FILENAMES: '/nonexistent/no-driver.json' };
