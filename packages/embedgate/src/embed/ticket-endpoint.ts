// POST /_embedgate/ws-ticket: a single-use WebSocket ticket for the frame's app, bound to its embed session. In
// worker mode a WebSocket handshake carries neither the cookie nor the worker's header, so the frame script gets a
// ticket here (through its service worker) and offers it as a subprotocol.
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { AccessControl } from '../gateway/access.js';
import type { AppTable } from '../gateway/apps.js';
import { readBody } from '../gateway/body.js';
import { normalizeTarget } from '../http/path.js';
import { sendJson, type Denial } from '../http/respond.js';
import type { Identity } from '../identity/identity.js';
import type { Sessions } from '../sessions/sessions.js';
import { TICKET_SECONDS } from './worker-credentials.js';

export interface TicketEndpointDeps {
  access: AccessControl;
  sessions: Sessions;
  apps: AppTable;
  deny: (denial: Denial, identity?: Identity) => void;
}

const MAX_BODY = 4096;

/** The path the socket will open, from the JSON body {"path": "/live/ws"}. */
async function requestedPath(req: IncomingMessage): Promise<string | undefined> {
  const read = await readBody(req, MAX_BODY);
  if (!read.ok) return undefined;
  try {
    const { path } = JSON.parse(read.body.toString('utf8')) as { path?: unknown };
    return typeof path === 'string' ? path : undefined;
  } catch {
    return undefined;
  }
}

export async function handleTicketRequest(req: IncomingMessage, res: ServerResponse, deps: TicketEndpointDeps): Promise<void> {
  const { access, deny } = deps;
  if (req.method !== 'POST') return deny({ status: 405, error: 'method_not_allowed', message: 'Use POST to get a WebSocket ticket.' });
  if (!access.sameOrigin(req)) return deny({ status: 403, error: 'cross_site_request', message: 'Tickets are only for the framed app itself.' });
  // The session, not a bearer the frame script may have added: a ticket stands for the session.
  const result = await access.authenticateSession(req, undefined, {
    denial: { status: 401, error: 'missing_token', message: 'A ticket is bound to an embed session; a bearer token can open the WebSocket itself.', bearerError: 'invalid_request' },
  });
  if ('denial' in result) return deny(result.denial);
  if (result.sessionId === undefined) return deny({ status: 401, error: 'missing_token', message: 'A ticket needs an embed session.' });
  const path = await requestedPath(req);
  const target = path === undefined ? undefined : normalizeTarget(path);
  const match = target?.ok ? deps.apps.match(target.path) : undefined;
  if (target === undefined || !target.ok || match?.kind !== 'app') {
    return deny({ status: 400, error: 'invalid_request', message: 'The ticket request names no app of this gateway.' }, result.identity);
  }
  const denial = match.app.policy.authorize(result.identity, target.path, 'GET');
  if (denial !== undefined) return deny(denial, result.identity);
  // A worker's session serves one app: no ticket for another.
  const bound = (await deps.sessions.findById(result.sessionId))?.record.app;
  if (bound !== undefined && bound !== match.app.config.name) {
    return deny({ status: 403, error: 'forbidden', message: 'This session is for another app.' }, result.identity);
  }
  const ticket = await deps.sessions.issueTicket(result.sessionId, match.app.config.name, TICKET_SECONDS);
  sendJson(res, 200, { ticket, expires_in: TICKET_SECONDS });
}
