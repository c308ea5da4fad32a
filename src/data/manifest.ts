/**
 * Dataset manifests: one row per image pair with its animal, fur, bed, pose and split, as CSV or JSON.
 * Browser-safe (parsing and formatting only; reading files is in dataset_node.ts).
 *
 * CSV: a header row naming the columns (any order; unknown columns are ignored), RFC 4180 quoting.
 * JSON: an array of rows, or an object with an `entries` array (what synthesizeDataset writes).
 * `file` is the aligned A|B image, relative to the manifest's folder; paired folders use `a` and `b`.
 * Column names are case-insensitive and accept common aliases ({@link MANIFEST_ALIASES}: `a_file`,
 * `b_file`, `animal_id`, `fur_colour`, `bed_color`, ...). `fur` and `bed` must be white or black (any case).
 */
import { FileFormatError } from '../runtime/errors.js';

export interface ManifestEntry {
  /** Aligned A|B image, relative to the manifest's folder (e.g. "train/m007_p2.png"). */
  file?: string;
  /** Separate A and B images, relative to the manifest's folder (instead of `file`). */
  a?: string;
  b?: string;
  split?: string;
  animal?: string;
  fur?: string;
  bed?: string;
  pose?: number;
}

export const MANIFEST_COLUMNS = ['file', 'split', 'animal', 'fur', 'bed', 'pose'] as const;

/** Other spellings of the manifest's columns (after lower-casing; spaces and dashes read as '_'). */
export const MANIFEST_ALIASES: Readonly<Record<string, string>> = {
  path: 'file',
  image: 'file',
  ab_file: 'file',
  a_file: 'a',
  a_path: 'a',
  input: 'a',
  photo: 'a',
  b_file: 'b',
  b_path: 'b',
  target: 'b',
  xray: 'b',
  animal_id: 'animal',
  mouse: 'animal',
  mouse_id: 'animal',
  fur_colour: 'fur',
  fur_color: 'fur',
  colour: 'fur',
  color: 'fur',
  bed_colour: 'bed',
  bed_color: 'bed',
  phase: 'split',
  pose_id: 'pose',
};

/** The canonical column name for a header or JSON key (see {@link MANIFEST_ALIASES}). */
export function canonicalColumn(name: string): string {
  const k = name.trim().toLowerCase().replace(/[\s-]+/g, '_');
  return MANIFEST_ALIASES[k] ?? k;
}

function csvField(v: unknown): string {
  const s = v === undefined || v === null ? '' : String(v);
  return /[",\r\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
}

/** Format entries as CSV with the standard columns (plus `a`, `b` when any entry has them). */
export function formatManifestCsv(entries: readonly ManifestEntry[]): string {
  const cols: string[] = [...MANIFEST_COLUMNS];
  if (entries.some((e) => e.a !== undefined || e.b !== undefined)) cols.push('a', 'b');
  const lines = [cols.join(',')];
  for (const e of entries) lines.push(cols.map((c) => csvField((e as Record<string, unknown>)[c])).join(','));
  return lines.join('\n') + '\n';
}

/** Split CSV text into rows of fields (RFC 4180: quoted fields, doubled quotes, CRLF or LF). */
export function parseCsvRows(text: string, file = 'CSV'): string[][] {
  const rows: string[][] = [];
  let row: string[] = [];
  let field = '';
  let quoted = false;
  let i = 0;
  if (text.charCodeAt(0) === 0xfeff) i = 1; // BOM
  for (; i < text.length; i++) {
    const ch = text[i];
    if (quoted) {
      if (ch === '"') {
        if (text[i + 1] === '"') {
          field += '"';
          i++;
        } else quoted = false;
      } else field += ch;
    } else if (ch === '"' && field === '') quoted = true;
    else if (ch === ',') {
      row.push(field);
      field = '';
    } else if (ch === '\n' || ch === '\r') {
      if (ch === '\r' && text[i + 1] === '\n') i++;
      row.push(field);
      field = '';
      if (row.length > 1 || row[0] !== '') rows.push(row);
      row = [];
    } else field += ch;
  }
  if (quoted) throw new FileFormatError(file, 'unterminated quoted field');
  row.push(field);
  if (row.length > 1 || row[0] !== '') rows.push(row);
  return rows;
}

function toEntry(raw: Record<string, unknown>, file: string, where: string): ManifestEntry {
  const canon: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(raw)) {
    const c = canonicalColumn(k);
    if (c in canon && canon[c] !== undefined && canon[c] !== '' && v !== undefined && v !== '' && String(v).trim() !== String(canon[c]).trim()) {
      throw new FileFormatError(file, `${where}: "${k}" gives ${c} "${v}", but another column already gave "${canon[c]}"`);
    }
    if (!(c in canon) || canon[c] === undefined || canon[c] === '') canon[c] = v;
  }
  const str = (k: string): string | undefined => {
    const v = canon[k];
    if (v === undefined || v === null || v === '') return undefined;
    return String(v).trim();
  };
  const e: ManifestEntry = {};
  for (const k of ['file', 'a', 'b', 'split', 'animal', 'fur', 'bed'] as const) {
    const v = str(k);
    if (v !== undefined) e[k] = v;
  }
  for (const k of ['fur', 'bed'] as const) {
    const v = e[k];
    if (v === undefined) continue;
    const l = v.toLowerCase();
    if (l !== 'white' && l !== 'black') throw new FileFormatError(file, `${where}: ${k} must be "white" or "black", got "${v}"`);
    e[k] = l;
  }
  const pose = str('pose');
  if (pose !== undefined) {
    const n = Number(pose);
    if (!Number.isFinite(n)) throw new FileFormatError(file, `${where}: pose must be a number, got "${pose}"`);
    e.pose = n;
  }
  if (e.file === undefined && (e.a === undefined || e.b === undefined)) {
    throw new FileFormatError(file, `${where}: needs a "file" (aligned A|B image) or both "a" and "b" ("a_file" and "b_file")`);
  }
  return e;
}

/** Parse manifest CSV text. `file` names the manifest in errors. */
export function parseManifestCsv(text: string, file = 'manifest.csv'): ManifestEntry[] {
  const rows = parseCsvRows(text, file);
  if (rows.length === 0) throw new FileFormatError(file, 'empty manifest (no header row)');
  const header = rows[0].map((h) => h.trim().toLowerCase());
  const canon = header.map(canonicalColumn);
  if (!canon.includes('file') && !(canon.includes('a') && canon.includes('b'))) {
    throw new FileFormatError(file, `header must name a "file" column (or "a" and "b", or "a_file" and "b_file"), got: ${header.join(', ')}`);
  }
  return rows.slice(1).map((r, i) => {
    if (r.length !== header.length) {
      throw new FileFormatError(file, `row ${i + 2}: expected ${header.length} fields (${header.join(', ')}), got ${r.length}`);
    }
    const raw: Record<string, unknown> = {};
    header.forEach((h, j) => (raw[h] = r[j]));
    return toEntry(raw, file, `row ${i + 2}`);
  });
}

/** Parse manifest JSON text: an array of rows or `{ entries: [...] }`. */
export function parseManifestJson(text: string, file = 'manifest.json'): ManifestEntry[] {
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch (e) {
    throw new FileFormatError(file, `invalid JSON: ${(e as Error).message}`);
  }
  const list = Array.isArray(v) ? v : (v as { entries?: unknown })?.entries;
  if (!Array.isArray(list)) throw new FileFormatError(file, 'expected an array of entries or an object with an "entries" array');
  return list.map((r, i) => {
    if (typeof r !== 'object' || r === null) throw new FileFormatError(file, `entry ${i}: expected an object, got ${JSON.stringify(r)}`);
    return toEntry(r as Record<string, unknown>, file, `entry ${i}`);
  });
}

/** Parse a manifest by its name: `.json` as JSON, anything else as CSV. */
export function parseManifest(text: string, file: string): ManifestEntry[] {
  return file.toLowerCase().endsWith('.json') ? parseManifestJson(text, file) : parseManifestCsv(text, file);
}
