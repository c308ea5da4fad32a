/**
 * How every network in the library is built: layers record nodes into a graph, passes rewrite the graph,
 * lowering turns it into dispatches.
 *
 *   record:  `layer.record(inputs, rec)` takes symbolic tensors (shapes, no memory) and a Recorder and
 *            returns symbolic outputs. A primitive layer (conv, norm, activation, dropout, concat) adds
 *            one node; a composite (Sequential, the U-Net block, the networks) calls its children.
 *   passes:  functions over the recorded nodes (passes.ts): fuse a norm with the activation after it,
 *            run activations inside the convolutions next to them, let producers write straight into
 *            the channel slices of a concatenation. Networks contain no fusion code.
 *   lower:   `graph.lower(outputs)` walks the nodes in order and asks each node's layer for its
 *            LoweredNode: the forward dispatches, and beside them the function that records the node's
 *            backward. The result (a RecordedGraph) is replayed every step; its backward is reverse-mode
 *            differentiation over the same nodes, with gradients summed where a tensor has several
 *            consumers (the U-Net's skips) and skipped where nothing upstream wants them (frozen encoders).
 *
 * Every tensor a lowered graph allocates is scratch (ctx.scratch): inside ctx.deferAllocations its
 * memory is placed by planMemory (runtime/memory_plan.ts) once the whole step is recorded.
 */
import type { Dispatch, GpuContext } from '../runtime/context.js';
import type { Tensor } from '../runtime/tensor.js';
import { Pix2PixError, ShapeError } from '../runtime/errors.js';
import type { Activation } from '../kernels/activation.js';
import type { FusedActivation } from '../kernels/norm_common.js';
import { RunResources, type BackwardOptions, type LayerRun, type ParamGrads, type Parameter, type RunMode } from './layer.js';

/** A tensor of a graph being recorded: its shape, who writes it and who reads it. Memory comes at lowering. */
export class SymbolicTensor {
  /** Nodes that read this tensor, in recording order. */
  readonly consumers: GraphNode[] = [];
  /**
   * Set by the concat-free pass: the producer writes straight into channels [channelOffset, ...) of
   * `into` (a concatenation's output), so the concatenation costs nothing.
   */
  sliceOf: { into: SymbolicTensor; channelOffset: number } | null = null;

  constructor(
    readonly shape: readonly number[],
    readonly label: string,
    /** The node writing this tensor; null for a graph input. Passes may move it to another node. */
    public producer: GraphNode | null,
    /** The real tensor of a graph input. */
    readonly external: Tensor | null = null,
  ) {}
}

/** What a primitive layer's `lower` gives back: forward dispatches and, beside them, how to record backward. */
export interface LoweredNode {
  readonly forward: Dispatch[];
  /** Record the node's backward (once): input gradients where asked, parameter gradients per `paramGrads`. */
  backward(grads: NodeGradients): Dispatch[];
  /**
   * Gradients of inputs that are views of the output gradient (a concat-free concatenation): the input
   * gradient costs nothing. Null entries, or no function, mean "write it with backward".
   */
  inputGradientViews?(dOutputs: readonly Tensor[]): (Tensor | null)[];
  /** Dropout: draw a new mask (rewrites the seed of the forward and backward dispatches). */
  setSeed?(seed: number): void;
}

export interface NodeGradients {
  /** Gradients of the node's outputs. */
  readonly dOutputs: readonly Tensor[];
  /** Where each input's gradient goes, or null where none is wanted. */
  readonly dInputs: readonly (Tensor | null)[];
  /** Per input: add into dInputs[i] (another consumer's gradient is already there) rather than overwrite. */
  readonly accumulate: readonly boolean[];
  readonly paramGrads: ParamGrads;
}

/** Anything that records into a graph: the one interface of every layer and network. */
export interface Layer {
  /** Add this layer's nodes: input tensors in, output tensors out. */
  record(inputs: readonly SymbolicTensor[], rec: Recorder): SymbolicTensor[];
  /** Trainable parameters, in state-dict order. */
  params(): Parameter[];
  /** Free parameters and buffers (layers without any need not define it). */
  destroy?(): void;
}

/** The kinds of node the passes know about. */
export type NodeOp = 'conv2d' | 'conv_transpose2d' | 'norm' | 'activation' | 'dropout' | 'concat';

/** A layer that records exactly one node and lowers it to dispatches. */
export interface PrimitiveLayer extends Layer {
  readonly op: NodeOp;
  /** A norm whose kernels can apply a following dropout (GraphNode.fusedDropout). */
  readonly fusesDropout?: boolean;
  lower(node: GraphNode, lowering: Lowering): LoweredNode;
}

/** One recorded use of a primitive layer. */
export class GraphNode {
  /** Set by the fusion pass: the norm's output is act(norm(x)), in the same kernels. */
  fusedActivation: FusedActivation | null = null;
  /**
   * Set by the norm-dropout pass on a norm: its output is dropout(act(norm(x))) with this probability and
   * first seed (the removed dropout node's), in the same kernels; the lowered norm takes the dropout's setSeed.
   */
  fusedDropout: { p: number; seed: number } | null = null;
  /** Set by the conv-input pass on a conv: it reads act(input) (its input is the activation's input). */
  inputActivation: { kind: Activation; slope: number } | null = null;
  /** Set by the conv-output pass on a conv: it writes act(conv + b) straight into this activation node's output. */
  epilogue: GraphNode | null = null;
  /** Set by the conv-output pass on an activation: its producer computes its forward; only its backward remains. */
  inProducerEpilogue = false;
  /**
   * Set by the activation-backward pass on a conv that reads this activation node's output: the conv's
   * grad-input epilogue applies the activation's derivative (from the saved output) to everything
   * accumulated into that gradient, so the activation's backward dispatches nothing.
   */
  gradEpilogue: GraphNode | null = null;
  /** Set by the grad-epilogue pass on an activation: a consumer's grad-input epilogue computes its backward. */
  backwardInConsumer = false;

  constructor(
    readonly layer: PrimitiveLayer,
    public inputs: SymbolicTensor[],
    public outputs: SymbolicTensor[],
    readonly label: string,
    readonly mode: RunMode,
    /** Op-specific facts the passes read: an activation's kind and slope, dropout's seed and probability. */
    readonly attrs: { activation?: { kind: Activation; slope: number }; seed?: number; p?: number },
  ) {}
}

/** Records nodes; `within(name)` gives a recorder that prefixes labels ('G.level3.down'). */
export class Recorder {
  constructor(
    readonly graph: Graph,
    readonly mode: RunMode,
    readonly prefix: string,
    /** Dropout masks' first seed (before the run's setSeed): each dropout layer adds its offset. */
    readonly seed = 0,
  ) {}

  within(name: string): Recorder {
    return new Recorder(this.graph, this.mode, `${this.prefix}.${name}`, this.seed);
  }

  /** Add one node of `layer` reading `inputs` and writing tensors of `outputShapes`. */
  node(layer: PrimitiveLayer, inputs: readonly SymbolicTensor[], outputShapes: readonly (readonly number[])[], name: string, attrs: GraphNode['attrs'] = {}): SymbolicTensor[] {
    const label = `${this.prefix}.${name}`;
    for (const s of outputShapes) if (s.some((d) => !Number.isInteger(d) || d < 1)) throw new ShapeError(label, 'output shape', 'positive sizes', s);
    const node = new GraphNode(layer, [...inputs], [], label, this.mode, attrs);
    node.outputs = outputShapes.map((s, i) => new SymbolicTensor(s, outputShapes.length > 1 ? `${label}.out${i}` : `${label}.out`, node));
    for (const x of inputs) x.consumers.push(node);
    this.graph.nodes.push(node);
    return node.outputs;
  }
}

/** A rewrite of a recorded graph before lowering (passes.ts). `outputs` are the tensors the caller reads. */
export type GraphPass = (graph: Graph, outputs: readonly SymbolicTensor[]) => void;

/** The lowering's services to primitive layers. */
export interface Lowering {
  readonly ctx: GpuContext;
  /** The tensor behind a symbolic tensor (allocated on first use, a view for a concat-free slice). */
  tensorOf(t: SymbolicTensor): Tensor;
  /** A scratch tensor owned by the recorded graph. */
  scratch(shape: readonly number[], label: string): Tensor;
  /** Keep these dispatches for destroy(). */
  own(list: Dispatch[]): Dispatch[];
}

export class Graph {
  readonly nodes: GraphNode[] = [];
  readonly inputs: SymbolicTensor[] = [];

  constructor(readonly ctx: GpuContext) {}

  /** A recorder for this graph. */
  recorder(mode: RunMode, prefix: string, seed = 0): Recorder {
    return new Recorder(this, mode, prefix, seed);
  }

  /** A graph input backed by a real tensor. */
  input(t: Tensor, label = t.label): SymbolicTensor {
    const s = new SymbolicTensor(t.shape, label, null, t);
    this.inputs.push(s);
    return s;
  }

  /** Take a node out (a pass fused it into another); its consumers must already be rewired. */
  remove(node: GraphNode): void {
    const i = this.nodes.indexOf(node);
    if (i < 0) throw new Pix2PixError('Graph.remove', `node '${node.label}' is not in the graph`);
    this.nodes.splice(i, 1);
    for (const x of node.inputs) {
      const k = x.consumers.indexOf(node);
      if (k >= 0) x.consumers.splice(k, 1);
    }
  }

  /**
   * Apply `passes`, then allocate and record every node's forward. `into` places outputs in tensors the
   * caller gives (a slice of the next network's input, so no copy follows).
   */
  lower(outputs: readonly SymbolicTensor[], opts: { passes?: readonly GraphPass[]; into?: ReadonlyMap<SymbolicTensor, Tensor> } = {}): RecordedGraph {
    for (const pass of opts.passes ?? []) pass(this, outputs);
    return new RecordedGraph(this, outputs, opts.into ?? new Map());
  }
}

/**
 * A lowered graph: forward dispatches in recording order, and `backward` recording reverse-mode
 * differentiation over the same nodes. It is a LayerRun, so one network's recording plugs into a
 * training step like any layer's.
 */
export class RecordedGraph implements LayerRun {
  readonly forward: Dispatch[] = [];
  readonly outputs: Tensor[];
  /** Lowered dropout nodes in recording order (their seeds change every step). */
  readonly seeded: LoweredNode[] = [];
  private readonly res: RunResources;
  private readonly tensors = new Map<SymbolicTensor, Tensor>();
  private readonly lowered = new Map<GraphNode, LoweredNode>();
  private backwardRecorded = false;

  constructor(
    readonly graph: Graph,
    readonly symbolicOutputs: readonly SymbolicTensor[],
    private readonly into: ReadonlyMap<SymbolicTensor, Tensor>,
  ) {
    const ctx = graph.ctx;
    this.res = new RunResources(ctx);
    const lowering: Lowering = {
      ctx,
      tensorOf: (t) => this.tensorOf(t),
      scratch: (shape, label) => this.res.tensor(shape, label),
      own: (list) => this.res.own(list),
    };
    for (const node of graph.nodes) {
      const l = node.layer.lower(node, lowering);
      this.lowered.set(node, l);
      this.forward.push(...l.forward);
      if (l.setSeed) this.seeded.push(l);
    }
    this.outputs = symbolicOutputs.map((t) => this.tensorOf(t));
  }

  get output(): Tensor {
    return this.outputs[0];
  }

  /** The tensor of a symbolic tensor (after lowering; for tests and debugging). */
  tensorOf(t: SymbolicTensor): Tensor {
    const known = this.tensors.get(t);
    if (known) return known;
    let out: Tensor;
    if (t.external) out = t.external;
    else if (this.into.has(t)) {
      out = this.into.get(t)!;
      if (out.shape.length !== t.shape.length || out.shape.some((d, i) => d !== t.shape[i])) throw new ShapeError(t.label, 'output tensor shape', t.shape, out.shape);
    } else if (t.sliceOf) {
      const whole = this.tensorOf(t.sliceOf.into);
      const plane = t.shape.slice(2).reduce((a, b) => a * b, 1);
      out = whole.view(t.shape, t.sliceOf.channelOffset * plane, t.label);
    } else out = this.res.tensor(t.shape, t.label);
    this.tensors.set(t, out);
    return out;
  }

  /**
   * Record the backward of the whole graph (once): `dy` is the gradient of the (first) output, `dx`
   * where the (first) input's gradient goes, or null. A node runs backward only when it has a
   * parameter to train or an input whose gradient someone wants.
   */
  backward(dy: Tensor, dx: Tensor | null, opts: BackwardOptions): Dispatch[] {
    if (this.backwardRecorded) throw new Pix2PixError('RecordedGraph.backward', 'backward is recorded once per lowered graph');
    this.backwardRecorded = true;
    const graph = this.graph;
    const trains = (n: GraphNode) => opts.paramGrads !== 'none' && n.layer.params().some((p) => !p.frozen);
    // Which tensors need a gradient: those downstream of a trainable parameter or of a wanted input gradient.
    const needs = new Set<SymbolicTensor>();
    if (dx) needs.add(graph.inputs[0]);
    const active = new Set<GraphNode>();
    for (const n of graph.nodes) {
      if (!trains(n) && !n.inputs.some((x) => needs.has(x))) continue;
      active.add(n);
      for (const y of n.outputs) needs.add(y);
    }
    // Gradient per tensor; `written`: some consumer has written it (later ones add).
    const grads = new Map<SymbolicTensor, { tensor: Tensor; written: boolean; accumulateFirst: boolean }>();
    let seed = this.symbolicOutputs[0];
    if (opts.dyBelowOutputActivation) {
      const act = seed.producer;
      if (!act || act.layer.op !== 'activation') throw new Pix2PixError('RecordedGraph.backward', `dyBelowOutputActivation: '${seed.label}' is not an activation's output`);
      active.delete(act);
      seed = act.inputs[0];
    }
    grads.set(seed, { tensor: dy, written: true, accumulateFirst: false });
    if (dx) grads.set(graph.inputs[0], { tensor: dx, written: false, accumulateFirst: !!opts.accumulateInput });
    const list: Dispatch[] = [];
    for (let k = graph.nodes.length - 1; k >= 0; k--) {
      const node = graph.nodes[k];
      if (!active.has(node)) continue;
      const lowered = this.lowered.get(node)!;
      const dOutputs = node.outputs.map((y) => {
        const g = grads.get(y);
        if (!g) throw new Pix2PixError('RecordedGraph.backward', `no gradient reaches '${y.label}' (an output no path to the graph's output reads)`);
        return g.tensor;
      });
      const views = lowered.inputGradientViews?.(dOutputs) ?? [];
      const dInputs: (Tensor | null)[] = [];
      const accumulate: boolean[] = [];
      node.inputs.forEach((x, i) => {
        if (!needs.has(x)) {
          dInputs.push(null);
          accumulate.push(false);
          return;
        }
        const known = grads.get(x);
        if (known) {
          dInputs.push(known.tensor);
          accumulate.push(known.written || known.accumulateFirst);
          known.written = true;
          return;
        }
        const view = views[i];
        if (view) {
          // The gradient is a view of the output gradient: nothing to write.
          grads.set(x, { tensor: view, written: true, accumulateFirst: false });
          dInputs.push(null);
          accumulate.push(false);
          return;
        }
        const t = this.res.tensor(x.shape, `${x.label}.grad`);
        grads.set(x, { tensor: t, written: true, accumulateFirst: false });
        dInputs.push(t);
        accumulate.push(false);
      });
      list.push(...lowered.backward({ dOutputs, dInputs, accumulate, paramGrads: opts.paramGrads }));
    }
    return list;
  }

  destroy(): void {
    this.res.destroy();
  }
}
