// Activations fused into the conv kernels (src/kernels/conv/fusion.ts): the input prologue (forward and weight
// gradient read act(x)), the output epilogue (y = act(conv + b)) and the grad-input epilogue
// (dx = [dx +] act'(saved) * g), for conv2d and conv_transpose2d, on every variant the policy or the tuner may
// pick (tiled, direct, blocked with and without subgroups, taps with and without subgroups), each against the
// float64 CPU references composed (cpu/conv_fused.ts + cpu/conv2d.ts / conv_transpose2d.ts), whose gradients
// are checked against central differences first.
import { describe, it, expect, afterAll } from 'vitest';
import { testContext } from '../helpers/gpu.js';
import { expectClose } from '../helpers/compare.js';
import { checkGradient } from '../helpers/gradcheck.js';
import { destroyDispatches, type Dispatch } from '../../src/runtime/context.js';
import { Pix2PixError } from '../../src/runtime/errors.js';
import { Rng } from '../../src/runtime/random.js';
import * as conv from '../../src/kernels/conv2d.js';
import * as convT from '../../src/kernels/conv_transpose2d.js';
import type { FusedActivation } from '../../src/kernels/conv/fusion.js';
import { conv2dBackwardCpu, conv2dForwardCpu } from '../../src/kernels/cpu/conv2d.js';
import { convTranspose2dBackwardCpu, convTranspose2dForwardCpu } from '../../src/kernels/cpu/conv_transpose2d.js';
import { fusedActivationCpu, fusedActivationGradCpu } from '../../src/kernels/cpu/conv_fused.js';

const size = (s: readonly number[]) => s.reduce((a, b) => a * b, 1);

interface Case {
  name: string;
  op: 'conv2d' | 'convT';
  x: number[];
  w: number[]; // PyTorch layout of the op
  p: conv.Conv2dParams & convT.ConvTranspose2dParams;
  inAct: FusedActivation;
  outAct?: FusedActivation;
}

// Odd, non-square shapes, batch 2 (the batched D pass) and 1, k4 s2 p1 (pix2pix's) and k3 s1 p1 (blocked fits 9 taps).
const CASES: Case[] = [
  { name: 'conv2d leaky->conv k4s2', op: 'conv2d', x: [2, 3, 9, 7], w: [5, 3, 4, 4], p: { stride: 2, padding: 1 }, inAct: { kind: 'leaky_relu', slope: 0.2 }, outAct: { kind: 'leaky_relu', slope: 0.2 } },
  { name: 'conv2d relu->conv k3s1', op: 'conv2d', x: [2, 4, 5, 6], w: [3, 4, 3, 3], p: { stride: 1, padding: 1 }, inAct: { kind: 'relu' }, outAct: { kind: 'tanh' } },
  { name: 'convT relu->convT k4s2', op: 'convT', x: [2, 6, 3, 5], w: [6, 3, 4, 4], p: { stride: 2, padding: 1 }, inAct: { kind: 'relu' }, outAct: { kind: 'tanh' } },
  // (conv_transpose2d k3 s1 is left out: Mesa takes 30-90 s to compile its blocked pipelines, and pix2pix has none.)
  { name: 'convT leaky->convT k4s2 n1', op: 'convT', x: [1, 5, 4, 3], w: [5, 7, 4, 4], p: { stride: 2, padding: 1 }, inAct: { kind: 'leaky_relu', slope: 0.3 }, outAct: { kind: 'relu' } },
];

function reference(c: Case) {
  const fwd = c.op === 'conv2d' ? conv2dForwardCpu : convTranspose2dForwardCpu;
  const bwd = c.op === 'conv2d' ? conv2dBackwardCpu : convTranspose2dBackwardCpu;
  return { fwd, bwd };
}

function data(c: Case, seed: number) {
  const rng = new Rng(seed);
  const x = Float64Array.from(rng.normals(size(c.x)));
  const w = Float64Array.from(rng.normals(size(c.w), 0.5));
  const bLen = c.op === 'conv2d' ? c.w[0] : c.w[1];
  const b = Float64Array.from(rng.normals(bLen));
  const { fwd } = reference(c);
  const yShape = fwd(x, c.x, w, c.w, null, c.p).shape;
  const dy = Float64Array.from(rng.normals(size(yShape)));
  return { x, w, b, yShape, dy };
}

describe('fused conv activations: CPU references vs finite differences', () => {
  for (const c of CASES) {
    it(`${c.name}: d/dx of conv(act(x)) and of outAct(conv(x) + b)`, () => {
      const { x, w, b, dy } = data(c, 3);
      const { fwd, bwd } = reference(c);
      // Input prologue: L = sum dy * conv(act(x)); dL/dx = act'(x) * conv's dx at act(x).
      const ax = fusedActivationCpu(x, c.inAct);
      const gIn = fusedActivationGradCpu(bwd(dy, ax, c.x, w, c.w, c.p, true).dx, x, c.inAct, 'input');
      checkGradient({ label: `${c.name} input prologue dx`, x, weights: dy, f: (xx) => fwd(fusedActivationCpu(xx, c.inAct), c.x, w, c.w, null, c.p).data, analytic: gIn, eps: 1e-6, atol: 1e-6, rtol: 1e-5 });
      // Output epilogue: L = sum dy * act(conv(x) + b); dL/dx = conv's dx of act'(y) * dy, from the saved output.
      const outAct = c.outAct!;
      const y = fusedActivationCpu(fwd(x, c.x, w, c.w, b, c.p).data, outAct);
      const gOut = bwd(fusedActivationGradCpu(dy, y, outAct, 'output'), x, c.x, w, c.w, c.p, true).dx;
      checkGradient({ label: `${c.name} output epilogue dx`, x, weights: dy, f: (xx) => fusedActivationCpu(fwd(xx, c.x, w, c.w, b, c.p).data, outAct), analytic: gOut, eps: 1e-6, atol: 1e-6, rtol: 1e-5 });
    });
  }
});

const VARIANTS = [
  { label: 'tiled', impl: 'tiled' },
  { label: 'direct', impl: 'direct' },
  { label: 'blocked', impl: 'blocked' },
  { label: 'blocked (no subgroups)', impl: 'blocked', blocked: { subgroups: false } },
  { label: 'taps', impl: 'taps' },
  { label: 'taps (no subgroups)', impl: 'taps', blocked: { subgroups: false } },
] as const;

describe('fused conv activations on the GPU vs the float64 references', async () => {
  const ctx = await testContext();
  afterAll(() => ctx.trimPool());
  const tol = { atol: 2e-4, rtol: 2e-4 };

  for (const c of CASES) {
    for (const v of VARIANTS) {
      it(`${c.name}: ${v.label}`, async () => {
        const { x, w, b, yShape, dy } = data(c, 5);
        const { fwd, bwd } = reference(c);
        const ops = c.op === 'conv2d'
          ? { fwd: conv.conv2dForward, bIn: conv.conv2dBackwardInput, bW: conv.conv2dBackwardWeight }
          : { fwd: convT.convTranspose2dForward, bIn: convT.convTranspose2dBackwardInput, bW: convT.convTranspose2dBackwardWeight };
        const base = { ...c.p, impl: v.impl, blocked: 'blocked' in v ? v.blocked : undefined };
        const t = (shape: readonly number[], d: ArrayLike<number> | null, label: string) =>
          ctx.tensor(shape, d ? Float32Array.from(d) : new Float32Array(size(shape)).fill(NaN), label);
        const xT = t(c.x, x, 'x');
        const wT = t(c.w, w, 'w');
        const bT = t([b.length], b, 'b');
        const dyT = t(yShape, dy, 'dy');
        const y1 = t(yShape, null, 'y prologue');
        const y2 = t(yShape, null, 'y epilogue');
        const dx = t(c.x, null, 'dx');
        const old = Float64Array.from(new Rng(9).normals(size(c.x)));
        const dxAcc = t(c.x, old, 'dx accumulated');
        const dw = t(c.w, null, 'dw');
        const db = t([b.length], null, 'db');
        const ySaved = t(c.x, fusedActivationCpu(x, c.outAct!), 'act(x) as a producer output');
        const dxOut = t(c.x, null, 'dx from saved output');
        const dxSum = t(c.x, old, "dx = act' * (dx + g)");
        const d: Dispatch[] = [
          ...ops.fwd(ctx, y1, xT, wT, bT, { ...base, inputActivation: c.inAct }),
          ...ops.fwd(ctx, y2, xT, wT, bT, { ...base, outputActivation: c.outAct }),
          ...ops.bIn(ctx, dx, dyT, wT, { ...base, inputActivation: c.inAct, dxActivation: { act: c.inAct, saved: xT, savedIs: 'input' } }),
          ...ops.bIn(ctx, dxAcc, dyT, wT, { ...base, accumulate: true, dxActivation: { act: c.inAct, saved: xT, savedIs: 'input' } }),
          ...ops.bIn(ctx, dxOut, dyT, wT, { ...base, dxActivation: { act: c.outAct!, saved: ySaved, savedIs: 'output' } }),
          ...ops.bIn(ctx, dxSum, dyT, wT, { ...base, accumulate: true, dxActivation: { act: c.inAct, saved: xT, savedIs: 'input', applyTo: 'sum' } }),
          ...ops.bW(ctx, dw, db, dyT, xT, { ...base, inputActivation: c.inAct }),
        ];
        await ctx.run(d);
        destroyDispatches(d);
        const ax = fusedActivationCpu(x, c.inAct);
        const ref = bwd(dy, ax, c.x, w, c.w, c.p, true);
        const gx = fusedActivationGradCpu(ref.dx, x, c.inAct, 'input');
        const label = `${c.name} ${v.label}`;
        expectClose(await y1.read(), fwd(ax, c.x, w, c.w, b, c.p).data, { ...tol, label: `${label} y = conv(act(x)) + b` });
        expectClose(await y2.read(), fusedActivationCpu(fwd(x, c.x, w, c.w, b, c.p).data, c.outAct!), { ...tol, label: `${label} y = act(conv(x) + b)` });
        expectClose(await dx.read(), gx, { ...tol, label: `${label} dx = act'(x) * g` });
        expectClose(await dxAcc.read(), gx.map((g, i) => g + old[i]), { ...tol, label: `${label} dx += act'(x) * g` });
        const plain = bwd(dy, x, c.x, w, c.w, c.p, true).dx;
        expectClose(await dxOut.read(), fusedActivationGradCpu(plain, fusedActivationCpu(x, c.outAct!), c.outAct!, 'output'), { ...tol, label: `${label} dx = act'(saved y) * g` });
        expectClose(await dxSum.read(), fusedActivationGradCpu(ref.dx.map((g, i) => g + old[i]), x, c.inAct, 'input'), { ...tol, label: `${label} dx = act'(x) * (dx + g)` });
        expectClose(await dw.read(), ref.dw, { ...tol, label: `${label} dw from act(x)` });
        expectClose(await db.read(), ref.db!, { ...tol, label: `${label} db` });
        for (const u of [xT, wT, bT, dyT, y1, y2, dx, dxAcc, dw, db, ySaved, dxOut, dxSum]) u.destroy();
      });
    }
  }

  it('refuses an inputActivation on backwardInput without its derivative, and outputActivation in backward', () => {
    const x = ctx.tensor([1, 2, 6, 6], undefined, 'x');
    const w = ctx.tensor([3, 2, 4, 4], undefined, 'w');
    const dy = ctx.tensor([1, 3, 3, 3], undefined, 'dy');
    const dw = ctx.tensor([3, 2, 4, 4], undefined, 'dw');
    const p = { stride: 2, padding: 1 };
    expect(() => conv.conv2dBackwardInput(ctx, x, dy, w, { ...p, inputActivation: { kind: 'relu' } })).toThrow(Pix2PixError);
    expect(() => conv.conv2dBackwardWeight(ctx, dw, null, dy, x, { ...p, outputActivation: { kind: 'tanh' } })).toThrow(/forward-only/);
    expect(() => conv.conv2dBackwardInput(ctx, x, dy, w, { ...p, dxActivation: { act: { kind: 'relu' }, saved: dy, savedIs: 'input' } })).toThrow(/dxActivation.saved/);
    for (const u of [x, w, dy, dw]) u.destroy();
  });

  // conv_transpose2d's db (the sum of dy per channel) runs in extra workgroups of the weight-gradient dispatch
  // for 'blocked' and 'taps' (engine.ts srcSum), up to BIAS_SERIAL_MAX values per channel.
  const dbCases = [
    { label: 'one split', x: [2, 5, 3, 4], blocked: { splits: 1 } as conv.BlockedTuning, dispatches: 1 },
    { label: '3 splits (partials + sum_splits)', x: [2, 5, 9, 4], blocked: { splits: 3 }, dispatches: 2 },
    { label: 'dy above BIAS_SERIAL_MAX (own bias_grad pass)', x: [1, 2, 33, 65], blocked: { splits: 1 }, dispatches: 2 },
  ];
  for (const dc of dbCases) {
    for (const v of VARIANTS.filter((u) => u.impl === 'blocked' || u.impl === 'taps')) {
      for (const accumulate of [false, true]) {
        it(`convT db inside the weight gradient, ${dc.label}: ${v.label}${accumulate ? ', accumulate' : ''}`, async () => {
          const c: Case = { name: 'db', op: 'convT', x: dc.x, w: [dc.x[1], 3, 4, 4], p: { stride: 2, padding: 1 }, inAct: { kind: 'relu' } };
          const { x, w, yShape, dy } = data(c, 11);
          const base = { ...c.p, impl: v.impl, blocked: { ...('blocked' in v ? v.blocked : {}), ...dc.blocked }, accumulate };
          const oldW = Float64Array.from(new Rng(1).normals(size(c.w)));
          const oldB = Float64Array.from(new Rng(2).normals(3));
          const xT = ctx.tensor(c.x, Float32Array.from(x), 'x');
          const dyT = ctx.tensor(yShape, Float32Array.from(dy), 'dy');
          const dw = ctx.tensor(c.w, accumulate ? Float32Array.from(oldW) : new Float32Array(size(c.w)).fill(NaN), 'dw');
          const db = ctx.tensor([3], accumulate ? Float32Array.from(oldB) : new Float32Array(3).fill(NaN), 'db');
          const d = convT.convTranspose2dBackwardWeight(ctx, dw, db, dyT, xT, base);
          expect(d.length).toBe(dc.dispatches);
          await ctx.run(d);
          destroyDispatches(d);
          const ref = convTranspose2dBackwardCpu(dy, x, c.x, w, c.w, c.p, true);
          expectClose(await dw.read(), ref.dw.map((g, i) => g + (accumulate ? oldW[i] : 0)), { ...tol, label: 'dw' });
          expectClose(await db.read(), ref.db!.map((g, i) => g + (accumulate ? oldB[i] : 0)), { ...tol, label: 'db' });
          for (const u of [xT, dyT, dw, db]) u.destroy();
        });
      }
    }
  }
});
