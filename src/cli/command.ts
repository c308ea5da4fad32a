/**
 * A tiny declarative command layer over node:util parseArgs: every subcommand declares its options once,
 * and `--help` text, parsing, defaults and type checks all come from that declaration.
 */
import { parseArgs } from 'node:util';

export interface OptionSpec {
  type: 'string' | 'boolean' | 'number';
  description: string;
  default?: string | number | boolean;
  /** Placeholder in help, e.g. DIR. */
  arg?: string;
  short?: string;
  choices?: readonly string[];
}

export interface CommandSpec<O = Record<string, unknown>> {
  name: string;
  summary: string;
  usage: string;
  options: Record<string, OptionSpec>;
  /** Extra help text (examples). */
  epilog?: string;
  run(opts: O, positionals: string[]): Promise<void>;
}

/** Error for bad command-line input: printed as one line, exit code 2. */
export class UsageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'UsageError';
  }
}

export const COMMON_OPTIONS: Record<string, OptionSpec> = {
  help: { type: 'boolean', description: 'show this help', short: 'h' },
  verbose: { type: 'boolean', description: 'print stack traces on errors' },
};

export function formatHelp(spec: CommandSpec<never>, bin = 'pix2pix-webgpu'): string {
  const all = { ...spec.options, ...COMMON_OPTIONS };
  const rows = Object.entries(all).map(([name, o]) => {
    const flag = `${o.short ? `-${o.short}, ` : ''}--${name}${o.type === 'boolean' ? '' : ` ${o.arg ?? (o.type === 'number' ? 'N' : 'VALUE')}`}`;
    const extra = [o.choices ? `one of ${o.choices.join('|')}` : '', o.default !== undefined ? `default ${o.default}` : ''].filter(Boolean).join('; ');
    return [flag, `${o.description}${extra ? ` (${extra})` : ''}`];
  });
  const width = Math.min(34, Math.max(...rows.map((r) => r[0].length)) + 2);
  const lines = rows.map(([f, d]) => `  ${f.padEnd(width)}${d}`);
  return [`${bin} ${spec.name}: ${spec.summary}`, '', `Usage: ${bin} ${spec.usage}`, '', 'Options:', ...lines, ...(spec.epilog ? ['', spec.epilog] : [])].join('\n');
}

/** Parse argv for a command: converts numbers, applies defaults, rejects unknown flags and bad choices. */
export function parseCommand(spec: CommandSpec<never>, argv: string[]): { opts: Record<string, unknown>; positionals: string[] } {
  const all = { ...spec.options, ...COMMON_OPTIONS };
  const options: Record<string, { type: 'string' | 'boolean'; short?: string }> = {};
  for (const [name, o] of Object.entries(all)) options[name] = { type: o.type === 'boolean' ? 'boolean' : 'string', ...(o.short ? { short: o.short } : {}) };
  let parsed: ReturnType<typeof parseArgs>;
  try {
    parsed = parseArgs({ args: argv, options, allowPositionals: true, strict: true });
  } catch (e) {
    throw new UsageError(`${spec.name}: ${(e as Error).message.split('\n')[0]} (see ${spec.name} --help)`);
  }
  const opts: Record<string, unknown> = {};
  for (const [name, o] of Object.entries(all)) {
    const raw = (parsed.values as Record<string, unknown>)[name];
    if (raw === undefined) {
      if (o.default !== undefined) opts[name] = o.default;
      continue;
    }
    if (o.type === 'number') {
      const n = Number(raw);
      if (!Number.isFinite(n)) throw new UsageError(`${spec.name}: --${name} expects a number, got '${raw}'`);
      opts[name] = n;
    } else opts[name] = raw;
    if (o.choices && !o.choices.includes(String(opts[name]))) {
      throw new UsageError(`${spec.name}: --${name} must be one of ${o.choices.join(', ')}, got '${raw}'`);
    }
  }
  return { opts, positionals: parsed.positionals };
}

/** Require a string option, naming it when missing. */
export function required(opts: Record<string, unknown>, name: string, command: string): string {
  const v = opts[name];
  if (typeof v !== 'string' || v === '') throw new UsageError(`${command}: --${name} is required (see ${command} --help)`);
  return v;
}

/** Parse "512x1024" (height x width) into numbers. */
export function parseSize(s: string, what = '--size'): { height: number; width: number } {
  const m = /^(\d+)x(\d+)$/.exec(s.trim());
  if (!m) throw new UsageError(`${what} expects HEIGHTxWIDTH such as 512x1024, got '${s}'`);
  return { height: Number(m[1]), width: Number(m[2]) };
}
