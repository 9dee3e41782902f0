// The bootstrap page: what an unauthenticated iframe navigation gets instead of the app (no app data at all). The
// bootstrap script is inline, so the handshake starts without another request, and the app pages' versioned frame
// script is prefetched for the page that follows. The page may register the service worker (worker mode).
import { randomBytes } from 'node:crypto';
import type { ServerResponse } from 'node:http';
import { escapeHtml } from '../http/respond.js';
import { BOOTSTRAP_SCRIPT_PATH, frameScriptTag } from './html.js';

export interface BootstrapOptions {
  /** the bootstrap script's source (inlined) */
  script: string;
  /** the app pages' frame script (versioned path), prefetched */
  frameScriptSrc: string;
  origins: string[];
  frameAncestors: string;
  headerMode: boolean;
  embedMode: 'auto' | 'cookie' | 'worker';
  /** the app's prefix: the service worker's scope */
  scope: string;
  head: boolean;
}

export function sendBootstrap(res: ServerResponse, options: BootstrapOptions): void {
  const nonce = randomBytes(16).toString('base64');
  const tag = frameScriptTag({
    src: BOOTSTRAP_SCRIPT_PATH, inline: options.script, nonce, origins: options.origins, mode: 'bootstrap',
    headerMode: options.headerMode, embedMode: options.embedMode, scope: options.scope,
  });
  const body = '<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Signing in</title>'
    + `<link rel="prefetch" href="${escapeHtml(options.frameScriptSrc)}"></head><body>`
    + `<p id="embedgate-status" role="status">Connecting to the page around this app…</p>${tag}</body></html>`;
  res.writeHead(401, {
    'content-type': 'text/html; charset=utf-8',
    'content-length': Buffer.byteLength(body),
    'cache-control': 'no-store',
    'www-authenticate': 'Bearer realm="embedgate"',
    'x-content-type-options': 'nosniff',
    'referrer-policy': 'no-referrer',
    'content-security-policy': `default-src 'none'; script-src 'nonce-${nonce}'; connect-src 'self'; worker-src 'self'; style-src 'unsafe-inline'; `
      + `base-uri 'none'; form-action 'none'; frame-ancestors ${options.frameAncestors}`,
  });
  res.end(options.head ? undefined : body);
}
