// The conv family's tuner, cache and policy plumbing (src/kernels/conv/): tiny shapes and one timed run per
// candidate, so this is the only test that measures. The variants it may choose are each proven against the
// CPU reference on their own in conv2d, conv_transpose2d, conv_fast_blocked, conv_weight_grad_taps and conv_parity;
// here every candidate the tuner offers is also run exactly as the tuner launches it (encodeCandidate) on
// pix2pix-like shapes against the float64 references, so a candidate added to the list is checked with it.
// The model-level tests (create({ tune: true }), the step using the table) are in test/gan/pix2pix_tune.test.ts,
// the browser's Cache API store in test/browser/tune_store.test.ts.
import { describe, it, expect, afterAll } from 'vitest';
import { mkdtempSync, readFileSync, writeFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { rawDawnDevice, testContext } from '../helpers/gpu.js';
import { destroyDispatches } from '../../src/runtime/context.js';
import { FileFormatError } from '../../src/runtime/errors.js';
import { Rng } from '../../src/runtime/random.js';
import { expectClose } from '../helpers/compare.js';
import { createContext } from '../../src/runtime/device.js';
import type { GpuContext } from '../../src/runtime/context.js';
import type { Tensor } from '../../src/runtime/tensor.js';
import { conv2dForward, conv2dBackwardInput, conv2dBackwardWeight, conv2dOutputShape } from '../../src/kernels/conv2d.js';
import { convTranspose2dForward, convTranspose2dBackwardInput, convTranspose2dBackwardWeight, convTranspose2dOutputShape } from '../../src/kernels/conv_transpose2d.js';
import { conv2dForwardCpu, conv2dBackwardCpu } from '../../src/kernels/cpu/conv2d.js';
import { convTranspose2dForwardCpu } from '../../src/kernels/cpu/conv_transpose2d.js';
import { CONV_PARAM_FIELDS, CONV_PARAMS_WGSL, packConvParams } from '../../src/kernels/conv/params.js';
import * as shaders from '../../src/kernels/conv/shaders.js';
import { blockedTuning, collectConvShapes, launchKey, shapeKey, staticImpl, staticPolicy, STATIC_POLICIES, useStaticPolicy, tunedChoices, useTunedChoices, type ConvShape } from '../../src/kernels/conv/policy.js';
import { candidatesFor, candidateTensorShapes, choiceLabel, defaultTimer, encodeCandidate, loadTuning, measureShape, tuneConvShapes, type CandidateTensors } from '../../src/kernels/conv/tune.js';
import { FileTuneStore, MemoryTuneStore, checkAdapterTuning } from '../../src/kernels/conv/tune_store.js';
import { adapterIdentity, adapterKey, classifyAdapter, deviceClass, isSoftwareClass } from '../../src/kernels/conv/device_class.js';

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
    expect(classifyAdapter({ vendor: 'google', description: 'SwiftShader Device (Subzero)' })).toBe('swiftshader');
    // Dawn over SwiftShader's Vulkan ICD in Node, and Chromium's software WebGPU.
    expect(classifyAdapter({ vendor: 'google', architecture: 'swiftshader', device: 'swiftshader-device-subzero-', description: 'SwiftShader driver 5.0.0' })).toBe('swiftshader');
    expect(classifyAdapter({ vendor: 'google', architecture: 'swiftshader', isFallbackAdapter: true })).toBe('swiftshader');
    expect(classifyAdapter({ vendor: 'microsoft', description: 'Microsoft Basic Render Driver' })).toBe('software');
    expect(['software', 'swiftshader'].map((c) => isSoftwareClass(c as 'software'))).toEqual([true, true]);
    expect(['integrated', 'discrete'].map((c) => isSoftwareClass(c as 'discrete'))).toEqual([false, false]);
    expect(classifyAdapter({ vendor: 'nvidia', architecture: 'hopper', isFallbackAdapter: true })).toBe('software');
    expect(classifyAdapter({ vendor: 'intel', architecture: 'gen-12lp' })).toBe('integrated');
    expect(classifyAdapter({ vendor: 'apple', architecture: 'metal-3' })).toBe('integrated');
    expect(classifyAdapter({ vendor: 'nvidia', architecture: 'hopper', description: 'NVIDIA H100' })).toBe('discrete');
    expect(classifyAdapter({ vendor: 'amd', architecture: 'rdna-3' })).toBe('discrete');
  });
});

/** A k4 conv geometry: kind, batch, C->M, in -> out sizes, stride (padding 1). */
function k4(batch: number, C: number, M: number, inHW: [number, number], outHW: [number, number], s: number) {
  return { batch, M, C, inH: inHW[0], inW: inHW[1], outH: outHW[0], outW: outHW[1], KH: 4, KW: 4, sh: s, sw: s, ph: 1, pw: 1 };
}

describe('static policies per device class', () => {
  // Shapes of the `small` step (keys as the tuner writes them), with each class's choice.
  const cases: [string, Parameters<typeof staticImpl>[0], ReturnType<typeof k4>, string, string][] = [
    // label, kind, geometry, lavapipe ('software'), SwiftShader
    ['first down 3->8 at 64x128', 'gather', k4(1, 3, 8, [64, 128], [32, 64], 2), 'blocked', 'blocked'],
    ['down 16->32 at 16x32', 'gather', k4(1, 16, 32, [16, 32], [8, 16], 2), 'blocked', 'tiled'],
    ['down 64->64 to 1x2', 'gather', k4(1, 64, 64, [2, 4], [1, 2], 2), 'blocked', 'direct'],
    ['D s1 32->64 at 8x16, batch 2', 'gather', k4(2, 32, 64, [8, 16], [7, 15], 1), 'blocked', 'tiled'],
    ['up 128->32 to 8x16', 'transposed', k4(1, 128, 32, [4, 8], [8, 16], 2), 'blocked', 'tiled'],
    ['up 16->3 to 64x128', 'transposed', k4(1, 16, 3, [32, 64], [64, 128], 2), 'blocked', 'blocked'],
    ['up 64->64 to 2x4', 'transposed', k4(1, 64, 64, [1, 2], [2, 4], 2), 'blocked', 'direct'],
    ['dw 3->8 at 64x128', 'weightGrad', k4(1, 3, 8, [64, 128], [32, 64], 2), 'taps', 'tiled'],
    ["D's last dw 64->1 at 7x15 -> 6x14", 'weightGrad', k4(2, 64, 1, [7, 15], [6, 14], 1), 'taps', 'direct'],
    ['down 8->16 at 32x64', 'gather', k4(1, 8, 16, [32, 64], [16, 32], 2), 'blocked', 'tiled'],
    ['down 64->64 to 2x4', 'gather', k4(1, 64, 64, [4, 8], [2, 4], 2), 'blocked', 'tiled'],
    ['up 32->8 to 32x64', 'transposed', k4(1, 32, 8, [16, 32], [32, 64], 2), 'blocked', 'tiled'],
    ['up 8->6 to 64x128 (grad input of D\'s first conv)', 'transposed', k4(1, 8, 6, [32, 64], [64, 128], 2), 'blocked', 'blocked'],
    ['dw 32->128 to 4x8', 'weightGrad', k4(1, 32, 128, [8, 16], [4, 8], 2), 'taps', 'taps'],
    ['dw 16->64 at 16x32', 'weightGrad', k4(1, 16, 64, [16, 32], [8, 16], 2), 'taps', 'tiled'],
    ['dw 64->64 to 1x2', 'weightGrad', k4(1, 64, 64, [2, 4], [1, 2], 2), 'taps', 'taps'],
    ['dw 64->128 to 2x4', 'weightGrad', k4(1, 64, 128, [4, 8], [2, 4], 2), 'taps', 'taps'],
  ];
  for (const [label, kind, g, software, swiftshader] of cases) {
    it(`${label}: lavapipe ${software}, SwiftShader ${swiftshader}`, () => {
      expect(staticImpl(kind, g, STATIC_POLICIES.software)).toBe(software);
      expect(staticImpl(kind, g, STATIC_POLICIES.swiftshader)).toBe(swiftshader);
      // The GPU classes keep lavapipe's rule until a GPU is measured.
      expect(staticImpl(kind, g, STATIC_POLICIES.discrete)).toBe(software);
    });
  }
  it('lavapipe: blocked gathers onto few columns with >= 16 channels take 16 rows per thread; other classes 8', () => {
    const tiny = k4(1, 64, 128, [4, 8], [2, 4], 2);
    const up = k4(1, 128, 64, [2, 4], [4, 8], 2);
    expect(blockedTuning('gather', tiny, {}, STATIC_POLICIES.software)).toEqual({ rows: 16 });
    expect(blockedTuning('transposed', up, { subgroups: false }, STATIC_POLICIES.software)).toEqual({ subgroups: false, rows: 16 });
    // The caller's rows win; few channels, many columns, the weight gradient and the other classes keep the kernel's default.
    expect(blockedTuning('gather', tiny, { rows: 8 }, STATIC_POLICIES.software)).toEqual({ rows: 8 });
    expect(blockedTuning('gather', k4(1, 64, 8, [4, 8], [2, 4], 2), {}, STATIC_POLICIES.software)).toEqual({});
    expect(blockedTuning('gather', k4(1, 16, 32, [16, 32], [8, 16], 2), {}, STATIC_POLICIES.software)).toEqual({});
    expect(blockedTuning('transposed', k4(1, 16, 32, [32, 64], [64, 128], 2), {}, STATIC_POLICIES.software)).toEqual({});
    expect(blockedTuning('weightGrad', tiny, {}, STATIC_POLICIES.software)).toEqual({});
    for (const c of ['swiftshader', 'integrated', 'discrete'] as const) expect(blockedTuning('gather', tiny, {}, STATIC_POLICIES[c])).toEqual({});
  });
  it('kernels other than 4x4: direct for few rows (lavapipe up to 16, SwiftShader up to 4), tiled above', () => {
    const g3 = (M: number) => ({ ...k4(1, 16, M, [16, 16], [16, 16], 1), KH: 3, KW: 3 });
    for (const p of [STATIC_POLICIES.software, STATIC_POLICIES.swiftshader]) {
      expect(staticImpl('gather', g3(4), p)).toBe('direct');
      expect(staticImpl('gather', g3(32), p)).toBe('tiled');
      expect(staticImpl('weightGrad', g3(64), p)).toBe('tiled');
    }
    expect(staticImpl('gather', g3(16), STATIC_POLICIES.software)).toBe('direct');
    expect(staticImpl('gather', g3(16), STATIC_POLICIES.swiftshader)).toBe('tiled');
  });
});

// One context for the whole file (testContext), freed at the end.
afterAll(async () => (await testContext()).destroy());

describe('conv autotuning', async () => {
  const ctx = await testContext();
  const rng = new Rng(11);

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
});

describe('adapter identity and class come from ctx.adapterInfo', async () => {
  const ctx = await testContext();
  it('identity is the four text fields of the typed adapter info, class the rule applied to it', () => {
    const i = ctx.adapterInfo;
    expect(adapterIdentity(ctx)).toEqual({ vendor: i.vendor, architecture: i.architecture, device: i.device, description: i.description });
    expect(deviceClass(ctx)).toBe(classifyAdapter(i));
    // The policy in force is the class's, unless a benchmark overrides it on this context.
    expect(staticPolicy(ctx)).toBe(STATIC_POLICIES[deviceClass(ctx)]);
    const other = deviceClass(ctx) === 'swiftshader' ? STATIC_POLICIES.software : STATIC_POLICIES.swiftshader;
    useStaticPolicy(ctx, other);
    expect(staticPolicy(ctx)).toBe(other);
    const x = ctx.tensor([1, 16, 16, 32]);
    const w = ctx.tensor([32, 16, 4, 4]);
    const y = ctx.tensor([1, 32, 8, 16]);
    const d = conv2dForward(ctx, y, x, w, null, { stride: 2, padding: 1 });
    // 16->32 at 16x32: tiled under SwiftShader's rule, blocked under lavapipe's.
    expect(d[0].pipeline.label).toMatch(other === STATIC_POLICIES.swiftshader ? /\.tiled\.pipeline$/ : /\.gather(_sg)?\.pipeline$/);
    useStaticPolicy(ctx, null);
    expect(staticPolicy(ctx)).toBe(STATIC_POLICIES[deviceClass(ctx)]);
    destroyDispatches(d);
    for (const t of [x, w, y]) t.destroy();
    // Dawn on lavapipe or SwiftShader (the machines this suite runs on) says who it is.
    expect(adapterKey(adapterIdentity(ctx))).toMatch(/\S/);
  });
  it("the rows rule reaches the launch: lavapipe's 64->128 conv onto 2x4 runs 8 row blocks of 16, under the GPU rule 16 of 8", () => {
    const x = ctx.tensor([1, 64, 4, 8]);
    const w = ctx.tensor([128, 64, 4, 4]);
    const y = ctx.tensor([1, 128, 2, 4]);
    const rowBlocks = (policy: (typeof STATIC_POLICIES)['software']) => {
      useStaticPolicy(ctx, policy);
      const d = conv2dForward(ctx, y, x, w, null, { stride: 2, padding: 1 });
      useStaticPolicy(ctx, null);
      expect(d[0].pipeline.label).toMatch(/\.gather(_sg)?\.pipeline$/);
      const z = d[0].workgroups[2];
      destroyDispatches(d);
      return z;
    };
    expect(rowBlocks(STATIC_POLICIES.software)).toBe(8);
    expect(rowBlocks(STATIC_POLICIES.discrete)).toBe(16);
    for (const t of [x, w, y]) t.destroy();
  });
});

/**
 * Conv shapes made by the public conv ops (so they are the ones a model encodes): the U-Net's k4 s2 p1 down
 * and up layers at batch 2 with odd sizes and with more rows than one block. Few, because every shape
 * compiles its own blocked/taps pipelines (seconds each on lavapipe); the other geometries (stride 1, other
 * kernels, launch shapes) are in conv_fast_blocked, conv_weight_grad_taps, conv2d and conv_transpose2d.
 */
function collectLayerShapes(ctx: GpuContext): ConvShape[] {
  const layers: { transposed: boolean; x: number[]; cout: number; k: number; stride: number; padding: number; bias: boolean }[] = [
    { transposed: false, x: [2, 3, 9, 7], cout: 5, k: 4, stride: 2, padding: 1, bias: true }, // batch 2, odd sizes
    { transposed: false, x: [1, 16, 4, 4], cout: 40, k: 4, stride: 2, padding: 1, bias: false }, // more rows than one block
    { transposed: true, x: [1, 12, 3, 4], cout: 6, k: 4, stride: 2, padding: 1, bias: true }, // U-Net up
  ];
  const all: ConvShape[] = [];
  for (const l of layers) {
    const p = { stride: l.stride, padding: l.padding };
    const w = ctx.tensor(l.transposed ? [l.x[1], l.cout, l.k, l.k] : [l.cout, l.x[1], l.k, l.k]);
    const x = ctx.tensor(l.x);
    const y = ctx.tensor(l.transposed ? convTranspose2dOutputShape(x.shape, w.shape, p) : conv2dOutputShape(x.shape, w.shape, p));
    const [dx, dw, dy] = [ctx.tensor(x.shape), ctx.tensor(w.shape), ctx.tensor(y.shape)];
    const b = l.bias ? ctx.tensor([l.cout]) : null;
    const db = l.bias ? ctx.tensor([l.cout]) : null;
    const { result, shapes } = collectConvShapes(ctx, () =>
      l.transposed
        ? [...convTranspose2dForward(ctx, y, x, w, b, p), ...convTranspose2dBackwardInput(ctx, dx, dy, w, p), ...convTranspose2dBackwardWeight(ctx, dw, db, dy, x, p)]
        : [...conv2dForward(ctx, y, x, w, b, p), ...conv2dBackwardInput(ctx, dx, dy, w, p), ...conv2dBackwardWeight(ctx, dw, db, dy, x, p)],
    );
    destroyDispatches(result);
    for (const t of [w, x, y, dx, dw, dy, b, db]) t?.destroy();
    all.push(...shapes);
  }
  return all;
}

/**
 * The float64 reference of a conv shape through the CPU references: a gather is conv2d's forward, a
 * transposed gather conv_transpose2d's forward (its output padding recovered from outH/outW), a weight
 * gradient conv2d's dw (and db for the fused bias column).
 */
function reference(s: ConvShape, v: Record<string, Float32Array | null>): Record<string, Float64Array> {
  const { g } = s;
  const p = { stride: [g.sh, g.sw] as [number, number], padding: [g.ph, g.pw] as [number, number] };
  const srcShape = [g.batch, g.C, g.inH, g.inW];
  if (s.kind === 'gather') {
    const r = conv2dForwardCpu(v.src!, srcShape, v.wgt!, [g.M, g.C, g.KH, g.KW], v.bias, p);
    expect(r.shape).toEqual([g.batch, g.M, g.outH, g.outW]);
    return { dst: r.data };
  }
  if (s.kind === 'transposed') {
    const outputPadding: [number, number] = [g.outH - ((g.inH - 1) * g.sh - 2 * g.ph + g.KH), g.outW - ((g.inW - 1) * g.sw - 2 * g.pw + g.KW)];
    const r = convTranspose2dForwardCpu(v.src!, srcShape, v.wgt!, [g.C, g.M, g.KH, g.KW], v.bias, { ...p, outputPadding });
    expect(r.shape).toEqual([g.batch, g.M, g.outH, g.outW]);
    return { dst: r.data };
  }
  const wShape = [g.M, g.C, g.KH, g.KW];
  expect(conv2dOutputShape(srcShape, wShape, p)).toEqual([g.batch, g.M, g.outH, g.outW]);
  const r = conv2dBackwardCpu(v.grad!, v.src!, srcShape, new Float32Array(wShape.reduce((a, b) => a * b)), wShape, p, s.hasBias);
  const out: Record<string, Float64Array> = s.hasBias ? { dw: r.dw, gradSum: r.db! } : { dw: r.dw };
  if (s.launch?.srcSum) {
    // conv_transpose2d's bias gradient, summed in the same launch: srcSum[c] = sum of src[n, c, :, :].
    const hw = g.inH * g.inW;
    out.srcSum = new Float64Array(g.C);
    for (let n = 0; n < g.batch; n++) for (let c = 0; c < g.C; c++) for (let i = 0; i < hw; i++) out.srcSum[c] += v.src![(n * g.C + c) * hw + i];
  }
  return out;
}

describe('every candidate the tuner may pick, launched as the tuner launches it', async () => {
  const ctx = await testContext();
  const shapes = collectLayerShapes(ctx);

  it('the layers give gathers, transposed gathers and weight gradients, with and without bias', () => {
    expect(new Set(shapes.map((s) => s.kind))).toEqual(new Set(['gather', 'transposed', 'weightGrad']));
    expect(shapes.some((s) => s.kind === 'weightGrad' && s.hasBias) && shapes.some((s) => s.kind === 'weightGrad' && !s.hasBias)).toBe(true);
    // conv_transpose2d's weight gradient carries its bias sum (the launch's srcSum), checked below as an output.
    expect(shapes.some((s) => s.kind === 'weightGrad' && s.launch?.srcSum)).toBe(true);
    // The candidate lists include every variant family: blocked for the gathers, taps for the weight gradient.
    const labels = new Set(shapes.flatMap((s) => candidatesFor(ctx, s).map(choiceLabel)));
    for (const l of ['tiled', 'direct', 'blocked', 'taps']) expect(labels).toContain(l);
    if (ctx.features.has('subgroups')) for (const l of ['blocked (no subgroups)', 'taps (no subgroups)']) expect(labels).toContain(l);
  });

  for (const [si, s] of shapes.entries()) {
    it(`${shapeKey(s.kind, s.g, s.hasBias)}: each candidate matches the float64 reference`, async () => {
      const rng = new Rng(500 + si);
      const shapesOf = candidateTensorShapes(s);
      const inputs = s.kind === 'weightGrad' ? ['grad', 'src'] : ['src', 'wgt', 'bias'];
      const values: Record<string, Float32Array | null> = {};
      for (const name of inputs) values[name] = shapesOf[name] ? rng.normals(shapesOf[name]!.reduce((a, b) => a * b), 0.5) : null;
      const want = reference(s, values);
      for (const c of candidatesFor(ctx, s)) {
        const t: Record<string, Tensor | null> = {};
        for (const [name, shape] of Object.entries(shapesOf)) t[name] = shape ? ctx.tensor(shape, values[name] ?? undefined) : null;
        // Outputs start as garbage: the candidate must overwrite them.
        for (const name of Object.keys(want)) t[name]!.write(new Float32Array(t[name]!.size).fill(7));
        const tensors = (s.kind === 'weightGrad' ? { kind: s.kind, dw: t.dw!, grad: t.grad!, src: t.src!, gradSum: t.gradSum, srcSum: t.srcSum } : { kind: s.kind, dst: t.dst!, src: t.src!, wgt: t.wgt!, bias: t.bias }) as CandidateTensors;
        const d = encodeCandidate(ctx, s, c, tensors);
        // The launch is the candidate asked for (subgroup kernels named _sg).
        const entries = d.map((x) => x.pipeline.label);
        if (c.impl === 'direct') expect(entries[0]).toMatch(/\.direct\.pipeline$/);
        if (c.subgroups === false) expect(entries.join(' ')).not.toMatch(/_sg\.pipeline/);
        await ctx.run(d);
        destroyDispatches(d);
        for (const [name, ref] of Object.entries(want)) expectClose(await t[name]!.read(), ref, { atol: 1e-4, rtol: 1e-4, label: `${choiceLabel(c)} ${name}` });
        for (const x of Object.values(t)) x?.destroy();
      }
    });
  }
});

describe('tuner timing', async () => {
  const ctx = await testContext();
  const s: ConvShape = { kind: 'gather', g: { batch: 1, M: 8, C: 4, inH: 16, inW: 16, outH: 8, outW: 8, KH: 4, KW: 4, sh: 2, sw: 2, ph: 1, pw: 1 }, hasBias: true };

  it('times with GPU timestamps where the device has them (createContext asks for the feature), else the CPU clock', async () => {
    const hasTimestamps = ctx.features.has('timestamp-query');
    // Dawn on lavapipe and on SwiftShader both offer timestamp queries; createContext must have asked for them.
    expect(hasTimestamps).toBe(true);
    expect(defaultTimer(ctx)).toBe('gpu');
    const r = await measureShape(ctx, s, { repeats: 2 });
    expect(r.timer).toBe('gpu');
    expect(Object.keys(r.candidates)).toEqual(candidatesFor(ctx, s).map(choiceLabel));
    for (const ms of Object.values(r.candidates)) expect(ms > 0 && Number.isFinite(ms)).toBe(true);
    expect(r.ms).toBe(Math.min(...Object.values(r.candidates)));
    expect(r.launches).toBeGreaterThanOrEqual(1);
    expect(r.launches).toBeLessThanOrEqual(64);
    const w = await measureShape(ctx, s, { repeats: 1, timer: 'wall' });
    expect(w.timer).toBe('wall');
    for (const ms of Object.values(w.candidates)) expect(ms > 0 && Number.isFinite(ms)).toBe(true);
  });

  it('a device without timestamp queries falls back to the CPU clock, and refuses timer gpu', async () => {
    // Through the helper, which keeps the Dawn instance alive (a collected one aborts the process).
    const device = await rawDawnDevice({ requiredFeatures: [] });
    const plain = await createContext({ device });
    try {
      expect(plain.features.has('timestamp-query')).toBe(false);
      expect(defaultTimer(plain)).toBe('wall');
      const r = await measureShape(plain, s, { repeats: 1 });
      expect(r.timer).toBe('wall');
      expect(Object.keys(r.candidates)).toEqual(candidatesFor(plain, s).map(choiceLabel));
      await expect(measureShape(plain, s, { timer: 'gpu' })).rejects.toThrow(/conv\.tune: timer 'gpu': the device's 'timestamp-query' feature: expected "?present"?, got "?absent"?/);
    } finally {
      plain.destroy();
      device.destroy();
    }
  });
});

describe('tuning cache: keys and the Node file store', async () => {
  const ctx = await testContext();
  const adapter = adapterIdentity(ctx);
  const KEY = 'gather n1 3->4 6x8->3x4 k4x4 s2x2 p1x1';
  const table = { adapter, shapes: { [KEY]: { impl: 'tiled' as const, ms: 1.5, candidates: { tiled: 1.5 }, timer: 'gpu' as const, launches: 4 } } };
  const withDir = async (fn: (dir: string) => Promise<void>) => {
    const dir = mkdtempSync(join(tmpdir(), 'conv-tune-'));
    try {
      await fn(dir);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  };

  it('a shape key changes with every field of the geometry, the kind, and the weight gradient\'s bias', () => {
    const g = { batch: 1, M: 4, C: 3, inH: 6, inW: 8, outH: 3, outW: 4, KH: 4, KW: 4, sh: 2, sw: 2, ph: 1, pw: 1 };
    const keys = new Set<string>([shapeKey('gather', g, false), shapeKey('transposed', g, false), shapeKey('weightGrad', g, false), shapeKey('weightGrad', g, true)]);
    for (const f of Object.keys(g) as (keyof typeof g)[]) keys.add(shapeKey('gather', { ...g, [f]: g[f] + 1 }, false));
    expect(keys.size).toBe(4 + Object.keys(g).length);
    // A gather's bias is not part of its key (the bias add costs the same in every variant).
    expect(shapeKey('gather', g, true)).toBe(shapeKey('gather', g, false));
  });

  it('keeps one table per adapter identity (vendor, architecture, device, description with the driver) in one file', () =>
    withDir(async (dir) => {
      const file = join(dir, 'sub', 'tune.json');
      const store = new FileTuneStore(file);
      expect(await store.load(adapter)).toBeNull();
      await store.save(table);
      const newerDriver = { ...adapter, description: `${adapter.description} (newer driver)` };
      await store.save({ adapter: newerDriver, shapes: {} });
      await store.save({ adapter: { ...adapter, device: 'another' }, shapes: { [KEY]: { impl: 'direct', ms: 9, candidates: { direct: 9 } } } });
      expect(await store.load(adapter)).toEqual(table);
      expect(await store.load(newerDriver)).toEqual({ adapter: newerDriver, shapes: {} });
      expect(await store.load({ ...adapter, vendor: 'someone else' })).toBeNull();
      expect(Object.keys(JSON.parse(readFileSync(file, 'utf8')).adapters).sort()).toEqual([adapterKey(adapter), adapterKey(newerDriver), adapterKey({ ...adapter, device: 'another' })].sort());
      // Saving again replaces this adapter's table only.
      await store.save({ adapter, shapes: {} });
      expect(await store.load(adapter)).toEqual({ adapter, shapes: {} });
      expect((await store.load({ ...adapter, device: 'another' }))?.shapes[KEY].impl).toBe('direct');
    }));

  it('a damaged or foreign file is an error naming the file and the fix, and is never overwritten', () =>
    withDir(async (dir) => {
      const file = join(dir, 'tune.json');
      const store = new FileTuneStore(file);
      const cases: [string, RegExp][] = [
        ['{"version": 1, "adapters": {', /tune\.json.*tuning cache is not valid JSON \(delete the file to re-tune\)/],
        ['{"name": "some-package", "version": "1.0.0"}', /tune\.json.*not \{ version: 1, adapters \}/],
        ['[1, 2, 3]', /tune\.json.*not \{ version: 1, adapters \}/],
        ['{"version": 2, "adapters": {}}', /tune\.json.*not \{ version: 1, adapters \}/],
        [JSON.stringify({ version: 1, adapters: { [adapterKey(adapter)]: { adapter, shapes: { [KEY]: { impl: 'fast', ms: 1, candidates: {} } } } } }), /tune\.json.*shape 'gather n1 3->4 6x8->3x4 k4x4 s2x2 p1x1' has no valid impl/],
        [JSON.stringify({ version: 1, adapters: { [adapterKey(adapter)]: { adapter, shapes: { [KEY]: { impl: 'blocked', subgroups: 'yes', ms: 1 } } } } }), /has no valid impl\/subgroups\/ms/],
        [JSON.stringify({ version: 1, adapters: { [adapterKey(adapter)]: 7 } }), /tune\.json.*entry is not an object/],
      ];
      for (const [text, message] of cases) {
        writeFileSync(file, text);
        const err = await store.load(adapter).then(() => null, (e: unknown) => e);
        expect(err, text).toBeInstanceOf(FileFormatError);
        expect(String((err as Error).message), text).toMatch(message);
      }
      // save() reads the file first: a foreign file is refused, not replaced.
      const foreign = '{"name": "some-package", "version": "1.0.0"}\n';
      writeFileSync(file, foreign);
      await expect(store.save(table)).rejects.toThrow(FileFormatError);
      expect(readFileSync(file, 'utf8')).toBe(foreign);
      // The entry check is the same for the browser store's entries.
      expect(() => checkAdapterTuning({ adapter, shapes: { [KEY]: { impl: 'taps', ms: 'slow' } } }, "Cache API 'x'")).toThrow(/Cache API 'x'.*has no valid impl/);
    }));
});

/**
 * Fused launches (fusion.ts: input prologue, output epilogue, grad-input epilogue; accumulation; the
 * convT bias sum) are tuned as themselves: their own key, and the tuner times the very launch the step runs.
 */
describe('the tuner keys and times the fused launch, not the plain conv of its geometry', async () => {
  const ctx = await testContext();
  const p = { stride: 2, padding: 1 };
  const leaky = { kind: 'leaky_relu' as const, slope: 0.2 };
  const xShape = [1, 3, 8, 8];
  const wShape = [4, 3, 4, 4];
  const yShape = conv2dOutputShape(xShape, wShape, p);
  // conv_transpose2d 4->3 (its x is [1, 4, 4, 4], w [4, 3, 4, 4], y [1, 3, 8, 8]).
  const txShape = [1, 4, 4, 4];
  const twShape = [4, 3, 4, 4];
  const tyShape = convTranspose2dOutputShape(txShape, twShape, p);

  /** The three launches of one small layer (fused, or plain with the same geometries), or just the one of `only`. */
  function encodeLayer(t: Record<string, Tensor>, fused: boolean, impl: 'auto' | TunedChoice = 'auto', only?: string): ReturnType<typeof conv2dForward> {
    const q = impl === 'auto' ? p : { ...p, impl: impl.impl, blocked: impl.subgroups === false ? { subgroups: false } : undefined };
    const f = (kind: string) => !only || only === kind;
    return [
      ...(f('gather') ? conv2dForward(ctx, t.y, t.x, t.w, t.b, fused ? { ...q, inputActivation: leaky, outputActivation: { kind: 'tanh' } } : q) : []),
      ...(f('transposed') ? conv2dBackwardInput(ctx, t.dx, t.dy, t.w, fused ? { ...q, accumulate: true, dxActivation: { act: leaky, saved: t.saved, savedIs: 'input' } } : q) : []),
      ...(f('weightGrad') ? convTranspose2dBackwardWeight(ctx, t.tdw, fused ? t.tdb : null, t.tdy, t.tx, fused ? { ...q, inputActivation: { kind: 'relu' } } : q) : []),
    ];
  }
  type TunedChoice = { impl: 'tiled' | 'direct' | 'blocked' | 'taps'; subgroups?: boolean };
  const rng = new Rng(77);
  const make = () => {
    const shapes: Record<string, number[]> = { x: xShape, w: wShape, b: [4], y: yShape, dx: xShape, dy: yShape, saved: xShape, tx: txShape, tdw: twShape, tdb: [3], tdy: tyShape };
    return Object.fromEntries(Object.entries(shapes).map(([k, s]) => [k, ctx.tensor(s, rng.normals(s.reduce((a, b) => a * b), 0.5), k)]));
  };

  it('a fused launch has its own key; the plain launch keeps the key caches already hold', () => {
    const t = make();
    const plain = collectConvShapes(ctx, () => encodeLayer(t, false));
    const fused = collectConvShapes(ctx, () => encodeLayer(t, true));
    destroyDispatches([...plain.result, ...fused.result]);
    for (const x of Object.values(t)) x.destroy();
    const keys = (r: { shapes: ConvShape[] }) => r.shapes.map((s) => shapeKey(s.kind, s.g, s.hasBias, s.launch));
    expect(keys(plain)).toEqual(plain.shapes.map((s) => shapeKey(s.kind, s.g, s.hasBias)));
    expect(keys(plain)[0]).toBe('gather n1 3->4 8x8->4x4 k4x4 s2x2 p1x1');
    expect(keys(fused)).toEqual([
      'gather n1 3->4 8x8->4x4 k4x4 s2x2 p1x1 | src=leaky_relu(0.2) out=tanh',
      'transposed n1 4->3 4x4->8x8 k4x4 s2x2 p1x1 | dact=leaky_relu(0.2)/input/term acc',
      'weightGrad n1 3->4 8x8->4x4 k4x4 s2x2 p1x1 | grad=relu srcsum',
    ]);
    expect(launchKey({})).toBe('');
    expect(launchKey({ fusion: { dstGrad: { act: { kind: 'tanh' }, saved: 'output', applyTo: 'sum' } } })).toBe(' | dact=tanh/output/sum');
  });

  it('each candidate of a fused shape, launched as the tuner times it, computes what the fused op computes with that variant', async () => {
    const t0 = make();
    const { result, shapes } = collectConvShapes(ctx, () => encodeLayer(t0, true));
    destroyDispatches(result);
    for (const x of Object.values(t0)) x.destroy();
    for (const s of shapes) {
      for (const c of candidatesFor(ctx, s)) {
        // The fused op with the variant forced (proven against float64 in conv_fused.test.ts) ...
        const t = make();
        const outs = s.kind === 'gather' ? ['y'] : s.kind === 'transposed' ? ['dx'] : ['tdw', 'tdb'];
        const before = await Promise.all(outs.map((k) => t[k].read()));
        const mine = encodeLayer(t, true, c, s.kind);
        await ctx.run(mine);
        destroyDispatches(mine);
        const want = await Promise.all(outs.map((k) => t[k].read()));
        // ... against the tuner's launch of the candidate on the same inputs (dst starting from the same values).
        outs.forEach((k, i) => t[k].write(before[i]));
        const tensors: CandidateTensors =
          s.kind === 'weightGrad'
            ? { kind: 'weightGrad', dw: t.tdw, grad: t.tx, src: t.tdy, gradSum: null, srcSum: t.tdb }
            : s.kind === 'gather'
              ? { kind: 'gather', dst: t.y, src: t.x, wgt: t.w, bias: t.b }
              : { kind: 'transposed', dst: t.dx, src: t.dy, wgt: t.w, bias: null, saved: t.saved };
        const d = encodeCandidate(ctx, s, c, tensors);
        await ctx.run(d);
        destroyDispatches(d);
        for (const [i, k] of outs.entries()) expectClose(await t[k].read(), want[i], { atol: 1e-5, rtol: 1e-5, label: `${shapeKey(s.kind, s.g, s.hasBias, s.launch)} ${choiceLabel(c)} ${k}` });
        for (const x of Object.values(t)) x.destroy();
      }
    }
  });

  it('measures fused shapes (with their saved and bias-sum tensors) and the tuned choice drives only the fused launch', async () => {
    const t = make();
    const { result, shapes } = collectConvShapes(ctx, () => encodeLayer(t, true));
    destroyDispatches(result);
    const tuned = await tuneConvShapes(ctx, shapes, { repeats: 1, warmup: 0 });
    expect(Object.keys(tuned.shapes)).toEqual(shapes.map((s) => shapeKey(s.kind, s.g, s.hasBias, s.launch)));
    // Force 'direct' for the fused forward only: the fused launch takes it, the plain one of the same geometry keeps the static rule.
    const fwd = shapes[0];
    expect(staticImpl(fwd.kind, fwd.g, STATIC_POLICIES[deviceClass(ctx)])).not.toBe('direct');
    useTunedChoices(ctx, new Map([[shapeKey(fwd.kind, fwd.g, fwd.hasBias, fwd.launch), { impl: 'direct' as const }]]));
    const fused = encodeLayer(t, true);
    const plain = encodeLayer(t, false);
    expect(fused[0].pipeline.label).toBe('conv2d.forward.direct.pipeline');
    expect(plain[0].pipeline.label).not.toBe('conv2d.forward.direct.pipeline');
    destroyDispatches([...fused, ...plain]);
    useTunedChoices(ctx, new Map());
    for (const x of Object.values(t)) x.destroy();
  });
});
