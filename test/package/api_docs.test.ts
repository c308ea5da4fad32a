// The generated API reference (docs/api, `npm run docs`: TypeDoc + scripts/typedoc-categories.mjs) documents
// every export of both entries, and an app developer meets the model and the metrics before the kernels.
import { describe, it, expect } from 'vitest';
import { readFileSync, readdirSync } from 'node:fs';
import { resolve } from 'node:path';
import ts from 'typescript';

const REPO = resolve(import.meta.dirname, '../..');

function exportedNames(entry: string): string[] {
  const file = resolve(REPO, entry);
  const program = ts.createProgram([file], {
    target: ts.ScriptTarget.ES2022,
    module: ts.ModuleKind.ESNext,
    moduleResolution: ts.ModuleResolutionKind.Bundler,
    noEmit: true,
    skipLibCheck: true,
    types: [],
  });
  const checker = program.getTypeChecker();
  const symbol = checker.getSymbolAtLocation(program.getSourceFile(file)!)!;
  return checker.getExportsOfModule(symbol).map((s) => s.getName());
}

/** `### Name` headings of a generated page, with markdown's escaping undone. */
function headings(page: string, level: string): string[] {
  return [...page.matchAll(new RegExp(`^${level} (.+)$`, 'gm'))].map((m) => m[1]!.replace(/\\(.)/g, '$1').replace(/\(\)$/, ''));
}

describe('API reference (docs/api)', () => {
  it.each([
    ['src/index.ts', 'docs/api/pix2pix-webgpu.md'],
    ['src/node.ts', 'docs/api/pix2pix-webgpu/node.md'],
  ])('documents every export of %s (if not: npm run docs)', (entry, pagePath) => {
    const page = readFileSync(resolve(REPO, pagePath), 'utf8');
    const documented = new Set([...headings(page, '###'), ...headings(page, '##')]);
    const exported = exportedNames(entry);
    expect(exported.length).toBeGreaterThan(100);
    expect(exported.filter((n) => !documented.has(n))).toEqual([]);
  });

  it("exports the types of the model's checkpoint arguments (a caller can name what fromStateDict and load take)", () => {
    expect(exportedNames('src/index.ts')).toEqual(expect.arrayContaining(['CheckpointSources', 'CheckpointInput', 'NamedStateSource', 'StateSource', 'Pix2PixCheckpoint']));
  });

  it('exports every error class the library throws: browser-safe ones from both entries, Node-only ones from the Node entry', () => {
    // Every `export class X extends <an Error class>` in src/ outside the CLI (its UsageError is the CLI's own),
    // found by following the extends chain, so a new error class cannot be left out of the entries unnoticed.
    const files = (readdirSync(resolve(REPO, 'src'), { recursive: true }) as string[]).filter((f) => f.endsWith('.ts') && !f.startsWith('cli'));
    const base = new Map<string, { extends: string; file: string }>();
    for (const f of files) {
      for (const m of readFileSync(resolve(REPO, 'src', f), 'utf8').matchAll(/^export class (\w+) extends (\w+)/gm)) base.set(m[1]!, { extends: m[2]!, file: f });
    }
    const isError = (name: string): boolean => name === 'Error' || (base.has(name) && isError(base.get(name)!.extends));
    const errors = [...base].filter(([name]) => isError(name));
    expect(errors.map(([name]) => name)).toEqual(expect.arrayContaining(['Pix2PixError', 'FileFormatError', 'StudyTrialsFailedError']));
    const node = new Set(exportedNames('src/node.ts'));
    const index = new Set(exportedNames('src/index.ts'));
    expect(errors.filter(([name]) => !node.has(name)).map(([name, e]) => `${name} (src/${e.file})`)).toEqual([]);
    expect(errors.filter(([name, e]) => !e.file.endsWith('_node.ts') && !index.has(name)).map(([name]) => name)).toEqual([]);
  });

  it('groups the root entry with the model and the metrics first and the kernels last', () => {
    const page = readFileSync(resolve(REPO, 'docs/api/pix2pix-webgpu.md'), 'utf8');
    const categories = headings(page, '##');
    expect(categories.slice(0, 2)).toEqual(['Model', 'Metrics']);
    expect(categories.at(-1)).toBe('Networks, layers and kernels');
    const modelSection = page.slice(page.indexOf('\n## Model\n'), page.indexOf('\n## Metrics\n'));
    expect(headings(modelSection, '###')[0]).toBe('Pix2Pix');
    expect(page.indexOf('### computeSsim')).toBeLessThan(page.indexOf('### conv2dForward'));
  });
});
