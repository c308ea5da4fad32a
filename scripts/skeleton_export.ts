/**
 * Export phantoms (photo, X-ray, body mask, bone layer) for scripts/skeleton_experiments.py: the demo's own
 * set (the animals, split and poses `demo` synthesises) or extra training animals from another data seed.
 * Photo and X-ray are rounded to 8 bits, as the demo's PNGs hold them. Also writes the library's skeleton
 * recovery of the true X-ray and of the photo's luma for every image, so the Python port can be checked.
 *
 *   npx vite-node scripts/skeleton_export.ts -- OUT_DIR [--animals 26] [--size 64x128] [--seed 0] [--all-train]
 *
 * Writes OUT_DIR/{photo,xray,body,bone}.f32 (N x C x H x W float32, little-endian) and meta.json.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { planDataset } from '../src/data/synth_node.js';
import { renderPhantomPair } from '../src/data/phantom.js';
import { demoDataOptions } from '../src/cli/cmd_demo.js';
import { skeletonRecovery } from '../src/metrics/skeleton.js';

const args = process.argv.slice(2).filter((a) => a !== '--');
const out = args[0];
const flag = (name: string, dflt: string) => {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1] : dflt;
};
const animals = Number(flag('--animals', '26'));
const [height, width] = flag('--size', '64x128').split('x').map(Number);
const seed = Number(flag('--seed', '0'));
const allTrain = args.includes('--all-train');
mkdirSync(out, { recursive: true });
const base = demoDataOptions({ full: false, animals, height, width });
const plan = planDataset({ ...base, seed, ...(allTrain ? { testAnimals: 0 } : {}) });
const q8 = (v: number) => Math.round(Math.min(1, Math.max(0, v)) * 255) / 255;
const photos: Float32Array[] = [];
const xrays: Float32Array[] = [];
const bodies: Float32Array[] = [];
const bones: Float32Array[] = [];
const entries: object[] = [];
for (const { animal, split, poses } of plan.animals) {
  for (let p = 0; p < poses; p++) {
    const r = renderPhantomPair(animal, p, { width, height }, { withMasks: true });
    const photo = Float32Array.from(r.photo.data, q8);
    const xray = Float32Array.from(r.xray.data, q8);
    photos.push(photo);
    xrays.push(xray);
    bodies.push(r.bodyMask!.data);
    bones.push(r.boneLayer!.data);
    const truth = { width, height, bone: r.boneLayer!.data, body: r.bodyMask!.data };
    const plane = width * height;
    const luma = Float32Array.from({ length: plane }, (_, q) => 0.299 * photo[q] + 0.587 * photo[plane + q] + 0.114 * photo[2 * plane + q]);
    entries.push({
      animal: animal.id,
      split,
      fur: animal.fur,
      bed: animal.bed,
      pose: p,
      skeletonXray: skeletonRecovery({ width, height, data: xray }, truth),
      skeletonLuma: skeletonRecovery({ width, height, data: luma }, truth),
    });
  }
}
const cat = (list: Float32Array[]) => {
  const n = list.reduce((s, a) => s + a.length, 0);
  const all = new Float32Array(n);
  let o = 0;
  for (const a of list) (all.set(a, o), (o += a.length));
  return Buffer.from(all.buffer);
};
writeFileSync(join(out, 'photo.f32'), cat(photos));
writeFileSync(join(out, 'xray.f32'), cat(xrays));
writeFileSync(join(out, 'body.f32'), cat(bodies));
writeFileSync(join(out, 'bone.f32'), cat(bones));
writeFileSync(join(out, 'meta.json'), JSON.stringify({ width, height, seed, animals, n: entries.length, entries }, null, 1));
console.log(`${entries.length} pairs (${entries.filter((e: any) => e.split === 'train').length} train) → ${out}`);
