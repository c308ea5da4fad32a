/** Element-wise activation layers (ReLU, LeakyReLU(0.2), tanh, sigmoid): no parameters. */
import type { GpuContext } from '../runtime/context.js';
import { activationBackward, activationBackwardNeeds, activationForward, type Activation } from '../kernels/activation.js';
import type { GraphNode, LoweredNode, Lowering, PrimitiveLayer, Recorder, SymbolicTensor } from './graph.js';
import type { Parameter } from './layer.js';

export class ActivationLayer implements PrimitiveLayer {
  readonly op = 'activation';

  constructor(
    readonly ctx: GpuContext,
    readonly kind: Activation,
    /** LeakyReLU's negative slope (0.2 everywhere in the reference networks). */
    readonly slope = 0.2,
    /** Node name in labels. */
    readonly name: string = kind,
  ) {}

  params(): Parameter[] {
    return [];
  }

  record([x]: readonly SymbolicTensor[], rec: Recorder): SymbolicTensor[] {
    return rec.node(this, [x], [x.shape], this.name, { activation: { kind: this.kind, slope: this.slope } });
  }

  lower(node: GraphNode, l: Lowering): LoweredNode {
    const x = l.tensorOf(node.inputs[0]);
    const y = l.tensorOf(node.outputs[0]);
    // ReLU/LeakyReLU differentiate from x, tanh/sigmoid from y: both are kept anyway.
    const saved = activationBackwardNeeds(this.kind) === 'x' ? x : y;
    return {
      forward: l.own(activationForward(this.ctx, y, x, this.kind, this.slope)),
      backward: ({ dOutputs: [dy], dInputs: [dx], accumulate: [acc] }) =>
        dx ? l.own(activationBackward(this.ctx, dx, dy, saved, this.kind, { slope: this.slope, accumulate: acc })) : [],
    };
  }
}
