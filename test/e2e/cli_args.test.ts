// The built CLI refusing bad arguments the way a new user meets them: every refusal is one line that names the
// flag or file, exit code 2, and comes before any GPU work — so these all run with no Vulkan driver reachable
// (NO_GPU_ENV): a command that touched the GPU first would fail with "No WebGPU adapter" instead.
import { describe, it, expect, beforeAll } from 'vitest';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { CLI, NO_GPU_ENV, ROOT, cli, said } from './cli_helpers.js';

const run = (args: string[]) => cli(args, { env: NO_GPU_ENV });

/** One line from the CLI, exit 2, matching `re`; never Node's parseArgs wording or a bare errno. */
async function refused(args: string[], re: RegExp): Promise<string> {
  const r = await run(args);
  const lines = said(r);
  expect(r.code, `${args.join(' ')}\n${r.err}`).toBe(2);
  expect(lines, r.err).toHaveLength(1);
  expect(lines[0]).toMatch(re);
  expect(lines[0]).not.toMatch(/ambiguous|positional argument|ENOENT|adapter|Vulkan/i);
  // The command's name is printed once, by main ("pix2pix-webgpu train: ..."), not repeated by the message.
  expect(lines[0]).not.toMatch(/(\w+): \1: /);
  return lines[0];
}

describe('CLI arguments', () => {
  let dir: string;
  let fakeG: string;
  beforeAll(() => {
    expect(existsSync(CLI), `${CLI}: run npm run build`).toBe(true);
    dir = mkdtempSync(join(tmpdir(), 'cli-args-'));
    // Arguments are checked before the weights are read, so a placeholder file stands in for a generator here.
    fakeG = join(dir, 'G.safetensors');
    writeFileSync(fakeG, 'not read');
  });

  it('numbers: integers must be integers, counts non-negative, a negative value is a range error naming the flag', async () => {
    const data = ['--dataroot', '/nonexistent-data'];
    await Promise.all([
      refused(['train', ...data, '--batch_size', '1.5'], /--batch_size expects an integer, got '1\.5'/),
      refused(['train', ...data, '--n_epochs=-3'], /--n_epochs must be an integer >= 0, got -3/),
      refused(['train', ...data, '--lr', '-5'], /--lr must be > 0, got -5/),
      refused(['train', ...data, '--ngf', 'lots'], /--ngf expects an integer, got 'lots'/),
      refused(['train', ...data, '--output_nc', '2'], /--output_nc must be one of 1, 3, got '2'/),
      refused(['synth', '--out', join(dir, 'never'), '--animals', '-3'], /--animals must be an integer >= 2, got -3/),
      refused(['synth', '--out', join(dir, 'never'), '--poses', '0'], /--poses must be an integer >= 1, got 0/),
      refused(['synth', '--out', '/dev/null/data', '--animals', '2', '--poses', '1', '--size', '8x8'], /--out \/dev\/null\/data: cannot create this folder \(ENOTDIR\)/),
      refused(['translate', '--seed', '0x10'], /--seed expects an integer, got '0x10'/),
      // demo --epochs 0 used to start, synthesise and then crash with ENOENT on a missing checkpoint.
      refused(['demo', '--out', join(dir, 'never'), '--epochs', '0'], /--epochs must be an integer >= 1, got 0/),
      refused(['demo', '--out', join(dir, 'never'), '--animals', '3'], /--animals must be an integer >= 4, got 3/),
    ]);
    expect(existsSync(join(dir, 'never'))).toBe(false);
  });

  it('an unknown flag gets the closest known one; a forgotten value names its flag', async () => {
    await refused(['train', '--batchsize', '2'], /unknown option --batchsize; did you mean --batch_size\? \(see train --help\)/);
    await refused(['train', '--epochs', '2'], /unknown option --epochs; did you mean --n_epochs\?/);
    await refused(['translate', '--chekpoint', 'x'], /unknown option --chekpoint; did you mean --checkpoint\?/);
    await refused(['evaluate', '--completely-unrelated'], /^pix2pix-webgpu evaluate: unknown option --completely-unrelated \(see evaluate --help\)$/);
    await refused(['translate', '--checkpoint', '--input', 'x'], /--checkpoint expects a value \(FILE\|DIR\), got the flag --input/);
    const cmd = await run(['tranlsate']);
    expect(cmd.code).toBe(2);
    expect(cmd.err).toMatch(/unknown command 'tranlsate'; did you mean 'translate'\?/);
  });

  it('both spellings of every flag: --no_dropout and --no-dropout, --batch_size and --batch-size, everywhere', async () => {
    const runs: Promise<void>[] = [];
    for (const args of [
      ['train', '--no-dropout'],
      ['train', '--no_dropout'],
      ['train', '--batch-size', '2', '--lambda-L1', '10'],
      ['translate', '--no_dropout'],
      ['translate', '--no-dropout', '--aligned-a'],
      ['translate', '--aligned_a'],
      ['evaluate', '--ssim_mode', 'gaussian'],
      ['evaluate', '--ssim-mode=gaussian'],
      ['synth', '--test_animals', '2'],
      ['synth', '--test-animals', '2'],
    ]) {
      runs.push(run([...args, '--help']).then((r) => expect(r.code, `${args.join(' ')}: ${r.err}`).toBe(0)));
    }
    await Promise.all(runs);
  });

  it('a missing --checkpoint or --input path is named with its flag, before any GPU work', async () => {
    const out = join(dir, 'out-missing');
    await refused(['translate', '--checkpoint', '/nonexistent/G.pth', '--input', join(ROOT, 'docs/phantoms'), '--out', out], /--checkpoint \/nonexistent\/G\.pth: no such file or folder/);
    await refused(['translate', '--checkpoint', fakeG, '--input', '/nonexistent/photos', '--out', out], /--input \/nonexistent\/photos: no such file or folder/);
    await refused(['translate', '--checkpoint', dir, '--input', join(ROOT, 'docs/phantoms'), '--out', out], /--checkpoint .*: no latest_net_G\.safetensors or latest_net_G\.pth in this folder/);
    expect(existsSync(out)).toBe(false);
    // train's path flags likewise (the data folder exists; the flag's path does not).
    const data = join(ROOT, 'docs/phantoms');
    await refused(['train', '--dataroot', data, '--augment', '/nonexistent/aug.json'], /--augment \/nonexistent\/aug\.json: no such file$/);
    await refused(['train', '--dataroot', data, '--init', '/nonexistent/run'], /--init \/nonexistent\/run: no such file or folder$/);
    await refused(['train', '--dataroot', join(data, 'nope')], /--dataroot .*nope: no such folder$/);
  });

  it('evaluate on a nonexistent folder says so, naming the flag, without creating a GPU device', async () => {
    await refused(['evaluate', '--real', '/nonexistent/real', '--fake', dir], /--real \/nonexistent\/real: no such folder/);
    await refused(['evaluate', '--real', join(ROOT, 'docs/phantoms'), '--fake', '/nonexistent/fake'], /--fake \/nonexistent\/fake: no such folder/);
    await refused(['evaluate', '--real', join(ROOT, 'docs/phantoms'), '--fake', dir, '--waem_weights', '{a:1'], /--waem_weights expects JSON/);
  });

  it('translate refuses an output folder that is the input folder, inside it, or a link to it; the photos are untouched', async () => {
    const photos = join(dir, 'photos');
    mkdirSync(photos, { recursive: true });
    cpSync(join(ROOT, 'docs/phantoms'), photos, { recursive: true });
    const before = readdirSync(photos).sort();
    await refused(['translate', '--checkpoint', fakeG, '--input', photos, '--out', photos], /--out .*photos is the input folder/);
    await refused(['translate', '--checkpoint', fakeG, '--input', `${photos}/`, '--out', join(photos, '.', 'sub', '..')], /is the input folder/);
    await refused(['translate', '--checkpoint', fakeG, '--input', photos, '--out', join(photos, 'translated')], /--out .*translated is inside the input folder/);
    const { symlinkSync } = await import('node:fs');
    symlinkSync(photos, join(dir, 'link-to-photos'));
    await refused(['translate', '--checkpoint', fakeG, '--input', photos, '--out', join(dir, 'link-to-photos', 'x')], /is inside the input folder/);
    // One image given as the input, and the output folder its own folder: its translation would replace it.
    const one = join(photos, before.find((f) => f.endsWith('.png'))!);
    await refused(['translate', '--checkpoint', fakeG, '--input', one, '--out', photos], /would overwrite the input/);
    expect(readdirSync(photos).sort()).toEqual(before);
  });

  it('translate refuses two inputs that would be written to one output name, naming both', async () => {
    const photos = join(dir, 'collide');
    mkdirSync(photos, { recursive: true });
    const png = join(ROOT, 'docs/phantoms', readdirSync(join(ROOT, 'docs/phantoms')).find((f) => f.endsWith('.png'))!);
    cpSync(png, join(photos, 'a.png'));
    cpSync(png, join(photos, 'a.jpg')); // sharp reads by content, not extension
    cpSync(png, join(photos, 'b.png'));
    const out = join(dir, 'collide-out');
    await refused(['translate', '--checkpoint', fakeG, '--input', photos, '--out', out], /a\.jpg and a\.png would both be written as .*a\.png/);
    expect(existsSync(out)).toBe(false);
  });

  it('bench in the published package (no dist/bench) refuses options it cannot honour instead of ignoring them', async () => {
    // The package as published: dist without dist/bench ("files" in package.json), inside the repo so that
    // node_modules resolves as it would for an installed package.
    const pkg = join(ROOT, 'test/.out/published-dist');
    rmSync(pkg, { recursive: true, force: true });
    cpSync(dirname(CLI), pkg, { recursive: true, filter: (src) => !src.startsWith(join(dirname(CLI), 'bench')) });
    expect(existsSync(join(pkg, 'bench'))).toBe(false);
    const r = await cli(['bench', '--config', '256', '--repeats', '3'], { env: NO_GPU_ENV, script: join(pkg, 'cli.js') });
    expect(r.code, r.err).toBe(2);
    expect(said(r).join('\n')).toMatch(/--config, --repeats need the benchmark .*bench\/cli\.js.*published package.*npm run bench/);
  });
});
