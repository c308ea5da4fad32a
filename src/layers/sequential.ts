/**
 * Sequential: layers applied one after another, indexed as torch.nn.Sequential so that state-dict keys
 * ('model.3.weight') come from the position. A null entry is the reference's Identity (norm 'none'): it
 * takes its index and records nothing.
 */
import type { Layer, Recorder, SymbolicTensor } from './graph.js';
import type { Parameter } from './layer.js';
import { stateEntriesOf, type StateEntry } from './state.js';
import { BatchNorm2d, GroupNorm2d, InstanceNorm2d } from './norm.js';
import { Conv2d, ConvTranspose2d } from './conv.js';

/** A layer with state-dict entries of its own making (a nested Sequential, the U-Net block). */
export interface StatefulLayer extends Layer {
  stateEntries(prefix: string): StateEntry[];
  /** Module paths of the norm layers ('model.1.model.2'), for the reference's checkpoint patching. */
  normPaths(prefix: string): string[];
}

export class Sequential implements StatefulLayer {
  constructor(readonly layers: readonly (Layer | null)[]) {}

  record(inputs: readonly SymbolicTensor[], rec: Recorder): SymbolicTensor[] {
    return recordInOrder(this.layers, inputs, rec);
  }

  params(): Parameter[] {
    return this.layers.flatMap((l) => l?.params() ?? []);
  }

  /** Entries in torch's order: by index, each layer's parameters, then buffers, then its children. */
  stateEntries(prefix: string): StateEntry[] {
    return this.layers.flatMap((layer, i) => {
      if (!layer) return [];
      if (isStateful(layer)) return layer.stateEntries(`${prefix}${i}.`);
      if (layer instanceof Conv2d || layer instanceof ConvTranspose2d || isNorm(layer)) return stateEntriesOf(layer, `${prefix}${i}.`);
      return [];
    });
  }

  destroy(): void {
    for (const layer of this.layers) layer?.destroy?.();
  }

  normPaths(prefix: string): string[] {
    return this.layers.flatMap((layer, i) => (layer && isNorm(layer) ? [`${prefix}${i}`] : layer && isStateful(layer) ? layer.normPaths(`${prefix}${i}.`) : []));
  }
}

/** Record `layers` one after another (null: Identity). */
export function recordInOrder(layers: readonly (Layer | null)[], inputs: readonly SymbolicTensor[], rec: Recorder): SymbolicTensor[] {
  let xs = inputs;
  for (const layer of layers) if (layer) xs = layer.record(xs, rec);
  return [...xs];
}

function isStateful(l: Layer): l is StatefulLayer {
  return typeof (l as Partial<StatefulLayer>).stateEntries === 'function';
}

function isNorm(l: Layer): l is BatchNorm2d | InstanceNorm2d | GroupNorm2d {
  return l instanceof BatchNorm2d || l instanceof InstanceNorm2d || l instanceof GroupNorm2d;
}
