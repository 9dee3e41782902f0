// Standalone sign-in with openid-client: the redirect to the provider (PKCE S256, state, nonce) and the callback
// (state, RFC 9207 iss, the code exchange, the ID token, and the access token checked like any bearer token),
// which makes a first-party session. Failures get one generic page; nothing from the request is echoed.
import type { IncomingMessage, ServerResponse } from 'node:http';
import * as client from 'openid-client';
import type { Logger } from 'pino';
import type { GatewayConfig, LoginConfig } from '../config/schema.js';
import type { EmbedSessions } from '../embed/sessions.js';
import { sendDenial, type Denial } from '../http/respond.js';
import { SessionStoreUnavailableError } from '../sessions/errors.js';
import type { TokenVerifier } from '../tokens/verifier.js';
import { loginSessionCookie } from './cookies.js';
import { Sealer } from './sealed.js';
import { Transactions } from './transactions.js';

export const CALLBACK_PATH = '/_embedgate/callback';

const LOGIN_FAILED: Denial = { status: 400, error: 'login_failed', message: 'Sign-in did not complete. Go back to the app and open it again.' };
const PROVIDER_UNAVAILABLE: Denial = { status: 503, error: 'idp_unavailable', message: 'The sign-in service cannot be reached; try again shortly.' };

export interface LoginDeps {
  config: GatewayConfig;
  login: LoginConfig;
  verifier: TokenVerifier;
  sessions: EmbedSessions;
  logger: Logger;
}

export class LoginFlow {
  private discovered: Promise<client.Configuration> | undefined;
  private readonly transactions: Transactions;
  /** Seals the provider tokens a session keeps (the refresh token). */
  private readonly tokenSealer: Sealer;
  private readonly redirectUri: string;
  private readonly publicUrl: URL;

  constructor(private readonly deps: LoginDeps) {
    this.transactions = new Transactions(new Sealer(deps.login.encryption_key, 'login transactions'), deps.login.max_parallel_logins);
    this.tokenSealer = new Sealer(deps.login.encryption_key, 'session tokens');
    this.publicUrl = new URL(deps.config.public_url);
    this.redirectUri = new URL(CALLBACK_PATH, this.publicUrl).href;
  }

  /** The provider's metadata, discovered once (again after a failure). */
  provider(): Promise<client.Configuration> {
    const { issuer, client_id: clientId, client_secret: secret } = this.deps.login;
    const url = new URL(issuer);
    this.discovered ??= client.discovery(url, clientId, undefined, secret === undefined ? client.None() : client.ClientSecretBasic(secret),
      url.protocol === 'http:' ? { execute: [client.allowInsecureRequests] } : undefined)
      .catch((error: unknown) => {
        this.discovered = undefined;
        throw error;
      });
    return this.discovered;
  }

  private get extraParameters(): Record<string, string> {
    const { resource, audience } = this.deps.login;
    return { ...(resource === undefined ? {} : { resource }), ...(audience === undefined ? {} : { audience }) };
  }

  /** Sends the browser to the provider's sign-in page; it comes back to `returnTo`, a path of this gateway. */
  async start(req: IncomingMessage, res: ServerResponse, returnTo: string, requestId: string): Promise<void> {
    let provider: client.Configuration;
    try {
      provider = await this.provider();
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
      ...this.extraParameters,
    });
    const cookies = await this.transactions.begin({ state, nonce, verifier, returnTo }, req.headers.cookie);
    res.writeHead(302, { location: url.href, 'set-cookie': cookies, 'cache-control': 'no-store', 'referrer-policy': 'no-referrer' });
    res.end();
  }

  /** The provider's answer: a session and a redirect back to where the user was, or the generic failure page. */
  async callback(req: IncomingMessage, res: ServerResponse, requestId: string): Promise<void> {
    // The URL as the provider redirected to it: the configured public URL, never the Host header.
    const current = new URL(req.url ?? '/', this.publicUrl);
    const state = current.searchParams.get('state');
    const found = state === null ? undefined : await this.transactions.find(state, req.headers.cookie);
    if (found === undefined) {
      this.deps.logger.info({ audit: 'login_failed', reason: 'no sign-in in progress for this answer' }, 'sign-in failed');
      return sendDenial(req, res, LOGIN_FAILED, requestId);
    }
    res.setHeader('set-cookie', found.clear);
    try {
      const provider = await this.provider();
      const tokens = await client.authorizationCodeGrant(provider, current, {
        pkceCodeVerifier: found.transaction.verifier,
        expectedState: found.transaction.state,
        expectedNonce: found.transaction.nonce,
        idTokenExpected: true,
      }, this.extraParameters);
      const idToken = tokens.claims();
      const identity = await this.deps.verifier.verify(tokens.access_token);
      if (idToken === undefined || identity.subject !== idToken.sub || identity.issuer !== idToken.iss) {
        throw new Error('the access token and the ID token do not name the same user');
      }
      const secrets = await this.tokenSealer.seal(
        tokens.refresh_token === undefined ? {} : { refresh_token: tokens.refresh_token }, this.deps.login.session_max_seconds);
      const session = await this.deps.sessions.create(identity, this.deps.login.session_max_seconds, secrets);
      this.deps.logger.info({ audit: 'login', sub: identity.subject, issuer: identity.issuer }, 'signed in');
      res.writeHead(302, {
        location: found.transaction.returnTo,
        'set-cookie': [found.clear, loginSessionCookie(session.cookieValue, session.expiresAt - Math.floor(Date.now() / 1000))],
        'cache-control': 'no-store',
        'referrer-policy': 'no-referrer',
      });
      res.end();
    } catch (error) {
      if (error instanceof SessionStoreUnavailableError) throw error;   // 503 from the gateway, not a failed sign-in
      this.deps.logger.info({ audit: 'login_failed', reason: (error as Error).message }, 'sign-in failed');
      sendDenial(req, res, LOGIN_FAILED, requestId);
    }
  }
}
