import { describe, it, expect, afterAll } from 'vitest';
import { mkdtemp, mkdir, writeFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import { testContext } from '../helpers/gpu.js';
import { expectClose } from '../helpers/compare.js';
import { evaluateFolders } from '../../src/metrics/evaluate_node.js';
import { fid } from '../../src/metrics/frechet.js';
import { kid } from '../../src/metrics/kid.js';
import { waem } from '../../src/metrics/waem.js';
import type { FeatureExtractor } from '../../src/metrics/features.js';
import type { GpuContext } from '../../src/runtime/context.js';
import type { Tensor } from '../../src/runtime/tensor.js';
import { imageCases, u8 } from './metrics_fixtures.js';

/** Write planar 8-bit values (CHW) as an exact PNG (sharp wants interleaved HWC). */
async function writeU8Png(path: string, planar: Uint8Array, c: number, h: number, w: number): Promise<void> {
  const hwc = new Uint8Array(planar.length);
  for (let k = 0; k < c; k++) for (let p = 0; p < h * w; p++) hwc[p * c + k] = planar[k * h * w + p];
  const img = sharp(Buffer.from(hwc), { raw: { width: w, height: h, channels: c as 1 | 3 } });
  // Without toColourspace('b-w') sharp stores one-channel input as an RGB PNG.
  await (c === 1 ? img.toColourspace('b-w') : img).png().toFile(path);
}

/** Features = per-channel means and a few pixel statistics: enough to make FID/KID depend on the images. */
const statsExtractor: FeatureExtractor = {
  name: 'stats',
  dims: 4,
  async extract(ctx: GpuContext, images: Tensor): Promise<Tensor> {
    const [n] = images.shape;
    const per = images.size / n;
    const x = await images.read();
    const out = new Float32Array(n * 4);
    for (let i = 0; i < n; i++) {
      let s = 0;
      let s2 = 0;
      let mx = 0;
      let edge = 0;
      for (let p = 0; p < per; p++) {
        const v = x[i * per + p];
        s += v;
        s2 += v * v;
        mx = Math.max(mx, v);
        if (p > 0) edge += Math.abs(v - x[i * per + p - 1]);
      }
      out.set([s / per, s2 / per, mx, edge / per], i * 4);
    }
    return ctx.tensor([n, 4], out, 'stats.features');
  },
  destroy() {},
};

describe('evaluateFolders', async () => {
  const ctx = await testContext();
  const root = await mkdtemp(join(tmpdir(), 'metrics-eval-'));
  afterAll(async () => {
    ctx.trimPool();
    await rm(root, { recursive: true, force: true });
  });
  let dirCount = 0;
  const freshDirs = async () => {
    const base = join(root, `case${dirCount++}`);
    await mkdir(join(base, 'real'), { recursive: true });
    await mkdir(join(base, 'fake'), { recursive: true });
    return { real: join(base, 'real'), fake: join(base, 'fake') };
  };
  /** The fixture's pairs as PNG files: name_<i>.png in both folders. */
  const writeCase = async (name: string, dirs: { real: string; fake: string }, fakeExt = '.png') => {
    const cs = imageCases().find((c) => c.name === name)!;
    const per = cs.c * cs.h * cs.w;
    const r = u8(cs.real);
    const f = u8(cs.fake);
    for (let i = 0; i < cs.n; i++) {
      await writeU8Png(join(dirs.real, `${name}_${i}.png`), r.subarray(i * per, (i + 1) * per), cs.c, cs.h, cs.w);
      await writeU8Png(join(dirs.fake, `${name}_${i}${fakeExt}`), f.subarray(i * per, (i + 1) * per), cs.c, cs.h, cs.w);
    }
    return cs;
  };

  it('PNG folders (two sizes, gray and RGB, several batches) give skimage values per image', async () => {
    const dirs = await freshDirs();
    const a = await writeCase('gray_16x23', dirs);
    const b = await writeCase('rgb_64x128_xray', dirs);
    const c = await writeCase('rgb_32x48', dirs);
    await writeFile(join(dirs.real, 'notes.txt'), 'not an image: ignored');
    const progress: number[] = [];
    // 40 KiB batches: the 32x48x3 pairs (18 KiB each) go two per batch at most, the 64x128x3 one alone.
    const r = await evaluateFolders({ ctx, real: dirs.real, fake: dirs.fake, batchBytes: 40 * 1024, onProgress: (d) => progress.push(d) });
    const expected = [
      ...a.ref.map((x, i) => ({ file: `gray_16x23_${i}`, ...x })),
      ...c.ref.map((x, i) => ({ file: `rgb_32x48_${i}`, ...x })),
      ...b.ref.map((x, i) => ({ file: `rgb_64x128_xray_${i}`, ...x })),
    ];
    expect(r.n).toBe(expected.length);
    expect(r.perImage.map((p) => p.file)).toEqual(expected.map((e) => e.file));
    expectClose(r.perImage.map((p) => p.mse), expected.map((e) => e.mse), { atol: 0, rtol: 1e-6, label: 'mse' });
    expectClose(r.perImage.map((p) => p.nrmse), expected.map((e) => e.nrmse_euclidean), { atol: 0, rtol: 1e-6, label: 'nrmse' });
    expectClose(r.perImage.map((p) => p.psnr), expected.map((e) => Number(e.psnr)), { atol: 0, rtol: 1e-6, label: 'psnr' });
    expectClose(r.perImage.map((p) => p.ssim), expected.map((e) => e.ssim_skimage), { atol: 2e-6, rtol: 0, label: 'ssim' });
    expect(r.mean.mse).toBeCloseTo(expected.reduce((s, e) => s + e.mse, 0) / expected.length, 9);
    expect(progress.length).toBeGreaterThanOrEqual(3);
    expect(progress.at(-1)).toBe(expected.length);
    expect(r.mean.fid).toBeUndefined();
    // No extractor: WAEM without its FID term, and a warning saying so.
    expect(r.mean.waem).toBeCloseTo(waem({ mse: r.mean.mse, nrmse: r.mean.nrmse, psnr: r.mean.psnr, ssim: r.mean.ssim }), 12);
    expect(r.warnings.some((w) => /FID term e\/FID is dropped/.test(w))).toBe(true);

    // batchSize 1: one pair per batch, same results.
    const progress2: number[] = [];
    const r2 = await evaluateFolders({ ctx, real: dirs.real, fake: dirs.fake, batchSize: 1, onProgress: (d) => progress2.push(d) });
    expect(progress2).toEqual(expected.map((_, i) => i + 1));
    expect(r2.perImage).toEqual(r.perImage);
    await expect(evaluateFolders({ ctx, real: dirs.real, fake: dirs.fake, batchSize: 0 })).rejects.toThrow(/evaluateFolders: batchSize must be an integer >= 1, got 0/);

    const g = await evaluateFolders({ ctx, real: dirs.real, fake: dirs.fake, ssimMode: 'gaussian', normalization: 'min-max' });
    expectClose(g.perImage.map((p) => p.ssim), expected.map((e) => e.ssim_gaussian!), { atol: 2e-6, rtol: 0, label: 'ssim gaussian' });
    expectClose(g.perImage.map((p) => p.nrmse), expected.map((e) => e.nrmse_min_max), { atol: 0, rtol: 1e-6, label: 'nrmse min-max' });
  });

  it('with a feature extractor: FID, KID and WAEM over all batches', async () => {
    const dirs = await freshDirs();
    const cs = await writeCase('gray_7x9', dirs);
    await writeCase('gray_16x23', dirs); // a second size: features from two batches are concatenated
    const r = await evaluateFolders({ ctx, real: dirs.real, fake: dirs.fake, extractor: statsExtractor, kid: { subsets: 10, subsetSize: 3 } });
    expect(r.n).toBe(cs.n + 2);
    // The same through the glue directly, from the images the folders hold (ordered by name).
    const images = async (which: 'real' | 'fake') => {
      const out: Tensor[] = [];
      for (const [name, n, h, w] of [['gray_16x23', 2, 16, 23], ['gray_7x9', 3, 7, 9]] as const) {
        const c = imageCases().find((x) => x.name === name)!;
        out.push(ctx.tensor([n, 1, h, w], Float32Array.from(u8(c[which]), (v) => v / 255), which));
      }
      return out;
    };
    const real = await images('real');
    const fake = await images('fake');
    const direct = await fid(ctx, statsExtractor, real, fake);
    expect(r.mean.fid).toBeCloseTo(direct.fid, 9);
    expect(r.mean.fid).toBeGreaterThan(0);
    const feats = async (ts: Tensor[]) => {
      const parts = await Promise.all(ts.map(async (t) => (await statsExtractor.extract(ctx, t)).read()));
      return { data: Float32Array.from(parts.flatMap((p) => Array.from(p))), rows: 5, cols: 4 };
    };
    const k = kid(await feats(real), await feats(fake), { subsets: 10, subsetSize: 3 });
    expect(r.mean.kid).toBeCloseTo(k.mean, 12);
    expect(r.mean.kidStd).toBeCloseTo(k.std, 12);
    expect(r.mean.waem).toBeCloseTo(waem({ mse: r.mean.mse, nrmse: r.mean.nrmse, psnr: r.mean.psnr, ssim: r.mean.ssim, fid: r.mean.fid! }), 12);
    // 5 images for 4 feature dims is fine; the warning only comes with fewer images than dims.
    expect(r.warnings).toEqual([]);
    for (const t of [...real, ...fake]) t.destroy();
  });

  it('pairs by name without extension, and by pix2pix suffixes in one folder', async () => {
    const dirs = await freshDirs();
    await writeCase('gray_16x23', dirs, '.tif');
    const r = await evaluateFolders({ ctx, real: dirs.real, fake: dirs.fake });
    expect(r.n).toBe(2);
    const same = (await freshDirs()).real;
    const cs = imageCases().find((c) => c.name === 'gray_16x23')!;
    const per = cs.h * cs.w;
    await writeU8Png(join(same, 'mouse1_real_B.png'), u8(cs.real).subarray(0, per), 1, cs.h, cs.w);
    await writeU8Png(join(same, 'mouse1_fake_B.png'), u8(cs.fake).subarray(0, per), 1, cs.h, cs.w);
    await writeU8Png(join(same, 'mouse1_real_A.png'), u8(cs.fake).subarray(0, per), 1, cs.h, cs.w);
    const s = await evaluateFolders({ ctx, real: same, fake: same, suffix: { real: '_real_B', fake: '_fake_B' } });
    expect(s.perImage.map((p) => p.file)).toEqual(['mouse1']);
    expect(s.perImage[0].mse).toBeCloseTo(cs.ref[0].mse, 8);
  });

  describe('bad input: errors name the files', () => {
    it('a file with no partner', async () => {
      const dirs = await freshDirs();
      await writeCase('gray_7x9', dirs);
      await rm(join(dirs.fake, 'gray_7x9_1.png'));
      await expect(evaluateFolders({ ctx, ...dirs })).rejects.toThrow(
        new RegExp(`real/gray_7x9_1\\.png: no generated image with the same name in .*fake for: .*real/gray_7x9_1\\.png`),
      );
      await writeU8Png(join(dirs.fake, 'extra.png'), new Uint8Array(63), 1, 7, 9);
      await writeU8Png(join(dirs.fake, 'gray_7x9_1.png'), new Uint8Array(63), 1, 7, 9);
      await expect(evaluateFolders({ ctx, ...dirs })).rejects.toThrow(/fake\/extra\.png: no ground-truth image with the same name in .*real for: .*extra\.png/);
    });
    it('a size mismatch and a channel mismatch (and channels: 3 converting both)', async () => {
      const dirs = await freshDirs();
      await writeU8Png(join(dirs.real, 'a.png'), new Uint8Array(7 * 9).fill(100), 1, 7, 9);
      await writeU8Png(join(dirs.fake, 'a.png'), new Uint8Array(8 * 9).fill(90), 1, 8, 9);
      await expect(evaluateFolders({ ctx, ...dirs })).rejects.toThrow(/fake\/a\.png: size differs from its ground truth .*real\/a\.png: expected 9x7x1 \(W x H x C\), got 9x8x1/);
      await writeU8Png(join(dirs.fake, 'a.png'), new Uint8Array(3 * 7 * 9).fill(90), 3, 7, 9);
      await expect(evaluateFolders({ ctx, ...dirs })).rejects.toThrow(/fake\/a\.png: channel count differs from its ground truth .*real\/a\.png: expected 9x7x1 \(W x H x C\), got 9x7x3 \(pass channels/);
      const r = await evaluateFolders({ ctx, ...dirs, channels: 3 });
      expect(r.perImage[0].mse).toBeCloseTo((10 / 255) ** 2, 9);
    });
    it('an unreadable image', async () => {
      const dirs = await freshDirs();
      await writeU8Png(join(dirs.real, 'a.png'), new Uint8Array(63), 1, 7, 9);
      await writeFile(join(dirs.fake, 'a.png'), 'this is not a PNG');
      await expect(evaluateFolders({ ctx, ...dirs })).rejects.toThrow(/fake\/a\.png: cannot read image/);
    });
    it('an empty folder, a missing folder, two files with one name, an image smaller than the SSIM window', async () => {
      const dirs = await freshDirs();
      await expect(evaluateFolders({ ctx, ...dirs })).rejects.toThrow(/real: no real images \(\.png, .*\) in this folder/);
      await expect(evaluateFolders({ ctx, real: join(dirs.real, 'nope'), fake: dirs.fake })).rejects.toThrow(/nope: cannot list the real folder/);
      await writeU8Png(join(dirs.real, 'a.png'), new Uint8Array(63), 1, 7, 9);
      await writeU8Png(join(dirs.real, 'a.tif'), new Uint8Array(63), 1, 7, 9);
      await expect(evaluateFolders({ ctx, ...dirs })).rejects.toThrow(/two real images pair as 'a': .*a\.png and .*a\.tif/);
      await rm(join(dirs.real, 'a.tif'));
      await writeU8Png(join(dirs.fake, 'a.png'), new Uint8Array(63), 1, 7, 9);
      await expect(evaluateFolders({ ctx, ...dirs, ssimMode: 'gaussian' })).rejects.toThrow(/real\/a\.png: image 9x7 is smaller than SSIM's 11x11 window \(mode 'gaussian'\)/);
    });
  });
});
