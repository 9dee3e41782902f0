// OpenID Connect Back-Channel Logout: POST /_embedgate/backchannel-logout from the provider with a logout token.
// The token is checked like an ID token (the provider's keys, the one ID token algorithm, iss, aud = our client id,
// iat) and as a logout token (the back-channel logout event, no nonce, sid or sub, a jti seen only once on any
// instance); then the sessions it names end everywhere, open WebSockets included.
import type { IncomingMessage, ServerResponse } from 'node:http';
import { jwtVerify, type JWTPayload } from 'jose';
import type { Logger } from 'pino';
import type { LoginConfig } from '../config/schema.js';
import { readBody } from '../gateway/body.js';
import { sendJson } from '../http/respond.js';
import { SessionStoreUnavailableError } from '../sessions/errors.js';
import type { Sessions } from '../sessions/sessions.js';
import { IdpUnavailableError } from '../tokens/errors.js';
import type { TokenVerifier } from '../tokens/verifier.js';

export const BACKCHANNEL_LOGOUT_PATH = '/_embedgate/backchannel-logout';

const LOGOUT_EVENT = 'http://schemas.openid.net/event/backchannel-logout';
const MAX_BODY_BYTES = 16 * 1024;
/** Logout tokens are delivered at once: one older than this is refused. */
const MAX_AGE_SECONDS = 600;
/** A jti is remembered this long (past any logout token's acceptable age). */
const JTI_MEMORY_SECONDS = MAX_AGE_SECONDS + 300;
const ACCEPTED_TYPES = new Set(['logout+jwt', 'application/logout+jwt', 'jwt']);

export interface BackchannelDeps {
  login: LoginConfig;
  verifier: TokenVerifier;
  sessions: Sessions;
  logger: Logger;
}

class LogoutTokenError extends Error {}

function refuse(reason: string): never {
  throw new LogoutTokenError(reason);
}

/** What a checked logout token names: its jti, and the provider session and/or the user whose sessions end. */
interface LogoutToken {
  jti: string;
  sid: string | undefined;
  sub: string | undefined;
}

/** A sid or sub claim: absent, or a non-empty string (a malformed sid must not widen a logout to all of the user's sessions). */
function identifier(claims: JWTPayload, name: 'sid' | 'sub'): string | undefined {
  const value = claims[name];
  if (value === undefined) return undefined;
  if (typeof value !== 'string' || value === '') refuse(`${name} is not a non-empty string`);
  return value;
}

/** Checks a logout token; returns what it names or throws LogoutTokenError naming what is wrong. */
async function verifyLogoutToken(token: string, deps: BackchannelDeps): Promise<LogoutToken> {
  const keys = deps.verifier.keysOf(deps.login.issuer);
  if (keys === undefined) refuse('the sign-in issuer is not trusted');
  let claims: JWTPayload;
  let typ: unknown;
  try {
    const verified = await jwtVerify(token, keys, {
      issuer: deps.login.issuer,
      audience: deps.login.client_id,
      algorithms: [deps.login.id_token_signing_alg],
      requiredClaims: ['iat', 'exp', 'jti', 'events'],
      maxTokenAge: MAX_AGE_SECONDS,
      clockTolerance: 30,
    });
    claims = verified.payload;
    typ = verified.protectedHeader.typ;
  } catch (error) {
    if (error instanceof IdpUnavailableError) throw error;
    refuse(`the logout token is invalid (${(error as { code?: string }).code ?? 'unreadable'})`);
  }
  if (typ !== undefined && (typeof typ !== 'string' || !ACCEPTED_TYPES.has(typ.toLowerCase()))) refuse('the token is not a logout token');
  const events = claims.events;
  if (typeof events !== 'object' || events === null || Array.isArray(events)) refuse('events is not an object');
  const event = (events as Record<string, unknown>)[LOGOUT_EVENT];
  if (typeof event !== 'object' || event === null || Array.isArray(event)) refuse('events has no back-channel logout event');
  if (claims.nonce !== undefined) refuse('a logout token must not carry a nonce');
  const sid = identifier(claims, 'sid');
  const sub = identifier(claims, 'sub');
  if (sid === undefined && sub === undefined) refuse('the logout token names neither sid nor sub');
  if (typeof claims.jti !== 'string' || claims.jti === '') refuse('jti is missing');
  return { jti: claims.jti, sid, sub };
}

/**
 * Ends what the token names: with a sid, the sessions made in that provider session; with a sub, every embed
 * session of the user (frames get a fresh one from the host page if the host's sign-in lives on), and every login
 * session of the user when no sid narrows it down.
 */
async function endSessions({ sid, sub }: LogoutToken, deps: BackchannelDeps): Promise<number> {
  const issuer = deps.login.issuer;
  let ended = 0;
  if (sid !== undefined) ended += await deps.sessions.endWhere(issuer, { sid });
  if (sub !== undefined) {
    ended += await deps.sessions.endWhere(issuer, sid === undefined ? { subject: sub } : { subject: sub, only: 'embed' });
  }
  return ended;
}

export async function handleBackchannelLogout(req: IncomingMessage, res: ServerResponse, deps: BackchannelDeps): Promise<void> {
  const badRequest = (description: string): void => sendJson(res, 400, { error: 'invalid_request', error_description: description });
  if (req.method !== 'POST') {
    res.setHeader('allow', 'POST');
    return sendJson(res, 405, { error: 'method_not_allowed', error_description: 'Send the logout token with POST.' });
  }
  if ((req.headers['content-type'] ?? '').split(';')[0]?.trim().toLowerCase() !== 'application/x-www-form-urlencoded') {
    return badRequest('the body must be application/x-www-form-urlencoded');
  }
  const body = await readBody(req, MAX_BODY_BYTES);
  if (!body.ok) return badRequest(body.tooLarge ? 'the body is too large' : 'the body could not be read');
  const tokens = new URLSearchParams(body.body.toString('utf8')).getAll('logout_token');
  if (tokens.length !== 1 || tokens[0] === '') return badRequest('send exactly one logout_token');
  try {
    const logout = await verifyLogoutToken(tokens[0] as string, deps);
    if (!(await deps.sessions.store.claimOnce(`logout-jti:${deps.login.issuer}:${logout.jti}`, JTI_MEMORY_SECONDS))) {
      refuse('this logout token was already used');
    }
    const ended = await endSessions(logout, deps);
    deps.logger.info({ audit: 'backchannel_logout', sub: logout.sub, sessions: ended }, 'back-channel logout');
    res.writeHead(200, { 'cache-control': 'no-store', 'content-length': 0 });
    res.end();
  } catch (error) {
    if (error instanceof SessionStoreUnavailableError) throw error;
    if (error instanceof IdpUnavailableError) {
      return sendJson(res, 503, { error: 'temporarily_unavailable', error_description: 'the provider\'s keys cannot be loaded' });
    }
    deps.logger.warn({ audit: 'backchannel_logout_refused', reason: (error as Error).message }, 'back-channel logout refused');
    badRequest((error as Error).message);
  }
}
