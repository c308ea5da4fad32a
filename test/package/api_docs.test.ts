// The generated API reference (docs/api, `npm run docs`: TypeDoc + scripts/typedoc-categories.mjs) documents
// every export of both entries, and an app developer meets the model and the metrics before the kernels.
import { describe, it, expect } from 'vitest';
import { readFileSync } from 'node:fs';
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
