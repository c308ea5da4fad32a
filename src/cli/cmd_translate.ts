import { existsSync, readFileSync } from 'node:fs';
import { mkdir, readdir, realpath, stat } from 'node:fs/promises';
import { basename, dirname, extname, join, relative, resolve, sep } from 'node:path';
import { defineCommand, UsageError, required } from './command.js';
import { Progress } from './progress.js';

const IMAGE_EXT = new Set(['.png', '.jpg', '.jpeg', '.tif', '.tiff', '.webp']);
const WEIGHTS_FILE = /\.(pth|pt|safetensors|bin)$/i;

/** `p` with symlinks resolved; for a path that does not exist yet, its nearest existing ancestor's real path plus the rest. */
export async function realPathOrPlanned(p: string): Promise<string> {
  const abs = resolve(p);
  let head = abs;
  const tail: string[] = [];
  for (;;) {
    try {
      return join(await realpath(head), ...tail);
    } catch {
      const up = dirname(head);
      if (up === head) return abs;
      tail.unshift(basename(head));
      head = up;
    }
  }
}

const isInside = (child: string, parent: string) => child === parent || child.startsWith(parent.endsWith(sep) ? parent : parent + sep);

/**
 * The generator file for `--checkpoint`: a weights file as given, or in a folder the latest generator that `train`
 * (latest_net_G.safetensors) or the reference (latest_net_G.pth) wrote. A folder without one is refused with the
 * checkpoint folders found below it (the demo keeps them in study/trials/NAME/checkpoints).
 */
async function generatorFile(checkpoint: string): Promise<{ G: string; folder?: string }> {
  let st;
  try {
    st = await stat(checkpoint);
  } catch {
    throw new UsageError(`--checkpoint ${checkpoint}: no such file or folder`);
  }
  if (!st.isDirectory()) {
    if (!WEIGHTS_FILE.test(checkpoint)) throw new UsageError(`--checkpoint ${checkpoint}: expected a .safetensors or .pth file, or a checkpoint folder`);
    return { G: checkpoint };
  }
  for (const name of ['latest_net_G.safetensors', 'latest_net_G.pth']) if (existsSync(join(checkpoint, name))) return { G: join(checkpoint, name), folder: checkpoint };
  const found: string[] = [];
  const walk = async (dir: string, depth: number) => {
    if (depth > 4 || found.length >= 3) return;
    const entries = await readdir(dir, { withFileTypes: true }).catch(() => []);
    for (const e of entries) {
      if (!e.isDirectory() || e.name.startsWith('.')) continue;
      const sub = join(dir, e.name);
      if (existsSync(join(sub, 'latest_net_G.safetensors'))) found.push(sub);
      else await walk(sub, depth + 1);
    }
  };
  await walk(checkpoint, 1);
  throw new UsageError(
    `--checkpoint ${checkpoint}: no latest_net_G.safetensors or latest_net_G.pth in this folder` + (found.length ? `; checkpoint folders below it: ${found.join(', ')}` : ''),
  );
}

interface TrainRecord {
  /** Dropout in the generator (the weights cannot tell). */
  dropout?: boolean;
  /** Group count of a group-norm generator, for weights files that do not record it (written before they did). */
  normGroups?: number;
  /** Width of the photos the generator was trained on, when the training folder records it. */
  trainWidth?: number;
}

/** What the training folder's options.json (written by `train`) says about the generator, if anything. */
function trainRecord(folder: string | undefined): TrainRecord {
  if (!folder || !existsSync(join(folder, 'options.json'))) return {};
  try {
    const o = JSON.parse(readFileSync(join(folder, 'options.json'), 'utf8')) as {
      resolved?: { generator?: { dropout?: boolean; normGroups?: number } };
      preprocess?: { preprocess?: string; cropSize?: number };
      dataroot?: string;
    };
    const rec: TrainRecord = { dropout: o.resolved?.generator?.dropout, normGroups: o.resolved?.generator?.normGroups };
    const pre = o.preprocess?.preprocess;
    if (pre && pre !== 'none' && typeof o.preprocess?.cropSize === 'number') rec.trainWidth = o.preprocess.cropSize;
    else if (pre === 'none' && typeof o.dataroot === 'string') rec.trainWidth = datasetManifest(o.dataroot)?.width;
    return rec;
  } catch {
    return {}; // a damaged options.json only loses these hints; the weights decide the architecture
  }
}

/** Our dataset manifest (from `synth`/`demo`) in `dir` or its parent (test/ and train/ sit below it), when its layout is aligned A|B. */
export function datasetManifest(dir: string): { path: string; width: number } | undefined {
  for (const d of [dir, dirname(dir)]) {
    const path = join(d, 'manifest.json');
    if (!existsSync(path)) continue;
    try {
      const m = JSON.parse(readFileSync(path, 'utf8')) as { layout?: unknown; width?: unknown };
      if (typeof m.layout === 'string' && m.layout.startsWith('aligned') && typeof m.width === 'number') return { path, width: m.width };
    } catch {
      /* not ours */
    }
  }
  return undefined;
}

export const translateCommand = defineCommand({
  name: 'translate',
  summary: 'translate photos with a trained generator (.pth from the PyTorch reference, or .safetensors)',
  usage: 'translate --checkpoint FILE|DIR --input IMAGE|DIR --out DIR [--eval] [--seed N]',
  options: {
    checkpoint: { type: 'string', arg: 'FILE|DIR', description: 'generator weights: latest_net_G.pth (reference), a .safetensors file, or a folder written by train (only G is read)' },
    input: { type: 'string', arg: 'IMAGE|DIR', description: 'one image, or a folder of images' },
    out: { type: 'string', arg: 'DIR', description: 'output folder (not the input folder nor inside it); one PNG per input, named like the input' },
    eval: { type: 'boolean', description: "eval mode as the reference's --eval: running BatchNorm statistics, no dropout" },
    seed: { type: 'count', description: 'dropout seed for the default (non-eval) mode', default: 0 },
    pad: { type: 'boolean', description: 'pad inputs whose sides are not multiples of 2^numDowns (reflection), then crop back' },
    no_dropout: { type: 'boolean', description: 'the checkpoint was trained with --no_dropout (a .pth cannot tell; a train folder records it)' },
    aligned_a: { type: 'boolean', description: 'inputs are aligned A|B images: translate the left half (automatic for datasets written by synth/demo)' },
    whole_image: { type: 'boolean', description: 'translate each image whole even if it looks like an aligned A|B pair' },
    '16bit': { type: 'boolean', description: 'write 16-bit PNGs (gray or RGB) instead of 8-bit' },
  },
  epilog: [
    "Pixels are written as the reference's tensor2im: (y + 1) / 2 * 255, truncated (--16bit: 16-bit, rounded); gray PNGs when the generator has 1 output channel.",
    'A test folder written by synth or demo (aligned photo | X-ray, with manifest.json) is recognised: the photo half is translated.',
    'Example: translate --checkpoint checkpoints/experiment --input mice/test --out translated',
  ].join('\n'),
  async run(opts) {
    const checkpoint = required(opts, 'checkpoint', 'translate');
    const input = required(opts, 'input', 'translate');
    const out = required(opts, 'out', 'translate');
    if (opts.aligned_a && opts.whole_image) throw new UsageError('--aligned_a and --whole_image contradict each other: give one');

    // Everything that can be checked without the GPU is checked first, so no work is done (and nothing
    // written) on a command that cannot succeed.
    const { G, folder } = await generatorFile(checkpoint);
    let inputStat;
    try {
      inputStat = await stat(input);
    } catch {
      throw new UsageError(`--input ${input}: no such file or folder`);
    }
    const inputDir = inputStat.isDirectory() ? input : dirname(input);
    let files: string[];
    if (inputStat.isDirectory()) {
      const names = (await readdir(input, { withFileTypes: true })).filter((e) => !e.name.startsWith('.') && IMAGE_EXT.has(extname(e.name).toLowerCase()));
      files = [];
      for (const e of names) if (e.isFile() || (e.isSymbolicLink() && (await stat(join(input, e.name)).catch(() => null))?.isFile())) files.push(join(input, e.name));
      files.sort();
      if (files.length === 0) {
        const phases = ['test', 'train'].filter((p) => existsSync(join(input, p)));
        throw new UsageError(`--input ${input}: no images (${[...IMAGE_EXT].join(', ')}) in this folder${phases.length ? `; did you mean ${join(input, phases[0])}?` : ''}`);
      }
    } else files = [input];

    // One output per input: a.png and a.jpg would both become a.png, the second overwriting the first.
    const outputs = new Map<string, string>();
    for (const f of files) {
      const name = `${basename(f, extname(f))}.png`;
      const prev = outputs.get(name);
      if (prev) throw new UsageError(`--input ${input}: ${basename(prev)} and ${basename(f)} would both be written as ${join(out, name)}; rename one of them`);
      outputs.set(name, f);
    }

    // Never write over the inputs: not into the input folder (or below it), not onto an input file (symlinks resolved).
    const outReal = await realPathOrPlanned(out);
    if (inputStat.isDirectory()) {
      const inReal = await realpath(input);
      if (isInside(outReal, inReal)) throw new UsageError(`--out ${out} is ${outReal === inReal ? 'the input folder' : 'inside the input folder'} ${input}: the translations would mix with (and could overwrite) the photos; choose another folder`);
    }
    const inputReals = new Set(await Promise.all(files.map((f) => realpath(f))));
    for (const name of outputs.keys()) {
      const target = await realPathOrPlanned(join(out, name));
      if (inputReals.has(target)) throw new UsageError(`--out ${out}: ${join(out, name)} would overwrite the input ${relative('.', target) || target}; choose another folder`);
    }
    const outStat = await stat(out).catch(() => null);
    if (outStat && !outStat.isDirectory()) throw new UsageError(`--out ${out} is a file, not a folder`);

    // Aligned A|B inputs (photo | target side by side): translate the photo, never the pair as one picture.
    const { readImageInfo } = await import('../data/image_node.js');
    const infos = await Promise.all(files.map(async (f) => ({ file: f, ...(await readImageInfo(f)) })));
    const record = trainRecord(folder);
    const manifest = datasetManifest(resolve(inputDir));
    let alignedA = opts.aligned_a;
    if (!alignedA && !opts.whole_image) {
      if (manifest && infos.every((i) => i.width === 2 * manifest.width)) {
        alignedA = true;
        console.error(`translate: ${input} is an aligned photo | target dataset (${manifest.path}): translating the photo (left) half of each image; --whole_image to translate them whole`);
      } else {
        const w = record.trainWidth;
        const pair = w ? infos.find((i) => i.width === 2 * w) : undefined;
        if (pair) {
          throw new UsageError(
            `--input ${pair.file} is ${pair.width} px wide, twice the ${w} px the generator was trained on: it looks like an aligned A|B pair. ` +
              'Give --aligned_a to translate its left half, or --whole_image to translate it whole',
          );
        }
      }
    }

    const { loadCheckpoint } = await import('../gan/checkpoint_node.js');
    const { readImage, writePng } = await import('../data/image_node.js');
    const { cropImage } = await import('../data/image.js');
    const { Pix2PixError } = await import('../runtime/errors.js');
    const dropout = opts.no_dropout ? false : record.dropout;
    // Inference needs G only: a training folder's D and optimizer are not read.
    // A group count the weights file records wins over the folder's record (see checkpoint_codec.ts).
    const model = await loadCheckpoint({ G }, { discriminator: false, dropout, normGroups: record.normGroups });
    try {
      await mkdir(out, { recursive: true });
      const cIn = model.config.generator.inputChannels as 1 | 3;
      const bar = new Progress('translate', files.length, 'img');
      let written = 0;
      for (const [name, f] of outputs) {
        let im = await readImage(f, cIn);
        if (alignedA) im = cropImage(im, 0, 0, Math.floor(im.width / 2), im.height);
        let y;
        try {
          y = await model.translate(im, { eval: opts.eval, seed: opts.seed, pad: opts.pad });
        } catch (e) {
          // The model does not know which file it was given: say it, or the user of a 900-image folder cannot find it.
          if (e instanceof Pix2PixError && !e.message.includes(f)) e.message = `${f}: ${e.message.replace('pass { pad: true }', 'give --pad')}`;
          throw e;
        }
        await writePng(join(out, name), y, { bitDepth: opts['16bit'] ? 16 : 8 });
        written++;
        bar.tick();
      }
      console.log(`wrote ${written} image(s) to ${out}`);
    } finally {
      model.destroy();
    }
  },
});
