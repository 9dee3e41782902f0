// An independent relying party for the embedded IdP: openid-client for the protocol, BrowserSession for the pages.
import assert from 'node:assert/strict';
import { createRemoteJWKSet, jwtVerify, type JWTPayload, type JWTVerifyResult } from 'jose';
import * as client from 'openid-client';
import { BrowserSession, type Page } from './browser-session.js';
import { GATEWAY_AUDIENCE } from './idp.js';

export const PASSWORD = 'correct horse battery staple';
export const REDIRECT_URI = 'http://localhost:3000/callback';
export const POST_LOGOUT_URI = 'http://localhost:3000/';

export const ALICE = { username: 'alice', password: PASSWORD, email: 'alice@example.com', name: 'Alice Example', roles: ['admin', 'analyst'] };
export const BOB = { username: 'bob', password: 'bob-password-123', email: 'bob@example.com', roles: ['viewer'] };

export interface Credentials {
  /** A confidential client's secret; public clients (None()) without. */
  secret?: string;
}

/** Every token, device code and authorization code the IdP handed out in this process, to check logs against. */
export const ISSUED_SECRETS = new Set<string>();

/** Records the secrets of JSON responses (token, device authorization), then hands the response on untouched. */
const recordingFetch: client.CustomFetch = async (url, options) => {
  const response = await fetch(url, options as RequestInit);
  if ((response.headers.get('content-type') ?? '').includes('json')) {
    const body = await response.clone().json().catch(() => undefined) as Record<string, unknown> | undefined;
    for (const key of ['access_token', 'refresh_token', 'id_token', 'device_code']) {
      const value = body?.[key];
      if (typeof value === 'string') ISSUED_SECRETS.add(value);
    }
  }
  return response;
};

/** openid-client configuration for a client of the IdP (plain http on loopback is allowed explicitly). */
export async function discover(issuer: string, clientId: string, credentials: Credentials = {}): Promise<client.Configuration> {
  const auth = credentials.secret === undefined ? client.None() : client.ClientSecretBasic(credentials.secret);
  const config = await client.discovery(new URL(issuer), clientId, undefined, auth, { execute: [client.allowInsecureRequests] });
  config[client.customFetch] = recordingFetch;
  return config;
}

/** Asserts that no log line contains an issued secret, a client secret or a password. */
export function assertNoSecretsLogged(logs: string[], extra: string[] = []): void {
  const secrets = [...ISSUED_SECRETS, ...extra, ALICE.password, BOB.password];
  assert.ok(ISSUED_SECRETS.size > 0, 'tokens were issued');
  for (const line of logs) {
    for (const secret of secrets) assert.ok(!line.includes(secret), `a secret appears in the log: ${line.slice(0, 200)}`);
  }
}

export interface AuthorizationRequest {
  scope?: string;
  prompt?: string;
  redirectUri?: string;
  extra?: Record<string, string>;
}

export interface PendingAuthorization {
  url: URL;
  verifier: string;
  nonce: string;
  state: string;
}

export async function authorizationRequest(config: client.Configuration, request: AuthorizationRequest = {}): Promise<PendingAuthorization> {
  const verifier = client.randomPKCECodeVerifier();
  const nonce = client.randomNonce();
  const state = client.randomState();
  const url = client.buildAuthorizationUrl(config, {
    redirect_uri: request.redirectUri ?? REDIRECT_URI,
    scope: request.scope ?? 'openid profile email roles read',
    code_challenge: await client.calculatePKCECodeChallenge(verifier),
    code_challenge_method: 'S256',
    nonce,
    state,
    ...(request.prompt === undefined ? {} : { prompt: request.prompt }),
    ...request.extra,
  });
  return { url, verifier, nonce, state };
}

/** Fills in the real login form of the current page and submits it. */
export function submitLogin(browser: BrowserSession, user: { username: string; password: string }): Promise<Page> {
  return browser.submit({ username: user.username, password: user.password });
}

export function isLoginPage(page: Page): boolean {
  return !page.left && /<input[^>]+name="password"/.test(page.html);
}

export function isConsentPage(page: Page): boolean {
  return !page.left && page.html.includes('Allow access?');
}

/**
 * Runs the browser part of the code flow: opens the authorization URL, signs in through the login form when asked,
 * approves the consent page when shown, and returns the redirect back to the client (not fetched).
 */
export async function browserAuthorize(
  browser: BrowserSession, pending: PendingAuthorization, user: { username: string; password: string } | undefined,
): Promise<URL> {
  let page = await browser.get(pending.url);
  if (isLoginPage(page)) {
    assert.ok(user !== undefined, 'the IdP asked for a login');
    page = await submitLogin(browser, user);
  }
  if (isConsentPage(page)) page = await browser.submit({}, { button: 'Allow' });
  assert.ok(page.left, `expected a redirect back to the client, got ${page.status} at ${page.url}:\n${page.html.slice(0, 2000)}`);
  return new URL(page.url);
}

export interface SignInResult {
  tokens: client.TokenEndpointResponse & client.TokenEndpointResponseHelpers;
  pending: PendingAuthorization;
  callback: URL;
}

/** The whole code + PKCE flow as a relying party does it, ending in a verified token response. */
export async function signIn(
  config: client.Configuration,
  browser: BrowserSession,
  user: { username: string; password: string } | undefined,
  request: AuthorizationRequest & { tokenParameters?: Record<string, string> } = {},
): Promise<SignInResult> {
  const pending = await authorizationRequest(config, request);
  const callback = await browserAuthorize(browser, pending, user);
  const code = callback.searchParams.get('code');
  if (code !== null) ISSUED_SECRETS.add(code);
  const tokens = await client.authorizationCodeGrant(config, callback, {
    pkceCodeVerifier: pending.verifier,
    expectedNonce: pending.nonce,
    expectedState: pending.state,
    idTokenExpected: true,
  }, request.tokenParameters);
  return { tokens, pending, callback };
}

/** Verifies a JWT access token for the gateway resource against the IdP's published JWKS. */
export async function verifyAccessToken(config: client.Configuration, token: string): Promise<JWTVerifyResult<JWTPayload>> {
  const { issuer, jwks_uri: jwksUri } = config.serverMetadata();
  assert.ok(jwksUri !== undefined, 'discovery names a jwks_uri');
  return jwtVerify(token, idpJwks(jwksUri), { issuer, audience: GATEWAY_AUDIENCE, typ: 'at+jwt', algorithms: ['RS256'] });
}

/** The IdP's published keys, as any resource server would fetch them. */
export function idpJwks(jwksUri: string): ReturnType<typeof createRemoteJWKSet> {
  return createRemoteJWKSet(new URL(jwksUri));
}

/** A token-endpoint (or other OAuth endpoint) error as openid-client reports it. */
export async function oauthError(promise: Promise<unknown>): Promise<{ error: string; status: number | undefined }> {
  try {
    await promise;
  } catch (error) {
    if (error instanceof client.ResponseBodyError) return { error: error.error, status: error.status };
    if (error instanceof client.WWWAuthenticateChallengeError) {
      // A 401 with a challenge (e.g. invalid_client): the body still carries the OAuth error.
      const body = await error.response.json() as { error?: string };
      return { error: body.error ?? error.cause[0]?.parameters.error ?? '', status: error.status };
    }
    throw error;
  }
  assert.fail('expected an OAuth error response');
}
