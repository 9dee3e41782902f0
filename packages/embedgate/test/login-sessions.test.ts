// Security cases 84–94, 96, 104 and 41 for the standalone sign-in's session: where the browser is sent after sign-in
// and sign-out, the sealed transaction cookie, the session cookie's attributes, fixation, replay and integrity, and
// cross-site sign-out. The real gateway and the real embedded IdP over real HTTP; the IdP's login form is filled with
// fetch (BrowserSession), the gateway is spoken to byte for byte (rawRequest); Chromium only for the cross-site pages.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import type { Browser } from 'playwright-core';
import { BrowserSession } from './support/browser-session.js';
import { launchChromium, openTab, rawHeaders } from './support/chromium.js';
import { eventually, startGateway, type RunningGateway } from './support/gateway.js';
import { isConsentPage, isLoginPage, submitLogin } from './support/idp-rp.js';
import { freePort, GATEWAY_AUDIENCE, startIdp, type RunningIdp } from './support/idp.js';
import { rawRequest, type RawResponse } from './support/raw-http.js';
import { startUpstream, type Upstream } from './support/upstream.js';

const PASSWORD = 'correct horse battery staple';
const CLIENT_SECRET = 'gateway-client-secret-0123456789';
const SESSION_COOKIE = '__Host-embedgate-session';
const TX_PREFIX = '__Host-embedgate-tx-';
const SESSION_MAX_SECONDS = 3600;
const ANA = { username: 'ana', password: PASSWORD };
/** A user in 300 groups: about 9 KB of roles in every access token. */
const WIDE = { username: 'wide', password: PASSWORD };
const WIDE_ROLES = ['analyst', ...Array.from({ length: 300 }, (_, i) => `team-${String(i).padStart(3, '0')}-dashboard-readers`)];

type User = typeof ANA;

let idp: RunningIdp;
let upstream: Upstream;
/** The app only the wide user may use; its server takes large headers, as the identity headers for 300 groups are. */
let wideApp: Server;
const wideRequests: IncomingHttpHeaders[] = [];
let gw: RunningGateway;
let gwOrigin: string;
let postLogoutUri: string;

before(async () => {
  const port = await freePort();
  gwOrigin = `http://127.0.0.1:${port}`;
  postLogoutUri = `${gwOrigin}/sales/`;
  idp = await startIdp({
    users: [
      { username: ANA.username, password: PASSWORD, email: 'ana@example.com', roles: ['analyst'] },
      { username: WIDE.username, password: PASSWORD, email: 'wide@example.com', roles: WIDE_ROLES },
    ],
    clients: [{
      client_id: 'gateway', client_secret: CLIENT_SECRET, redirect_uris: [`${gwOrigin}/_embedgate/callback`],
      post_logout_redirect_uris: [postLogoutUri],
    }],
  });
  upstream = await startUpstream();
  wideApp = createServer({ maxHeaderSize: 64 * 1024 }, (req, res) => {
    wideRequests.push(req.headers);
    res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
  });
  wideApp.listen(0, '127.0.0.1');
  await once(wideApp, 'listening');
  gw = await startGateway({
    listen: `127.0.0.1:${port}`,
    public_url: gwOrigin,
    // The wide user's access token is larger than the 8 KB default.
    max_token_bytes: 65536,
    issuers: [{ issuer: idp.issuer, audiences: [GATEWAY_AUDIENCE] }],
    login: {
      issuer: idp.issuer, client_id: 'gateway', client_secret: CLIENT_SECRET, resource: GATEWAY_AUDIENCE,
      scopes: ['openid', 'profile', 'email'], encryption_key: randomBytes(32).toString('base64'),
      post_logout_redirect_uri: postLogoutUri, session_max_seconds: SESSION_MAX_SECONDS,
    },
    sessions: { store: 'memory:' },
    apps: [
      { name: 'sales', prefix: '/sales/', upstream: upstream.url, allow: { roles: ['analyst'] } },
      { name: 'wide', prefix: '/wide/', upstream: `http://127.0.0.1:${(wideApp.address() as AddressInfo).port}`, allow: { roles: [WIDE_ROLES.at(-1)] } },
    ],
  });
  await eventually(async () => (await gw.fetch('/readyz')).status === 200);
});

after(async () => {
  await gw?.close();
  await upstream?.close();
  if (wideApp !== undefined) await closeServer(wideApp);
  await idp?.close(true);
});

async function closeServer(server: Server): Promise<void> {
  const closed = new Promise((resolve) => server.close(resolve));
  server.closeAllConnections();
  await closed;
}

/** A tab opening a page of the gateway (typed into the address bar). */
const NAVIGATION = ['Sec-Fetch-Dest: document', 'Sec-Fetch-Mode: navigate', 'Sec-Fetch-Site: none', 'Accept: text/html'];
/** The IdP's redirect back to the callback (another port of 127.0.0.1: same site). */
const FROM_IDP = ['Sec-Fetch-Dest: document', 'Sec-Fetch-Mode: navigate', 'Sec-Fetch-Site: same-site', 'Accept: text/html'];
/** A script of the app (fetch/XHR). */
const SCRIPT = ['Sec-Fetch-Dest: empty', 'Sec-Fetch-Mode: cors', 'Sec-Fetch-Site: same-origin', 'Accept: application/json'];

/** `name=value` of the Set-Cookie line that sets `name` (or the first whose name starts with it), if any. */
function setCookiePair(response: RawResponse, name: string): string | undefined {
  const line = response.setCookies.find((c) => c.startsWith(name));
  return line?.split(';')[0];
}

function setCookieValue(response: RawResponse, name: string): string | undefined {
  const pair = setCookiePair(response, `${name}=`);
  return pair?.slice(name.length + 1);
}

/** True when a Location stays on the gateway: a path, read the same way by every URL parser. */
function isGatewayPath(location: string | undefined): boolean {
  return location !== undefined && location.startsWith('/') && !location.startsWith('//')
    && !/[\\\x00-\x20\x7f]/.test(location) && new URL(location, gwOrigin).origin === gwOrigin;
}

function requestTarget(url: URL): string {
  return `${url.pathname}${url.search}`;
}

/**
 * The browser at the IdP: opens the authorization URL, signs in on the login form when asked and returns where the
 * IdP sends it back (not fetched). `idpSession` keeps the IdP's cookies, so a second sign-in is single sign-on.
 */
async function atIdp(authorizeUrl: string, user: User, idpSession: BrowserSession): Promise<URL> {
  let page = await idpSession.get(authorizeUrl);
  if (isLoginPage(page)) page = await submitLogin(idpSession, user);
  if (isConsentPage(page)) page = await idpSession.submit({}, { button: 'Allow' });
  assert.ok(page.left, `the IdP sends the browser back, not ${page.status} at ${page.url}: ${page.html.slice(0, 300)}`);
  return new URL(page.url);
}

interface SignedIn {
  start: RawResponse;
  callback: RawResponse;
  /** The new session cookie's value. */
  session: string;
}

/**
 * A whole sign-in: the first request (`target` with `headers`, as a tab sends it), the IdP, and the callback with the
 * transaction cookie the first response set.
 */
async function signIn(target: string, options: { user?: User; idpSession?: BrowserSession; headers?: string[] } = {}): Promise<SignedIn> {
  const start = await rawRequest(gwOrigin, target, [...NAVIGATION, ...(options.headers ?? [])]);
  assert.equal(start.status, 302, `${target}: sent to sign in`);
  assert.equal(new URL(start.headers.location ?? '').origin, idp.issuer, `${target}: to the IdP`);
  const tx = setCookiePair(start, TX_PREFIX);
  assert.ok(tx !== undefined, `${target}: a transaction cookie`);
  const back = await atIdp(start.headers.location ?? '', options.user ?? ANA, options.idpSession ?? new BrowserSession(idp.issuer));
  assert.equal(`${back.origin}${back.pathname}`, `${gwOrigin}/_embedgate/callback`);
  const callback = await rawRequest(gwOrigin, requestTarget(back), [...FROM_IDP, `Cookie: ${tx}`]);
  assert.equal(callback.status, 302, `${target}: signed in (${callback.body.slice(0, 200)})`);
  const session = setCookieValue(callback, SESSION_COOKIE);
  assert.ok(session !== undefined && session !== '', `${target}: a session cookie`);
  return { start, callback, session };
}

/** What an app's script gets with this session cookie value. */
function scriptRequest(session: string, path = '/sales/_dash-layout'): Promise<RawResponse> {
  return rawRequest(gwOrigin, path, [...SCRIPT, `Cookie: ${SESSION_COOKIE}=${session}`]);
}

async function sessionWorks(session: string): Promise<boolean> {
  return (await scriptRequest(session)).status === 200;
}

/** POST /_embedgate/logout as the gateway's own sign-out page sends it. */
function signOut(session: string | undefined, query = '', extra: string[] = [], body = ''): Promise<RawResponse> {
  return rawRequest(gwOrigin, `/_embedgate/logout${query}`, [
    `Origin: ${gwOrigin}`, 'Sec-Fetch-Site: same-origin', 'Sec-Fetch-Mode: navigate', 'Sec-Fetch-Dest: document',
    ...(session === undefined ? [] : [`Cookie: ${SESSION_COOKIE}=${session}`]),
    ...(body === '' ? [] : ['Content-Type: application/x-www-form-urlencoded']), ...extra,
  ], 'POST', body);
}

/** Flips one bit of the byte at `index` of a base64url value's decoding. */
function flipBit(value: string, index: number, bit = 0): string {
  const bytes = Buffer.from(value, 'base64url');
  bytes[index] = (bytes[index] ?? 0) ^ (1 << bit);
  return bytes.toString('base64url');
}

const EVIL = 'evil.example';

describe('84: where the browser goes after sign-in', () => {
  // Each entry is the query string exactly as it is sent.
  const hostile = (port: string): string[] => [
    `rd=${encodeURIComponent('//evil.example/')}`,
    'rd=//evil.example/',
    'rd=///evil.example/',
    'rd=////evil.example',
    `rd=${encodeURIComponent('/\\evil.example')}`,
    `rd=${encodeURIComponent('\\\\evil.example')}`,
    `rd=${encodeURIComponent('\\/evil.example')}`,
    `rd=${encodeURIComponent('/\\/evil.example/')}`,
    `rd=${encodeURIComponent('\t//evil.example')}`,
    `rd=${encodeURIComponent('/\t/evil.example')}`,
    `rd=${encodeURIComponent(' //evil.example')}`,
    `rd=${encodeURIComponent('/ /evil.example')}`,
    'rd=%2F%09%2Fevil.example',
    'rd=%00//evil.example',
    `rd=${encodeURIComponent('https://evil.example/')}`,
    `rd=${encodeURIComponent('http://evil.example')}`,
    `rd=${encodeURIComponent('https:evil.example')}`,
    `rd=${encodeURIComponent('http:/\\evil.example')}`,
    `rd=${encodeURIComponent(`http://127.0.0.1:${port}.evil.example/sales/`)}`,
    `rd=${encodeURIComponent(`http://127.0.0.1:${port}@evil.example/sales/`)}`,
    `rd=${encodeURIComponent('//127.0.0.1@evil.example/')}`,
    `rd=${encodeURIComponent(`http://127.0.0.1:${port}\\@evil.example/`)}`,
    `rd=${encodeURIComponent('javascript:alert(document.domain)')}`,
    `rd=${encodeURIComponent('JaVaScRiPt:alert(1)')}`,
    `rd=${encodeURIComponent('java\tscript:alert(1)')}`,
    `rd=${encodeURIComponent('data:text/html,<script>alert(1)</script>')}`,
    `rd=${encodeURIComponent('vbscript:msgbox(1)')}`,
    'rd=%252F%252Fevil.example',
    `rd=${encodeURIComponent('/%2F%2Fevil.example')}`,
    `rd=${encodeURIComponent('/%2f/evil.example')}`,
    `rd=${encodeURIComponent('/%5Cevil.example')}`,
    `rd=${encodeURIComponent('/%5c%5cevil.example')}`,
    `rd=${encodeURIComponent('/%09/evil.example')}`,
    `rd=${encodeURIComponent('/sales/../..//evil.example')}`,
    `rd=${encodeURIComponent('/%2e%2e//evil.example')}`,
    `rd=${encodeURIComponent('/sales/%2e%2e/%2e%2e//evil.example')}`,
    `rd=${encodeURIComponent('/sales/\r\nLocation: https://evil.example/')}`,
    `rd=${encodeURIComponent('/sales/\r\nSet-Cookie: __Host-embedgate-session=planted')}`,
    `rd=${encodeURIComponent('/sales/%0d%0aLocation:%20https://evil.example/')}`,
    `rd=${encodeURIComponent('/\u3002evil.example')}`,
    `rd=${encodeURIComponent('//evil\u3002example')}`,
    `rd=${encodeURIComponent('/\uff0f\uff0fevil.example')}`,
    `rd=${encodeURIComponent('/sales/#//evil.example')}`,
    `rd=${encodeURIComponent('//evil.example')}&rd=/sales/ok`,
    'return_to=https://evil.example/&next=//evil.example&redirect=//evil.example&url=https://evil.example',
  ];

  /** Query strings with the path the browser must end on: a good rd, and odd ones that are still paths of the gateway. */
  const ON_SITE_PATHS: Array<[string, string]> = [
    [`rd=${encodeURIComponent('/sales/x?y=1')}`, '/sales/x?y=1'],
    ['rd=/sales/ok&rd=//evil.example', '/sales/ok'],
    [`rd=${encodeURIComponent('/sales//evil.example/')}`, '/sales/evil.example/'],
    [`rd=${encodeURIComponent('/?next=//evil.example')}`, '/?next=//evil.example'],
    [`rd=${encodeURIComponent('/@evil.example')}`, '/@evil.example'],
  ];

  it('84: a corpus of hostile rd values on /_embedgate/login ends on the first app, never off-site', async () => {
    const idpSession = new BrowserSession(idp.issuer);
    const port = new URL(gwOrigin).port;
    for (const query of hostile(port)) {
      const { start, callback } = await signIn(`/_embedgate/login?${query}`, { idpSession });
      assert.ok(!(start.headers.location ?? '').includes(EVIL), `${query}: the IdP is not told about the rd`);
      assert.equal(callback.headers.location, '/sales/', `${query}: back at the first app`);
    }
  });

  it('84: a good rd (/sales/x?y=1) is honoured; odd but on-site ones stay paths of the gateway', async () => {
    const idpSession = new BrowserSession(idp.issuer);
    for (const [query, expected] of ON_SITE_PATHS) {
      const { callback } = await signIn(`/_embedgate/login?${query}`, { idpSession });
      assert.equal(callback.headers.location, expected, query);
      assert.ok(isGatewayPath(callback.headers.location), `${query}: a path of the gateway`);
    }
  });

  it('84: the return path kept in the transaction is the normalized request path, whatever the request target', async () => {
    const idpSession = new BrowserSession(idp.issuer);
    const signsIn: Array<[string, string[], string]> = [
      ['//sales/', [], '/sales/'],
      ['///sales///report', [], '/sales/report'],
      ['//sales//evil.example/', [], '/sales/evil.example/'],
      ['/sales//evil.example/x?y=1', [], '/sales/evil.example/x?y=1'],
      ['/sales/?next=//evil.example&rd=https://evil.example/', [], '/sales/?next=//evil.example&rd=https://evil.example/'],
      ['//sales/', ['Host: evil.example'], '/sales/'],
      ['//sales/', ['X-Forwarded-Host: evil.example', 'X-Forwarded-Proto: https', 'X-Forwarded-Uri: //evil.example/'], '/sales/'],
    ];
    for (const [target, headers, expected] of signsIn) {
      const { callback } = await signIn(target, { idpSession, headers });
      assert.equal(callback.headers.location, expected, target);
    }
    // Targets that are not a path of an app are refused or not found: no sign-in, no Location.
    for (const target of [
      '//evil.example/', '//evil.example/sales/', 'http://evil.example/sales/', '/sales/%2F%2Fevil.example',
      '/sales/%5C%5Cevil.example', '/sales/..%2F..%2F%2Fevil.example', '/sales/%2e%2e/%2e%2e//evil.example', '/sales/\\evil.example',
    ]) {
      const response = await rawRequest(gwOrigin, target, NAVIGATION);
      assert.ok(response.status === 400 || response.status === 404, `${target}: ${response.status}`);
      assert.equal(response.headers.location, undefined, target);
      assert.ok(!response.setCookies.some((c) => c.startsWith(TX_PREFIX)), `${target}: no sign-in started`);
    }
    // An app prefix without its slash is redirected on-site.
    const bare = await rawRequest(gwOrigin, '//sales?next=//evil.example', NAVIGATION);
    assert.equal(bare.status, 308);
    assert.ok(isGatewayPath(bare.headers.location), bare.headers.location);
  });

  it('84: a page with a very long query still signs in (the sign-in cookie stays under 4 KB) and comes back to its path', async () => {
    const target = `/sales/report?q=${'x'.repeat(3000)}`;
    const started = await rawRequest(gwOrigin, target, NAVIGATION);
    assert.equal(started.status, 302);
    const transaction = started.setCookies.find((c) => c.startsWith(TX_PREFIX)) ?? '';
    assert.ok(transaction.length < 4000, `sign-in cookie of ${transaction.length} bytes`);
    const { callback } = await signIn(target, { idpSession: new BrowserSession(idp.issuer) });
    assert.equal(callback.headers.location, '/sales/report');
  });
});

describe('sign-out', () => {
  it('85: the post-logout redirect is the configured one; query, body and headers of the logout POST change nothing', async () => {
    const { session } = await signIn('/sales/');
    const baseline = await signOut(session);
    assert.equal(baseline.status, 303);
    const location = baseline.headers.location ?? '';
    const endSession = new URL(location);
    assert.equal(`${endSession.origin}${endSession.pathname}`, `${idp.issuer}/session/end`);
    assert.deepEqual([...endSession.searchParams].sort(), [['client_id', 'gateway'], ['post_logout_redirect_uri', postLogoutUri]]);
    assert.equal(await sessionWorks(session), false, 'the session ended');

    const evil = ['https://evil.example/', '//evil.example', `${gwOrigin}.evil.example/`, `${gwOrigin}@evil.example/`, 'javascript:alert(1)', '/\\evil.example'];
    for (const value of evil) {
      const v = encodeURIComponent(value);
      const query = `?post_logout_redirect_uri=${v}&redirect_uri=${v}&rd=${v}&return_to=${v}&state=${v}&client_id=evil`;
      const attempts = [
        await signOut(undefined, query),
        await signOut(undefined, '', [], query.slice(1)),
        await signOut(undefined, '', ['X-Forwarded-Host: evil.example', 'X-Forwarded-Proto: https', `Referer: ${value}`]),
      ];
      for (const response of attempts) {
        assert.equal(response.status, 303, value);
        assert.equal(response.headers.location, location, `${value}: the same end-session URL`);
      }
    }
    // The confirmation page never carries a redirect either: its form posts to the bare logout path.
    const page = await rawRequest(gwOrigin, `/_embedgate/logout?post_logout_redirect_uri=${encodeURIComponent('https://evil.example/')}`, NAVIGATION);
    assert.equal(page.status, 200);
    assert.ok(!page.body.includes(EVIL));
    assert.match(page.body, /<form method="post" action="\/_embedgate\/logout">/);
  });

  it('85: through the IdP the browser ends at the configured post_logout_redirect_uri; the IdP refuses others', async () => {
    const idpSession = new BrowserSession(idp.issuer);
    const { session } = await signIn('/sales/', { idpSession });
    const out = await signOut(session, `?post_logout_redirect_uri=${encodeURIComponent('https://evil.example/')}`);
    let page = await idpSession.get(out.headers.location ?? '');
    assert.ok(!page.left && /Yes, sign me out/.test(page.html), `the IdP asks to confirm: ${page.html.slice(0, 300)}`);
    page = await idpSession.submit({}, { button: 'Yes, sign me out' });
    assert.ok(page.left);
    assert.equal(page.url, postLogoutUri);
    // Someone forging the end-session request with another target gets the IdP's error page, not a redirect.
    for (const target of ['https://evil.example/', `${gwOrigin}/sales/x`, `${gwOrigin}.evil.example/sales/`]) {
      const forged = new URL(out.headers.location ?? '');
      forged.searchParams.set('post_logout_redirect_uri', target);
      const response = await idpSession.get(forged);
      assert.ok(!response.left, `${target}: not followed`);
      assert.equal(response.status, 400, target);
    }
  });

  it('86: no gateway flow hands a token to a URL: redirect_uri on /_embedgate/login is ignored and no Location carries a token', async () => {
    // The gateway has no programmatic or CLI login that delivers a token to a caller-named URL: sign-in ends in a
    // first-party session cookie, and the only redirect_uri ever used is the configured callback.
    const idpSession = new BrowserSession(idp.issuer);
    const evil = encodeURIComponent('https://evil.example/cb');
    const locations: string[] = [];
    for (const query of [`redirect_uri=${evil}`, `redirect_uri=${evil}&rd=${evil}&response_type=token&response_mode=fragment`, `callback=${evil}&return_to=${evil}`]) {
      const { start, callback } = await signIn(`/_embedgate/login?${query}`, { idpSession });
      const authorize = new URL(start.headers.location ?? '');
      assert.equal(authorize.searchParams.get('redirect_uri'), `${gwOrigin}/_embedgate/callback`, query);
      assert.equal(authorize.searchParams.get('response_type'), 'code', query);
      assert.equal(authorize.searchParams.get('response_mode'), null, query);
      assert.equal(callback.headers.location, '/sales/', query);
      locations.push(start.headers.location ?? '', callback.headers.location ?? '');
    }
    for (const location of locations) {
      assert.ok(!location.includes(EVIL), location);
      assert.doesNotMatch(location, /access_token|id_token|refresh_token|eyJ[A-Za-z0-9_-]+\./, location);
    }
  });
});

describe('87: the sealed transaction cookie', () => {
  it('87: tampered, truncated, swapped or oversized transaction cookies → the generic login failure, no session, never a 500', async () => {
    const start = await rawRequest(gwOrigin, '/sales/x', NAVIGATION);
    const tx = setCookiePair(start, TX_PREFIX) ?? '';
    const name = tx.slice(0, tx.indexOf('='));
    const value = tx.slice(name.length + 1);
    const other = await rawRequest(gwOrigin, '/sales/other', NAVIGATION);
    const otherTx = setCookiePair(other, TX_PREFIX) ?? '';
    const otherValue = otherTx.slice(otherTx.indexOf('=') + 1);
    // A real code for this sign-in: only the cookie is wrong below.
    const back = await atIdp(start.headers.location ?? '', ANA, new BrowserSession(idp.issuer));
    const callbackTarget = requestTarget(back);

    const segments = value.split('.');
    assert.equal(segments.length, 5, 'a compact JWE');
    const withSegment = (index: number, replace: (segment: string) => string): string =>
      segments.map((segment, i) => (i === index ? replace(segment) : segment)).join('.');
    const header = (fields: Record<string, unknown>): string => Buffer.from(JSON.stringify(fields)).toString('base64url');
    const filler = Array.from({ length: 120 }, (_, i) => `pad${i}=${'p'.repeat(100)}`).join('; ');
    const variants: Array<[string, string]> = [
      ['header bit flipped', `${name}=${withSegment(0, (segment) => flipBit(segment, 0))}`],
      ['iv bit flipped', `${name}=${withSegment(2, (segment) => flipBit(segment, 11, 7))}`],
      ['ciphertext bit flipped', `${name}=${withSegment(3, (segment) => flipBit(segment, 5, 3))}`],
      ['tag bit flipped', `${name}=${withSegment(4, (segment) => flipBit(segment, 15))}`],
      ['truncated by a character', `${name}=${value.slice(0, -1)}`],
      ['truncated to four segments', `${name}=${segments.slice(0, 4).join('.')}`],
      ['cut in half', `${name}=${value.slice(0, Math.floor(value.length / 2))}`],
      ['extended', `${name}=${value}AAAA`],
      ['mis-padded', `${name}=${value}=`],
      ['standard base64 alphabet', `${name}=${value.replace(/-/g, '+').replace(/_/g, '/')}`],
      ['empty', `${name}=`],
      ['another sign-in\'s cookie under this name', `${name}=${otherValue}`],
      ['this cookie under another name', `${otherTx.slice(0, otherTx.indexOf('='))}=${value}`],
      ['10 KB of junk', `${name}=${'A'.repeat(10 * 1024)}`],
      ['a 10 KB five-segment JWE', `${name}=${segments[0]}..${segments[2]}.${'A'.repeat(10 * 1024)}.${segments[4]}`],
      ['a compressed JWE (zip)', `${name}=${header({ alg: 'dir', enc: 'A256GCM', zip: 'DEF' })}..${segments[2]}.${segments[3]}.${segments[4]}`],
      ['PBES2 with a huge p2c', `${name}=${header({ alg: 'PBES2-HS256+A128KW', enc: 'A256GCM', p2c: 2147483647, p2s: 'AAAAAAAAAAAAAAAAAAAAAA' })}.${'A'.repeat(54)}.${segments[2]}.${segments[3]}.${segments[4]}`],
      ['alg none', `${name}=${header({ alg: 'none' })}.${Buffer.from(JSON.stringify({ state: 'x' })).toString('base64url')}.`],
      ['a 12 KB Cookie header with a tampered cookie', `${filler}; ${name}=${withSegment(3, (segment) => flipBit(segment, 0))}`],
      ['200 transaction cookies', Array.from({ length: 200 }, (_, i) => `${TX_PREFIX}${String(i).padStart(16, '0')}=${segments[0]}`).join('; ')],
    ];
    const bodies = new Set<string>();
    for (const [label, cookie] of variants) {
      const response = await rawRequest(gwOrigin, callbackTarget, [...FROM_IDP, 'X-Request-Id: tx-variant', `Cookie: ${cookie}`]);
      assert.equal(response.status, 400, label);
      assert.match(response.body, /login_failed/, label);
      assert.ok(!response.setCookies.some((c) => c.startsWith(`${SESSION_COOKIE}=`)), `${label}: no session`);
      assert.equal(response.headers.location, undefined, label);
      bodies.add(response.body);
    }
    assert.equal(bodies.size, 1, 'one generic page for every variant');
    // A large state fails the same way; a larger request target or Cookie header is refused before any of this.
    const bigState = await rawRequest(gwOrigin, `/_embedgate/callback?code=x&state=${'s'.repeat(6 * 1024)}`, [...FROM_IDP, `Cookie: ${tx}`]);
    assert.equal(bigState.status, 400);
    assert.match(bigState.body, /login_failed/);
    const hugeState = await rawRequest(gwOrigin, `/_embedgate/callback?code=x&state=${'s'.repeat(10 * 1024)}`, [...FROM_IDP, `Cookie: ${tx}`]);
    assert.equal(hugeState.status, 414);
    const hugeHeader = await rawRequest(gwOrigin, callbackTarget, [...FROM_IDP, `Cookie: ${tx}; big=${'b'.repeat(40 * 1024)}`]);
    assert.equal(hugeHeader.status, 431);
    assert.deepEqual(hugeHeader.setCookies, []);
    // The code was never spent on a bad cookie: the intact one still completes this sign-in.
    const intact = await rawRequest(gwOrigin, callbackTarget, [...FROM_IDP, `Cookie: ${tx}`]);
    assert.equal(intact.status, 302);
    assert.equal(intact.headers.location, '/sales/x');
    assert.ok(setCookieValue(intact, SESSION_COOKIE));
  });
});

describe('cookies and sessions', () => {
  it('88: the session cookie is __Host-, Secure, HttpOnly, Path=/, host-only, SameSite=Lax with a bounded Max-Age; the transaction cookie is short-lived and deleted by the callback', async () => {
    const { start, callback, session } = await signIn('/sales/');
    const txLine = start.setCookies.find((c) => c.startsWith(TX_PREFIX)) ?? '';
    assert.match(txLine, /^__Host-embedgate-tx-[A-Za-z0-9_-]{16}=[^;]+; Path=\/; Max-Age=600; Secure; HttpOnly; SameSite=Lax$/);
    const txName = txLine.slice(0, txLine.indexOf('='));
    assert.deepEqual(callback.setCookies.filter((c) => c.startsWith(TX_PREFIX)), [`${txName}=; Path=/; Max-Age=0; Secure; HttpOnly; SameSite=Lax`], 'the callback deletes it');
    const sessionLines = callback.setCookies.filter((c) => c.startsWith(`${SESSION_COOKIE}=`));
    assert.equal(sessionLines.length, 1);
    const line = sessionLines[0] ?? '';
    const match = /^__Host-embedgate-session=([A-Za-z0-9_-]{43}); Path=\/; Max-Age=(\d+); Secure; HttpOnly; SameSite=Lax$/.exec(line);
    assert.ok(match !== null, line);
    assert.equal(match[1], session);
    assert.doesNotMatch(line, /domain=/i);
    const maxAge = Number(match[2]);
    assert.ok(maxAge > 0 && maxAge <= SESSION_MAX_SECONDS, `Max-Age ${maxAge} within login.session_max_seconds`);
    assert.ok(await sessionWorks(session));
  });

  it('89: a cookie planted before sign-in is no session, is not kept, and stays invalid afterwards', async () => {
    const planted = randomBytes(32).toString('base64url');
    const plantedCookie = `Cookie: ${SESSION_COOKIE}=${planted}`;
    const before = await scriptRequest(planted);
    assert.equal(before.status, 401, 'the planted value is no session');
    // The browser comes to sign in still carrying it, and carries it again to the callback.
    const start = await rawRequest(gwOrigin, '/sales/', [...NAVIGATION, plantedCookie]);
    assert.equal(start.status, 302);
    assert.ok(start.setCookies.includes(`${SESSION_COOKIE}=; Path=/; Max-Age=0; Secure; HttpOnly; SameSite=Lax`), 'the planted cookie is cleared');
    const back = await atIdp(start.headers.location ?? '', ANA, new BrowserSession(idp.issuer));
    const callback = await rawRequest(gwOrigin, requestTarget(back), [...FROM_IDP, `Cookie: ${setCookiePair(start, TX_PREFIX) ?? ''}; ${SESSION_COOKIE}=${planted}`]);
    assert.equal(callback.status, 302);
    const session = setCookieValue(callback, SESSION_COOKIE) ?? '';
    assert.match(session, /^[A-Za-z0-9_-]{43}$/);
    assert.notEqual(session, planted, 'a fresh value after sign-in');
    assert.ok(await sessionWorks(session));
    assert.equal((await scriptRequest(planted)).status, 401, 'the planted value is still no session');
    // A pre-auth value (the transaction cookie's) is no session either.
    const txValue = (setCookiePair(start, TX_PREFIX) ?? '').split('=')[1] ?? '';
    assert.equal((await scriptRequest(txValue)).status, 401);
  });

  it('90: /_embedgate/login with a live session clears the cookie and ends that session', async () => {
    const { session } = await signIn('/sales/');
    assert.ok(await sessionWorks(session));
    const again = await rawRequest(gwOrigin, `/_embedgate/login?rd=${encodeURIComponent('/sales/y')}`, [...NAVIGATION, `Cookie: ${SESSION_COOKIE}=${session}`]);
    assert.equal(again.status, 302);
    assert.equal(new URL(again.headers.location ?? '').origin, idp.issuer);
    assert.ok(again.setCookies.some((c) => /^__Host-embedgate-session=; Path=\/; Max-Age=0;/.test(c)), again.setCookies.join('\n'));
    assert.equal((await scriptRequest(session)).status, 401, 'the old session no longer works');
  });

  it('92: after sign-out the captured cookie gets 401 from scripts and a new sign-in for navigations', async () => {
    const { session } = await signIn('/sales/');
    assert.ok(await sessionWorks(session));
    assert.equal((await signOut(session)).status, 303);
    const appRequests = upstream.requests.length;
    const script = await scriptRequest(session);
    assert.equal(script.status, 401);
    assert.match(script.headers['www-authenticate'] ?? '', /error="invalid_token"/);
    assert.equal((JSON.parse(script.body) as { error: string }).error, 'session_expired');
    const page = await rawRequest(gwOrigin, '/sales/report', [...NAVIGATION, `Cookie: ${SESSION_COOKIE}=${session}`]);
    assert.equal(page.status, 302);
    assert.equal(new URL(page.headers.location ?? '').origin, idp.issuer);
    assert.ok(page.setCookies.includes(`${SESSION_COOKIE}=; Path=/; Max-Age=0; Secure; HttpOnly; SameSite=Lax`), 'the dead cookie is cleared');
    const post = await rawRequest(gwOrigin, '/sales/_dash-update-component', [...SCRIPT, `Origin: ${gwOrigin}`, 'Content-Type: application/json', `Cookie: ${SESSION_COOKIE}=${session}`], 'POST', '{}');
    assert.equal(post.status, 401);
    assert.equal(upstream.requests.length, appRequests, 'the app saw nothing of the replays');
  });

  it('93: bit-flipped, truncated, re-padded or extended session cookies all get the same 401 (scripts) or sign-in (pages), never a 500', async () => {
    const { session } = await signIn('/sales/');
    const last = session.at(-1) ?? 'A';
    // The last character holds 4 bits of data and 2 unused ones: this spelling decodes to the same bytes.
    const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';
    const sameBytes = `${session.slice(0, -1)}${alphabet[alphabet.indexOf(last) ^ 1] ?? 'A'}`;
    assert.deepEqual(Buffer.from(sameBytes, 'base64url'), Buffer.from(session, 'base64url'));
    const variants: Array<[string, string]> = [
      ['unknown but well-formed', randomBytes(32).toString('base64url')],
      ['first bit flipped', flipBit(session, 0)],
      ['middle bit flipped', flipBit(session, 16, 5)],
      ['last byte flipped', flipBit(session, 31, 7)],
      ['unused bits set', sameBytes],
      ['truncated by one', session.slice(0, -1)],
      ['truncated to half', session.slice(0, 21)],
      ['re-padded', `${session}=`],
      ['standard alphabet', Buffer.from(session, 'base64url').toString('base64')],
      ['extended', `${session}A`],
      ['doubled', `${session}${session}`],
      ['quoted', `"${session}"`],
      ['upper-cased', session.toUpperCase()],
      ['4 KB', 'A'.repeat(4096)],
    ];
    const bodies = new Set<string>();
    const challenges = new Set<string>();
    for (const [label, value] of variants) {
      const script = await rawRequest(gwOrigin, '/sales/_dash-layout', [...SCRIPT, 'X-Request-Id: cookie-variant', `Cookie: ${SESSION_COOKIE}=${value}`]);
      assert.equal(script.status, 401, label);
      bodies.add(script.body);
      challenges.add(script.headers['www-authenticate'] ?? '');
      const page = await rawRequest(gwOrigin, '/sales/', [...NAVIGATION, `Cookie: ${SESSION_COOKIE}=${value}`]);
      assert.equal(page.status, 302, label);
      assert.equal(new URL(page.headers.location ?? '').origin, idp.issuer, label);
      assert.ok(page.setCookies.some((c) => c.startsWith(`${SESSION_COOKIE}=;`)), `${label}: cleared`);
    }
    assert.deepEqual([...bodies], [JSON.stringify({ error: 'session_expired', message: 'JWT Expired: the session has ended; sign in again.' })]);
    assert.deepEqual([...challenges], ['Bearer realm="embedgate", error="invalid_token", error_description="session_expired"']);
    assert.ok(await sessionWorks(session), 'the genuine cookie still works');
  });

  it('94: a user in 300 groups signs in; the session stays server-side and the cookie small', async () => {
    const { callback, session } = await signIn('/wide/', { user: WIDE });
    assert.equal(callback.headers.location, '/wide/');
    const line = callback.setCookies.find((c) => c.startsWith(`${SESSION_COOKIE}=`)) ?? '';
    assert.ok(line.length < 200, `Set-Cookie is ${line.length} bytes`);
    const others = callback.setCookies.filter((c) => c !== line);
    assert.ok(others.length === 1 && /^__Host-embedgate-tx-[^=]+=; .*Max-Age=0;/.test(others[0] ?? ''), `no chunks, only the transaction cookie's deletion: ${others.join(' | ')}`);
    // What the browser sends from now on: the session cookie (the transaction cookie is deleted).
    const cookieHeader = `Cookie: ${SESSION_COOKIE}=${session}`;
    assert.ok(Buffer.byteLength(cookieHeader) < 200, `${Buffer.byteLength(cookieHeader)} bytes`);
    const response = await rawRequest(gwOrigin, '/wide/report', [...SCRIPT, cookieHeader]);
    assert.equal(response.status, 200, response.body);
    const seen = wideRequests.at(-1);
    assert.equal(seen?.['x-forwarded-user'], 'wide');
    assert.deepEqual(String(seen?.['x-forwarded-groups']).split(','), WIDE_ROLES, 'every group is kept with the session');
    // Another user's session does not open this app: the groups really come from the session.
    const { session: anas } = await signIn('/sales/');
    assert.equal((await rawRequest(gwOrigin, '/wide/report', [...SCRIPT, `Cookie: ${SESSION_COOKIE}=${anas}`])).status, 403);
  });

  it('96: two __Host-embedgate-session cookies in one Cookie header → 400 duplicate_cookie, whatever their order', async () => {
    const { session } = await signIn('/sales/');
    const attacker = randomBytes(32).toString('base64url');
    const headers = [
      `${SESSION_COOKIE}=${session}; ${SESSION_COOKIE}=${attacker}`,
      `${SESSION_COOKIE}=${attacker}; ${SESSION_COOKIE}=${session}`,
      `${SESSION_COOKIE}=${session}; ${SESSION_COOKIE}=${session}`,
      `${SESSION_COOKIE}=${session}; other=1; ${SESSION_COOKIE}=`,
    ];
    for (let round = 0; round < 3; round++) {
      for (const cookie of headers) {
        const script = await rawRequest(gwOrigin, '/sales/_dash-layout', [...SCRIPT, `Cookie: ${cookie}`]);
        assert.equal(script.status, 400, cookie);
        assert.equal((JSON.parse(script.body) as { error: string }).error, 'duplicate_cookie', cookie);
        const page = await rawRequest(gwOrigin, '/sales/', [...NAVIGATION, `Cookie: ${cookie}`]);
        assert.equal(page.status, 400, cookie);
        assert.match(page.body, /duplicate_cookie/);
        assert.equal(page.headers.location, undefined);
      }
    }
    assert.ok(await sessionWorks(session), 'the session itself is untouched');
  });

  it('41: the callback answers with no-referrer, no-store, no body to load, and a Location without code or state', async () => {
    const { callback } = await signIn(`/_embedgate/login?rd=${encodeURIComponent('/sales/x?y=1')}`);
    assert.equal(callback.headers['referrer-policy'], 'no-referrer');
    assert.equal(callback.headers['cache-control'], 'no-store');
    assert.equal(callback.headers.location, '/sales/x?y=1');
    assert.doesNotMatch(callback.headers.location ?? '', /code=|state=|iss=/);
    assert.match(callback.body, /^(0\r\n\r\n)?$/, 'an empty body (chunked or not): nothing to render, so no third-party resources');
    // A failed answer's page is shown at the URL with the code: it loads nothing and passes no Referer on.
    const failed = await rawRequest(gwOrigin, '/_embedgate/callback?code=secret-code-123&state=unknown-state', FROM_IDP);
    assert.equal(failed.status, 400);
    assert.equal(failed.headers['referrer-policy'], 'no-referrer');
    assert.equal(failed.headers['cache-control'], 'no-store');
    assert.match(failed.headers['content-security-policy'] ?? '', /default-src 'none'/);
    assert.doesNotMatch(failed.body, /secret-code-123|unknown-state|<(script|img|link|iframe)\b|https?:\/\//);
  });
});

describe('91: sign-out cannot be forced from another site', () => {
  it('91: cross-site POSTs and <img>-style GETs of /_embedgate/logout leave the session alive and redirect nowhere', async () => {
    const { session } = await signIn('/sales/');
    const cookie = `Cookie: ${SESSION_COOKIE}=${session}`;
    const port = new URL(gwOrigin).port;
    const posts: string[][] = [
      ['Origin: https://evil.example', 'Sec-Fetch-Site: cross-site'],
      [`Origin: http://127.0.0.1:${port}.evil.example`],
      [`Origin: http://127.0.0.1:${Number(port) + 1}`, 'Sec-Fetch-Site: same-site'],
      [`Origin: ${gwOrigin}.evil.example`],
      ['Origin: null'],
      ['Sec-Fetch-Site: cross-site'],
      ['Sec-Fetch-Site: same-site'],
      [],
      ['Origin: https://evil.example', `Referer: ${gwOrigin}/_embedgate/logout`, 'Sec-Fetch-Site: same-origin'],
    ];
    for (const headers of posts) {
      const response = await rawRequest(gwOrigin, `/_embedgate/logout?post_logout_redirect_uri=${encodeURIComponent('https://evil.example/')}`, [
        ...headers, cookie, 'Content-Type: application/x-www-form-urlencoded',
      ], 'POST', 'post_logout_redirect_uri=https%3A%2F%2Fevil.example%2F');
      assert.equal(response.status, 403, headers.join(', '));
      assert.equal(response.headers.location, undefined);
      assert.deepEqual(response.setCookies, [], `${headers.join(', ')}: the cookie is kept`);
      assert.ok(await sessionWorks(session), `${headers.join(', ')}: the session lives on`);
    }
    const image = await rawRequest(gwOrigin, '/_embedgate/logout', ['Sec-Fetch-Dest: image', 'Sec-Fetch-Mode: no-cors', 'Sec-Fetch-Site: cross-site', 'Accept: image/avif,image/webp,*/*', cookie]);
    assert.equal(image.status, 200, 'only the confirmation page');
    assert.equal(image.headers.location, undefined);
    assert.deepEqual(image.setCookies, []);
    for (const method of ['PUT', 'DELETE', 'PATCH']) {
      const response = await rawRequest(gwOrigin, '/_embedgate/logout', [`Origin: ${gwOrigin}`, cookie], method);
      assert.equal(response.status, 405, method);
    }
    assert.ok(await sessionWorks(session), 'still signed in after all of that');
    // The gateway's own page does sign out.
    assert.equal((await signOut(session)).status, 303);
    assert.equal(await sessionWorks(session), false);
  });

  it('91: in Chromium, a cross-site and a same-site page with an <img>, a form POST and a fetch to the logout endpoint do not sign the user out', async () => {
    // The attacker's page is served from loopback too (Chromium keeps public pages from loading loopback URLs at all):
    // as http://localhost:<port> it is another site; as http://127.0.0.1:<port> it is the same site, another origin,
    // so the browser does send the SameSite=Lax cookie and only the gateway's Origin check stands in the way.
    const attackerPage = `<!doctype html><html><body><img id="img" src="${gwOrigin}/_embedgate/logout" alt="">`
      + `<form id="form" method="post" action="${gwOrigin}/_embedgate/logout?post_logout_redirect_uri=https%3A%2F%2Fevil.example%2F">`
      + '<input type="hidden" name="post_logout_redirect_uri" value="https://evil.example/"></form></body></html>';
    const attackerServer = createServer((_req, res) => res.writeHead(200, { 'content-type': 'text/html' }).end(attackerPage));
    attackerServer.listen(0, '127.0.0.1');
    await once(attackerServer, 'listening');
    const { port } = attackerServer.address() as AddressInfo;
    const browser: Browser = await launchChromium();
    try {
      const tab = await openTab(browser);
      await tab.page.goto(`${gwOrigin}/sales/`);
      assert.ok(tab.page.url().startsWith(`${idp.issuer}/interaction/`), `the IdP's login page, not ${tab.page.url()}`);
      await tab.page.getByLabel('Username').fill(ANA.username);
      await tab.page.getByLabel('Password').fill(PASSWORD);
      await tab.page.getByRole('button', { name: 'Sign in' }).click();
      await tab.page.waitForURL(`${gwOrigin}/sales/`);
      const isLogout = (url: string): boolean => url.startsWith(`${gwOrigin}/_embedgate/logout`);
      for (const attacker of [`http://localhost:${port}`, `http://127.0.0.1:${port}`]) {
        const sameSite = attacker.startsWith('http://127.0.0.1');
        const image = tab.page.waitForRequest((r) => isLogout(r.url()) && r.resourceType() === 'image');
        await tab.page.goto(`${attacker}/`);
        // Chromium blocks the HTML answer to an <img> (ORB) and reports no headers for it; that it was sent is enough.
        assert.equal((await image).method(), 'GET');
        const fetched = await tab.page.evaluate(async (url) => {
          const response = await fetch(url, { method: 'POST', mode: 'no-cors', credentials: 'include', body: 'x=1' });
          return response.type;
        }, `${gwOrigin}/_embedgate/logout`);
        assert.equal(fetched, 'opaque');
        const posted = tab.page.waitForRequest((r) => isLogout(r.url()) && r.method() === 'POST' && r.isNavigationRequest());
        const answered = tab.page.waitForResponse((r) => isLogout(r.url()) && r.request().method() === 'POST' && r.request().isNavigationRequest());
        await tab.page.evaluate('document.getElementById("form").submit()');
        const sent = await rawHeaders(await posted);
        assert.equal(sent.origin, attacker);
        assert.equal(/__Host-embedgate-session=/.test(sent.cookie ?? ''), sameSite, `${attacker}: the form POST carries the cookie only same-site`);
        assert.equal((await answered).status(), 403, `${attacker}: the form POST is refused`);
        // A 403 has no Location: the tab shows the refusal at the logout URL.
        await tab.page.waitForURL((url) => isLogout(url.href));
        assert.match(await tab.page.content(), /cross_site_request/);
        await tab.page.goto(`${gwOrigin}/sales/`);
        assert.equal(tab.page.url(), `${gwOrigin}/sales/`, `${attacker}: still signed in`);
        assert.match(await tab.page.content(), /app page/);
      }
      const cookies = (await tab.context.cookies(gwOrigin)).filter((c) => c.name === SESSION_COOKIE);
      assert.equal(cookies.length, 1);
      assert.ok(await sessionWorks(cookies[0]?.value ?? ''));
      await tab.close();
    } finally {
      await browser.close();
      await closeServer(attackerServer);
    }
  });
});

describe('104: arriving back after sign-out', () => {
  it('104: the post-logout redirect URL with an odd, missing or repeated state is just an app page: sign-in, no crash, no other redirect', async () => {
    // The gateway sends no state to the end-session endpoint and keeps none: whatever state comes back is ignored.
    const idpSession = new BrowserSession(idp.issuer);
    const { session } = await signIn('/sales/', { idpSession });
    const out = await signOut(session);
    await idpSession.get(out.headers.location ?? '');
    const done = await idpSession.submit({}, { button: 'Yes, sign me out' });
    assert.equal(done.url, postLogoutUri);
    const arrival = new URL(done.url);
    const queries = [
      '', '?state=', '?state', '?state=unexpected-state', `?state=${encodeURIComponent('https://evil.example/')}`,
      '?state=//evil.example', '?state=%0d%0aLocation:%20https://evil.example/', '?state=a&state=b', `?state=${'s'.repeat(6000)}`,
      `?state=x&post_logout_redirect_uri=${encodeURIComponent('https://evil.example/')}&rd=//evil.example`, '?state=%zz%', '?state=%00',
    ];
    for (const query of queries) {
      const target = `${arrival.pathname}${query}`;
      for (const cookie of [[], [`Cookie: ${SESSION_COOKIE}=${session}`]]) {
        const page = await rawRequest(gwOrigin, target, [...FROM_IDP, ...cookie]);
        assert.equal(page.status, 302, `${query.slice(0, 80)}: ${page.status} ${page.body.slice(0, 200)}`);
        const location = new URL(page.headers.location ?? '');
        assert.equal(`${location.origin}${location.pathname}`, `${idp.issuer}/auth`, query.slice(0, 80));
        assert.equal(location.searchParams.get('redirect_uri'), `${gwOrigin}/_embedgate/callback`);
        assert.ok(!(page.headers.location ?? '').includes(EVIL));
        const script = await rawRequest(gwOrigin, target, [...SCRIPT, ...cookie]);
        assert.equal(script.status, 401, query.slice(0, 80));
      }
    }
    // Signing in from such an arrival comes back to that same path of the gateway.
    const { callback } = await signIn(`${arrival.pathname}?state=${encodeURIComponent('https://evil.example/')}`, { idpSession });
    assert.ok(isGatewayPath(callback.headers.location), callback.headers.location);
    assert.equal(callback.headers.location, `/sales/?state=${encodeURIComponent('https://evil.example/')}`);
  });
});
