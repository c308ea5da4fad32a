/** Node-only helpers (file I/O through sharp, checkpoints on disk). Re-exports the core. */
export * from './index.js';
