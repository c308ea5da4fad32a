// One real Dawn device per test file. No adapter is a failure, never a skip: CI must prove the kernels.
import { createContext } from '../../src/runtime/device.js';
import type { GpuContext } from '../../src/runtime/context.js';

let ctxPromise: Promise<GpuContext> | null = null;

export function testContext(): Promise<GpuContext> {
  ctxPromise ??= createContext();
  return ctxPromise;
}
