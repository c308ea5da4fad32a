// Skeleton recovery on phantoms: the high-pass matches a direct box filter and the band-pass is the difference
// of two box means; the true X-ray scores high (also moved by a pixel or slightly blurred: the band is what the
// pixel grid carries), the photo, a bone-free silhouette and a heavily blurred X-ray score low; the folder version regenerates a synthesised
// dataset's test phantoms from its manifest, and refuses a manifest that does not match its images.
import { describe, it, expect } from 'vitest';
import { mkdtempSync, readFileSync, writeFileSync, mkdirSync, readdirSync, utimesSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { makeAnimal, renderPhantomPair } from '../../src/data/phantom.js';
import { convertChannels, createImage, cropImage } from '../../src/data/image.js';
import { Rng } from '../../src/runtime/random.js';
import { bandPass, boxMean, highPass, maskedCorrelation, skeletonRecovery, skeletonScale } from '../../src/metrics/skeleton.js';
import { synthesizeDataset } from '../../src/data/synth_node.js';
import { readImage, writePng } from '../../src/data/image_node.js';
import { isPhantomDataset, phantomTestTruths, skeletonRecoveryFolder } from '../../src/metrics/skeleton_node.js';

function boxBlur(d: ArrayLike<number>, w: number, h: number, r: number): Float32Array {
  const hp = highPass(d, w, h, r);
  return Float32Array.from(hp, (v, q) => d[q] - v);
}

describe('skeleton recovery', () => {
  it('highPass is the value minus its border-clipped box mean (direct loops)', () => {
    const rng = new Rng(1);
    const w = 13;
    const h = 7;
    const d = Float64Array.from({ length: w * h }, () => rng.uniform(0, 1));
    for (const r of [1, 2, 4]) {
      const got = highPass(d, w, h, r);
      for (let y = 0; y < h; y++) {
        for (let x = 0; x < w; x++) {
          let s = 0;
          let n = 0;
          for (let yy = Math.max(0, y - r); yy <= Math.min(h - 1, y + r); yy++) for (let xx = Math.max(0, x - r); xx <= Math.min(w - 1, x + r); xx++) (s += d[yy * w + xx]), n++;
          expect(got[y * w + x]).toBeCloseTo(d[y * w + x] - s / n, 12);
        }
      }
    }
    for (const [a, b] of [
      [1, 2],
      [0, 3],
    ]) {
      const band = bandPass(d, w, h, a, b);
      const hp = highPass(d, w, h, b);
      const fine = boxMean(d, w, h, a);
      // box_a - box_b = (d - box_b) - (d - box_a)
      for (let q = 0; q < w * h; q++) expect(band[q]).toBeCloseTo(a === 0 ? hp[q] : hp[q] - (d[q] - fine[q]), 12);
    }
    expect(maskedCorrelation([1, 2, 3, 4], [2, 4, 6, 8], [0, 1, 2, 3])).toBeCloseTo(1, 12);
    expect(maskedCorrelation([1, 2, 3, 4], [8, 6, 4, 2], [0, 1, 3])).toBeCloseTo(-1, 12);
    expect(maskedCorrelation([1, 1, 1], [1, 2, 3], [0, 1, 2])).toBe(0);
  });

  it('scales with the resolution in millimetres, never finer than the pixel grid carries', () => {
    expect(skeletonScale(128)).toEqual({ inner: 1, radius: 2, erode: 2 });
    expect(skeletonScale(256)).toEqual({ inner: 1, radius: 4, erode: 4 });
    expect(skeletonScale(1024)).toEqual({ inner: 4, radius: 16, erode: 16 });
    expect(skeletonScale(32)).toEqual({ inner: 1, radius: 2, erode: 2 });
  });

  for (const [w, h] of [
    [128, 64],
    [256, 128],
  ]) {
    it(`separates the X-ray from the photo, a silhouette and a blurred X-ray (${h}x${w})`, () => {
      for (const [i, fur] of (['white', 'black'] as const).entries()) {
        const an = makeAnimal(new Rng(200 + i), 'm', { fur, bed: i ? 'white' : 'black' });
        const r = renderPhantomPair(an, 2 + i, { width: w, height: h }, { withMasks: true });
        const truth = { width: w, height: h, bone: r.boneLayer!.data, body: r.bodyMask!.data };
        const xray = skeletonRecovery(r.xray, truth);
        const photo = skeletonRecovery(convertChannels(r.photo, 1), truth);
        // What a generator that learned only the outline draws: the body's grey level, no bones.
        const silhouette = createImage(w, h, 1, Float32Array.from(r.bodyMask!.data, (v) => 0.05 + 0.4 * v));
        const blurred = { width: w, height: h, data: boxBlur(boxBlur(r.xray.data, w, h, 3), w, h, 3) };
        // What a translation a pixel off, or a little soft, draws: still the skeleton at the scale the grid carries.
        const moved = { width: w, height: h, data: Float32Array.from(r.xray.data, (v, q) => (q % w === 0 ? v : r.xray.data[q - 1])) };
        const soft = { width: w, height: h, data: boxBlur(r.xray.data, w, h, 1) };
        // Measured (20 held-out demo phantoms at 64x128): X-ray 0.87, moved 0.70, soft 0.76, photo 0.06, silhouette 0.01.
        expect(xray, `${fur} X-ray`).toBeGreaterThan(0.75);
        expect(skeletonRecovery(moved, truth), `${fur} X-ray moved by a pixel`).toBeGreaterThan(0.55);
        expect(skeletonRecovery(soft, truth), `${fur} X-ray blurred 3x3`).toBeGreaterThan(0.55);
        expect(Math.abs(photo), `${fur} photo`).toBeLessThan(0.15);
        expect(Math.abs(skeletonRecovery(silhouette, truth)), `${fur} silhouette`).toBeLessThan(0.15);
        expect(skeletonRecovery(blurred, truth), `${fur} blurred X-ray`).toBeLessThan(xray - 0.3);
        expect(skeletonRecovery({ width: w, height: h, data: r.boneLayer!.data }, truth)).toBeCloseTo(1, 6);
        // At 64x128 (2x2 supersampled) the binary "half the pixel is bone" mask is a worse truth: it fills the
        // rib cage and the skull, so even the true X-ray matches it less well than the bone layer.
        if (w === 128) expect(skeletonRecovery(r.xray, { ...truth, bone: r.boneMask!.data }), `${fur} X-ray vs the binary mask`).toBeLessThan(xray - 0.05);
      }
    });
  }

  it('refuses an image of another size', () => {
    const an = makeAnimal(new Rng(3), 'm');
    const r = renderPhantomPair(an, 0, { width: 64, height: 32 }, { withMasks: true });
    expect(() => skeletonRecovery(createImage(32, 32, 1), { width: 64, height: 32, bone: r.boneLayer!.data, body: r.bodyMask!.data })).toThrow(/skeletonRecovery.*32x64/);
  });

  it('scores a folder of translations of a synthesised dataset from its manifest, and checks the manifest', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'skel-'));
    const data = join(dir, 'data');
    await synthesizeDataset({ out: data, animals: 6, poses: 2, width: 128, height: 64, seed: 5, testAnimals: 2 });
    expect(isPhantomDataset(data)).toBe(true);
    const real = join(dir, 'real');
    const good = join(dir, 'good');
    const flat = join(dir, 'flat');
    for (const d of [real, good, flat]) mkdirSync(d);
    const files = readdirSync(join(data, 'test')).sort();
    expect(files.length).toBe(4);
    for (const f of files) {
      const ab = await readImage(join(data, 'test', f), 3);
      const b = convertChannels(cropImage(ab, 128, 0, 128, 64), 1);
      await writePng(join(real, f), b);
      await writePng(join(good, f), b);
      await writePng(join(flat, f), { ...b, data: boxBlur(b.data, 128, 64, 4) });
    }
    const g = await skeletonRecoveryFolder({ data, fake: good, real, files });
    const fl = await skeletonRecoveryFolder({ data, fake: flat, real, files });
    expect(g.perImage.map((p) => p.file)).toEqual(files);
    expect(g.mean).toBeGreaterThan(0.6);
    expect(fl.mean).toBeLessThan(0.3);
    // Rendered once per dataset: every trial of a study is scored against the same truths.
    const truths = phantomTestTruths(data);
    expect(phantomTestTruths(data)).toBe(truths);
    // The stored X-rays are checked once, and again when one changes on disk.
    const wrong = join(dir, 'wrong.png');
    await writePng(wrong, { ...(await readImage(join(flat, files[0]), 1)) });
    const kept = readFileSync(join(real, files[0]));
    writeFileSync(join(real, files[0]), readFileSync(wrong));
    utimesSync(join(real, files[0]), new Date(), new Date(Date.now() + 5000));
    await expect(skeletonRecoveryFolder({ data, fake: good, real, files })).rejects.toThrow(/not the phantom the manifest regenerates/);
    writeFileSync(join(real, files[0]), kept);
    utimesSync(join(real, files[0]), new Date(), new Date(Date.now() + 10000));
    expect((await skeletonRecoveryFolder({ data, fake: good, real, files })).mean).toBe(g.mean);
    // A manifest whose seed does not generate these images: the stored X-rays do not match, so it refuses.
    const mpath = join(data, 'manifest.json');
    const m = JSON.parse(readFileSync(mpath, 'utf8'));
    writeFileSync(mpath, JSON.stringify({ ...m, seed: 6 }));
    await expect(skeletonRecoveryFolder({ data, fake: good, real, files })).rejects.toThrow(/manifest|not the phantom/);
    // The cached truths are not served for the changed manifest: it is read and refused again.
    expect(() => phantomTestTruths(data)).toThrow(/seed 6/);
    writeFileSync(join(dir, 'x.json'), '');
    expect(isPhantomDataset(dir)).toBe(false);
  });
});
