// WGSL sources are imported as strings (tsup text loader; vitest plugin in vitest.config.ts).
declare module '*.wgsl' {
  const source: string;
  export default source;
}
