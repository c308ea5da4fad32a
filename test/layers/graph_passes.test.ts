// Graph passes change how a network runs, never what it computes: the generator and the discriminator lowered
// with the standard passes give the same output, input gradient and parameter gradients as the same graph
// lowered with none (every activation its own node, concatenations copied, nothing fused, ReLUs kept), and the
// passes leave exactly the nodes they should. Batch 1 (concat-free skips) and batch 2 (copied skips).
import { describe, it, expect } from 'vitest';
import { testContext } from '../helpers/gpu.js';
import { compareClose } from '../helpers/compare.js';
import { Graph, type GraphPass, type Layer } from '../../src/layers/graph.js';
import { standardPasses } from '../../src/layers/passes.js';
import type { Parameter } from '../../src/layers/layer.js';
import { planMemory } from '../../src/runtime/memory_plan.js';
import { NLayerDiscriminator, UnetGenerator } from '../../src/gan/networks.js';
import { Rng } from '../../src/runtime/random.js';
import type { GpuContext } from '../../src/runtime/context.js';

// Batch statistics without moving running statistics, no dropout: two runs of the same graph see the same weights.
const MODE = { batchStats: true, updateStats: false, dropout: false };

interface Lowered {
  output: Float32Array;
  dx: Float32Array;
  grads: Float32Array[];
  graph: Graph;
}

async function runGraph(ctx: GpuContext, layer: Layer, params: Parameter[], x: Float32Array, shape: number[], dyValues: (n: number) => Float32Array, passes: GraphPass[]): Promise<Lowered> {
  const input = ctx.tensor(shape, x, 'x');
  const graph = new Graph(ctx);
  const { run, dy, dx, list } = ctx.deferAllocations(() => {
    const [y] = layer.record([graph.input(input)], graph.recorder(MODE, 'net'));
    const run = graph.lower([y], { passes });
    const dy = ctx.tensor(run.output.shape, dyValues(run.output.size), 'dy');
    const dx = ctx.tensor(shape, undefined, 'dx');
    return { run, dy, dx, list: [...run.forward, ...run.backward(dy, dx, { paramGrads: 'overwrite' })] };
  });
  const plan = planMemory(ctx, list, { keep: [run.output], label: 'passes test' });
  await ctx.run(list, 'passes test');
  const out = { output: await run.output.read(), dx: await dx.read(), grads: await Promise.all(params.map((p) => p.grad!.read())), graph };
  run.destroy();
  plan.destroy();
  for (const t of [input, dy, dx]) t.destroy();
  return out;
}

function expectSame(a: Float32Array, b: Float32Array, label: string): void {
  const scale = Math.max(1e-6, ...Array.from(b, Math.abs));
  const r = compareClose(a, b, { atol: 2e-5 * scale, rtol: 1e-3, label });
  expect(r.ok, r.message).toBe(true);
}

describe('graph passes', async () => {
  const ctx = await testContext();

  for (const [norm, N] of [['instance', 1], ['instance', 2], ['batch', 1], ['group', 1], ['none', 2]] as const) {
    it(`U-Net (norm ${norm}, batch ${N}): same output and gradients with and without the passes`, async () => {
      const G = new UnetGenerator(ctx, { inputChannels: 3, outputChannels: 2, numDowns: 5, ngf: 4, norm, normGroups: 2, dropout: false });
      const rng = new Rng(11);
      const params = G.params();
      for (const p of params) p.value.write(rng.normals(p.value.size, 0.3));
      const shape = [N, 3, 32, 32];
      const x = rng.normals(N * 3 * 32 * 32, 1);
      const dy = (n: number) => new Rng(5).normals(n, 1);
      const plain = await runGraph(ctx, G.root, params, x, shape, dy, []);
      const fused = await runGraph(ctx, G.root, params, x, shape, dy, standardPasses(ctx));
      expectSame(fused.output, plain.output, 'output');
      expectSame(fused.dx, plain.dx, 'dx');
      params.forEach((p, i) => expectSame(fused.grads[i], plain.grads[i], `${p.value.label} gradient`));

      // Without passes: 4 LeakyReLUs, 5 ReLUs and the tanh are nodes, 4 concatenations copy.
      const acts = (g: Graph) => g.nodes.filter((n) => n.layer.op === 'activation');
      expect(acts(plain.graph).length).toBe(10);
      // With them: the ReLUs live in the convTs, the LeakyReLUs of levels 3-5 in the norms above them (with a
      // norm); what is left runs in a conv's epilogue (tanh, LeakyReLUs after a conv) and keeps only its backward.
      const left = acts(fused.graph);
      expect(left.length).toBe(norm === 'none' ? 5 : 2);
      expect(left.every((n) => n.inProducerEpilogue)).toBe(true);
      expect(fused.graph.nodes.filter((n) => n.inputActivation?.kind === 'relu').length).toBe(5);
      const cats = fused.graph.nodes.filter((n) => n.layer.op === 'concat');
      expect(cats.length).toBe(4);
      expect(cats.every((c) => c.inputs.every((t) => (t.sliceOf !== null) === (N === 1)))).toBe(true);
      G.destroy();
    });
  }

  for (const norm of ['instance', 'group', 'batch'] as const) {
    it(`PatchGAN (norm ${norm}, batch 2): same output and gradients with and without the passes`, async () => {
      const D = new NLayerDiscriminator(ctx, { inputChannels: 4, ndf: 4, nLayers: 2, norm, normGroups: 2 });
      const rng = new Rng(12);
      const params = D.params();
      for (const p of params) p.value.write(rng.normals(p.value.size, 0.3));
      const shape = [2, 4, 32, 32];
      const x = rng.normals(2 * 4 * 32 * 32, 1);
      const dy = (n: number) => new Rng(6).normals(n, 1);
      const plain = await runGraph(ctx, D.model, params, x, shape, dy, []);
      const fused = await runGraph(ctx, D.model, params, x, shape, dy, standardPasses(ctx));
      expectSame(fused.output, plain.output, 'logits');
      expectSame(fused.dx, plain.dx, 'dx');
      params.forEach((p, i) => expectSame(fused.grads[i], plain.grads[i], `${p.value.label} gradient`));
      // Every LeakyReLU is gone: after a norm into the norm, after the first conv into the next conv's prologue.
      expect(fused.graph.nodes.some((n) => n.layer.op === 'activation')).toBe(false);
      expect(fused.graph.nodes.filter((n) => n.fusedActivation?.kind === 'leaky_relu').length).toBe(2);
      expect(fused.graph.nodes.filter((n) => n.inputActivation?.kind === 'leaky_relu').length).toBe(1);
      D.destroy();
    });
  }
});
