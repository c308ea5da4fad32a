/**
 * Start TF.js's webgpu backend on the same adapter the library uses. In Node, TF.js looks for
 * navigator.gpu, so we expose Dawn's GPU object there (and the WebGPU enum globals it reads).
 */
import type * as tfType from '@tensorflow/tfjs-core';

export async function setupTfjsWebgpu(): Promise<typeof tfType> {
  const g = globalThis as unknown as { navigator?: { gpu?: unknown } };
  if (!g.navigator?.gpu && typeof process !== 'undefined' && process.versions?.node) {
    const spec = 'webgpu';
    const dawn = (await import(/* @vite-ignore */ spec)) as { create: (f: string[]) => unknown; globals: Record<string, unknown> };
    Object.assign(globalThis, dawn.globals);
    const gpu = dawn.create([]);
    Object.defineProperty(globalThis, 'navigator', { value: { ...(g.navigator ?? {}), gpu }, configurable: true, writable: true });
  }
  const tf = await import('@tensorflow/tfjs-core');
  // tfjs-core alone ships no gradients: register them, as the `@tensorflow/tfjs` bundle does.
  await import('@tensorflow/tfjs-core/dist/register_all_gradients.js');
  await import('@tensorflow/tfjs-backend-webgpu');
  const ok = await tf.setBackend('webgpu');
  if (!ok) throw new Error('TF.js webgpu backend failed to initialise on this adapter');
  await tf.ready();
  return tf;
}
