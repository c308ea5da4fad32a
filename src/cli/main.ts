#!/usr/bin/env node
/**
 * pix2pix-webgpu command line: demo, synth, train, translate, evaluate, study, bench.
 * Errors are one clear line (stack with --verbose) and a non-zero exit code.
 */
import { COMMANDS } from './commands.js';
import { closestFlag, formatHelp, parseCommand, UsageError, type CommandSpec } from './command.js';

const BIN = 'pix2pix-webgpu';

function topHelp(): string {
  const width = Math.max(...COMMANDS.map((c) => c.name.length)) + 2;
  return [
    `${BIN}: train and run pix2pix on WebGPU, and score the results.`,
    '',
    `Usage: ${BIN} <command> [options]     (${BIN} <command> --help for its options)`,
    '',
    'Commands:',
    ...COMMANDS.map((c) => `  ${c.name.padEnd(width)}${c.summary}`),
  ].join('\n');
}

async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (!name || name === '--help' || name === '-h' || name === 'help') {
    console.log(topHelp());
    return name ? 0 : 2;
  }
  if (name === '--version') {
    console.log(process.env.npm_package_version ?? '0.1.0');
    return 0;
  }
  const cmd = COMMANDS.find((c) => c.name === name) as CommandSpec<never> | undefined;
  if (!cmd) {
    const near = closestFlag(name, COMMANDS.map((c) => c.name));
    console.error(`${BIN}: unknown command '${name}'${near ? `; did you mean '${near}'?` : '.'} Commands: ${COMMANDS.map((c) => c.name).join(', ')}`);
    return 2;
  }
  const verbose = rest.includes('--verbose');
  try {
    const { opts, positionals } = parseCommand(cmd, rest);
    if (opts.help) {
      console.log(formatHelp(cmd, BIN));
      return 0;
    }
    await (cmd.run as (o: Record<string, unknown>, p: string[]) => Promise<void>)(opts, positionals);
    return 0;
  } catch (e) {
    const err = e as Error;
    if (verbose) console.error(err.stack ?? String(err));
    else {
      // Some messages already start with the command's name ("train: ..."): do not print it twice.
      const message = String(err.message ?? err).replace(new RegExp(`^${name}: `), '');
      console.error(`${BIN} ${name}: ${message}${err instanceof UsageError ? '' : ' (--verbose for details)'}`);
    }
    return err instanceof UsageError ? 2 : 1;
  }
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (e) => {
    console.error(String(e));
    process.exit(1);
  },
);
