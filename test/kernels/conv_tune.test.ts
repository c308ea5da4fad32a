// The conv family's tuner, cache and policy plumbing (src/kernels/conv/): tiny shapes and one timed run per
// candidate, so this is the only test that measures. The variants it may choose are each proven against the
// CPU reference on their own in conv2d, conv_transpose2d, conv_fast_blocked, conv_weight_grad_taps and conv_parity.
import { describe, it, expect, afterAll } from 'vitest';
import { mkdtempSync, readFileSync, writeFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { testContext } from '../helpers/gpu.js';
import { destroyDispatches } from '../../src/runtime/context.js';
import { FileFormatError } from '../../src/runtime/errors.js';
import { Rng } from '../../src/runtime/random.js';
import { conv2dForward, conv2dBackwardWeight, conv2dOutputShape } from '../../src/kernels/conv2d.js';
import { conv2dForwardCpu } from '../../src/kernels/cpu/conv2d.js';
import { CONV_PARAM_FIELDS, CONV_PARAMS_WGSL, packConvParams } from '../../src/kernels/conv/params.js';
import * as shaders from '../../src/kernels/conv/shaders.js';
import { collectConvShapes, shapeKey, staticImpl, STATIC_POLICIES, tunedChoices, useTunedChoices } from '../../src/kernels/conv/policy.js';
import { candidatesFor, loadTuning, tuneConvShapes } from '../../src/kernels/conv/tune.js';
import { FileTuneStore, MemoryTuneStore } from '../../src/kernels/conv/tune_store.js';
import { adapterIdentity, classifyAdapter } from '../../src/kernels/conv/device_class.js';

describe('conv uniform struct: one declaration', () => {
  it('every ConvParams shader gets the generated struct exactly once, and no shader file declares its own', () => {
    const texts = [shaders.gatherShader, shaders.transposedShader, shaders.weightGradShader, shaders.blockedShader, shaders.tapsShader, shaders.tapsSgTemplate, shaders.blockedSgTemplate];
    for (const t of texts) {
      expect(t.split('struct ConvParams {').length).toBe(2);
      expect(t).toContain(CONV_PARAMS_WGSL);
      expect(t).not.toMatch(/struct Params \{/);
    }
  });

  it('packs by name in declaration order, unused fields 0', () => {
    const g = { batch: 1, M: 2, C: 3, inH: 4, inW: 5, outH: 6, outW: 7, KH: 8, KW: 9, sh: 10, sw: 11, ph: 12, pw: 13 };
    const u = packConvParams(g, { accumulate: 1, rowsPerSplit: 17 });
    expect(u).toHaveLength(CONV_PARAM_FIELDS.length);
    expect(u.slice(0, 13)).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13]);
    const at = (name: string) => u[CONV_PARAM_FIELDS.findIndex(([n]) => n === name)];
    expect([at('hasBias'), at('accumulate'), at('chunk'), at('splits'), at('rowsPerSplit')]).toEqual([0, 1, 0, 0, 17]);
  });
});

describe('device class rule', () => {
  it('software, integrated and discrete adapters', () => {
    expect(classifyAdapter({ vendor: 'mesa', architecture: 'software', description: 'llvmpipe: Mesa 25.0.7' })).toBe('software');
    expect(classifyAdapter({ vendor: 'google', description: 'SwiftShader Device (Subzero)' })).toBe('software');
    expect(classifyAdapter({ vendor: 'nvidia', architecture: 'hopper', isFallbackAdapter: true })).toBe('software');
    expect(classifyAdapter({ vendor: 'intel', architecture: 'gen-12lp' })).toBe('integrated');
    expect(classifyAdapter({ vendor: 'apple', architecture: 'metal-3' })).toBe('integrated');
    expect(classifyAdapter({ vendor: 'nvidia', architecture: 'hopper', description: 'NVIDIA H100' })).toBe('discrete');
    expect(classifyAdapter({ vendor: 'amd', architecture: 'rdna-3' })).toBe('discrete');
  });
});

describe('conv autotuning', async () => {
  const ctx = await testContext();
  const rng = new Rng(11);
  afterAll(() => ctx.destroy());

  // conv2d 3->4, 6x8, k4 s2 p1 with bias: forward (gather), grad input (transposed), grad weight (+ bias).
  const xShape = [1, 3, 6, 8];
  const wShape = [4, 3, 4, 4];
  const p = { stride: 2, padding: 1 };
  const yShape = conv2dOutputShape(xShape, wShape, p);

  it('collects the shapes a conv encodes, tunes them into a store, and the stored choice drives auto', async () => {
    const [x, w, b, y, dw, db, dy] = [ctx.tensor(xShape), ctx.tensor(wShape), ctx.tensor([4]), ctx.tensor(yShape), ctx.tensor(wShape), ctx.tensor([4]), ctx.tensor(yShape)];
    const { result, shapes } = collectConvShapes(ctx, () => [...conv2dForward(ctx, y, x, w, b, p), ...conv2dBackwardWeight(ctx, dw, db, dy, x, p)]);
    destroyDispatches(result);
    expect(shapes.map((s) => s.kind)).toEqual(['gather', 'weightGrad']);
    expect(shapes[1].hasBias).toBe(true);

    const store = new MemoryTuneStore();
    const t = await tuneConvShapes(ctx, shapes, { store, repeats: 1, warmup: 0 });
    for (const s of shapes) {
      const r = t.shapes[shapeKey(s.kind, s.g, s.hasBias)];
      const allowed = candidatesFor(ctx, s).map((c) => `${c.impl}/${c.subgroups}`);
      expect(allowed).toContain(`${r.impl}/${r.subgroups}`);
      expect(Object.keys(r.candidates)).toHaveLength(allowed.length);
    }
    // The store holds the table under this adapter; loading it on the context applies it.
    expect((await store.load(adapterIdentity(ctx)))?.shapes).toEqual(t.shapes);
    useTunedChoices(ctx, new Map());
    expect(await loadTuning(ctx, store)).toBe(2);
    expect(tunedChoices(ctx).size).toBe(2);

    // A stored choice replaces the static one: force 'direct' for the forward shape, check kernel and values.
    const fwd = shapes[0];
    expect(staticImpl(fwd.kind, fwd.g, STATIC_POLICIES.software)).toBe('blocked');
    useTunedChoices(ctx, new Map([[shapeKey(fwd.kind, fwd.g, fwd.hasBias), { impl: 'direct' as const }]]));
    const xv = rng.normals(x.size, 1);
    const wv = rng.normals(w.size, 1);
    const bv = rng.normals(4, 1);
    x.write(xv);
    w.write(wv);
    b.write(bv);
    const d = conv2dForward(ctx, y, x, w, b, p);
    expect(d[0].pipeline.label).toBe('conv2d.forward.direct.pipeline');
    await ctx.run(d);
    const ref = conv2dForwardCpu(xv, xShape, wv, wShape, bv, p);
    const got = await y.read();
    for (let i = 0; i < got.length; i++) expect(Math.abs(got[i] - ref.data[i])).toBeLessThan(1e-4);
    destroyDispatches(d);
    // Without a table the static policy is back.
    useTunedChoices(ctx, new Map());
    const d2 = conv2dForward(ctx, y, x, w, b, p);
    expect(d2[0].pipeline.label).toMatch(/conv2d\.forward\.gather(_sg)?\.pipeline/);
    destroyDispatches(d2);
    for (const z of [x, w, b, y, dw, db, dy]) z.destroy();
  });

  it('keeps tables per adapter in a JSON file and names a damaged file', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'conv-tune-'));
    try {
      const file = join(dir, 'sub', 'tune.json');
      const store = new FileTuneStore(file);
      const adapter = adapterIdentity(ctx);
      expect(await store.load(adapter)).toBeNull();
      const table = { adapter, shapes: { 'gather n1 3->4 6x8->3x4 k4x4 s2x2 p1x1': { impl: 'tiled' as const, ms: 1.5, candidates: { tiled: 1.5 } } } };
      await store.save(table);
      await store.save({ adapter: { ...adapter, device: 'another' }, shapes: {} });
      expect(await store.load(adapter)).toEqual(table);
      expect(Object.keys(JSON.parse(readFileSync(file, 'utf8')).adapters)).toHaveLength(2);
      writeFileSync(file, '{"version": 1, "adapters": {');
      await expect(store.load(adapter)).rejects.toThrow(FileFormatError);
      await expect(store.load(adapter)).rejects.toThrow(/tune\.json.*not valid JSON/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
