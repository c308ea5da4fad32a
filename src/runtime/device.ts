import { GpuContext, type ContextOptions } from './context.js';
import { NoAdapterError } from './errors.js';

const NODE_OS = 'node:os';
const isNode = typeof process !== 'undefined' && !!process.versions?.node;

const NODE_HOWTO =
  'No WebGPU adapter found. In Node this library uses Dawn (the `webgpu` npm package) over Vulkan: ' +
  'install a Vulkan driver (Debian/Ubuntu: `apt-get install mesa-vulkan-drivers`; on Debian 12 take it from bookworm-backports, ' +
  'or run `bash scripts/install-vulkan.sh` from this repository) or set VK_ICD_FILENAMES to a Vulkan ICD json ' +
  '(e.g. /usr/lib/chromium/vk_swiftshader_icd.json).';
const BROWSER_HOWTO =
  'No WebGPU adapter found: this browser has no navigator.gpu or refused an adapter. Use a browser with WebGPU enabled ' +
  '(Chrome/Edge 113+, or --enable-unsafe-webgpu), on a secure context (https or http://localhost).';

// Limits worth raising to the adapter's own values: big activations (512x1024 maps) need large bindings.
const WANTED_LIMITS = [
  'maxStorageBufferBindingSize',
  'maxBufferSize',
  'maxStorageBuffersPerShaderStage',
  'maxComputeWorkgroupStorageSize',
  'maxComputeInvocationsPerWorkgroup',
  'maxComputeWorkgroupSizeX',
  'maxComputeWorkgroupSizeY',
  'maxComputeWorkgroupsPerDimension',
] as const;
const OPTIONAL_FEATURES = ['timestamp-query', 'subgroups', 'shader-f16'] as const;

/** Find a GPU object: the caller's, the browser's, or Dawn's in Node. */
async function findGpu(opts: ContextOptions): Promise<{ gpu: GPU | undefined; keepAlive?: unknown }> {
  if (opts.gpu) return { gpu: opts.gpu };
  const nav = (globalThis as { navigator?: { gpu?: GPU } }).navigator;
  if (nav?.gpu) return { gpu: nav.gpu };
  if (!isNode) return { gpu: undefined };
  // The specifier is a variable so browser bundlers do not try to resolve the Node-only package.
  const spec = 'webgpu';
  let mod: { create: (flags: string[]) => GPU };
  try {
    mod = (await import(/* @vite-ignore */ spec)) as typeof mod;
  } catch (e) {
    throw new NoAdapterError(`the \`webgpu\` npm package (Dawn for Node) could not be loaded (${String(e)}); run \`npm install webgpu\`.`);
  }
  const gpu = mod.create(opts.dawnFlags ?? []);
  return { gpu, keepAlive: gpu };
}

/**
 * Acquire a WebGPU device (browser: navigator.gpu; Node: Dawn via the `webgpu` package) with the adapter's own
 * buffer limits, or wrap a device the caller already has (`{ device }`, which is then not destroyed by us).
 */
export async function createContext(opts: ContextOptions = {}): Promise<GpuContext> {
  if (opts.device) return new GpuContext(opts.device, false);
  if (isNode && !process.env.XDG_RUNTIME_DIR) {
    // The Vulkan loader warns on every start without it; any writable folder will do.
    process.env.XDG_RUNTIME_DIR = (await import(/* @vite-ignore */ NODE_OS)).tmpdir();
  }
  const { gpu, keepAlive } = await findGpu(opts);
  const adapter = await gpu?.requestAdapter({ powerPreference: opts.powerPreference ?? 'high-performance' });
  if (!adapter) throw new NoAdapterError(isNode ? NODE_HOWTO : BROWSER_HOWTO);
  const requiredLimits: Record<string, number> = {};
  for (const name of WANTED_LIMITS) {
    const v = (adapter.limits as unknown as Record<string, number>)[name];
    if (typeof v === 'number') requiredLimits[name] = v;
  }
  const requiredFeatures = OPTIONAL_FEATURES.filter((f) => adapter.features.has(f)) as GPUFeatureName[];
  const device = await adapter.requestDevice({ label: 'pix2pix-webgpu', requiredLimits, requiredFeatures });
  return new GpuContext(device, true, keepAlive);
}
