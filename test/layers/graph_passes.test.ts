// Graph passes change how a network runs, never what it computes: the generator and the discriminator lowered
// with the standard passes give the same output, input gradient and parameter gradients as the same graph
// lowered with none (every activation its own node, concatenations copied, nothing fused, ReLUs kept), and the
// passes leave exactly the nodes they should. Batch 1 (concat-free skips) and batch 2 (copied skips).
import { describe, it, expect } from 'vitest';
import { testContext } from '../helpers/gpu.js';
import { expectSame, runGraph } from '../helpers/graph.js';
import type { Graph } from '../../src/layers/graph.js';
import { standardPasses } from '../../src/layers/passes.js';
import { NLayerDiscriminator, UnetGenerator } from '../../src/gan/networks.js';
import { Rng } from '../../src/runtime/random.js';

// Batch statistics without moving running statistics, no dropout: two runs of the same graph see the same weights.
const MODE = { batchStats: true, updateStats: false, dropout: false };

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
      const plain = await runGraph(ctx, G.root, params, x, shape, [], { mode: MODE, dy, label: 'passes test' });
      const fused = await runGraph(ctx, G.root, params, x, shape, standardPasses(ctx), { mode: MODE, dy, label: 'passes test' });
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
      const plain = await runGraph(ctx, D.model, params, x, shape, [], { mode: MODE, dy, label: 'passes test' });
      const fused = await runGraph(ctx, D.model, params, x, shape, standardPasses(ctx), { mode: MODE, dy, label: 'passes test' });
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
