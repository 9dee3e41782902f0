// Forward-auth (`/_embedgate/auth`) for nginx auth_request, Traefik or Caddy: decides for the URI a trusted proxy names.
import type { IncomingMessage, ServerResponse } from 'node:http';
import { normalizeTarget } from '../http/path.js';
import type { Denial } from '../http/respond.js';
import type { AssertionSigner } from '../identity/assertion.js';
import type { Identity } from '../identity/identity.js';
import type { AccessControl, AuditContext } from './access.js';
import type { AppTable, MountedApp } from './apps.js';
import type { ClientAddress } from './client-address.js';
import { identityHeaders } from './upstream-headers.js';

export interface ForwardAuthDeps {
  context: AuditContext;
  client: ClientAddress;
  access: AccessControl;
  apps: AppTable;
  assertions: AssertionSigner;
  deny: (denial: Denial, app?: MountedApp, identity?: Identity) => void;
}

function ok(res: ServerResponse, headers: Record<string, string>): void {
  res.writeHead(200, { 'cache-control': 'no-store', 'content-length': '0', ...headers });
  res.end();
}

/**
 * The URI to decide for comes only from a trusted proxy's X-Forwarded-Uri; from anyone else the header is
 * ignored and the check fails closed (401 without a token, 403 with one).
 */
export async function forwardAuth(req: IncomingMessage, res: ServerResponse, deps: ForwardAuthDeps): Promise<void> {
  const { client, access, apps, deny } = deps;
  const forwardedUri = req.headers['x-forwarded-uri'];
  const forwardedMethod = req.headers['x-forwarded-method'];
  const method = typeof forwardedMethod === 'string' && /^[A-Z]+$/.test(forwardedMethod) ? forwardedMethod : 'GET';
  const target = client.viaTrustedProxy && typeof forwardedUri === 'string' ? normalizeTarget(forwardedUri) : undefined;
  if (target !== undefined && !target.ok) {
    return deny({ status: 400, error: target.reason, message: `The forwarded path was refused: ${target.detail}.` });
  }
  const match = target === undefined ? undefined : apps.match(target.path);
  const app = match?.kind === 'app' ? match.app : undefined;
  if (target !== undefined && app !== undefined && app.policy.isPublic(target.path)) return ok(res, {});

  // The session cookie's same-origin rule applies to the method of the request being checked: the one the proxy
  // names (Traefik and Caddy send the check itself as GET), else the check's own (nginx with proxy_method).
  const result = await access.authenticate(req, undefined, typeof forwardedMethod === 'string' && /^[A-Z]+$/.test(forwardedMethod) ? forwardedMethod : req.method);
  if ('denial' in result) return deny(result.denial, app);
  const { identity } = result;
  if (target === undefined || app === undefined) {
    return deny({ status: 403, error: 'no_target', message: 'Forward-auth needs X-Forwarded-Uri from a trusted proxy naming a mounted app.' }, app, identity);
  }
  const denial = app.policy.authorize(identity, target.path, method)
    ?? (app.policy.inspectsCallback(target.path, method)
      ? { status: 403, error: 'callback_rules_need_proxy_mode', message: 'Dash callback rules can only be enforced when the gateway proxies the request.' }
      : undefined);
  if (denial !== undefined) return deny(denial, app, identity);
  const include = app.config.identity_headers;
  ok(res, identityHeaders(identity, include.includes('assertion') ? await deps.assertions.assertionFor(identity, app.config.name) : undefined, include));
}
