// Bundles the portal's browser script (oidc-client-ts + the embed host SDK) into dist/portal/client.js.
import { build } from 'esbuild';
import { URL, fileURLToPath } from 'node:url';

await build({
  absWorkingDir: fileURLToPath(new URL('.', import.meta.url)),
  entryPoints: ['src/portal/client.ts'],
  outfile: 'dist/portal/client.js',
  bundle: true,
  minify: true,
  format: 'iife',
  platform: 'browser',
  target: 'es2022',
  legalComments: 'none',
  logLevel: 'warning',
});
