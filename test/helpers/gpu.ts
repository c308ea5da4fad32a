// One real Dawn device per test file. No adapter is a failure, never a skip: CI must prove the kernels.
import { createContext } from '../../src/runtime/device.js';
import { destroyDispatches, type Dispatch, type GpuContext } from '../../src/runtime/context.js';
import type { Tensor } from '../../src/runtime/tensor.js';

let ctxPromise: Promise<GpuContext> | null = null;

export function testContext(): Promise<GpuContext> {
  ctxPromise ??= createContext();
  return ctxPromise;
}

// Dawn instances made here, held for the whole process: webgpu's `create()` object owns the native instance,
// and once it is garbage-collected a device made from it that is still in use aborts the process (a lock on a
// freed mutex: `std::system_error: Invalid argument`, or glibc's `___pthread_mutex_lock: Assertion
// 'mutex->__data.__owner == 0' failed`, which killed vitest fork workers in CI). createContext() holds its own.
const heldInstances: GPU[] = [];

/**
 * A raw Dawn device outside createContext() (e.g. without the features it would enable), from a Dawn instance
 * held until the process exits. Tests must get raw devices here, never from webgpu's `create()` directly
 * (test/runtime/dawn_lifetime.test.ts checks). The caller destroys the device.
 */
export async function rawDawnDevice(descriptor: GPUDeviceDescriptor = {}): Promise<GPUDevice> {
  const { create } = (await import('webgpu')) as { create: (flags: string[]) => GPU };
  const gpu = create([]);
  heldInstances.push(gpu);
  const adapter = await gpu.requestAdapter();
  if (!adapter) throw new Error('no Dawn adapter');
  return adapter.requestDevice(descriptor);
}

/** Run a kernel's dispatches, free them, and read the output tensor back. */
export async function runAndRead(ctx: GpuContext, d: Dispatch[], t: Tensor): Promise<Float32Array> {
  await ctx.run(d);
  destroyDispatches(d);
  return t.read();
}
