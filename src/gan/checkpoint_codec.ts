/**
 * The pix2pix checkpoint codec: how a model's state reaches and leaves bytes, kept apart from the model
 * (Pix2Pix takes state dicts and calls this module). It knows
 *  - the formats: our safetensors layout (G and D under the reference's key names, F32, metadata
 *    format 'pt'), the reference's torch `.pth` (zip or legacy pickle), and state dicts already parsed;
 *    bytes are sniffed, a file name's extension only breaks a tie for bytes that are neither;
 *  - the optimizer file: Adam moments under `<G|D>.<key>.exp_avg` / `.exp_avg_sq`, step counts and the
 *    LR schedule position in the safetensors metadata (format {@link OPTIMIZER_FORMAT});
 *  - architecture inference from tensor shapes (the rules are in ./state_dict.ts).
 *
 * Only what the model needs is materialised (issue 11): a file is read once for the few tensors that
 * architecture inference looks at, then once more for the tensors of the network built from it; a
 * file's other tensors (an EMA copy, a classifier head, a hostile 200 MB blob) are named in the
 * mismatch error but never decoded. Every error names the source (the file path or URL the caller gave).
 * Browser-safe: no Node imports.
 */
import { Pix2PixError, ShapeError } from '../runtime/errors.js';
import { isPth, loadPth } from '../io/pth.js';
import { parseSafetensorsFile, serializeSafetensors } from '../io/safetensors.js';
import type { ReadBudget } from '../io/budget.js';
import type { StateDict } from '../io/state_dict.js';
import type { DiscriminatorConfig, GeneratorConfig } from './networks.js';
import { inferDiscriminatorConfig, inferGeneratorConfig, isDiscriminatorInferenceKey, isGeneratorInferenceKey, stateKeyFilter, type HasState } from './state_dict.js';

/** A checkpoint source: file bytes (safetensors or a torch .pth), or an already parsed state dict. */
export type StateSource = Uint8Array | StateDict;

/** A checkpoint source with the name its errors should give (a file path, a URL). */
export interface NamedStateSource {
  data: StateSource;
  name: string;
}

/** What the model's loaders accept per file: a source, or a source with its name. */
export type CheckpointInput = StateSource | NamedStateSource;

/** The `format` metadata of our optimizer files. */
export const OPTIMIZER_FORMAT = 'pix2pix-webgpu-optimizer';

/** File name endings of torch checkpoints (used only when the bytes are neither format). */
const PTH_NAME = /\.(pth|pt|bin|ckpt|tar)$/i;

/** `input` as { data, name }, naming an unnamed source `fallback` ('G checkpoint'). */
export function namedSource(input: CheckpointInput, fallback: string): NamedStateSource {
  if (input instanceof Uint8Array || input instanceof Map) return { data: input, name: fallback };
  return { data: input.data, name: input.name };
}

/** True for `{ data: bytes | Map, name: non-empty string }`. */
export function isNamedSource(v: unknown): v is NamedStateSource {
  if (v === null || typeof v !== 'object' || v instanceof Uint8Array || v instanceof Map) return false;
  const { data, name } = v as Partial<NamedStateSource>;
  return (data instanceof Uint8Array || data instanceof Map) && typeof name === 'string' && name !== '';
}

export interface DecodeOptions {
  /** Which tensors to materialise, by key. The others are listed in `skipped` and never decoded. Default: all. */
  keep?: (key: string) => boolean;
  /** Reader budget overrides (see io/budget.ts). */
  budget?: Partial<ReadBudget>;
}

/** A decoded checkpoint: the kept tensors, the file's metadata (safetensors only), the keys not kept (file order). */
export interface DecodedCheckpoint {
  tensors: StateDict;
  metadata: Record<string, string>;
  skipped: string[];
}

/** 'pth' or 'safetensors': the bytes decide; a torch-like file name decides only for bytes that look like neither. */
export function checkpointFormat(bytes: Uint8Array, name = ''): 'pth' | 'safetensors' {
  if (isPth(bytes)) return 'pth';
  const safetensorsShaped = bytes.length >= 9 && bytes[8] === 0x7b; /* '{' after the u64 header length */
  return !safetensorsShaped && PTH_NAME.test(name) ? 'pth' : 'safetensors';
}

/**
 * Decode a checkpoint (bytes in either format, or a parsed state dict) into the tensors `keep` selects.
 * Throws FileFormatError naming `source` for a damaged file.
 */
export async function decodeCheckpoint(data: StateSource, source: string, opts: DecodeOptions = {}): Promise<DecodedCheckpoint> {
  const want = opts.keep ?? (() => true);
  const skipped: string[] = [];
  const keep = (key: string) => {
    if (want(key)) return true;
    skipped.push(key);
    return false;
  };
  if (!(data instanceof Uint8Array)) {
    const tensors: StateDict = new Map();
    for (const [k, v] of data) if (keep(k)) tensors.set(k, v);
    return { tensors, metadata: {}, skipped };
  }
  if (checkpointFormat(data, source) === 'pth') return { tensors: await loadPth(data, source, { keep, budget: opts.budget }), metadata: {}, skipped };
  const file = parseSafetensorsFile(data, source, { keep, budget: opts.budget });
  return { tensors: file.tensors, metadata: file.metadata, skipped };
}

// ------------------------------------------------------------------------------------ networks

/** G and D state dicts as safetensors bytes (F32, the reference's key names, format 'pt' as torch's safetensors writer). */
export function encodeStateDict(dict: StateDict): Uint8Array {
  return serializeSafetensors(dict, { format: 'pt' });
}

/** The architecture a checkpoint pair describes, and what was read to find it (reused by {@link decodeForNetwork}). */
export interface CheckpointArchitecture {
  generator: GeneratorConfig;
  discriminator: DiscriminatorConfig | null;
  heads: { G: DecodedCheckpoint; D: DecodedCheckpoint | null };
}

/**
 * Infer the networks from a generator (and optional discriminator) checkpoint, reading only the tensors
 * inference looks at. Errors name the files: a file of the wrong kind, a D whose input channels are not
 * G's in + out, a D whose norm differs from G's.
 */
export async function readArchitecture(G: NamedStateSource, D: NamedStateSource | undefined, fallback: Partial<GeneratorConfig> = {}, budget?: Partial<ReadBudget>): Promise<CheckpointArchitecture> {
  const gHead = await decodeCheckpoint(G.data, G.name, { keep: isGeneratorInferenceKey, budget });
  const dHead = D ? await decodeCheckpoint(D.data, D.name, { keep: isDiscriminatorInferenceKey, budget }) : null;
  const generator = inferGeneratorConfig(gHead.tensors, fallback, G.name);
  const discriminator = dHead ? inferDiscriminatorConfig(dHead.tensors, D!.name) : null;
  if (discriminator) {
    const want = generator.inputChannels + generator.outputChannels;
    if (discriminator.inputChannels !== want) {
      throw new Pix2PixError(
        D!.name,
        `discriminator takes ${discriminator.inputChannels} input channels but the generator ${G.name} has ${generator.inputChannels} in + ${generator.outputChannels} out = ${want} (discriminator input channels must be G input + output channels)`,
      );
    }
    if (discriminator.norm !== generator.norm) throw new Pix2PixError(D!.name, `discriminator norm '${discriminator.norm}' differs from the generator's '${generator.norm}' (${G.name})`);
  }
  return { generator, discriminator, heads: { G: gHead, D: dHead } };
}

/**
 * The tensors of `input` that `net` takes (reusing those in `head`, read for inference), and the keys of
 * the file it does not take (unread; the caller reports them: see loadStateDictInto). Nothing else is decoded.
 */
export async function decodeForNetwork(net: HasState, input: NamedStateSource, head?: DecodedCheckpoint | null, budget?: Partial<ReadBudget>): Promise<{ dict: StateDict; unexpected: string[] }> {
  const { wanted, ignored } = stateKeyFilter(net);
  const have = head?.tensors;
  const rest = await decodeCheckpoint(input.data, input.name, { keep: (k) => wanted(k) && !have?.has(k), budget });
  const dict: StateDict = new Map(rest.tensors);
  if (have) for (const [k, v] of have) if (wanted(k)) dict.set(k, v);
  return { dict, unexpected: rest.skipped.filter((k) => !wanted(k) && !ignored(k)) };
}

// ------------------------------------------------------------------------------------ optimizer

/** Adam state of a model: moments per parameter key ('G.model.model.0.weight.exp_avg'), step counts, schedule position. */
export interface OptimizerState {
  moments: StateDict;
  stepG: number;
  stepD: number;
  trainSteps: number;
  schedulerSteps: number;
}

/** Moment keys of a parameter of network `tag` ('G' or 'D'). */
export function momentKeys(tag: string, key: string): { m: string; v: string } {
  return { m: `${tag}.${key}.exp_avg`, v: `${tag}.${key}.exp_avg_sq` };
}

/** The optimizer file: moments as F32 tensors, counters and the model's resolved config in the metadata. */
export function encodeOptimizerState(state: OptimizerState, config: object): Uint8Array {
  return serializeSafetensors(state.moments, {
    format: OPTIMIZER_FORMAT,
    stepG: String(state.stepG),
    stepD: String(state.stepD),
    trainSteps: String(state.trainSteps),
    schedulerSteps: String(state.schedulerSteps),
    config: JSON.stringify({ ...config }),
  });
}

/**
 * Read an optimizer file (our safetensors; or a state dict of moments, counters then 0), keeping only the
 * moments `keep` selects. Refuses another format, naming the source.
 */
export async function decodeOptimizerState(input: NamedStateSource, keep?: (key: string) => boolean, budget?: Partial<ReadBudget>): Promise<OptimizerState> {
  let moments: StateDict;
  let meta: Record<string, string> = {};
  if (input.data instanceof Uint8Array) {
    const f = parseSafetensorsFile(input.data, input.name, { keep, budget });
    moments = f.tensors;
    meta = f.metadata;
  } else moments = (await decodeCheckpoint(input.data, input.name, { keep })).tensors;
  if (meta.format && meta.format !== OPTIMIZER_FORMAT) throw new Pix2PixError(input.name, `format '${meta.format}' is not ${OPTIMIZER_FORMAT}`);
  const num = (k: string) => (meta[k] !== undefined ? Number(meta[k]) : 0);
  return { moments, stepG: num('stepG'), stepD: num('stepD'), trainSteps: num('trainSteps'), schedulerSteps: num('schedulerSteps') };
}

/** Throw ShapeError naming the source unless a parameter's moments have its element count. */
export function checkMomentSize(source: string, key: string, expected: number, m: { data: Float32Array }, v: { data: Float32Array }): void {
  if (m.data.length !== expected || v.data.length !== expected) throw new ShapeError(source, `${key} moments size`, expected, m.data.length !== expected ? m.data.length : v.data.length);
}
