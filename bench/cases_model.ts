/**
 * Model-level benchmarks: G forward (eval mode, recorded dispatches, no readback) and one full training
 * step (G fwd, D step, G step: `Pix2Pix.trainStep`, which includes writing the batch and reading the four
 * losses back, as a training loop does), next to TF.js on the same adapter.
 */
import type { GpuContext } from '../src/runtime/context.js';
import { Rng } from '../src/runtime/random.js';
import { Pix2Pix } from '../src/gan/pix2pix.js';
import { EVAL_MODE } from '../src/layers/layer.js';
import { timeAsync, timeDispatches, type BenchResult } from './harness.js';
import { setupTfjsWebgpu } from './tfjs_setup.js';
import { TfPix2Pix } from './tfjs_pix2pix.js';

export interface ModelConfig {
  height: number;
  width: number;
  ngf: number;
  ndf: number;
  numDowns: number;
  channels: number;
}

export type ModelConfigName = 'small' | '256' | '512x1024';

export const MODEL_CONFIGS: Record<ModelConfigName, ModelConfig> = {
  // Software-adapter configuration of the performance issue: 64x128, ngf 8, 6 downs.
  small: { height: 64, width: 128, ngf: 8, ndf: 8, numDowns: 6, channels: 3 },
  // unet_256 + 70x70 PatchGAN at the reference's 256x256 and at the seed's 512x1024.
  '256': { height: 256, width: 256, ngf: 64, ndf: 64, numDowns: 8, channels: 3 },
  '512x1024': { height: 512, width: 1024, ngf: 64, ndf: 64, numDowns: 8, channels: 3 },
};

/** Multiply-add FLOPs (x2) of G forward: every conv and conv-transpose of the U-Net. */
export function generatorForwardFlops(c: ModelConfig): number {
  let flops = 0;
  let h = c.height;
  let w = c.width;
  for (let level = 0; level < c.numDowns; level++) {
    const cin = level === 0 ? c.channels : c.ngf * Math.min(2 ** (level - 1), 8);
    const cout = c.ngf * Math.min(2 ** level, 8);
    h /= 2;
    w /= 2;
    const down = 2 * cin * cout * 16 * h * w;
    // Up: innermost takes cout channels, others 2*cout (skip concat), produce cin (or output channels).
    const upIn = level === c.numDowns - 1 ? cout : 2 * cout;
    const up = 2 * upIn * (level === 0 ? c.channels : cin) * 16 * h * w;
    flops += down + up;
  }
  return flops;
}

/** FLOPs of D forward on one (A, B) pair: 70x70 PatchGAN, 3 stride-2 + 2 stride-1 convs. */
export function discriminatorForwardFlops(c: ModelConfig): number {
  let flops = 0;
  let h = c.height;
  let w = c.width;
  let cin = 2 * c.channels;
  const chans = [c.ndf, c.ndf * 2, c.ndf * 4, c.ndf * 8, 1];
  const strides = [2, 2, 2, 1, 1];
  chans.forEach((cout, i) => {
    h = strides[i] === 2 ? h / 2 : h - 1;
    w = strides[i] === 2 ? w / 2 : w - 1;
    flops += 2 * cin * cout * 16 * h * w;
    cin = cout;
  });
  return flops;
}

/**
 * One training step = G fwd + 3 D fwd (fake, real, fake for G) + backward (≈2x forward) for D twice and G once,
 * minus D's weight grads in the G step. Approximation documented here: 3·G + (3 + 2·2 + 1)·D.
 */
export function trainStepFlops(c: ModelConfig): number {
  return 3 * generatorForwardFlops(c) + 8 * discriminatorForwardFlops(c);
}

/** Dispatches of the model's recorded training step (its private graph, as bench/profile_step.ts reads it); undefined if not recorded. */
export function stepDispatches(model: Pix2Pix): number | undefined {
  return (model as unknown as { graph?: { list?: readonly unknown[] } | null }).graph?.list?.length;
}

export async function benchModel(ctx: GpuContext, name: ModelConfigName, o: { warmup: number; repeats: number; tfjs: boolean }): Promise<BenchResult[]> {
  const c = MODEL_CONFIGS[name];
  const rng = new Rng(7);
  const shape = [1, c.channels, c.height, c.width];
  const n = c.channels * c.height * c.width;
  const model = await Pix2Pix.create({ ctx, inputChannels: c.channels, outputChannels: c.channels, numDowns: c.numDowns, ngf: c.ngf, ndf: c.ndf, norm: 'instance', dropout: true, seed: 1 });
  const a = ctx.tensor(shape, rng.normals(n, 0.5), 'bench.a');
  const b = ctx.tensor(shape, rng.normals(n, 0.5), 'bench.b');
  const out: BenchResult[] = [];

  const gRun = model.G.record(a, EVAL_MODE, 0);
  const gFlops = generatorForwardFlops(c);
  const peakBefore = ctx.stats.bytesPeak;
  const g = await timeDispatches(ctx, gRun.forward, o.warmup, o.repeats);
  gRun.destroy();
  const gMs = g.gpuMs ?? g.ms;
  out.push({ group: `${name} model`, name: 'G forward', ms: g.ms, gpuMs: g.gpuMs, dispatches: gRun.forward.length, flops: gFlops, gflops: gFlops / (gMs * 1e6) });

  const stepMs = await timeAsync(async () => void (await model.trainStep({ a, b })), o.warmup, o.repeats);
  const sFlops = trainStepFlops(c);
  out.push({ group: `${name} model`, name: 'training step', ms: stepMs, dispatches: stepDispatches(model), flops: sFlops, gflops: sFlops / (stepMs * 1e6), peakBytes: Math.max(peakBefore, ctx.stats.bytesPeak) });
  model.destroy();
  a.destroy();
  b.destroy();

  if (o.tfjs) {
    try {
      const tf = await setupTfjsWebgpu();
      const tm = new TfPix2Pix(tf, { inputChannels: c.channels, outputChannels: c.channels, numDowns: c.numDowns, ngf: c.ngf, ndf: c.ndf, nLayersD: 3, height: c.height, width: c.width, dropout: true });
      const ta = tf.randomNormal([1, c.height, c.width, c.channels], 0, 0.5) as unknown as import('@tensorflow/tfjs-core').Tensor4D;
      const tb = tf.randomNormal([1, c.height, c.width, c.channels], 0, 0.5) as unknown as import('@tensorflow/tfjs-core').Tensor4D;
      // Reading one reduced value forces the whole graph to finish, without timing a full readback.
      const tfG = await timeAsync(async () => {
        const s = tf.tidy(() => tf.sum(tm.generator(ta, false)));
        await s.data();
        s.dispose();
      }, o.warmup, o.repeats);
      const tfStep = await timeAsync(async () => {
        tm.trainStep(ta, tb);
        await tm.sync();
      }, Math.min(o.warmup, 2), Math.max(3, Math.min(o.repeats, 5)));
      out[0] = { ...out[0], tfjsMs: tfG, speedup: tfG / out[0].ms };
      out[1] = { ...out[1], tfjsMs: tfStep, speedup: tfStep / out[1].ms, note: 'TF.js runs G forward twice per step (variableGrads recomputes it)' };
      tm.dispose();
      ta.dispose();
      tb.dispose();
    } catch (e) {
      out[1].note = `TF.js unavailable: ${(e as Error).message}`;
    }
  }
  return out;
}
