/** Element-wise activation layers (ReLU, LeakyReLU(0.2), tanh, sigmoid): no parameters. */
import type { GpuContext } from '../runtime/context.js';
import { activationBackward, activationBackwardNeeds, activationForward, type Activation } from '../kernels/activation.js';
import type { GraphNode, LoweredNode, Lowering, PrimitiveLayer, Recorder, SymbolicTensor } from './graph.js';
import type { Parameter } from './layer.js';
import { Pix2PixError } from '../runtime/errors.js';

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
    const y = l.tensorOf(node.outputs[0]);
    // Computed in the producing conv's epilogue (passes.ts): only the backward is ours, from the output
    // (ReLU's and LeakyReLU's mask is the output's sign as much as the input's). The input is never made.
    const inEpilogue = node.inProducerEpilogue;
    // ReLU/LeakyReLU differentiate from x, tanh/sigmoid from y: both are kept anyway.
    const saved = inEpilogue || activationBackwardNeeds(this.kind) === 'y' ? y : l.tensorOf(node.inputs[0]);
    const forward = inEpilogue ? [] : l.own(activationForward(this.ctx, y, l.tensorOf(node.inputs[0]), this.kind, this.slope));
    if (node.backwardInConsumer) {
      // A reading conv's grad-input epilogue applies act' in place (passes.ts): the input's gradient is the
      // output's gradient tensor, and there is nothing to dispatch.
      return {
        forward,
        inputGradientViews: (dOutputs) => [dOutputs[0]],
        backward: ({ dInputs: [dx] }) => {
          if (dx) throw new Pix2PixError(node.label, 'the activation backward is in a conv epilogue, but its input gradient was given a tensor of its own');
          return [];
        },
      };
    }
    return {
      forward,
      backward: ({ dOutputs: [dy], dInputs: [dx], accumulate: [acc] }) =>
        dx ? l.own(activationBackward(this.ctx, dx, dy, saved, this.kind, { slope: this.slope, accumulate: acc })) : [],
    };
  }
}
