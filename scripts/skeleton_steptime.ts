/**
 * The library's training-step time for candidate demo networks (issue 14 #2), on this adapter, at the demo's
 * image size: each config trains `steps` steps on random batches after 3 warm-up steps; prints ms per step.
 * Configs run one after another in one process, so their ratios hold under the same machine load.
 *
 *   npx vite-node --config vitest.config.ts scripts/skeleton_steptime.ts -- [--steps 40] [--size 64x128] 'ngf=8,ndf=8' 'ngf=16,ndf=4,norm=none' ...
 *
 * Keys: ngf, ndf, numDowns, nLayersD, norm, dropout (0/1), batchSize.
 */
import { createContext } from '../src/runtime/device.js';
import { Rng } from '../src/runtime/random.js';
import { Pix2Pix } from '../src/gan/pix2pix.js';
import type { NormKind } from '../src/layers/norm.js';

const args = process.argv.slice(2).filter((a) => a !== '--');
const flag = (name: string, dflt: string) => {
  const i = args.indexOf(name);
  if (i < 0) return dflt;
  const v = args[i + 1];
  args.splice(i, 2);
  return v;
};
const steps = Number(flag('--steps', '40'));
const [height, width] = flag('--size', '64x128').split('x').map(Number);
const ctx = await createContext();
for (const spec of args) {
  const o: Record<string, string> = Object.fromEntries(spec.split(',').map((kv) => kv.split('=')));
  const batch = Number(o.batchSize ?? 1);
  const model = await Pix2Pix.create({
    ctx,
    inputChannels: 3,
    outputChannels: 1,
    numDowns: Number(o.numDowns ?? 6),
    ngf: Number(o.ngf ?? 8),
    ndf: Number(o.ndf ?? 8),
    nLayersD: Number(o.nLayersD ?? 3),
    norm: (o.norm ?? 'batch') as NormKind,
    dropout: (o.dropout ?? '1') === '1',
    batchSize: batch,
    lr: 2e-3,
    seed: 1,
  });
  const rng = new Rng(1);
  const a = ctx.tensor([batch, 3, height, width], rng.normals(batch * 3 * height * width, 0.5));
  const b = ctx.tensor([batch, 1, height, width], rng.normals(batch * height * width, 0.5));
  for (let i = 0; i < 3; i++) await model.trainStep({ a, b });
  const t0 = performance.now();
  for (let i = 0; i < steps; i++) await model.trainStep({ a, b });
  const ms = (performance.now() - t0) / steps;
  console.log(`${spec}: ${ms.toFixed(1)} ms/step (${(ms / batch).toFixed(1)} ms/image)`);
  await model.destroy();
}
ctx.destroy();
