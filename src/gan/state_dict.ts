/**
 * State dicts of the pix2pix networks: reading them off the GPU, checking a checkpoint against a
 * network (missing, unexpected and misshapen tensors, all listed in one error), the reference's
 * InstanceNorm patch, and inferring the architecture from a checkpoint's tensor shapes.
 */
import { FileFormatError, Pix2PixError, quoteUntrusted } from '../runtime/errors.js';
import type { StateDict } from '../io/state_dict.js';
import type { StateEntry } from '../layers/state.js';
import { DEFAULT_NORM_GROUPS, type NormKind } from '../layers/norm.js';
import type { DiscriminatorConfig, GeneratorConfig } from './networks.js';

/** Keys listed per kind in a mismatch message; the error object keeps them all. */
const LISTED_KEYS = 12;

function listKeys(keys: readonly string[]): string {
  const shown = keys.slice(0, LISTED_KEYS).map((k) => quoteUntrusted(k, 80));
  return keys.length > LISTED_KEYS ? `${shown.join(', ')}, … and ${keys.length - LISTED_KEYS} more` : shown.join(', ');
}

/**
 * A checkpoint that does not fit the network. The message names the source (the file path, as the
 * caller passes it) and lists the offending keys (escaped, and at most a dozen of each kind); the
 * fields hold them all.
 */
export class CheckpointMismatchError extends Pix2PixError {
  constructor(
    readonly source: string,
    readonly missing: string[],
    readonly unexpected: string[],
    readonly mismatched: { key: string; expected: readonly number[]; actual: readonly number[] }[],
  ) {
    const parts: string[] = [];
    if (missing.length) parts.push(`missing ${missing.length} tensor(s): ${listKeys(missing)}`);
    if (unexpected.length) parts.push(`unexpected ${unexpected.length} tensor(s): ${listKeys(unexpected)}`);
    if (mismatched.length) {
      const shown = mismatched.slice(0, LISTED_KEYS).map((m) => `${quoteUntrusted(m.key, 80)} expected [${m.expected.join(', ')}] got [${m.actual.slice(0, 8).join(', ')}${m.actual.length > 8 ? ', …' : ''}]`);
      if (mismatched.length > LISTED_KEYS) shown.push(`… and ${mismatched.length - LISTED_KEYS} more`);
      parts.push(`${mismatched.length} tensor(s) with the wrong shape: ${shown.join('; ')}`);
    }
    super(source, `checkpoint does not match the network: ${parts.join('; ')}`);
  }
}

/** Any network whose tensors are described by state entries. */
export interface HasState {
  stateEntries(): StateEntry[];
  normPaths(): string[];
}

/** Read every entry off the GPU, in torch's key order. */
export async function readStateDict(net: HasState): Promise<StateDict> {
  const out: StateDict = new Map();
  for (const e of net.stateEntries()) {
    if (e.kind === 'counter') out.set(e.key, { shape: [], data: Float32Array.of(e.owner.numBatchesTracked), dtype: 'I64' });
    else out.set(e.key, { shape: [...e.shape], data: await e.tensor.read(), dtype: 'F32' });
  }
  return out;
}

const RUNNING_LEAVES = new Set(['running_mean', 'running_var', 'num_batches_tracked']);

/**
 * What the reference does before `load_state_dict` (models/base_model.py load_networks): drop
 * `_metadata` (not a tensor here), and `__patch_instance_norm_state_dict`: remove running_mean /
 * running_var / num_batches_tracked of InstanceNorm layers, which pre-0.4 checkpoints carry. Also strips
 * a DataParallel 'module.' prefix when every key has it.
 */
export function patchStateDict(dict: StateDict, net: HasState): { dict: StateDict; dropped: string[] } {
  const expected = new Set(net.stateEntries().map((e) => e.key));
  const instancePaths = new Set(net.normPaths().filter((p) => !expected.has(`${p}.running_mean`)));
  const allPrefixed = dict.size > 0 && [...dict.keys()].every((k) => k.startsWith('module.'));
  const out: StateDict = new Map();
  const dropped: string[] = [];
  for (const [rawKey, v] of dict) {
    const key = allPrefixed ? rawKey.slice('module.'.length) : rawKey;
    const dot = key.lastIndexOf('.');
    if (!expected.has(key) && RUNNING_LEAVES.has(key.slice(dot + 1)) && instancePaths.has(key.slice(0, dot))) {
      dropped.push(rawKey);
      continue;
    }
    out.set(key, v);
  }
  return { dict: out, dropped };
}

/**
 * Which keys of a checkpoint the network reads: `wanted` (its tensors, also under a DataParallel
 * 'module.' prefix) and `ignored` (what {@link patchStateDict} drops: InstanceNorm running statistics).
 * A reader keeps only wanted keys, so a file's other tensors are never materialised; every key that is
 * neither is reported as unexpected.
 */
export function stateKeyFilter(net: HasState): { wanted: (key: string) => boolean; ignored: (key: string) => boolean } {
  const expected = new Set(net.stateEntries().map((e) => e.key));
  const instancePaths = new Set(net.normPaths().filter((p) => !expected.has(`${p}.running_mean`)));
  const bare = (key: string) => (key.startsWith('module.') ? key.slice('module.'.length) : key);
  return {
    wanted: (key) => expected.has(key) || expected.has(bare(key)),
    ignored: (key) => {
      const k = bare(key);
      const dot = k.lastIndexOf('.');
      return !expected.has(k) && RUNNING_LEAVES.has(k.slice(dot + 1)) && instancePaths.has(k.slice(0, dot));
    },
  };
}

/**
 * Throw {@link CheckpointMismatchError} unless `dict` holds exactly the network's tensors with their shapes.
 * `unread`: keys of the file that were not read (the reader skipped them), reported as unexpected too.
 */
export function checkStateDict(dict: StateDict, net: HasState, source: string, unread: readonly string[] = []): void {
  const entries = net.stateEntries();
  const expected = new Map(entries.map((e) => [e.key, e]));
  const missing = entries.filter((e) => !dict.has(e.key)).map((e) => e.key);
  const unexpected = [...[...dict.keys()].filter((k) => !expected.has(k)), ...unread];
  const mismatched: CheckpointMismatchError['mismatched'] = [];
  for (const [key, v] of dict) {
    const e = expected.get(key);
    if (!e) continue;
    const same = e.kind === 'counter' ? v.data.length === 1 : v.shape.length === e.shape.length && v.shape.every((d, i) => d === e.shape[i]);
    if (!same) mismatched.push({ key, expected: e.shape, actual: v.shape });
  }
  if (missing.length || unexpected.length || mismatched.length) throw new CheckpointMismatchError(source, missing, unexpected, mismatched);
}

/**
 * Throw FileFormatError naming `source` (the file) and the tensor if any value the network would
 * load is NaN or infinite: such weights translate every image to garbage (all black) without
 * any other error.
 */
export function checkFinite(dict: StateDict, net: HasState, source: string): void {
  for (const e of net.stateEntries()) {
    const v = dict.get(e.key);
    if (!v) continue;
    const data = v.data;
    for (let i = 0; i < data.length; i++) {
      if (!Number.isFinite(data[i])) {
        let count = 0;
        for (let j = i; j < data.length; j++) if (!Number.isFinite(data[j])) count++;
        throw new FileFormatError(
          source,
          `tensor ${quoteUntrusted(e.key, 80)} holds ${count} non-finite value(s) of ${data.length} (first: ${data[i]} at index ${i}); refusing to load it`,
        );
      }
    }
  }
}

/**
 * Patch, check (keys, shapes, finite values), then write every tensor of `dict` into the network. Returns the
 * keys the patch dropped. `unread`: keys of the file that the reader skipped and the network does not take
 * (they make the checkpoint a mismatch, as keys in `dict` would).
 */
export function loadStateDictInto(net: HasState, dict: StateDict, source: string, unread: readonly string[] = []): string[] {
  const { dict: patched, dropped } = patchStateDict(dict, net);
  checkStateDict(patched, net, source, unread);
  checkFinite(patched, net, source);
  for (const e of net.stateEntries()) {
    const v = patched.get(e.key)!;
    if (e.kind === 'counter') e.owner.numBatchesTracked = v.data[0];
    else e.tensor.write(v.data);
  }
  return dropped;
}

// ------------------------------------------------------------------------------ architecture inference

/** Tensor shapes by key: what architecture inference reads (a StateDict is one; so is a file's listing). */
export type TensorShapes = ReadonlyMap<string, { shape: readonly number[] }>;

function shapeOf(dict: TensorShapes, key: string): readonly number[] | undefined {
  return dict.get(key)?.shape;
}

function stripModulePrefix(dict: TensorShapes): TensorShapes {
  if (dict.size === 0 || ![...dict.keys()].every((k) => k.startsWith('module.'))) return dict;
  return new Map([...dict].map(([k, v]) => [k.slice('module.'.length), v]));
}

/**
 * The norm a layer's tensors describe: an affine with running statistics is BatchNorm; an affine without
 * them is GroupNorm (the reference's BatchNorm always tracks them; its InstanceNorm has no affine).
 */
function normOfAffine(dict: TensorShapes, path: string): 'batch' | 'group' {
  return dict.has(`${path}.running_mean`) ? 'batch' : 'group';
}

/** `normGroups` for a group-norm config (the file's record or the caller's, else the default); nothing for other norms. */
function groupsFor(norm: NormKind, normGroups: number | undefined): { normGroups?: number } {
  return norm === 'group' ? { normGroups: normGroups ?? DEFAULT_NORM_GROUPS } : {};
}

/**
 * Infer a UnetGenerator's architecture from tensor shapes (reference key names): input/output channels
 * and ngf from the outermost convs, numDowns from the nesting depth, norm from what the first inner
 * level holds (norm weight with running statistics → 'batch', without → 'group'; conv bias → 'instance';
 * neither → 'none'). Dropout has no tensors: it comes from `fallback` (the reference trains pix2pix with
 * dropout); so does a group-norm model's group count (shapes are the same for every count; our files
 * record it in their metadata, see checkpoint_codec.ts), default {@link DEFAULT_NORM_GROUPS}.
 */
export function inferGeneratorConfig(raw: TensorShapes, fallback: Partial<GeneratorConfig> = {}, source = 'generator checkpoint'): GeneratorConfig {
  const dict = stripModulePrefix(raw);
  const down = shapeOf(dict, 'model.model.0.weight');
  const up = shapeOf(dict, 'model.model.3.weight');
  if (!down || down.length !== 4 || !up || up.length !== 4) {
    throw new Pix2PixError(source, 'not a U-Net generator state dict (no model.model.0.weight / model.model.3.weight 4-D tensors)');
  }
  const ngf = down[0];
  let numDowns = 2;
  let p = 'model.model.1';
  while (dict.has(`${p}.model.3.model.1.weight`)) {
    p += '.model.3';
    numDowns++;
  }
  const level2 = 'model.model.1.model';
  let norm: NormKind;
  if (dict.has(`${level2}.2.weight`)) norm = normOfAffine(dict, `${level2}.2`);
  else if (dict.has(`${level2}.1.bias`)) norm = 'instance';
  else norm = 'none';
  return { inputChannels: down[1], outputChannels: up[1], ngf, numDowns, norm, ...groupsFor(norm, fallback.normGroups), dropout: fallback.dropout ?? true };
}

/**
 * Infer an NLayerDiscriminator's architecture (input channels, ndf, nLayers, norm) from tensor shapes;
 * a group-norm D's group count from `fallback` (as for G).
 */
export function inferDiscriminatorConfig(raw: TensorShapes, source = 'discriminator checkpoint', fallback: { normGroups?: number } = {}): DiscriminatorConfig {
  const dict = stripModulePrefix(raw);
  const first = shapeOf(dict, 'model.0.weight');
  if (!first || first.length !== 4) throw new Pix2PixError(source, 'not a PatchGAN discriminator state dict (no 4-D model.0.weight)');
  const convs = [...dict.entries()].filter(([k, v]) => /^model\.\d+\.weight$/.test(k) && v.shape.length === 4).length;
  const nLayers = convs - 2;
  if (nLayers < 1) throw new Pix2PixError(source, `a PatchGAN needs at least 3 convs, found ${convs}`);
  let norm: NormKind;
  if (shapeOf(dict, 'model.3.weight')?.length === 1) norm = normOfAffine(dict, 'model.3');
  else if (dict.has('model.2.bias')) norm = 'instance';
  else norm = 'none';
  return { inputChannels: first[1], ndf: first[0], nLayers, norm, ...groupsFor(norm, fallback.normGroups) };
}
