// Sign-out: GET /_embedgate/logout shows a button, POST (from the gateway's own pages only) ends the session, tells
// the browser to drop what it cached of the apps, and continues with RP-initiated logout at the provider.
import type { IncomingMessage, ServerResponse } from 'node:http';
import * as client from 'openid-client';
import type { LoginConfig } from '../config/schema.js';
import type { Sessions } from '../sessions/sessions.js';
import { escapeHtml, type Denial } from '../http/respond.js';
import { endBrowserSession, loginSessionCookie } from './cookies.js';
import type { LoginProvider } from './provider.js';

export const LOGOUT_PATH = '/_embedgate/logout';

export interface LogoutDeps {
  login: LoginConfig;
  provider: LoginProvider;
  sessions: Sessions;
  /** True when the browser says the request comes from the gateway's own origin. */
  sameOrigin(req: IncomingMessage): boolean;
  deny(denial: Denial): void;
}

const PAGE_HEADERS = {
  'content-type': 'text/html; charset=utf-8',
  'cache-control': 'no-store',
  // No form-action: browsers apply it to the redirect after the POST too, which goes on to the provider.
  'content-security-policy': "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'",
  'x-frame-options': 'DENY',
  // Not no-referrer: the button's POST must carry the page's Origin (browsers send "null" under no-referrer).
  'referrer-policy': 'same-origin',
} as const;

function confirmPage(): string {
  return '<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Sign out</title>'
    + '<style>body{font:16px/1.5 system-ui,sans-serif;max-width:28rem;margin:4rem auto;padding:0 1rem}button{font:inherit;padding:.5rem 1rem}</style></head>'
    + `<body><h1>Sign out</h1><form method="post" action="${escapeHtml(LOGOUT_PATH)}"><button type="submit">Sign out</button></form></body></html>`;
}

/**
 * Where the browser goes after the session is gone: the provider's end-session endpoint, naming the client (no
 * id_token_hint: tokens never go into a URL the gateway builds; the provider asks the user to confirm instead).
 */
async function providerLogout(deps: LogoutDeps): Promise<string | undefined> {
  let provider: client.Configuration;
  try {
    provider = await deps.provider.configuration();
  } catch {
    return deps.login.post_logout_redirect_uri;
  }
  if (provider.serverMetadata().end_session_endpoint === undefined) return deps.login.post_logout_redirect_uri;
  return client.buildEndSessionUrl(provider, {
    client_id: deps.login.client_id,
    ...(deps.login.post_logout_redirect_uri === undefined ? {} : { post_logout_redirect_uri: deps.login.post_logout_redirect_uri }),
  }).href;
}

export async function handleLogout(req: IncomingMessage, res: ServerResponse, deps: LogoutDeps): Promise<void> {
  if (req.method === 'GET' || req.method === 'HEAD') {
    const body = confirmPage();
    res.writeHead(200, { ...PAGE_HEADERS, 'content-length': Buffer.byteLength(body) });
    res.end(req.method === 'HEAD' ? undefined : body);
    return;
  }
  if (req.method !== 'POST') return deps.deny({ status: 405, error: 'method_not_allowed', message: 'Sign out with POST.' });
  if (!deps.sameOrigin(req)) return deps.deny({ status: 403, error: 'cross_site_request', message: 'Sign-out must come from the gateway\'s own page.' });
  await endBrowserSession(deps.sessions, req.headers.cookie);
  const next = await providerLogout(deps);
  const headers = {
    'set-cookie': loginSessionCookie('', 0),
    // Pages of the apps the browser kept must not come back with the back button.
    'clear-site-data': '"cache"',
    'cache-control': 'no-store',
    'referrer-policy': 'no-referrer',
  };
  if (next !== undefined) {
    res.writeHead(303, { ...headers, location: next });
    res.end();
    return;
  }
  const body = '<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Signed out</title></head><body><h1>You are signed out.</h1></body></html>';
  res.writeHead(200, { ...PAGE_HEADERS, ...headers, 'content-length': Buffer.byteLength(body) });
  res.end(body);
}
