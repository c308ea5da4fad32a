import { defineCommand, UsageError } from './command.js';

/**
 * `serve`: the browser example page and the built package on http://127.0.0.1.
 *
 * The page (examples/browser/index.html) imports the library as a user's page would, from the package's
 * own dist/index.js, by the relative URL ../../dist/index.js. So the server exposes the package folder's
 * layout as it is: /examples/browser/ and /dist/ under one root. That root is the package folder found
 * from this module's own location, which is the repository in a clone and node_modules/pix2pix-webgpu in
 * an installed package; both hold dist/ and examples/browser/ side by side, so the same URL works.
 * Nothing else in the folder is served. 127.0.0.1 is a secure context (browsers expose navigator.gpu only
 * in those) and is not reachable from other machines.
 */
export const serveCommand = defineCommand({
  name: 'serve',
  summary: 'serve the browser example page (train and translate on WebGPU in your browser) on 127.0.0.1',
  usage: 'serve [--port N] [--files DIR]',
  options: {
    port: { type: 'number', description: 'port on 127.0.0.1 (0: any free port)', default: 8080 },
    files: { type: 'string', arg: 'DIR', description: 'also serve DIR at /files/, e.g. a checkpoint folder written by train, to load by URL on the page' },
  },
  epilog: [
    'Prints the page URL; open it in a browser with WebGPU (Chrome, Edge; Firefox and Safari with WebGPU enabled). Ctrl-C stops.',
    'Example: pix2pix-webgpu serve --files checkpoints   then load /files/latest_net_G.safetensors on the page.',
  ].join('\n'),
  async run(opts) {
    const port = opts.port;
    if (!Number.isInteger(port) || port < 0 || port > 65535) throw new UsageError(`--port must be an integer from 0 to 65535, got ${port}`);
    const { existsSync, statSync } = await import('node:fs');
    const { resolve } = await import('node:path');
    const files = opts.files === undefined ? undefined : resolve(opts.files);
    if (files !== undefined && !(existsSync(files) && statSync(files).isDirectory())) throw new UsageError(`--files must be a folder, got '${opts.files}' (not found or not a folder)`);
    const root = await packageRoot();
    for (const need of ['examples/browser/index.html', 'dist/index.js']) {
      if (!existsSync(resolve(root, need))) {
        throw new UsageError(
          need.startsWith('dist')
            ? `${resolve(root, need)} is missing: build the package first (npm run build, or npm run example which builds and serves)`
            : `${resolve(root, need)} is missing from this installation of pix2pix-webgpu`,
        );
      }
    }
    const server = await startServer(root, files, port);
    const url = `http://127.0.0.1:${server.port}/examples/browser/`;
    console.log(`pix2pix-webgpu example page: ${url}`);
    if (files) {
      // A generator in the folder (train writes latest_net_G.safetensors): the page can open with it filled in.
      const { readdirSync } = await import('node:fs');
      const generators = readdirSync(files).filter((f) => /net_G\.(safetensors|pth|pt)$/.test(f)).sort((a, b) => Number(b.startsWith('latest')) - Number(a.startsWith('latest')));
      if (generators.length > 0) console.log(`with ${generators[0]} in the URL field: ${url}?checkpoint=/files/${encodeURIComponent(generators[0])}`);
    }
    console.log(`serving ${root} (dist/ and examples/browser/ only)${files ? ` and ${files} at /files/` : ''}; Ctrl-C stops`);
    await new Promise<void>((done) => {
      const stop = () => {
        process.off('SIGINT', stop);
        process.off('SIGTERM', stop);
        server.close().then(done, done);
      };
      process.on('SIGINT', stop);
      process.on('SIGTERM', stop);
    });
  },
});

/** The folder of the package this module belongs to (dist/.. when built, src/.. from source). */
async function packageRoot(): Promise<string> {
  const { existsSync, readFileSync } = await import('node:fs');
  const { dirname, join } = await import('node:path');
  const { fileURLToPath } = await import('node:url');
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    const pkg = join(dir, 'package.json');
    if (existsSync(pkg) && (JSON.parse(readFileSync(pkg, 'utf8')) as { name?: string }).name === 'pix2pix-webgpu') return dir;
    const up = dirname(dir);
    if (up === dir) throw new Error(`cannot find the pix2pix-webgpu package folder above ${fileURLToPath(import.meta.url)}`);
    dir = up;
  }
}

const CONTENT_TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.map': 'application/json',
  '.json': 'application/json',
  '.css': 'text/css; charset=utf-8',
  '.png': 'image/png',
  '.jpg': 'image/jpeg',
  '.jpeg': 'image/jpeg',
  '.svg': 'image/svg+xml',
  '.ts': 'text/plain; charset=utf-8',
};

async function startServer(root: string, files: string | undefined, port: number): Promise<{ port: number; close: () => Promise<void> }> {
  const { createServer } = await import('node:http');
  const { createReadStream } = await import('node:fs');
  const { stat } = await import('node:fs/promises');
  const { extname, join, resolve, sep } = await import('node:path');
  // URL prefix → folder. Only these are reachable; a path that resolves outside its folder is refused.
  const mounts: [string, string][] = [
    ['/examples/browser/', join(root, 'examples', 'browser')],
    ['/dist/', join(root, 'dist')],
  ];
  if (files) mounts.push(['/files/', files]);

  const server = createServer((req, res) => {
    void (async () => {
      const method = req.method ?? 'GET';
      if (method !== 'GET' && method !== 'HEAD') {
        res.writeHead(405, { allow: 'GET, HEAD' }).end();
        return;
      }
      let path: string;
      try {
        path = decodeURIComponent(new URL(req.url ?? '/', 'http://127.0.0.1').pathname);
      } catch {
        res.writeHead(400).end('bad path');
        return;
      }
      if (path === '/' || path === '/examples/browser' || path === '/index.html') {
        res.writeHead(302, { location: '/examples/browser/' }).end();
        return;
      }
      const mount = mounts.find(([prefix]) => path.startsWith(prefix));
      if (!mount) {
        res.writeHead(404, { 'content-type': 'text/plain' }).end(`not found: ${path} (this server serves /examples/browser/ and /dist/${files ? ' and /files/' : ''})`);
        return;
      }
      const base = resolve(mount[1]);
      let file = resolve(base, '.' + path.slice(mount[0].length - 1));
      if (file !== base && !file.startsWith(base + sep)) {
        res.writeHead(403).end('forbidden');
        return;
      }
      try {
        let info = await stat(file);
        if (info.isDirectory()) {
          file = join(file, 'index.html');
          info = await stat(file);
        }
        res.writeHead(200, {
          'content-type': CONTENT_TYPES[extname(file).toLowerCase()] ?? 'application/octet-stream',
          'content-length': info.size,
          // A rebuilt dist/ must reach the page on reload.
          'cache-control': 'no-cache',
          // Lets a page served elsewhere (or another port) load checkpoints from here by URL.
          'access-control-allow-origin': '*',
        });
        if (method === 'HEAD') {
          res.end();
          return;
        }
        createReadStream(file)
          .on('error', () => res.destroy())
          .pipe(res);
      } catch {
        res.writeHead(404, { 'content-type': 'text/plain' }).end(`not found: ${path}`);
      }
    })();
  });
  await new Promise<void>((ok, fail) => {
    server.once('error', (e: NodeJS.ErrnoException) =>
      fail(e.code === 'EADDRINUSE' ? new UsageError(`port ${port} on 127.0.0.1 is in use: pass another --port (0 picks a free one)`) : e),
    );
    server.listen(port, '127.0.0.1', () => ok());
  });
  return {
    port: (server.address() as { port: number }).port,
    close: () =>
      new Promise<void>((done) => {
        server.close(() => done());
        server.closeAllConnections();
      }),
  };
}
