import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readAdapterInfo, type GpuContext } from '../../src/runtime/context.js';
import { createContext } from '../../src/runtime/device.js';

describe('ctx.adapterInfo', () => {
  let ctx: GpuContext;
  beforeAll(async () => {
    ctx = await createContext();
  });
  afterAll(() => ctx.destroy());

  it('carries what the device reports, typed', () => {
    const raw = ctx.device.adapterInfo;
    expect(ctx.adapterInfo).toMatchObject({
      vendor: raw.vendor,
      architecture: raw.architecture,
      device: raw.device,
      description: raw.description,
      isFallbackAdapter: raw.isFallbackAdapter,
    });
    expect(ctx.adapterInfo.subgroupMinSize).toBe(raw.subgroupMinSize);
    expect(ctx.adapterInfo.subgroupMaxSize).toBe(raw.subgroupMaxSize);
    // Dawn on lavapipe describes itself; an empty identity would make logs and tuning caches anonymous.
    expect(ctx.adapterInfo.vendor + ctx.adapterInfo.description).not.toBe('');
  });

  it('a device without adapterInfo (older browsers) gives empty fields, not a crash', () => {
    expect(readAdapterInfo({} as GPUDevice)).toEqual({ vendor: '', architecture: '', device: '', description: '', isFallbackAdapter: false });
  });
});
