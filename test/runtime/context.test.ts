// The runtime's error plumbing: every failure is a typed error naming the op, with expected vs actual.
import { describe, it, expect } from 'vitest';
import { createContext } from '../../src/runtime/device.js';
import { DeviceLimitError, DeviceLostError, GpuValidationError, NoAdapterError, ShapeError } from '../../src/runtime/errors.js';
import { activationForward } from '../../src/kernels/activation.js';
import { testContext } from '../helpers/gpu.js';

describe('GpuContext', async () => {
  const ctx = await testContext();

  it('requests the adapter limits, not the defaults', () => {
    // The WebGPU default is 128 MiB; lavapipe/H100 adapters report more or equal.
    expect(ctx.limits.maxStorageBufferBindingSize).toBeGreaterThanOrEqual(128 * 2 ** 20);
    expect(ctx.limits.maxBufferSize).toBeGreaterThanOrEqual(ctx.limits.maxStorageBufferBindingSize);
  });

  it('round-trips data and reuses pooled buffers', async () => {
    const before = ctx.stats.buffersCreated;
    const t = ctx.tensor([3, 5], Float32Array.from({ length: 15 }, (_, i) => i - 7), 'rt');
    expect(Array.from(await t.read())).toEqual(Array.from({ length: 15 }, (_, i) => i - 7));
    t.destroy();
    const u = ctx.tensor([5, 3], undefined, 'rt2'); // same byte size → the pooled buffer
    expect(ctx.stats.buffersCreated).toBe(before + 1);
    u.destroy();
  });

  it('zeros() really zeroes a reused buffer', async () => {
    const t = ctx.tensor([64], new Float32Array(64).fill(3));
    t.destroy();
    const z = ctx.zeros([64]);
    expect(Array.from(await z.read()).every((v) => v === 0)).toBe(true);
    z.destroy();
  });

  it('rejects a write of the wrong length, naming the tensor', () => {
    const t = ctx.tensor([2, 2], undefined, 'small');
    expect(() => t.write([1, 2, 3])).toThrow(ShapeError);
    expect(() => t.write([1, 2, 3])).toThrow(/small\.write: data length: expected 4, got 3/);
    t.destroy();
  });

  it('rejects tensors beyond the device limit before touching WebGPU', () => {
    const huge = ctx.limits.maxStorageBufferBindingSize / 4 + 1024;
    expect(() => ctx.tensor([huge], undefined, 'huge')).toThrow(DeviceLimitError);
    expect(() => ctx.tensor([huge], undefined, 'huge')).toThrow(/huge: storage buffer bytes is \d+, beyond this device's limit of \d+/);
  });

  it('rejects a reshape to another element count', () => {
    const t = ctx.tensor([2, 6]);
    expect(() => t.reshape([5, 2])).toThrow(/reshape: element count: expected 12, got 10/);
    t.destroy();
  });

  it('reports a WGSL compile error as GpuValidationError naming the op', async () => {
    const x = ctx.tensor([4]);
    const d = ctx.kernel({ op: 'broken.op', shader: '@compute @workgroup_size(1) fn main() { let x: u32 = 1.5; }', bindings: [{ tensor: x, access: 'rw' }], workgroups: [1] });
    await expect(ctx.run([d])).rejects.toThrow(GpuValidationError);
    x.destroy();
  });
});

describe('tensors across contexts and device loss', () => {
  it('rejects a tensor of another device, naming the op', async () => {
    const a = await createContext();
    const b = await createContext();
    const x = a.tensor([2, 2], undefined, 'fromA');
    const y = b.tensor([2, 2], undefined, 'inB');
    expect(() => activationForward(b, y, x, 'relu')).toThrow(/relu\.forward: x 'fromA' belongs to another device\/context/);
    a.destroy();
    b.destroy();
  });

  it('turns device loss into DeviceLostError naming the op', async () => {
    const c = await createContext();
    const x = c.tensor([8], undefined, 'x');
    const y = c.tensor([8], undefined, 'y');
    c.device.destroy();
    await new Promise((r) => setTimeout(r, 50));
    await c.device.lost;
    expect(c.isLost).toBe(true);
    expect(() => activationForward(c, y, x, 'tanh')).toThrow(DeviceLostError);
    expect(() => activationForward(c, y, x, 'tanh')).toThrow(/tanh\.forward: GPU device lost/);
  });

  it('explains how to get an adapter when there is none', async () => {
    const noAdapter = { requestAdapter: async () => null } as unknown as GPU;
    await expect(createContext({ gpu: noAdapter })).rejects.toThrow(NoAdapterError);
    await expect(createContext({ gpu: noAdapter })).rejects.toThrow(/mesa-vulkan-drivers.*VK_ICD_FILENAMES/);
  });

  it('wraps a device the caller already has without taking ownership', async () => {
    const owner = await createContext();
    const borrowed = await createContext({ device: owner.device });
    borrowed.destroy();
    const t = owner.tensor([2], [1, 2]);
    expect(Array.from(await t.read())).toEqual([1, 2]);
    owner.destroy();
  });
});
