// The activation-backward pass (passes.ts fuseActivationBackwardIntoConvGradInput): an activation whose output a
// conv reads first (in recording order) and others read too has its backward taken by that conv's grad-input
// epilogue (act'(y) * (accumulated + own term), in place). The graph with the pass must give the same output,
// input gradient and parameter gradients as the same graph with no passes (every activation its own forward
// and backward dispatch), lose exactly the activation's backward dispatch, and leave graphs alone where the
// first reader is no conv.
import { describe, it, expect } from 'vitest';
import { testContext } from '../helpers/gpu.js';
import { expectSame, runGraph } from '../helpers/graph.js';
import { Graph, type Layer, type Recorder, type SymbolicTensor } from '../../src/layers/graph.js';
import { fuseActivationBackwardIntoConvGradInput, standardPasses } from '../../src/layers/passes.js';
import { Conv2d } from '../../src/layers/conv.js';
import { ActivationLayer } from '../../src/layers/activation.js';
import { ConcatChannels } from '../../src/layers/concat.js';
import { InstanceNorm2d } from '../../src/layers/norm.js';
import type { Parameter } from '../../src/layers/layer.js';
import type { Activation } from '../../src/kernels/activation.js';
import { Rng } from '../../src/runtime/random.js';
import type { GpuContext } from '../../src/runtime/context.js';

const MODE = { batchStats: true, updateStats: false, dropout: false };
const RUN = { mode: MODE, dy: (n: number) => new Rng(5).normals(n, 1), label: 'activation backward fusion test' };

/**
 * x -> conv1 [-> norm] -> act -> y; y -> conv2 -> z; output cat(y, z) (or, with `normFirst`, cat(norm2(y), z) with
 * norm2 recorded before conv2, so the first reader of y is no conv). The skip makes y's gradient a sum of two.
 */
class SkipNet implements Layer {
  readonly conv1: Conv2d;
  readonly conv2: Conv2d;
  readonly act: ActivationLayer;
  readonly norm: InstanceNorm2d | null;
  readonly norm2: InstanceNorm2d | null;
  readonly cat: ConcatChannels;

  constructor(ctx: GpuContext, kind: Activation, o: { norm: boolean; normFirst: boolean }) {
    this.conv1 = new Conv2d(ctx, 3, 4, { kernel: 4, stride: 2, padding: 1, bias: true }, 'conv1', 'conv1');
    this.conv2 = new Conv2d(ctx, 4, 4, { kernel: 3, stride: 1, padding: 1, bias: true }, 'conv2', 'conv2');
    this.act = new ActivationLayer(ctx, kind, 0.2, 'act');
    this.norm = o.norm ? new InstanceNorm2d(ctx, 4, 'norm') : null;
    this.norm2 = o.normFirst ? new InstanceNorm2d(ctx, 4, 'norm2') : null;
    this.cat = new ConcatChannels(ctx);
  }

  record([x]: readonly SymbolicTensor[], rec: Recorder): SymbolicTensor[] {
    let [h] = this.conv1.record([x], rec);
    if (this.norm) [h] = this.norm.record([h], rec);
    const [y] = this.act.record([h], rec);
    const [skip] = this.norm2 ? this.norm2.record([y], rec) : [y];
    const [z] = this.conv2.record([y], rec);
    return this.cat.record([skip, z], rec);
  }

  params(): Parameter[] {
    return [...this.conv1.params(), ...this.conv2.params()];
  }

  destroy(): void {
    this.conv1.destroy();
    this.conv2.destroy();
  }
}

const backwardOf = (kind: Activation) => `${kind}.backward`;

describe('activation backward in the reading conv', async () => {
  const ctx = await testContext();

  // leaky_relu and relu after a conv run in its epilogue (forward gone too); tanh after a norm keeps its forward.
  for (const [kind, norm] of [['leaky_relu', false], ['relu', false], ['tanh', false], ['tanh', true], ['leaky_relu', true]] as const) {
    it(`${kind}${norm ? ' after a norm' : ''}: same output and gradients, no ${kind} backward dispatch`, async () => {
      const net = new SkipNet(ctx, kind, { norm, normFirst: false });
      const rng = new Rng(21);
      const params = net.params();
      for (const p of params) p.value.write(rng.normals(p.value.size, 0.3));
      const shape = [1, 3, 16, 16];
      const x = rng.normals(3 * 16 * 16, 1);
      const plain = await runGraph(ctx, net, params, x, shape, [], RUN);
      const fused = await runGraph(ctx, net, params, x, shape, standardPasses(ctx), RUN);
      expectSame(fused.output, plain.output, 'output');
      expectSame(fused.dx, plain.dx, 'dx');
      params.forEach((p, i) => expectSame(fused.grads[i], plain.grads[i], `${p.value.label} gradient`));
      expect(plain.backward.filter((d) => d.op === backwardOf(kind)).length).toBe(1);
      // A norm with relu/leaky_relu after it takes the activation itself (fuseNormActivation): nothing left to move.
      const inNorm = norm && kind !== 'tanh';
      const act = fused.graph.nodes.find((n) => n.layer.op === 'activation');
      if (inNorm) expect(act).toBeUndefined();
      else {
        expect(act?.backwardInConsumer).toBe(true);
        expect(fused.graph.nodes.find((n) => n.label === 'net.conv2')?.gradEpilogue).toBe(act);
      }
      expect(fused.backward.filter((d) => d.op === backwardOf(kind)).length).toBe(0);
      net.destroy();
    });
  }

  it('leaves the activation alone when its first reader is no conv', async () => {
    const net = new SkipNet(ctx, 'tanh', { norm: true, normFirst: true });
    const rng = new Rng(22);
    const params = net.params();
    for (const p of params) p.value.write(rng.normals(p.value.size, 0.3));
    const shape = [1, 3, 16, 16];
    const x = rng.normals(3 * 16 * 16, 1);
    const plain = await runGraph(ctx, net, params, x, shape, [], RUN);
    const fused = await runGraph(ctx, net, params, x, shape, standardPasses(ctx), RUN);
    expectSame(fused.dx, plain.dx, 'dx');
    params.forEach((p, i) => expectSame(fused.grads[i], plain.grads[i], `${p.value.label} gradient`));
    expect(fused.graph.nodes.some((n) => n.backwardInConsumer || n.gradEpilogue)).toBe(false);
    expect(fused.backward.filter((d) => d.op === 'tanh.backward').length).toBe(1);
    net.destroy();
  });

  it('does not apply to an activation of the graph input (its gradient may be asked for) or of the output', () => {
    const graph = new Graph(ctx);
    const input = ctx.tensor([1, 4, 8, 8], undefined, 'x');
    const act = new ActivationLayer(ctx, 'relu');
    const conv = new Conv2d(ctx, 4, 4, { kernel: 4, stride: 1, padding: 1, bias: false }, 'conv', 'conv');
    const rec = graph.recorder(MODE, 'net');
    const [y] = act.record([graph.input(input)], rec);
    const [z] = conv.record([y], rec);
    fuseActivationBackwardIntoConvGradInput(graph, [z]);
    expect(graph.nodes.some((n) => n.backwardInConsumer || n.gradEpilogue)).toBe(false);
    fuseActivationBackwardIntoConvGradInput(graph, [y]);
    expect(graph.nodes.some((n) => n.backwardInConsumer || n.gradEpilogue)).toBe(false);
    conv.destroy();
    input.destroy();
  });
});
