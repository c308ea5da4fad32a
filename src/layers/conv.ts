/**
 * Conv2d and ConvTranspose2d layers (PyTorch weight layouts: conv [Cout, Cin, KH, KW], transposed
 * conv [Cin, Cout, KH, KW]), with the reference's init: weights N(0, 0.02), biases 0.
 */
import type { Dispatch, GpuContext } from '../runtime/context.js';
import { ShapeError } from '../runtime/errors.js';
import type { GraphNode, LoweredNode, Lowering, PrimitiveLayer, Recorder, SymbolicTensor } from './graph.js';
import { conv2dBackwardInput, conv2dBackwardWeight, conv2dForward, conv2dOutputShape } from '../kernels/conv2d.js';
import type { FusedActivation } from '../kernels/conv2d.js';
import { convTranspose2dBackwardInput, convTranspose2dBackwardWeight, convTranspose2dForward } from '../kernels/conv_transpose2d.js';
import { Parameter, gradOf, wantsGrad } from './layer.js';

export interface ConvOptions {
  kernel: number;
  stride: number;
  padding: number;
  bias: boolean;
  /** Transposed conv only. */
  outputPadding?: number;
}

/**
 * The kernels' activation fusion for a node (passes.ts): `inputActivation` makes the conv read act(x)
 * and its input gradient apply act'(x); `outputActivation` makes it write act(conv + b) into the
 * activation node's output, which is then the conv's output tensor.
 */
function fusionOf(node: GraphNode, l: Lowering) {
  const a = node.inputActivation;
  const e = node.epilogue?.attrs.activation;
  const inputActivation: FusedActivation | undefined = a ? (a.kind === 'leaky_relu' ? { kind: 'leaky_relu', slope: a.slope } : { kind: a.kind as 'relu' | 'tanh' }) : undefined;
  const outputActivation: FusedActivation | undefined = e ? (e.kind === 'leaky_relu' ? { kind: 'leaky_relu', slope: e.slope } : { kind: e.kind as 'relu' | 'tanh' }) : undefined;
  const x = l.tensorOf(node.inputs[0]);
  // The activation that produced x, when its backward runs in this conv's grad-input epilogue (passes.ts):
  // dx = act'(x) * (dx + g), from x as the activation's saved output.
  const g = node.gradEpilogue?.attrs.activation;
  const gradActivation: FusedActivation | undefined = g ? (g.kind === 'leaky_relu' ? { kind: 'leaky_relu', slope: g.slope } : { kind: g.kind as 'relu' | 'tanh' }) : undefined;
  return {
    x,
    y: l.tensorOf(node.epilogue ? node.epilogue.outputs[0] : node.outputs[0]),
    forward: { inputActivation, outputActivation },
    weight: { inputActivation },
    input: inputActivation
      ? { dxActivation: { act: inputActivation, saved: x, savedIs: 'input' as const } }
      : gradActivation
        ? { dxActivation: { act: gradActivation, saved: x, savedIs: 'output' as const, applyTo: 'sum' as const } }
        : {},
  };
}

const WEIGHT_INIT = { kind: 'normal', mean: 0, std: 0.02 } as const;
const BIAS_INIT = { kind: 'constant', value: 0 } as const;

/** 2-D convolution, NCHW. */
export class Conv2d implements PrimitiveLayer {
  readonly op = 'conv2d';
  readonly weight: Parameter;
  readonly bias: Parameter | null;

  constructor(
    readonly ctx: GpuContext,
    readonly inChannels: number,
    readonly outChannels: number,
    readonly opts: ConvOptions,
    label = 'conv2d',
    /** Node name in a recording ('down'). */
    readonly name = 'conv',
  ) {
    const k = opts.kernel;
    this.weight = new Parameter(ctx, 'weight', ctx.zeros([outChannels, inChannels, k, k], `${label}.weight`), WEIGHT_INIT);
    this.bias = opts.bias ? new Parameter(ctx, 'bias', ctx.zeros([outChannels], `${label}.bias`), BIAS_INIT) : null;
  }

  params(): Parameter[] {
    return this.bias ? [this.weight, this.bias] : [this.weight];
  }

  outputShape(x: readonly number[]): number[] {
    return conv2dOutputShape(x, this.weight.shape, { stride: this.opts.stride, padding: this.opts.padding });
  }

  record([x]: readonly SymbolicTensor[], rec: Recorder): SymbolicTensor[] {
    if (x.shape[1] !== this.inChannels) throw new ShapeError(`${rec.prefix}.${this.name}`, 'input channels', this.inChannels, x.shape[1]);
    return rec.node(this, [x], [this.outputShape(x.shape)], this.name);
  }

  lower(node: GraphNode, l: Lowering): LoweredNode {
    const { x, y, ...fusion } = fusionOf(node, l);
    const p = { stride: this.opts.stride, padding: this.opts.padding };
    return {
      forward: l.own(conv2dForward(this.ctx, y, x, this.weight.value, this.bias?.value ?? null, { ...p, ...fusion.forward })),
      backward: (g) => {
        const [dy] = g.dOutputs;
        const [dx] = g.dInputs;
        const out: Dispatch[] = [];
        if (dx) out.push(...l.own(conv2dBackwardInput(this.ctx, dx, dy, this.weight.value, { ...p, ...fusion.input, accumulate: g.accumulate[0] })));
        if (wantsGrad(this.weight, g.paramGrads)) {
          const db = this.bias && !this.bias.frozen ? gradOf(this.bias) : null;
          out.push(...l.own(conv2dBackwardWeight(this.ctx, gradOf(this.weight), db, dy, x, { ...p, ...fusion.weight, accumulate: g.paramGrads === 'accumulate' })));
        }
        return out;
      },
    };
  }

  destroy(): void {
    for (const p of this.params()) p.destroy();
  }
}

/** 2-D transposed convolution ("deconvolution"), NCHW, weight [Cin, Cout, KH, KW]. */
export class ConvTranspose2d implements PrimitiveLayer {
  readonly op = 'conv_transpose2d';
  readonly weight: Parameter;
  readonly bias: Parameter | null;

  constructor(
    readonly ctx: GpuContext,
    readonly inChannels: number,
    readonly outChannels: number,
    readonly opts: ConvOptions,
    label = 'conv_transpose2d',
    /** Node name in a recording ('up'). */
    readonly name = 'convT',
  ) {
    const k = opts.kernel;
    this.weight = new Parameter(ctx, 'weight', ctx.zeros([inChannels, outChannels, k, k], `${label}.weight`), WEIGHT_INIT);
    this.bias = opts.bias ? new Parameter(ctx, 'bias', ctx.zeros([outChannels], `${label}.bias`), BIAS_INIT) : null;
  }

  params(): Parameter[] {
    return this.bias ? [this.weight, this.bias] : [this.weight];
  }

  /** (H - 1) * stride - 2 * padding + kernel + outputPadding, as torch.nn.ConvTranspose2d. */
  outputShape(x: readonly number[]): number[] {
    const { kernel: k, stride: s, padding: p, outputPadding: op = 0 } = this.opts;
    return [x[0], this.outChannels, (x[2] - 1) * s - 2 * p + k + op, (x[3] - 1) * s - 2 * p + k + op];
  }

  record([x]: readonly SymbolicTensor[], rec: Recorder): SymbolicTensor[] {
    if (x.shape[1] !== this.inChannels) throw new ShapeError(`${rec.prefix}.${this.name}`, 'input channels', this.inChannels, x.shape[1]);
    return rec.node(this, [x], [this.outputShape(x.shape)], this.name);
  }

  lower(node: GraphNode, l: Lowering): LoweredNode {
    const { x, y, ...fusion } = fusionOf(node, l);
    const p = { stride: this.opts.stride, padding: this.opts.padding, outputPadding: this.opts.outputPadding ?? 0 };
    return {
      forward: l.own(convTranspose2dForward(this.ctx, y, x, this.weight.value, this.bias?.value ?? null, { ...p, ...fusion.forward })),
      backward: (g) => {
        const [dy] = g.dOutputs;
        const [dx] = g.dInputs;
        const out: Dispatch[] = [];
        if (dx) out.push(...l.own(convTranspose2dBackwardInput(this.ctx, dx, dy, this.weight.value, { ...p, ...fusion.input, accumulate: g.accumulate[0] })));
        if (wantsGrad(this.weight, g.paramGrads)) {
          const db = this.bias && !this.bias.frozen ? gradOf(this.bias) : null;
          out.push(...l.own(convTranspose2dBackwardWeight(this.ctx, gradOf(this.weight), db, dy, x, { ...p, ...fusion.weight, accumulate: g.paramGrads === 'accumulate' })));
        }
        return out;
      },
    };
  }

  destroy(): void {
    for (const p of this.params()) p.destroy();
  }
}
