import { readdir, mkdir, stat } from 'node:fs/promises';
import { basename, extname, join } from 'node:path';
import { required, UsageError, type CommandSpec } from './command.js';
import { Progress } from './progress.js';

const IMAGE_EXT = new Set(['.png', '.jpg', '.jpeg', '.tif', '.tiff']);

export const translateCommand: CommandSpec<Record<string, unknown>> = {
  name: 'translate',
  summary: 'translate photos with a trained generator (.pth from the PyTorch reference, or .safetensors)',
  usage: 'translate --checkpoint FILE --input PNG|DIR --out DIR [--eval] [--seed N]',
  options: {
    checkpoint: { type: 'string', arg: 'FILE|DIR', description: 'generator weights: latest_net_G.pth (reference), a .safetensors file, or a checkpoint folder of ours' },
    input: { type: 'string', arg: 'PNG|DIR', description: 'one image, or a folder of images' },
    out: { type: 'string', arg: 'DIR', description: 'output folder; one 8-bit PNG per input, named like the input' },
    eval: { type: 'boolean', description: "eval mode as the reference's --eval: running BatchNorm statistics, no dropout" },
    seed: { type: 'number', description: 'dropout seed for the default (non-eval) mode', default: 0 },
    pad: { type: 'boolean', description: 'pad inputs whose sides are not multiples of 2^numDowns (reflection), then crop back' },
    'no-dropout': { type: 'boolean', description: 'the checkpoint was trained with --no-dropout (the file cannot tell)' },
    'aligned-a': { type: 'boolean', description: 'inputs are aligned A|B images: translate the left half' },
  },
  epilog: 'Pixels are written as the reference\'s tensor2im: (y + 1) / 2 * 255, truncated; gray PNGs when the generator has 1 output channel.',
  async run(opts) {
    const checkpoint = required(opts, 'checkpoint', 'translate');
    const input = required(opts, 'input', 'translate');
    const out = required(opts, 'out', 'translate');
    const { loadCheckpoint } = await import('../gan/checkpoint_node.js');
    const { readImage, writePng } = await import('../data/image_node.js');
    const { cropImage } = await import('../data/image.js');
    const files = (await stat(input)).isDirectory()
      ? (await readdir(input)).filter((f) => IMAGE_EXT.has(extname(f).toLowerCase())).sort().map((f) => join(input, f))
      : [input];
    if (files.length === 0) throw new UsageError(`translate: no images (${[...IMAGE_EXT].join(', ')}) in ${input}`);
    const isFile = /\.(pth|pt|safetensors|bin)$/i.test(checkpoint);
    const model = await loadCheckpoint(isFile ? { G: checkpoint } : checkpoint, { discriminator: false, dropout: opts['no-dropout'] ? false : undefined });
    await mkdir(out, { recursive: true });
    const cIn = model.config.generator.inputChannels as 1 | 3;
    const bar = new Progress('translate', files.length, 'img');
    for (const f of files) {
      let im = await readImage(f, cIn);
      if (opts['aligned-a']) im = cropImage(im, 0, 0, Math.floor(im.width / 2), im.height);
      const y = await model.translate(im, { eval: Boolean(opts.eval), seed: opts.seed as number, pad: Boolean(opts.pad) });
      await writePng(join(out, `${basename(f, extname(f))}.png`), y);
      bar.tick();
    }
    model.destroy();
    console.log(`wrote ${files.length} image(s) to ${out}`);
  },
};
