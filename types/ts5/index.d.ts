// TypeScript 5.x entry (package.json "types@<6"): the DOM lib of TypeScript < 6 lacks WebGPU, so the GPU*
// types come from @webgpu/types. TypeScript 6+ has them in its DOM lib and must not load both (duplicates).
/// <reference types="@webgpu/types" />
export * from '../../dist/index.js';
