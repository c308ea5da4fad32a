#!/usr/bin/env node
// pix2pix-webgpu command line. Subcommands are added by their issues.
console.error('pix2pix-webgpu: no subcommands yet');
process.exit(1);
