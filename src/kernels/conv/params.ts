import { Pix2PixError } from '../../runtime/errors.js';

/**
 * The one declaration of the conv shaders' uniform struct (binding 0 of every conv kernel). Both the WGSL
 * `struct ConvParams` injected at each shader's `//@CONV_PARAMS` line and the TypeScript packing
 * ({@link packConvParams}) come from this list, so the two cannot disagree on names or order.
 * Each field has one meaning; a kernel that does not use a field is sent 0.
 */
export const CONV_PARAM_FIELDS = [
  ['batch', 'batch size N'],
  ['M', 'channels of dst (weight gradient: of grad, the rows of dw)'],
  ['C', 'channels of src (reduced over)'],
  ['inH', 'src spatial size'],
  ['inW', ''],
  ['outH', 'dst spatial size (weight gradient: grad\'s)'],
  ['outW', ''],
  ['KH', 'kernel size (the blocked and taps kernels use their pipeline constants instead)'],
  ['KW', ''],
  ['sh', 'stride'],
  ['sw', ''],
  ['ph', 'zero padding'],
  ['pw', ''],
  ['hasBias', 'gathers: add bias[m]; blocked/taps weight gradient: also write the bias gradient column'],
  ['accumulate', '1: add into dst, 0: overwrite'],
  ['chunk', 'tiled weight gradient: reduction steps per split (a multiple of TILE_K)'],
  ['splits', 'tiled weight gradient: number of split-K partials (1: write dst directly)'],
  ['rowsPerSplit', 'blocked/taps weight gradient: grad rows (n, oh) per split'],
] as const;

export type ConvParamName = (typeof CONV_PARAM_FIELDS)[number][0];
export type ConvParams = Record<ConvParamName, number>;

/** Sizes of one gather-style convolution, in the shaders' terms: dst has M channels, src has C. */
export interface ConvGeometry {
  batch: number;
  M: number;
  C: number;
  inH: number;
  inW: number;
  outH: number;
  outW: number;
  KH: number;
  KW: number;
  sh: number;
  sw: number;
  ph: number;
  pw: number;
}

/** The WGSL text of the struct, generated from {@link CONV_PARAM_FIELDS}. */
export const CONV_PARAMS_WGSL = [
  '// Generated from src/kernels/conv/params.ts (CONV_PARAM_FIELDS): edit the fields there, not here.',
  'struct ConvParams {',
  ...CONV_PARAM_FIELDS.map(([name, doc]) => `  ${name}: u32,${doc ? `  // ${doc}` : ''}`),
  '}',
].join('\n');

/** The uniform values in struct order: the geometry plus the per-kernel fields (absent ones are 0). */
export function packConvParams(g: ConvGeometry, extra: Partial<Pick<ConvParams, 'hasBias' | 'accumulate' | 'chunk' | 'splits' | 'rowsPerSplit'>>): number[] {
  const all: ConvParams = { hasBias: 0, accumulate: 0, chunk: 0, splits: 0, rowsPerSplit: 0, ...g, ...extra };
  return CONV_PARAM_FIELDS.map(([name]) => all[name]);
}

/** Replace a shader's `//@CONV_PARAMS` line (exactly one) with the generated struct. */
export function withConvParams(shader: string, name: string): string {
  const parts = shader.split('\n//@CONV_PARAMS\n');
  if (parts.length !== 2) throw new Pix2PixError('conv shader template', `${name} must have exactly one //@CONV_PARAMS line`);
  return `${parts[0]}\n${CONV_PARAMS_WGSL}\n${parts[1]}`;
}
