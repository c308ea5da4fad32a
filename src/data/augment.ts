/**
 * Paired augmentation on the GPU: Albumentations-style pipelines (see augment_schema.ts) run on NCHW tensors.
 * Geometric transforms warp A and B with the same matrix in one kernel (shaders/augment_warp.wgsl); photometric
 * ones change A only (shaders/augment_color.wgsl). Parameters are drawn per sample on the CPU (augment_params.ts),
 * deterministically from (seed, sampleIndex, epoch), and uploaded as one small record buffer per batch.
 *
 * Tensors hold values in `range` (default [-1, 1], the networks' range): photometric transforms convert each
 * value to [0, 1], apply the formula there, and convert back; a constant border fill v (0..255) becomes
 * lo + v / 255 * (hi - lo). Geometric transforms do not depend on the range.
 *
 * Usage, one-shot:            `await aug.run(a, b, outA, outB, { sampleIndex: 0 })`
 * Usage, per training step:   `const plan = aug.plan(a, b, outA, outB)` once, then each step
 *                             `plan.update({ sampleIndex: step * batch, epoch })` and record `plan.dispatches`
 *                             with the step's other work (no allocation after the first step).
 * Browser-safe.
 */
import warpShader from '../../shaders/augment_warp.wgsl';
import colorShader from '../../shaders/augment_color.wgsl';
import randomShader from '../../shaders/random.wgsl';
import type { Dispatch, GpuContext } from '../runtime/context.js';
import type { Tensor } from '../runtime/tensor.js';
import { planMemory, type MemoryPlan } from '../runtime/memory_plan.js';
import { Pix2PixError, ShapeError } from '../runtime/errors.js';
import { parseAugmentSpec, type AugmentSpec, type WarpOptions } from './augment_schema.js';
import { drawSample, flattenStages, maxBlurKsize, type ColorOp, type SampleDraw, type Size, type Stage, type WarpOp } from './augment_params.js';
import { fillFor } from './augment_cpu.js';

const WG = 256;
const COLOR_SHADER = `${randomShader}\n${colorShader}`;
const COLOR_OPS: Record<ColorOp['kind'], number> = { brightness_contrast: 0, gamma: 1, hsv: 2, rgb_shift: 3, noise: 4, blur: 5 };
const COLOR_KIND: Record<string, ColorOp['kind']> = {
  RandomBrightnessContrast: 'brightness_contrast',
  RandomGamma: 'gamma',
  HueSaturationValue: 'hsv',
  RGBShift: 'rgb_shift',
  GaussNoise: 'noise',
  GaussianBlur: 'blur',
};
const BORDER_CODE = { constant: 0, replicate: 1, reflect: 2, wrap: 3, reflect_101: 4 } as const;

export interface AugmenterOptions {
  /** Seed of every per-sample draw. */
  seed: number;
  /** Value range of the tensors: [-1, 1] (default, the networks' range) or [0, 1]. */
  range?: [number, number];
}

export interface AugmentRunOptions {
  /** Index of the batch's first sample (sample n uses sampleIndex + n), or one index per sample. */
  sampleIndex: number | readonly number[];
  /** Mixed into the draws so each epoch sees new augmentations (0: `seed ^ pcgHash(sampleIndex)`). */
  epoch?: number;
}

/** One kernel launch of a plan: a stage (or the final copy), its buffers and its record layout. */
interface PlanStep {
  stage: Stage | null;
  kind: 'warp' | 'color';
  inSize: Size;
  outSize: Size;
  base: number;
  stride: number;
  remap: boolean;
}

/** Dispatches for one set of tensors, replayed every batch; `update` draws new parameters. */
export class AugmentPlan {
  readonly dispatches: Dispatch[] = [];
  private readonly steps: PlanStep[] = [];
  private readonly records: Tensor;
  private readonly recordBytes: ArrayBuffer;
  private readonly owned: Tensor[] = [];
  /** Where the intermediate images live (null for a one-shot plan, whose dispatches own them). */
  private memory: MemoryPlan | null = null;
  private destroyed = false;

  /**
   * `planned` (a plan replayed every batch): the intermediate images between stages are scratch placed
   * by planMemory, the training step's planner, so stages whose images are not alive together share
   * memory. Unplanned (one-shot apply): plain tensors, freed with the dispatches.
   */
  constructor(
    private readonly aug: Augmenter,
    readonly a: Tensor,
    readonly b: Tensor,
    readonly outA: Tensor,
    readonly outB: Tensor,
    planned = true,
  ) {
    const ctx = aug.ctx;
    const op = 'augment';
    ctx.checkTensor(a, op, undefined, 'a');
    if (a.shape.length !== 4) throw new ShapeError(op, `a '${a.label}' rank`, 'NCHW (4)', a.shape.length);
    const [N, Ca, H, W] = a.shape;
    ctx.checkTensor(b, op, undefined, 'b');
    if (b.shape.length !== 4 || b.shape[0] !== N || b.shape[2] !== H || b.shape[3] !== W) {
      throw new ShapeError(op, `b '${b.label}' shape`, `[${N}, C, ${H}, ${W}]`, b.shape);
    }
    const Cb = b.shape[1];
    const out = aug.outputSize(H, W);
    ctx.checkTensor(outA, op, [N, Ca, out.height, out.width], 'outA');
    ctx.checkTensor(outB, op, [N, Cb, out.height, out.width], 'outB');
    for (const [o, name] of [[outA, 'outA'], [outB, 'outB']] as const) {
      if (o.overlaps(a) || o.overlaps(b)) throw new ShapeError(op, `${name} '${o.label}'`, 'a tensor distinct from the inputs', 'an input');
    }
    if (outA.overlaps(outB)) throw new ShapeError(op, 'outB', 'a tensor distinct from outA', 'outA');

    // Steps, sizes and record layout.
    let size: Size = { height: H, width: W };
    let offset = 0;
    for (const s of aug.stages) {
      const t = s.spec;
      const outSize = t.name === 'RandomResizedCrop' ? { height: t.height, width: t.width } : size;
      this.checkChannels(s, Ca, Cb);
      let stride: number;
      const remap = t.name === 'GridDistortion';
      if (s.geometric) stride = 12 + Ca + Cb + (remap ? outSize.width + outSize.height : 0);
      else if (t.name === 'GaussianBlur') stride = 2 + maxBlurKsize(t.blur_limit, t.sigma_limit);
      else stride = 5;
      this.steps.push({ stage: s, kind: s.geometric ? 'warp' : 'color', inSize: size, outSize, base: offset, stride, remap });
      offset += N * stride;
      size = outSize;
    }
    if (!this.steps.some((s) => s.kind === 'warp')) {
      // B must still reach outB (and A its output): a final copy.
      this.steps.push({ stage: null, kind: 'warp', inSize: size, outSize: size, base: offset, stride: 12 + Ca + Cb, remap: false });
      offset += N * (12 + Ca + Cb);
    }
    this.recordBytes = new ArrayBuffer(Math.max(offset, 1) * 4);
    this.records = ctx.tensor([Math.max(offset, 1)], undefined, 'augment.records');
    this.owned.push(this.records);

    // Each stage writes a new intermediate image of its output size (the last of each chain writes the
    // output); lifetimes, and so the sharing of memory, come from the recorded list (planMemory).
    const intermediates: Tensor[] = [];
    const intermediate = (c: number, size: Size, label: string) => {
      const t = ctx.scratch([N, c, size.height, size.width], label);
      intermediates.push(t);
      return t;
    };
    const lastWarp = this.steps.map((s) => s.kind).lastIndexOf('warp');
    let curA = a;
    let curB = b;
    const needsMean = aug.stages.some((s) => s.spec.name === 'RandomBrightnessContrast' && !s.spec.brightness_by_max);
    const means = needsMean ? ctx.tensor([N], undefined, 'augment.means') : ctx.tensor([1], undefined, 'augment.means(unused)');
    this.owned.push(means);
    const [lo, hi] = aug.range;
    const record = () => this.steps.forEach((s, k) => {
      const dstA = k === this.steps.length - 1 ? outA : intermediate(Ca, s.outSize, `augment.${k}.A`);
      const name = s.stage?.spec.name ?? 'copy';
      const planeOut = s.outSize.height * s.outSize.width;
      if (s.kind === 'warp') {
        const dstB = k === lastWarp ? outB : intermediate(Cb, s.outSize, `augment.${k}.B`);
        this.dispatches.push(
          ctx.kernel({
            op: `augment.${name}`,
            shader: warpShader,
            constants: { WG },
            u32: [N, Ca, Cb, s.inSize.height, s.inSize.width, s.outSize.height, s.outSize.width, s.base, s.stride, s.remap ? 1 : 0],
            bindings: [
              { tensor: this.records, access: 'read' },
              { tensor: curA, access: 'read' },
              { tensor: dstA, access: 'rw' },
              { tensor: curB, access: 'read' },
              { tensor: dstB, access: 'rw' },
            ],
            workgroups: ctx.grid(N * planeOut, WG),
          }),
        );
        curB = dstB;
      } else {
        const kind = COLOR_KIND[name];
        const common = {
          shader: COLOR_SHADER,
          constants: { WG, OP: COLOR_OPS[kind] },
          u32: [N, Ca, s.inSize.height, s.inSize.width, s.base, s.stride],
          f32: [lo, hi],
          bindings: [
            { tensor: this.records, access: 'read' as const },
            { tensor: curA, access: 'read' as const },
            { tensor: dstA, access: 'rw' as const },
            { tensor: means, access: 'rw' as const },
          ],
        };
        const spec = s.stage!.spec;
        if (spec.name === 'RandomBrightnessContrast' && !spec.brightness_by_max) {
          this.dispatches.push(ctx.kernel({ ...common, op: `augment.${name}.mean`, entryPoint: 'mean', workgroups: [N] }));
        }
        this.dispatches.push(ctx.kernel({ ...common, op: `augment.${name}`, entryPoint: 'main', workgroups: ctx.grid(N * planeOut, WG) }));
      }
      curA = dstA;
    });
    if (planned) {
      ctx.deferAllocations(record);
      this.memory = planMemory(ctx, this.dispatches, { label: 'augment' });
    } else {
      record();
      this.owned.push(...intermediates);
    }
  }

  private checkChannels(s: Stage, Ca: number, Cb: number): void {
    const t = s.spec;
    if (t.name === 'RGBShift' && Ca !== 3) throw new ShapeError(t.name, `${s.path}: channels of A`, 3, Ca);
    if (t.name === 'HueSaturationValue' && Ca !== 1 && Ca !== 3) throw new ShapeError(t.name, `${s.path}: channels of A`, '1 or 3', Ca);
    if ('value' in t) {
      const w = t as WarpOptions;
      if (w.value.length !== 1 && w.value.length !== Ca) throw new ShapeError(t.name, `${s.path}.value: values`, `1 or ${Ca} (channels of A)`, w.value.length);
      const mv = w.mask_value ?? w.value;
      if (mv.length !== 1 && mv.length !== Cb) {
        throw new ShapeError(t.name, `${s.path}.${w.mask_value ? 'mask_value' : 'value'}: values for B`, `1 or ${Cb} (channels of B; set mask_value)`, mv.length);
      }
    }
  }

  /** Draw the parameters of this batch's samples and upload them; returns what was drawn. */
  update(opts: AugmentRunOptions): SampleDraw[] {
    if (this.destroyed) throw new Pix2PixError('augment', 'plan used after destroy()');
    const [N, Ca, H, W] = this.a.shape;
    const Cb = this.b.shape[1];
    const idx = typeof opts.sampleIndex === 'number' ? Array.from({ length: N }, (_, n) => (opts.sampleIndex as number) + n) : [...opts.sampleIndex];
    if (idx.length !== N) throw new ShapeError('augment', 'sampleIndex count', N, idx.length);
    const draws = idx.map((i) => drawSample(this.aug.spec, this.aug.seed, i, { height: H, width: W }, opts.epoch ?? 0));
    const u = new Uint32Array(this.recordBytes);
    const f = new Float32Array(this.recordBytes);
    const [lo, hi] = this.aug.range;
    const toRange = (v: number) => lo + v * (hi - lo);
    u.fill(0);
    this.steps.forEach((s) => {
      for (let n = 0; n < N; n++) {
        const r = s.base + n * s.stride;
        const d = s.stage ? draws[n].stages[s.stage.index] : null;
        if (!d?.applied || !d.op) continue; // apply = 0: copy
        u[r] = 1;
        if (d.op.kind === 'warp') {
          const op: WarpOp = d.op;
          f.set(op.inverse, r + 1);
          u.set(op.window, r + 7);
          u[r + 11] = BORDER_CODE[op.border];
          for (let c = 0; c < Ca; c++) f[r + 12 + c] = toRange(fillFor(op.fillA, c, Ca, d.name));
          for (let c = 0; c < Cb; c++) f[r + 12 + Ca + c] = toRange(fillFor(op.fillB, c, Cb, d.name));
          if (s.remap) {
            f.set(op.mapX!, r + 12 + Ca + Cb);
            f.set(op.mapY!, r + 12 + Ca + Cb + s.outSize.width);
          }
          continue;
        }
        const op: ColorOp = d.op;
        switch (op.kind) {
          case 'brightness_contrast':
            f[r + 1] = op.alpha;
            f[r + 2] = op.beta;
            u[r + 3] = op.byMax ? 1 : 0;
            break;
          case 'gamma':
            f[r + 1] = op.gamma;
            break;
          case 'hsv':
            f.set([op.hue, op.sat, op.val], r + 1);
            break;
          case 'rgb_shift':
            f.set(op.shift, r + 1);
            break;
          case 'noise':
            f[r + 1] = op.sigma;
            f[r + 2] = op.mean;
            u[r + 3] = op.seed >>> 0;
            u[r + 4] = op.perChannel ? 1 : 0;
            break;
          case 'blur':
            u[r + 1] = op.ksize;
            f.set(op.weights, r + 2);
            break;
        }
      }
    });
    this.records.write(f);
    return draws;
  }

  /** Free the plan's scratch, record buffer and uniforms. */
  destroy(): void {
    if (this.destroyed) return;
    this.destroyed = true;
    for (const d of this.dispatches) d.destroy();
    for (const t of this.owned) t.destroy();
    this.memory?.destroy();
  }

  /** Hand the plan's resources to its first dispatch (for the one-shot `apply`; an unplanned plan). */
  detach(): Dispatch[] {
    if (this.memory) throw new Pix2PixError('augment', 'detach() needs a one-shot (unplanned) plan');
    for (const t of this.owned) this.dispatches[0].attach(t);
    this.owned.length = 0;
    this.destroyed = true;
    return this.dispatches;
  }
}

/** An augmentation pipeline bound to a device and a seed. */
export class Augmenter {
  readonly stages: Stage[];
  readonly range: [number, number];
  private lastSize: Size | null = null;

  constructor(
    readonly ctx: GpuContext,
    readonly spec: AugmentSpec,
    readonly seed: number,
    range: [number, number] = [-1, 1],
  ) {
    if (!Number.isInteger(seed) || seed < 0 || seed > 0xffffffff) throw new ShapeError('createAugmenter', 'seed', 'a 32-bit unsigned integer', seed);
    if (range.length !== 2 || !(range[1] > range[0])) throw new ShapeError('createAugmenter', 'range', '[lo, hi] with hi > lo', range);
    this.stages = flattenStages(spec);
    this.range = [range[0], range[1]];
  }

  /** Output height and width for an input of `height` x `width`. */
  outputSize(height: number, width: number): Size {
    let size = { height, width };
    for (const s of this.stages) if (s.spec.name === 'RandomResizedCrop') size = { height: s.spec.height, width: s.spec.width };
    return size;
  }

  /** Record reusable dispatches for these tensors (shapes fixed); call `update` per batch. */
  plan(a: Tensor, b: Tensor, outA: Tensor, outB: Tensor, planned = true): AugmentPlan {
    const p = new AugmentPlan(this, a, b, outA, outB, planned);
    this.lastSize = { height: a.shape[2], width: a.shape[3] };
    return p;
  }

  /**
   * One-shot: draw and upload this batch's parameters and return the dispatches (not submitted). They own their
   * scratch: `destroyDispatches(list)` after running them.
   */
  apply(a: Tensor, b: Tensor, outA: Tensor, outB: Tensor, opts: AugmentRunOptions): Dispatch[] {
    const p = this.plan(a, b, outA, outB, false);
    p.update(opts);
    return p.detach();
  }

  /** Apply, submit, wait, free; returns the drawn parameters of each sample. */
  async run(a: Tensor, b: Tensor, outA: Tensor, outB: Tensor, opts: AugmentRunOptions): Promise<SampleDraw[]> {
    const p = this.plan(a, b, outA, outB);
    try {
      const draws = p.update(opts);
      await this.ctx.run(p.dispatches, 'augment');
      return draws;
    } finally {
      p.destroy();
    }
  }

  /** The parameters sample `sampleIndex` gets, for an input of `height` x `width` (default: the last planned size). */
  describe(sampleIndex: number, opts: { height?: number; width?: number; epoch?: number } = {}): SampleDraw {
    const height = opts.height ?? this.lastSize?.height;
    const width = opts.width ?? this.lastSize?.width;
    if (height === undefined || width === undefined) {
      throw new ShapeError('augment.describe', 'image size', '{ height, width } (or a previous plan/apply/run)', 'none');
    }
    return drawSample(this.spec, this.seed, sampleIndex, { height, width }, opts.epoch ?? 0);
  }
}

/** Build an augmenter from a spec: JSON text, a plain object, or a parsed {@link AugmentSpec} (parsing is idempotent). */
export function createAugmenter(ctx: GpuContext, spec: AugmentSpec | string | object, opts: AugmenterOptions): Augmenter {
  return new Augmenter(ctx, parseAugmentSpec(spec), opts.seed, opts.range);
}
