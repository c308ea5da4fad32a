// The CLI's defaults are the library's: the help text and the parsed options of an empty command line
// come from PIX2PIX_DEFAULTS and EVALUATION_DEFAULTS, so a default changes in one line everywhere.
import { describe, expect, it } from 'vitest';
import { formatHelp, parseCommand, type CommandSpec } from '../../src/cli/command.js';
import { trainCommand, trainOptionsFromFlags, type TrainFlags } from '../../src/cli/cmd_train.js';
import { evaluateCommand } from '../../src/cli/cmd_misc.js';
import { PIX2PIX_DEFAULTS, resolvePix2PixOptions } from '../../src/gan/options.js';
import { EVALUATION_DEFAULTS, SSIM_MODES } from '../../src/metrics/defaults.js';

/** `--flag`'s "default X" as the help prints it. */
function helpDefault(spec: CommandSpec<never>, flag: string): string | undefined {
  const line = formatHelp(spec).split('\n').find((l) => l.trimStart().startsWith(`--${flag} `));
  if (line === undefined) throw new Error(`no --${flag} in ${spec.name} --help`);
  return /default ([^;)]+)/.exec(line)?.[1];
}

const TRAIN_FLAGS = {
  netG: 'netG',
  input_nc: 'inputChannels',
  output_nc: 'outputChannels',
  ngf: 'ngf',
  ndf: 'ndf',
  n_layers_D: 'nLayersD',
  norm: 'norm',
  norm_groups: 'normGroups',
  gan_mode: 'ganMode',
  lambda_L1: 'lambdaL1',
  lr: 'lr',
  beta1: 'beta1',
  n_epochs: 'nEpochs',
  n_epochs_decay: 'nEpochsDecay',
  batch_size: 'batchSize',
  seed: 'seed',
} as const satisfies Record<string, keyof typeof PIX2PIX_DEFAULTS>;

describe('CLI defaults', () => {
  it.each(Object.entries(TRAIN_FLAGS))('train --help shows --%s default = PIX2PIX_DEFAULTS.%s', (flag, key) => {
    expect(helpDefault(trainCommand as CommandSpec<never>, flag)).toBe(String(PIX2PIX_DEFAULTS[key]));
  });

  it('train with no model flags resolves to the model defaults', () => {
    const { opts } = parseCommand(trainCommand as CommandSpec<never>, []);
    const { model } = trainOptionsFromFlags(opts as TrainFlags);
    expect(resolvePix2PixOptions(model)).toEqual(resolvePix2PixOptions({}));
  });

  it("train --norm group takes --norm_groups (default PIX2PIX_DEFAULTS.normGroups); other norms refuse it", () => {
    const resolved = (argv: string[]) => resolvePix2PixOptions(trainOptionsFromFlags(parseCommand(trainCommand as CommandSpec<never>, argv).opts as TrainFlags).model);
    expect(resolved(['--norm', 'group', '--norm_groups', '4']).generator).toMatchObject({ norm: 'group', normGroups: 4 });
    expect(resolved(['--norm', 'group']).discriminator).toMatchObject({ norm: 'group', normGroups: PIX2PIX_DEFAULTS.normGroups });
    expect(resolved(['--norm', 'instance']).generator).not.toHaveProperty('normGroups');
    // An explicit group count with another norm would be silently ignored: refused, naming both flags.
    expect(() => resolved(['--norm', 'instance', '--norm_groups', '4'])).toThrow(/^--norm_groups 4 applies only to --norm group, got --norm instance$/);
    expect(() => resolved(['--norm_groups', '4'])).toThrow(`--norm_groups 4 applies only to --norm group, got --norm ${PIX2PIX_DEFAULTS.norm}`);
    expect(() => parseCommand(trainCommand as CommandSpec<never>, ['--norm_groups', '0'])).toThrow(/--norm_groups must be an integer >= 1, got 0/);
  });

  it('evaluate --help shows the SSIM mode default and choices from EVALUATION_DEFAULTS', () => {
    const spec = evaluateCommand as unknown as CommandSpec<never>;
    expect(helpDefault(spec, 'ssim_mode')).toBe(EVALUATION_DEFAULTS.ssimMode);
    expect(formatHelp(spec)).toContain(`[--ssim_mode ${SSIM_MODES.join('|')}]`);
    expect(parseCommand(spec, []).opts.ssim_mode).toBe(EVALUATION_DEFAULTS.ssimMode);
  });
});
