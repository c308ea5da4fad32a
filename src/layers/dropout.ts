/**
 * Dropout(p) in train mode: zero each element with probability p and scale the rest by 1 / (1 - p),
 * as torch.nn.Dropout. The mask comes from a counter-based hash of (seed, element), so backward
 * regenerates it from the same seed instead of storing it, and a new seed per step is one uniform write.
 * In a run whose mode has `dropout: false` (eval) the layer records nothing: its output is its input.
 */
import type { Dispatch, GpuContext } from '../runtime/context.js';
import { dropoutBackward, dropoutForward, setDropoutSeed } from '../kernels/dropout.js';
import type { GraphNode, LoweredNode, Lowering, PrimitiveLayer, Recorder, SymbolicTensor } from './graph.js';
import type { Parameter } from './layer.js';

export class Dropout implements PrimitiveLayer {
  readonly op = 'dropout';

  constructor(
    readonly ctx: GpuContext,
    readonly p = 0.5,
    /** Added to the recorder's seed for the mask before the first setSeed (each layer its own). */
    readonly seedOffset = 0,
  ) {}

  params(): Parameter[] {
    return [];
  }

  record([x]: readonly SymbolicTensor[], rec: Recorder): SymbolicTensor[] {
    if (!rec.mode.dropout) return [x];
    return rec.node(this, [x], [x.shape], 'dropout', { seed: rec.seed + this.seedOffset, p: this.p });
  }

  lower(node: GraphNode, l: Lowering): LoweredNode {
    const x = l.tensorOf(node.inputs[0]);
    const y = l.tensorOf(node.outputs[0]);
    let current = (node.attrs.seed ?? 0) >>> 0;
    const forward = l.own(dropoutForward(this.ctx, y, x, { p: this.p, seed: current }));
    const seeded: Dispatch[][] = [forward];
    return {
      forward,
      backward: ({ dInputs: [dx], dOutputs: [dy], accumulate: [acc] }) => {
        if (!dx) return [];
        const list = l.own(dropoutBackward(this.ctx, dx, dy, { p: this.p, seed: current, accumulate: acc }));
        seeded.push(list);
        return list;
      },
      setSeed: (s: number) => {
        current = s >>> 0;
        for (const list of seeded) setDropoutSeed(list, current);
      },
    };
  }
}
