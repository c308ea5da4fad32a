/** Element-wise activation layers (ReLU, LeakyReLU(0.2), tanh, sigmoid): no parameters. */
import type { Dispatch, GpuContext } from '../runtime/context.js';
import type { Tensor } from '../runtime/tensor.js';
import { activationBackward, activationBackwardNeeds, activationForward, type Activation } from '../kernels/activation.js';
import { RunResources, outputTensor, type BackwardOptions, type LayerRun } from './layer.js';

export class ActivationLayer {
  constructor(
    readonly ctx: GpuContext,
    readonly kind: Activation,
    /** LeakyReLU's negative slope (0.2 everywhere in the reference networks). */
    readonly slope = 0.2,
  ) {}

  /** `out`: write the output there instead of a new tensor (see outputTensor). */
  record(x: Tensor, label: string = this.kind, out?: Tensor): LayerRun {
    const res = new RunResources(this.ctx);
    const output = outputTensor(res, x.shape, label, out);
    const forward = res.own(activationForward(this.ctx, output, x, this.kind, this.slope));
    // ReLU/LeakyReLU differentiate from x, tanh/sigmoid from y: both are kept anyway.
    const saved = activationBackwardNeeds(this.kind) === 'x' ? x : output;
    return {
      output,
      forward,
      backward: (dy: Tensor, dx: Tensor | null, o: BackwardOptions): Dispatch[] => {
        if (!dx) return [];
        return res.own(activationBackward(this.ctx, dx, dy, saved, this.kind, { slope: this.slope, accumulate: !!o.accumulateInput }));
      },
      destroy: () => res.destroy(),
    };
  }
}
