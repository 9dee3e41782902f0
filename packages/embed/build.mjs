// Bundles the browser scripts the gateway serves, as classic-script IIFEs with no imports: dist/host.min.js
// (/_embedgate/host.js), dist/frame.min.js (/_embedgate/frame.js, in the app's pages), dist/bootstrap.min.js (inlined
// into the bootstrap page), dist/worker.min.js (/_embedgate/worker.js, the service worker) and dist/worker-page.min.js
// (/_embedgate/worker-page.js, its page side), dist/bridge.min.js (/_embedgate/bridge.js, the app half of the
// host ↔ app bridge); and
// dist/host.module.min.js (/_embedgate/host.mjs), the host SDK as an ES module; both host scripts load the bridge's host
// half, dist/host-bridge.min.mjs (/_embedgate/host-bridge.mjs), from the gateway when an app's bridge connects. All
// minified.
// `node build.mjs` writes them and prints their sizes; tests call bundle({ write: false }).
import { build } from 'esbuild';
import { createHash } from 'node:crypto';
import { gzipSync } from 'node:zlib';
import { URL, fileURLToPath } from 'node:url';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import process from 'node:process';

const root = fileURLToPath(new URL('.', import.meta.url));
mkdirSync(join(root, 'dist'), { recursive: true });

/** Built first: the host scripts load it from the gateway at its version (the gateway's assets hash it the same way). */
const HOST_BRIDGE = { 'host-bridge.min.mjs': { entry: 'src/host-bridge.ts', format: 'esm' } };

/** The host scripts take the bridge's host half from the gateway, not from their own bundle. */
const REMOTE_BRIDGE = new Set(['host.min.js', 'host.module.min.js']);

export const BUNDLES = {
  ...HOST_BRIDGE,
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
  /** @param {string} name @param {{ entry: string, format: 'iife' | 'esm' }} spec @param {string} bridgePath */
  const one = async (name, { entry, format }, bridgePath) => {
    const remote = REMOTE_BRIDGE.has(name);
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
      write: false,
      logLevel: 'warning',
      define: remote ? { EMBEDGATE_HOST_BRIDGE_PATH: JSON.stringify(bridgePath) } : {},
      plugins: remote ? [remoteBridge] : [],
    });
    const code = result.outputFiles[0].text;
    if (write) writeFileSync(join(root, 'dist', name), code);
    out[name] = write ? undefined : code;
    return code;
  };
  const [[bridgeName, bridgeSpec]] = Object.entries(HOST_BRIDGE);
  const bridgeCode = await one(bridgeName, bridgeSpec, '');
  // The same version the gateway's assets compute: the first 16 characters of the body's SHA-256, base64url.
  const bridgePath = `/_embedgate/host-bridge.mjs?v=${createHash('sha256').update(bridgeCode).digest('base64url').slice(0, 16)}`;
  await Promise.all(Object.entries(BUNDLES).filter(([name]) => name !== bridgeName).map(([name, spec]) => one(name, spec, bridgePath)));
  return out;
}

/** Resolves ./bridge-loader.js to the loader that imports the bridge's host half from the gateway. */
const remoteBridge = {
  name: 'remote-bridge',
  /** @param {import('esbuild').PluginBuild} pluginBuild */
  setup(pluginBuild) {
    pluginBuild.onResolve({ filter: /^\.\/bridge-loader\.js$/ }, () => ({ path: join(root, 'src', 'bridge-loader-remote.ts') }));
  },
};

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const { readFileSync } = await import('node:fs');
  await bundle();
  for (const name of Object.keys(BUNDLES)) {
    const code = readFileSync(new URL(`dist/${name}`, import.meta.url));
    process.stdout.write(`dist/${name}: ${code.length} bytes, ${gzipSync(code, { level: 9 }).length} gzip\n`);
  }
}
