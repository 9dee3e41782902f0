// The bootstrap page: what an unauthenticated iframe navigation gets instead of the app (no app data at all). The
// frame script is inline, so the handshake starts without another request, and the versioned script is prefetched
// for the app page that follows.
import { randomBytes } from 'node:crypto';
import type { ServerResponse } from 'node:http';
import { escapeHtml } from '../http/respond.js';
import { frameScriptTag } from './html.js';

export interface BootstrapOptions {
  /** the frame script's source */
  script: string;
  /** its versioned path */
  scriptSrc: string;
  origins: string[];
  frameAncestors: string;
  headerMode: boolean;
  head: boolean;
}

export function sendBootstrap(res: ServerResponse, options: BootstrapOptions): void {
  const nonce = randomBytes(16).toString('base64');
  const tag = frameScriptTag({
    src: options.scriptSrc, inline: options.script, nonce, origins: options.origins, mode: 'bootstrap', headerMode: options.headerMode,
  });
  const body = '<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Signing in</title>'
    + `<link rel="prefetch" href="${escapeHtml(options.scriptSrc)}"></head><body>`
    + `<p id="embedgate-status" role="status">Connecting to the page around this app…</p>${tag}</body></html>`;
  res.writeHead(401, {
    'content-type': 'text/html; charset=utf-8',
    'content-length': Buffer.byteLength(body),
    'cache-control': 'no-store',
    'www-authenticate': 'Bearer realm="embedgate"',
    'x-content-type-options': 'nosniff',
    'referrer-policy': 'no-referrer',
    'content-security-policy': `default-src 'none'; script-src 'nonce-${nonce}'; connect-src 'self'; style-src 'unsafe-inline'; `
      + `base-uri 'none'; form-action 'none'; frame-ancestors ${options.frameAncestors}`,
  });
  res.end(options.head ? undefined : body);
}
