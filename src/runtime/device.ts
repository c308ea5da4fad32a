import { GpuContext, type ContextOptions } from './context.js';
import { NoAdapterError } from './errors.js';
import { importOptional } from './optional_deps.js';

// Node built-ins are imported lazily through variables (plus bundler-ignore hints) so this browser-safe
// file never makes a bundler resolve them.
const NODE_OS = 'node:os';
const NODE_FS = 'node:fs';
const NODE_PATH = 'node:path';
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
  // An optional peer dependency: a missing one is a MissingDependencyError naming the install command.
  const mod = await importOptional<{ create: (flags: string[]) => GPU }>('createContext', 'webgpu');
  const flags = opts.dawnFlags ?? [];
  const key = JSON.stringify(flags);
  let gpu = dawnInstances.get(key);
  if (!gpu) {
    gpu = mod.create(flags);
    dawnInstances.set(key, gpu);
  }
  return { gpu, keepAlive: gpu };
}

// One Dawn instance per set of flags for the whole process: Dawn enumerates adapters (printing its limit
// warnings, see requestDawnAdapter) once per instance, so later contexts cost nothing and print nothing.
const dawnInstances = new Map<string, GPU>();

/** The two lines Dawn prints when it clamps a driver's dynamic-buffer limits to its own (harmless). */
const DAWN_LIMIT_WARNING =
  /^Warning: maxDynamic(?:Uniform|Storage)BuffersPerPipelineLayout artificially reduced from \d+ to \d+ to fit dynamic offset allocation limit\.\r?\n?/gm;

interface NodeFs {
  openSync(path: string, flags: string): number;
  closeSync(fd: number): void;
  readFileSync(path: string, encoding: 'utf8'): string;
  writeSync(fd: number, text: string): number;
  unlinkSync(path: string): void;
}

/**
 * Request Dawn's adapter without Dawn's limit warnings. Dawn enumerates adapters synchronously inside the
 * first requestAdapter() of an instance, and with Vulkan drivers that report huge dynamic-buffer limits
 * (lavapipe, NVIDIA) it prints {@link DAWN_LIMIT_WARNING} twice from native code straight to fd 2, out of
 * JavaScript's reach. So on Linux, for that one synchronous call, fd 2 is pointed at a temporary file
 * (close 2, then open: POSIX hands out the lowest free descriptor), the real stderr is put back the same
 * way (reopened through /proc/self/fd, in append mode so a redirected log file is not overwritten), and
 * everything else that was printed (Vulkan loader errors, say) is written through. Where a step is not
 * possible the call runs unfiltered: on other OSes, and when stderr is a socket (a Node parent's
 * `stdio: 'pipe'`), which cannot be reopened; there the two lines appear once per process.
 */
async function requestDawnAdapter(gpu: GPU, options: GPURequestAdapterOptions): Promise<GPUAdapter | null> {
  if (process.platform !== 'linux') return gpu.requestAdapter(options);
  const fs = (await import(/* webpackIgnore: true */ /* @vite-ignore */ NODE_FS)) as NodeFs;
  const { tmpdir } = (await import(/* webpackIgnore: true */ /* @vite-ignore */ NODE_OS)) as { tmpdir(): string };
  const { join } = (await import(/* webpackIgnore: true */ /* @vite-ignore */ NODE_PATH)) as { join(...p: string[]): string };
  let saved: number;
  try {
    saved = fs.openSync('/proc/self/fd/2', 'a');
  } catch {
    return gpu.requestAdapter(options);
  }
  const capturePath = join(tmpdir(), `pix2pix-webgpu-dawn-${process.pid}-${Date.now()}.log`);
  let pending: Promise<GPUAdapter | null>;
  let captured = false;
  try {
    fs.closeSync(2);
    try {
      const fd = fs.openSync(capturePath, 'w');
      captured = fd === 2;
      // Another thread took descriptor 2 between the close and the open: leave it, run unfiltered.
      if (!captured) fs.closeSync(fd);
    } catch {
      // No writable temp folder: run unfiltered.
    }
    pending = gpu.requestAdapter(options);
  } finally {
    if (captured) fs.closeSync(2);
    fs.openSync(`/proc/self/fd/${saved}`, 'a'); // lands on 2 again
    fs.closeSync(saved);
  }
  if (captured) {
    let text = '';
    try {
      text = fs.readFileSync(capturePath, 'utf8');
      fs.unlinkSync(capturePath);
    } catch {
      // Nothing to pass on.
    }
    const rest = text.replace(DAWN_LIMIT_WARNING, '');
    if (rest) fs.writeSync(2, rest);
  }
  return pending;
}

/**
 * Acquire a WebGPU device (browser: navigator.gpu; Node: Dawn via the `webgpu` package) with the adapter's own
 * buffer limits, or wrap a device the caller already has (`{ device }`, which is then not destroyed by us).
 */
export async function createContext(opts: ContextOptions = {}): Promise<GpuContext> {
  if (opts.device) return new GpuContext(opts.device, false);
  if (isNode && !process.env.XDG_RUNTIME_DIR) {
    // The Vulkan loader warns on every start without it; any writable folder will do.
    process.env.XDG_RUNTIME_DIR = (await import(/* webpackIgnore: true */ /* @vite-ignore */ NODE_OS)).tmpdir();
  }
  const { gpu, keepAlive } = await findGpu(opts);
  const adapterOptions: GPURequestAdapterOptions = { powerPreference: opts.powerPreference ?? 'high-performance' };
  const adapter = !gpu
    ? null
    : keepAlive && !opts.dawnWarnings
      ? await requestDawnAdapter(gpu, adapterOptions)
      : await gpu.requestAdapter(adapterOptions);
  if (!adapter) throw new NoAdapterError(isNode ? NODE_HOWTO : BROWSER_HOWTO);
  const requiredLimits: Record<string, number> = {};
  for (const name of WANTED_LIMITS) {
    const v = (adapter.limits as unknown as Record<string, number>)[name];
    if (typeof v === 'number') requiredLimits[name] = v;
  }
  const requiredFeatures = OPTIONAL_FEATURES.filter((f) => adapter.features.has(f)) as GPUFeatureName[];
  const device = await adapter.requestDevice({ label: 'pix2pix-webgpu', requiredLimits, requiredFeatures });
  // The context holds the GPU object it came from, the caller's too (`{ gpu: create([]) }` keeps no other
  // reference): with Dawn, a collected instance object frees the native instance under its live devices, and
  // their next use aborts the process on a freed mutex (test/runtime/dawn_lifetime.test.ts).
  return new GpuContext(device, true, keepAlive ?? gpu);
}
