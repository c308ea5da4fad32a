/**
 * What every layer shares: parameters (value + gradient + Adam moments), run modes, and "runs".
 *
 * A layer owns its parameters; a *run* is one recorded use of a network on inputs of fixed shapes
 * (graph.ts records it, passes.ts rewrites it, lowering allocates its tensors and builds its forward
 * Dispatch list once). `run.backward(dy, dx, ...)` builds (once) the dispatches that write the input
 * gradient and the parameter gradients. A training step is recorded from runs and replayed every step,
 * so a steady-state step allocates nothing. The same network can have several runs (the discriminator
 * runs on fake and real pairs, and again for the generator's loss), each with its own saved activations.
 */
import type { Dispatch, GpuContext } from '../runtime/context.js';
import { destroyDispatches } from '../runtime/context.js';
import type { Tensor } from '../runtime/tensor.js';

/** How a parameter is initialised: the reference's init_weights('normal', 0.02) uses these two. */
export type ParamInit = { kind: 'normal'; mean: number; std: number } | { kind: 'constant'; value: number };

/**
 * A trainable tensor. `grad`, `m` and `v` (Adam's first and second moments) are allocated on first
 * use by {@link Parameter.ensureTrainingState}, so inference-only models hold only the values. A
 * network packs its parameters (see param_pack.ts): then `value`, `grad`, `m` and `v` are views into
 * four network-wide buffers with one layout, and Adam updates every parameter in one dispatch.
 */
export class Parameter {
  grad: Tensor | null = null;
  m: Tensor | null = null;
  v: Tensor | null = null;
  /** Frozen parameters get no gradient kernels and no Adam update. */
  frozen = false;
  /** Set by packParameters: the pack that owns this parameter's memory. */
  pack: { ensureTrainingState(): void } | null = null;
  private current: Tensor;

  constructor(
    readonly ctx: GpuContext,
    /** Name relative to the owning layer: 'weight' or 'bias'. */
    readonly name: string,
    value: Tensor,
    readonly init: ParamInit,
  ) {
    this.current = value;
  }

  get value(): Tensor {
    return this.current;
  }

  get shape(): readonly number[] {
    return this.current.shape;
  }

  /** Move the parameter into a pack's views (values copied by the pack). Before any run is recorded. */
  adopt(pack: { ensureTrainingState(): void }, value: Tensor): void {
    // Freed, not pooled: no later tensor has these sizes, and the pool would hold them forever.
    for (const t of [this.current, this.grad, this.m, this.v]) t?.destroy({ pool: false });
    this.grad = this.m = this.v = null;
    this.current = value;
    this.pack = pack;
  }

  /** Allocate grad/m/v (m and v zeroed, as torch.optim.Adam's fresh state). Idempotent. */
  ensureTrainingState(): void {
    if (this.grad) return;
    if (this.pack) {
      this.pack.ensureTrainingState();
      return;
    }
    this.grad = this.ctx.zeros(this.value.shape, `${this.value.label}.grad`);
    this.m = this.ctx.zeros(this.value.shape, `${this.value.label}.exp_avg`);
    this.v = this.ctx.zeros(this.value.shape, `${this.value.label}.exp_avg_sq`);
  }

  destroy(): void {
    this.value.destroy();
    this.grad?.destroy();
    this.m?.destroy();
    this.v?.destroy();
  }
}

/**
 * How a run's forward behaves. `batchStats`: batch norm normalises with the batch's statistics (the
 * module's train mode) instead of the running ones; `updateStats`: it also updates the running
 * statistics (only training steps do); `dropout`: dropout is active (train mode).
 */
export interface RunMode {
  batchStats: boolean;
  updateStats: boolean;
  dropout: boolean;
}

export const TRAIN_MODE: RunMode = { batchStats: true, updateStats: true, dropout: true };
export const EVAL_MODE: RunMode = { batchStats: false, updateStats: false, dropout: false };

/**
 * What backward does with parameter gradients: 'overwrite' (the first contribution of a step),
 * 'accumulate' (a later one: the discriminator's real pass after its fake pass), or 'none' (the
 * generator's step runs D backward for the input gradient only, as the reference sets
 * requires_grad=False on D).
 */
export type ParamGrads = 'none' | 'overwrite' | 'accumulate';

export interface BackwardOptions {
  /** Add into dx instead of overwriting it (shared inputs: the U-Net's skip connections). */
  accumulateInput?: boolean;
  paramGrads: ParamGrads;
  /**
   * `dy` is already the gradient of the output activation's input (the loss applied the activation's
   * derivative, e.g. L1 taken through G's tanh): backward starts below that activation.
   */
  dyBelowOutputActivation?: boolean;
}

/** One recorded use of a layer on one input. */
export interface LayerRun {
  readonly output: Tensor;
  /** The forward dispatches, in order. */
  readonly forward: readonly Dispatch[];
  /**
   * Dispatches that write dx (when not null) and the parameter gradients, given dy (the gradient of
   * `output`). Build once per run and replay. The run owns the dispatches and scratch it creates.
   */
  backward(dy: Tensor, dx: Tensor | null, opts: BackwardOptions): Dispatch[];
  /** Free the output, saved activations, scratch and dispatches. */
  destroy(): void;
}

/** Bookkeeping shared by run implementations: owned tensors and dispatches, freed together. */
export class RunResources {
  private readonly tensors: Tensor[] = [];
  private readonly dispatches: Dispatch[][] = [];
  private readonly children: LayerRun[] = [];

  constructor(readonly ctx: GpuContext) {}

  /** A tensor owned by this run. */
  tensor(shape: readonly number[], label: string): Tensor {
    const t = this.ctx.scratch(shape, label);
    this.tensors.push(t);
    return t;
  }

  own<T extends Dispatch[]>(list: T): T {
    this.dispatches.push(list);
    return list;
  }

  child<R extends LayerRun>(run: R): R {
    this.children.push(run);
    return run;
  }

  destroy(): void {
    for (const l of this.dispatches) destroyDispatches(l);
    for (const t of this.tensors) t.destroy();
    for (const c of this.children) c.destroy();
    this.dispatches.length = 0;
    this.tensors.length = 0;
    this.children.length = 0;
  }
}

/** Whether a parameter gets a gradient in this backward. */
export function wantsGrad(p: Parameter | null, mode: ParamGrads): p is Parameter {
  return !!p && mode !== 'none' && !p.frozen;
}

/** The parameter's gradient tensor (allocating training state on first use). */
export function gradOf(p: Parameter): Tensor {
  p.ensureTrainingState();
  return p.grad!;
}
