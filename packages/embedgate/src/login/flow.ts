// Standalone sign-in with openid-client: the redirect to the provider (PKCE S256, state, nonce) and the callback
// (state, used once, RFC 9207 iss, the code exchange, the ID token, userinfo's sub, and the access token checked like any
// bearer token), which makes a first-party session. Failures get one generic page; nothing from the request is echoed.
import type { IncomingMessage, ServerResponse } from 'node:http';
import * as client from 'openid-client';
import type { Logger } from 'pino';
import type { GatewayConfig, LoginConfig } from '../config/schema.js';
import { findSessionCookie } from '../embed/cookies.js';
import { normalizeTarget } from '../http/path.js';
import { sendDenial, type Denial } from '../http/respond.js';
import type { Identity } from '../identity/identity.js';
import { SessionStoreUnavailableError } from '../sessions/errors.js';
import type { Sessions } from '../sessions/sessions.js';
import { TokenError } from '../tokens/errors.js';
import type { TokenVerifier } from '../tokens/verifier.js';
import { endBrowserSession, LOGIN_SESSION_COOKIE, loginSessionCookie } from './cookies.js';
import { failureReason, PROVIDER_UNAVAILABLE, type LoginProvider } from './provider.js';
import type { Sealer } from './sealed.js';
import { TRANSACTION_SECONDS, Transactions } from './transactions.js';

export const CALLBACK_PATH = '/_embedgate/callback';
export const SIGN_IN_PATH = '/_embedgate/login';
/** Longest return path kept in a sign-in cookie (the rest of its sealed content takes about 700 bytes). */
const MAX_RETURN_PATH = 2048;

const LOGIN_FAILED: Denial = { status: 400, error: 'login_failed', message: 'Sign-in did not complete. Go back to the app and open it again.' };
/** The provider signed the user in but its access token is not one the gateway takes: the operator must act. */
const NOT_FOR_GATEWAY: Denial = {
  status: 502,
  error: 'login_misconfigured',
  message: 'You signed in, but the identity provider\'s access token is not a JWT for this gateway, so no session was made. '
    + 'The gateway\'s administrator must set login.resource (login.audience for Auth0) to the gateway\'s audience; the gateway\'s log says more.',
};
/** Token failures that mean the provider was not asked for (or does not issue) a JWT for the gateway's audience. */
const NOT_FOR_GATEWAY_REASONS = new Set(['malformed_token', 'unsupported_token_format', 'invalid_audience']);

class AccessTokenNotForGateway extends Error {}

export interface LoginDeps {
  config: GatewayConfig;
  login: LoginConfig;
  provider: LoginProvider;
  verifier: TokenVerifier;
  sessions: Sessions;
  /** Seals the sign-ins in progress (cookies). */
  transactionSealer: Sealer;
  /** Seals the refresh token kept with a session. */
  tokenSealer: Sealer;
  extraParameters: Record<string, string>;
  logger: Logger;
}

/** `rd` when it is a path of this gateway (no scheme, host, backslash or control characters); else undefined. */
export function safeReturnPath(rd: string | null): string | undefined {
  if (rd === null || !rd.startsWith('/') || rd.startsWith('//') || /[\\\x00-\x20\x7f]/.test(rd)) return undefined;
  const target = normalizeTarget(rd);
  return target.ok ? `${target.path}${target.query}` : undefined;
}

export class LoginFlow {
  private readonly transactions: Transactions;
  private readonly redirectUri: string;
  private readonly publicUrl: URL;

  constructor(private readonly deps: LoginDeps) {
    this.transactions = new Transactions(deps.transactionSealer, deps.login.max_parallel_logins);
    this.publicUrl = new URL(deps.config.public_url);
    this.redirectUri = new URL(CALLBACK_PATH, this.publicUrl).href;
  }

  /**
   * GET /_embedgate/login?rd=/path: ends the session the browser has (if any) and signs in afresh, then goes to
   * `rd` when it is a path of this gateway, else to the first app.
   */
  async signIn(req: IncomingMessage, res: ServerResponse, requestId: string): Promise<void> {
    const query = new URL(req.url ?? '/', this.publicUrl).searchParams;
    const returnTo = safeReturnPath(query.get('rd')) ?? this.deps.config.apps[0]?.prefix ?? '/';
    await endBrowserSession(this.deps.sessions, req.headers.cookie);
    return this.start(req, res, returnTo, requestId);
  }

  /** Sends the browser to the provider's sign-in page; it comes back to `returnTo`, a path of this gateway. */
  async start(req: IncomingMessage, res: ServerResponse, returnTo: string, requestId: string): Promise<void> {
    let provider: client.Configuration;
    try {
      provider = await this.deps.provider.configuration();
    } catch (error) {
      this.deps.logger.warn({ err: (error as Error).message }, 'sign-in provider discovery failed');
      return sendDenial(req, res, PROVIDER_UNAVAILABLE, requestId);
    }
    const verifier = client.randomPKCECodeVerifier();
    const state = client.randomState();
    const nonce = client.randomNonce();
    const url = client.buildAuthorizationUrl(provider, {
      redirect_uri: this.redirectUri,
      scope: this.deps.login.scopes.join(' '),
      code_challenge: await client.calculatePKCECodeChallenge(verifier),
      code_challenge_method: 'S256',
      state,
      nonce,
      ...(this.deps.login.prompt === undefined ? {} : { prompt: this.deps.login.prompt }),
      ...this.deps.extraParameters,
    });
    const cookies = await this.transactions.begin({ state, nonce, verifier, returnTo: this.keptReturnPath(returnTo) }, req.headers.cookie);
    // A session cookie the browser still sends is dead (or about to be replaced): it goes.
    if (findSessionCookie(req.headers.cookie, LOGIN_SESSION_COOKIE).kind !== 'none') cookies.push(loginSessionCookie('', 0));
    res.writeHead(302, { location: url.href, 'set-cookie': cookies, 'cache-control': 'no-store', 'referrer-policy': 'no-referrer' });
    res.end();
  }

  /**
   * The page to come back to, short enough for its sealed cookie to stay under browsers' 4 KB: a long query is
   * dropped, and a path too long even without it gives way to the first app.
   */
  private keptReturnPath(returnTo: string): string {
    if (returnTo.length <= MAX_RETURN_PATH) return returnTo;
    const path = returnTo.split('?')[0] as string;
    return path.length <= MAX_RETURN_PATH ? path : this.deps.config.apps[0]?.prefix ?? '/';
  }

  /** The provider's answer: a session and a redirect back to where the user was, or the generic failure page. */
  async callback(req: IncomingMessage, res: ServerResponse, requestId: string): Promise<void> {
    // The URL as the provider redirected to it: the configured public URL, never the Host header.
    const current = new URL(req.url ?? '/', this.publicUrl);
    // This URL holds the code and state: no page or redirect from it may pass it on in Referer.
    res.setHeader('referrer-policy', 'no-referrer');
    const state = current.searchParams.get('state');
    const found = state === null ? undefined : await this.transactions.find(state, req.headers.cookie);
    if (found === undefined) return this.fail(req, res, requestId, 'no sign-in in progress for this answer');
    res.setHeader('set-cookie', found.clear);
    // A replayed answer (browser history, a leaked URL with the cookie) never reaches the token endpoint.
    if (!(await this.deps.sessions.store.claimOnce(`login-state:${found.transaction.state}`, TRANSACTION_SECONDS))) {
      return this.fail(req, res, requestId, 'this answer was already used');
    }
    try {
      const provider = await this.deps.provider.configuration();
      const tokens = await client.authorizationCodeGrant(provider, current, {
        pkceCodeVerifier: found.transaction.verifier,
        expectedState: found.transaction.state,
        expectedNonce: found.transaction.nonce,
        idTokenExpected: true,
      }, this.deps.extraParameters);
      const idToken = tokens.claims();
      if (idToken === undefined) throw new Error('no ID token');
      const identity = await this.withUserInfo(provider, await this.verifyAccessToken(tokens.access_token), tokens.access_token, idToken.sub);
      if (identity.subject !== idToken.sub || identity.issuer !== idToken.iss) {
        throw new Error('the access token and the ID token do not name the same user');
      }
      const now = Math.floor(Date.now() / 1000);
      const refreshable = tokens.refresh_token !== undefined;
      // Without a refresh token the session cannot outlive its access token.
      const expiresAt = now + this.deps.login.session_max_seconds;
      const session = await this.deps.sessions.createLogin(identity, {
        expiresAt: refreshable ? expiresAt : Math.min(expiresAt, identity.expiresAt),
        sid: typeof idToken.sid === 'string' ? idToken.sid : undefined,
        secrets: refreshable ? await this.deps.tokenSealer.seal({ refresh_token: tokens.refresh_token }, this.deps.login.session_max_seconds) : undefined,
      });
      this.deps.logger.info({ audit: 'login', sub: identity.subject, iss: identity.issuer }, 'signed in');
      res.writeHead(302, {
        location: found.transaction.returnTo,
        'set-cookie': [found.clear, loginSessionCookie(session.cookieValue, session.expiresAt - now)],
        'cache-control': 'no-store',
      });
      res.end();
    } catch (error) {
      if (error instanceof SessionStoreUnavailableError) throw error;   // 503 from the gateway, not a failed sign-in
      if (error instanceof AccessTokenNotForGateway) {
        this.deps.logger.warn({ audit: 'login_failed', reason: error.message }, 'sign-in failed: configuration');
        return sendDenial(req, res, NOT_FOR_GATEWAY, requestId);
      }
      this.fail(req, res, requestId, failureReason(error));
    }
  }

  /** The access token from the code exchange, checked like any bearer token, with a fix named when it is not for us. */
  private async verifyAccessToken(token: string): Promise<Identity> {
    try {
      return await this.deps.verifier.verify(token);
    } catch (error) {
      if (!(error instanceof TokenError) || !NOT_FOR_GATEWAY_REASONS.has(error.reason)) throw error;
      const { issuer, resource, audience } = this.deps.login;
      const asked = resource !== undefined ? `login.resource ${resource}` : audience !== undefined ? `login.audience ${audience}` : 'no audience (login.resource and login.audience are unset)';
      throw new AccessTokenNotForGateway(`the access token ${issuer} issued at sign-in is not a JWT for this gateway (${error.message}); sign-in asked for ${asked}. `
        + `Set login.resource (login.audience for Auth0) to one of the issuer's audiences, and make sure the provider issues JWT access tokens for it`);
    }
  }

  private fail(req: IncomingMessage, res: ServerResponse, requestId: string, reason: string): void {
    this.deps.logger.info({ audit: 'login_failed', reason }, 'sign-in failed');
    sendDenial(req, res, LOGIN_FAILED, requestId);
  }

  /**
   * Userinfo must name the ID token's user; its email fills in what the access token lacks. A provider that does not
   * take this access token at userinfo (one issued for another resource) answers with a challenge: no data, no harm.
   */
  private async withUserInfo(provider: client.Configuration, identity: Identity, accessToken: string, subject: string): Promise<Identity> {
    if (provider.serverMetadata().userinfo_endpoint === undefined) return identity;
    let info: client.UserInfoResponse;
    try {
      info = await client.fetchUserInfo(provider, accessToken, subject);
    } catch (error) {
      if (error instanceof client.WWWAuthenticateChallengeError) return identity;
      throw error;
    }
    return {
      ...identity,
      email: identity.email ?? (typeof info.email === 'string' ? info.email : undefined),
      emailVerified: identity.emailVerified ?? (typeof info.email_verified === 'boolean' ? info.email_verified : undefined),
    };
  }
}
