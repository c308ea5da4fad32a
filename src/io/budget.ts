/**
 * The resource budget of the file readers (pickle, zip, .pth tensors, safetensors, images). A file
 * is untrusted input: a few hundred bytes can describe a DAG that expands exponentially, a tensor
 * view that repeats one element a billion times, or a zip entry that inflates a thousandfold. Each
 * reader charges what the file makes it build against these limits and refuses the file, with a
 * FileFormatError naming the limit and how to raise it, before the memory is spent.
 *
 * The defaults fit every legitimate pix2pix / Inception checkpoint and image with a wide margin.
 * Raise a limit per call (`{ budget: { maxTensorBytes: ... } }` on the reader) or for the process
 * through the environment variable named in {@link BUDGET_ENV} (a plain integer). Browser-safe:
 * the environment is read only where `process.env` exists.
 */
import { ShapeError } from '../runtime/errors.js';

/** Limits on what reading one file may build. */
export interface ReadBudget {
  /**
   * Objects a pickle may make: values the unpickler pushes, and again the values met when its result
   * is flattened into named tensors, where an object shared by n references counts n times (so a
   * small DAG that would expand into a huge tree is refused, not expanded).
   */
  maxPickleObjects: number;
  /** Container nesting depth in a pickle (dicts, lists, tuples inside one another). */
  maxPickleDepth: number;
  /** Bytes that deflated zip entries may inflate to, all read entries together. */
  maxInflatedBytes: number;
  /** Bytes of all tensors materialised from one file together (as f32; unread tensors are free). */
  maxTensorBytes: number;
  /** Bytes by which a tensor view may exceed the storage it views (stride-0 expands, overlapping strides). */
  maxViewExpansionBytes: number;
  /** Bytes of a safetensors JSON header. */
  maxHeaderBytes: number;
  /** Pixels (width × height) of one decoded image. */
  maxImagePixels: number;
}

/** The default budget. */
export const DEFAULT_READ_BUDGET: Readonly<ReadBudget> = Object.freeze({
  maxPickleObjects: 1_000_000,
  maxPickleDepth: 100,
  maxInflatedBytes: 1024 ** 3,
  maxTensorBytes: 2 * 1024 ** 3,
  maxViewExpansionBytes: 16 * 1024 ** 2,
  maxHeaderBytes: 100_000_000,
  maxImagePixels: 64 * 1024 * 1024,
});

/** Environment variable that raises (or lowers) each limit for the whole process. */
export const BUDGET_ENV: Readonly<Record<keyof ReadBudget, string>> = Object.freeze({
  maxPickleObjects: 'PIX2PIX_MAX_PICKLE_OBJECTS',
  maxPickleDepth: 'PIX2PIX_MAX_PICKLE_DEPTH',
  maxInflatedBytes: 'PIX2PIX_MAX_INFLATED_BYTES',
  maxTensorBytes: 'PIX2PIX_MAX_TENSOR_BYTES',
  maxViewExpansionBytes: 'PIX2PIX_MAX_VIEW_EXPANSION_BYTES',
  maxHeaderBytes: 'PIX2PIX_MAX_HEADER_BYTES',
  maxImagePixels: 'PIX2PIX_MAX_IMAGE_PIXELS',
});

/**
 * The budget in force: `overrides` (per call) over the environment over the defaults.
 * Throws ShapeError for a limit that is not a positive integer.
 */
export function resolveBudget(overrides: Partial<ReadBudget> = {}): ReadBudget {
  const env = (globalThis as { process?: { env?: Record<string, string | undefined> } }).process?.env ?? {};
  const out = { ...DEFAULT_READ_BUDGET };
  for (const key of Object.keys(DEFAULT_READ_BUDGET) as (keyof ReadBudget)[]) {
    const fromEnv = env[BUDGET_ENV[key]];
    if (fromEnv !== undefined && fromEnv !== '') {
      const v = Number(fromEnv);
      if (!Number.isSafeInteger(v) || v <= 0) throw new ShapeError('read budget', `environment ${BUDGET_ENV[key]}`, 'a positive integer', JSON.stringify(fromEnv.slice(0, 40)));
      out[key] = v;
    }
    const given = overrides[key];
    if (given !== undefined) {
      if (!Number.isSafeInteger(given) || given <= 0) throw new ShapeError('read budget', key, 'a positive integer', given);
      out[key] = given;
    }
  }
  return out;
}

/** The tail of a refusal: which limit, its value, and how to raise it. */
export function overBudget(budget: ReadBudget, key: keyof ReadBudget): string {
  return `beyond the read budget ${key}=${budget[key]} (raise it with the reader option budget.${key} or the environment variable ${BUDGET_ENV[key]})`;
}

/** Options every file reader takes. */
export interface ReaderOptions {
  /** Limits that replace the defaults (and the environment) for this call. */
  budget?: Partial<ReadBudget>;
}
