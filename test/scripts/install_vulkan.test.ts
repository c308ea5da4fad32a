// scripts/install-vulkan.sh as `npm run demo` meets it: a non-root user on a machine whose driver works must
// get exit 0 without apt being called; without a usable driver and without sudo it prints the commands and
// fails; it never adds a second bookworm-backports source. apt-get and sudo are fakes first on PATH that
// record their calls (so nothing is installed). As root, the script runs as `nobody` (runuser).
import { describe, it, expect } from 'vitest';
import { spawn } from 'node:child_process';
import { chmodSync, copyFileSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';

const ROOT = resolve(import.meta.dirname, '../..');
const SCRIPT = join(ROOT, 'scripts/install-vulkan.sh');
const asRoot = process.getuid?.() === 0;

function fakeBin(withSudo: boolean): { bin: string; log: string } {
  const dir = mkdtempSync(join(tmpdir(), 'fake-apt-'));
  chmodSync(dir, 0o777);
  const log = join(dir, 'calls.log');
  writeFileSync(log, '');
  chmodSync(log, 0o666);
  const bin = join(dir, 'bin');
  mkdirSync(bin);
  chmodSync(bin, 0o755);
  const tools = withSudo ? ['apt-get', 'apt', 'sudo'] : ['apt-get', 'apt'];
  for (const t of tools) {
    writeFileSync(join(bin, t), `#!/bin/sh\necho "${t} $*" >> ${log}\nexit 0\n`);
    chmodSync(join(bin, t), 0o755);
  }
  return { bin, log };
}

/** Run `bash script` as a non-root user with `bin` first on PATH (node stays reachable for the Dawn probe). */
function runScript(script: string, bin: string, env: Record<string, string> = {}): Promise<{ code: number | null; out: string; err: string }> {
  const PATH = [bin, dirname(process.execPath), '/usr/local/sbin', '/usr/local/bin', '/usr/sbin', '/usr/bin', '/sbin', '/bin'].join(':');
  const cmd = asRoot ? 'runuser' : 'bash';
  const args = asRoot ? ['-u', 'nobody', '--', 'env', `PATH=${PATH}`, 'bash', script] : [script];
  return new Promise((done) => {
    const child = spawn(cmd, args, { cwd: tmpdir(), env: { PATH, HOME: tmpdir(), ...env }, timeout: 120_000 });
    let out = '';
    let err = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (err += d));
    child.on('close', (code) => done({ code, out, err }));
  });
}

describe('scripts/install-vulkan.sh', () => {
  it('exits 0 without calling apt or sudo when Dawn finds an adapter (non-root user)', async () => {
    const { bin, log } = fakeBin(true);
    const r = await runScript(SCRIPT, bin);
    expect(r.code, r.err).toBe(0);
    expect(r.out).toMatch(/already installed/);
    expect(readFileSync(log, 'utf8')).toBe('');
  });

  it('without node_modules/webgpu, any ICD file counts, even when one ICD folder is empty (nullglob)', async () => {
    // A copy of the script outside the repository cannot ask Dawn, so it must look at the ICD files.
    const root = mkdtempSync(join(tmpdir(), 'iv-'));
    chmodSync(root, 0o755);
    mkdirSync(join(root, 'scripts'));
    chmodSync(join(root, 'scripts'), 0o755);
    copyFileSync(SCRIPT, join(root, 'scripts/install-vulkan.sh'));
    chmodSync(join(root, 'scripts/install-vulkan.sh'), 0o755);
    // An ICD file named by VK_ICD_FILENAMES is a driver too; use it so the case holds on any machine.
    const icd = join(root, 'my_icd.json');
    writeFileSync(icd, '{"file_format_version":"1.0.0","ICD":{"library_path":"libvulkan_lvp.so","api_version":"1.3.0"}}');
    chmodSync(icd, 0o644);
    const { bin, log } = fakeBin(true);
    const r = await runScript(join(root, 'scripts/install-vulkan.sh'), bin, { VK_ICD_FILENAMES: icd });
    expect(r.code, r.err).toBe(0);
    expect(r.out).toContain('ICD file found');
    expect(readFileSync(log, 'utf8')).toBe('');
    // The machine's own ICD files (Debian: /usr/share/vulkan/icd.d has lavapipe's, /etc/vulkan/icd.d is empty).
    const system = ['/usr/share/vulkan/icd.d', '/etc/vulkan/icd.d'].some((d) => existsSync(d) && readdirSync(d).some((f) => f.endsWith('.json')));
    if (system) {
      const r2 = await runScript(join(root, 'scripts/install-vulkan.sh'), bin);
      expect(r2.code, r2.err).toBe(0);
      expect(r2.out).toContain('ICD file found');
      expect(readFileSync(log, 'utf8')).toBe('');
    }
  });

  it('without a usable driver and without sudo: prints the exact root commands, exits non-zero, never runs apt', async () => {
    if (existsSync('/usr/bin/sudo') || existsSync('/bin/sudo')) return; // a real sudo would be found after the fakes
    const { bin, log } = fakeBin(false);
    // A Vulkan loader pointed at a file that does not exist finds no driver: Dawn returns no adapter.
    const r = await runScript(SCRIPT, bin, { VK_ICD_FILENAMES: '/nonexistent/icd.json' });
    expect(r.code).not.toBe(0);
    expect(r.err).toMatch(/needs root \(no sudo here\)\. As root, run:/);
    expect(r.err).toMatch(/apt-get update -qq/);
    expect(r.err).toMatch(/apt-get install -y -qq .*mesa-vulkan-drivers/);
    expect(r.err).not.toMatch(/command not found/);
    expect(readFileSync(log, 'utf8')).toBe('');
  });

  it('with sudo and no usable driver: installs through sudo and adds no backports source that already exists', async () => {
    const { bin, log } = fakeBin(true);
    const r = await runScript(SCRIPT, bin, { VK_ICD_FILENAMES: '/nonexistent/icd.json' });
    const calls = readFileSync(log, 'utf8');
    // The fake sudo installs nothing, so the script ends by saying there is still no adapter.
    expect(r.code).not.toBe(0);
    expect(r.err).toMatch(/still no WebGPU adapter/);
    expect(calls).toMatch(/^sudo bash -c apt-get update -qq$/m);
    expect(calls).toMatch(/^sudo bash -c .*apt-get install -y -qq .*mesa-vulkan-drivers$/m);
    if (/bookworm-backports/.test(aptSources())) expect(calls).not.toMatch(/sources\.list\.d/);
    else if (/VERSION_CODENAME=bookworm/.test(readFileSync('/etc/os-release', 'utf8'))) expect(calls).toMatch(/bookworm-backports main' > /);
  });
});

/** The text of every apt source file (the script must not add a source one of them already names). */
function aptSources(): string {
  const d = '/etc/apt/sources.list.d';
  const files = ['/etc/apt/sources.list', ...(existsSync(d) ? readdirSync(d).map((n) => join(d, n)) : [])];
  return files.filter((p) => existsSync(p) && statSync(p).isFile()).map((p) => readFileSync(p, 'utf8')).join('\n');
}
