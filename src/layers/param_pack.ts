/**
 * Parameter packing: all parameters of a network live in one buffer (and their gradients, Adam first
 * and second moments in three more, with the same layout), each at a 256-byte-aligned offset so that
 * kernels bind them as ordinary tensors (views). Adam is element-wise, so one dispatch over the packed
 * range updates every parameter (multi-tensor Adam, as torch's foreach/fused implementations do):
 * unet_256 has 16 parameter tensors per level, 34 dispatches' launch cost becomes one. The padding
 * between slots has zero gradients and zero moments, so Adam leaves it at zero.
 */
import type { GpuContext } from '../runtime/context.js';
import { DeviceLimitError } from '../runtime/errors.js';
import type { Tensor } from '../runtime/tensor.js';
import type { Parameter } from './layer.js';

/** Slot alignment in elements: 256 bytes, WebGPU's largest allowed minStorageBufferOffsetAlignment. */
const SLOT_ELEMENTS = 64;

export interface PackSlot {
  param: Parameter;
  /** First element of the slot in the packed buffers. */
  offset: number;
}

export class ParameterPack {
  readonly slots: PackSlot[] = [];
  /** Elements in each packed buffer (slots plus alignment padding). */
  readonly size: number;
  readonly values: Tensor;
  grads: Tensor | null = null;
  m: Tensor | null = null;
  v: Tensor | null = null;

  constructor(
    readonly ctx: GpuContext,
    params: readonly Parameter[],
    readonly label: string,
  ) {
    let offset = 0;
    for (const param of params) {
      this.slots.push({ param, offset });
      offset += Math.ceil(param.value.size / SLOT_ELEMENTS) * SLOT_ELEMENTS;
    }
    this.size = Math.max(offset, 1);
    if (this.size * 4 > ctx.limits.maxBufferSize) throw new DeviceLimitError(label, 'packed parameter bytes', ctx.limits.maxBufferSize, this.size * 4);
    // Bound only a slot (or a window for Adam) at a time, so maxBufferSize is the limit, not the binding size.
    this.values = this.packed('params');
    ctx.fillZero(this.values);
    const enc = ctx.device.createCommandEncoder({ label: `${label}.pack` });
    for (const { param, offset } of this.slots) enc.copyBufferToBuffer(param.value.buffer, param.value.offset, this.values.buffer, offset * 4, param.value.size * 4);
    ctx.device.queue.submit([enc.finish()]);
    for (const { param, offset } of this.slots) param.adopt(this, this.values.view(param.shape, offset, param.value.label));
  }

  private packed(kind: string): Tensor {
    return this.ctx.bufferTensor([this.size], `${this.label}.${kind}`);
  }

  /** Allocate the packed gradients and moments (zeroed) and point every parameter at its views. Idempotent. */
  ensureTrainingState(): void {
    if (this.grads) return;
    this.grads = this.packed('grads');
    this.m = this.packed('exp_avg');
    this.v = this.packed('exp_avg_sq');
    for (const t of [this.grads, this.m, this.v]) this.ctx.fillZero(t);
    for (const { param, offset } of this.slots) {
      const label = param.value.label;
      param.grad = this.grads.view(param.shape, offset, `${label}.grad`);
      param.m = this.m.view(param.shape, offset, `${label}.exp_avg`);
      param.v = this.v.view(param.shape, offset, `${label}.exp_avg_sq`);
    }
  }

  /**
   * Element ranges [start, end) covering the trainable (not frozen) parameters, merged where slots are
   * adjacent and split so that no range binds more than the device's maxStorageBufferBindingSize.
   */
  trainableRanges(): [number, number][] {
    const ranges: [number, number][] = [];
    this.slots.forEach(({ param, offset }, i) => {
      if (param.frozen) return;
      const end = i + 1 < this.slots.length ? this.slots[i + 1].offset : this.size;
      const last = ranges[ranges.length - 1];
      if (last && last[1] === offset) last[1] = end;
      else ranges.push([offset, end]);
    });
    const maxElements = Math.floor(this.ctx.limits.maxStorageBufferBindingSize / 4 / SLOT_ELEMENTS) * SLOT_ELEMENTS;
    return ranges.flatMap(([s, e]) => {
      const out: [number, number][] = [];
      for (let a = s; a < e; a += maxElements) out.push([a, Math.min(e, a + maxElements)]);
      return out;
    });
  }

  destroy(): void {
    for (const t of [this.values, this.grads, this.m, this.v]) t?.destroy();
  }
}
