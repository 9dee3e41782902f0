// OpenID Connect Back-Channel Logout at POST /_embedgate/backchannel-logout against real gateways: forged, mis-signed
// and malformed logout tokens are refused with 400 and end nothing; a valid one ends every session of its sid (or of
// its sub) on every instance sharing the store, open WebSockets included; a jti works once; a logout token is never
// an access token; and the embedded IdP's own back-channel call ends the gateway's sign-in session.
// Security-case numbers (security-cases.md, section G and case 56) are in the test names.
import assert from 'node:assert/strict';
import { randomBytes, randomUUID } from 'node:crypto';
import { once } from 'node:events';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, afterEach, before, describe, it } from 'node:test';
import type { Browser, Page } from 'playwright-core';
import WebSocket from 'ws';
import { launchChromium, openTab, type BrowserTab } from './support/chromium.js';
import { eventually, startGateway, type RunningGateway } from './support/gateway.js';
import { startHostileOp, type HostileOp, type SignOptions } from './support/hostile-op.js';
import { freePort, GATEWAY_AUDIENCE, startIdp, type RunningIdp } from './support/idp.js';
import { rawRequest } from './support/raw-http.js';
import { startRedis, type RunningRedis } from './support/redis.js';
import { startUpstream, type Upstream } from './support/upstream.js';
import { echo, openWebSocket } from './support/ws-client.js';

const PATH = '/_embedgate/backchannel-logout';
const LOGOUT_EVENT = 'http://schemas.openid.net/event/backchannel-logout';
const FORM = 'application/x-www-form-urlencoded';
const CLIENT_ID = 'gateway';
const CLIENT_SECRET = 'gateway-client-secret-0123456789abcdef';
const EMBED_COOKIE = '__Host-embedgate';
const LOGIN_COOKIE = '__Host-embedgate-session';
const NAVIGATION = ['Sec-Fetch-Dest: document', 'Sec-Fetch-Mode: navigate', 'Sec-Fetch-Site: none', 'Accept: text/html'];

const nowSeconds = (): number => Math.floor(Date.now() / 1000);

/** A session a test holds: which cookie, its value, and a label for messages. */
interface Held {
  kind: 'embed' | 'login';
  value: string;
  label: string;
}

const cookieOf = (held: Held): string => `${held.kind === 'embed' ? EMBED_COOKIE : LOGIN_COOKIE}=${held.value}`;

function setCookieValue(response: Response, name: string): string | undefined {
  for (const line of response.headers.getSetCookie()) {
    const [pair = ''] = line.split(';');
    if (pair.startsWith(`${name}=`)) return pair.slice(name.length + 1);
  }
  return undefined;
}

/** Status of an app request made with the session's cookie (200 while it lives, 401 session_expired once it ended). */
async function statusWith(gateway: RunningGateway, held: Held): Promise<{ status: number; error?: string }> {
  const response = await gateway.fetch('/sales/_dash-layout', { headers: { cookie: cookieOf(held) } });
  const text = await response.text();
  if (response.status === 200) return { status: 200 };
  return { status: response.status, error: (JSON.parse(text) as { error?: string }).error ?? '' };
}

async function assertLive(gateway: RunningGateway, sessions: Held[], when: string): Promise<void> {
  for (const held of sessions) assert.deepEqual(await statusWith(gateway, held), { status: 200 }, `${when}: ${held.label} still works`);
}

async function assertEnded(gateway: RunningGateway, sessions: Held[], when: string): Promise<void> {
  for (const held of sessions) {
    assert.deepEqual(await statusWith(gateway, held), { status: 401, error: 'session_expired' }, `${when}: ${held.label} (old cookie replayed) is refused`);
  }
}

/** Makes an embed session the way the bootstrap does: a bearer token, from the gateway's own origin. */
async function embedSession(gateway: RunningGateway, origin: string, token: string, label: string): Promise<Held> {
  const response = await gateway.fetch('/_embedgate/session', {
    method: 'POST', token, headers: { origin, 'content-type': 'application/json' }, body: JSON.stringify({ path: '/sales/' }),
  });
  assert.equal(response.status, 200, `embed session for ${label}: ${response.status} ${await response.text()}`);
  const value = setCookieValue(response, EMBED_COOKIE);
  assert.ok(value !== undefined && value !== '', 'the session cookie is set');
  return { kind: 'embed', value, label };
}

function postLogout(gateway: RunningGateway, body: string, headers: Record<string, string> = { 'content-type': FORM }): Promise<Response> {
  return gateway.fetch(PATH, { method: 'POST', headers, body });
}

const form = (token: string): string => new URLSearchParams({ logout_token: token }).toString();

/** POSTs the body and asserts the 400 invalid_request answer (JSON, with a description); never a 500. */
async function assertRefused(gateway: RunningGateway, body: string, what: string, headers?: Record<string, string>): Promise<void> {
  const response = await postLogout(gateway, body, headers);
  const text = await response.text();
  assert.equal(response.status, 400, `${what}: answered ${response.status} ${text}`);
  assert.match(response.headers.get('content-type') ?? '', /^application\/json/, what);
  const answer = JSON.parse(text) as { error?: unknown; error_description?: unknown };
  assert.equal(answer.error, 'invalid_request', what);
  assert.equal(typeof answer.error_description, 'string', what);
  assert.doesNotMatch(String(answer.error_description), /is not a function|Cannot read|TypeError|undefined/, `${what}: the answer names the problem, not a crash`);
}

async function assertAccepted(gateway: RunningGateway, token: string, what: string): Promise<void> {
  const response = await postLogout(gateway, form(token));
  const text = await response.text();
  assert.equal(response.status, 200, `${what}: answered ${response.status} ${text}`);
  assert.equal(response.headers.get('cache-control'), 'no-store', what);
  assert.equal(text, '', `${what}: no body`);
}

/** Opens a WebSocket to the app with the session's cookie; it must be accepted and echo. */
async function openSocket(gateway: RunningGateway, origin: string, held: Held, sockets: WebSocket[]): Promise<WebSocket> {
  const opened = await openWebSocket(`${gateway.url.replace(/^http/, 'ws')}/sales/ws`, { cookie: cookieOf(held), origin });
  assert.ok('ws' in opened, `the upgrade for ${held.label} was refused with ${'status' in opened ? opened.status : '?'}`);
  sockets.push(opened.ws);
  assert.equal(await echo(opened.ws, 'hello'), 'hello');
  return opened.ws;
}

async function closeCode(ws: WebSocket): Promise<number> {
  if (ws.readyState === WebSocket.CLOSED) throw new Error('the socket was closed before the test listened');
  const [code] = (await once(ws, 'close')) as [number];
  return code;
}

/**
 * A token endpoint this file controls (the hostile OP's discovery document points the gateway at it): a code the
 * test registers is exchanged once for an ID token (with the sign-in's nonce and the given sid) and an access token,
 * both signed with the hostile OP's real key, so the gateway makes real login sessions with the sids a test chooses.
 */
interface TokenEndpoint {
  url: string;
  issuer: string;
  codes: Map<string, { sub: string; sid: string | undefined; nonce: string }>;
  close(): Promise<void>;
}

async function startTokenEndpoint(op: HostileOp): Promise<TokenEndpoint> {
  const codes: TokenEndpoint['codes'] = new Map();
  const server: Server = createServer((req, res) => void answerToken(op, codes, req, res));
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/token`,
    issuer: op.issuer,
    codes,
    close: async () => {
      const closed = new Promise((resolve) => server.close(resolve));
      server.closeAllConnections();
      await closed;
    },
  };
}

/** client_secret_basic: the id and secret are form-urlencoded before Base64 (RFC 6749 §2.3.1). */
function authenticates(authorization: string | undefined): boolean {
  const [scheme, encoded = ''] = (authorization ?? '').split(' ');
  const [id = '', secret = ''] = Buffer.from(encoded, 'base64').toString('utf8').split(':').map((part) => decodeURIComponent(part));
  return scheme === 'Basic' && id === CLIENT_ID && secret === CLIENT_SECRET;
}

async function answerToken(op: HostileOp, codes: TokenEndpoint['codes'], req: IncomingMessage, res: ServerResponse): Promise<void> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  const params = new URLSearchParams(Buffer.concat(chunks).toString('utf8'));
  const code = params.get('code') ?? '';
  const grant = codes.get(code);
  codes.delete(code);
  if (req.method !== 'POST' || grant === undefined || !authenticates(req.headers.authorization) || params.get('grant_type') !== 'authorization_code') {
    res.writeHead(400, { 'content-type': 'application/json' }).end(JSON.stringify({ error: 'invalid_grant' }));
    return;
  }
  const now = nowSeconds();
  const sid = grant.sid === undefined ? {} : { sid: grant.sid };
  const body = {
    token_type: 'Bearer',
    expires_in: 300,
    access_token: await op.sign(op.claims({ sub: grant.sub, ...sid })),
    id_token: await op.sign({ iss: op.issuer, sub: grant.sub, aud: CLIENT_ID, iat: now, exp: now + 300, nonce: grant.nonce, ...sid }),
  };
  res.writeHead(200, { 'content-type': 'application/json', 'cache-control': 'no-store' }).end(JSON.stringify(body));
}

/**
 * Signs in through the gateway's standalone login (redirect, callback, code exchange) as a browser navigation
 * (raw requests: fetch() would send Sec-Fetch-Mode: cors); returns the login session.
 */
async function loginSession(gateway: RunningGateway, tokens: TokenEndpoint, sub: string, sid: string | undefined, label: string): Promise<Held> {
  const start = await rawRequest(gateway.url, '/sales/', NAVIGATION);
  assert.equal(start.status, 302, 'the gateway sends the browser to sign in');
  const authorize = new URL(start.headers.location ?? '');
  const transaction = start.setCookies.map((line) => line.split(';')[0] as string).filter((pair) => pair.startsWith('__Host-embedgate-tx-'));
  const code = randomBytes(16).toString('base64url');
  tokens.codes.set(code, { sub, sid, nonce: authorize.searchParams.get('nonce') ?? '' });
  const query = new URLSearchParams({ code, state: authorize.searchParams.get('state') ?? '', iss: tokens.issuer });
  const callback = await rawRequest(gateway.url, `/_embedgate/callback?${query}`, [...NAVIGATION, `Cookie: ${transaction.join('; ')}`]);
  assert.equal(callback.status, 302, `sign-in of ${label}: ${callback.status} ${gateway.logs.filter((l) => l.includes('login_failed')).slice(-1).join('')}`);
  const pair = callback.setCookies.map((line) => line.split(';')[0] as string).find((each) => each.startsWith(`${LOGIN_COOKIE}=`));
  const value = pair?.slice(LOGIN_COOKIE.length + 1);
  assert.ok(value !== undefined && value !== '', 'the callback sets the login session cookie');
  return { kind: 'login', value, label };
}

/** Valid logout token claims from `op` for the gateway's client; an override whose value is undefined removes that claim. */
function logoutClaimsOf(op: HostileOp, overrides: Record<string, unknown> = {}): Record<string, unknown> {
  const now = nowSeconds();
  const merged: Record<string, unknown> = {
    iss: op.issuer, aud: CLIENT_ID, iat: now, exp: now + 120, jti: randomUUID(), events: { [LOGOUT_EVENT]: {} }, ...overrides,
  };
  return Object.fromEntries(Object.entries(merged).filter(([, value]) => value !== undefined));
}

function gatewayConfig(op: HostileOp, upstream: Upstream, extra: Record<string, unknown>): Record<string, unknown> {
  return {
    issuers: [{ issuer: op.issuer, audiences: [op.audience] }],
    login: {
      issuer: op.issuer, client_id: CLIENT_ID, client_secret: CLIENT_SECRET, scopes: ['openid'],
      encryption_key: randomBytes(32).toString('base64'),
    },
    embed: { allowed_origins: ['http://host.example'] },
    sessions: { store: 'memory:' },
    apps: [{ name: 'sales', prefix: '/sales/', upstream: upstream.url, allow: { roles: ['analyst'] } }],
    ...extra,
  };
}

describe('back-channel logout tokens from a hostile OP', () => {
  let op: HostileOp;
  /** A second trusted issuer (its access tokens are accepted), which is not the sign-in provider. */
  let otherOp: HostileOp;
  let tokens: TokenEndpoint;
  let upstream: Upstream;
  let gw: RunningGateway;
  let origin: string;
  const sockets: WebSocket[] = [];
  let victims = 0;

  type Named = (overrides?: Record<string, unknown>) => Record<string, unknown>;

  const logoutClaims = (overrides: Record<string, unknown> = {}): Record<string, unknown> => logoutClaimsOf(op, overrides);
  /** Signs these exact claims with the provider's real key (typ logout+jwt unless told otherwise). */
  const signLogout = (claims: Record<string, unknown>, opts: SignOptions = {}): Promise<string> => op.sign(claims, { typ: 'logout+jwt', ...opts });
  const logoutToken = (overrides: Record<string, unknown> = {}, opts: SignOptions = {}): Promise<string> => signLogout(logoutClaims(overrides), opts);
  const embed = async (sub: string, sid: string | undefined, label: string, issuer: HostileOp = op): Promise<Held> =>
    embedSession(gw, origin, await issuer.sign(issuer.claims({ sub, ...(sid === undefined ? {} : { sid }) })), label);

  /** A user signed in twice in one provider session (an embed and a login session), both named by sub and sid. */
  async function victim(): Promise<{ sub: string; sid: string; sessions: Held[] }> {
    victims += 1;
    const sub = `victim-${victims}`;
    const sid = `sid-victim-${victims}`;
    return { sub, sid, sessions: [await embed(sub, sid, `${sub}'s embed session`), await loginSession(gw, tokens, sub, sid, `${sub}'s login session`)] };
  }

  /**
   * Every refused token names the victim's sid and sub (`named` builds such claims): had one been taken, the
   * victim's sessions would be gone. A correct token for the same sid and sub is taken afterwards, so the refusals
   * were about the property tested.
   */
  async function assertAllRefused(build: (named: Named, victimOf: { sub: string; sid: string }) => Promise<Array<[what: string, token: string]>>): Promise<void> {
    const { sid, sub, sessions } = await victim();
    const ws = await openSocket(gw, origin, sessions[0] as Held, sockets);
    const named: Named = (overrides = {}) => logoutClaims({ sub, sid, ...overrides });
    for (const [what, token] of await build(named, { sub, sid })) await assertRefused(gw, form(token), what);
    await assertLive(gw, sessions, 'after the refused tokens');
    assert.equal(await echo(ws, 'still open'), 'still open', 'the WebSocket stays open');
    await assertAccepted(gw, await logoutToken({ sid, sub }), 'a correct token');
    await assertEnded(gw, sessions, 'after the correct token');
  }

  before(async () => {
    op = await startHostileOp();
    otherOp = await startHostileOp();
    tokens = await startTokenEndpoint(op);
    // Sign-in goes to the stand-in token endpoint; no userinfo (the access token says who the user is).
    op.setDiscovery({ token_endpoint: tokens.url, userinfo_endpoint: undefined, authorization_response_iss_parameter_supported: false });
    upstream = await startUpstream();
    const port = await freePort();
    origin = `http://127.0.0.1:${port}`;
    gw = await startGateway(gatewayConfig(op, upstream, {
      listen: `127.0.0.1:${port}`,
      public_url: origin,
      issuers: [{ issuer: op.issuer, audiences: [op.audience] }, { issuer: otherOp.issuer, audiences: [otherOp.audience] }],
    }));
    await eventually(async () => (await gw.fetch('/readyz')).status === 200);
  });

  afterEach(async () => {
    for (const ws of sockets.splice(0)) ws.terminate();
    await eventually(() => upstream.wsConnections === 0);
  });

  after(async () => {
    await gw?.close();
    await upstream?.close();
    await tokens?.close();
    await otherOp?.close();
    await op?.close();
  });

  it('99: a logout_token with alg none (every spelling, with or without a signature) gets 400 and the sessions stay', async () => {
    await assertAllRefused(async (named) => {
      const realSignature = (await signLogout(named())).split('.')[2] as string;
      const cases: Array<[string, string]> = [];
      for (const alg of ['none', 'None', 'NONE', 'nOnE']) {
        cases.push([`alg ${alg}, empty signature`, op.unsigned({ alg, typ: 'logout+jwt' }, named())]);
        cases.push([`alg ${alg}, a real token's signature`, op.unsigned({ alg, typ: 'logout+jwt' }, named(), realSignature)]);
      }
      cases.push(['alg none with the real key\'s kid', op.unsigned({ alg: 'none', kid: op.keys.rsa.kid }, named())]);
      cases.push(['no alg at all', op.unsigned({ typ: 'logout+jwt', kid: op.keys.rsa.kid }, named(), realSignature)]);
      cases.push(['alg none, two segments only', op.unsigned({ alg: 'none' }, named()).slice(0, -1)]);
      return cases;
    });
  });

  it('100: HS256 keyed with the client_secret, another key, another algorithm, wrong iss, wrong aud all get 400 and the sessions stay', async () => {
    const header = { typ: 'logout+jwt' };
    await assertAllRefused(async (named) => [
      ['HS256 keyed with the client_secret', op.hmac(header, named(), CLIENT_SECRET)],
      ['HS256 keyed with the client_secret, the real kid', op.hmac({ ...header, kid: op.keys.rsa.kid }, named(), CLIENT_SECRET)],
      ['HS256 keyed with the provider\'s public key (PEM)', op.hmac({ ...header, kid: op.keys.rsa.kid }, named(), op.publicPem)],
      ['RS256 by an unpublished key, its own kid', await op.sign(named(), { key: 'rsa2', typ: 'logout+jwt' })],
      ['RS256 by an unpublished key, the real kid', await op.sign(named(), { key: 'rsa2', kid: op.keys.rsa.kid, typ: 'logout+jwt' })],
      ['RS256 by another trusted issuer\'s key', await otherOp.sign(named(), { typ: 'logout+jwt' })],
      ['PS256 by a published key when RS256 is required', await op.sign(named(), { alg: 'PS256', typ: 'logout+jwt' })],
      ['ES256 by a published key', await op.sign(named(), { alg: 'ES256', typ: 'logout+jwt' })],
      ['EdDSA by a published key', await op.sign(named(), { alg: 'EdDSA', typ: 'logout+jwt' })],
      ['RS256, signature bytes changed', flipSignature(await signLogout(named()))],
      ['wrong iss', await signLogout(named({ iss: 'http://evil.example' }))],
      ['iss with a trailing slash', await signLogout(named({ iss: `${op.issuer}/` }))],
      ['iss of another trusted issuer (signed by it)', await otherOp.sign(named({ iss: otherOp.issuer }), { typ: 'logout+jwt' })],
      ['no iss', await signLogout(named({ iss: undefined }))],
      ['aud = the gateway\'s access-token audience', await signLogout(named({ aud: op.audience }))],
      ['aud = another client', await signLogout(named({ aud: 'other-client' }))],
      ['aud = [another client]', await signLogout(named({ aud: ['other-client'] }))],
      ['aud in another case', await signLogout(named({ aud: CLIENT_ID.toUpperCase() }))],
      ['no aud', await signLogout(named({ aud: undefined }))],
    ]);
  });

  it('101: no events, events an array, no back-channel logout event, another event URI, the event not an object all get 400', async () => {
    const cases: Array<[string, Record<string, unknown>]> = [
      ['no events', { events: undefined }],
      ['events an array', { events: [LOGOUT_EVENT] }],
      ['events an array of objects', { events: [{ [LOGOUT_EVENT]: {} }] }],
      ['events a string', { events: LOGOUT_EVENT }],
      ['events null', { events: null }],
      ['events empty', { events: {} }],
      ['another event URI', { events: { 'http://schemas.openid.net/event/backchannel-logout-other': {} } }],
      ['the URI with a trailing slash', { events: { [`${LOGOUT_EVENT}/`]: {} } }],
      ['the URI over https', { events: { [LOGOUT_EVENT.replace('http:', 'https:')]: {} } }],
      ['a security event of another kind', { events: { 'https://schemas.openid.net/secevent/risc/event-type/sessions-revoked': {} } }],
      ['the event member a string', { events: { [LOGOUT_EVENT]: 'logout' } }],
      ['the event member true', { events: { [LOGOUT_EVENT]: true } }],
      ['the event member null', { events: { [LOGOUT_EVENT]: null } }],
      ['the event member an array', { events: { [LOGOUT_EVENT]: [] } }],
    ];
    await assertAllRefused((named) => Promise.all(cases.map(async ([what, overrides]): Promise<[string, string]> => [what, await signLogout(named(overrides))])));
  });

  it('102: nonce, neither sub nor sid, a bad iat, jti or typ all get 400', async () => {
    const now = nowSeconds();
    await assertAllRefused((named, { sid }) => {
      const cases: Array<[string, Record<string, unknown>, SignOptions?]> = [
        ['contains nonce', { nonce: 'n-0S6_WzA2Mj' }],
        ['contains an empty nonce', { nonce: '' }],
        ['neither sub nor sid', { sub: undefined, sid: undefined }],
        ['sub and sid empty', { sub: '', sid: '' }],
        ['sid not a string (with a sub)', { sid: 42 }],
        ['sid an array (with a sub)', { sid: [sid] }],
        ['sub not a string (with a sid)', { sub: 42 }],
        ['no iat', { iat: undefined }],
        ['iat a string', { iat: String(now) }],
        ['iat an hour ago', { iat: now - 3600 }],
        ['iat 11 minutes ago', { iat: now - 660 }],
        ['iat an hour ahead', { iat: now + 3600 }],
        ['exp passed', { iat: now - 120, exp: now - 60 }],
        ['no exp (required by Back-Channel Logout 1.0)', { exp: undefined }],
        ['no jti', { jti: undefined }],
        ['jti empty', { jti: '' }],
        ['jti a number', { jti: 42 }],
        ['typ at+jwt', {}, { typ: 'at+jwt' }],
        ['typ application/at+jwt', {}, { typ: 'application/at+jwt' }],
        ['typ secevent+jwt', {}, { typ: 'secevent+jwt' }],
        ['typ id_token+jwt', {}, { typ: 'id_token+jwt' }],
        ['typ not a string', {}, { header: { typ: 42 } }],
      ];
      return Promise.all(cases.map(async ([what, overrides, opts]): Promise<[string, string]> => [what, await signLogout(named(overrides), opts)]));
    });
  });

  it('102: GET gets 405; a wrong content type, no or two logout_token parameters, an oversized body, garbage get 400, never a 500', async () => {
    const { sid, sub, sessions } = await victim();
    const valid = (): Promise<string> => logoutToken({ sid, sub });
    for (const method of ['GET', 'HEAD', 'PUT', 'DELETE']) {
      const response = await gw.fetch(`${PATH}?${form(await valid())}`, { method });
      await response.arrayBuffer();
      assert.equal(response.status, 405, method);
      assert.equal(response.headers.get('allow'), 'POST', method);
    }
    const token = await valid();
    const contentTypes: Array<[string, Record<string, string>, string]> = [
      ['JSON', { 'content-type': 'application/json' }, JSON.stringify({ logout_token: token })],
      ['text/plain', { 'content-type': 'text/plain' }, form(token)],
      ['multipart', { 'content-type': 'multipart/form-data; boundary=x' }, `--x\r\nContent-Disposition: form-data; name="logout_token"\r\n\r\n${token}\r\n--x--\r\n`],
      ['the token as the raw body', { 'content-type': 'application/jwt' }, token],
    ];
    for (const [what, headers, body] of contentTypes) await assertRefused(gw, body, what, headers);
    const noType = await rawRequest(gw.url, PATH, [], 'POST', form(token));
    assert.equal(noType.status, 400, 'no content type');
    const bodies: Array<[string, string]> = [
      ['empty body', ''],
      ['no logout_token', `token=${token}`],
      ['logout_token empty', 'logout_token='],
      ['two logout_token parameters (the same token)', `${form(token)}&${form(token)}`],
      ['two logout_token parameters (a valid one and garbage)', `${form(token)}&logout_token=x`],
      ['two logout_token parameters (garbage and a valid one)', `logout_token=x&${form(token)}`],
      ['oversized body (the token padded past 16 KiB)', `${form(token)}&pad=${'a'.repeat(17 * 1024)}`],
      ['not a JWT', 'logout_token=not-a-jwt'],
      ['three dots', 'logout_token=...'],
      ['five segments (JWE)', 'logout_token=a.b.c.d.e'],
      ['a header that is not JSON', `logout_token=${Buffer.from('{"alg":').toString('base64url')}.e30.`],
      ['a header that is an array', `logout_token=${Buffer.from('["RS256"]').toString('base64url')}.e30.sig`],
      ['bad percent-encoding', 'logout_token=%E0%A4%A'],
      ['binary', `logout_token=${encodeURIComponent('\u0000\uffff')}`],
    ];
    for (const [what, body] of bodies) await assertRefused(gw, body, what);
    // Oversized without a Content-Length (chunked): the limit holds while reading too.
    const chunked = await gw.fetch(PATH, {
      method: 'POST', headers: { 'content-type': FORM }, body: streamOf(`${form(token)}&pad=${'a'.repeat(20 * 1024)}`), duplex: 'half',
    } as RequestInit);
    assert.equal(chunked.status, 400, 'oversized chunked body');
    await chunked.arrayBuffer();
    await assertLive(gw, sessions, 'after the malformed requests');
    // None of them used up the jti of the token they carried.
    await assertAccepted(gw, token, 'the token sent properly');
    await assertEnded(gw, sessions, 'after the token sent properly');
  });

  it('102: typ absent, JWT, logout+jwt or application/logout+jwt in any case is a logout token (200)', async () => {
    for (const typ of [undefined, 'JWT', 'jwt', 'logout+jwt', 'application/logout+jwt', 'LOGOUT+JWT']) {
      const sid = `sid-typ-${typ ?? 'absent'}`;
      const held = await embed('typ-user', sid, `session of sid ${sid}`);
      await assertAccepted(gw, await op.sign(logoutClaims({ sid }), typ === undefined ? {} : { typ }), `typ ${String(typ)}`);
      await assertEnded(gw, [held], `typ ${String(typ)}`);
    }
  });

  it('103: a logout_token naming a sid ends every session of that sid (embed and login, WebSockets closed with 1008) and no other', async () => {
    const sid = 'sid-ana-1';
    const ofSid = [
      await embed('ana', sid, 'ana\'s embed session in sid-ana-1'),
      await embed('ana', sid, 'ana\'s second embed session in sid-ana-1'),
      await loginSession(gw, tokens, 'ana', sid, 'ana\'s login session in sid-ana-1'),
      await loginSession(gw, tokens, 'ana', sid, 'ana\'s second login session in sid-ana-1'),
    ];
    const others = [
      await embed('ana', 'sid-ana-2', 'ana\'s embed session in sid-ana-2'),
      await loginSession(gw, tokens, 'ana', 'sid-ana-2', 'ana\'s login session in sid-ana-2'),
      await embed('ana', undefined, 'ana\'s embed session without a sid'),
      await embed('bob', 'sid-bob-1', 'bob\'s embed session'),
      await loginSession(gw, tokens, 'bob', 'sid-bob-1', 'bob\'s login session'),
      await embed('carol', sid, 'a session of the same sid from another trusted issuer', otherOp),
    ];
    await assertLive(gw, [...ofSid, ...others], 'before');
    const endedWs = [await openSocket(gw, origin, ofSid[0] as Held, sockets), await openSocket(gw, origin, ofSid[2] as Held, sockets)];
    const otherWs = await openSocket(gw, origin, others[0] as Held, sockets);
    const codes = endedWs.map(closeCode);
    await assertAccepted(gw, await logoutToken({ sid }), 'sid-ana-1');
    assert.deepEqual(await Promise.all(codes), [1008, 1008], 'the open WebSockets of the ended sessions are closed with 1008');
    await assertEnded(gw, ofSid, 'after the logout of sid-ana-1');
    await assertLive(gw, others, 'after the logout of sid-ana-1');
    assert.equal(await echo(otherWs, 'other session'), 'other session', 'a WebSocket of another sid stays open');
    assert.ok(gw.logs.some((line) => line.includes('"audit":"backchannel_logout"') && line.includes('"sessions":4')), 'the logout is audited with the sessions it ended');
  });

  it('103: a logout_token naming only a sub ends all of that user\'s sessions, whatever their sid; with a sid too, the login sessions of other sids stay', async () => {
    const dave = [
      await embed('dave', 'sid-dave-1', 'dave\'s embed session in sid-dave-1'),
      await embed('dave', undefined, 'dave\'s embed session without a sid'),
      await loginSession(gw, tokens, 'dave', 'sid-dave-1', 'dave\'s login session in sid-dave-1'),
      await loginSession(gw, tokens, 'dave', 'sid-dave-2', 'dave\'s login session in sid-dave-2'),
      await loginSession(gw, tokens, 'dave', undefined, 'dave\'s login session without a sid'),
    ];
    const eve = [await embed('eve', 'sid-eve-1', 'eve\'s embed session'), await loginSession(gw, tokens, 'eve', 'sid-eve-1', 'eve\'s login session')];
    const ws = await openSocket(gw, origin, dave[1] as Held, sockets);
    const code = closeCode(ws);
    await assertAccepted(gw, await logoutToken({ sub: 'dave' }), 'sub dave');
    assert.equal(await code, 1008);
    await assertEnded(gw, dave, 'after the logout of sub dave');
    await assertLive(gw, eve, 'after the logout of sub dave');

    const frank = {
      inSid: await loginSession(gw, tokens, 'frank', 'sid-frank-1', 'frank\'s login session in sid-frank-1'),
      embedElsewhere: await embed('frank', 'sid-frank-2', 'frank\'s embed session in sid-frank-2'),
      loginElsewhere: await loginSession(gw, tokens, 'frank', 'sid-frank-2', 'frank\'s login session in sid-frank-2'),
    };
    await assertAccepted(gw, await logoutToken({ sub: 'frank', sid: 'sid-frank-1' }), 'sub frank and sid-frank-1');
    await assertEnded(gw, [frank.inSid, frank.embedElsewhere], 'after the logout of frank in sid-frank-1');
    await assertLive(gw, [frank.loginElsewhere, ...eve], 'after the logout of frank in sid-frank-1');
  });

  it('103: the same jti again gets 400 and ends nothing, resent as is or re-signed for another sid', async () => {
    const token = await logoutToken({ sid: 'sid-gina-1' });
    await assertAccepted(gw, token, 'first delivery');
    const later = [
      await embed('gina', 'sid-gina-1', 'gina\'s new session in sid-gina-1'),
      await loginSession(gw, tokens, 'gina', 'sid-gina-1', 'gina\'s new login session in sid-gina-1'),
      await embed('hugo', 'sid-hugo-1', 'hugo\'s session'),
    ];
    await assertRefused(gw, form(token), 'the same token again');
    const { jti } = JSON.parse(Buffer.from(token.split('.')[1] as string, 'base64url').toString()) as { jti: string };
    await assertRefused(gw, form(await logoutToken({ sid: 'sid-hugo-1', jti })), 'the same jti, re-signed for another sid');
    await assertRefused(gw, form(await logoutToken({ sub: 'gina', jti })), 'the same jti, re-signed for the sub');
    await assertLive(gw, later, 'after the replays');
  });

  it('56, 103: a logout_token is never an access token: as a Bearer at an app path or for an embed session it gets 401', async () => {
    // aud also names the gateway's audience and the token carries roles, so only its kind makes it unfit.
    const claims = (overrides: Record<string, unknown> = {}): Record<string, unknown> =>
      logoutClaims({ sub: 'ivan', sid: 'sid-ivan-1', aud: [CLIENT_ID, op.audience], roles: ['analyst'], exp: nowSeconds() + 300, ...overrides });
    const cases: Array<[string, string]> = [
      ['typ logout+jwt with events', await op.sign(claims(), { typ: 'logout+jwt' })],
      ['typ application/logout+jwt with events', await op.sign(claims(), { typ: 'application/logout+jwt' })],
      ['events, typ JWT', await op.sign(claims(), { typ: 'JWT' })],
      ['events, no typ', await op.sign(claims())],
      ['typ logout+jwt, no events', await op.sign(claims({ events: undefined }), { typ: 'logout+jwt' })],
    ];
    upstream.clear();
    for (const [what, token] of cases) {
      const response = await gw.fetch('/sales/', { token });
      assert.equal(response.status, 401, `${what}: ${response.status} ${await response.text()}`);
      assert.match(response.headers.get('www-authenticate') ?? '', /^Bearer .*error="invalid_token"/, what);
      const session = await gw.fetch('/_embedgate/session', {
        method: 'POST', token, headers: { origin, 'content-type': 'application/json' }, body: '{"path":"/sales/"}',
      });
      assert.equal(session.status, 401, `${what}: no embed session from it`);
      assert.equal(setCookieValue(session, EMBED_COOKIE), undefined, what);
    }
    assert.equal(upstream.requests.length, 0, 'the app never saw one');
    // The control: the same claims without the logout token's marks are an access token.
    const response = await gw.fetch('/sales/', { token: await op.sign(claims({ events: undefined, jti: undefined })) });
    assert.equal(response.status, 200);
    await response.text();
    // And the genuine one still works as a logout token afterwards (its use as a bearer did not consume it).
    const held = await embed('ivan', 'sid-ivan-1', 'ivan\'s session');
    await assertAccepted(gw, cases[0]?.[1] as string, 'the logout token at the back-channel endpoint');
    await assertEnded(gw, [held], 'after the logout');
  });

  it('logs: refusals are audited with their reason, and no logout token is ever logged', () => {
    const text = gw.logs.join('\n');
    assert.ok(text.includes('backchannel_logout_refused'), 'refusals are audited');
    assert.doesNotMatch(text, /eyJ[A-Za-z0-9_-]{10,}\.eyJ/, 'no JWT is logged');
  });
});

/** The token with its signature's bytes XORed (still well-formed base64url, same length). */
function flipSignature(token: string): string {
  const [header, payload, signature = ''] = token.split('.');
  const bytes = Buffer.from(signature, 'base64url').map((byte) => byte ^ 0x5a);
  return `${header}.${payload}.${Buffer.from(bytes).toString('base64url')}`;
}

function streamOf(text: string): ReadableStream<Uint8Array> {
  const bytes = new TextEncoder().encode(text);
  return new ReadableStream({
    start(controller) {
      for (let at = 0; at < bytes.length; at += 4096) controller.enqueue(bytes.slice(at, at + 4096));
      controller.close();
    },
  });
}

describe('two gateway instances sharing one Redis', () => {
  let redis: RunningRedis;
  let op: HostileOp;
  let upstream: Upstream;
  /** The URL both instances are reached by (a load balancer's): the Origin of the framed app. */
  let publicUrl: string;
  let first: RunningGateway;
  let second: RunningGateway;
  const sockets: WebSocket[] = [];

  const logoutToken = (overrides: Record<string, unknown>): Promise<string> => op.sign(logoutClaimsOf(op, overrides), { typ: 'logout+jwt' });
  const embed = async (gateway: RunningGateway, sub: string, sid: string, label: string): Promise<Held> =>
    embedSession(gateway, publicUrl, await op.sign(op.claims({ sub, sid })), label);

  async function startInstance(port?: number): Promise<RunningGateway> {
    const gateway = await startGateway(gatewayConfig(op, upstream, {
      ...(port === undefined ? {} : { listen: `127.0.0.1:${port}` }),
      public_url: publicUrl,
      sessions: { store: redis.url },
    }));
    await eventually(async () => (await gateway.fetch('/readyz')).status === 200);
    return gateway;
  }

  before(async () => {
    redis = await startRedis();
    op = await startHostileOp();
    upstream = await startUpstream();
    const port = await freePort();
    publicUrl = `http://127.0.0.1:${port}`;
    first = await startInstance(port);
    second = await startInstance();
  });

  after(async () => {
    for (const ws of sockets.splice(0)) ws.terminate();
    await first?.close();
    await second?.close();
    await upstream?.close();
    await op?.close();
    await redis?.close();
  });

  it('103: a logout token posted to instance A ends the sid\'s sessions used on B (401 there), closes B\'s WebSocket with 1008; its jti is spent on B too', async () => {
    const sid = 'sid-redis-ana';
    const ended = [await embed(second, 'ana', sid, 'ana\'s session made on B'), await embed(first, 'ana', sid, 'ana\'s session made on A')];
    const kept = [await embed(second, 'bob', 'sid-redis-bob', 'bob\'s session made on B')];
    await assertLive(second, [...ended, ...kept], 'before, on B');
    const ws = await openSocket(second, publicUrl, ended[0] as Held, sockets);
    const keptWs = await openSocket(second, publicUrl, kept[0] as Held, sockets);
    const code = closeCode(ws);
    const token = await logoutToken({ sid });
    await assertAccepted(first, token, 'posted to A');
    assert.equal(await code, 1008, 'B closes its WebSocket of the ended session');
    await assertEnded(second, ended, 'on B');
    await assertEnded(first, ended, 'on A');
    await assertRefused(second, form(token), 'the same logout token replayed at B');
    await assertLive(second, kept, 'after the replay, on B');
    assert.equal(await echo(keptWs, 'kept'), 'kept', 'the other user\'s WebSocket on B stays open');
  });

  it('103: a logout token naming only a sub, posted to B, ends that user\'s sessions made on A', async () => {
    const carol = [await embed(first, 'carol', 'sid-redis-carol-1', 'carol\'s session on A'), await embed(first, 'carol', 'sid-redis-carol-2', 'carol\'s other session on A')];
    const dan = [await embed(first, 'dan', 'sid-redis-dan', 'dan\'s session on A')];
    await assertAccepted(second, await logoutToken({ sub: 'carol' }), 'posted to B');
    await assertEnded(first, carol, 'on A');
    await assertLive(first, dan, 'on A');
  });
});

describe('back-channel logout from the embedded IdP, end to end', () => {
  const PASSWORD = 'correct horse battery staple';
  let idp: RunningIdp;
  let upstream: Upstream;
  let gw: RunningGateway;
  let gwOrigin: string;
  let browser: Browser;
  const tabs: BrowserTab[] = [];
  const sockets: WebSocket[] = [];

  before(async () => {
    const port = await freePort();
    gwOrigin = `http://127.0.0.1:${port}`;
    idp = await startIdp({
      users: [
        { username: 'ana', password: PASSWORD, email: 'ana@example.com', roles: ['analyst'] },
        { username: 'bob', password: PASSWORD, email: 'bob@example.com', roles: ['analyst'] },
      ],
      clients: [{
        client_id: CLIENT_ID, client_secret: CLIENT_SECRET, redirect_uris: [`${gwOrigin}/_embedgate/callback`],
        post_logout_redirect_uris: [`${gwOrigin}/sales/`], backchannel_logout_uri: `${gwOrigin}${PATH}`,
      }],
    });
    upstream = await startUpstream();
    gw = await startGateway({
      listen: `127.0.0.1:${port}`,
      public_url: gwOrigin,
      issuers: [{ issuer: idp.issuer, audiences: [GATEWAY_AUDIENCE] }],
      login: {
        issuer: idp.issuer, client_id: CLIENT_ID, client_secret: CLIENT_SECRET, resource: GATEWAY_AUDIENCE,
        scopes: ['openid', 'profile', 'email'], encryption_key: randomBytes(32).toString('base64'),
      },
      sessions: { store: 'memory:' },
      apps: [{ name: 'sales', prefix: '/sales/', upstream: upstream.url, allow: { roles: ['analyst'] } }],
    });
    await eventually(async () => (await gw.fetch('/readyz')).status === 200);
    browser = await launchChromium();
  });

  after(async () => {
    for (const ws of sockets.splice(0)) ws.terminate();
    for (const tab of tabs.splice(0)) await tab.close();
    await browser?.close();
    await gw?.close();
    await upstream?.close();
    await idp?.close(true);
  });

  /** Opens `path` in the tab and signs in as `username` when the IdP asks; the tab ends on `path`, signed in. */
  async function signIn(page: Page, username: string, path: string): Promise<void> {
    await page.goto(`${gwOrigin}${path}`);
    if (page.url().startsWith(`${idp.issuer}/interaction/`)) {
      await page.getByLabel('Username').fill(username);
      await page.getByLabel('Password').fill(PASSWORD);
      await page.getByRole('button', { name: 'Sign in' }).click();
    }
    await page.waitForURL(`${gwOrigin}${path}`);
  }

  async function loginCookie(tab: BrowserTab, label: string): Promise<Held> {
    const cookie = (await tab.context.cookies(gwOrigin)).find((each) => each.name === LOGIN_COOKIE);
    assert.ok(cookie !== undefined, `${label}: the browser holds the gateway's session cookie`);
    return { kind: 'login', value: cookie.value, label };
  }

  it('103: signing out at the IdP ends every gateway session of that IdP session through its back-channel call; another user\'s stays', async () => {
    const anaTab = await openTab(browser);
    const bobTab = await openTab(browser);
    tabs.push(anaTab, bobTab);
    await signIn(anaTab.page, 'ana', '/sales/');
    const anaFirst = await loginCookie(anaTab, 'ana\'s first gateway session');
    // A second gateway session in the same IdP session (single sign-on: the IdP does not ask again), so the same sid.
    await anaTab.context.clearCookies({ name: LOGIN_COOKIE });
    await signIn(anaTab.page, 'ana', '/sales/again');
    const anaSecond = await loginCookie(anaTab, 'ana\'s second gateway session');
    assert.notEqual(anaSecond.value, anaFirst.value);
    await signIn(bobTab.page, 'bob', '/sales/');
    const bob = await loginCookie(bobTab, 'bob\'s gateway session');
    await assertLive(gw, [anaFirst, anaSecond, bob], 'signed in');
    const ws = await openSocket(gw, gwOrigin, anaSecond, sockets);
    const code = closeCode(ws);

    // Ana signs out at the IdP itself: the gateway hears of it only through the back-channel call.
    const discovery = (await (await fetch(`${idp.issuer}/.well-known/openid-configuration`)).json()) as { end_session_endpoint: string };
    await anaTab.page.goto(discovery.end_session_endpoint);
    await anaTab.page.getByRole('button', { name: 'Yes, sign me out' }).click();
    await anaTab.page.getByText('You are signed out.').waitFor();

    await eventually(async () => (await statusWith(gw, anaFirst)).status === 401);
    await assertEnded(gw, [anaFirst, anaSecond], 'after signing out at the IdP');
    assert.equal(await code, 1008, 'ana\'s open WebSocket is closed with 1008');
    await assertLive(gw, [bob], 'after ana signed out at the IdP');
    assert.ok(idp.logs.some((line) => line.includes('"audit":"backchannel_logout"')), 'the IdP delivered the logout token');
    assert.ok(!idp.logs.some((line) => line.includes('backchannel_logout_failed')), 'no back-channel delivery failed');
    assert.ok(gw.logs.some((line) => line.includes('"audit":"backchannel_logout"') && line.includes('"sessions":2')), 'the gateway ended both sessions');
    // In the browser: the app asks ana to sign in again.
    await anaTab.page.goto(`${gwOrigin}/sales/`);
    assert.ok(anaTab.page.url().startsWith(`${idp.issuer}/interaction/`), `the IdP's login page, not ${anaTab.page.url()}`);
  });
});
