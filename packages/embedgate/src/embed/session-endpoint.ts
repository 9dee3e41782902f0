// /_embedgate/session: POST turns the host's token into an embed session (a partitioned cookie, and in worker mode a
// handle for the frame's service worker), GET says whether the request carries a live session, DELETE ends it.
// The framed app calls it from the gateway's origin; a host page on an allowed origin may POST to it by CORS to make
// the session before its iframe navigates. Nothing is ever answered to a cookie alone from another origin.
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { AccessControl } from '../gateway/access.js';
import type { AppTable } from '../gateway/apps.js';
import { authenticateRequest } from '../gateway/authenticate.js';
import { readBody } from '../gateway/body.js';
import { normalizeTarget } from '../http/path.js';
import { sendJson, type Denial } from '../http/respond.js';
import type { Identity } from '../identity/identity.js';
import type { FoundSession, Sessions } from '../sessions/sessions.js';
import type { TokenVerifier } from '../tokens/verifier.js';
import { clearedSessionCookie, findSessionCookie, sessionCookie } from './cookies.js';
import { sessionHandleOf } from './worker-credentials.js';

export type EmbedMode = 'auto' | 'cookie' | 'worker';

export interface SessionEndpointDeps {
  verifier: TokenVerifier;
  access: AccessControl;
  sessions: Sessions;
  apps: AppTable;
  /** Host pages that may create sessions by CORS (embed.allowed_origins). */
  hostOrigins: ReadonlySet<string>;
  mode: EmbedMode;
  deny: (denial: Denial, identity?: Identity) => void;
}

const MAX_BODY = 4096;
const MIN_SESSION_SECONDS = 1;
/** Browsers cap this (Chromium at 2 h); the answer to a preflight does not change while the gateway runs. */
const PREFLIGHT_MAX_AGE_SECONDS = 7200;

interface SessionRequest {
  path?: string;
  /** The frame's bootstrap asks for a handle for its service worker (worker and auto modes). */
  handle?: boolean;
}

/** The JSON body: which app the session is for ({"path": "/sales/…"}), and whether a handle is wanted. */
async function readRequest(req: IncomingMessage): Promise<SessionRequest | Denial> {
  const read = await readBody(req, MAX_BODY);
  if (!read.ok) return { status: 413, error: 'body_too_large', message: 'The session request body is too large.' };
  if (read.body.length === 0) return {};
  try {
    const body = JSON.parse(read.body.toString('utf8')) as { path?: unknown; handle?: unknown };
    return {
      ...(body.path === undefined ? {} : { path: body.path as string }),
      handle: body.handle === true,
    };
  } catch {
    return { status: 400, error: 'invalid_request', message: 'The session request body must be JSON.' };
  }
}

/**
 * The app the session is for must allow this identity before any session is made: its name, or a denial. A request
 * that names no app gets a session for every app the identity may use (undefined).
 */
function appFor(request: SessionRequest, identity: Identity, apps: AppTable): { app: string | undefined } | { denial: Denial } {
  if (request.path === undefined) {
    const allowedSomewhere = apps.apps.some((app) => app.policy.authorize(identity, app.config.prefix, 'GET') === undefined);
    return allowedSomewhere ? { app: undefined } : { denial: { status: 403, error: 'forbidden', message: 'You are not allowed to use any app here.' } };
  }
  const target = typeof request.path === 'string' ? normalizeTarget(request.path) : undefined;
  const match = target?.ok ? apps.match(target.path) : undefined;
  if (target === undefined || !target.ok || match?.kind !== 'app') {
    return { denial: { status: 400, error: 'invalid_request', message: 'The session request names no app of this gateway.' } };
  }
  const denial = match.app.policy.authorize(identity, target.path, 'GET');
  return denial === undefined ? { app: match.app.config.name } : { denial };
}

/** The embed session the request carries: a worker's handle (an app-bound session), else the cookie (never one). */
interface PresentedSession {
  /** The live session it leads to (itself, or the end of its renewal chain when another renewal replaced it). */
  session: FoundSession;
  /** The cookie or handle value the request carried. */
  value: string;
}

async function currentSession(req: IncomingMessage, sessions: Sessions): Promise<PresentedSession | undefined> {
  const handle = sessionHandleOf(req);
  if (handle !== undefined) {
    const found = await sessions.find(handle);
    return found?.record.app === undefined ? undefined : { session: found, value: handle };
  }
  const cookie = findSessionCookie(req.headers.cookie);
  if (cookie.kind !== 'one') return undefined;
  const found = await sessions.find(cookie.value);
  return found === undefined || found.record.kind === 'login' || found.record.app !== undefined ? undefined : { session: found, value: cookie.value };
}

/**
 * CORS for a host page: its exact origin, with credentials, and nothing for any other origin (`null` included).
 * Returns false when the request must be refused.
 */
function allowCrossOrigin(req: IncomingMessage, res: ServerResponse, hostOrigins: ReadonlySet<string>): boolean {
  const origin = req.headers.origin as string;
  if (!hostOrigins.has(origin)) return false;
  res.setHeader('access-control-allow-origin', origin);
  res.setHeader('access-control-allow-credentials', 'true');
  return true;
}

function answerPreflight(req: IncomingMessage, res: ServerResponse): boolean {
  if (req.headers['access-control-request-method'] !== 'POST') return false;
  res.writeHead(204, {
    'access-control-allow-methods': 'POST',
    'access-control-allow-headers': 'authorization, content-type',
    'access-control-max-age': String(PREFLIGHT_MAX_AGE_SECONDS),
    'cache-control': 'no-store',
  });
  res.end();
  return true;
}

export async function handleSessionRequest(req: IncomingMessage, res: ServerResponse, deps: SessionEndpointDeps): Promise<void> {
  const { access, sessions, deny } = deps;
  // Whether CORS headers are sent depends on Origin: caches must keep the answers apart.
  res.setHeader('vary', 'Origin');
  // The frame's own requests, or a host page's CORS request. Browsers name the Origin of every POST and DELETE; only a
  // same-origin GET goes without, and Sec-Fetch-Site says where it comes from. Anything else (curl, a form from
  // nowhere) is refused.
  const fromHost = !access.sameOrigin(req);
  if ((fromHost || req.method !== 'GET') && req.headers.origin === undefined) {
    return deny({ status: 403, error: 'cross_site_request', message: 'Sessions can only be managed by the framed app or an allowed host page.' });
  }
  if (fromHost) {
    const refused: Denial = { status: 403, error: 'origin_not_allowed', message: 'This page\'s origin may not create sessions here.' };
    if (!allowCrossOrigin(req, res, deps.hostOrigins)) return deny(refused);
    if (req.method === 'OPTIONS') return answerPreflight(req, res) ? undefined : deny(refused);
    if (req.method !== 'POST') return deny({ status: 405, error: 'method_not_allowed', message: 'A host page may only POST a token here.' });
  }
  if (req.method === 'GET') {
    const live = await currentSession(req, sessions);
    // A value another renewal replaced still serves requests already on their way, but it is no session to report:
    // the frame is to use the new one.
    return live === undefined || !sessions.isCurrent(live.session, live.value)
      ? deny({ status: 401, error: 'missing_token', message: 'This request carries no live embed session.' })
      : sendJson(res, 200, { expires_at: live.session.record.expiresAt });
  }
  if (req.method !== 'POST' && req.method !== 'DELETE') {
    return deny({ status: 405, error: 'method_not_allowed', message: 'Use POST to start a session and DELETE to end it.' });
  }
  const previous = await currentSession(req, sessions);
  if (req.method === 'DELETE') {
    if (previous !== undefined) await sessions.end(previous.session.id);
    res.writeHead(204, { ...(deps.mode === 'worker' ? {} : { 'set-cookie': clearedSessionCookie() }), 'cache-control': 'no-store' });
    res.end();
    return;
  }
  // A POST must carry the token: a cookie alone (which a cross-site request would bring) never makes a session.
  const result = await authenticateRequest(deps.verifier, req);
  if ('denial' in result) return deny(result.denial);
  // The verifier's clock leeway may pass a token whose exp has just gone by; a session needs time left to live.
  if (result.identity.expiresAt - Math.floor(Date.now() / 1000) < MIN_SESSION_SECONDS) {
    return deny({ status: 401, error: 'token_expired', message: 'JWT Expired: the access token has (almost) expired; send a fresh one.', bearerError: 'invalid_token' });
  }
  const request = await readRequest(req);
  if ('status' in request) return deny(request);
  const allowed = appFor(request, result.identity, deps.apps);
  if ('denial' in allowed) return deny(allowed.denial, result.identity);
  // A worker's session: for the frame itself (never a host page), outside cookie mode, bound to the app it names; its
  // handle is answered, and no cookie is set.
  const worker = request.handle === true && !fromHost && deps.mode !== 'cookie' && allowed.app !== undefined;
  // Worker mode has no cookie sessions: a host page's request (or any without a handle) makes none.
  if (deps.mode === 'worker' && !worker) return sendJson(res, 200, { mode: 'worker' });
  const app = worker ? allowed.app : undefined;
  // Another frame (or attach() of the same page) has just made this session with a token no fresher: it is answered
  // as it is, so that the pages already using it keep it.
  if (previous !== undefined && sessions.isCurrent(previous.session, previous.value) && !sessions.wouldRenew(previous.session, result.identity, app)) {
    const expiresAt = previous.session.record.expiresAt;
    return sendJson(res, 200, worker ? { expires_at: expiresAt, handle: previous.value } : { expires_at: expiresAt });
  }
  // Another user's token with this browser's current cookie (a sign-in as someone else without a sign-out): the
  // old user's session ends, and their WebSockets close. A replaced cookie ends nothing.
  if (previous !== undefined && sessions.isCurrent(previous.session, previous.value) && !sessions.sameUser(previous.session, result.identity)) {
    await sessions.end(previous.session.id);
  }
  // A new id on every renewal: the old cookie (or handle) serves only requests already on their way, for 30 s at most.
  const created = previous === undefined ? await sessions.create(result.identity, app) : await sessions.renew(previous.session.id, result.identity, app);
  const lifetime = created.expiresAt - Math.floor(Date.now() / 1000);
  if (worker) return sendJson(res, 200, { expires_at: created.expiresAt, handle: created.cookieValue });
  sendJson(res, 200, { expires_at: created.expiresAt }, { 'set-cookie': sessionCookie(created.cookieValue, lifetime) });
}
