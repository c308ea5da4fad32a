/**
 * Graph passes: rewrites of a recorded graph (graph.ts) that make it cheaper without changing what it
 * computes. Each pass matches node kinds (NodeOp), never network classes, so a new network gets them for
 * free. They run in the order of STANDARD_PASSES when a network lowers its graph.
 */
import type { GpuContext } from '../runtime/context.js';
import type { Graph, GraphNode, GraphPass, SymbolicTensor } from './graph.js';

/**
 * norm → ReLU/LeakyReLU becomes one node: the norm kernels apply the activation on the way out and its
 * derivative on the way back (from the saved output: the activation's sign equals its input's), so the
 * activation's map and its two element-wise passes disappear. Applies where the norm's output has no
 * other reader.
 */
export const fuseNormActivation: GraphPass = (graph, outputs) => {
  for (const norm of [...graph.nodes]) {
    if (norm.layer.op !== 'norm' || norm.fusedActivation) continue;
    const y = norm.outputs[0];
    if (y.consumers.length !== 1 || outputs.includes(y)) continue;
    const act = y.consumers[0];
    const a = act.attrs.activation;
    if (act.layer.op !== 'activation' || !a || (a.kind !== 'relu' && a.kind !== 'leaky_relu')) continue;
    norm.fusedActivation = { kind: a.kind, slope: a.slope };
    const activated = act.outputs[0];
    activated.producer = norm;
    norm.outputs = [activated];
    graph.remove(act);
  }
};

/**
 * norm [→ activation] → dropout becomes one node: the norm kernels multiply their output by the dropout mask
 * (the same hash of seed and element as the dropout kernels) and their backward multiplies dy by it, so the
 * norm's own output map and the dropout's two element-wise passes disappear (the U-Net's up path: norm then
 * Dropout(0.5)). Applies where the norm's layer fuses dropout (instance and batch norm) and its output has no
 * other reader. The dropout's seed moves to the norm, which takes over its place among the seeded nodes.
 */
export const fuseNormDropout: GraphPass = (graph, outputs) => {
  for (const norm of [...graph.nodes]) {
    if (norm.layer.op !== 'norm' || !norm.layer.fusesDropout || norm.fusedDropout) continue;
    const y = norm.outputs[0];
    if (y.consumers.length !== 1 || outputs.includes(y)) continue;
    const drop = y.consumers[0];
    if (drop.layer.op !== 'dropout' || drop.attrs.p === undefined) continue;
    norm.fusedDropout = { p: drop.attrs.p, seed: (drop.attrs.seed ?? 0) >>> 0 };
    const dropped = drop.outputs[0];
    dropped.producer = norm;
    norm.outputs = [dropped];
    graph.remove(drop);
  }
};

/**
 * A channel concatenation of batch 1 is two contiguous ranges of one buffer: each input's producer
 * writes straight into its range (a view), the concatenation dispatches nothing, and its backward hands
 * each input a view of the output gradient. Applies when every input is written by a node of the graph,
 * is no slice already, and starts at an offset the device can bind (minStorageBufferOffsetAlignment).
 * Batches > 1 interleave the ranges and keep the copy.
 */
export function concatFreeSkips(ctx: GpuContext): GraphPass {
  const align = ctx.limits.minStorageBufferOffsetAlignment;
  return (graph, outputs) => {
    for (const cat of graph.nodes) {
      if (cat.layer.op !== 'concat') continue;
      const y = cat.outputs[0];
      const [N, , H, W] = y.shape;
      // A concatenation that itself feeds a concatenation would need nested slices: keep it simple.
      if (N !== 1 || y.consumers.some((c) => c.layer.op === 'concat')) continue;
      let c0 = 0;
      const offsets: number[] = [];
      for (const x of cat.inputs) {
        offsets.push(c0);
        c0 += x.shape[1];
      }
      const eligible = (x: SymbolicTensor, i: number) =>
        !!x.producer && !x.external && !x.sliceOf && !outputs.includes(x) && x.consumers.filter((c) => c === cat).length === 1 && (offsets[i] * H * W * 4) % align === 0;
      if (!cat.inputs.every(eligible)) continue;
      cat.inputs.forEach((x, i) => (x.sliceOf = { into: y, channelOffset: offsets[i] }));
    }
  };
}

function isConv(n: GraphNode): boolean {
  return n.layer.op === 'conv2d' || n.layer.op === 'conv_transpose2d';
}

/**
 * An activation whose only readers are convolutions runs inside them: each conv reads act(x) from the
 * pre-activation x (the conv kernels' input prologue), its weight gradient does the same, and its input
 * gradient applies act'(x) on the way out (the grad-input epilogue). The activation's map, its forward
 * and its backward disappear (the U-Net used to recompute its up path's ReLU in backward rather than keep
 * 123 MiB of 512x1024 maps; now there is nothing to keep). The U-Net's up path (ReLU → convT) and D's
 * first LeakyReLU → conv.
 */
export const fuseActivationIntoConvInputs: GraphPass = (graph, outputs) => {
  for (const act of [...graph.nodes]) {
    const a = act.attrs.activation;
    if (act.layer.op !== 'activation' || !a || (a.kind !== 'relu' && a.kind !== 'leaky_relu')) continue;
    const [x] = act.inputs;
    const [y] = act.outputs;
    if (outputs.includes(y) || y.sliceOf || y.consumers.length === 0 || !y.consumers.every((c) => isConv(c) && !c.inputActivation)) continue;
    for (const conv of y.consumers) {
      conv.inputs = conv.inputs.map((t) => (t === y ? x : t));
      conv.inputActivation = { kind: a.kind, slope: a.slope };
      x.consumers.push(conv);
    }
    y.consumers.length = 0;
    graph.remove(act);
  }
};

/**
 * conv → activation, where the conv's output has no other reader: the conv writes act(conv + b)
 * straight into the activation's output (the kernels' output epilogue), so the pre-activation map and
 * the activation's forward disappear; its backward stays, reading the saved output (ReLU's and
 * LeakyReLU's mask is the output's sign, tanh' is 1 − y²). G's outermost tanh, and the LeakyReLU that
 * starts level 2 (its output is also the skip, so it cannot move into a consumer).
 */
export const fuseActivationIntoConvOutputs: GraphPass = (graph, outputs) => {
  for (const act of graph.nodes) {
    const a = act.attrs.activation;
    if (act.layer.op !== 'activation' || !a || act.inProducerEpilogue || (a.kind !== 'relu' && a.kind !== 'leaky_relu' && a.kind !== 'tanh')) continue;
    const [x] = act.inputs;
    const conv = x.producer;
    if (!conv || !isConv(conv) || conv.epilogue || x.consumers.length !== 1 || outputs.includes(x)) continue;
    conv.epilogue = act;
    act.inProducerEpilogue = true;
  }
};

/**
 * An activation whose output is read by a conv and by others (G's level-2 LeakyReLU: its output is the
 * level's conv input and the outermost skip) keeps its forward but loses its backward dispatch: reverse-mode
 * visits the output's readers last-recorded first, so the first-recorded reader's input gradient is the last
 * write into the output's gradient. When that reader is a conv, its grad-input epilogue computes
 * act'(y) * (everything accumulated + its own term) from the saved output y (fusion.ts dstGrad with applyTo
 * 'sum'; ReLU, LeakyReLU with a slope >= 0, tanh), in place, and the activation hands its input the same
 * tensor as its gradient. Applies when the activation's input has no other reader (so no other gradient
 * reaches it) and is no graph input, and the conv has no input prologue of its own.
 */
export const fuseActivationBackwardIntoConvGradInput: GraphPass = (graph, outputs) => {
  const order = new Map(graph.nodes.map((n, i) => [n, i]));
  for (const act of graph.nodes) {
    const a = act.attrs.activation;
    if (act.layer.op !== 'activation' || !a || act.backwardInConsumer) continue;
    if (a.kind !== 'relu' && a.kind !== 'tanh' && !(a.kind === 'leaky_relu' && a.slope >= 0)) continue;
    const [x] = act.inputs;
    const [y] = act.outputs;
    if (outputs.includes(y) || outputs.includes(x) || !x.producer || x.consumers.length !== 1 || y.consumers.length === 0) continue;
    const last = y.consumers.reduce((m, c) => (order.get(c)! < order.get(m)! ? c : m));
    if (!isConv(last) || last.inputs[0] !== y || last.inputActivation || last.gradEpilogue) continue;
    last.gradEpilogue = act;
    act.backwardInConsumer = true;
  }
};

/** The passes every network lowers with, in order. */
export function standardPasses(ctx: GpuContext): GraphPass[] {
  return [fuseNormActivation, fuseNormDropout, fuseActivationIntoConvInputs, fuseActivationIntoConvOutputs, fuseActivationBackwardIntoConvGradInput, concatFreeSkips(ctx)];
}

/** Count of nodes by op (tests and docs: what the passes removed). */
export function nodeCounts(graph: Graph): Record<string, number> {
  const out: Record<string, number> = {};
  for (const n of graph.nodes) out[n.layer.op] = (out[n.layer.op] ?? 0) + 1;
  return out;
}
