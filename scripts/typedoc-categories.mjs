// TypeDoc plugin: file each top-level export of the API reference under a category chosen by the folder it
// is declared in, so an app developer meets Pix2Pix and the metrics before the kernels, without a
// @category tag on every declaration. The order of the categories is typedoc.json's "categoryOrder".
import ts from 'typescript';
import { Comment, CommentTag, Converter, ReflectionKind } from 'typedoc';

/** First match wins: [path fragment under src/, category]. */
const CATEGORIES = [
  ['runtime/errors.ts', 'Errors'],
  ['runtime/optional_deps.ts', 'Errors'],
  ['gan/checkpoint', 'Checkpoints and files'],
  ['gan/state_dict.ts', 'Checkpoints and files'],
  ['gan/networks.ts', 'Networks, layers and kernels'],
  ['gan/', 'Model'],
  ['train/', 'Model'],
  ['metrics/', 'Metrics'],
  ['data/', 'Data'],
  ['io/', 'Checkpoints and files'],
  ['study/', 'Study'],
  ['runtime/', 'Runtime'],
  ['selftest.ts', 'Runtime'],
  ['kernels/', 'Networks, layers and kernels'],
  ['layers/', 'Networks, layers and kernels'],
];

export function load(app) {
  // The declaring file is known while converting (sources are off in typedoc.json: line numbers would churn).
  const declaredIn = new Map();
  app.converter.on(Converter.EVENT_CREATE_DECLARATION, (context, reflection) => {
    if (!reflection.parent?.kindOf(ReflectionKind.Module)) return;
    let symbol = context.getSymbolFromReflection(reflection);
    if (symbol && symbol.flags & ts.SymbolFlags.Alias) symbol = context.checker.getAliasedSymbol(symbol);
    const file = symbol?.declarations?.[0]?.getSourceFile().fileName;
    if (file) declaredIn.set(reflection, file.replaceAll('\\', '/'));
  });
  app.converter.on(Converter.EVENT_RESOLVE_BEGIN, (context) => {
    for (const module of context.project.getChildrenByKind(ReflectionKind.Module)) {
      for (const child of module.children ?? []) {
        if (child.comment?.getTag('@category')) continue;
        const file = declaredIn.get(child) ?? '';
        const at = file.lastIndexOf('/src/');
        const rel = at >= 0 ? file.slice(at + 5) : file;
        // Error classes live beside the code that throws them; readers look for them together.
        const isError = child.kindOf(ReflectionKind.Class) && child.name.endsWith('Error');
        const category = isError ? 'Errors' : CATEGORIES.find(([fragment]) => rel.startsWith(fragment))?.[1];
        if (!category) continue;
        child.comment ??= new Comment();
        child.comment.blockTags.push(new CommentTag('@category', [{ kind: 'text', text: category }]));
      }
    }
  });
}
