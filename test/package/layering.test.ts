// The folder layering that docs/DESIGN.md states, checked against every relative import in src/
// (static and dynamic), so the document and the code cannot drift apart silently.
import { describe, expect, it } from 'vitest';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, normalize, relative, sep } from 'node:path';

const SRC = join(__dirname, '..', '..', 'src');

// Which folders each folder may import from (itself always allowed). Mirrors docs/DESIGN.md.
const ALLOWED: Record<string, string[]> = {
  runtime: [],
  kernels: ['runtime'],
  io: ['runtime'],
  data: ['runtime', 'kernels', 'io'],
  layers: ['runtime', 'kernels'],
  metrics: ['runtime', 'kernels', 'io', 'data'],
  gan: ['runtime', 'kernels', 'layers', 'io', 'data'],
  train: ['runtime', 'kernels', 'layers', 'io', 'data', 'gan'],
  study: ['runtime', 'kernels', 'layers', 'io', 'data', 'gan', 'train', 'metrics'],
  cli: ['runtime', 'kernels', 'layers', 'io', 'data', 'gan', 'train', 'metrics', 'study'],
};

function sourceFiles(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) return sourceFiles(path);
    return path.endsWith('.ts') ? [path] : [];
  });
}

function topFolder(path: string): string | undefined {
  const parts = relative(SRC, path).split(sep);
  return parts.length > 1 ? parts[0] : undefined;
}

describe('layering', () => {
  it('every folder in src/ is in the table', () => {
    const folders = readdirSync(SRC).filter((name) => statSync(join(SRC, name)).isDirectory());
    expect(folders.sort()).toEqual(Object.keys(ALLOWED).sort());
  });

  it('no relative import runs against the layering', () => {
    const violations: string[] = [];
    for (const file of sourceFiles(SRC)) {
      const from = topFolder(file);
      if (from === undefined) continue; // the entry points (index.ts, node.ts, selftest.ts) may use any folder
      const text = readFileSync(file, 'utf8');
      for (const match of text.matchAll(/(?:from |import\()'(\.\.?\/[^']+)'/g)) {
        const target = normalize(join(dirname(file), match[1]!));
        if (!target.startsWith(SRC + sep)) continue; // shaders, package.json
        const to = topFolder(target);
        if (to === undefined || to === from) continue;
        if (!ALLOWED[from]!.includes(to)) violations.push(`${relative(SRC, file)} imports ${match[1]} (${from} → ${to})`);
      }
    }
    expect(violations).toEqual([]);
  });

  it('outside the CLI, only files named *_node.ts import Node-only modules', () => {
    const offenders = sourceFiles(SRC)
      .filter((file) => !file.endsWith('_node.ts') && topFolder(file) !== 'cli' && relative(SRC, file) !== 'node.ts')
      .filter((file) => /^import (?!type )[^;]*from '(node:[^']*|fs|path|os|webgpu|sharp|puppeteer-core)'/m.test(readFileSync(file, 'utf8')))
      .map((file) => relative(SRC, file));
    expect(offenders).toEqual([]);
  });
});
