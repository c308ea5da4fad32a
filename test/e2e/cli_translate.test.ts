// The tool's own outputs feed its own commands: translate the folder `train` wrote, translate the test folder
// `synth` wrote as it is (aligned photo | X-ray, with our manifest), evaluate that test folder against the
// translations, and the JSON of an infinite PSNR. One tiny model (2 training pairs at 32x32, 1 epoch) trained
// once for the whole file.
import { describe, it, expect, beforeAll } from 'vitest';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import { CLI, cli, said } from './cli_helpers.js';
import { parseSafetensorsFile, serializeSafetensors } from '../../src/io/safetensors.js';

const meta = (p: string) => sharp(p).metadata();

describe('CLI on its own outputs', () => {
  let dir: string;
  let data: string;
  let ck: string;
  beforeAll(async () => {
    expect(existsSync(CLI), `${CLI}: run npm run build`).toBe(true);
    dir = mkdtempSync(join(tmpdir(), 'cli-own-'));
    data = join(dir, 'data');
    ck = join(dir, 'checkpoints');
    const s = await cli(['synth', '--out', data, '--animals', '4', '--poses', '1', '--size', '32x32', '--seed', '2', '--test-animals', '2']);
    expect(s.code, s.err).toBe(0);
    const t = await cli(['train', '--dataroot', data, '--checkpoints', ck, '--num_downs', '5', '--ngf', '4', '--ndf', '4', '--output_nc', '1', '--n_epochs', '1', '--n_epochs_decay', '0', '--preprocess', 'none']);
    expect(t.code, t.err).toBe(0);
    // A training folder holds D and the optimizer beside G: translate must read G only.
    expect(readdirSync(ck)).toEqual(expect.arrayContaining(['latest_net_G.safetensors', 'latest_net_D.safetensors', 'latest_optim.safetensors']));
  });

  it('translates the test folder synth wrote, as it is, with the folder train wrote: the photo half, gray, one PNG per input', async () => {
    const out = join(dir, 'translated');
    const r = await cli(['translate', '--checkpoint', ck, '--input', join(data, 'test'), '--out', out]);
    expect(r.code, r.err).toBe(0);
    const inputs = readdirSync(join(data, 'test')).sort();
    expect(inputs).toHaveLength(2);
    expect(readdirSync(out).sort()).toEqual(inputs);
    // The count printed is the count on disk.
    expect(r.out).toContain(`wrote ${inputs.length} image(s) to ${out}`);
    expect(said(r).join('\n')).toMatch(/aligned photo \| target dataset .*manifest\.json.*left\) half/);
    for (const f of inputs) {
      expect((await meta(join(data, 'test', f))).width).toBe(64);
      // The photo half (32 px), not the photo+X-ray pair (64 px); gray, as the 1-channel generator makes it.
      expect(await meta(join(out, f)), f).toMatchObject({ width: 32, height: 32, channels: 1, depth: 'uchar' });
    }
    const deep = join(dir, 'translated16');
    expect((await cli(['translate', '--checkpoint', ck, '--input', join(data, 'test'), '--out', deep, '--16bit'])).code).toBe(0);
    expect(await meta(join(deep, inputs[0]))).toMatchObject({ width: 32, channels: 1, depth: 'ushort' });

    // evaluate takes the same test folder as ground truth (its X-ray half) against the translations.
    const json = join(dir, 'metrics.json');
    const e = await cli(['evaluate', '--real', join(data, 'test'), '--fake', out, '--json', json]);
    expect(e.code, e.err).toBe(0);
    expect(e.out).toMatch(/n = 2/);
    const m = JSON.parse(readFileSync(json, 'utf8'));
    expect(m.n).toBe(2);
    for (const k of ['mse', 'nrmse', 'psnr', 'ssim']) expect(Number.isFinite(m.mean[k]), k).toBe(true);
  });

  it('an image twice as wide as the generator was trained on is refused unless --aligned_a or --whole_image says what it is', async () => {
    // The same A|B images, but in a folder without our manifest.
    const plain = join(dir, 'plain');
    mkdirSync(plain);
    for (const f of readdirSync(join(data, 'test'))) cpSync(join(data, 'test', f), join(plain, f));
    const refused = await cli(['translate', '--checkpoint', ck, '--input', plain, '--out', join(dir, 'plain-out')]);
    expect(refused.code, refused.err).toBe(2);
    expect(said(refused).join('\n')).toMatch(/--input .*plain.* is 64 px wide, twice the 32 px the generator was trained on.*--aligned_a.*--whole_image/);
    expect(existsSync(join(dir, 'plain-out'))).toBe(false);
    const a = await cli(['translate', '--checkpoint', ck, '--input', plain, '--out', join(dir, 'plain-a'), '--aligned-a']);
    expect(a.code, a.err).toBe(0);
    const first = readdirSync(join(dir, 'plain-a'))[0];
    expect((await meta(join(dir, 'plain-a', first))).width).toBe(32);
    const whole = await cli(['translate', '--checkpoint', ck, '--input', plain, '--out', join(dir, 'plain-whole'), '--whole_image']);
    expect(whole.code, whole.err).toBe(0);
    expect((await meta(join(dir, 'plain-whole', first))).width).toBe(64);
  });

  it('a folder above the checkpoints is refused with the checkpoint folders found below it; a bad image is named', async () => {
    const above = join(dir, 'runs');
    cpSync(ck, join(above, 'trial-a', 'checkpoints'), { recursive: true });
    const r = await cli(['translate', '--checkpoint', above, '--input', join(data, 'test'), '--out', join(dir, 'x')]);
    expect(r.code).toBe(2);
    expect(said(r).join('\n')).toMatch(/--checkpoint .*runs: no latest_net_G.*checkpoint folders below it: .*trial-a\/checkpoints/);

    // 40 px is not a multiple of 2^5: the error says which image.
    const odd = join(dir, 'odd');
    mkdirSync(odd);
    await sharp({ create: { width: 40, height: 40, channels: 3, background: { r: 10, g: 20, b: 30 } } }).png().toFile(join(odd, 'odd-one.png'));
    const o = await cli(['translate', '--checkpoint', join(ck, 'latest_net_G.safetensors'), '--input', odd, '--out', join(dir, 'odd-out')]);
    expect(o.code).toBe(1);
    expect(said(o).join('\n')).toMatch(/odd-one\.png: .*multiples of 2\^5 = 32 \(give --pad/);
  });

  it("train --norm group --norm_groups 2: the folder it writes translates and resumes (group norm, 2 groups, inferred from the files)", async () => {
    const gck = join(dir, 'group');
    const train = (epochs: string, ...more: string[]) =>
      cli(['train', '--dataroot', data, '--checkpoints', gck, '--num_downs', '5', '--ngf', '4', '--ndf', '4', '--output_nc', '1', '--norm', 'group', '--norm_groups', '2', '--n_epochs', epochs, '--n_epochs_decay', '0', '--preprocess', 'none', ...more]);
    const t = await train('1');
    expect(t.code, t.err).toBe(0);
    // The group count is in the weights files (their shapes cannot tell it) and in options.json.
    for (const f of ['latest_net_G.safetensors', 'latest_net_D.safetensors']) expect(parseSafetensorsFile(readFileSync(join(gck, f))).metadata, f).toMatchObject({ normGroups: '2' });
    expect(JSON.parse(readFileSync(join(gck, 'options.json'), 'utf8')).resolved.generator).toMatchObject({ norm: 'group', normGroups: 2 });
    const out = join(dir, 'translated_group');
    const r = await cli(['translate', '--checkpoint', gck, '--input', join(data, 'test'), '--out', out]);
    expect(r.code, r.err).toBe(0);
    expect(readdirSync(out).sort()).toEqual(readdirSync(join(data, 'test')).sort());
    // A weights file from before the group count was recorded: the folder's options.json supplies it.
    const gFile = join(gck, 'latest_net_G.safetensors');
    const { tensors, metadata } = parseSafetensorsFile(readFileSync(gFile));
    delete metadata.normGroups;
    writeFileSync(gFile, serializeSafetensors(tensors, metadata));
    const old = join(dir, 'translated_group_old');
    expect((await cli(['translate', '--checkpoint', gck, '--input', join(data, 'test'), '--out', old])).code).toBe(0);
    for (const f of readdirSync(out)) expect(readFileSync(join(old, f)).equals(readFileSync(join(out, f))), f).toBe(true);
    // --resume loads the whole set back (G, D and optimizer; the architecture inferred from the files): here the run is finished.
    const resumed = await train('1', '--resume');
    expect(resumed.code, resumed.err).toBe(0);
    expect(resumed.out).toMatch(/done: 2 steps/);
  });

  it('evaluate --json writes an infinite PSNR (identical images) as "Infinity", not null', async () => {
    const imgs = join(dir, 'same');
    mkdirSync(imgs);
    for (const [name, g] of [['a', 40], ['b', 200]] as const) {
      await sharp({ create: { width: 16, height: 16, channels: 3, background: { r: g, g, b: g } } }).png().toFile(join(imgs, `${name}.png`));
    }
    const json = join(dir, 'same.json');
    const e = await cli(['evaluate', '--real', imgs, '--fake', imgs, '--json', json]);
    expect(e.code, e.err).toBe(0);
    const text = readFileSync(json, 'utf8');
    expect(text).not.toContain('null');
    const m = JSON.parse(text);
    expect(m.mean.psnr).toBe('Infinity');
    expect(m.perImage.map((p: { psnr: unknown }) => p.psnr)).toEqual(['Infinity', 'Infinity']);
    expect(m.mean.mse).toBe(0);
    // The documented way to read it back.
    const back = JSON.parse(text, (_k, v) => (v === 'Infinity' || v === '-Infinity' || v === 'NaN' ? Number(v) : v));
    expect(back.mean.psnr).toBe(Infinity);
  });
});
