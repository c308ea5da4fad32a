// PyTorch parity on committed fixtures (scripts/fixtures/pix2pix.py): generator outputs, three full
// training steps (every G and D tensor afterwards), and official-format .pth checkpoints.
import { describe, it, expect, afterAll } from 'vitest';
import { testContext } from '../helpers/gpu.js';
import { compareClose, expectClose } from '../helpers/compare.js';
import { Pix2Pix } from '../../src/gan/pix2pix.js';
import { readStateDict } from '../../src/gan/state_dict.js';
import { fixture, fixtureBytes, fixtureTensors, hashInput, stateDictFromRecipe, type TrainFixture } from './pix2pix_fixture.js';

const ctx = await testContext();
afterAll(() => ctx.trimPool());

/**
 * Adam is invariant to a gradient's scale, so the weights after 3 steps cannot see a wrong factor:
 * compare every parameter's step-1 gradient (norm and first values) with PyTorch's.
 */
async function checkGradients(model: Pix2Pix, f: TrainFixture): Promise<void> {
  const failures: string[] = [];
  let worst = 0;
  for (const [tag, net] of [['G', model.G], ['D', model.D!]] as const) {
    for (const e of net.stateEntries()) {
      if (e.kind !== 'param') continue;
      const ref = f.grads[`${tag}.${e.key}`];
      const g = await e.param.grad!.read();
      const norm = Math.hypot(...g);
      // roundingNoise: max |torch f32 − torch f64| of this gradient (biases in front of a norm have a
      // gradient that is zero up to rounding, so only that noise can be compared there).
      const noise = 4 * ref.roundingNoise;
      const tol = 1e-3 * ref.norm + noise * Math.sqrt(g.length) + 1e-9;
      if (Math.abs(norm - ref.norm) > tol) failures.push(`${tag}.${e.key} gradient norm ${norm} vs ${ref.norm} (tolerance ${tol})`);
      const r = compareClose(g.subarray(0, ref.head.length), ref.head, { atol: 1e-4 * ref.norm + noise + 1e-9, rtol: 1e-3, label: `${tag}.${e.key} gradient` });
      // The ratio is only meaningful where the gradient stands above its rounding noise.
      if (ref.norm > 100 * ref.roundingNoise * Math.sqrt(g.length)) worst = Math.max(worst, r.maxAbs / ref.norm);
      if (!r.ok) failures.push(r.message);
    }
  }
  console.log(`[parity ${f.config.norm}] step-1 gradients (tensors above rounding noise): worst abs err / tensor norm ${worst.toExponential(2)}`);
  expect(failures, failures.join('\n')).toEqual([]);
}

function modelOptions(f: TrainFixture) {
  const c = f.config;
  return { ctx, dropout: c.dropout, lambdaL1: c.lambdaL1, lr: c.lr, beta1: c.beta1, beta2: c.beta2, ganMode: 'vanilla' as const };
}

for (const name of ['instance', 'batch'] as const) {
  describe(`pix2pix parity with PyTorch (${name} norm, ngf 4, 6 downs, 64x128, 3 -> 1 channels)`, () => {
    const f = fixture[name];
    const c = f.config;
    const expected = fixtureTensors(f.file);
    const shapeA = [c.batch, c.inputChannels, c.height, c.width];
    const shapeB = [c.batch, c.outputChannels, c.height, c.width];

    it('generator output (default mode: batch statistics, dropout off) and 3 training steps', async () => {
      const G0 = stateDictFromRecipe(f.recipeG);
      const D0 = stateDictFromRecipe(f.recipeD);
      const model = await Pix2Pix.fromStateDict({ G: G0, D: D0 }, modelOptions(f));
      try {
        expect(model.config.generator).toMatchObject({ numDowns: c.numDowns, ngf: c.ngf, norm: c.norm, inputChannels: 3, outputChannels: 1 });
        const a0 = ctx.tensor(shapeA, hashInput(c.inputSeed, shapeA), 'a0');
        const y = await model.translate(a0);
        const got = await y.read();
        y.destroy();
        const outErr = expectClose(got, expected.get('out.init_train')!.data, { atol: 2e-5, rtol: 1e-4, label: `${name} G output (train mode)` });
        console.log(`[parity ${name}] G output default mode: max abs err ${outErr.toExponential(2)}`);

        for (let s = 0; s < c.steps; s++) {
          const a = ctx.tensor(shapeA, hashInput(c.inputSeed + s, shapeA), 'a');
          const b = ctx.tensor(shapeB, hashInput(c.targetSeed + s, shapeB), 'b');
          const losses = await model.trainStep({ a, b });
          a.destroy();
          b.destroy();
          if (s === 0) await checkGradients(model, f);
          const ref = f.losses[s];
          for (const k of ['G_GAN', 'G_L1', 'D_real', 'D_fake'] as const) {
            expectClose([losses[k]], [ref[k]], { atol: 1e-5, rtol: 1e-4, label: `${name} step ${s + 1} ${k}` });
          }
        }

        // Every tensor after 3 steps: parameters as changes from the initial values (stored f16 in the
        // fixture: ~3e-7 absolute on changes of ~6e-4), running statistics as values.
        const report: string[] = [];
        let worstParam = 0;
        let worstBuffer = 0;
        const failures: string[] = [];
        for (const [net, init] of [['G', G0], ['D', D0]] as const) {
          const sd = await readStateDict(net === 'G' ? model.G : model.D!);
          for (const [key, v] of sd) {
            const delta = expected.get(`delta.${net}.${key}`);
            const fin = expected.get(`final.${net}.${key}`);
            if (delta) {
              const d = v.data.map((x, i) => x - init.get(key)!.data[i]);
              // f16 storage (~3e-7) plus four times what float32 rounding alone does to this tensor in torch.
              const sens = f.sensitivity[`${net}.${key}`];
              const r = compareClose(d, delta.data, { atol: 3e-6 + 4 * sens, rtol: 3e-3, label: `${net}.${key} (change after 3 steps)` });
              worstParam = Math.max(worstParam, r.maxAbs);
              report.push(`${net}.${key}: max abs ${r.maxAbs.toExponential(2)} (torch f32 vs f64: ${sens.toExponential(2)})`);
              if (!r.ok) failures.push(r.message);
            } else {
              expect(fin, `${net}.${key} in fixture`).toBeDefined();
              const r = compareClose(v.data, fin!.data, { atol: 2e-5 + 2 * f.sensitivity[`${net}.${key}`], rtol: 1e-4, label: `${net}.${key}` });
              worstBuffer = Math.max(worstBuffer, r.maxAbs);
              if (!r.ok) failures.push(r.message);
            }
          }
        }
        console.log(`[parity ${name}] after 3 steps: worst parameter-change abs err ${worstParam.toExponential(2)}, worst running-stat abs err ${worstBuffer.toExponential(2)}\n  ${report.join('\n  ')}`);
        expect(failures, failures.join('\n')).toEqual([]);

        if (name === 'batch') {
          const ye = await model.translate(a0, { eval: true });
          const e = expectClose(await ye.read(), expected.get('out.eval_after')!.data, { atol: 5e-5, rtol: 1e-3, label: 'G output eval mode after 3 steps' });
          console.log(`[parity ${name}] G output eval mode after 3 steps: max abs err ${e.toExponential(2)}`);
          ye.destroy();
        }
        a0.destroy();
      } finally {
        model.destroy();
      }
    });
  });
}

describe('official .pth checkpoints (torch.save(G.state_dict()))', () => {
  const expected = fixtureTensors(fixture.expectedFiles);
  const inp = fixture.pth.input;
  it('batch norm (zip format) loads as is and translates in eval mode like PyTorch', async () => {
    const model = await Pix2Pix.fromStateDict({ G: fixtureBytes(fixture.pth.batch.file) }, { ctx, discriminator: false });
    try {
      expect(model.config.generator).toMatchObject({ inputChannels: 3, outputChannels: 3, numDowns: 5, ngf: 1, norm: 'batch' });
      const x = ctx.tensor(inp.shape, hashInput(inp.seed, inp.shape), 'x');
      const y = await model.translate(x, { eval: true });
      const e = expectClose(await y.read(), expected.get('batch.eval')!.data, { atol: 2e-5, rtol: 1e-4, label: '.pth batch eval' });
      console.log(`[parity pth] batch eval: max abs err ${e.toExponential(2)}`);
      const sd = await readStateDict(model.G);
      expect(sd.size).toBe(fixture.pth.batch.keys);
      x.destroy();
      y.destroy();
    } finally {
      model.destroy();
    }
  });

  it('instance norm (legacy format, pre-0.4 running-stat keys dropped as the reference does)', async () => {
    const model = await Pix2Pix.fromStateDict({ G: fixtureBytes(fixture.pth.instance_legacy.file) }, { ctx, discriminator: false });
    try {
      expect(model.config.generator).toMatchObject({ numDowns: 5, ngf: 1, norm: 'instance' });
      const x = ctx.tensor(inp.shape, hashInput(inp.seed, inp.shape), 'x');
      // Instance norm has no running statistics: default and eval mode agree (dropout off).
      const y = await model.translate(x, { eval: true });
      const e = expectClose(await y.read(), expected.get('instance.out')!.data, { atol: 2e-5, rtol: 1e-4, label: '.pth instance' });
      console.log(`[parity pth] legacy instance: max abs err ${e.toExponential(2)}`);
      const sd = await readStateDict(model.G);
      expect(sd.size).toBe(fixture.pth.instance_legacy.keys - fixture.pth.instance_legacy.droppedKeys!.length);
      x.destroy();
      y.destroy();
    } finally {
      model.destroy();
    }
  });
});
