/**
 * The Node-only packages (`webgpu`: Dawn, ~130 MB of native binaries; `sharp`: libvips) are optional peer
 * dependencies, so a browser app that installs this library downloads nothing native. Node code loads them
 * lazily through {@link importOptional}, which turns a missing package into one typed error naming the command.
 */
import { Pix2PixError } from './errors.js';

/** The one command that gives Node (library and CLI) everything it needs. */
export const NODE_INSTALL_COMMAND = 'npm install webgpu sharp';

/** The optional peer dependencies and what each is for. */
export const OPTIONAL_PACKAGES = {
  webgpu: 'Dawn, the WebGPU implementation for Node',
  sharp: 'PNG/JPEG/TIFF files in Node',
} as const;
export type OptionalPackage = keyof typeof OPTIONAL_PACKAGES;

/** An optional peer dependency that Node code needs is not installed (or its native part failed to load). */
export class MissingDependencyError extends Pix2PixError {
  constructor(
    op: string,
    readonly packageName: OptionalPackage,
    readonly reason: string,
  ) {
    super(
      op,
      `the \`${packageName}\` package (${OPTIONAL_PACKAGES[packageName]}) is ${reason}; ` +
        `install the Node dependencies with \`${NODE_INSTALL_COMMAND}\``,
    );
  }
}

/**
 * Import an optional peer dependency, or throw {@link MissingDependencyError}. The specifier is a variable
 * behind bundler-ignore hints so that bundling the browser entry neither resolves nor warns about it
 * (webpack: "Critical dependency: the request of a dependency is an expression").
 */
export async function importOptional<T>(op: string, packageName: OptionalPackage): Promise<T> {
  const specifier: string = packageName;
  try {
    return (await import(/* webpackIgnore: true */ /* @vite-ignore */ specifier)) as T;
  } catch (e) {
    const err = e as { code?: string; message?: string };
    const notInstalled =
      (err.code === 'ERR_MODULE_NOT_FOUND' || err.code === 'MODULE_NOT_FOUND') &&
      String(err.message).includes(`'${packageName}'`);
    const firstLine = String(err.message ?? e).split('\n')[0];
    throw new MissingDependencyError(op, packageName, notInstalled ? 'not installed' : `installed but failed to load (${firstLine})`);
  }
}
