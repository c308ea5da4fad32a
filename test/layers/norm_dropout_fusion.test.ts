// The norm-dropout pass (passes.ts fuseNormDropout): the U-Net's up-path norm → Dropout(0.5) becomes one norm node
// whose kernels apply the mask. With the same seeds (the first seed from recording, then new ones through the
// run's seeded nodes, as a training step sets them) the graph with the standard passes must give the same output,
// input gradient and parameter gradients as the graph with no passes (dropout its own forward and backward
// dispatches), and lose both dropout dispatches; group norm, whose kernels have no dropout, keeps the node.
import { describe, it, expect } from 'vitest';
import { testContext } from '../helpers/gpu.js';
import { expectSame, runGraph } from '../helpers/graph.js';
import { standardPasses } from '../../src/layers/passes.js';
import { UnetGenerator } from '../../src/gan/networks.js';
import { Rng } from '../../src/runtime/random.js';

// Train-mode statistics (running statistics not moved, so two runs see the same weights) and dropout on.
const MODE = { batchStats: true, updateStats: false, dropout: true };
/** Recorded with seed 17, then (unless reseed is null) reseeded as a training step does. */
const run = (reseed: number | null) => ({ mode: MODE, dy: (n: number) => new Rng(5).normals(n, 1), seed: 17, reseed, label: 'norm dropout fusion test' });

describe('norm + dropout fused by the graph passes', async () => {
  const ctx = await testContext();

  for (const [norm, reseed] of [['instance', null], ['instance', 1234], ['batch', 99], ['group', 7]] as const) {
    it(`U-Net (norm ${norm}, dropout, ${reseed === null ? 'recorded seed' : 'reseeded'}): same output and gradients with and without the passes`, async () => {
      // 7 downs: two levels with dropout (numDowns - 5).
      const G = new UnetGenerator(ctx, { inputChannels: 3, outputChannels: 2, numDowns: 7, ngf: 2, norm, normGroups: 2, dropout: true });
      const rng = new Rng(13);
      const params = G.params();
      for (const p of params) p.value.write(rng.normals(p.value.size, 0.3));
      const shape = [1, 3, 128, 128];
      const x = rng.normals(3 * 128 * 128, 1);
      const plain = await runGraph(ctx, G.root, params, x, shape, [], run(reseed));
      const fused = await runGraph(ctx, G.root, params, x, shape, standardPasses(ctx), run(reseed));
      // Two dropout layers, each a forward dispatch, in the plain graph.
      expect(plain.list.filter((d) => d.op === 'dropout.forward').length).toBe(2);
      expectSame(fused.output, plain.output, 'output');
      expectSame(fused.dx, plain.dx, 'dx');
      params.forEach((p, i) => expectSame(fused.grads[i], plain.grads[i], `${p.value.label} gradient`));
      expect(fused.seeded).toBe(plain.seeded);
      const dropNodes = fused.graph.nodes.filter((n) => n.layer.op === 'dropout').length;
      const dropDispatches = fused.list.filter((d) => d.op.startsWith('dropout.')).length;
      if (norm === 'group') {
        expect(dropNodes).toBe(2);
        expect(dropDispatches).toBe(4);
      } else {
        expect(dropNodes).toBe(0);
        expect(dropDispatches).toBe(0);
        expect(fused.graph.nodes.filter((n) => n.fusedDropout?.p === 0.5).length).toBe(2);
      }
      G.destroy();
    });
  }

  it('a different seed gives a different output (the fused mask follows setSeed)', async () => {
    const G = new UnetGenerator(ctx, { inputChannels: 3, outputChannels: 2, numDowns: 7, ngf: 2, norm: 'instance', dropout: true });
    const rng = new Rng(14);
    const params = G.params();
    for (const p of params) p.value.write(rng.normals(p.value.size, 0.3));
    const shape = [1, 3, 128, 128];
    const x = rng.normals(3 * 128 * 128, 1);
    const a = await runGraph(ctx, G.root, params, x, shape, standardPasses(ctx), run(1));
    const b = await runGraph(ctx, G.root, params, x, shape, standardPasses(ctx), run(2));
    expect(a.output.some((v, i) => Math.abs(v - b.output[i]) > 1e-4)).toBe(true);
    G.destroy();
  });
});
