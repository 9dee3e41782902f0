// POST /_embedgate/session turns the host's token into an embed session cookie; DELETE ends the session.
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { AccessControl } from '../gateway/access.js';
import type { AppTable } from '../gateway/apps.js';
import { authenticateRequest } from '../gateway/authenticate.js';
import { readBody } from '../gateway/body.js';
import { normalizeTarget } from '../http/path.js';
import { sendJson, type Denial } from '../http/respond.js';
import type { Identity } from '../identity/identity.js';
import type { TokenVerifier } from '../tokens/verifier.js';
import { clearedSessionCookie, findSessionCookie, sessionCookie } from './cookies.js';
import type { Sessions } from '../sessions/sessions.js';

export interface SessionEndpointDeps {
  verifier: TokenVerifier;
  access: AccessControl;
  sessions: Sessions;
  apps: AppTable;
  deny: (denial: Denial, identity?: Identity) => void;
}

const MAX_BODY = 4096;
const MIN_SESSION_SECONDS = 1;

/** The app the frame is on (JSON body {"path": "/sales/…"}), so its policy is checked before any cookie is set. */
async function policyDenial(req: IncomingMessage, identity: Identity, apps: AppTable): Promise<Denial | undefined> {
  const read = await readBody(req, MAX_BODY);
  if (!read.ok) return { status: 413, error: 'body_too_large', message: 'The session request body is too large.' };
  let path: unknown;
  try {
    path = read.body.length === 0 ? undefined : (JSON.parse(read.body.toString('utf8')) as { path?: unknown }).path;
  } catch {
    return { status: 400, error: 'invalid_request', message: 'The session request body must be JSON.' };
  }
  if (path === undefined) {
    const allowedSomewhere = apps.apps.some((app) => app.policy.authorize(identity, app.config.prefix, 'GET') === undefined);
    return allowedSomewhere ? undefined : { status: 403, error: 'forbidden', message: 'You are not allowed to use any app here.' };
  }
  const target = typeof path === 'string' ? normalizeTarget(path) : undefined;
  const match = target?.ok ? apps.match(target.path) : undefined;
  if (target === undefined || !target.ok || match?.kind !== 'app') {
    return { status: 400, error: 'invalid_request', message: 'The session request names no app of this gateway.' };
  }
  return match.app.policy.authorize(identity, target.path, 'GET');
}

export async function handleSessionRequest(req: IncomingMessage, res: ServerResponse, deps: SessionEndpointDeps): Promise<void> {
  const { access, sessions, deny } = deps;
  if (req.method !== 'POST' && req.method !== 'DELETE') {
    return deny({ status: 405, error: 'method_not_allowed', message: 'Use POST to start a session and DELETE to end it.' });
  }
  if (req.headers.origin === undefined || !access.sameOrigin(req)) {
    return deny({ status: 403, error: 'cross_site_request', message: 'Sessions can only be managed by the framed app itself.' });
  }
  const cookie = findSessionCookie(req.headers.cookie);
  const previous = cookie.kind === 'one' ? await sessions.find(cookie.value) : undefined;
  if (req.method === 'DELETE') {
    if (previous !== undefined) await sessions.end(previous.id);
    res.writeHead(204, { 'set-cookie': clearedSessionCookie(), 'cache-control': 'no-store' });
    res.end();
    return;
  }
  const result = await authenticateRequest(deps.verifier, req);
  if ('denial' in result) return deny(result.denial);
  // The verifier's clock leeway may pass a token whose exp has just gone by; a session needs time left to live.
  if (result.identity.expiresAt - Math.floor(Date.now() / 1000) < MIN_SESSION_SECONDS) {
    return deny({ status: 401, error: 'token_expired', message: 'JWT Expired: the access token has (almost) expired; send a fresh one.', bearerError: 'invalid_token' });
  }
  const denial = await policyDenial(req, result.identity, deps.apps);
  if (denial !== undefined) return deny(denial, result.identity);
  // A new id on every renewal: the old cookie stops working at once.
  const created = previous === undefined ? await sessions.create(result.identity) : await sessions.renew(previous.id, result.identity);
  sendJson(res, 200, { expires_at: created.expiresAt }, {
    'set-cookie': sessionCookie(created.cookieValue, created.expiresAt - Math.floor(Date.now() / 1000)),
  });
}
