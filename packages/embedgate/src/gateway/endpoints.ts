// The gateway's own endpoints: health, readiness, metrics, the assertion JWKS and forward-auth.
import type { ServerResponse } from 'node:http';
import { OWN_RESOURCE_HEADERS, sendJson } from '../http/respond.js';
import type { AssertionSigner } from '../identity/assertion.js';
import type { LoginProvider } from '../login/provider.js';
import type { GatewayMetrics } from '../ops/metrics.js';
import type { TokenVerifier } from '../tokens/verifier.js';

export interface EndpointDeps {
  verifier: TokenVerifier;
  metrics: GatewayMetrics;
  assertions: AssertionSigner;
  /** The sign-in provider, when login: is configured: it must have been discovered. */
  loginProvider?: LoginProvider;
}

/** Paths the gateway answers itself rather than an app: /healthz, /readyz, /metrics and everything under /_embedgate/. */
export function isOwnPath(path: string): boolean {
  return path.startsWith('/_embedgate/') || path === '/healthz' || path === '/readyz' || path === '/metrics';
}

/** Answers /healthz, /readyz, /metrics and /_embedgate/jwks.json; returns false for any other path. */
export async function serveOperational(path: string, res: ServerResponse, deps: EndpointDeps): Promise<boolean> {
  switch (path) {
    case '/healthz':
      sendJson(res, 200, { status: 'ok' });
      return true;
    case '/readyz': {
      const issuers = deps.verifier.readiness();
      const login = deps.loginProvider?.readiness();
      const ready = issuers.every((i) => i.ready) && (login?.ready ?? true);
      sendJson(res, ready ? 200 : 503, { status: ready ? 'ready' : 'not_ready', issuers, ...(login === undefined ? {} : { login }) });
      return true;
    }
    case '/metrics': {
      const body = await deps.metrics.registry.metrics();
      res.writeHead(200, { 'content-type': deps.metrics.registry.contentType, 'cache-control': 'no-store', ...OWN_RESOURCE_HEADERS });
      res.end(body);
      return true;
    }
    case '/_embedgate/jwks.json':
      sendJson(res, 200, deps.assertions.jwks(), { 'cache-control': 'public, max-age=300' });
      return true;
    default:
      return false;
  }
}
