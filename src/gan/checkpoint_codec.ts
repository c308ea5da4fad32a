/**
 * The pix2pix checkpoint codec: how a model's state reaches and leaves bytes, kept apart from the model
 * (Pix2Pix takes state dicts and calls this module). It knows
 *  - the formats: our safetensors layout (G and D under the reference's key names, F32, metadata
 *    format 'pt'), the reference's torch `.pth` (zip or legacy pickle), and state dicts already parsed;
 *    bytes are sniffed, a file name's extension only breaks a tie for bytes that are neither;
 *  - the optimizer file: Adam moments under `<G|D>.<key>.exp_avg` / `.exp_avg_sq`, step counts and the
 *    LR schedule position in the safetensors metadata (format {@link OPTIMIZER_FORMAT});
 *  - architecture inference from tensor shapes (the rules are in ./state_dict.ts), with the group count of
 *    a group-norm model from our files' metadata (`normGroups`: shapes cannot tell it);
 *  - the optimizer file's fit: it records each parameter's size, checked against the model it loads into.
 *
 * Only what the model needs is materialised (issue 11): a file is opened once (a .pth's pickle read, a
 * safetensors header checked) and its tensors listed with their shapes; architecture inference looks at
 * the shapes only; then the tensors of the network built from it are decoded. A file's other tensors (an
 * EMA copy, a classifier head, a hostile 200 MB blob) are named in the mismatch error but never decoded.
 * Every error names the source (the file path or URL the caller gave).
 * Browser-safe: no Node imports.
 */
import { FileFormatError, Pix2PixError, ShapeError, quoteUntrusted } from '../runtime/errors.js';
import { isPth, openPth } from '../io/pth.js';
import { openSafetensors, parseSafetensorsFile, serializeSafetensors } from '../io/safetensors.js';
import type { ReadBudget } from '../io/budget.js';
import type { StateDict } from '../io/state_dict.js';
import { DEFAULT_NORM_GROUPS, type NormKind } from '../layers/norm.js';
import type { DiscriminatorConfig, GeneratorConfig } from './networks.js';
import { inferDiscriminatorConfig, inferGeneratorConfig, stateKeyFilter, type HasState, type TensorShapes } from './state_dict.js';

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
 * A checkpoint opened once: every tensor's shape (file order), the file's metadata (safetensors only), and
 * `read(keep)` decoding only the tensors `keep` selects. Opening a .pth reads its pickle, opening a
 * safetensors file checks its header; neither decodes a tensor.
 */
export interface OpenedCheckpoint {
  shapes: TensorShapes;
  metadata: Record<string, string>;
  read(keep?: (key: string) => boolean): Promise<DecodedCheckpoint>;
}

/** Open a checkpoint (bytes in either format, or a parsed state dict). Throws FileFormatError naming `source` for a damaged file. */
export async function openCheckpoint(data: StateSource, source: string, budget?: Partial<ReadBudget>): Promise<OpenedCheckpoint> {
  const select = async (keys: Iterable<string>, keep: (key: string) => boolean, decode: (kept: (key: string) => boolean) => StateDict | Promise<StateDict>) => {
    const skipped: string[] = [];
    for (const k of keys) if (!keep(k)) skipped.push(k);
    return { skipped, tensors: await decode(keep) };
  };
  if (!(data instanceof Uint8Array)) {
    return {
      shapes: new Map([...data].map(([k, v]) => [k, { shape: v.shape }])),
      metadata: {},
      read: async (keep = () => true) => ({ ...(await select(data.keys(), keep, (kept) => new Map([...data].filter(([k]) => kept(k))))), metadata: {} }),
    };
  }
  const file = checkpointFormat(data, source) === 'pth' ? { ...(await openPth(data, source, { budget })), metadata: {} } : openSafetensors(data, source, { budget });
  const shapes: TensorShapes = new Map(file.tensors.map((t) => [t.key, { shape: t.shape }]));
  return {
    shapes,
    metadata: file.metadata,
    read: async (keep = () => true) => ({ ...(await select(shapes.keys(), keep, (kept) => file.read(kept))), metadata: file.metadata }),
  };
}

/**
 * Decode a checkpoint (bytes in either format, or a parsed state dict) into the tensors `keep` selects.
 * Throws FileFormatError naming `source` for a damaged file.
 */
export async function decodeCheckpoint(data: StateSource, source: string, opts: DecodeOptions = {}): Promise<DecodedCheckpoint> {
  return (await openCheckpoint(data, source, opts.budget)).read(opts.keep);
}

// ------------------------------------------------------------------------------------ networks

/**
 * G and D state dicts as safetensors bytes (F32, the reference's key names, format 'pt' as torch's safetensors
 * writer). `arch`: the network's norm; a group-norm network's group count is recorded as metadata `normGroups`
 * (its tensors' shapes are the same for every group count).
 */
export function encodeStateDict(dict: StateDict, arch?: { norm: NormKind; normGroups?: number }): Uint8Array {
  const metadata: Record<string, string> = { format: 'pt' };
  if (arch?.norm === 'group') metadata.normGroups = String(arch.normGroups ?? DEFAULT_NORM_GROUPS);
  return serializeSafetensors(dict, metadata);
}

/** The group count a file records (metadata `normGroups`), if any; a malformed one is a FileFormatError naming the file. */
export function recordedNormGroups(metadata: Record<string, string>, source: string): number | undefined {
  const raw = metadata.normGroups;
  if (raw === undefined) return undefined;
  const n = Number(raw);
  if (!/^\d+$/.test(raw) || !Number.isSafeInteger(n) || n < 1) throw new FileFormatError(source, `metadata normGroups is ${quoteUntrusted(raw, 40)}, expected a positive integer`);
  return n;
}

/** The architecture a checkpoint pair describes, and the opened files (reused by {@link decodeForNetwork}). */
export interface CheckpointArchitecture {
  generator: GeneratorConfig;
  discriminator: DiscriminatorConfig | null;
  heads: { G: OpenedCheckpoint; D: OpenedCheckpoint | null };
}

/**
 * Infer the networks from a generator (and optional discriminator) checkpoint, from the tensors' shapes
 * (nothing is decoded). A group-norm file's group count comes from its metadata, else from
 * `fallback.normGroups` (a state dict, a file from before the count was recorded), else the default.
 * Errors name the files: a file of the wrong kind, a D whose input channels are not G's in + out, a D
 * whose norm or group count differs from G's.
 */
export async function readArchitecture(G: NamedStateSource, D: NamedStateSource | undefined, fallback: Partial<GeneratorConfig> = {}, budget?: Partial<ReadBudget>): Promise<CheckpointArchitecture> {
  const gFile = await openCheckpoint(G.data, G.name, budget);
  const dFile = D ? await openCheckpoint(D.data, D.name, budget) : null;
  const generator = inferGeneratorConfig(gFile.shapes, { ...fallback, normGroups: recordedNormGroups(gFile.metadata, G.name) ?? fallback.normGroups }, G.name);
  const discriminator = dFile ? inferDiscriminatorConfig(dFile.shapes, D!.name, { normGroups: recordedNormGroups(dFile.metadata, D!.name) ?? generator.normGroups ?? fallback.normGroups }) : null;
  if (discriminator) {
    const want = generator.inputChannels + generator.outputChannels;
    if (discriminator.inputChannels !== want) {
      throw new Pix2PixError(
        D!.name,
        `discriminator takes ${discriminator.inputChannels} input channels but the generator ${G.name} has ${generator.inputChannels} in + ${generator.outputChannels} out = ${want} (discriminator input channels must be G input + output channels)`,
      );
    }
    if (discriminator.norm !== generator.norm) throw new Pix2PixError(D!.name, `discriminator norm '${discriminator.norm}' differs from the generator's '${generator.norm}' (${G.name})`);
    if (discriminator.normGroups !== generator.normGroups) {
      throw new Pix2PixError(D!.name, `discriminator normGroups ${discriminator.normGroups} differs from the generator's ${generator.normGroups} (${G.name}); one model has one group count`);
    }
  }
  return { generator, discriminator, heads: { G: gFile, D: dFile } };
}

/**
 * The tensors of `input` that `net` takes (from `head`, the file opened for inference, when given), and the
 * keys of the file it does not take (never decoded; the caller reports them: see loadStateDictInto).
 */
export async function decodeForNetwork(
  net: HasState & { config?: { norm: NormKind; normGroups?: number } },
  input: NamedStateSource,
  head?: OpenedCheckpoint | null,
  budget?: Partial<ReadBudget>,
): Promise<{ dict: StateDict; unexpected: string[] }> {
  const { wanted, ignored } = stateKeyFilter(net);
  const file = head ?? (await openCheckpoint(input.data, input.name, budget));
  // Group counts leave the tensors' shapes alone: a file trained with another count would load and compute garbage.
  const groups = recordedNormGroups(file.metadata, input.name);
  if (groups !== undefined && net.config?.norm === 'group' && groups !== net.config.normGroups) {
    throw new Pix2PixError(input.name, `checkpoint was trained with normGroups ${groups} but the network has normGroups ${net.config.normGroups}`);
  }
  const got = await file.read(wanted);
  return { dict: got.tensors, unexpected: got.skipped.filter((k) => !ignored(k)) };
}

// ------------------------------------------------------------------------------------ optimizer

/** Adam state of a model: moments per parameter key ('G.model.model.0.weight.exp_avg'), step counts, schedule position. */
export interface OptimizerState {
  moments: StateDict;
  stepG: number;
  stepD: number;
  trainSteps: number;
  schedulerSteps: number;
  /**
   * The element count of every parameter of the model that wrote the file ('G.model.model.0.weight' → 3072),
   * moments or not (metadata `parameters`; absent from files written before it was recorded).
   */
  parameters?: Map<string, number>;
}

/** Moment keys of a parameter of network `tag` ('G' or 'D'). */
export function momentKeys(tag: string, key: string): { m: string; v: string } {
  return { m: `${tag}.${key}.exp_avg`, v: `${tag}.${key}.exp_avg_sq` };
}

/**
 * The optimizer file: moments as F32 tensors, counters, the model's resolved config and every parameter's
 * size (state.parameters) in the metadata. The sizes let a file without moments (a model saved before its
 * first step) still be checked against the model it is loaded into.
 */
export function encodeOptimizerState(state: OptimizerState, config: object): Uint8Array {
  return serializeSafetensors(state.moments, {
    format: OPTIMIZER_FORMAT,
    stepG: String(state.stepG),
    stepD: String(state.stepD),
    trainSteps: String(state.trainSteps),
    schedulerSteps: String(state.schedulerSteps),
    config: JSON.stringify({ ...config }),
    ...(state.parameters ? { parameters: JSON.stringify(Object.fromEntries(state.parameters)) } : {}),
  });
}

/**
 * Read an optimizer file (our safetensors; or a state dict of moments, counters then 0), keeping only the
 * moments `keep` selects. Refuses another format or malformed parameter sizes, naming the source.
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
  const state: OptimizerState = { moments, stepG: num('stepG'), stepD: num('stepD'), trainSteps: num('trainSteps'), schedulerSteps: num('schedulerSteps') };
  if (meta.parameters !== undefined) state.parameters = parameterSizes(meta.parameters, input.name);
  return state;
}

function parameterSizes(json: string, source: string): Map<string, number> {
  let parsed: unknown;
  try {
    parsed = JSON.parse(json);
  } catch {
    parsed = null;
  }
  const entries = parsed !== null && typeof parsed === 'object' && !Array.isArray(parsed) ? Object.entries(parsed) : null;
  if (!entries || !entries.every(([, n]) => Number.isSafeInteger(n) && (n as number) >= 0)) {
    throw new FileFormatError(source, `metadata parameters is ${quoteUntrusted(json, 60)}, expected an object of parameter element counts`);
  }
  return new Map(entries as [string, number][]);
}

/**
 * Throw ShapeError naming the source unless the file's recorded parameters are the model's: the same keys
 * (of the networks the model has: a file with D's state fits an inference model without D) and element
 * counts. `expected`: the model's parameter sizes by moment prefix ('G.model.model.0.weight'). Files that
 * record no sizes are checked moment by moment only ({@link checkMomentSize}).
 */
export function checkOptimizerParameters(source: string, state: OptimizerState, expected: ReadonlyMap<string, number>): void {
  const recorded = state.parameters;
  if (!recorded) return;
  const nets = new Set([...expected.keys()].map((k) => k.slice(0, k.indexOf('.'))));
  const inFile = [...recorded].filter(([k]) => nets.has(k.slice(0, k.indexOf('.'))));
  const differ = [...new Set([...expected.keys(), ...inFile.map(([k]) => k)])].filter((k) => expected.get(k) !== recorded.get(k));
  if (differ.length === 0) return;
  const total = (sizes: Iterable<[string, number]>) => {
    let n = 0;
    let count = 0;
    for (const [, v] of sizes) [n, count] = [n + v, count + 1];
    return `${count} parameters of ${n} values`;
  };
  const first = differ[0];
  const size = (v: number | undefined) => (v === undefined ? 'absent' : `${v} values`);
  throw new ShapeError(
    source,
    `optimizer state for another architecture (${differ.length} parameter(s) differ, first ${quoteUntrusted(first, 80)}: model ${size(expected.get(first))}, file ${size(recorded.get(first))}); parameters`,
    total(expected),
    total(inFile),
  );
}

/** Throw ShapeError naming the source unless a parameter's moments have its element count. */
export function checkMomentSize(source: string, key: string, expected: number, m: { data: Float32Array }, v: { data: Float32Array }): void {
  if (m.data.length !== expected || v.data.length !== expected) throw new ShapeError(source, `${key} moments size`, expected, m.data.length !== expected ? m.data.length : v.data.length);
}
