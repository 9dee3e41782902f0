// The access decision shared by HTTP requests, WebSocket upgrades and forward-auth checks.
import type { IncomingMessage } from 'node:http';
import type { Logger } from 'pino';
import type { Identity } from '../identity/identity.js';
import type { Denial } from '../http/respond.js';
import type { GatewayMetrics } from '../ops/metrics.js';
import type { TokenVerifier } from '../tokens/verifier.js';
import type { MountedApp } from './apps.js';
import { findSessionCookie, SESSION_COOKIE } from '../embed/cookies.js';
import { sessionHandleOf, ticketOf } from '../embed/worker-credentials.js';
import type { FoundSession, Sessions } from '../sessions/sessions.js';
import { LOGIN_SESSION_COOKIE } from '../login/cookies.js';
import type { SessionLifecycle } from '../login/session-lifecycle.js';
import { authenticateRequest, knownBearer } from './authenticate.js';

export type Decision =
  | { kind: 'public' }
  | { kind: 'allow'; identity: Identity; sessionId?: string }
  | { kind: 'deny'; denial: Denial; identity?: Identity };

/** Who the caller is, and whether it came with a bearer token or an embed session cookie. */
export type Authentication = { identity: Identity; sessionId?: string } | { denial: Denial };

const SAFE_METHODS = new Set(['GET', 'HEAD', 'OPTIONS']);
const SESSION_EXPIRED: Denial = { status: 401, error: 'session_expired', message: 'JWT Expired: the session has ended; sign in again.', bearerError: 'invalid_token' };
const INVALID_TICKET: Denial = { status: 401, error: 'invalid_ticket', message: 'The WebSocket ticket is unknown, used, expired or for another app.', bearerError: 'invalid_token' };
/** The embed session (partitioned, in frames) first, then the standalone login session (first-party). */
const SESSION_COOKIES = [SESSION_COOKIE, LOGIN_SESSION_COOKIE];

const PUBLIC: Decision = { kind: 'public' };

/** A worker's session, good for its own app only (and the gateway's own endpoints, which check it themselves). */
function handleOutcome(session: FoundSession, app: string | undefined): Authentication {
  const usable = session.record.app !== undefined && (app === undefined || session.record.app === app);
  return usable ? { identity: session.identity, sessionId: session.id } : { denial: SESSION_EXPIRED };
}

/** The app's policy for this path and method applied to an authentication. */
function authorize(app: MountedApp, path: string, method: string, result: Authentication): Decision {
  if ('denial' in result) return { kind: 'deny', denial: result.denial };
  const denial = app.policy.authorize(result.identity, path, method);
  if (denial !== undefined) return { kind: 'deny', denial, identity: result.identity };
  return result.sessionId === undefined ? { kind: 'allow', identity: result.identity } : { kind: 'allow', identity: result.identity, sessionId: result.sessionId };
}

export interface AuditContext {
  requestId: string;
  ip: string;
  method: string;
  path: string;
}

export class AccessControl {
  constructor(
    private readonly verifier: TokenVerifier,
    private readonly sessions: Sessions,
    /** Idle timeout and refresh of login sessions, when sign-in is configured. */
    private readonly lifecycle: SessionLifecycle | undefined,
    private readonly ownOrigin: string,
    private readonly metrics: GatewayMetrics,
    private readonly logger: Logger,
  ) {}

  /**
   * A bearer token wins; without one, a WebSocket ticket for `app`, an embed session handle (worker mode), then a
   * session cookie. `method` is the request's, or for forward-auth the method of the request the proxy checks. A
   * cookie-authenticated request that changes state must come from the gateway's own origin (the framed app), so
   * another site cannot ride on the cookie; a handle needs no such check, as no other site can set that header (the
   * gateway answers no CORS request for it).
   */
  async authenticate(req: IncomingMessage, app?: string, method = req.method ?? 'GET'): Promise<Authentication> {
    const bearer = await authenticateRequest(this.verifier, req);
    if (!('denial' in bearer) || bearer.denial.error !== 'missing_token') return bearer;
    return this.authenticateSession(req, app, bearer, method);
  }

  /**
   * What authenticate() would answer, when memory alone can tell: a bearer token the verifier has cached, or (with no
   * Authorization header) an embed session handle or cookie read before and unchanged in the store since. Undefined
   * whenever it would need the verifier, the store or a login session: authenticate() then decides.
   */
  authenticateFromMemory(req: IncomingMessage, app: string, method: string): Authentication | undefined {
    const authorization = req.headers.authorization;
    if (authorization !== undefined && authorization !== '') {
      const identity = knownBearer(this.verifier, authorization);
      return identity === undefined ? undefined : { identity };
    }
    if (req.headers.upgrade !== undefined) return undefined;
    const handle = sessionHandleOf(req);
    if (handle !== undefined) {
      const session = this.sessions.findKnown(handle);
      return session === undefined ? undefined : handleOutcome(session, app);
    }
    const cookie = findSessionCookie(req.headers.cookie, SESSION_COOKIE);
    if (cookie.kind !== 'one') return undefined;
    const session = this.sessions.findKnown(cookie.value);
    return session === undefined || session.record.app !== undefined ? undefined : this.cookieOutcome(session, req, method);
  }

  /**
   * The session a request carries, whatever bearer it has too (the frame script may add one): for the gateway's own
   * session-bound endpoints. `none` is the outcome when it carries no session at all.
   */
  async authenticateSession(
    req: IncomingMessage, app?: string, none: Authentication = { denial: SESSION_EXPIRED }, method = req.method ?? 'GET',
  ): Promise<Authentication> {
    const ticket = app === undefined ? undefined : ticketOf(req);
    if (ticket !== undefined) {
      const session = await this.sessions.redeemTicket(ticket, app as string);
      return session === undefined || session.record.kind === 'login' ? { denial: INVALID_TICKET } : { identity: session.identity, sessionId: session.id };
    }
    const handle = sessionHandleOf(req);
    if (handle !== undefined) {
      const session = await this.liveSession(handle, false);
      return session === undefined ? { denial: SESSION_EXPIRED } : handleOutcome(session, app);
    }
    let outcome: Authentication = none;
    for (const name of SESSION_COOKIES) {
      const cookie = findSessionCookie(req.headers.cookie, name);
      if (cookie.kind === 'none') continue;
      if (cookie.kind === 'duplicate') {
        return { denial: { status: 400, error: 'duplicate_cookie', message: 'The session cookie was sent twice.' } };
      }
      const session = await this.liveSession(cookie.value, name === LOGIN_SESSION_COOKIE);
      // A worker's handle is never a cookie.
      if (session === undefined || session.record.app !== undefined) {
        outcome = { denial: SESSION_EXPIRED };
        continue;
      }
      return this.cookieOutcome(session, req, method);
    }
    return outcome;
  }

  /** A live session that came in a cookie: it may change data only from the gateway's own origin. */
  private cookieOutcome(session: FoundSession, req: IncomingMessage, method: string): Authentication {
    if (!SAFE_METHODS.has(method) && !this.sameOrigin(req)) {
      return { denial: { status: 403, error: 'cross_site_request', message: 'Session requests that change data must come from the app itself.' } };
    }
    return { identity: session.identity, sessionId: session.id };
  }

  /**
   * The session a cookie names, if it is of that cookie's kind (a login session's id in the embed cookie is no
   * session) and still live: a login session also passes its idle timeout and token refresh.
   */
  private async liveSession(cookieValue: string, loginCookie: boolean): Promise<FoundSession | undefined> {
    const found = await this.sessions.find(cookieValue);
    if (found === undefined || (found.record.kind === 'login') !== loginCookie) return undefined;
    return loginCookie ? this.lifecycle?.current(found) : found;
  }

  /** True when the browser says the request comes from the gateway's own origin. */
  sameOrigin(req: IncomingMessage): boolean {
    const origin = req.headers.origin;
    if (origin !== undefined) return origin === this.ownOrigin;
    return req.headers['sec-fetch-site'] === 'same-origin';
  }

  /** Public path → public; else authenticate and apply the app's policy for this path and method. */
  async decide(req: IncomingMessage, app: MountedApp, path: string, method: string): Promise<Decision> {
    if (app.policy.isPublic(path)) return PUBLIC;
    return authorize(app, path, method, await this.authenticate(req, app.config.name));
  }

  /**
   * decide(), when memory alone can tell (see authenticateFromMemory), without a promise: the common request of a
   * known token or embed session is decided in the turn it arrived in. Undefined: ask decide().
   */
  decideFromMemory(req: IncomingMessage, app: MountedApp, path: string, method: string): Decision | undefined {
    if (app.policy.isPublic(path)) return PUBLIC;
    const result = this.authenticateFromMemory(req, app.config.name, method);
    return result === undefined ? undefined : authorize(app, path, method, result);
  }

  /** Counts and writes the audit line for a denial; nothing secret is in it. */
  audit(denial: Denial, context: AuditContext, app: string | undefined, identity?: Identity): void {
    this.metrics.authFailures.inc({ reason: denial.error });
    this.logger.warn({
      audit: 'deny',
      reqId: context.requestId,
      status: denial.status,
      reason: denial.error,
      app,
      method: context.method,
      path: context.path,
      ip: context.ip,
      sub: identity?.subject,
      iss: identity?.issuer,
    }, 'request denied');
  }
}
