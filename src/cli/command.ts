/**
 * A tiny declarative command layer: every subcommand declares its options once, and `--help` text, parsing,
 * defaults, type and range checks all come from that declaration. Our own parser (not node:util parseArgs) so
 * that negative numbers are values (`--lr -5` is a range error, not "argument is ambiguous"), an unknown flag gets
 * the closest known one suggested, and `-` and `_` are interchangeable in flag names (the reference spells its
 * flags with underscores: `--no_dropout` and `--no-dropout` are the same flag everywhere).
 */
import { statSync } from 'node:fs';

/**
 * What an option's value is. Numbers are checked before any work: 'number' any finite number, 'positive' a
 * finite number > 0, 'int' an integer, 'count' an integer >= 0 (epochs, sizes, seeds). `min`/`max` narrow further.
 */
export type OptionKind = 'string' | 'boolean' | 'number' | 'positive' | 'int' | 'count';

export interface OptionSpec {
  type: OptionKind;
  description: string;
  default?: string | number | boolean;
  /** Placeholder in help, e.g. DIR. */
  arg?: string;
  short?: string;
  choices?: readonly string[];
  /** Inclusive bounds for the numeric kinds. */
  min?: number;
  max?: number;
  /** A path that must already exist (checked at parse time, before any work, naming the flag). */
  exists?: 'file' | 'folder' | 'path';
}

/** The value type an option declaration yields: boolean, string (or its choices), or number. */
type ValueOf<S extends OptionSpec> = S['type'] extends 'boolean'
  ? boolean
  : S['type'] extends 'string'
    ? S extends { choices: readonly (infer C)[] }
      ? C
      : string
    : number;

/** Parsed options typed from their declarations: options with a default (and booleans) are always set. */
export type OptionsOf<O extends Record<string, OptionSpec>> = {
  [K in keyof O]: O[K] extends { default: string | number | boolean } | { type: 'boolean' } ? ValueOf<O[K]> : ValueOf<O[K]> | undefined;
} & { help: boolean; verbose: boolean };

export interface CommandSpec<O = Record<string, unknown>> {
  name: string;
  summary: string;
  usage: string;
  options: Record<string, OptionSpec>;
  /** Extra help text (examples). */
  epilog?: string;
  run(opts: O, positionals: string[]): Promise<void>;
}

/** Declare a command whose `run` receives options typed from `options` (no casts needed). */
export function defineCommand<const O extends Record<string, OptionSpec>>(
  spec: Omit<CommandSpec<OptionsOf<O>>, 'options'> & { options: O },
): CommandSpec<OptionsOf<O>> {
  return spec;
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

const NUMERIC_HINT: Record<OptionKind, string> = { string: 'VALUE', boolean: '', number: 'X', positive: 'X', int: 'N', count: 'N' };

export function formatHelp(spec: CommandSpec<never>, bin = 'pix2pix-webgpu'): string {
  const all = { ...spec.options, ...COMMON_OPTIONS };
  const rows = Object.entries(all).map(([name, o]) => {
    const flag = `${o.short ? `-${o.short}, ` : ''}--${name}${o.type === 'boolean' ? '' : ` ${o.arg ?? (o.type === 'string' ? 'VALUE' : 'N')}`}`;
    const extra = [o.choices ? `one of ${o.choices.join('|')}` : '', rangeText(o), o.default !== undefined ? `default ${o.default}` : ''].filter(Boolean).join('; ');
    return [flag, `${o.description}${extra ? ` (${extra})` : ''}`];
  });
  const width = Math.min(34, Math.max(...rows.map((r) => r[0].length)) + 2);
  const lines = rows.map(([f, d]) => `  ${f.padEnd(width)}${d}`);
  return [
    `${bin} ${spec.name}: ${spec.summary}`,
    '',
    `Usage: ${bin} ${spec.usage}`,
    '',
    'Options:',
    ...lines,
    '  (- and _ are interchangeable in flag names: --no-dropout is --no_dropout; --flag=VALUE also works)',
    ...(spec.epilog ? ['', spec.epilog] : []),
  ].join('\n');
}

/** "integer >= 1", "> 0", ... for help text; empty for strings and booleans. */
function rangeText(o: OptionSpec): string {
  if (o.type === 'string' || o.type === 'boolean' || o.choices) return '';
  const lo = o.min ?? (o.type === 'count' ? 0 : undefined);
  const parts = [o.type === 'int' || o.type === 'count' ? 'integer' : o.type === 'positive' ? 'number > 0' : ''];
  if (lo !== undefined) parts.push(`>= ${lo}`);
  if (o.max !== undefined) parts.push(`<= ${o.max}`);
  return parts.filter(Boolean).join(' ');
}

/** Flag spelling as compared: `-` and `_` are the same, case matters (the reference has `--lambda_L1`). */
const canon = (name: string) => name.replace(/-/g, '_');

/** Edit distance (case-insensitive) for "did you mean". */
function distance(a: string, b: string): number {
  a = a.toLowerCase();
  b = b.toLowerCase();
  const row = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    let prev = row[0];
    row[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const cur = row[j];
      row[j] = Math.min(row[j] + 1, row[j - 1] + 1, prev + (a[i - 1] === b[j - 1] ? 0 : 1));
      prev = cur;
    }
  }
  return row[b.length];
}

/** The known flag closest to an unknown one, if any is close enough to be a plausible typo. */
export function closestFlag(unknown: string, known: readonly string[]): string | undefined {
  const u = canon(unknown).toLowerCase();
  let best: string | undefined;
  let bestD = Infinity;
  for (const k of known) {
    const c = canon(k).toLowerCase();
    // A flag that contains the typed word (--epochs → --n_epochs) counts as close.
    const d = c === u ? 0 : c.includes(u) && u.length >= 3 ? 1 : distance(u, c);
    if (d < bestD) [best, bestD] = [k, d];
  }
  return best !== undefined && bestD <= Math.max(2, Math.floor(unknown.length / 3)) ? best : undefined;
}

const NUMBER_TEXT = /^[+-]?(\d+\.?\d*|\.\d+)(e[+-]?\d+)?$/i;

/** Convert and check one value against its declaration; errors name the flag. */
function convert(name: string, o: OptionSpec, raw: string): string | number {
  if (o.type === 'string') {
    if (o.choices && !o.choices.includes(raw)) throw new UsageError(`--${name} must be one of ${o.choices.join(', ')}, got '${raw}'`);
    return raw;
  }
  const n = NUMBER_TEXT.test(raw.trim()) ? Number(raw) : NaN;
  const integral = o.type === 'int' || o.type === 'count';
  if (!Number.isFinite(n)) throw new UsageError(`--${name} expects ${integral ? 'an integer' : 'a number'}, got '${raw}'`);
  if (integral && !Number.isInteger(n)) throw new UsageError(`--${name} expects an integer, got '${raw}'`);
  const lo = o.min ?? (o.type === 'count' ? 0 : undefined);
  if (o.type === 'positive' && !(n > 0)) throw new UsageError(`--${name} must be > 0, got ${raw}`);
  if (lo !== undefined && n < lo) throw new UsageError(`--${name} must be ${integral ? 'an integer ' : ''}>= ${lo}, got ${raw}`);
  if (o.max !== undefined && n > o.max) throw new UsageError(`--${name} must be <= ${o.max}, got ${raw}`);
  if (o.choices && !o.choices.includes(String(n))) throw new UsageError(`--${name} must be one of ${o.choices.join(', ')}, got '${raw}'`);
  return n;
}

/**
 * Parse argv for a command: resolves flag spellings, converts and range-checks numbers, applies defaults
 * (booleans default to false), rejects unknown flags with the closest known one. Messages do not repeat the
 * command name (main prints it).
 */
export function parseCommand(spec: CommandSpec<never>, argv: string[]): { opts: Record<string, unknown>; positionals: string[] } {
  const all: Record<string, OptionSpec> = { ...spec.options, ...COMMON_OPTIONS };
  const byCanon = new Map(Object.keys(all).map((k) => [canon(k), k]));
  const byShort = new Map(Object.entries(all).flatMap(([k, o]) => (o.short ? [[o.short, k] as const] : [])));
  const see = `(see ${spec.name} --help)`;
  const values: Record<string, string | boolean> = {};
  const positionals: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--') {
      positionals.push(...argv.slice(i + 1));
      break;
    }
    const isNegativeNumber = /^-(\d|\.\d)/.test(a);
    if (!a.startsWith('-') || a === '-' || isNegativeNumber) {
      positionals.push(a);
      continue;
    }
    let typed: string;
    let inline: string | undefined;
    if (a.startsWith('--')) {
      const eq = a.indexOf('=');
      typed = eq < 0 ? a.slice(2) : a.slice(2, eq);
      inline = eq < 0 ? undefined : a.slice(eq + 1);
    } else {
      typed = a.slice(1);
      if (!byShort.has(typed)) throw new UsageError(`unknown option ${a} ${see}`);
    }
    const name = a.startsWith('--') ? byCanon.get(canon(typed)) : byShort.get(typed);
    if (!name) {
      const near = closestFlag(typed, Object.keys(all));
      throw new UsageError(`unknown option --${typed}${near ? `; did you mean --${near}?` : ''} ${see}`);
    }
    const o = all[name];
    if (o.type === 'boolean') {
      if (inline !== undefined) throw new UsageError(`--${name} is a switch and takes no value, got '--${typed}=${inline}'`);
      values[name] = true;
      continue;
    }
    if (inline === undefined) {
      const next = argv[i + 1];
      // A value may start with '-' only when it is a number (--lr -5); a flag there means the value was forgotten.
      if (next === undefined || (next.startsWith('-') && next !== '-' && !/^-(\d|\.\d)/.test(next))) {
        throw new UsageError(`--${name} expects a value (${o.arg ?? (o.type === 'string' ? 'VALUE' : NUMERIC_HINT[o.type])})${next === undefined ? '' : `, got the flag ${next}`} ${see}`);
      }
      inline = next;
      i++;
    }
    values[name] = inline;
  }
  const opts: Record<string, unknown> = {};
  for (const [name, o] of Object.entries(all)) {
    const raw = values[name];
    if (raw === undefined) {
      if (o.default !== undefined) opts[name] = o.default;
      else if (o.type === 'boolean') opts[name] = false;
      continue;
    }
    opts[name] = typeof raw === 'boolean' ? raw : convert(name, o, raw);
  }
  if (!opts.help) {
    for (const [name, o] of Object.entries(all)) if (o.exists && typeof opts[name] === 'string') checkExists(name, o.exists, opts[name] as string);
  }
  if (positionals.length && !opts.help) throw new UsageError(`unexpected argument '${positionals[0]}' (options are written --name VALUE) ${see}`);
  return { opts, positionals };
}

/** A path option that must exist: a clear message naming the flag instead of a later bare ENOENT. */
function checkExists(name: string, kind: 'file' | 'folder' | 'path', path: string): void {
  let st;
  try {
    st = statSync(path);
  } catch {
    throw new UsageError(`--${name} ${path}: no such ${kind === 'path' ? 'file or folder' : kind}`);
  }
  if (kind === 'file' && st.isDirectory()) throw new UsageError(`--${name} ${path}: is a folder, expected a file`);
  if (kind === 'folder' && !st.isDirectory()) throw new UsageError(`--${name} ${path}: is a file, expected a folder`);
}

/** Require a string option, naming it when missing. */
export function required<T>(opts: T, name: keyof T & string, command: string): string {
  const v = opts[name];
  if (typeof v !== 'string' || v === '') throw new UsageError(`--${name} is required (see ${command} --help)`);
  return v;
}

/** Parse "512x1024" (height x width) into numbers. */
export function parseSize(s: string, what = '--size'): { height: number; width: number } {
  const m = /^(\d+)x(\d+)$/.exec(s.trim());
  if (!m || Number(m[1]) < 1 || Number(m[2]) < 1) throw new UsageError(`${what} expects HEIGHTxWIDTH such as 512x1024, got '${s}'`);
  return { height: Number(m[1]), width: Number(m[2]) };
}
