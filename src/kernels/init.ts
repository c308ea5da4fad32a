import initShader from '../../shaders/init.wgsl';
import randomShader from '../../shaders/random.wgsl';
import type { Dispatch, GpuContext } from '../runtime/context.js';
import type { Tensor } from '../runtime/tensor.js';
import { ShapeError } from '../runtime/errors.js';

const shader = `${randomShader}\n${initShader}`;
const WG = 256;

/** t[i] = mean + std * hashNormal(seed, i): seeded N(mean, std²) initialisation (the reference's init_weights uses N(0, 0.02)). */
export function initNormal(ctx: GpuContext, t: Tensor, o: { mean?: number; std: number; seed: number }): Dispatch[] {
  const op = 'init.normal';
  ctx.checkTensor(t, op, undefined, 't');
  if (!(o.std >= 0) || !Number.isFinite(o.std)) throw new ShapeError(op, 'std', 'a finite value >= 0', o.std);
  if (!Number.isFinite(o.mean ?? 0)) throw new ShapeError(op, 'mean', 'a finite value', o.mean);
  // A u32 uniform: anything else would be silently truncated into another seed's draws.
  if (!Number.isInteger(o.seed) || o.seed < 0 || o.seed > 0xffffffff) throw new ShapeError(op, 'seed', 'an integer in [0, 2^32)', o.seed);
  return [
    ctx.kernel({
      op,
      shader,
      entryPoint: 'normal',
      constants: { WG },
      u32: [t.size, o.seed],
      f32: [o.mean ?? 0, o.std],
      bindings: [{ tensor: t, access: 'rw' }],
      workgroups: ctx.grid(t.size, WG),
    }),
  ];
}

/** t[i] = value (biases 0, BatchNorm running variance 1). */
export function initConstant(ctx: GpuContext, t: Tensor, value: number): Dispatch[] {
  const op = 'init.constant';
  ctx.checkTensor(t, op, undefined, 't');
  if (Number.isNaN(value)) throw new ShapeError(op, 'value', 'a number', value);
  return [
    ctx.kernel({
      op,
      shader,
      entryPoint: 'constant',
      constants: { WG },
      u32: [t.size, 0],
      f32: [value, 0],
      bindings: [{ tensor: t, access: 'rw' }],
      workgroups: ctx.grid(t.size, WG),
    }),
  ];
}
