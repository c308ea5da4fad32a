// The conv family's WGSL, loaded once and preprocessed: every shader gets the generated ConvParams struct at
// its //@CONV_PARAMS line (params.ts), the three tiled shaders their tile sizes at //@TILED_CONSTANTS, and the subgroup gather template gets conv_blocked.wgsl's shared
// declarations at its //@DECLARATIONS line. The generated inner steps are filled per launch (blocked.ts, taps.ts).
import gatherText from '../../../shaders/conv2d.wgsl';
import transposedText from '../../../shaders/conv_transpose2d.wgsl';
import weightGradText from '../../../shaders/conv2d_weight_grad.wgsl';
import reduceText from '../../../shaders/conv2d_reduce.wgsl';
import blockedText from '../../../shaders/conv_blocked.wgsl';
import tapsText from '../../../shaders/conv_weight_grad_taps.wgsl';
import tapsSgText from '../../../shaders/conv_weight_grad_taps_sg.wgsl';
import blockedSgText from '../../../shaders/conv_blocked_sg.wgsl';
import { Pix2PixError } from '../../runtime/errors.js';
import { withConvParams } from './params.js';
import { TILE } from './common.js';

/** Fill a template's marker lines (`//@NAME` alone on a line, exactly once each) with generated code. */
export function fillTemplate(template: string, fills: Record<string, string>): string {
  let out = template;
  for (const [name, code] of Object.entries(fills)) {
    const parts = out.split(`\n//@${name}\n`);
    if (parts.length !== 2) throw new Pix2PixError('conv shader template', `expected exactly one //@${name} line`);
    out = `${parts[0]}\n${code}\n${parts[1]}`;
  }
  return out;
}

/** The lines between `//@SHARED_BEGIN...` and `//@SHARED_END` of a shader (declarations a variant reuses). */
function sharedLines(shader: string, name: string): string {
  const begin = shader.indexOf('\n//@SHARED_BEGIN');
  const end = shader.indexOf('\n//@SHARED_END\n');
  if (begin < 0 || end < begin) throw new Pix2PixError('conv shader template', `${name} has no //@SHARED_BEGIN ... //@SHARED_END block`);
  return shader.slice(shader.indexOf('\n', begin + 1) + 1, end);
}

/**
 * The tile sizes of the three tiled shaders (gather, transposed gather, weight gradient), placed at their
 * //@TILED_CONSTANTS line. Every size derives from the TILE line, which tiled.ts withTile rewrites for 32 or 16.
 */
const TILED_CONSTANTS_WGSL = `const TILE = ${TILE}u;    // rows and columns of the dst tile; tiled.ts replaces this line for 32 or 16 (more, smaller workgroups)
const TILE_K = 16u;  // reduction depth staged per step
const VEC = TILE / 4u;  // vec4s per row of a staged slice, and threads per side of the workgroup (4x4 outputs each)
// Rows of A (k fastest) and of B (column fastest) that the workgroup's VEC * VEC threads stage in one pass.
const A_STEP = VEC * VEC / TILE_K;
const B_STEP = VEC * VEC / TILE;
// tileA is filled by threads that walk k fastest (coalesced global reads); without the padding the 16
// threads writing one m would hit one memory bank (stride 64 floats), with it they spread over 8 banks.
const ROW_A = VEC + 1u;`;
const tiledShader = (text: string, name: string) => fillTemplate(withConvParams(text, name), { TILED_CONSTANTS: TILED_CONSTANTS_WGSL });

export const gatherShader = tiledShader(gatherText, 'conv2d.wgsl');
export const transposedShader = tiledShader(transposedText, 'conv_transpose2d.wgsl');
export const weightGradShader = tiledShader(weightGradText, 'conv2d_weight_grad.wgsl');
/** bias_grad and sum_splits have their own small uniform struct (not ConvParams). */
export const reduceShader = reduceText;
export const blockedShader = withConvParams(blockedText, 'conv_blocked.wgsl');
export const tapsShader = withConvParams(tapsText, 'conv_weight_grad_taps.wgsl');
export const tapsSgTemplate = withConvParams(tapsSgText, 'conv_weight_grad_taps_sg.wgsl');
/** conv_blocked.wgsl's declarations (ConvParams included), which its subgroup variant shares, so the two cannot drift apart. */
export const blockedSgTemplate = fillTemplate(blockedSgText, { DECLARATIONS: sharedLines(blockedShader, 'conv_blocked.wgsl') });
