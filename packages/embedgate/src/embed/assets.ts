// Serves the embed SDK's built scripts from @embedgate/embed: frame.js for the app's pages, bootstrap.js (also inlined
// in the bootstrap page), worker.js and worker-page.js for worker mode, bridge.js for apps with embed.bridge, and host.js (and host.mjs, an ES module) for
// host pages. A URL with the script's current version (?v=…, what the gateway puts in pages) may be cached for
// good; a bare URL revalidates. The host scripts (and host-bridge.mjs, which they import when an app's bridge
// connects) are public and answer CORS for any origin, so that pages on other
// origins can import() them.
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import type { IncomingMessage, ServerResponse } from 'node:http';

interface Asset {
  body: Buffer;
  /** a hash of the body: the ETag, and the ?v= of the versioned URL */
  version: string;
}

const IMMUTABLE = 'public, max-age=31536000, immutable';

const FILES: Record<string, string> = {
  '/_embedgate/frame.js': 'frame.min.js',
  '/_embedgate/bootstrap.js': 'bootstrap.min.js',
  '/_embedgate/worker.js': 'worker.min.js',
  '/_embedgate/worker-page.js': 'worker-page.min.js',
  '/_embedgate/bridge.js': 'bridge.min.js',
  '/_embedgate/host.js': 'host.min.js',
  '/_embedgate/host.mjs': 'host.module.min.js',
  '/_embedgate/host-bridge.mjs': 'host-bridge.min.mjs',
};

/** The service worker lives at /_embedgate/ but serves an app's prefix: its scope may be any path of the gateway. */
const WORKER_PATH = '/_embedgate/worker.js';

/** Loaded by host pages on other origins, also as modules (which are fetched in CORS mode, without credentials). */
const CROSS_ORIGIN = new Set(['/_embedgate/host.js', '/_embedgate/host.mjs', '/_embedgate/host-bridge.mjs']);

function loadAssets(): Map<string, Asset> {
  const dist = dirname(createRequire(import.meta.url).resolve('@embedgate/embed'));
  const assets = new Map<string, Asset>();
  for (const [path, file] of Object.entries(FILES)) {
    const body = readFileSync(join(dist, file));
    assets.set(path, { body, version: createHash('sha256').update(body).digest('base64url').slice(0, 16) });
  }
  return assets;
}

export class EmbedAssets {
  private readonly assets: Map<string, Asset>;

  constructor() {
    this.assets = loadAssets();
  }

  /** The path with the script's version, e.g. /_embedgate/frame.js?v=…, for pages to load it from. */
  versionedPath(path: string): string {
    const asset = this.assets.get(path);
    return asset === undefined ? path : `${path}?v=${asset.version}`;
  }

  /** The script's source text. */
  source(path: string): string {
    return this.assets.get(path)?.body.toString('utf8') ?? '';
  }

  /** Answers the script paths; returns false for anything else. */
  serve(path: string, req: IncomingMessage, res: ServerResponse): boolean {
    const asset = this.assets.get(path);
    if (asset === undefined) return false;
    const etag = `"${asset.version}"`;
    const current = new URL(req.url ?? '/', 'http://gateway.invalid').searchParams.get('v') === asset.version;
    const headers = {
      'content-type': 'text/javascript; charset=utf-8',
      'cache-control': current ? IMMUTABLE : 'no-cache',
      etag,
      'x-content-type-options': 'nosniff',
      'cross-origin-resource-policy': 'cross-origin',
      ...(CROSS_ORIGIN.has(path) ? { 'access-control-allow-origin': '*' } : {}),
      ...(path === WORKER_PATH ? { 'service-worker-allowed': '/' } : {}),
    };
    if (req.headers['if-none-match'] === etag) {
      res.writeHead(304, headers);
      res.end();
      return true;
    }
    res.writeHead(200, { ...headers, 'content-length': asset.body.length });
    res.end(req.method === 'HEAD' ? undefined : asset.body);
    return true;
  }
}
