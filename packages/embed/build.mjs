// Bundles the two browser scripts the gateway serves: dist/host.min.js (/_embedgate/host.js) and
// dist/frame.min.js (/_embedgate/frame.js). Classic-script IIFEs, minified, no imports.
// `node build.mjs` writes them and prints their sizes; tests call bundle({ write: false }).
import { build } from 'esbuild';
import { gzipSync } from 'node:zlib';
import { URL, fileURLToPath } from 'node:url';
import process from 'node:process';

const root = fileURLToPath(new URL('.', import.meta.url));

export const BUNDLES = {
  'host.min.js': 'src/bundle-host.ts',
  'frame.min.js': 'src/bundle-frame.ts',
};

/**
 * Builds both bundles. With write: false nothing is written and the code is returned.
 * @param {{ write?: boolean }} [options]
 * @returns {Promise<Record<string, string | undefined>>} { 'host.min.js': code, 'frame.min.js': code }
 */
export async function bundle({ write = true } = {}) {
  /** @type {Record<string, string | undefined>} */
  const out = {};
  await Promise.all(Object.entries(BUNDLES).map(async ([name, entry]) => {
    const result = await build({
      absWorkingDir: root,
      entryPoints: [entry],
      outfile: `dist/${name}`,
      bundle: true,
      minify: true,
      format: 'iife',
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
