// Run a layer's recorded graph, lowered with some passes, once forward and backward: what the graph-pass tests
// compare between "no passes" and "standard passes" (outputs, input gradient, every parameter gradient).
import { expect } from 'vitest';
import { compareClose } from './compare.js';
import { Graph, type GraphPass, type Layer } from '../../src/layers/graph.js';
import type { Parameter, RunMode } from '../../src/layers/layer.js';
import { planMemory } from '../../src/runtime/memory_plan.js';
import { mixSeed } from '../../src/runtime/random.js';
import type { Dispatch, GpuContext } from '../../src/runtime/context.js';

export interface LoweredRun {
  output: Float32Array;
  dx: Float32Array;
  grads: Float32Array[];
  graph: Graph;
  /** Forward then backward dispatches, as run. */
  list: Dispatch[];
  backward: Dispatch[];
  /** How many seeded nodes (dropout, or norms that took a dropout over) the lowered graph has. */
  seeded: number;
}

export interface RunGraphOptions {
  mode: RunMode;
  /** The output gradient's values, given its size. */
  dy: (n: number) => Float32Array;
  /** The recorder's seed (default 0). */
  seed?: number;
  /** New seeds for the seeded nodes before running (mixSeed(reseed, i)), as a training step sets them; null: keep. */
  reseed?: number | null;
  label: string;
}

export async function runGraph(ctx: GpuContext, layer: Layer, params: Parameter[], x: Float32Array, shape: number[], passes: GraphPass[], o: RunGraphOptions): Promise<LoweredRun> {
  const input = ctx.tensor(shape, x, 'x');
  const graph = new Graph(ctx);
  const { run, dy, dx, backward } = ctx.deferAllocations(() => {
    const [y] = layer.record([graph.input(input)], graph.recorder(o.mode, 'net', o.seed));
    const run = graph.lower([y], { passes });
    const dy = ctx.tensor(run.output.shape, o.dy(run.output.size), 'dy');
    const dx = ctx.tensor(shape, undefined, 'dx');
    return { run, dy, dx, backward: run.backward(dy, dx, { paramGrads: 'overwrite' }) as Dispatch[] };
  });
  if (o.reseed !== undefined && o.reseed !== null) {
    const reseed = o.reseed;
    run.seeded.forEach((n, i) => n.setSeed!(mixSeed(reseed, i)));
  }
  const list = [...run.forward, ...backward];
  const plan = planMemory(ctx, list, { keep: [run.output], label: o.label });
  await ctx.run(list, o.label);
  const out = { output: await run.output.read(), dx: await dx.read(), grads: await Promise.all(params.map((p) => p.grad!.read())), graph, list, backward, seeded: run.seeded.length };
  run.destroy();
  plan.destroy();
  for (const t of [input, dy, dx]) t.destroy();
  return out;
}

/** The same values up to float rounding of a different summation order (scaled by b's largest magnitude). */
export function expectSame(a: Float32Array, b: Float32Array, label: string): void {
  const scale = Math.max(1e-6, ...Array.from(b, Math.abs));
  const r = compareClose(a, b, { atol: 2e-5 * scale, rtol: 1e-3, label });
  expect(r.ok, r.message).toBe(true);
}
