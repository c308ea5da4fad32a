// One real Dawn device per test file. No adapter is a failure, never a skip: CI must prove the kernels.
import { createContext } from '../../src/runtime/device.js';
import { destroyDispatches, type Dispatch, type GpuContext } from '../../src/runtime/context.js';
import type { Tensor } from '../../src/runtime/tensor.js';

let ctxPromise: Promise<GpuContext> | null = null;

export function testContext(): Promise<GpuContext> {
  ctxPromise ??= createContext();
  return ctxPromise;
}

/** Run a kernel's dispatches, free them, and read the output tensor back. */
export async function runAndRead(ctx: GpuContext, d: Dispatch[], t: Tensor): Promise<Float32Array> {
  await ctx.run(d);
  destroyDispatches(d);
  return t.read();
}
