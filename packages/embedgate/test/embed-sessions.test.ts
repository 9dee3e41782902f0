// Embed sessions against a real gateway: POST/DELETE /_embedgate/session, the __Host-embedgate cookie, fixation,
// replay, integrity, cookie tossing, CSRF on cookie requests, WebSockets that follow the session, and the SQLite store.
// Security-case numbers (security-cases.md, sections F and H) are in the test names.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, afterEach, before, describe, it } from 'node:test';
import WebSocket from 'ws';
import { eventually, startGateway, type RunningGateway } from './support/gateway.js';
import { startHostileOp, type HostileOp } from './support/hostile-op.js';
import { freePort } from './support/idp.js';
import { rawRequest } from './support/raw-http.js';
import { startUpstream, type Upstream } from './support/upstream.js';
import { echo, openWebSocket, type Opened } from './support/ws-client.js';

const COOKIE = '__Host-embedgate';
const HOST_ORIGIN = 'http://host.example';
const EVIL_ORIGIN = 'http://evil.example';
const SESSION_TTL = 600;
const CALLBACK = '/sales/_dash-update-component';

let op: HostileOp;
let upstream: Upstream;
let gw: RunningGateway;
/** The gateway's own origin (public_url), which the framed app and its bootstrap run on. */
let gwOrigin: string;
let analyst: string;
/** Every session cookie value the gateway handed out, to look for in its logs. */
const issued: string[] = [];

interface SetCookie {
  raw: string;
  name: string;
  value: string;
  /** Attribute names in lower case; flag attributes map to ''. */
  attributes: Map<string, string>;
}

function parseSetCookie(raw: string): SetCookie {
  const [pair = '', ...parts] = raw.split(';');
  const eq = pair.indexOf('=');
  const attributes = new Map<string, string>();
  for (const part of parts) {
    const text = part.trim();
    const at = text.indexOf('=');
    attributes.set((at === -1 ? text : text.slice(0, at)).toLowerCase(), at === -1 ? '' : text.slice(at + 1));
  }
  return { raw, name: pair.slice(0, eq).trim(), value: pair.slice(eq + 1).trim(), attributes };
}

/** Every Set-Cookie of the response that names the session cookie. */
function sessionCookies(response: Response): SetCookie[] {
  return response.headers.getSetCookie().map(parseSetCookie).filter((cookie) => cookie.name === COOKIE);
}

function onlySessionCookie(response: Response): SetCookie {
  const cookies = sessionCookies(response);
  assert.equal(cookies.length, 1, `exactly one ${COOKIE} Set-Cookie, got ${JSON.stringify(response.headers.getSetCookie())}`);
  return cookies[0] as SetCookie;
}

const nowSeconds = (): number => Math.floor(Date.now() / 1000);
const tokenFor = (claims: Record<string, unknown> = {}): Promise<string> => op.sign(op.claims(claims));
const cookieHeader = (value: string): string => `${COOKIE}=${value}`;

async function errorOf(response: Response): Promise<string> {
  return ((await response.json()) as { error: string }).error;
}

/** POST /_embedgate/session the way the bootstrap does it (same origin, bearer, JSON body naming the app). */
function postSession(token: string | undefined, options: { origin?: string | null; cookie?: string; body?: unknown } = {}): Promise<Response> {
  const headers: Record<string, string> = { 'content-type': 'application/json' };
  const origin = options.origin === undefined ? gwOrigin : options.origin;
  if (origin !== null) headers.origin = origin;
  if (options.cookie !== undefined) headers.cookie = options.cookie;
  return gw.fetch('/_embedgate/session', {
    method: 'POST',
    headers,
    body: JSON.stringify(options.body === undefined ? { path: '/sales/' } : options.body),
    ...(token === undefined ? {} : { token }),
  });
}

/** A fresh session for `token`; returns the cookie value and the answer's expires_at. */
async function newSession(token?: string, cookie?: string): Promise<{ value: string; expiresAt: number; response: Response }> {
  const response = await postSession(token ?? analyst, cookie === undefined ? {} : { cookie });
  assert.equal(response.status, 200, `session request failed: ${response.status}`);
  const { expires_at: expiresAt } = (await response.json()) as { expires_at: number };
  const { value } = onlySessionCookie(response);
  issued.push(value);
  return { value, expiresAt, response };
}

function deleteSession(cookie: string | undefined, origin: string | null = gwOrigin): Promise<Response> {
  const headers: Record<string, string> = {};
  if (origin !== null) headers.origin = origin;
  if (cookie !== undefined) headers.cookie = cookieHeader(cookie);
  return gw.fetch('/_embedgate/session', { method: 'DELETE', headers });
}

/** GET an app path with the session cookie (what the framed app's navigations and assets do). */
function withCookie(path: string, value: string, init: { method?: string; headers?: Record<string, string>; body?: string } = {}): Promise<Response> {
  return gw.fetch(path, { ...init, headers: { cookie: cookieHeader(value), ...init.headers } });
}

async function assertDeadCookie(value: string, what: string): Promise<void> {
  const response = await withCookie('/sales/', value);
  assert.equal(response.status, 401, what);
  assert.equal(await errorOf(response), 'session_expired', what);
  assert.match(response.headers.get('www-authenticate') ?? '', /error="invalid_token"/, what);
  // Nor does the bootstrap's probe (GET /_embedgate/session from the frame) find a session behind it.
  const probe = await withCookie('/_embedgate/session', value, { headers: { 'sec-fetch-site': 'same-origin' } });
  assert.equal(probe.status, 401, `${what}: the session probe`);
  assert.doesNotMatch(await probe.text(), /expires_at/, `${what}: the session probe`);
}

/**
 * A value a renewal replaced moments ago: app requests and WebSocket handshakes already on their way with it are served
 * as the renewed session, but the session probe reports no session behind it (the frame must use the new cookie).
 */
async function assertReplacedCookie(value: string, what: string): Promise<void> {
  upstream.clear();
  const response = await withCookie('/sales/', value);
  assert.equal(response.status, 200, what);
  await response.arrayBuffer();
  assert.equal(upstream.last()?.headers['x-forwarded-user'], 'user-1', `${what}: as the same user`);
  const probe = await withCookie('/_embedgate/session', value, { headers: { 'sec-fetch-site': 'same-origin' } });
  assert.equal(probe.status, 401, `${what}: the session probe`);
}

async function assertLiveCookie(value: string, what: string): Promise<void> {
  const response = await withCookie('/sales/', value);
  assert.equal(response.status, 200, what);
  await response.arrayBuffer();
  const probe = await withCookie('/_embedgate/session', value, { headers: { 'sec-fetch-site': 'same-origin' } });
  assert.equal(probe.status, 200, `${what}: the session probe`);
  assert.equal(typeof ((await probe.json()) as { expires_at?: unknown }).expires_at, 'number', `${what}: the session probe`);
}

/** Waits (really) until the clock passes `exp`: the property under test is time passing. */
async function waitPast(exp: number): Promise<void> {
  const wait = exp * 1000 - Date.now() + 50;
  assert.ok(wait <= 2500, `wait of ${wait} ms is too long for this test`);
  if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait));
}

function openWs(headers: Record<string, string>): Promise<Opened> {
  return openWebSocket(`${gw.url.replace(/^http/, 'ws')}/sales/ws`, headers);
}

/** Sockets opened by a test; afterEach closes whatever a failed test left open. */
const openSockets: WebSocket[] = [];

async function openedWs(headers: Record<string, string>): Promise<WebSocket> {
  const outcome = await openWs(headers);
  assert.ok('ws' in outcome, `the upgrade was refused with ${'status' in outcome ? outcome.status : '?'}`);
  openSockets.push(outcome.ws);
  return outcome.ws;
}

afterEach(async () => {
  for (const ws of openSockets.splice(0)) ws.terminate();
  await eventually(() => upstream.wsConnections === 0);
});

function gatewayConfig(port: number, extra: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    listen: `127.0.0.1:${port}`,
    public_url: `http://127.0.0.1:${port}`,
    issuers: [{ issuer: op.issuer, audiences: [op.audience] }],
    embed: { allowed_origins: [HOST_ORIGIN], session_ttl_seconds: SESSION_TTL },
    sessions: { store: 'memory:' },
    apps: [
      { name: 'sales', prefix: '/sales/', upstream: upstream.url, allow: { roles: ['analyst', 'admin'] } },
      { name: 'payroll', prefix: '/payroll/', upstream: upstream.url, allow: { roles: ['admin'] } },
    ],
    ...extra,
  };
}

before(async () => {
  op = await startHostileOp();
  upstream = await startUpstream();
  const port = await freePort();
  gwOrigin = `http://127.0.0.1:${port}`;
  gw = await startGateway(gatewayConfig(port));
  assert.equal(gw.url, gwOrigin);
  await eventually(async () => (await gw.fetch('/readyz')).status === 200);
  analyst = await tokenFor({ roles: ['analyst'] });
});

after(async () => {
  await gw.close();
  await upstream.close();
  await op.close();
});

describe('POST /_embedgate/session', () => {
  it('88: a valid bearer from the gateway origin gets a __Host- cookie (Secure, HttpOnly, SameSite=None, Partitioned, no Domain)', async () => {
    const response = await postSession(analyst);
    assert.equal(response.status, 200);
    assert.equal(response.headers.get('cache-control'), 'no-store');
    const body = (await response.json()) as Record<string, unknown>;
    assert.deepEqual(Object.keys(body), ['expires_at']);
    assert.equal(typeof body.expires_at, 'number');
    const cookie = onlySessionCookie(response);
    assert.match(cookie.value, /^[A-Za-z0-9_-]{43}$/, '256 random bits, base64url');
    assert.deepEqual([...cookie.attributes.keys()].sort(), ['httponly', 'max-age', 'partitioned', 'path', 'samesite', 'secure']);
    assert.equal(cookie.attributes.get('path'), '/');
    assert.equal(cookie.attributes.get('samesite'), 'None');
    assert.equal(cookie.attributes.has('domain'), false, 'a __Host- cookie has no Domain');
    assert.equal(cookie.attributes.has('expires'), false);
    assert.match(cookie.raw, /^__Host-embedgate=[A-Za-z0-9_-]{43}; Path=\/; Max-Age=\d+; Secure; HttpOnly; SameSite=None; Partitioned$/);
    assert.ok(!cookie.raw.includes(analyst), 'the token is not in the cookie');
  });

  it('88: Max-Age and expires_at never exceed the token life or embed.session_ttl_seconds', async () => {
    const cases: Array<[what: string, tokenLife: number, bound: number]> = [
      ['token shorter than the TTL', 120, 120],
      ['token longer than the TTL', 3600, SESSION_TTL],
    ];
    for (const [what, tokenLife, bound] of cases) {
      const exp = nowSeconds() + tokenLife;
      // The server's clock second lies between these two readings.
      const before = nowSeconds();
      const { response, expiresAt } = await newSession(await tokenFor({ exp }));
      const now = nowSeconds();
      const maxAge = Number(onlySessionCookie(response).attributes.get('max-age'));
      assert.ok(Number.isInteger(maxAge), what);
      assert.ok(maxAge <= bound && maxAge >= bound - 3, `${what}: Max-Age ${maxAge}, bound ${bound}`);
      assert.ok(maxAge <= exp - before, `${what}: the cookie outlives the token`);
      assert.ok(expiresAt <= exp && expiresAt <= now + SESSION_TTL, `${what}: expires_at ${expiresAt} beyond exp ${exp} / TTL`);
      assert.ok(Math.abs(expiresAt - now - maxAge) <= 1, `${what}: expires_at and Max-Age disagree`);
    }
  });

  it('88: the cookie authenticates GET /sales/ and the upstream gets X-Forwarded-User', async () => {
    const { value } = await newSession(await tokenFor({ sub: 'cookie-user', roles: ['analyst'] }));
    upstream.clear();
    const response = await withCookie('/sales/page', value);
    assert.equal(response.status, 200);
    await response.text();
    const seen = upstream.last()?.headers ?? {};
    assert.equal(seen['x-forwarded-user'], 'cookie-user');
    assert.equal(seen['x-forwarded-groups'], 'analyst');
    assert.equal(seen.authorization, undefined);
  });

  it('112: the upstream never receives the embed session cookie, over HTTP or in a WebSocket handshake (the app\'s own cookies pass)', async () => {
    const { value } = await newSession();
    const problems: string[] = [];
    upstream.clear();
    const response = await gw.fetch('/sales/page', { headers: { cookie: `theme=dark; ${cookieHeader(value)}; lang=en` } });
    assert.equal(response.status, 200);
    await response.text();
    const forwarded = String(upstream.last()?.headers.cookie ?? '');
    if (forwarded.includes(value) || forwarded.includes(COOKIE)) problems.push(`HTTP request: Cookie: ${forwarded.replace(value, '<session>')}`);
    assert.match(forwarded, /theme=dark/);
    assert.match(forwarded, /lang=en/);
    const alone = await gw.fetch('/sales/page', { headers: { cookie: cookieHeader(value) } });
    assert.equal(alone.status, 200, 'the session cookie alone authenticates');
    await alone.text();
    assert.equal(upstream.last()?.headers.cookie, undefined, 'the session cookie alone: no Cookie header reaches the app');
    await openedWs({ cookie: `theme=dark; ${cookieHeader(value)}`, origin: gwOrigin });
    const handshake = String(upstream.wsHandshakes.at(-1)?.headers.cookie ?? '');
    if (handshake.includes(value) || handshake.includes(COOKIE)) problems.push(`WebSocket handshake: Cookie: ${handshake.replace(value, '<session>')}`);
    assert.match(handshake, /theme=dark/);
    assert.deepEqual(problems, [], 'the gateway\'s session cookie (a credential for every app) reached the app');
  });

  it('98: the session ends when the token does (401 once exp has passed), and an open WebSocket is closed with 1008', async () => {
    const exp = nowSeconds() + 2;
    const { value, expiresAt, response } = await newSession(await tokenFor({ exp }));
    assert.ok(expiresAt <= exp, `expires_at ${expiresAt} outlives exp ${exp}`);
    assert.ok(Number(onlySessionCookie(response).attributes.get('max-age')) <= 2);
    await assertLiveCookie(value, 'before exp');
    const ws = await openedWs({ cookie: cookieHeader(value), origin: gwOrigin });
    const closed = once(ws, 'close');
    await waitPast(exp);
    // The verifier's 30 s leeway would still accept the token itself; the session must not outlive exp.
    await assertDeadCookie(value, 'after exp');
    const [code] = (await closed) as [number];
    assert.equal(code, 1008);
  });

  it('98: a token already past exp (still inside the verifier\'s leeway) gets 401, not a 200 with a dead cookie', async () => {
    const exp = nowSeconds() - 5;
    const response = await postSession(await tokenFor({ exp, iat: exp - 300 }));
    const cookies = sessionCookies(response);
    assert.equal(response.status, 401, `answered ${response.status} ${await response.text()} with ${JSON.stringify(cookies.map((c) => c.raw.replace(c.value, '<value>')))}`);
    assert.deepEqual(cookies, []);
  });

  it('a user the app does not allow gets 403 and no cookie', async () => {
    const cases: Array<[what: string, claims: Record<string, unknown>, body: unknown]> = [
      ['guest for /sales/', { roles: ['guest'] }, { path: '/sales/' }],
      ['analyst for /payroll/', { roles: ['analyst'] }, { path: '/payroll/x' }],
      ['guest, no path (allowed nowhere)', { roles: ['guest'] }, {}],
    ];
    for (const [what, claims, body] of cases) {
      const response = await postSession(await tokenFor(claims), { body });
      assert.equal(response.status, 403, what);
      assert.equal(await errorOf(response), 'forbidden', what);
      assert.deepEqual(sessionCookies(response), [], `${what}: no cookie`);
    }
  });

  it('a path outside every app, or a malformed body, gets 400 and no cookie', async () => {
    for (const body of [{ path: '/nowhere/' }, { path: 42 }, { path: '/sales/../payroll/' }]) {
      const response = await postSession(analyst, { body });
      assert.equal(response.status, 400, JSON.stringify(body));
      assert.deepEqual(sessionCookies(response), []);
    }
    const response = await gw.fetch('/_embedgate/session', { method: 'POST', token: analyst, headers: { origin: gwOrigin }, body: '{"path":' });
    assert.equal(response.status, 400);
    assert.equal(await errorOf(response), 'invalid_request');
    assert.deepEqual(sessionCookies(response), []);
  });

  it('no Origin gets 403 cross_site_request; an Origin neither the gateway\'s nor an allowed host\'s gets 403 origin_not_allowed, no cookie and no CORS', async () => {
    const origins: Array<string | null> = [null, EVIL_ORIGIN, 'null', `${gwOrigin}.evil.example`, `${HOST_ORIGIN}.evil.example`, gwOrigin.replace('http:', 'https:'), `${gwOrigin}/`, `${HOST_ORIGIN}/`];
    for (const origin of origins) {
      const response = await postSession(analyst, { origin });
      assert.equal(response.status, 403, `Origin: ${String(origin)}`);
      assert.equal(await errorOf(response), origin === null ? 'cross_site_request' : 'origin_not_allowed', `Origin: ${String(origin)}`);
      assert.deepEqual(sessionCookies(response), [], `Origin: ${String(origin)}`);
      assert.equal(response.headers.get('access-control-allow-origin'), null, `Origin: ${String(origin)}`);
    }
    const fetchMetadataOnly = await gw.fetch('/_embedgate/session', {
      method: 'POST', token: analyst, headers: { 'sec-fetch-site': 'same-origin' }, body: '{"path":"/sales/"}',
    });
    assert.equal(fetchMetadataOnly.status, 403, 'Sec-Fetch-Site without Origin is not enough');
    assert.deepEqual(sessionCookies(fetchMetadataOnly), []);
  });

  it('an invalid or missing token gets 401 and no cookie', async () => {
    const tokens: Array<[what: string, token: string | undefined]> = [
      ['missing', undefined],
      ['not a JWT', 'not-a-jwt'],
      ['expired', await tokenFor({ exp: nowSeconds() - 3600, iat: nowSeconds() - 7200 })],
      ['wrong audience', await tokenFor({ aud: 'http://other.example' })],
      ['bad signature', `${analyst.slice(0, analyst.lastIndexOf('.'))}.${'A'.repeat(342)}`],
    ];
    for (const [what, token] of tokens) {
      const response = await postSession(token);
      assert.equal(response.status, 401, what);
      assert.deepEqual(sessionCookies(response), [], what);
      assert.match(response.headers.get('www-authenticate') ?? '', /^Bearer /, what);
      assert.equal(response.headers.get('cache-control'), 'no-store', what);
    }
  });

  it('other methods get 405 and no cookie', async () => {
    for (const method of ['PUT', 'PATCH']) {
      const response = await gw.fetch('/_embedgate/session', { method, token: analyst, headers: { origin: gwOrigin } });
      assert.equal(response.status, 405, method);
      assert.deepEqual(sessionCookies(response), [], method);
    }
  });
});

describe('89 session fixation', () => {
  const planted = (): string[] => [randomBytes(32).toString('base64url'), 'attacker-chosen-session', 'A'.repeat(43), 'x'];

  it('89: a planted cookie value is not a session (401) and never reaches the app', async () => {
    upstream.clear();
    for (const value of planted()) await assertDeadCookie(value, `planted ${value}`);
    assert.equal(upstream.requests.length, 0);
  });

  it('89: starting a session with a planted cookie yields a new, different cookie; the planted one stays invalid', async () => {
    for (const value of planted()) {
      const session = await newSession(analyst, cookieHeader(value));
      assert.notEqual(session.value, value);
      await assertLiveCookie(session.value, 'the new cookie works');
      await assertDeadCookie(value, `the planted ${value} is still not a session`);
    }
  });

  it('89: renewal (a valid cookie and a fresh token) rotates the value; the old one serves only requests already on their way, and dies with the chain', async () => {
    const first = await newSession();
    const fresh = await tokenFor({ exp: nowSeconds() + 500 });
    const renewed = await newSession(fresh, cookieHeader(first.value));
    assert.notEqual(renewed.value, first.value);
    await assertLiveCookie(renewed.value, 'renewed cookie');
    assert.ok(renewed.expiresAt <= nowSeconds() + 500);
    // What another frame sent before the renewal's answer reached the browser (a callback, a WebSocket handshake) is
    // served as the renewed session, for 30 s at most: not refused because of a renewal it could not know of.
    await assertReplacedCookie(first.value, 'a request with the old cookie, just after the renewal');
    const ws = await openedWs({ cookie: cookieHeader(first.value), origin: gwOrigin });
    // A renewal that still sends it (another frame's, at the same moment) continues the same chain: it replaces the
    // renewed session instead of starting a second one.
    const late = await newSession(await tokenFor({ exp: nowSeconds() + 560 }), cookieHeader(first.value));
    await assertLiveCookie(late.value, 'the late renewal\'s cookie');
    await assertReplacedCookie(renewed.value, 'the renewed cookie, replaced in turn by the late renewal');
    await assertReplacedCookie(first.value, 'the first cookie, still');
    // Ending the chain (sign-out) ends every value of it at once, and the socket opened with the old one.
    const closed = once(ws, 'close');
    assert.equal((await deleteSession(late.value)).status, 204);
    assert.equal(((await closed) as [number])[0], 1008);
    for (const [value, what] of [[first.value, 'the first cookie'], [renewed.value, 'the renewed cookie'], [late.value, 'the latest cookie']]) {
      await assertDeadCookie(value as string, `${what as string} after DELETE`);
    }
  });
});

describe('92 replay after DELETE', () => {
  it('92: DELETE from the gateway origin answers 204, clears the cookie, and the old cookie gets 401', async () => {
    const { value } = await newSession();
    await assertLiveCookie(value, 'before DELETE');
    const response = await deleteSession(value);
    assert.equal(response.status, 204);
    assert.equal(response.headers.get('cache-control'), 'no-store');
    const cleared = onlySessionCookie(response);
    assert.equal(cleared.value, '');
    assert.equal(cleared.attributes.get('max-age'), '0');
    for (const flag of ['secure', 'httponly', 'partitioned']) assert.ok(cleared.attributes.has(flag), `the clearing cookie keeps ${flag}`);
    assert.equal(cleared.attributes.get('path'), '/');
    assert.equal(cleared.attributes.get('samesite'), 'None');
    await assertDeadCookie(value, 'replayed after DELETE');
  });

  it('91, 92: a cross-site DELETE (or one without Origin, or from the allowed host page) cannot end the session, and the session still works', async () => {
    const { value } = await newSession();
    for (const [origin, status, error] of [[EVIL_ORIGIN, 403, 'origin_not_allowed'], [HOST_ORIGIN, 405, 'method_not_allowed'], [null, 403, 'cross_site_request']] as const) {
      const response = await deleteSession(value, origin);
      assert.equal(response.status, status, `Origin: ${String(origin)}`);
      assert.equal(await errorOf(response), error);
      assert.deepEqual(sessionCookies(response), [], 'no cookie cleared');
    }
    await assertLiveCookie(value, 'after refused DELETEs');
  });
});

describe('93/96 cookie integrity', () => {
  it('93: a changed, truncated, extended or re-padded cookie gets the same generic 401 session_expired, never a 500', async () => {
    const { value } = await newSession();
    const flip = (at: number): string => value.slice(0, at) + (value[at] === 'A' ? 'B' : 'A') + value.slice(at + 1);
    const variants: Array<[what: string, cookie: string]> = [
      ['first character changed', flip(0)],
      ['middle character changed', flip(21)],
      ['last character changed', flip(42)],
      ['case swapped', value.replace(/[A-Za-z]/g, (c) => (c === c.toUpperCase() ? c.toLowerCase() : c.toUpperCase()))],
      ['truncated by one', value.slice(0, -1)],
      ['truncated to half', value.slice(0, 21)],
      ['extended by one', `${value}A`],
      ['doubled', value + value],
      ['re-padded =', `${value}=`],
      ['re-padded ==', `${value}==`],
      ['standard base64 alphabet', Buffer.from(value, 'base64url').toString('base64')],
      ['quoted', `"${value}"`],
      ['percent-encoded', value.replace(/[A-Za-z]/, (c) => `%${c.charCodeAt(0).toString(16)}`)],
      ['10 KB', 'A'.repeat(10_000)],
    ];
    const answers = new Set<string>();
    for (const [what, cookie] of variants) {
      const response = await withCookie('/sales/', cookie);
      assert.equal(response.status, 401, what);
      answers.add(`${response.headers.get('www-authenticate')} ${await response.text()}`);
    }
    assert.equal(answers.size, 1, `the answers differ between variants: ${[...answers].join(' | ')}`);
    const [answer = ''] = answers;
    assert.match(answer, /"error":"session_expired"/);
    await assertLiveCookie(value, 'the real cookie still works');
  });

  it('96: two __Host-embedgate cookies in one Cookie header get 400 duplicate_cookie', async () => {
    const { value } = await newSession();
    const other = randomBytes(32).toString('base64url');
    const headers = [
      `${cookieHeader(value)}; ${cookieHeader(value)}`,
      `${cookieHeader(other)}; ${cookieHeader(value)}`,
      `${cookieHeader(value)}; theme=dark; ${cookieHeader(other)}`,
      `${cookieHeader(value)};${COOKIE} = ${other}`,
    ];
    upstream.clear();
    for (const header of headers) {
      const response = await gw.fetch('/sales/', { headers: { cookie: header } });
      assert.equal(response.status, 400, header.replaceAll(value, '<valid>'));
      assert.equal(await errorOf(response), 'duplicate_cookie');
    }
    const twoHeaderLines = await rawRequest(gw.url, '/sales/', [`Cookie: ${cookieHeader(other)}`, `Cookie: ${cookieHeader(value)}`]);
    assert.equal(twoHeaderLines.status, 400, 'two Cookie header lines');
    assert.match(twoHeaderLines.body, /duplicate_cookie/);
    assert.equal(upstream.requests.length, 0);
    const lookalikes = await gw.fetch('/sales/', { headers: { cookie: `x${cookieHeader(other)}; ${COOKIE}-old=${other}; ${cookieHeader(value)}` } });
    assert.equal(lookalikes.status, 200, 'similar names are other cookies');
    await lookalikes.text();
  });
});

describe('cookie requests that change state', () => {
  const callbackBody = JSON.stringify({ output: 'graph.figure', outputs: { id: 'graph', property: 'figure' }, inputs: [] });
  const post = (value: string, headers: Record<string, string>): Promise<Response> =>
    withCookie(CALLBACK, value, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: callbackBody });

  it('a cookie-authenticated POST from another origin gets 403 cross_site_request and never reaches the app', async () => {
    const { value } = await newSession();
    upstream.clear();
    const attempts: Array<Record<string, string>> = [
      { origin: EVIL_ORIGIN },
      { origin: HOST_ORIGIN },
      { origin: 'null' },
      { 'sec-fetch-site': 'cross-site' },
      {},
    ];
    for (const headers of attempts) {
      const response = await post(value, headers);
      assert.equal(response.status, 403, JSON.stringify(headers));
      assert.equal(await errorOf(response), 'cross_site_request', JSON.stringify(headers));
    }
    const del = await withCookie('/sales/item/1', value, { method: 'DELETE', headers: { origin: EVIL_ORIGIN } });
    assert.equal(del.status, 403, 'DELETE is state-changing too');
    assert.equal(upstream.requests.length, 0);
  });

  it('a cookie-authenticated POST from the gateway origin is proxied', async () => {
    const { value } = await newSession();
    const sameOrigin: Array<Record<string, string>> = [{ origin: gwOrigin }, { 'sec-fetch-site': 'same-origin' }];
    for (const headers of sameOrigin) {
      upstream.clear();
      const response = await post(value, headers);
      assert.equal(response.status, 200, JSON.stringify(headers));
      assert.equal(((await response.json()) as { multi: boolean }).multi, true);
      assert.equal(upstream.last()?.headers['x-forwarded-user'], 'user-1');
      assert.equal(upstream.last()?.body.toString(), callbackBody);
    }
  });

  it('GET/HEAD with the cookie is allowed from any origin (safe methods)', async () => {
    const { value } = await newSession();
    for (const origin of [EVIL_ORIGIN, HOST_ORIGIN, gwOrigin]) {
      const response = await withCookie('/sales/', value, { headers: { origin, 'sec-fetch-site': 'cross-site' } });
      assert.equal(response.status, 200, origin);
      await response.text();
    }
    assert.equal((await withCookie('/sales/', value, { method: 'HEAD', headers: { origin: EVIL_ORIGIN } })).status, 200);
  });

  it('a bearer wins over the cookie: an invalid bearer with a valid cookie gets 401', async () => {
    const { value } = await newSession();
    const response = await gw.fetch('/sales/', { token: 'not-a-jwt', headers: { cookie: cookieHeader(value) } });
    assert.equal(response.status, 401);
    assert.notEqual(await errorOf(response), 'session_expired');
  });
});

describe('WebSockets with the session cookie', () => {
  it('echo works with the cookie from the gateway origin, with the user\'s identity upstream', async () => {
    const { value } = await newSession();
    upstream.clear();
    const ws = await openedWs({ cookie: cookieHeader(value), origin: gwOrigin });
    assert.equal(await echo(ws, 'hello'), 'hello');
    const handshake = upstream.wsHandshakes.at(-1);
    assert.equal(handshake?.headers['x-forwarded-user'], 'user-1');
    ws.close();
    await once(ws, 'close');
  });

  it('DELETE of the session closes the socket with 1008', async () => {
    const { value } = await newSession();
    const ws = await openedWs({ cookie: cookieHeader(value), origin: gwOrigin });
    assert.equal(await echo(ws, 'before'), 'before');
    const closed = once(ws, 'close');
    assert.equal((await deleteSession(value)).status, 204);
    const [code] = (await closed) as [number];
    assert.equal(code, 1008);
    await eventually(() => upstream.wsConnections === 0);
  });

  it('a renewal keeps the socket open, and the socket follows the renewed session', async () => {
    const { value } = await newSession();
    const ws = await openedWs({ cookie: cookieHeader(value), origin: gwOrigin });
    const renewed = await newSession(await tokenFor(), cookieHeader(value));
    assert.equal(await echo(ws, 'after renewal'), 'after renewal');
    assert.equal(ws.readyState, WebSocket.OPEN);
    const closed = once(ws, 'close');
    assert.equal((await deleteSession(renewed.value)).status, 204);
    const [code] = (await closed) as [number];
    assert.equal(code, 1008, 'ending the renewed session closes the socket');
  });

  it('a token no fresher than the session keeps it (frames that share it post the same token): 200, the same expires_at, no Set-Cookie', async () => {
    const token = await tokenFor({ exp: nowSeconds() + 400 });
    const made = await newSession(token);
    const again = await postSession(token, { cookie: cookieHeader(made.value) });
    assert.equal(again.status, 200);
    assert.deepEqual(await again.json(), { expires_at: made.expiresAt });
    assert.deepEqual(sessionCookies(again), [], 'no new cookie');
    await assertLiveCookie(made.value, 'the session is kept');
    // A fresher token renews it as usual.
    const renewed = await newSession(await tokenFor({ exp: nowSeconds() + 480 }), cookieHeader(made.value));
    assert.notEqual(renewed.value, made.value);
  });

  it('renewals sent at once with the same cookie (two frames sharing it) continue one chain: the socket stays open and closes when the chain ends', async () => {
    const { value } = await newSession();
    const ws = await openedWs({ cookie: cookieHeader(value), origin: gwOrigin });
    const [one, two] = await Promise.all([
      postSession(await tokenFor({ exp: nowSeconds() + 500 }), { cookie: cookieHeader(value) }),
      postSession(await tokenFor({ exp: nowSeconds() + 540 }), { cookie: cookieHeader(value) }),
    ]);
    assert.deepEqual([one.status, two.status], [200, 200]);
    const values = [onlySessionCookie(one).value, onlySessionCookie(two).value];
    const current = [];
    for (const each of values) {
      current.push((await withCookie('/_embedgate/session', each, { headers: { 'sec-fetch-site': 'same-origin' } })).status);
    }
    assert.deepEqual([...current].sort(), [200, 401], 'one chain: the later renewal replaced the earlier one');
    const latest = values[current.indexOf(200)] as string;
    assert.equal(await echo(ws, 'after both renewals'), 'after both renewals');
    const closed = once(ws, 'close');
    assert.equal((await deleteSession(latest)).status, 204);
    const [code] = (await closed) as [number];
    assert.equal(code, 1008, 'ending the chain\'s latest session closes the socket opened with its first');
  });

  it('another user\'s token with the current cookie ends that user\'s session (the socket closes 1008) and starts a new one; with a replaced cookie it ends nothing', async () => {
    const { value } = await newSession();
    const ws = await openedWs({ cookie: cookieHeader(value), origin: gwOrigin });
    const closed = once(ws, 'close');
    const other = await newSession(await tokenFor({ sub: 'user-2' }), cookieHeader(value));
    const [code] = (await closed) as [number];
    assert.equal(code, 1008, 'the first user\'s socket does not carry on under the second user');
    await assertDeadCookie(value, 'the first user\'s cookie');
    upstream.clear();
    await assertLiveCookie(other.value, 'the second user\'s cookie');
    assert.equal(upstream.last()?.headers['x-forwarded-user'], 'user-2');

    // A replaced cookie (someone else's, from before their renewal) and one's own token: nothing of theirs ends.
    const victim = await newSession();
    const renewed = await newSession(await tokenFor({ exp: nowSeconds() + 500 }), cookieHeader(victim.value));
    const attacker = await newSession(await tokenFor({ sub: 'user-3' }), cookieHeader(victim.value));
    await assertLiveCookie(renewed.value, 'the victim\'s current session');
    await assertLiveCookie(attacker.value, 'the other user got a session of their own');
  });

  it('a socket from http://evil.example (or with a planted cookie) is refused even with the cookie', async () => {
    const { value } = await newSession();
    upstream.clear();
    assert.deepEqual(await openWs({ cookie: cookieHeader(value), origin: EVIL_ORIGIN }), { status: 403 });
    assert.deepEqual(await openWs({ cookie: cookieHeader(value), origin: `${gwOrigin}.evil.example` }), { status: 403 });
    assert.deepEqual(await openWs({ cookie: cookieHeader(randomBytes(32).toString('base64url')), origin: gwOrigin }), { status: 401 });
    assert.deepEqual(await openWs({ cookie: `${cookieHeader(value)}; ${cookieHeader(value)}`, origin: gwOrigin }), { status: 400 });
    assert.equal(upstream.wsHandshakes.length, 0);
  });
});

describe('sessions.store sqlite', () => {
  it('a session survives a gateway restart (same data_dir, new gateway instance); a DELETEd one stays dead', async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'embedgate-embed-sqlite-'));
    const port = await freePort();
    const config = gatewayConfig(port, { data_dir: dataDir, sessions: { store: `sqlite:${join(dataDir, 'sessions.db')}` } });
    const saved = { gw, gwOrigin };
    let running: RunningGateway | undefined;
    try {
      gw = running = await startGateway(config);
      gwOrigin = gw.url;
      await eventually(async () => (await gw.fetch('/readyz')).status === 200);
      const kept = await newSession();
      const ended = await newSession();
      assert.equal((await deleteSession(ended.value)).status, 204);
      await assertLiveCookie(kept.value, 'before the restart');
      running = undefined;
      await gw.close();

      gw = running = await startGateway(config);
      await eventually(async () => (await gw.fetch('/readyz')).status === 200);
      upstream.clear();
      await assertLiveCookie(kept.value, 'after the restart');
      assert.equal(upstream.last()?.headers['x-forwarded-user'], 'user-1');
      await assertDeadCookie(ended.value, 'the ended session after the restart');
    } finally {
      await running?.close();
      ({ gw, gwOrigin } = saved);
      rmSync(dataDir, { recursive: true, force: true });
    }
  });
});

describe('logs', () => {
  it('111: no session cookie value or token appears in the gateway logs', async () => {
    assert.ok(issued.length > 10);
    assert.ok(gw.logs.length > 0);
    const text = gw.logs.join('\n');
    for (const value of issued) assert.ok(!text.includes(value), 'a session cookie value was logged');
    assert.ok(!text.includes(analyst.split('.')[2] as string), 'a token was logged');
    assert.ok(!text.includes(COOKIE), 'a Cookie header was logged');
  });
});
