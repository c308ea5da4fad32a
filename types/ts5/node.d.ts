// TypeScript 5.x entry for pix2pix-webgpu/node: see ./index.d.ts.
/// <reference types="@webgpu/types" />
export * from '../../dist/node.js';
