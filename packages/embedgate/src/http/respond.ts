// Error responses: JSON with a machine-readable code for APIs and XHR, a small HTML page for navigations.
import type { IncomingMessage, ServerResponse } from 'node:http';
import { workerNavigationOf } from '../embed/worker-credentials.js';

export interface Denial {
  status: number;
  /** Machine-readable reason, e.g. `missing_token`, `token_expired`, `forbidden`. */
  error: string;
  message: string;
  /** For 401: the RFC 6750 error code for WWW-Authenticate (`invalid_token`, `invalid_request`), if any. */
  bearerError?: 'invalid_token' | 'invalid_request' | 'insufficient_scope';
  /** For 503: when to try again (the Retry-After header), in seconds. */
  retryAfterSeconds?: number;
}

const TITLES: Record<number, string> = {
  400: 'Bad request', 401: 'Sign-in required', 403: 'Access denied', 404: 'Not found', 405: 'Method not allowed',
  413: 'Request too large', 414: 'Address too long', 415: 'Unsupported request', 502: 'App unavailable',
  503: 'Temporarily unavailable', 504: 'App timed out',
};

/** True for top-level or framed page loads (also those a worker-mode frame's service worker fetched again), which deserve HTML rather than JSON. */
export function isNavigation(req: IncomingMessage): boolean {
  const mode = req.headers['sec-fetch-mode'];
  if (workerNavigationOf(req) !== undefined) return true;
  if (mode !== undefined) return mode === 'navigate';
  if (req.method !== 'GET' && req.method !== 'HEAD') return false;
  const accept = req.headers.accept ?? '';
  return accept.includes('text/html') && req.headers['x-requested-with'] === undefined;
}

export function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

export function wwwAuthenticate(denial: Denial): string {
  const parts = ['Bearer realm="embedgate"'];
  if (denial.bearerError !== undefined) {
    parts.push(`error="${denial.bearerError}"`, `error_description="${denial.error}"`);
  }
  return parts.join(', ');
}

function htmlPage(denial: Denial, requestId: string): string {
  const title = TITLES[denial.status] ?? 'Error';
  return `<!doctype html><html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width">`
    + `<title>${title}</title><style>body{font:16px/1.5 system-ui,sans-serif;max-width:36rem;margin:4rem auto;padding:0 1rem;color:#222}`
    + `code{background:#f3f3f3;padding:0 .25rem}</style></head><body><h1>${title}</h1><p>${escapeHtml(denial.message)}</p>`
    + `<p>Reason: <code>${escapeHtml(denial.error)}</code> &middot; request <code>${escapeHtml(requestId)}</code></p></body></html>`;
}

/** Headers shared by every gateway-generated error. */
export function denialHeaders(denial: Denial, html: boolean): Record<string, string> {
  const headers: Record<string, string> = {
    'content-type': html ? 'text/html; charset=utf-8' : 'application/json',
    'cache-control': 'no-store',
    'x-content-type-options': 'nosniff',
    'x-frame-options': 'DENY',
  };
  if (denial.status === 401) headers['www-authenticate'] = wwwAuthenticate(denial);
  if (denial.retryAfterSeconds !== undefined) headers['retry-after'] = String(denial.retryAfterSeconds);
  if (html) {
    headers['content-security-policy'] = "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'";
  }
  return headers;
}

export function denialBody(denial: Denial, html: boolean, requestId: string): string {
  return html ? htmlPage(denial, requestId) : JSON.stringify({ error: denial.error, message: denial.message });
}

export function sendDenial(req: IncomingMessage, res: ServerResponse, denial: Denial, requestId: string): void {
  const html = isNavigation(req);
  const body = denialBody(denial, html, requestId);
  res.writeHead(denial.status, { ...denialHeaders(denial, html), 'content-length': Buffer.byteLength(body) });
  res.end(req.method === 'HEAD' ? undefined : body);
}

/** Writes a denial on a raw socket, for refused WebSocket upgrades. */
export function rawDenial(denial: Denial): string {
  const body = JSON.stringify({ error: denial.error, message: denial.message });
  const headers = { ...denialHeaders(denial, false), 'content-length': String(Buffer.byteLength(body)), connection: 'close' };
  const lines = Object.entries(headers).map(([k, v]) => `${k}: ${v}`);
  return `HTTP/1.1 ${denial.status} ${TITLES[denial.status] ?? 'Error'}\r\n${lines.join('\r\n')}\r\n\r\n${body}`;
}

/** Headers for the gateway's own non-HTML answers: never framed, never sniffed. */
export const OWN_RESOURCE_HEADERS = {
  'x-content-type-options': 'nosniff',
  'x-frame-options': 'DENY',
  'content-security-policy': "frame-ancestors 'none'",
} as const;

export function sendJson(res: ServerResponse, status: number, value: unknown, extra: Record<string, string> = {}): void {
  const body = JSON.stringify(value);
  res.writeHead(status, {
    'content-type': 'application/json', 'cache-control': 'no-store', 'content-length': Buffer.byteLength(body), ...OWN_RESOURCE_HEADERS, ...extra,
  });
  res.end(body);
}
