import { describe, it, expect } from 'vitest';
import { makeAnimal, renderPhantomPair, poseParams, type Colour } from '../../src/data/phantom.js';
import { Rng } from '../../src/runtime/random.js';
// The skeleton-recovery metric's own high-pass and masked correlation (src/metrics/skeleton.ts).
import { highPass, maskedCorrelation as corr } from '../../src/metrics/skeleton.js';

const COMBOS: [Colour, Colour][] = [
  ['white', 'white'],
  ['white', 'black'],
  ['black', 'white'],
  ['black', 'black'],
];
const W = 256;
const H = 128;

describe('mouse phantoms', () => {
  it('is deterministic, sized as asked, and in [0, 1]', () => {
    const an = makeAnimal(new Rng(3), 'm3');
    const a = renderPhantomPair(an, 2, { width: 96, height: 40 });
    const b = renderPhantomPair(an, 2, { width: 96, height: 40 });
    expect([a.photo.width, a.photo.height, a.photo.channels, a.xray.channels]).toEqual([96, 40, 3, 1]);
    expect(a.photo.data).toEqual(b.photo.data);
    expect(a.xray.data).toEqual(b.xray.data);
    const all = [...a.photo.data, ...a.xray.data];
    expect(Math.min(...all)).toBeGreaterThanOrEqual(0);
    expect(Math.max(...all)).toBeLessThanOrEqual(1);
    expect(() => renderPhantomPair(an, 0, { width: 4, height: 40 })).toThrow(/renderPhantomPair: size/);
  });

  it('varies the pose: rotation within ±20°, different silhouettes', () => {
    const an = makeAnimal(new Rng(11), 'm');
    const masks = [0, 1, 2, 3, 4].map((p) => renderPhantomPair(an, p, { width: 128, height: 64 }, { withMasks: true }).bodyMask!.data);
    for (let p = 0; p < 5; p++) expect(Math.abs(poseParams(an, p).rotation)).toBeLessThanOrEqual((20 * Math.PI) / 180);
    for (let p = 1; p < 5; p++) {
      let inter = 0;
      let union = 0;
      for (let q = 0; q < masks[0].length; q++) {
        inter += masks[0][q] * masks[p][q];
        union += Math.max(masks[0][q], masks[p][q]);
      }
      expect(inter / union, `IoU of pose 0 and pose ${p}`).toBeLessThan(0.9);
    }
  });

  for (const [fur, bed] of COMBOS) {
    it(`photo and X-ray correspond: ${fur} mouse on ${bed} bed`, () => {
      for (const pose of [0, 3]) {
        const an = makeAnimal(new Rng(40 + pose), `m-${fur}-${bed}`, { fur, bed });
        const r = renderPhantomPair(an, pose, { width: W, height: H }, { withMasks: true });
        const P = W * H;
        const body = r.bodyMask!.data;
        const bone = r.boneMask!.data;
        let nBone = 0;
        let boneInBody = 0;
        let nBody = 0;
        let xBone = 0;
        let xSoft = 0;
        let nSoft = 0;
        let xBed = 0;
        const bodyMean = [0, 0, 0];
        const bedMean = [0, 0, 0];
        for (let q = 0; q < P; q++) {
          if (bone[q]) {
            nBone++;
            boneInBody += body[q];
            xBone += r.xray.data[q];
          } else if (body[q]) {
            nSoft++;
            xSoft += r.xray.data[q];
          } else xBed += r.xray.data[q];
          nBody += body[q];
          for (let c = 0; c < 3; c++) (body[q] ? bodyMean : bedMean)[c] += r.photo.data[c * P + q];
        }
        const nBed = P - nBody;
        for (let c = 0; c < 3; c++) {
          bodyMean[c] /= nBody;
          bedMean[c] /= nBed;
        }
        // The skeleton lies inside the silhouette the photo shows.
        expect(nBone).toBeGreaterThan(0.02 * P);
        expect(boneInBody / nBone).toBeGreaterThanOrEqual(0.99);
        expect(nBody / P).toBeGreaterThan(0.12);
        // The photo shows the animal against its bed: most body pixels differ from the bed colour.
        let differ = 0;
        for (let q = 0; q < P; q++) {
          if (!body[q]) continue;
          let m = 0;
          for (let c = 0; c < 3; c++) m = Math.max(m, Math.abs(r.photo.data[c * P + q] - bedMean[c]));
          if (m > 0.04) differ++;
        }
        expect(differ / nBody, `${fur}/${bed} body pixels unlike the bed`).toBeGreaterThan(0.6);
        expect(Math.max(...bodyMean.map((v, c) => Math.abs(v - bedMean[c])))).toBeGreaterThan(0.05);
        // Fur and bed colours are what the labels say.
        expect(bodyMean[0] > 0.5).toBe(fur === 'white');
        expect(bedMean[0] > 0.5).toBe(bed === 'white');
        // X-ray: bright = dense. Bone > soft tissue > empty bed.
        expect(xBone / nBone).toBeGreaterThan(xSoft / nSoft + 0.1);
        expect(xSoft / nSoft).toBeGreaterThan(xBed / (P - nBone - nSoft) + 0.1);
      }
    });
  }

  it('renders the X-ray independently of fur and bed colour (same anatomy and pose)', () => {
    const base = makeAnimal(new Rng(5), 'm', { fur: 'white', bed: 'white' });
    const other = { ...base, fur: 'black' as const, bed: 'black' as const };
    const a = renderPhantomPair(base, 1, { width: 128, height: 64 });
    const b = renderPhantomPair(other, 1, { width: 128, height: 64 });
    expect(a.xray.data).toEqual(b.xray.data);
    expect(a.photo.data).not.toEqual(b.photo.data);
  });

  it('does not show the skeleton in the photo: only the X-ray carries the bones', () => {
    for (const fur of ['white', 'black'] as Colour[]) {
      for (const pose of [0, 4]) {
        const an = makeAnimal(new Rng(100 + pose), 'm', { fur, bed: 'white' });
        const r = renderPhantomPair(an, pose, { width: W, height: H }, { withMasks: true, noise: 0 });
        const P = W * H;
        const body = r.bodyMask!.data;
        const bone = r.boneMask!.data;
        const luma = new Float64Array(P);
        for (let q = 0; q < P; q++) luma[q] = 0.299 * r.photo.data[q] + 0.587 * r.photo.data[P + q] + 0.114 * r.photo.data[2 * P + q];
        // The body's interior (3 px from the outline), so silhouette edges do not count.
        const inner: number[] = [];
        for (let y = 3; y < H - 3; y++) {
          for (let x = 3; x < W - 3; x++) {
            let ok = true;
            for (let d = -3; d <= 3 && ok; d++) if (!body[(y + d) * W + x] || !body[y * W + x + d]) ok = false;
            if (ok) inner.push(y * W + x);
          }
        }
        expect(inner.length).toBeGreaterThan(0.05 * P);
        const fineBone = highPass(bone, W, H, 2);
        const finePhoto = corr(highPass(luma, W, H, 2), fineBone, inner);
        const fineXray = corr(highPass(r.xray.data, W, H, 2), fineBone, inner);
        // Measured: |fine photo| < 0.05, fine X-ray ~0.84; plain photo ~0.18 (white fur: the spine lies
        // under the thickest, best-lit part of the body, which is the cue the network is meant to use).
        expect(Math.abs(finePhoto), `${fur} pose ${pose}: fine photo structure vs bones`).toBeLessThan(0.1);
        expect(fineXray, `${fur} pose ${pose}: fine X-ray structure vs bones`).toBeGreaterThan(0.6);
        expect(Math.abs(corr(luma, bone, inner)), `${fur} pose ${pose}: photo vs bones`).toBeLessThan(0.3);
      }
    }
  });
});
