/**
 * pytorch-fid's InceptionV3 weights: the layer table (every BasicConv2d with its geometry), state-dict
 * validation, and BatchNorm folding. Browser-safe: no Node imports, no weights bundled or downloaded.
 *
 * The user supplies pytorch-fid's `pt_inception-2015-12-05-6726825d.pth` (the TensorFlow FID Inception
 * ported to PyTorch), read as it is with loadPth, or the same state dict as safetensors.
 */
import { FileFormatError } from '../runtime/errors.js';
import { loadPth, isPth } from '../io/pth.js';
import { parseSafetensors } from '../io/safetensors.js';
import type { StateDict } from '../io/state_dict.js';

/** The weights file pytorch-fid downloads on first use, and where it comes from. */
export const FID_WEIGHTS_FILE = 'pt_inception-2015-12-05-6726825d.pth';
export const FID_WEIGHTS_URL = `https://github.com/mseitzer/pytorch-fid/releases/download/fid_weights/${FID_WEIGHTS_FILE}`;

/** One BasicConv2d (conv without bias + BatchNorm(eps=0.001) + ReLU), named as in the state dict. */
export interface InceptionConvSpec {
  name: string;
  cin: number;
  cout: number;
  kh: number;
  kw: number;
  sh: number;
  sw: number;
  ph: number;
  pw: number;
}

/** BatchNorm eps of torchvision's BasicConv2d. */
export const INCEPTION_BN_EPS = 0.001;

/** Classifier of the FID Inception (1008 classes); not used for pool3 features, accepted and ignored. */
const FC_SHAPES: Record<string, number[]> = { 'fc.weight': [1008, 2048], 'fc.bias': [1008] };

function conv(name: string, cin: number, cout: number, k: number | [number, number], o: { s?: number; p?: number | [number, number] } = {}): InceptionConvSpec {
  const [kh, kw] = typeof k === 'number' ? [k, k] : k;
  const [ph, pw] = o.p === undefined ? [0, 0] : typeof o.p === 'number' ? [o.p, o.p] : o.p;
  return { name, cin, cout, kh, kw, sh: o.s ?? 1, sw: o.s ?? 1, ph, pw };
}

// The blocks, as torchvision's InceptionA..E define their convolutions (pytorch-fid changes only pooling).
function inceptionA(n: string, cin: number, poolFeatures: number): InceptionConvSpec[] {
  return [
    conv(`${n}.branch1x1`, cin, 64, 1),
    conv(`${n}.branch5x5_1`, cin, 48, 1),
    conv(`${n}.branch5x5_2`, 48, 64, 5, { p: 2 }),
    conv(`${n}.branch3x3dbl_1`, cin, 64, 1),
    conv(`${n}.branch3x3dbl_2`, 64, 96, 3, { p: 1 }),
    conv(`${n}.branch3x3dbl_3`, 96, 96, 3, { p: 1 }),
    conv(`${n}.branch_pool`, cin, poolFeatures, 1),
  ];
}

function inceptionB(n: string, cin: number): InceptionConvSpec[] {
  return [
    conv(`${n}.branch3x3`, cin, 384, 3, { s: 2 }),
    conv(`${n}.branch3x3dbl_1`, cin, 64, 1),
    conv(`${n}.branch3x3dbl_2`, 64, 96, 3, { p: 1 }),
    conv(`${n}.branch3x3dbl_3`, 96, 96, 3, { s: 2 }),
  ];
}

function inceptionC(n: string, cin: number, c7: number): InceptionConvSpec[] {
  return [
    conv(`${n}.branch1x1`, cin, 192, 1),
    conv(`${n}.branch7x7_1`, cin, c7, 1),
    conv(`${n}.branch7x7_2`, c7, c7, [1, 7], { p: [0, 3] }),
    conv(`${n}.branch7x7_3`, c7, 192, [7, 1], { p: [3, 0] }),
    conv(`${n}.branch7x7dbl_1`, cin, c7, 1),
    conv(`${n}.branch7x7dbl_2`, c7, c7, [7, 1], { p: [3, 0] }),
    conv(`${n}.branch7x7dbl_3`, c7, c7, [1, 7], { p: [0, 3] }),
    conv(`${n}.branch7x7dbl_4`, c7, c7, [7, 1], { p: [3, 0] }),
    conv(`${n}.branch7x7dbl_5`, c7, 192, [1, 7], { p: [0, 3] }),
    conv(`${n}.branch_pool`, cin, 192, 1),
  ];
}

function inceptionD(n: string, cin: number): InceptionConvSpec[] {
  return [
    conv(`${n}.branch3x3_1`, cin, 192, 1),
    conv(`${n}.branch3x3_2`, 192, 320, 3, { s: 2 }),
    conv(`${n}.branch7x7x3_1`, cin, 192, 1),
    conv(`${n}.branch7x7x3_2`, 192, 192, [1, 7], { p: [0, 3] }),
    conv(`${n}.branch7x7x3_3`, 192, 192, [7, 1], { p: [3, 0] }),
    conv(`${n}.branch7x7x3_4`, 192, 192, 3, { s: 2 }),
  ];
}

function inceptionE(n: string, cin: number): InceptionConvSpec[] {
  return [
    conv(`${n}.branch1x1`, cin, 320, 1),
    conv(`${n}.branch3x3_1`, cin, 384, 1),
    conv(`${n}.branch3x3_2a`, 384, 384, [1, 3], { p: [0, 1] }),
    conv(`${n}.branch3x3_2b`, 384, 384, [3, 1], { p: [1, 0] }),
    conv(`${n}.branch3x3dbl_1`, cin, 448, 1),
    conv(`${n}.branch3x3dbl_2`, 448, 384, 3, { p: 1 }),
    conv(`${n}.branch3x3dbl_3a`, 384, 384, [1, 3], { p: [0, 1] }),
    conv(`${n}.branch3x3dbl_3b`, 384, 384, [3, 1], { p: [1, 0] }),
    conv(`${n}.branch_pool`, cin, 192, 1),
  ];
}

/** Every BasicConv2d of the FID InceptionV3 up to pool3, in forward order (94 layers). */
export const INCEPTION_CONVS: readonly InceptionConvSpec[] = Object.freeze([
  conv('Conv2d_1a_3x3', 3, 32, 3, { s: 2 }),
  conv('Conv2d_2a_3x3', 32, 32, 3),
  conv('Conv2d_2b_3x3', 32, 64, 3, { p: 1 }),
  conv('Conv2d_3b_1x1', 64, 80, 1),
  conv('Conv2d_4a_3x3', 80, 192, 3),
  ...inceptionA('Mixed_5b', 192, 32),
  ...inceptionA('Mixed_5c', 256, 64),
  ...inceptionA('Mixed_5d', 288, 64),
  ...inceptionB('Mixed_6a', 288),
  ...inceptionC('Mixed_6b', 768, 128),
  ...inceptionC('Mixed_6c', 768, 160),
  ...inceptionC('Mixed_6d', 768, 160),
  ...inceptionC('Mixed_6e', 768, 192),
  ...inceptionD('Mixed_7a', 768),
  ...inceptionE('Mixed_7b', 1280),
  ...inceptionE('Mixed_7c', 2048),
]);

/** Every tensor a pytorch-fid state dict must hold, with its shape (fc and num_batches_tracked are optional). */
export function inceptionStateDictShapes(): Map<string, number[]> {
  const m = new Map<string, number[]>();
  for (const c of INCEPTION_CONVS) {
    m.set(`${c.name}.conv.weight`, [c.cout, c.cin, c.kh, c.kw]);
    for (const leaf of ['weight', 'bias', 'running_mean', 'running_var']) m.set(`${c.name}.bn.${leaf}`, [c.cout]);
  }
  return m;
}

/** A BasicConv2d with its BatchNorm folded in: y = relu(conv(x, weight) + bias). */
export interface FoldedConv {
  spec: InceptionConvSpec;
  /** [cout, cin, kh, kw] */
  weight: Float32Array;
  /** [cout] */
  bias: Float32Array;
}

/** The FID InceptionV3 weights, BatchNorm folded into the convolutions, ready to upload. */
export interface InceptionWeights {
  convs: Map<string, FoldedConv>;
}

// pytorch-fid's InceptionV3 wrapper module names its layers by position: blocks.<block>.<index>.
const WRAPPER_BLOCKS = [
  ['Conv2d_1a_3x3', 'Conv2d_2a_3x3', 'Conv2d_2b_3x3'],
  ['Conv2d_3b_1x1', 'Conv2d_4a_3x3'],
  ['Mixed_5b', 'Mixed_5c', 'Mixed_5d', 'Mixed_6a', 'Mixed_6b', 'Mixed_6c', 'Mixed_6d', 'Mixed_6e'],
  ['Mixed_7a', 'Mixed_7b', 'Mixed_7c'],
];

/** Map a key of pytorch-fid's InceptionV3 module ('blocks.2.0.branch1x1.conv.weight') to the Inception3 key. */
function canonicalKey(key: string): string {
  const m = /^(?:module\.)?blocks\.(\d+)\.(\d+)\.(.*)$/.exec(key);
  const name = m ? WRAPPER_BLOCKS[Number(m[1])]?.[Number(m[2])] : undefined;
  if (m && name) return `${name}.${m[3]}`;
  return key.startsWith('module.') ? key.slice(7) : key;
}

let expectedShapes: Map<string, number[]> | null = null;

/**
 * What loading does with a key of a weights file: 'read' (a tensor the network uses), 'ignored' (fc, the
 * classifier pool3 features do not use, and BatchNorm's num_batches_tracked: accepted, never decoded) or
 * 'unexpected' (reported; never decoded either).
 */
export function inceptionKeyUse(rawKey: string): 'read' | 'ignored' | 'unexpected' {
  expectedShapes ??= inceptionStateDictShapes();
  const key = canonicalKey(rawKey);
  if (expectedShapes.has(key)) return 'read';
  if (FC_SHAPES[key] || (key.endsWith('.bn.num_batches_tracked') && expectedShapes.has(key.replace(/num_batches_tracked$/, 'weight')))) return 'ignored';
  return 'unexpected';
}

/** The `keep` predicate for the checkpoint readers: only the tensors the Inception network uses. */
export const isInceptionWeightKey = (rawKey: string): boolean => inceptionKeyUse(rawKey) === 'read';

const sameShape = (a: readonly number[], b: readonly number[]) => a.length === b.length && a.every((d, i) => d === b[i]);

function listed(items: string[], max = 12): string {
  return items.length <= max ? items.join(', ') : `${items.slice(0, max).join(', ')}, ... (${items.length} in all)`;
}

/**
 * Check that `dict` is a pytorch-fid InceptionV3 state dict (keys of torchvision's Inception3 as in
 * pt_inception-2015-12-05-6726825d.pth, or of pytorch-fid's InceptionV3 module, 'blocks.N.M....') and
 * fold every BatchNorm into its convolution. Throws FileFormatError naming `fileName` and listing every
 * missing, unexpected and misshaped tensor. `unread`: keys of the file that the reader did not decode
 * (see {@link loadInceptionWeights}); those that are not 'ignored' are reported as unexpected.
 */
export function foldInceptionStateDict(dict: StateDict, fileName = 'InceptionV3 weights', unread: readonly string[] = []): InceptionWeights {
  const expected = inceptionStateDictShapes();
  const found = new Map<string, { shape: number[]; data: Float32Array }>();
  const unexpected: string[] = [];
  const misshaped: string[] = [];
  const misshapedKeys = new Set<string>();
  for (const [rawKey, entry] of dict) {
    const key = canonicalKey(rawKey);
    const want = expected.get(key) ?? FC_SHAPES[key];
    if (!want) {
      if (!key.endsWith('.bn.num_batches_tracked') || !expected.has(key.replace(/num_batches_tracked$/, 'weight'))) unexpected.push(rawKey);
      continue;
    }
    if (!sameShape(entry.shape, want)) {
      misshaped.push(`${rawKey} [${entry.shape.join(', ')}], expected [${want.join(', ')}]`);
      misshapedKeys.add(key);
    } else found.set(key, entry);
  }
  for (const k of unread) if (inceptionKeyUse(k) === 'unexpected') unexpected.push(k);
  const missing = [...expected.keys()].filter((k) => !found.has(k) && !misshapedKeys.has(k));
  if (missing.length || unexpected.length || misshaped.length) {
    const parts = [`not pytorch-fid's InceptionV3 state dict (${FID_WEIGHTS_FILE})`];
    if (missing.length) parts.push(`missing ${missing.length} tensors: ${listed(missing)}`);
    if (unexpected.length) parts.push(`unexpected ${unexpected.length} tensors: ${listed(unexpected)}`);
    if (misshaped.length) parts.push(`misshaped ${misshaped.length} tensors: ${listed(misshaped)}`);
    throw new FileFormatError(fileName, parts.join('; '));
  }
  const convs = new Map<string, FoldedConv>();
  for (const spec of INCEPTION_CONVS) {
    const get = (leaf: string) => found.get(`${spec.name}.${leaf}`)!.data;
    const folded = foldBatchNorm(get('conv.weight'), get('bn.weight'), get('bn.bias'), get('bn.running_mean'), get('bn.running_var'), INCEPTION_BN_EPS);
    if (!allFinite(folded.weight) || !allFinite(folded.bias)) throw new FileFormatError(fileName, `${spec.name}: non-finite weight after folding BatchNorm (running_var + eps <= 0, or NaN/Inf in the file)`);
    convs.set(spec.name, { spec, ...folded });
  }
  return { convs };
}

function allFinite(a: Float32Array): boolean {
  for (let i = 0; i < a.length; i++) if (!Number.isFinite(a[i])) return false;
  return true;
}

/**
 * Fold eval-mode BatchNorm into the preceding bias-free conv:
 *   w'[co] = w[co] * g[co] / sqrt(var[co] + eps),   b'[co] = beta[co] - mean[co] * g[co] / sqrt(var[co] + eps).
 * Why: BN after a conv is an affine map per output channel, so conv + BN is one conv with a bias, which
 * saves a kernel (and a pass over the activation) per layer, 94 in all. The identity is exact; it is
 * evaluated in float64 and rounded once to f32, so the folded network differs from PyTorch's
 * conv -> BN only by f32 rounding (~1e-7 relative per layer), not by any approximation.
 */
export function foldBatchNorm(
  w: ArrayLike<number>,
  gamma: ArrayLike<number>,
  beta: ArrayLike<number>,
  mean: ArrayLike<number>,
  variance: ArrayLike<number>,
  eps: number,
): { weight: Float32Array; bias: Float32Array } {
  const cout = gamma.length;
  const per = w.length / cout;
  const weight = new Float32Array(w.length);
  const bias = new Float32Array(cout);
  for (let co = 0; co < cout; co++) {
    const scale = gamma[co] / Math.sqrt(variance[co] + eps);
    for (let j = 0; j < per; j++) weight[co * per + j] = w[co * per + j] * scale;
    bias[co] = beta[co] - mean[co] * scale;
  }
  return { weight, bias };
}

/**
 * Load pytorch-fid's InceptionV3 weights from the bytes of `pt_inception-2015-12-05-6726825d.pth`
 * (torch zip or legacy format), of a safetensors file with the same state dict, or from a StateDict
 * already parsed. Validates keys and shapes, then folds BatchNorm into the convolutions. From bytes,
 * only the tensors the network uses are decoded (not the 8 MB classifier, not anything else a file holds).
 */
export async function loadInceptionWeights(source: Uint8Array | StateDict, fileName = FID_WEIGHTS_FILE): Promise<InceptionWeights> {
  if (source instanceof Map) return foldInceptionStateDict(source, fileName);
  const unread: string[] = [];
  const keep = (key: string) => isInceptionWeightKey(key) || (unread.push(key), false);
  // A torch-named file that is not safetensors-shaped goes to the .pth reader, whose error says what it is not.
  const pth = isPth(source) || (/\.(pth|pt|bin|ckpt|tar)$/i.test(fileName) && !(source.length >= 9 && source[8] === 0x7b));
  const dict = pth ? await loadPth(source, fileName, { keep }) : parseSafetensors(source, fileName, { keep });
  return foldInceptionStateDict(dict, fileName, unread);
}
