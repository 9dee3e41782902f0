// Bundles the browser scripts the gateway serves, as classic-script IIFEs with no imports: dist/host.min.js
// (/_embedgate/host.js), dist/frame.min.js (/_embedgate/frame.js, in the app's pages), dist/bootstrap.min.js (inlined
// into the bootstrap page), dist/worker.min.js (/_embedgate/worker.js, the service worker) and dist/worker-page.min.js
// (/_embedgate/worker-page.js, its page side), dist/bridge.min.js (/_embedgate/bridge.js, the app half of the
// host ↔ app bridge); and
// dist/host.module.min.js (/_embedgate/host.mjs), the host SDK as an ES module. All minified.
// `node build.mjs` writes them and prints their sizes; tests call bundle({ write: false }).
import { build } from 'esbuild';
import { gzipSync } from 'node:zlib';
import { URL, fileURLToPath } from 'node:url';
import process from 'node:process';

const root = fileURLToPath(new URL('.', import.meta.url));

export const BUNDLES = {
  'host.min.js': { entry: 'src/bundle-host.ts', format: 'iife' },
  'frame.min.js': { entry: 'src/bundle-frame.ts', format: 'iife' },
  'bootstrap.min.js': { entry: 'src/bundle-bootstrap.ts', format: 'iife' },
  'worker.min.js': { entry: 'src/worker.ts', format: 'iife' },
  'worker-page.min.js': { entry: 'src/bundle-worker-page.ts', format: 'iife' },
  'bridge.min.js': { entry: 'src/bundle-bridge.ts', format: 'iife' },
  'host.module.min.js': { entry: 'src/bundle-host-module.ts', format: 'esm' },
};

/**
 * Builds every bundle. With write: false nothing is written and the code is returned.
 * @param {{ write?: boolean }} [options]
 * @returns {Promise<Record<string, string | undefined>>} { 'host.min.js': code, … }
 */
export async function bundle({ write = true } = {}) {
  /** @type {Record<string, string | undefined>} */
  const out = {};
  await Promise.all(Object.entries(BUNDLES).map(async ([name, { entry, format }]) => {
    const result = await build({
      absWorkingDir: root,
      entryPoints: [entry],
      outfile: `dist/${name}`,
      bundle: true,
      minify: true,
      format,
      platform: 'browser',
      target: 'es2022',
      legalComments: 'none',
      charset: 'utf8',
      write,
      logLevel: 'warning',
    });
    out[name] = write ? undefined : result.outputFiles[0].text;
  }));
  return out;
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const { readFileSync } = await import('node:fs');
  await bundle();
  for (const name of Object.keys(BUNDLES)) {
    const code = readFileSync(new URL(`dist/${name}`, import.meta.url));
    process.stdout.write(`dist/${name}: ${code.length} bytes, ${gzipSync(code, { level: 9 }).length} gzip\n`);
  }
}
