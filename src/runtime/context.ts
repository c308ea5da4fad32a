import { Tensor, numel } from './tensor.js';
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
  constructor(
    readonly op: string,
    readonly pipeline: GPUComputePipeline,
    readonly bindGroup: GPUBindGroup,
    readonly workgroups: readonly [number, number, number],
    private readonly ctx: GpuContext,
    readonly uniform: GPUBuffer | null,
    private readonly uniformBytes: ArrayBuffer | null,
    private readonly nU32: number,
  ) {}

  private readonly scratch: Tensor[] = [];

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

  constructor(
    readonly device: GPUDevice,
    private readonly ownsDevice: boolean,
    /** Kept so Dawn's instance is not garbage-collected while the device lives. */
    private readonly keepAlive?: unknown,
  ) {
    this.limits = device.limits;
    this.features = new Set(device.features as unknown as Iterable<string>);
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
    enc.clearBuffer(t.buffer, 0, alignUp(t.byteLength, 4));
    this.device.queue.submit([enc.finish()]);
  }

  /** Take a storage buffer of at least `bytes` bytes from the pool, or create one. */
  acquireBuffer(bytes: number, label: string): GPUBuffer {
    const size = alignUp(bytes, 256);
    const maxBinding = this.limits.maxStorageBufferBindingSize;
    if (size > maxBinding) throw new DeviceLimitError(label, 'storage buffer bytes', maxBinding, size);
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
    enc.copyBufferToBuffer(t.buffer, 0, staging, 0, bytes);
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
  kernel(spec: KernelSpec): Dispatch {
    this.assertUsable(spec.op);
    spec.bindings.forEach((b, i) => {
      if (b.tensor instanceof Tensor) this.checkTensor(b.tensor, spec.op, undefined, `binding ${i + 1}`);
    });
    const layoutKey = spec.bindings.map((b, i) => `${b.binding ?? i + 1}${b.access}`).join(',') + (hasUniforms(spec) ? '|u' : '');
    const layout = this.layout(layoutKey, spec.bindings, hasUniforms(spec));
    const pipeline = this.pipeline(spec, layoutKey, layout);
    let uniform: GPUBuffer | null = null;
    let uniformBytes: ArrayBuffer | null = null;
    const entries: GPUBindGroupEntry[] = [];
    if (hasUniforms(spec)) {
      const n = (spec.u32?.length ?? 0) + (spec.f32?.length ?? 0);
      uniformBytes = new ArrayBuffer(alignUp(n * 4, 16));
      packUniforms(uniformBytes, spec.u32 ?? [], spec.f32 ?? []);
      uniform = this.device.createBuffer({ label: `${spec.op}.uniforms`, size: uniformBytes.byteLength, usage: BufferUsage.UNIFORM | BufferUsage.COPY_DST });
      this.device.queue.writeBuffer(uniform, 0, uniformBytes);
      entries.push({ binding: 0, resource: { buffer: uniform } });
    }
    spec.bindings.forEach((b, i) => {
      const buffer = b.tensor instanceof Tensor ? b.tensor.buffer : b.tensor;
      entries.push({ binding: b.binding ?? i + 1, resource: { buffer } });
    });
    const bindGroup = this.device.createBindGroup({ label: `${spec.op}.bindgroup`, layout, entries });
    const [x, y = 1, z = 1] = spec.workgroups;
    const maxGroups = this.limits.maxComputeWorkgroupsPerDimension;
    for (const c of [x, y, z]) {
      if (c > maxGroups) throw new DeviceLimitError(spec.op, 'workgroups per dimension', maxGroups, c);
    }
    return new Dispatch(spec.op, pipeline, bindGroup, [x, y, z], this, uniform, uniformBytes, spec.u32?.length ?? 0);
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

function hasUniforms(spec: KernelSpec): boolean {
  return (spec.u32?.length ?? 0) + (spec.f32?.length ?? 0) > 0;
}

export function alignUp(n: number, a: number): number {
  return Math.ceil(n / a) * a;
}
