/**
 * Channel concatenation (torch.cat(dim=1)): the U-Net's skip. With the concat-free pass (passes.ts) its
 * inputs are views of its output and it dispatches nothing; otherwise it copies.
 */
import type { GpuContext } from '../runtime/context.js';
import type { Tensor } from '../runtime/tensor.js';
import { ShapeError } from '../runtime/errors.js';
import { concatChannelsBackward, concatChannelsForward } from '../kernels/concat.js';
import type { GraphNode, LoweredNode, Lowering, PrimitiveLayer, Recorder, SymbolicTensor } from './graph.js';
import type { Parameter } from './layer.js';

export class ConcatChannels implements PrimitiveLayer {
  readonly op = 'concat';

  constructor(readonly ctx: GpuContext) {}

  params(): Parameter[] {
    return [];
  }

  record([a, b]: readonly SymbolicTensor[], rec: Recorder): SymbolicTensor[] {
    const [N, Ca, H, W] = a.shape;
    if (b.shape[0] !== N || b.shape[2] !== H || b.shape[3] !== W) throw new ShapeError(`${rec.prefix}.cat`, 'second input shape', `[${N}, C, ${H}, ${W}]`, b.shape);
    return rec.node(this, [a, b], [[N, Ca + b.shape[1], H, W]], 'cat');
  }

  lower(node: GraphNode, l: Lowering): LoweredNode {
    const [a, b] = node.inputs;
    const y = l.tensorOf(node.outputs[0]);
    const inPlace = !!a.sliceOf && !!b.sliceOf;
    const [N, Ca, H, W] = a.shape;
    const align = this.ctx.limits.minStorageBufferOffsetAlignment;
    return {
      forward: inPlace ? [] : l.own(concatChannelsForward(this.ctx, y, l.tensorOf(a), l.tensorOf(b))),
      // The gradient's halves are views when batch 1 puts them in two bindable ranges.
      inputGradientViews: ([dy]: readonly Tensor[]) =>
        N === 1 && (dy.byteOffset + Ca * H * W * 4) % align === 0 && dy.byteOffset % align === 0
          ? [dy.view(a.shape, 0, `${a.label}.grad`), dy.view(b.shape, Ca * H * W, `${b.label}.grad`)]
          : [null, null],
      backward: ({ dOutputs: [dy], dInputs: [da, db], accumulate: [accA, accB] }) => {
        if (!da && !db) return [];
        if (!da || !db || accA === accB) return l.own(concatChannelsBackward(this.ctx, da, db, dy, { accumulate: da ? accA : accB, channelsA: Ca }));
        return [...l.own(concatChannelsBackward(this.ctx, da, null, dy, { accumulate: accA })), ...l.own(concatChannelsBackward(this.ctx, null, db, dy, { accumulate: accB, channelsA: Ca }))];
      },
    };
  }
}
