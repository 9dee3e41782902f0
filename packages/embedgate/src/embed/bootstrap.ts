// The bootstrap page: what an unauthenticated iframe navigation gets instead of the app (no app data at all).
import type { ServerResponse } from 'node:http';
import { frameScriptTag } from './html.js';

export function sendBootstrap(res: ServerResponse, options: { origins: string[]; frameAncestors: string; headerMode: boolean; head: boolean }): void {
  const body = '<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Signing in</title></head><body>'
    + '<p id="embedgate-status" role="status">Connecting to the page around this app…</p>'
    + `${frameScriptTag({ origins: options.origins, mode: 'bootstrap', headerMode: options.headerMode })}</body></html>`;
  res.writeHead(401, {
    'content-type': 'text/html; charset=utf-8',
    'content-length': Buffer.byteLength(body),
    'cache-control': 'no-store',
    'www-authenticate': 'Bearer realm="embedgate"',
    'x-content-type-options': 'nosniff',
    'referrer-policy': 'no-referrer',
    'content-security-policy': `default-src 'none'; script-src 'self'; connect-src 'self'; style-src 'unsafe-inline'; base-uri 'none'; form-action 'none'; frame-ancestors ${options.frameAncestors}`,
  });
  res.end(options.head ? undefined : body);
}
