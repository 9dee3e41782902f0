// Standalone sign-in against a hostile OpenID Provider (security cases 1–15, 17–19, 29–41, and private_key_jwt): every ID
// token, authorization response, token response and userinfo answer that is wrong in one way makes the sign-in fail
// with the generic page, no session and no further call to the provider; refreshed tokens naming someone else end the
// session. Real gateway, real HTTP, the hostile OP of support/hostile-op.ts.
import assert from 'node:assert/strict';
import { createHash, KeyObject, randomBytes, type webcrypto } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, beforeEach, describe, it, type TestContext } from 'node:test';
import { exportPKCS8, exportSPKI, generateKeyPair } from 'jose';
import { ConfigError, parseConfig } from '../src/config/load.js';
import { eventually, startGateway, type RunningGateway } from './support/gateway.js';
import { startHostileOp, type HostileOp } from './support/hostile-op.js';
import {
  DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET, DEFAULT_SUBJECT, TOKEN_PATH, USERINFO_PATH,
  type TokenContext, type TokenScenario,
} from './support/hostile-op-login.js';
import { freePort } from './support/idp.js';
import { rawRequest, type RawResponse } from './support/raw-http.js';
import { startUpstream, type Upstream } from './support/upstream.js';

const SESSION_COOKIE = '__Host-embedgate-session';
const TX_COOKIE_PREFIX = '__Host-embedgate-tx-';
const CALLBACK = '/_embedgate/callback';
/** A top-level page load: what starts a sign-in. */
const NAVIGATION = ['Sec-Fetch-Dest: document', 'Sec-Fetch-Mode: navigate', 'Sec-Fetch-Site: none', 'Accept: text/html'];
const SCRIPT = '<script>alert(1)</script>';

let op: HostileOp;
let upstream: Upstream;
/** A gateway signing in with the hostile OP under the default settings, shared by the tests that need nothing else. */
let gw: RunningGateway;
const scratch = mkdtempSync(join(tmpdir(), 'embedgate-login-hostile-'));

before(async () => {
  [op, upstream] = await Promise.all([startHostileOp(), startUpstream()]);
  gw = await startLoginGateway();
  await eventually(async () => (await gw.fetch('/readyz')).status === 200);
});

after(async () => {
  await gw?.close();
  await upstream?.close();
  await op?.close();
  rmSync(scratch, { recursive: true, force: true });
});

/** Every test starts from a well-behaved OP with its default discovery document and keys. */
beforeEach(() => {
  op.login.reset();
  op.setDiscovery(null);
  op.setDiscoveryFailure(null);
  op.setJwks(null);
  op.setJwksFailure(null);
});

// ---------------------------------------------------------------------------------------------------------------------
// Gateways

/** A gateway whose login: points at the OP, with `login` settings on top (an undefined value removes one). */
async function startLoginGateway(login: Record<string, unknown> = {}, extra: Record<string, unknown> = {}): Promise<RunningGateway> {
  const port = await freePort();
  const loginConfig = Object.fromEntries(Object.entries({
    issuer: op.issuer, client_id: DEFAULT_CLIENT_ID, client_secret: DEFAULT_CLIENT_SECRET,
    scopes: ['openid', 'profile', 'email', 'offline_access'], encryption_key: randomBytes(32).toString('base64'), ...login,
  }).filter(([, value]) => value !== undefined));
  return startGateway({
    listen: `127.0.0.1:${port}`,
    public_url: `http://127.0.0.1:${port}`,
    issuers: [{ issuer: op.issuer, audiences: [op.audience] }],
    login: loginConfig,
    sessions: { store: 'memory:' },
    apps: [{ name: 'sales', prefix: '/sales/', upstream: upstream.url, allow: { roles: ['analyst'] } }],
    ...extra,
  });
}

/** A gateway of its own for one test, ready (its issuer and sign-in provider discovered), closed when the test ends. */
async function launchReady(t: TestContext, login: Record<string, unknown> = {}, extra: Record<string, unknown> = {}): Promise<RunningGateway> {
  const gateway = await startLoginGateway(login, extra);
  t.after(() => gateway.close());
  await eventually(async () => (await gateway.fetch('/readyz')).status === 200);
  return gateway;
}

// ---------------------------------------------------------------------------------------------------------------------
// The browser's side of a sign-in

interface Started {
  /** Where the gateway sent the browser: the OP's authorization endpoint. */
  authorizeUrl: URL;
  /** The transaction cookie as a `name=value` pair. */
  cookie: string;
  state: string;
}

interface Finished {
  started: Started;
  /** The callback target (path and query) the OP sent the browser back to. */
  target: string;
  response: RawResponse;
  /** The new session cookie's value, if one was set. */
  session: string | undefined;
}

/** Opens an app page in a fresh browser: the gateway answers with a redirect to the OP and a transaction cookie. */
async function start(gateway: RunningGateway, path = '/sales/', headers: string[] = []): Promise<Started> {
  const response = await rawRequest(gateway.url, path, [...NAVIGATION, ...headers]);
  assert.equal(response.status, 302, `the sign-in starts: ${response.status} ${response.body.slice(0, 200)}`);
  const authorizeUrl = new URL(response.headers.location ?? '');
  assert.equal(`${authorizeUrl.origin}${authorizeUrl.pathname}`, `${op.url}/authorize`);
  const line = response.setCookies.find((c) => c.startsWith(TX_COOKIE_PREFIX)) ?? '';
  return { authorizeUrl, cookie: line.split(';')[0] ?? '', state: authorizeUrl.searchParams.get('state') ?? '' };
}

/** The browser at the OP, which signs the user in at once; returns the callback target it is sent back to. */
async function atOp(started: Started): Promise<string> {
  const response = await fetch(started.authorizeUrl, { redirect: 'manual' });
  assert.equal(response.status, 302, `the OP answers the authorization request: ${response.status}`);
  const back = new URL(response.headers.get('location') ?? '');
  return `${back.pathname}${back.search}`;
}

/** Sends the browser to the callback `target` with `cookie` (a `name=value` pair), if any. */
function callback(gateway: RunningGateway, target: string, cookie: string | undefined, headers: string[] = []): Promise<RawResponse> {
  return rawRequest(gateway.url, target, [...NAVIGATION, ...(cookie === undefined ? [] : [`Cookie: ${cookie}`]), ...headers]);
}

/** The browser that started the sign-in comes back to the callback `target`. */
async function complete(gateway: RunningGateway, started: Started, target: string, headers: string[] = []): Promise<Finished> {
  const response = await callback(gateway, target, started.cookie, headers);
  return { started, target, response, session: sessionOf(response) };
}

/** A whole sign-in in one browser: the app page, the OP, the callback. */
async function signIn(gateway: RunningGateway, path = '/sales/'): Promise<Finished> {
  const started = await start(gateway, path);
  return complete(gateway, started, await atOp(started));
}

function sessionOf(response: RawResponse): string | undefined {
  const line = response.setCookies.find((c) => c.startsWith(`${SESSION_COOKIE}=`) && !c.includes('Max-Age=0'));
  return line?.slice(SESSION_COOKIE.length + 1).split(';')[0];
}

/** An app request carrying the session cookie, as a script would send it (401 JSON rather than a redirect). */
function withSession(gateway: RunningGateway, session: string, headers = ['Accept: application/json']): Promise<RawResponse> {
  return rawRequest(gateway.url, '/sales/', [...headers, `Cookie: ${SESSION_COOKIE}=${session}`]);
}

/** OP requests to `path` (no query) since the request log had `mark` entries. */
function opCalls(path: string, mark: number): number {
  return op.requests.slice(mark).filter((request) => request.path.split('?')[0] === path).length;
}

/** The reasons the gateway logged for failed sign-ins since the log had `mark` lines. */
function failureReasons(gateway: RunningGateway, mark: number): string[] {
  return gateway.logs.slice(mark).map((line) => JSON.parse(line) as { audit?: string; reason?: string })
    .filter((entry) => entry.audit === 'login_failed').map((entry) => entry.reason ?? '');
}

/** "Login fails": the generic 400 page, no session cookie, no redirect, and nothing of the request echoed. */
function assertLoginFailed(response: RawResponse, label: string): void {
  assert.equal(response.status, 400, `${label}: got ${response.status} ${response.headers.location ?? ''} ${response.body.slice(0, 200)}`);
  assert.match(response.headers['content-type'] ?? '', /^text\/html/, label);
  assert.match(response.body, /Sign-in did not complete/, `${label}: the generic page`);
  assert.match(response.body, /login_failed/, label);
  assert.equal(response.headers.location, undefined, `${label}: no redirect`);
  assert.equal(sessionOf(response), undefined, `${label}: no session cookie`);
}

/** A successful callback: back to `path` (no code or state in it), a session, and the app sees `subject`. */
async function assertSignedIn(gateway: RunningGateway, finished: Finished, label: string, path = '/sales/', subject = DEFAULT_SUBJECT): Promise<void> {
  const { response, session } = finished;
  assert.equal(response.status, 302, `${label}: got ${response.status} ${response.body.slice(0, 300)}`);
  assert.equal(response.headers.location, path, label);
  assert.ok(session !== undefined, `${label}: a session cookie`);
  const seen = upstream.requests.length;
  const page = await withSession(gateway, session);
  assert.equal(page.status, 200, `${label}: the session opens the app`);
  assert.equal(upstream.requests.length, seen + 1);
  assert.equal(upstream.requests.at(-1)?.headers['x-forwarded-user'], subject, `${label}: the app sees the signed-in user`);
}

/** Makes the code exchange answer with `scenario` (which may depend on the sign-in, e.g. its nonce). */
function onCodeExchange(scenario: TokenScenario | ((ctx: TokenContext) => TokenScenario)): void {
  op.login.set({ token: (ctx) => (ctx.grantType !== 'authorization_code' ? {} : typeof scenario === 'function' ? scenario(ctx) : scenario) });
}

/**
 * Signs in with the code exchange answering `scenario`: the sign-in fails after one token request, with a logged
 * reason matching `reason`, and userinfo is never asked.
 */
async function assertRefusedTokens(gateway: RunningGateway, label: string, scenario: TokenScenario | ((ctx: TokenContext) => TokenScenario), reason: RegExp): Promise<void> {
  onCodeExchange(scenario);
  const mark = op.requests.length;
  const logMark = gateway.logs.length;
  const { response } = await signIn(gateway);
  assertLoginFailed(response, label);
  assert.equal(opCalls(TOKEN_PATH, mark), 1, `${label}: the code was exchanged once`);
  assert.equal(opCalls(USERINFO_PATH, mark), 0, `${label}: no userinfo call after the failed check`);
  const reasons = failureReasons(gateway, logMark);
  assert.equal(reasons.length, 1, `${label}: one failure logged`);
  assert.match(reasons[0] ?? '', reason, `${label}: refused for the right reason (${reasons[0]})`);
}

/** The callback fails before the code is used: no token request, no userinfo request. */
function assertNoTokenCall(mark: number, label: string): void {
  assert.equal(opCalls(TOKEN_PATH, mark), 0, `${label}: no token request`);
  assert.equal(opCalls(USERINFO_PATH, mark), 0, `${label}: no userinfo request`);
}

// JWS surgery on the OP's genuine ID tokens.
const segments = (jwt: string): [string, string, string] => jwt.split('.') as [string, string, string];
const payloadOf = (jwt: string): Record<string, unknown> => JSON.parse(Buffer.from(segments(jwt)[1], 'base64url').toString('utf8')) as Record<string, unknown>;
const xorSignature = (jwt: string): string => {
  const [header, payload, signature] = segments(jwt);
  return `${header}.${payload}.${Buffer.from(Buffer.from(signature, 'base64url').map((byte) => byte ^ 0x5a)).toString('base64url')}`;
};
const sortSignature = (jwt: string): string => {
  const [header, payload, signature] = segments(jwt);
  return `${header}.${payload}.${[...signature].sort().join('')}`;
};

// ---------------------------------------------------------------------------------------------------------------------

describe('A. ID token validation during login', () => {
  it('baseline: a correct sign-in succeeds, with userinfo asked with the access token from the token endpoint', async () => {
    const mark = op.requests.length;
    const finished = await signIn(gw, '/sales/reports?q=1');
    await assertSignedIn(gw, finished, 'baseline', '/sales/reports?q=1');
    assert.equal(upstream.requests.at(-1)?.headers['x-forwarded-email'], `${DEFAULT_SUBJECT}@example.com`, 'userinfo\'s email reaches the app');
    assert.equal(opCalls(TOKEN_PATH, mark), 1);
    assert.equal(opCalls(USERINFO_PATH, mark), 1);
  });

  it('1: ID token iss = issuer+"1" or another issuer → login fails, no userinfo call', async () => {
    for (const iss of [`${op.issuer}1`, 'https://example.org/']) {
      await assertRefusedTokens(gw, `iss ${iss}`, { idToken: { claims: { iss } } }, /"iss" \(issuer\) claim value/);
    }
  });

  it('2: ID token without sub → login fails', async () => {
    await assertRefusedTokens(gw, 'no sub', { idToken: { claims: { sub: undefined } } }, /"sub" \(subject\) claim missing/);
  });

  it('3: ID token aud = client_id+"1" or another audience → login fails', async () => {
    for (const aud of [`${DEFAULT_CLIENT_ID}1`, 'https://example.com/']) {
      await assertRefusedTokens(gw, `aud ${aud}`, { idToken: { claims: { aud } } }, /"aud" \(audience\) claim value/);
    }
  });

  it('4: ID token without aud → login fails', async () => {
    await assertRefusedTokens(gw, 'no aud', { idToken: { claims: { aud: undefined } } }, /"aud" \(audience\) claim missing/);
  });

  it('5: ID token aud [client_id, "other-client"] without azp, or with azp naming the other client → login fails', async () => {
    const aud = [DEFAULT_CLIENT_ID, 'other-client'];
    await assertRefusedTokens(gw, 'untrusted extra audience, no azp', { idToken: { claims: { aud } } }, /additional untrusted audiences/);
    await assertRefusedTokens(gw, 'untrusted extra audience, azp other-client', { idToken: { claims: { aud, azp: 'other-client' } } }, /"azp" \(authorized party\) claim value/);
  });

  it('6: ID token aud as a one-element array [client_id] → login succeeds', async () => {
    onCodeExchange({ idToken: { claims: { aud: [DEFAULT_CLIENT_ID] } } });
    await assertSignedIn(gw, await signIn(gw), 'aud [client_id]');
  });

  it('7: ID token without iat → login fails', async () => {
    await assertRefusedTokens(gw, 'no iat', { idToken: { claims: { iat: undefined } } }, /"iat" \(issued at\) claim missing/);
  });

  it('8: ID token without exp, or expired 6 minutes ago → login fails', async () => {
    await assertRefusedTokens(gw, 'no exp', { idToken: { claims: { exp: undefined } } }, /"exp" \(expiration time\) claim missing/);
    const past = Math.floor(Date.now() / 1000) - 360;
    await assertRefusedTokens(gw, 'exp 6 min in the past', { idToken: { claims: { exp: past, iat: past - 300 } } }, /"exp" .*expiration is past/);
  });

  it('9: ID token nonce "012345678" or nonce+"1" (from the token endpoint) → login fails', async () => {
    await assertRefusedTokens(gw, 'nonce 012345678', { idToken: { claims: { nonce: '012345678' } } }, /"nonce" claim value/);
    await assertRefusedTokens(gw, 'nonce+"1"', (ctx) => ({ idToken: { claims: { nonce: `${ctx.authorization.nonce}1` } } }), /"nonce" claim value/);
  });

  it('10: ID token without nonce although one was sent → login fails', async () => {
    const started = await start(gw);
    assert.match(started.authorizeUrl.searchParams.get('nonce') ?? '', /^[A-Za-z0-9_-]{43,}$/, 'the gateway sends a nonce');
    await assertRefusedTokens(gw, 'no nonce', { idToken: { claims: { nonce: undefined } } }, /"nonce" \(nonce\) claim missing/);
  });

  it('11: ID token RS256 signature bytes XOR 0x5A, or its characters sorted → login fails', async () => {
    await assertRefusedTokens(gw, 'signature XOR 0x5A', { idToken: { tamper: xorSignature } }, /signature verification failed/);
    await assertRefusedTokens(gw, 'signature characters sorted', { idToken: { tamper: sortSignature } }, /signature verification failed/);
  });

  it('12: ID token with a bad HS256 signature, or HS256 MACed with the client secret → login fails', async () => {
    const hs256 = (secret: string) => (jwt: string): string => op.hmac({ typ: 'JWT' }, payloadOf(jwt), secret);
    await assertRefusedTokens(gw, 'HS256 MACed with the client secret', { idToken: { tamper: hs256(DEFAULT_CLIENT_SECRET) } }, /"alg" header parameter/);
    await assertRefusedTokens(gw, 'HS256 with a bad MAC', { idToken: { tamper: (jwt) => xorSignature(hs256(DEFAULT_CLIENT_SECRET)(jwt)) } }, /"alg" header parameter/);
  });

  it('12: ES256 configured: a bad ES256 signature → login fails; a good one succeeds', async (t) => {
    const es256 = await launchReady(t, { id_token_signing_alg: 'ES256' });
    await assertRefusedTokens(es256, 'ES256 signature XOR 0x5A', { idToken: { sign: { alg: 'ES256' }, tamper: xorSignature } }, /signature verification failed/);
    await assertRefusedTokens(es256, 'ES256 signature sorted', { idToken: { sign: { alg: 'ES256' }, tamper: sortSignature } }, /signature verification failed/);
    await assertRefusedTokens(es256, 'RS256 where ES256 is configured', {}, /"alg" header parameter/);
    onCodeExchange({ idToken: { sign: { alg: 'ES256' } } });
    await assertSignedIn(es256, await signIn(es256), 'a genuine ES256 ID token');
  });

  it('13: ID token with alg none (any spelling) in the code flow → login fails; "none" cannot be configured', async () => {
    for (const alg of ['none', 'None', 'NONE', 'nOnE']) {
      await assertRefusedTokens(gw, `alg ${alg}`, { idToken: { tamper: (jwt) => op.unsigned({ alg, typ: 'JWT' }, payloadOf(jwt)) } }, /"alg" header parameter/);
    }
    assert.throws(() => parseConfig({
      public_url: 'http://127.0.0.1:4180', issuers: [{ issuer: op.issuer, audiences: [op.audience] }],
      login: { issuer: op.issuer, client_id: 'x', encryption_key: randomBytes(32).toString('base64'), id_token_signing_alg: 'none' },
      apps: [{ name: 'sales', prefix: '/sales/', upstream: upstream.url, allow: { roles: ['analyst'] } }],
    }), (error: unknown) => error instanceof ConfigError && /login\.id_token_signing_alg/.test(error.message));
  });

  it('14: ID token signed with a valid key but another alg than RS256 (PS256, RS384, ES256) → login fails', async () => {
    const key = op.keys.rsa.privateKey;
    // A KeyObject signs with any RSA algorithm; the WebCrypto key only with the one it was made for.
    const rsa = key instanceof KeyObject ? key : KeyObject.from(key as webcrypto.CryptoKey);
    const alternates: Array<[string, TokenScenario]> = [
      ['PS256 with the published PS256 key', { idToken: { sign: { alg: 'PS256' } } }],
      ['PS256 with the RS256 key', { idToken: { sign: { alg: 'PS256', key: rsa, kid: op.keys.rsa.kid } } }],
      ['RS384 with the RS256 key', { idToken: { sign: { alg: 'RS384', key: rsa, kid: op.keys.rsa.kid } } }],
      ['ES256 with the published EC key', { idToken: { sign: { alg: 'ES256' } } }],
    ];
    for (const [label, scenario] of alternates) await assertRefusedTokens(gw, label, scenario, /"alg" header parameter/);
  });

  it('15: ID token without kid, one key in the JWKS → login succeeds', async (t) => {
    op.setJwks({ keys: [op.keys.rsa.publicJwk] });
    const single = await launchReady(t);
    let issued = '';
    onCodeExchange({ idToken: { sign: { kid: null }, tamper: (jwt) => (issued = jwt) } });
    await assertSignedIn(single, await signIn(single), 'kid absent, single key');
    assert.equal((JSON.parse(Buffer.from(segments(issued)[0], 'base64url').toString('utf8')) as { kid?: string }).kid, undefined, 'the ID token had no kid');
    // The one key is really what the signature is checked with.
    await assertRefusedTokens(single, 'kid absent, signed by a key not in the JWKS', { idToken: { sign: { key: 'rsa2', kid: null } } }, /signature verification failed/);
  });

  it('17: userinfo answering sub "foobar" → login fails, and its data reaches nobody', async () => {
    op.login.set({ userinfo: () => ({ body: { sub: 'foobar', email: 'mallory@evil.example', email_verified: true } }) });
    const mark = op.requests.length;
    const logMark = gw.logs.length;
    const seen = upstream.requests.length;
    const { response } = await signIn(gw);
    assertLoginFailed(response, 'userinfo sub foobar');
    assert.equal(opCalls(USERINFO_PATH, mark), 1);
    assert.match(failureReasons(gw, logMark)[0] ?? '', /"sub"/);
    assert.equal(upstream.requests.length, seen);
  });
});

describe('18: refreshed tokens naming another user end the session', () => {
  /** Access tokens live 3 s and are refreshed 5 s before they expire: every request with the session refreshes it. */
  const SHORT = 3;
  let refreshing: RunningGateway;
  let other: HostileOp;

  before(async () => {
    other = await startHostileOp();
    refreshing = await startLoginGateway({ refresh_before_seconds: 5 }, {
      issuers: [{ issuer: op.issuer, audiences: [op.audience] }, { issuer: other.issuer, audiences: [other.audience] }],
    });
    await eventually(async () => (await refreshing.fetch('/readyz')).status === 200);
  });

  after(async () => {
    await refreshing?.close();
    await other?.close();
  });

  /** Signs in with short-lived access tokens; refreshes answer with `onRefresh`. */
  async function signInRefreshing(onRefresh: TokenScenario): Promise<string> {
    op.login.set({ token: (ctx) => (ctx.grantType === 'refresh_token' ? { expiresIn: SHORT, ...onRefresh } : { expiresIn: SHORT }) });
    const finished = await signIn(refreshing);
    assert.equal(finished.response.status, 302, `signed in: ${finished.response.body.slice(0, 200)}`);
    assert.ok(finished.session !== undefined);
    return finished.session;
  }

  const refreshRequests = (): number => op.login.tokenRequests.filter((request) => request.params.grant_type === 'refresh_token').length;

  /**
   * Drives requests with the session until the gateway answers 401 session_expired; the app never sees anyone but the
   * signed-in user, a page load is sent to sign in again, and the dead session makes no more refresh requests.
   */
  async function assertSessionEnded(session: string, label: string, reason: RegExp): Promise<void> {
    const refreshesBefore = refreshRequests();
    const logMark = refreshing.logs.length;
    const seen = upstream.requests.length;
    let last: RawResponse | undefined;
    await eventually(async () => {
      last = await withSession(refreshing, session);
      return last.status !== 200;
    });
    assert.equal(last?.status, 401, `${label}: got ${last?.status} ${last?.body}`);
    assert.equal((JSON.parse(last?.body ?? '{}') as { error?: string }).error, 'session_expired', label);
    assert.match(last?.headers['www-authenticate'] ?? '', /error="invalid_token"/, label);
    assert.equal(refreshRequests(), refreshesBefore + 1, `${label}: the first refreshed answer ended it`);
    const ended = refreshing.logs.slice(logMark).map((line) => JSON.parse(line) as { audit?: string; reason?: string }).filter((entry) => entry.audit === 'session_ended');
    assert.equal(ended.length, 1, `${label}: one session ended`);
    assert.match(ended[0]?.reason ?? '', reason, label);
    assert.ok(upstream.requests.slice(seen).every((request) => request.headers['x-forwarded-user'] === DEFAULT_SUBJECT), `${label}: the app only saw the signed-in user`);
    const page = await withSession(refreshing, session, NAVIGATION);
    assert.equal(page.status, 302, `${label}: a page load signs in again`);
    assert.ok((page.headers.location ?? '').startsWith(`${op.url}/authorize?`), label);
    const refreshesAfter = refreshRequests();
    assert.equal((await withSession(refreshing, session)).status, 401, label);
    assert.equal(refreshRequests(), refreshesAfter, `${label}: an ended session is not refreshed again`);
  }

  it('baseline: a due refresh with the same user keeps the session', async () => {
    const session = await signInRefreshing({});
    const before = refreshRequests();
    for (let i = 0; i < 3; i++) {
      const response = await withSession(refreshing, session);
      assert.equal(response.status, 200, `request ${i + 1}`);
      assert.equal(upstream.requests.at(-1)?.headers['x-forwarded-user'], DEFAULT_SUBJECT);
    }
    assert.ok(refreshRequests() >= before + 1, 'the tokens were refreshed');
  });

  it('a provider outage at refresh keeps the session: 200 while its access token lasts, then 503 idp_unavailable, and back once the provider answers', async () => {
    const session = await signInRefreshing({ error: { status: 503, error: 'temporarily_unavailable' } });
    const logMark = refreshing.logs.length;
    assert.equal((await withSession(refreshing, session)).status, 200, 'the access token is still valid');
    let last: RawResponse | undefined;
    await eventually(async () => {
      last = await withSession(refreshing, session);
      return last.status !== 200;
    });
    assert.equal(last?.status, 503, `got ${last?.status} ${last?.body}`);
    assert.equal((JSON.parse(last?.body ?? '{}') as { error?: string }).error, 'idp_unavailable');
    assert.ok(!refreshing.logs.slice(logMark).some((line) => line.includes('"audit":"session_ended"')), 'an outage does not end the session');
    op.login.set({ token: () => ({ expiresIn: SHORT }) });
    assert.equal((await withSession(refreshing, session)).status, 200, 'the same session once the provider answers');
  });

  it('18: a refreshed ID token with a different sub → session terminated', async () => {
    await assertSessionEnded(await signInRefreshing({ idToken: { claims: { sub: 'mallory' } } }), 'ID token sub mallory', /another user/);
  });

  it('18: a refreshed access token (no ID token) with a different sub → session terminated', async () => {
    await assertSessionEnded(await signInRefreshing({ idToken: { omit: true }, accessToken: { claims: { sub: 'mallory' } } }), 'access token sub mallory', /another user/);
  });

  it('18: a refreshed access token from another trusted issuer → session terminated', async () => {
    const fromOther: TokenScenario = {
      idToken: { omit: true },
      accessToken: { claims: { iss: other.issuer }, sign: { key: other.keys.rsa.privateKey, kid: other.keys.rsa.kid } },
    };
    await assertSessionEnded(await signInRefreshing(fromOther), 'access token iss of another issuer', /another user/);
  });

  it('18: a refreshed ID token with a different iss → session terminated', async () => {
    await assertSessionEnded(await signInRefreshing({ idToken: { claims: { iss: 'https://example.org/' } } }), 'ID token iss example.org', /iss/);
  });

  it('18: a fatal refresh error (invalid_grant) → session terminated', async () => {
    await assertSessionEnded(await signInRefreshing({ error: { error: 'invalid_grant', description: 'refresh token revoked' } }), 'invalid_grant', /refused: invalid_grant/);
  });
});

describe('19: discovery', () => {
  it('19: discovery names issuer "https://example.com" → /readyz 503 naming the login provider; sign-in → 503 page, no redirect', async (t) => {
    op.setDiscovery({ issuer: 'https://example.com' });
    const gateway = await startLoginGateway();
    t.after(() => gateway.close());
    interface Readiness { status: string; login?: { issuer: string; ready: boolean; error?: string } }
    let readiness: { status: number; body: Readiness } | undefined;
    await eventually(async () => {
      const response = await gateway.fetch('/readyz');
      readiness = { status: response.status, body: await response.json() as Readiness };
      return readiness.body.login?.error !== undefined;
    });
    assert.equal(readiness?.status, 503);
    assert.equal(readiness?.body.status, 'not_ready');
    assert.equal(readiness?.body.login?.issuer, op.issuer);
    assert.equal(readiness?.body.login?.ready, false);
    assert.match(readiness?.body.login?.error ?? '', /issuer/);
    const mark = op.requests.length;
    for (const path of ['/sales/', '/_embedgate/login?rd=/sales/']) {
      const response = await rawRequest(gateway.url, path, NAVIGATION);
      assert.equal(response.status, 503, `${path}: ${response.body.slice(0, 200)}`);
      assert.equal(response.headers.location, undefined, `${path}: no redirect to the provider`);
      assert.match(response.body, /idp_unavailable/, path);
      assert.ok(!response.setCookies.some((c) => c.startsWith(TX_COOKIE_PREFIX)), `${path}: no sign-in started`);
    }
    assert.equal(opCalls('/authorize', mark) + opCalls(TOKEN_PATH, mark), 0);
  });
});

describe('C. authorization request and response, PKCE, state, code injection, mix-up', () => {
  it('29: every sign-in sends its own S256 code_challenge; the verifier is 43–128 unreserved characters and matches it', async () => {
    const first = await start(gw);
    const second = await start(gw);
    const challenges = [first, second].map(({ authorizeUrl }) => {
      assert.equal(authorizeUrl.searchParams.get('code_challenge_method'), 'S256', 'never plain');
      const challenge = authorizeUrl.searchParams.get('code_challenge') ?? '';
      assert.match(challenge, /^[A-Za-z0-9_-]{43}$/);
      return challenge;
    });
    assert.notEqual(challenges[0], challenges[1], 'never reused');
    assert.notEqual(first.cookie.split('=')[0], second.cookie.split('=')[0], 'each sign-in has its own cookie');
    // Both complete, newest first: the OP checks each verifier against its own challenge.
    const verifiers: string[] = [];
    for (const started of [second, first]) {
      await assertSignedIn(gw, await complete(gw, started, await atOp(started)), 'parallel sign-in');
      const verifier = op.login.tokenRequests.at(-1)?.params.code_verifier ?? '';
      assert.match(verifier, /^[A-Za-z0-9._~-]{43,128}$/, 'an RFC 7636 verifier');
      assert.equal(createHash('sha256').update(verifier).digest('base64url'), started.authorizeUrl.searchParams.get('code_challenge'));
      verifiers.push(verifier);
    }
    assert.notEqual(verifiers[0], verifiers[1]);
  });

  it('30: a valid code and state without this browser\'s sign-in cookie (another browser) → login fails, no token request', async () => {
    const victim = await start(gw);
    const target = await atOp(victim);
    const elsewhere = await start(gw);
    const mark = op.requests.length;
    assertLoginFailed(await callback(gw, target, undefined), 'no sign-in cookie');
    assertLoginFailed(await callback(gw, target, elsewhere.cookie), 'another sign-in\'s cookie');
    assertNoTokenCall(mark, 'state not bound to this browser');
    // The browser that started the sign-in still completes it: the failed attempts consumed nothing.
    await assertSignedIn(gw, await complete(gw, victim, target), 'the right browser');
  });

  it('31: the OP answers with another state, none, or two → login fails, no token request', async () => {
    const variants: Array<[string, () => void, (target: string) => string]> = [
      ['another state', () => op.login.set({ authorizationResponse: { state: 'attacker-chosen-state' } }), (target) => target],
      ['no state', () => op.login.set({ authorizationResponse: { state: null } }), (target) => target],
      ['state removed from the answer', () => undefined, (target) => target.replace(/([?&])state=[^&]*&?/, '$1')],
      ['state sent twice', () => undefined, (target) => `${target}&state=attacker-chosen-state`],
    ];
    for (const [label, rig, edit] of variants) {
      op.login.reset();
      rig();
      const started = await start(gw);
      const target = edit(await atOp(started));
      const mark = op.requests.length;
      assertLoginFailed(await callback(gw, target, started.cookie), label);
      assertNoTokenCall(mark, label);
    }
  });

  it('32: replaying a successful callback (same code, state and cookie) → login fails; the state is one-time', async () => {
    const first = await signIn(gw);
    await assertSignedIn(gw, first, 'the first answer');
    assertLoginFailed(await callback(gw, first.target, first.started.cookie), 'replay to an OP that refuses used codes');
    // Even when the OP would take the code again, the gateway does not use the answer twice.
    op.login.set({ oneTimeCodes: false });
    const second = await signIn(gw);
    await assertSignedIn(gw, second, 'the first answer');
    const mark = op.requests.length;
    assertLoginFailed(await callback(gw, second.target, second.started.cookie), 'replay to an OP that takes codes again');
    assertNoTokenCall(mark, 'replay');
  });

  /** The attacker signs in as mallory in their own browser and stops at the callback: their code and their answer. */
  async function attackerCode(): Promise<string> {
    op.login.set({ subject: 'mallory' });
    const attacker = await start(gw);
    const code = new URLSearchParams((await atOp(attacker)).split('?')[1]).get('code') ?? '';
    op.login.set({ subject: DEFAULT_SUBJECT });
    return code;
  }

  /** The victim's own callback with the attacker's code in place of theirs. */
  async function injected(code: string): Promise<{ victim: Started; target: string }> {
    const victim = await start(gw);
    const params = new URLSearchParams((await atOp(victim)).split('?')[1]);
    params.set('code', code);
    return { victim, target: `${CALLBACK}?${params}` };
  }

  it('33: an attacker\'s code injected with the victim\'s valid state → the victim\'s PKCE verifier fails at the OP', async () => {
    const { victim, target } = await injected(await attackerCode());
    const mark = op.requests.length;
    const seen = upstream.requests.length;
    assertLoginFailed(await callback(gw, target, victim.cookie), 'code injection');
    assert.equal(op.login.tokenRequests.at(-1)?.error, 'invalid_grant', 'the OP refused the verifier');
    assert.equal(opCalls(USERINFO_PATH, mark), 0);
    assert.equal(upstream.requests.length, seen);
  });

  it('33: with an OP that ignores PKCE, the injected code\'s ID token nonce still fails the login', async () => {
    op.login.set({ checkPkce: false });
    const { victim, target } = await injected(await attackerCode());
    const mark = op.requests.length;
    const logMark = gw.logs.length;
    assertLoginFailed(await callback(gw, target, victim.cookie), 'code injection, PKCE ignored');
    const answer = op.login.tokenRequests.at(-1);
    assert.equal(answer?.error, undefined, 'the OP issued mallory\'s tokens');
    assert.match(failureReasons(gw, logMark)[0] ?? '', /"nonce" claim value/);
    assert.equal(opCalls(USERINFO_PATH, mark), 0);
  });

  it('34: discovery without code_challenge_methods_supported → PKCE S256, state and nonce are still sent and checked', async (t) => {
    op.setDiscovery({ code_challenge_methods_supported: undefined });
    const gateway = await launchReady(t);
    const started = await start(gateway);
    const params = started.authorizeUrl.searchParams;
    assert.equal(params.get('code_challenge_method'), 'S256');
    assert.match(params.get('code_challenge') ?? '', /^[A-Za-z0-9_-]{43}$/);
    assert.match(params.get('state') ?? '', /^[A-Za-z0-9_-]{43,}$/);
    assert.match(params.get('nonce') ?? '', /^[A-Za-z0-9_-]{43,}$/);
    const target = await atOp(started);
    const mark = op.requests.length;
    assertLoginFailed(await callback(gateway, target, undefined), 'no state cookie');
    assertNoTokenCall(mark, 'state still checked');
    await assertSignedIn(gateway, await complete(gateway, started, target), 'PKCE without metadata');
    assert.ok(op.login.tokenRequests.at(-1)?.params.code_verifier, 'the verifier was sent');
  });

  it('35: authorization response iss of another issuer (mix-up) → login fails, no token request', async () => {
    for (const iss of ['https://attacker.example', `${op.issuer}/`]) {
      op.login.set({ authorizationResponse: { iss } });
      const started = await start(gw);
      const target = await atOp(started);
      const mark = op.requests.length;
      assertLoginFailed(await callback(gw, target, started.cookie), `iss ${iss}`);
      assertNoTokenCall(mark, `iss ${iss}`);
    }
  });

  it('36: iss advertised in discovery but missing from the response → login fails, no token request', async (t) => {
    op.login.set({ authorizationResponse: { iss: null } });
    const started = await start(gw);
    const target = await atOp(started);
    assert.equal(new URLSearchParams(target.split('?')[1]).get('iss'), null);
    const mark = op.requests.length;
    assertLoginFailed(await callback(gw, target, started.cookie), 'iss missing');
    assertNoTokenCall(mark, 'iss missing');
    // Not advertised: an answer without iss is normal.
    op.setDiscovery({ authorization_response_iss_parameter_supported: false });
    const plain = await launchReady(t);
    await assertSignedIn(plain, await signIn(plain), 'iss not advertised, none sent');
  });

  it('37: an error response with a script in error_description (query and form_post) → error page, nothing echoed, no session', async () => {
    op.login.set({ authorizationResponse: { error: { error: 'access_denied', error_description: SCRIPT, error_uri: `javascript:${SCRIPT}` } } });
    const started = await start(gw);
    assert.equal(started.authorizeUrl.searchParams.get('response_mode'), null, 'answers come in the query, never by form_post');
    const target = await atOp(started);
    assert.ok(target.includes('error=access_denied'));
    const mark = op.requests.length;
    const response = await callback(gw, target, started.cookie);
    assertLoginFailed(response, 'error response');
    assert.ok(!response.body.includes(SCRIPT) && !response.body.includes('alert(1)') && !response.body.includes('access_denied'), 'nothing from the request echoed');
    assert.match(response.headers['content-security-policy'] ?? '', /default-src 'none'/);
    const crafted = await callback(gw, `${CALLBACK}?error=${encodeURIComponent(SCRIPT)}&error_description=${encodeURIComponent(SCRIPT)}&state=${started.state}`, started.cookie);
    assertLoginFailed(crafted, 'a crafted error response');
    assert.ok(!crafted.body.includes('alert(1)'));
    // The form_post variant: the gateway takes no answers by POST.
    const body = new URLSearchParams({ error: 'access_denied', error_description: SCRIPT, state: started.state }).toString();
    const posted = await rawRequest(gw.url, CALLBACK, ['Content-Type: application/x-www-form-urlencoded', 'Accept: text/html', `Origin: ${op.url}`, `Cookie: ${started.cookie}`], 'POST', body);
    assert.ok(posted.status >= 400 && posted.status < 500, `form_post: ${posted.status}`);
    assert.equal(sessionOf(posted), undefined);
    assert.ok(!posted.body.includes('alert(1)'), 'form_post: nothing echoed');
    assertNoTokenCall(mark, 'error responses');
  });

  it('38: access_token / id_token / token_type in the callback URL are never used; response_type is always code', async () => {
    const forged = await op.sign(op.claims({ sub: 'mallory' }), { typ: 'at+jwt' });
    for (const extra of [`access_token=${forged}&token_type=Bearer`, `access_token=${forged}#access_token=${forged}`]) {
      const started = await start(gw);
      assert.equal(started.authorizeUrl.searchParams.get('response_type'), 'code');
      const target = `${await atOp(started)}&${extra}`;
      const finished = await complete(gw, started, target);
      if (finished.response.status === 302) {
        await assertSignedIn(gw, finished, extra);
        assert.notEqual(op.login.userinfoRequests.at(-1)?.authorization, `Bearer ${forged}`, 'userinfo got the token endpoint\'s token');
      } else {
        assertLoginFailed(finished.response, extra);
      }
    }
    const started = await start(gw);
    const idTokenForged = await op.sign({ ...op.claims({ sub: 'mallory', aud: DEFAULT_CLIENT_ID }), nonce: started.authorizeUrl.searchParams.get('nonce') });
    const target = `${await atOp(started)}&id_token=${idTokenForged}`;
    const mark = op.requests.length;
    assertLoginFailed(await callback(gw, target, started.cookie), 'an ID token in the URL');
    assertNoTokenCall(mark, 'an ID token in the URL');
  });

  it('39: Host / X-Forwarded-Host evil.example from an untrusted client → the configured redirect_uri goes to the OP', async () => {
    const redirectUri = `${gw.url}${CALLBACK}`;
    for (const headers of [['Host: evil.example'], ['X-Forwarded-Host: evil.example', 'X-Forwarded-Proto: https']]) {
      const label = headers.join(', ');
      const started = await start(gw, '/sales/', headers);
      assert.equal(started.authorizeUrl.searchParams.get('redirect_uri'), redirectUri, label);
      const target = await atOp(started);
      assert.equal(op.login.authorizations.at(-1)?.params.redirect_uri, redirectUri, label);
      await assertSignedIn(gw, await complete(gw, started, target, headers), label);
      assert.equal(op.login.tokenRequests.at(-1)?.params.redirect_uri, redirectUri, `${label}: the token request too`);
    }
  });

  it('40: token_type "bEARER" → accepted', async () => {
    onCodeExchange({ tokenType: 'bEARER' });
    await assertSignedIn(gw, await signIn(gw), 'token_type bEARER');
  });

  it('41: the callback answers no-referrer and no-store, loads nothing, and redirects to a URL without code or state', async () => {
    const { response } = await signIn(gw, '/sales/reports?q=1');
    assert.equal(response.status, 302);
    assert.equal(response.headers['referrer-policy'], 'no-referrer');
    assert.equal(response.headers['cache-control'], 'no-store');
    assert.equal(response.headers.location, '/sales/reports?q=1', 'back where the user was, without code or state');
    assert.match(response.body, /^(0\r\n\r\n)?$/, 'a redirect with no page to load anything');
    const failed = await callback(gw, `${CALLBACK}?code=abc&state=def`, undefined);
    assertLoginFailed(failed, 'the failure page');
    assert.equal(failed.headers['referrer-policy'], 'no-referrer', 'the failure page leaks no code or state in Referer');
    assert.equal(failed.headers['cache-control'], 'no-store');
    assert.doesNotMatch(failed.body, /\b(src|href|action)\s*=|https?:\/\/|@import|url\(/i, 'the failure page loads no resources');
    assert.match(failed.headers['content-security-policy'] ?? '', /default-src 'none'/);
  });
});

describe('private_key_jwt client authentication', () => {
  for (const alg of ['RS256', 'ES256'] as const) {
    it(`private_key_jwt (${alg}, PKCS#8 PEM file): the OP verifies the client assertion and sign-in succeeds`, async (t) => {
      const { publicKey, privateKey } = await generateKeyPair(alg, { extractable: true });
      const file = join(scratch, `client-${alg}.pem`);
      writeFileSync(file, await exportPKCS8(privateKey));
      op.login.set({ client: { clientId: DEFAULT_CLIENT_ID, method: 'private_key_jwt', publicKey } });
      const gateway = await launchReady(t, { client_secret: undefined, client_auth: 'private_key_jwt', private_key: { file, alg, kid: 'gw-key-1' } });
      await assertSignedIn(gateway, await signIn(gateway), 'private_key_jwt');
      const request = op.login.tokenRequests.at(-1);
      assert.equal(request?.clientAuth, 'private_key_jwt');
      assert.equal(request?.assertionHeader?.alg, alg);
      assert.equal(request?.assertionHeader?.kid, 'gw-key-1');
      assert.equal(request?.params.client_secret, undefined, 'no secret is sent');
      assert.equal(request?.authorization, undefined);
      // An OP holding another public key for the client refuses it, and so the sign-in fails.
      const stranger = await generateKeyPair(alg, { extractable: true });
      op.login.set({ client: { clientId: DEFAULT_CLIENT_ID, method: 'private_key_jwt', publicKey: stranger.publicKey } });
      const { response } = await signIn(gateway);
      assertLoginFailed(response, 'assertion signed by a key the OP does not know');
      assert.equal(op.login.tokenRequests.at(-1)?.error, 'invalid_client');
    });
  }

  it('private_key_jwt: a missing or unusable key file stops start-up with a config error naming login.private_key.file', async () => {
    const rsa = await generateKeyPair('RS256', { extractable: true });
    const ec = await generateKeyPair('ES256', { extractable: true });
    const files: Array<[string, string | undefined]> = [
      ['missing', undefined],
      ['not a key', 'hello, I am not a key\n'],
      ['an empty file', ''],
      ['a public key', await exportSPKI(rsa.publicKey)],
      ['an EC key for RS256', await exportPKCS8(ec.privateKey)],
    ];
    for (const [label, content] of files) {
      const file = join(scratch, `bad-${label.replace(/\W+/g, '-')}.pem`);
      if (content !== undefined) writeFileSync(file, content);
      const dataDir = mkdtempSync(join(scratch, 'data-'));
      await assert.rejects(
        startLoginGateway({ client_secret: undefined, client_auth: 'private_key_jwt', private_key: { file, alg: 'RS256' } }, { data_dir: dataDir }),
        (error: unknown) => error instanceof ConfigError && /^login\.private_key\.file: /.test(error.message) && error.message.includes(file),
        label,
      );
    }
  });
});
