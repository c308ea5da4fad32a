import dropoutShader from '../../shaders/dropout.wgsl';
import randomShader from '../../shaders/random.wgsl';
import type { Dispatch, GpuContext } from '../runtime/context.js';
import type { Tensor } from '../runtime/tensor.js';
import { ShapeError } from '../runtime/errors.js';

const shader = `${randomShader}\n${dropoutShader}`;
const WG = 256;

/** Per-dispatch values needed to rewrite the uniforms with a new seed (setUniforms needs the full set). */
const dropoutUniforms = new WeakMap<Dispatch, { n: number; accumulate: number; p: number }>();

function checkP(op: string, p: number): void {
  if (!(p >= 0 && p < 1)) throw new ShapeError(op, 'p', 'a probability in [0, 1)', p);
}

/** Seeds are u32 uniforms; anything else would be silently truncated into another mask. */
function checkSeed(op: string, seed: number): void {
  if (!Number.isInteger(seed) || seed < 0 || seed > 0xffffffff) throw new ShapeError(op, 'seed', 'an integer in [0, 2^32)', seed);
}

/**
 * y = x * mask / (1 - p) with mask[i] = (hashUniform(seed, i) >= p): torch's Dropout in training mode,
 * reproducible from the seed. Change the seed per step with {@link setDropoutSeed}.
 */
export function dropoutForward(ctx: GpuContext, y: Tensor, x: Tensor, o: { p: number; seed: number }): Dispatch[] {
  const op = 'dropout.forward';
  checkP(op, o.p);
  checkSeed(op, o.seed);
  ctx.checkTensor(x, op, undefined, 'x');
  ctx.checkTensor(y, op, x.shape, 'y');
  const d = ctx.kernel({
    op,
    shader,
    entryPoint: 'forward',
    constants: { WG },
    u32: [x.size, o.seed, 0],
    f32: [o.p, 1 / (1 - o.p)],
    bindings: [
      { tensor: y, access: 'rw' },
      { tensor: x, access: 'read' },
    ],
    workgroups: ctx.grid(x.size, WG),
  });
  dropoutUniforms.set(d, { n: x.size, accumulate: 0, p: o.p });
  return [d];
}

/** dx (+)= dy * mask / (1 - p), the mask regenerated from the same seed as forward. */
export function dropoutBackward(ctx: GpuContext, dx: Tensor, dy: Tensor, o: { p: number; seed: number; accumulate?: boolean }): Dispatch[] {
  const op = 'dropout.backward';
  checkP(op, o.p);
  checkSeed(op, o.seed);
  ctx.checkTensor(dy, op, undefined, 'dy');
  ctx.checkTensor(dx, op, dy.shape, 'dx');
  if (dx === dy) throw new ShapeError(op, 'dx aliasing dy', 'distinct tensors', 'the same tensor');
  const accumulate = o.accumulate ? 1 : 0;
  const d = ctx.kernel({
    op,
    shader,
    entryPoint: 'backward',
    constants: { WG },
    u32: [dy.size, o.seed, accumulate],
    f32: [o.p, 1 / (1 - o.p)],
    bindings: [
      { tensor: dx, access: 'rw' },
      { tensor: dy, access: 'read' },
    ],
    workgroups: ctx.grid(dy.size, WG),
  });
  dropoutUniforms.set(d, { n: dy.size, accumulate, p: o.p });
  return [d];
}

/** New mask seed for recorded dropout dispatches (forward and backward of one layer share it). No allocation. */
export function setDropoutSeed(dispatches: readonly Dispatch[], seed: number): void {
  checkSeed('setDropoutSeed', seed);
  for (const d of dispatches) {
    const u = dropoutUniforms.get(d);
    if (!u) throw new ShapeError('setDropoutSeed', `dispatch '${d.op}'`, 'a dropout dispatch', d.op);
    d.setUniforms([u.n, seed, u.accumulate], [u.p, 1 / (1 - u.p)]);
  }
}
