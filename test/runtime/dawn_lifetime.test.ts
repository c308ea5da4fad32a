// A Dawn device must never outlive the JavaScript object of its instance (what webgpu's `create()` returns):
// when that object is garbage-collected the native instance goes, and the next use of a device made from it
// aborts the whole process on a freed mutex (or hangs it). With webgpu 0.6.2 on lavapipe, `create([]).requestAdapter()`
// with the GPU object dropped, then `gc()`, then one dispatch on the device, aborts every time with
// `terminate called after throwing an instance of 'std::system_error' what(): Invalid argument`; in CI the
// same use-after-free showed as glibc's `___pthread_mutex_lock: Assertion 'mutex->__data.__owner == 0'
// failed`, killing a vitest fork worker (ERR_IPC_CHANNEL_CLOSED) in runs with test/kernels/conv_tune.test.ts,
// which made such a device that way. createContext() holds its instances; tests get raw devices from
// test/helpers/gpu.ts rawDawnDevice(), which holds them too.
import { describe, it, expect } from 'vitest';
import { spawn } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { rawDawnDevice } from '../helpers/gpu.js';

const ROOT = resolve(import.meta.dirname, '../..');
const DIST = join(ROOT, 'dist/node.js');

function runNode(args: string[], cwd: string): Promise<{ code: number | null; signal: string | null; out: string }> {
  return new Promise((res, rej) => {
    const child = spawn(process.execPath, args, { cwd, stdio: ['ignore', 'pipe', 'pipe'] });
    // A freed instance can also hang the child (a lock never released) instead of aborting it.
    const timer = setTimeout(() => child.kill('SIGKILL'), 60_000);
    let out = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (out += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (out += d));
    child.on('error', rej);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      res({ code, signal, out });
    });
  });
}

/** A full collection, in this process (vitest workers run without --expose-gc). */
function collectGarbage(): void {
  setFlagsFromString('--expose-gc');
  (runInNewContext('gc') as () => void)();
}

/** One dispatch (a doubled buffer), read back. */
async function double(device: GPUDevice): Promise<number> {
  const STORAGE = 0x80, COPY_SRC = 0x04, COPY_DST = 0x08, MAP_READ = 0x01;
  const buf = device.createBuffer({ size: 256, usage: STORAGE | COPY_SRC | COPY_DST });
  device.queue.writeBuffer(buf, 0, new Float32Array(64).fill(1.5));
  const module = device.createShaderModule({ code: '@group(0) @binding(0) var<storage, read_write> x: array<f32>; @compute @workgroup_size(64) fn main(@builtin(global_invocation_id) g: vec3u) { x[g.x] = 2.0 * x[g.x]; }' });
  const pipeline = device.createComputePipeline({ layout: 'auto', compute: { module, entryPoint: 'main' } });
  const bind = device.createBindGroup({ layout: pipeline.getBindGroupLayout(0), entries: [{ binding: 0, resource: { buffer: buf } }] });
  const read = device.createBuffer({ size: 256, usage: MAP_READ | COPY_DST });
  const enc = device.createCommandEncoder();
  const pass = enc.beginComputePass();
  pass.setPipeline(pipeline);
  pass.setBindGroup(0, bind);
  pass.dispatchWorkgroups(1);
  pass.end();
  enc.copyBufferToBuffer(buf, 0, read, 0, 256);
  device.queue.submit([enc.finish()]);
  await read.mapAsync(MAP_READ);
  const v = new Float32Array(read.getMappedRange().slice(0))[63];
  read.unmap();
  buf.destroy();
  read.destroy();
  return v;
}

describe('Dawn instances outlive their devices', () => {
  it('tests make raw Dawn devices only through rawDawnDevice (no direct webgpu import outside test/helpers/gpu.ts)', () => {
    const offenders: string[] = [];
    for (const dir of ['test', 'bench']) {
      for (const f of readdirSync(join(ROOT, dir), { recursive: true }) as string[]) {
        const rel = `${dir}/${f}`;
        // This file's child process imports webgpu on purpose (a GPU object handed to createContext).
        if (!/\.(ts|mjs|js)$/.test(f) || rel.startsWith('test/.out/') || rel === 'test/helpers/gpu.ts' || rel === 'test/runtime/dawn_lifetime.test.ts') continue;
        if (/(?:from\s+|import\(\s*|require\(\s*)['"]webgpu['"]/.test(readFileSync(join(ROOT, rel), 'utf8'))) offenders.push(rel);
      }
    }
    expect(offenders).toEqual([]);
  });

  it('a device from rawDawnDevice keeps working after a full garbage collection', async () => {
    const device = await rawDawnDevice({ requiredFeatures: [] });
    try {
      for (let i = 0; i < 3; i++) {
        collectGarbage();
        await new Promise((r) => setTimeout(r, 20));
        expect(await double(device)).toBe(3);
      }
    } finally {
      device.destroy();
    }
  });

  it("the contexts of the built package (the caller's GPU object too) keep working after full garbage collections (own process)", async () => {
    expect(existsSync(DIST), `${DIST}: run npm run build`).toBe(true);
    // Only the contexts are kept (Pix2Pix.create makes its own the same way): every other object of the
    // create/request chain is unreachable before gc().
    const script = `
      const { createContext } = await import(${JSON.stringify(DIST)});
      const { create } = await import('webgpu');
      // The third from a GPU object of the caller's that nothing else references.
      const contexts = [await createContext(), await createContext(), await createContext({ gpu: create([]) })];
      for (let i = 0; i < 3; i++) {
        gc();
        await new Promise((r) => setTimeout(r, 20));
        for (const ctx of contexts) {
          const t = ctx.tensor([64], new Float32Array(64).fill(i));
          const back = await t.read();
          t.destroy();
          if (back[63] !== i) throw new Error('read ' + back[63] + ', wrote ' + i);
        }
      }
      for (const ctx of contexts) ctx.destroy();
      console.log('survived');`;
    const r = await runNode(['--expose-gc', '--input-type=module', '-e', script], ROOT);
    expect({ code: r.code, signal: r.signal, last: r.out.trim().split('\n').pop() }, r.out).toEqual({ code: 0, signal: null, last: 'survived' });
  }, 120_000);
});
