import { Tensor, TensorStorage, numel } from './tensor.js';
import { DeviceLimitError, DeviceLostError, GpuValidationError, Pix2PixError, ShapeError } from './errors.js';

// WebGPU flag values from the spec, so the library works without the GPUBufferUsage globals
// (Node's `webgpu` package only installs them when asked).
export const BufferUsage = { MAP_READ: 0x1, COPY_SRC: 0x4, COPY_DST: 0x8, UNIFORM: 0x40, STORAGE: 0x80, QUERY_RESOLVE: 0x200 } as const;
const MAP_MODE_READ = 0x1;
const SHADER_STAGE_COMPUTE = 0x4;
const STORAGE_USAGE = BufferUsage.STORAGE | BufferUsage.COPY_SRC | BufferUsage.COPY_DST;

/** How a kernel binds a buffer: read-only storage, read-write storage. */
export type Access = 'read' | 'rw';

/** One buffer binding of a kernel; binding indices follow the array order, after the uniform (binding 0). */
export interface Binding {
  tensor: Tensor | GPUBuffer;
  access: Access;
  /** WGSL @binding number; defaults to the position in the list + 1. Set it when one shader's entry
   * points use different subsets of its buffers (gaps are fine: the layout lists only what is bound). */
  binding?: number;
}

/** What a kernel needs to record one compute dispatch. */
export interface KernelSpec {
  /** Op name, used for labels, errors and the pipeline cache key. */
  op: string;
  /** WGSL source; cached per device by source text + entry point + constants. */
  shader: string;
  entryPoint?: string;
  /** Pipeline-overridable constants (e.g. workgroup size). Only what changes the code belongs here. */
  constants?: Record<string, number>;
  /** Shape-dependent sizes, written to a uniform buffer at binding 0 (u32 fields first, then f32). */
  u32?: readonly number[];
  f32?: readonly number[];
  bindings: readonly Binding[];
  /** Workgroup counts; use `grid()` for 1-D work that may exceed 65535 groups. */
  workgroups: readonly [number, number?, number?];
}

/**
 * A recorded dispatch: pipeline + bind group + counts. Build once, replay every step: layers keep their
 * dispatch lists so a training step allocates nothing after the first. `setUniforms` rewrites the
 * per-step values (Adam step, dropout seed) without allocation.
 */
export class Dispatch {
  private group: GPUBindGroup | null = null;

  constructor(
    readonly op: string,
    readonly pipeline: GPUComputePipeline,
    private readonly layout: GPUBindGroupLayout,
    /** The buffer bindings, kept so the bind group can be built once transient tensors are placed. */
    readonly bindings: readonly Binding[],
    readonly workgroups: readonly [number, number, number],
    private readonly ctx: GpuContext,
    readonly uniform: GPUBuffer | null,
    private readonly uniformBytes: ArrayBuffer | null,
    private readonly nU32: number,
  ) {}

  private readonly scratch: Tensor[] = [];

  /**
   * The bind group, built on first use: a graph's transient tensors get their memory from
   * {@link planMemory} after the whole graph is recorded, so binding is deferred until then.
   */
  get bindGroup(): GPUBindGroup {
    this.group ??= this.ctx.bindGroupFor(this.op, this.layout, this.bindings, this.uniform);
    return this.group;
  }

  /** Overwrite the uniform values (same layout as at creation). */
  setUniforms(u32: readonly number[], f32: readonly number[] = []): void {
    if (!this.uniform || !this.uniformBytes) throw new Pix2PixError(this.op, 'this dispatch has no uniforms');
    if (u32.length !== this.nU32) throw new ShapeError(this.op, 'u32 uniform count', this.nU32, u32.length);
    packUniforms(this.uniformBytes, u32, f32);
    this.ctx.device.queue.writeBuffer(this.uniform, 0, this.uniformBytes);
  }

  /** Make this dispatch own a scratch tensor (partial sums, statistics) so `destroy()` frees it too. */
  attach(t: Tensor): this {
    this.scratch.push(t);
    return this;
  }

  destroy(): void {
    this.uniform?.destroy();
    this.group = null;
    for (const t of this.scratch) t.destroy();
    this.scratch.length = 0;
  }
}

/** Destroy every dispatch in a list (uniform buffers and attached scratch). */
export function destroyDispatches(dispatches: readonly Dispatch[]): void {
  for (const d of dispatches) d.destroy();
}

function packUniforms(dst: ArrayBuffer, u32: readonly number[], f32: readonly number[]): void {
  const view = new DataView(dst);
  u32.forEach((v, i) => {
    if (!Number.isInteger(v) || v < 0 || v > 0xffffffff) throw new Pix2PixError('uniforms', `u32 field ${i} is ${v}`);
    view.setUint32(i * 4, v, true);
  });
  f32.forEach((v, i) => view.setFloat32((u32.length + i) * 4, v, true));
}

/** Options for {@link createContext}. */
export interface ContextOptions {
  /** Use this device instead of acquiring one (it is not destroyed by `ctx.destroy()`). */
  device?: GPUDevice;
  /** A GPU object to request the adapter from (defaults to navigator.gpu, or Dawn via the `webgpu` package in Node). */
  gpu?: GPU;
  powerPreference?: GPUPowerPreference;
  /** Flags for Dawn's `create()` in Node, e.g. ['backend=vulkan']. */
  dawnFlags?: string[];
  /** Let Dawn's harmless "maxDynamic...BuffersPerPipelineLayout artificially reduced" warnings through to
   * stderr (Node). By default they are filtered, so creating a context prints nothing. */
  dawnWarnings?: boolean;
}

/**
 * What the adapter says about itself (GPUAdapterInfo, read once from `GPUDevice.adapterInfo`): empty strings,
 * `false` and `undefined` where the implementation gives nothing (older browsers have no `adapterInfo`).
 */
export interface AdapterInfo {
  readonly vendor: string;
  readonly architecture: string;
  readonly device: string;
  readonly description: string;
  readonly isFallbackAdapter: boolean;
  /** Subgroup sizes the adapter may use (only where it reports them). */
  readonly subgroupMinSize?: number;
  readonly subgroupMaxSize?: number;
}

/** The device's adapter info as {@link AdapterInfo}; the one place that copes with its absence. */
export function readAdapterInfo(device: GPUDevice): AdapterInfo {
  // Typed as always present, but Dawn builds and browsers before Chrome 132 lack it.
  const info = (device as { adapterInfo?: Partial<GPUAdapterInfo> }).adapterInfo;
  return {
    vendor: info?.vendor ?? '',
    architecture: info?.architecture ?? '',
    device: info?.device ?? '',
    description: info?.description ?? '',
    isFallbackAdapter: info?.isFallbackAdapter ?? false,
    ...(info?.subgroupMinSize !== undefined ? { subgroupMinSize: info.subgroupMinSize } : {}),
    ...(info?.subgroupMaxSize !== undefined ? { subgroupMaxSize: info.subgroupMaxSize } : {}),
  };
}

/** Counters used to prove a training step allocates nothing after the first. */
export interface AllocationStats {
  buffersCreated: number;
  bytesLive: number;
  bytesPeak: number;
}

type PendingCheck = { op: string; result: Promise<GPUError | null> };

/**
 * One device plus everything cached per device: pipelines, bind-group layouts, a buffer pool and
 * the error plumbing that turns WebGPU errors into typed errors carrying the op's name.
 */
export class GpuContext {
  readonly limits: GPUSupportedLimits;
  readonly features: ReadonlySet<string>;
  /** Who the adapter is: vendor, architecture, device, description (for logs, reports and tuning caches). */
  readonly adapterInfo: AdapterInfo;
  readonly stats: AllocationStats = { buffersCreated: 0, bytesLive: 0, bytesPeak: 0 };
  private readonly modules = new Map<string, GPUShaderModule>();
  private readonly pipelines = new Map<string, GPUComputePipeline>();
  private readonly layouts = new Map<string, GPUBindGroupLayout>();
  private readonly pool = new Map<number, GPUBuffer[]>();
  private readonly bufferBytes = new WeakMap<GPUBuffer, number>();
  private readonly stagingPool: GPUBuffer[] = [];
  private pending: PendingCheck[] = [];
  private lost: GPUDeviceLostInfo | null = null;
  private uncaptured: GPUError | null = null;
  private destroyed = false;
  private deferDepth = 0;

  constructor(
    readonly device: GPUDevice,
    private readonly ownsDevice: boolean,
    /** Kept so Dawn's instance is not garbage-collected while the device lives. */
    private readonly keepAlive?: unknown,
  ) {
    this.limits = device.limits;
    this.features = new Set(device.features as unknown as Iterable<string>);
    this.adapterInfo = readAdapterInfo(device);
    device.lost.then((info) => {
      this.lost = info;
    });
    device.addEventListener?.('uncapturederror', (ev: Event) => {
      this.uncaptured ??= (ev as GPUUncapturedErrorEvent).error;
    });
  }

  // ---------------------------------------------------------------- memory

  /** A new tensor, optionally filled from `data`. Buffers come from the pool when one of the same size is free. */
  tensor(shape: readonly number[], data?: ArrayLike<number>, label = 'tensor'): Tensor {
    this.assertUsable(label);
    const bytes = numel(shape) * 4;
    const t = new Tensor(this, shape, this.acquireBuffer(Math.max(bytes, 4), label), label);
    if (data) t.write(data);
    return t;
  }

  /**
   * Scratch memory for a graph being recorded (activations, gradients, partial sums). Inside
   * {@link deferAllocations} it is a transient tensor whose memory {@link planMemory} assigns later,
   * shared with transients whose lifetimes do not overlap; elsewhere it is an ordinary tensor.
   */
  scratch(shape: readonly number[], label = 'scratch'): Tensor {
    if (this.deferDepth === 0) return this.tensor(shape, undefined, label);
    this.assertUsable(label);
    const bytes = Math.max(numel(shape) * 4, 4);
    if (bytes > this.limits.maxStorageBufferBindingSize) throw new DeviceLimitError(label, 'storage buffer bytes', this.limits.maxStorageBufferBindingSize, bytes);
    return new Tensor(this, shape, new TensorStorage(bytes, true, null, label), label);
  }

  /** Run `record` with {@link scratch} creating transient tensors; the caller plans them with planMemory(). */
  deferAllocations<T>(record: () => T): T {
    this.deferDepth++;
    try {
      return record();
    } finally {
      this.deferDepth--;
    }
  }

  /**
   * A tensor whose buffer may exceed maxStorageBufferBindingSize (up to maxBufferSize): kernels bind
   * views of it, never the whole (packed parameters).
   */
  bufferTensor(shape: readonly number[], label = 'tensor'): Tensor {
    this.assertUsable(label);
    return new Tensor(this, shape, this.acquireBuffer(Math.max(numel(shape) * 4, 4), label, { bindsWhole: false }), label);
  }

  /** A tensor filled with zeros. */
  zeros(shape: readonly number[], label = 'zeros'): Tensor {
    const t = this.tensor(shape, undefined, label);
    this.fillZero(t);
    return t;
  }

  /** Zero a tensor's bytes (encoded on the queue, ordered with submits). */
  fillZero(t: Tensor): void {
    this.checkTensor(t, 'fillZero');
    const enc = this.device.createCommandEncoder({ label: `${t.label}.zero` });
    enc.clearBuffer(t.buffer, t.offset, alignUp(t.byteLength, 4));
    this.device.queue.submit([enc.finish()]);
  }

  /** Take a storage buffer of at least `bytes` bytes from the pool, or create one. */
  acquireBuffer(bytes: number, label: string, opts: { bindsWhole?: boolean } = {}): GPUBuffer {
    const size = alignUp(bytes, 256);
    const maxBinding = this.limits.maxStorageBufferBindingSize;
    // Arenas are bound a slice at a time, so only maxBufferSize limits them.
    if ((opts.bindsWhole ?? true) && size > maxBinding) throw new DeviceLimitError(label, 'storage buffer bytes', maxBinding, size);
    if (size > this.limits.maxBufferSize) throw new DeviceLimitError(label, 'buffer bytes', this.limits.maxBufferSize, size);
    const free = this.pool.get(size);
    const reused = free?.pop();
    if (reused) return reused;
    const buf = this.device.createBuffer({ label, size, usage: STORAGE_USAGE });
    this.bufferBytes.set(buf, size);
    this.stats.buffersCreated++;
    this.stats.bytesLive += size;
    this.stats.bytesPeak = Math.max(this.stats.bytesPeak, this.stats.bytesLive);
    return buf;
  }

  /** Destroy a buffer from {@link acquireBuffer} now instead of pooling it (memory-plan arenas, sized per graph). */
  freeBuffer(buf: GPUBuffer): void {
    const size = this.bufferBytes.get(buf);
    if (size === undefined) return;
    this.bufferBytes.delete(buf);
    this.stats.bytesLive -= size;
    buf.destroy();
  }

  /** Return a buffer to the pool for reuse. */
  releaseBuffer(buf: GPUBuffer): void {
    const size = this.bufferBytes.get(buf);
    if (size === undefined) return; // not ours: the caller keeps ownership
    let list = this.pool.get(size);
    if (!list) this.pool.set(size, (list = []));
    list.push(buf);
  }

  /** Free every pooled (unused) buffer. */
  trimPool(): void {
    for (const list of this.pool.values()) {
      for (const b of list) {
        this.stats.bytesLive -= this.bufferBytes.get(b) ?? 0;
        b.destroy();
      }
    }
    this.pool.clear();
  }

  /** Read a tensor back to the CPU. */
  async read(t: Tensor): Promise<Float32Array> {
    this.checkTensor(t, `${t.label}.read`);
    const bytes = alignUp(t.byteLength, 4);
    const staging = this.takeStaging(bytes);
    const enc = this.device.createCommandEncoder({ label: `${t.label}.readback` });
    enc.copyBufferToBuffer(t.buffer, t.offset, staging, 0, bytes);
    this.device.queue.submit([enc.finish()]);
    await this.flush(`${t.label}.read`);
    try {
      await staging.mapAsync(MAP_MODE_READ, 0, bytes);
    } catch (e) {
      this.throwIfLost(`${t.label}.read`);
      throw new GpuValidationError(`${t.label}.read`, String(e));
    }
    const out = new Float32Array(staging.getMappedRange(0, bytes).slice(0));
    staging.unmap();
    this.stagingPool.push(staging);
    return out.length === t.size ? out : out.subarray(0, t.size);
  }

  private takeStaging(bytes: number): GPUBuffer {
    const i = this.stagingPool.findIndex((b) => b.size >= bytes);
    if (i >= 0) return this.stagingPool.splice(i, 1)[0];
    return this.device.createBuffer({ label: 'readback.staging', size: alignUp(bytes, 256), usage: BufferUsage.MAP_READ | BufferUsage.COPY_DST });
  }

  // ---------------------------------------------------------------- kernels

  /** Compile (or fetch from the cache) the pipeline and build one dispatch. */
  kernel(input: KernelSpec): Dispatch {
    this.assertUsable(input.op);
    input.bindings.forEach((b, i) => {
      if (b.tensor instanceof Tensor) this.checkTensor(b.tensor, input.op, undefined, `binding ${i + 1}`);
    });
    const spec = promoteSharedReads(input);
    const layoutKey = spec.bindings.map((b, i) => `${b.binding ?? i + 1}${b.access}`).join(',') + (hasUniforms(spec) ? '|u' : '');
    const layout = this.layout(layoutKey, spec.bindings, hasUniforms(spec));
    const pipeline = this.pipeline(spec, layoutKey, layout);
    const [x, y = 1, z = 1] = spec.workgroups;
    const maxGroups = this.limits.maxComputeWorkgroupsPerDimension;
    for (const c of [x, y, z]) {
      if (c > maxGroups) throw new DeviceLimitError(spec.op, 'workgroups per dimension', maxGroups, c);
    }
    let uniform: GPUBuffer | null = null;
    let uniformBytes: ArrayBuffer | null = null;
    if (hasUniforms(spec)) {
      const n = (spec.u32?.length ?? 0) + (spec.f32?.length ?? 0);
      uniformBytes = new ArrayBuffer(alignUp(n * 4, 16));
      packUniforms(uniformBytes, spec.u32 ?? [], spec.f32 ?? []);
      uniform = this.device.createBuffer({ label: `${spec.op}.uniforms`, size: uniformBytes.byteLength, usage: BufferUsage.UNIFORM | BufferUsage.COPY_DST });
      this.device.queue.writeBuffer(uniform, 0, uniformBytes);
    }
    // The dispatch keeps the bindings as the kernel declared them (planMemory reads their access).
    const d = new Dispatch(spec.op, pipeline, layout, [...input.bindings], [x, y, z], this, uniform, uniformBytes, spec.u32?.length ?? 0);
    // Tensors with memory bind now, so errors surface at record time; transients bind once planned.
    if (spec.bindings.every((b) => !(b.tensor instanceof Tensor) || b.tensor.placed)) void d.bindGroup;
    return d;
  }

  /** Build a dispatch's bind group; tensors bind their own byte range (views and arena slices). */
  bindGroupFor(op: string, layout: GPUBindGroupLayout, bindings: readonly Binding[], uniform: GPUBuffer | null): GPUBindGroup {
    const entries: GPUBindGroupEntry[] = [];
    if (uniform) entries.push({ binding: 0, resource: { buffer: uniform } });
    const align = this.limits.minStorageBufferOffsetAlignment;
    bindings.forEach((b, i) => {
      const binding = b.binding ?? i + 1;
      if (!(b.tensor instanceof Tensor)) {
        entries.push({ binding, resource: { buffer: b.tensor } });
        return;
      }
      const t = b.tensor;
      if (t.destroyed) throw new Pix2PixError(op, `binding ${binding}: tensor '${t.label}' used after destroy()`);
      if (!t.placed) throw new Pix2PixError(op, `binding ${binding}: transient tensor '${t.label}' has no memory: plan the graph with planMemory() before running it`);
      const whole = t.whole;
      const maxBinding = this.limits.maxStorageBufferBindingSize;
      if (t.byteLength > maxBinding || (whole && !t.storage.transient && t.buffer.size > maxBinding)) {
        throw new DeviceLimitError(op, `binding ${binding} ('${t.label}') bytes`, maxBinding, Math.max(t.byteLength, t.buffer.size));
      }
      if (!t.storage.transient && whole) {
        entries.push({ binding, resource: { buffer: t.buffer } });
        return;
      }
      if (t.offset % align !== 0) throw new DeviceLimitError(op, `binding ${binding} ('${t.label}') byte offset alignment`, align, t.offset);
      // A whole transient binds its 256-byte-aligned arena slot (as a pooled buffer would); a view binds
      // exactly its bytes, so a kernel's out-of-range vector accesses cannot reach a neighbouring slice.
      const size = whole && t.storage.transient ? alignUp(t.storage.bytes, 256) : alignUp(Math.max(t.byteLength, 4), 4);
      entries.push({ binding, resource: { buffer: t.buffer, offset: t.offset, size } });
    });
    return this.device.createBindGroup({ label: `${op}.bindgroup`, layout, entries });
  }

  /**
   * Split `n` threads over a 2-D grid of workgroups of `wgSize`, because one dimension holds at most
   * 65535 groups (a 512x1024x64 map has 33M elements). Shaders rebuild the flat index as
   * `gid.x + gid.y * num_workgroups.x * wgSize`.
   */
  grid(n: number, wgSize: number): [number, number] {
    const groups = Math.max(1, Math.ceil(n / wgSize));
    const maxX = this.limits.maxComputeWorkgroupsPerDimension;
    if (groups <= maxX) return [groups, 1];
    const y = Math.ceil(groups / maxX);
    return [Math.ceil(groups / y), y];
  }

  /** Record dispatches into one compute pass and submit them; resolves after error checks. */
  async run(dispatches: readonly Dispatch[], op = dispatches[0]?.op ?? 'run'): Promise<void> {
    this.encodeAndSubmit(dispatches, op);
    await this.flush(op);
  }

  /** Record and submit without waiting for error checks (the next `flush`/`run`/`read` reports them). */
  encodeAndSubmit(dispatches: readonly Dispatch[], op: string): void {
    this.assertUsable(op);
    this.device.pushErrorScope('validation');
    this.device.pushErrorScope('out-of-memory');
    const enc = this.device.createCommandEncoder({ label: op });
    const pass = enc.beginComputePass({ label: `${op}.pass` });
    for (const d of dispatches) {
      pass.setPipeline(d.pipeline);
      pass.setBindGroup(0, d.bindGroup);
      pass.dispatchWorkgroups(d.workgroups[0], d.workgroups[1], d.workgroups[2]);
    }
    pass.end();
    this.device.queue.submit([enc.finish()]);
    this.trackScope(op);
    this.trackScope(op);
  }

  /** Wait for pending error checks and throw the first error, naming the op that caused it. */
  async flush(op = 'flush'): Promise<void> {
    const pending = this.pending;
    this.pending = [];
    for (const p of pending) {
      const err = await p.result;
      if (err) {
        this.throwIfLost(p.op);
        throw new GpuValidationError(p.op, err.message);
      }
    }
    this.throwIfLost(op);
    if (this.uncaptured) {
      const e = this.uncaptured;
      this.uncaptured = null;
      throw new GpuValidationError(op, e.message);
    }
  }

  /** Wait until the GPU has finished all submitted work. */
  async sync(op = 'sync'): Promise<void> {
    await this.device.queue.onSubmittedWorkDone();
    await this.flush(op);
  }

  private trackScope(op: string): void {
    this.pending.push({ op, result: this.device.popErrorScope() });
  }

  private pipeline(spec: KernelSpec, layoutKey: string, layout: GPUBindGroupLayout): GPUComputePipeline {
    const entryPoint = spec.entryPoint ?? 'main';
    const constants = spec.constants ?? {};
    const key = `${spec.op}\u0000${entryPoint}\u0000${JSON.stringify(constants)}\u0000${layoutKey}\u0000${spec.shader}`;
    let p = this.pipelines.get(key);
    if (p) return p;
    let module = this.modules.get(spec.shader);
    this.device.pushErrorScope('validation');
    if (!module) {
      module = this.device.createShaderModule({ label: `${spec.op}.wgsl`, code: spec.shader });
      this.modules.set(spec.shader, module);
    }
    p = this.device.createComputePipeline({
      label: `${spec.op}.${entryPoint}.pipeline`,
      layout: this.device.createPipelineLayout({ label: `${spec.op}.layout`, bindGroupLayouts: [layout] }),
      compute: { module, entryPoint, constants },
    });
    this.trackScope(`${spec.op} (pipeline ${entryPoint})`);
    this.pipelines.set(key, p);
    return p;
  }

  private layout(key: string, bindings: readonly Binding[], uniforms: boolean): GPUBindGroupLayout {
    let l = this.layouts.get(key);
    if (l) return l;
    const entries: GPUBindGroupLayoutEntry[] = [];
    if (uniforms) entries.push({ binding: 0, visibility: SHADER_STAGE_COMPUTE, buffer: { type: 'uniform' } });
    bindings.forEach((b, i) =>
      entries.push({ binding: b.binding ?? i + 1, visibility: SHADER_STAGE_COMPUTE, buffer: { type: b.access === 'read' ? 'read-only-storage' : 'storage' } }),
    );
    l = this.device.createBindGroupLayout({ label: `layout(${key})`, entries });
    this.layouts.set(key, l);
    return l;
  }

  // ---------------------------------------------------------------- checks

  /** Throw unless `t` is a live tensor of this context (optionally with the given shape). */
  checkTensor(t: Tensor, op: string, shape?: readonly number[], name = 'tensor'): void {
    if (!(t instanceof Tensor)) throw new ShapeError(op, name, 'a Tensor', typeof t);
    if (t.ctx !== this) throw new Pix2PixError(op, `${name} '${t.label}' belongs to another device/context`);
    if (t.destroyed) throw new Pix2PixError(op, `${name} '${t.label}' used after destroy()`);
    if (shape && (shape.length !== t.shape.length || shape.some((d, i) => d !== t.shape[i]))) {
      throw new ShapeError(op, `${name} '${t.label}' shape`, shape, t.shape);
    }
  }

  private assertUsable(op: string): void {
    if (this.destroyed) throw new Pix2PixError(op, 'context used after destroy()');
    this.throwIfLost(op);
  }

  private throwIfLost(op: string): void {
    if (this.lost) throw new DeviceLostError(op, String(this.lost.reason), this.lost.message);
  }

  /** Whether the device has been lost. */
  get isLost(): boolean {
    return this.lost !== null;
  }

  /** Release pooled buffers, and the device if this context acquired it. */
  destroy(): void {
    if (this.destroyed) return;
    this.trimPool();
    for (const b of this.stagingPool) b.destroy();
    this.destroyed = true;
    if (this.ownsDevice) this.device.destroy();
    void this.keepAlive;
  }
}

/**
 * WebGPU forbids binding one buffer as read-only and as writable storage in the same dispatch, even at
 * disjoint ranges. Transient tensors share arena buffers (and views share their owner's buffer), so a
 * kernel that reads one such tensor and writes another would break that rule. Those reads are bound
 * as read_write instead: the layout entry becomes 'storage' and the shader's declaration of that
 * binding is rewritten to `var<storage, read_write>` (a cached variant). Writable bindings may share a
 * buffer as long as their ranges do not overlap, which the memory plan guarantees for tensors alive
 * at the same dispatch.
 */
function promoteSharedReads(spec: KernelSpec): KernelSpec {
  const written = spec.bindings.flatMap((b) => (b.access === 'rw' && b.tensor instanceof Tensor ? [b.tensor.storage] : []));
  const mayShareWithWrite = (b: Binding) => {
    const s = b.tensor instanceof Tensor ? b.tensor.storage : null;
    return !!s && written.some((w) => w === s || (w.transient && s.transient));
  };
  const promoted = new Set<number>();
  const bindings = spec.bindings.map((b, i) => {
    if (b.access !== 'read' || !mayShareWithWrite(b)) return b;
    promoted.add(b.binding ?? i + 1);
    return { ...b, access: 'rw' as const };
  });
  if (!promoted.size) return spec;
  const bound = bindings.filter((b): b is Binding & { tensor: Tensor } => b.tensor instanceof Tensor);
  for (let i = 0; i < bound.length; i++) {
    for (let j = i + 1; j < bound.length; j++) {
      const [a, b] = [bound[i], bound[j]];
      if ((a.access === 'rw' || b.access === 'rw') && a.tensor.storage === b.tensor.storage && a.tensor.overlaps(b.tensor)) {
        throw new Pix2PixError(spec.op, `'${a.tensor.label}' and '${b.tensor.label}' overlap and one of their bindings is writable (reads of scratch memory bind read_write); bind distinct tensors, copying one if needed`);
      }
    }
  }
  let rewritten = 0;
  const shader = spec.shader.replace(/(@binding\((\d+)\)\s+var<storage,\s*)read(\s*>)/g, (m, head: string, n: string, tail: string) => {
    if (!promoted.has(Number(n))) return m;
    rewritten++;
    return `${head}read_write${tail}`;
  });
  if (rewritten !== promoted.size) throw new Pix2PixError(spec.op, `could not find the 'var<storage, read>' declarations of bindings ${[...promoted].join(', ')} in the shader to bind them read_write`);
  return { ...spec, shader, bindings };
}

function hasUniforms(spec: KernelSpec): boolean {
  return (spec.u32?.length ?? 0) + (spec.f32?.length ?? 0) > 0;
}

export function alignUp(n: number, a: number): number {
  return Math.ceil(n / a) * a;
}
