/**
 * State-dict entries: what a layer contributes to torch's `state_dict()`, in torch's order (a module's
 * parameters in registration order, then its buffers, then its children by index).
 */
import type { Tensor } from '../runtime/tensor.js';
import { Conv2d, ConvTranspose2d } from './conv.js';
import type { Parameter } from './layer.js';
import { BatchNorm2d, InstanceNorm2d, type GroupNorm2d } from './norm.js';

export type StateEntry =
  /** A parameter (weight, bias): GPU tensor, trainable. */
  | { key: string; kind: 'param'; shape: readonly number[]; param: Parameter; tensor: Tensor }
  /** A running statistic of a BatchNorm2d: GPU tensor, not trainable. */
  | { key: string; kind: 'buffer'; shape: readonly number[]; tensor: Tensor; owner: BatchNorm2d }
  /** BatchNorm2d.num_batches_tracked: an int64 scalar in torch, a CPU counter here. */
  | { key: string; kind: 'counter'; shape: readonly number[]; owner: BatchNorm2d };

/** Entries of one leaf layer under `prefix` ('model.3.'). Instance norm (affine=False) has none. */
export function stateEntriesOf(layer: Conv2d | ConvTranspose2d | BatchNorm2d | InstanceNorm2d | GroupNorm2d, prefix: string): StateEntry[] {
  if (layer instanceof InstanceNorm2d) return [];
  const out: StateEntry[] = layer.params().map((p) => ({ key: prefix + p.name, kind: 'param' as const, shape: p.shape, param: p, tensor: p.value }));
  if (layer instanceof BatchNorm2d) {
    out.push({ key: `${prefix}running_mean`, kind: 'buffer', shape: layer.runningMean.shape, tensor: layer.runningMean, owner: layer });
    out.push({ key: `${prefix}running_var`, kind: 'buffer', shape: layer.runningVar.shape, tensor: layer.runningVar, owner: layer });
    out.push({ key: `${prefix}num_batches_tracked`, kind: 'counter', shape: [], owner: layer });
  }
  return out;
}
