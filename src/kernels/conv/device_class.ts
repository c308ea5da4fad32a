// Who the adapter is: its identity (the tuning cache's key) and its class (which static defaults apply).
import type { GpuContext } from '../../runtime/context.js';

/** The adapter's self-description (GPUAdapterInfo fields; empty strings where the implementation gives none). */
export interface AdapterIdentity {
  vendor: string;
  architecture: string;
  device: string;
  description: string;
}

/**
 * swiftshader: Google's SwiftShader (Chrome's software WebGPU, and Dawn over its Vulkan ICD); software: every
 * other CPU implementation of the API (Mesa lavapipe/llvmpipe, WARP, or an adapter that says it is a
 * fallback); integrated: a GPU sharing memory with the CPU (Intel, Apple, and adapters describing themselves
 * as integrated); discrete: every other GPU. SwiftShader has a class of its own because the variants rank
 * differently there (4-lane subgroups, so the subgroup kernels never run; each workgroup one task on one CPU
 * thread): lavapipe's static rule made its step 35% slower than its own (median of 9 alternated rounds in
 * Chromium; bench/RESULTS.md, 2026-11-30 afternoon, SwiftShader).
 */
export type DeviceClass = 'software' | 'swiftshader' | 'integrated' | 'discrete';

/** Whether the class is a CPU implementation (lavapipe, SwiftShader, WARP, ...). */
export function isSoftwareClass(c: DeviceClass): boolean {
  return c === 'software' || c === 'swiftshader';
}

/** The fields of the adapter's info the class rule reads (AdapterInfo, or a literal in tests). */
interface InfoLike {
  vendor?: string;
  architecture?: string;
  device?: string;
  description?: string;
  isFallbackAdapter?: boolean;
}

/** The adapter's identity, from the context's adapter info. */
export function adapterIdentity(ctx: GpuContext): AdapterIdentity {
  const { vendor, architecture, device, description } = ctx.adapterInfo;
  return { vendor, architecture, device, description };
}

/** One line naming the adapter, for cache keys and logs. */
export function adapterKey(id: AdapterIdentity): string {
  return [id.vendor, id.architecture, id.device, id.description].map((s) => s.replace(/\|/g, '/')).join('|');
}

const SWIFTSHADER = /swiftshader/i;
const SOFTWARE = /llvmpipe|lavapipe|swiftshader|software|microsoft basic render|warp/i;
const INTEGRATED = /integrated|intel|apple|^arm$|mali|adreno|qualcomm|powervr/i;

/** The rule documented at {@link DeviceClass}, applied to the adapter's fields. */
export function classifyAdapter(i: InfoLike): DeviceClass {
  const text = [i.vendor, i.architecture, i.device, i.description].filter(Boolean).join(' ');
  if (SWIFTSHADER.test(text)) return 'swiftshader';
  if (i.isFallbackAdapter || SOFTWARE.test(text)) return 'software';
  if (INTEGRATED.test(text)) return 'integrated';
  return 'discrete';
}

export function deviceClass(ctx: GpuContext): DeviceClass {
  return classifyAdapter(ctx.adapterInfo);
}
