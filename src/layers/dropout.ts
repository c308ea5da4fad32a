/**
 * Dropout(p) in train mode: zero each element with probability p and scale the rest by 1 / (1 - p),
 * as torch.nn.Dropout. The mask comes from a counter-based hash of (seed, element), so backward
 * regenerates it from the same seed instead of storing it, and a new seed per step is one uniform write.
 */
import type { Dispatch, GpuContext } from '../runtime/context.js';
import type { Tensor } from '../runtime/tensor.js';
import { dropoutBackward, dropoutForward, setDropoutSeed } from '../kernels/dropout.js';
import { RunResources, outputTensor, type BackwardOptions, type LayerRun } from './layer.js';

export interface DropoutRun extends LayerRun {
  /** Draw a new mask: rewrites the seed of the forward and (recorded) backward dispatches. */
  setSeed(seed: number): void;
}

export class Dropout {
  constructor(
    readonly ctx: GpuContext,
    readonly p = 0.5,
  ) {}

  record(x: Tensor, seed: number, label = 'dropout', out?: Tensor): DropoutRun {
    const res = new RunResources(this.ctx);
    const output = outputTensor(res, x.shape, label, out);
    let current = seed >>> 0;
    const forward = res.own(dropoutForward(this.ctx, output, x, { p: this.p, seed: current }));
    const seeded: Dispatch[][] = [forward];
    return {
      output,
      forward,
      backward: (dy: Tensor, dx: Tensor | null, o: BackwardOptions): Dispatch[] => {
        if (!dx) return [];
        const list = res.own(dropoutBackward(this.ctx, dx, dy, { p: this.p, seed: current, accumulate: !!o.accumulateInput }));
        seeded.push(list);
        return list;
      },
      setSeed: (s: number) => {
        current = s >>> 0;
        for (const list of seeded) setDropoutSeed(list, current);
      },
      destroy: () => res.destroy(),
    };
  }
}
