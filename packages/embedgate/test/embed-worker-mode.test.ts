// Cookieless embedding and sessions made before the frame navigates, against a real gateway over HTTP: the CORS
// session endpoint for host pages, the worker's session handle (bound to one app, never a cookie), the session probe,
// single-use WebSocket tickets, and the scripts and pages of worker mode. Security cases from security-cases.md where
// they apply (88, 89, 92, 93, 106).
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { after, before, describe, it } from 'node:test';
import WebSocket from 'ws';
import { eventually, startGateway, type RunningGateway } from './support/gateway.js';
import { startHostileOp, type HostileOp } from './support/hostile-op.js';
import { freePort } from './support/idp.js';
import { startUpstream, type Upstream } from './support/upstream.js';

const COOKIE = '__Host-embedgate';
const HANDLE = 'x-embedgate-session';
const HOST_ORIGIN = 'http://host.example';

let op: HostileOp;
let upstream: Upstream;
let analyst: string;

interface Gw {
  gw: RunningGateway;
  origin: string;
}

async function gateway(mode: 'auto' | 'cookie' | 'worker'): Promise<Gw> {
  const port = await freePort();
  const origin = `http://127.0.0.1:${port}`;
  const gw = await startGateway({
    listen: `127.0.0.1:${port}`,
    public_url: origin,
    issuers: [{ issuer: op.issuer, audiences: [op.audience] }],
    embed: { allowed_origins: [HOST_ORIGIN], mode },
    sessions: { store: 'memory:' },
    apps: [
      { name: 'sales', prefix: '/sales/', upstream: upstream.url, allow: { roles: ['analyst'] } },
      { name: 'ops', prefix: '/ops/', upstream: upstream.url, allow: { roles: ['analyst'] } },
    ],
  });
  await eventually(async () => (await gw.fetch('/readyz')).status === 200);
  return { gw, origin };
}

let auto: Gw;
let cookieMode: Gw;
let workerMode: Gw;

before(async () => {
  op = await startHostileOp();
  upstream = await startUpstream();
  analyst = await op.sign(op.claims({ roles: ['analyst'] }));
  [auto, cookieMode, workerMode] = [await gateway('auto'), await gateway('cookie'), await gateway('worker')];
});

after(async () => {
  for (const { gw } of [auto, cookieMode, workerMode]) await gw?.close();
  await upstream?.close();
  await op?.close();
});

const sessionCookieOf = (response: Response): string | undefined =>
  response.headers.getSetCookie().find((line) => line.startsWith(`${COOKIE}=`))?.split(';')[0]?.slice(COOKIE.length + 1);

/** POST /_embedgate/session as the frame does (gateway origin), or as a host page does (origin: HOST_ORIGIN). */
function post(target: Gw, body: unknown, options: { origin?: string; token?: string | undefined; headers?: Record<string, string> } = {}): Promise<Response> {
  const token = 'token' in options ? options.token : analyst;
  return target.gw.fetch('/_embedgate/session', {
    method: 'POST',
    headers: { origin: options.origin ?? target.origin, 'content-type': 'application/json', ...options.headers },
    body: JSON.stringify(body),
    ...(token === undefined ? {} : { token }),
  });
}

/** A worker's session for /sales/: its handle. */
async function workerSession(target: Gw = auto, path = '/sales/'): Promise<string> {
  const response = await post(target, { path, handle: true });
  assert.equal(response.status, 200);
  const body = (await response.json()) as { handle?: string };
  assert.match(body.handle ?? '', /^[A-Za-z0-9_-]{43}$/);
  return body.handle as string;
}

const withHandle = (target: Gw, path: string, handle: string, init: RequestInit = {}): Promise<Response> =>
  target.gw.fetch(path, { ...init, headers: { ...(init.headers as Record<string, string>), [HANDLE]: handle } });

describe('sessions made by the host page before its iframe navigates (CORS)', () => {
  it('a preflight from an allowed host origin is answered for exactly that origin, with credentials, and cached', async () => {
    const response = await auto.gw.fetch('/_embedgate/session', {
      method: 'OPTIONS',
      headers: { origin: HOST_ORIGIN, 'access-control-request-method': 'POST', 'access-control-request-headers': 'authorization, content-type' },
    });
    assert.equal(response.status, 204);
    assert.equal(response.headers.get('access-control-allow-origin'), HOST_ORIGIN);
    assert.equal(response.headers.get('access-control-allow-credentials'), 'true');
    assert.equal(response.headers.get('access-control-allow-methods'), 'POST');
    assert.match(response.headers.get('access-control-allow-headers') ?? '', /authorization/);
    assert.equal(response.headers.get('access-control-max-age'), '7200');
    assert.match(response.headers.get('vary') ?? '', /Origin/);
  });

  it('a POST with the bearer from the host page makes a cookie session, answered to that origin only, and never echoes the token or a handle', async () => {
    const response = await post(auto, { path: '/sales/', handle: true }, { origin: HOST_ORIGIN });
    assert.equal(response.status, 200);
    assert.equal(response.headers.get('access-control-allow-origin'), HOST_ORIGIN);
    assert.equal(response.headers.get('access-control-allow-credentials'), 'true');
    assert.match(response.headers.get('vary') ?? '', /Origin/);
    const text = await response.text();
    assert.deepEqual(Object.keys(JSON.parse(text) as object), ['expires_at'], 'no handle for a host page');
    assert.ok(!text.includes(analyst), 'the token is not echoed');
    const cookie = sessionCookieOf(response);
    assert.ok(cookie !== undefined, 'a partitioned session cookie');
    assert.match(response.headers.getSetCookie().join(), /Partitioned/);
    assert.equal((await auto.gw.fetch('/sales/', { headers: { cookie: `${COOKIE}=${cookie}` } })).status, 200, 'the frame\'s navigation then carries it');
  });

  it('foreign, null and look-alike origins get no session and no Access-Control-Allow-Origin, on the preflight and the POST', async () => {
    for (const origin of ['http://evil.example', 'null', `${HOST_ORIGIN}.evil.example`, 'https://host.example', `${HOST_ORIGIN}:80`, 'http://sub.host.example']) {
      const preflight = await auto.gw.fetch('/_embedgate/session', { method: 'OPTIONS', headers: { origin, 'access-control-request-method': 'POST' } });
      assert.equal(preflight.status, 403, origin);
      assert.equal(preflight.headers.get('access-control-allow-origin'), null, origin);
      const response = await post(auto, { path: '/sales/' }, { origin });
      assert.equal(response.status, 403, origin);
      assert.equal(response.headers.get('access-control-allow-origin'), null, origin);
      assert.equal(sessionCookieOf(response), undefined, origin);
    }
  });

  it('a host page\'s POST with a cookie but no bearer gets 401 and no session; it may not GET or DELETE either', async () => {
    const made = sessionCookieOf(await post(auto, { path: '/sales/' }, { origin: HOST_ORIGIN })) as string;
    const cookieOnly = await post(auto, { path: '/sales/' }, { origin: HOST_ORIGIN, token: undefined, headers: { cookie: `${COOKIE}=${made}` } });
    assert.equal(cookieOnly.status, 401);
    assert.equal(sessionCookieOf(cookieOnly), undefined);
    for (const method of ['GET', 'DELETE']) {
      const response = await auto.gw.fetch('/_embedgate/session', { method, headers: { origin: HOST_ORIGIN, cookie: `${COOKIE}=${made}` } });
      assert.equal(response.status, 405, method);
    }
    assert.equal((await auto.gw.fetch('/sales/', { headers: { cookie: `${COOKIE}=${made}` } })).status, 200, 'the session was left alone');
  });
});

describe('the worker\'s session handle', () => {
  it('the frame asking for a handle gets one and no cookie; the handle authenticates its app\'s requests, and the app never sees it', async () => {
    const response = await post(auto, { path: '/sales/', handle: true });
    assert.equal(sessionCookieOf(response), undefined, 'no cookie: the handle travels in a header');
    const { handle } = (await response.json()) as { handle: string };
    const before = upstream.requests.length;
    const page = await withHandle(auto, '/sales/page', handle);
    assert.equal(page.status, 200);
    const seen = upstream.requests.slice(before).at(-1);
    assert.equal(seen?.headers['x-forwarded-user'], 'user-1');
    assert.equal(seen?.headers[HANDLE], undefined, 'the handle is not forwarded');
    assert.ok(!JSON.stringify(seen?.headers).includes(handle), 'nowhere in what the app receives');
  });

  it('the handle is useless on another app, as a cookie, and outside worker or auto mode', async () => {
    const handle = await workerSession();
    assert.equal((await withHandle(auto, '/ops/', handle)).status, 401, 'another app, the session not yet read');
    // Read once at its own app, the session is known in memory: the next request is decided from there, the same way.
    const own = await withHandle(auto, '/sales/page', handle);
    assert.equal(own.status, 200, 'its own app');
    await own.arrayBuffer();
    const other = await withHandle(auto, '/ops/', handle);
    assert.equal(other.status, 401, 'another app');
    assert.equal((await auto.gw.fetch('/sales/', { headers: { cookie: `${COOKIE}=${handle}` } })).status, 401, 'as a cookie');
    const cookieSession = sessionCookieOf(await post(auto, { path: '/sales/' })) as string;
    assert.equal((await withHandle(auto, '/sales/', cookieSession)).status, 401, 'a cookie session\'s value as a handle');
    const refused = await post(cookieMode, { path: '/sales/', handle: true });
    assert.deepEqual(Object.keys((await refused.json()) as object), ['expires_at'], 'cookie mode hands out no handle');
    assert.ok(sessionCookieOf(refused) !== undefined);
  });

  it('worker mode sets no cookie at all (a host page\'s POST makes no session there); the GET probe tells a live session from none', async () => {
    for (const origin of [workerMode.origin, HOST_ORIGIN]) {
      const plain = await post(workerMode, { path: '/sales/' }, { origin });
      assert.equal(plain.status, 200, origin);
      assert.deepEqual(await plain.json(), { mode: 'worker' }, `${origin}: no session`);
      assert.deepEqual(plain.headers.getSetCookie(), [], origin);
    }
    const ended = await workerMode.gw.fetch('/_embedgate/session', { method: 'DELETE', headers: { origin: workerMode.origin } });
    assert.deepEqual(ended.headers.getSetCookie(), [], 'not even a clearing cookie');
    const handle = await workerSession(workerMode);
    const probe = (headers: Record<string, string>): Promise<Response> =>
      workerMode.gw.fetch('/_embedgate/session', { headers: { 'sec-fetch-site': 'same-origin', ...headers } });
    assert.equal((await probe({ [HANDLE]: handle })).status, 200);
    assert.equal((await probe({})).status, 401);
    assert.equal((await probe({ [HANDLE]: 'A'.repeat(43) })).status, 401);
    const cookie = sessionCookieOf(await post(auto, { path: '/sales/' })) as string;
    assert.equal((await auto.gw.fetch('/_embedgate/session', { headers: { 'sec-fetch-site': 'same-origin', cookie: `${COOKIE}=${cookie}` } })).status, 200);
    assert.equal((await auto.gw.fetch('/_embedgate/session', { headers: { cookie: `${COOKIE}=${cookie}` } })).status, 403, 'not from the frame: no answer');
  });

  it('89, 92: renewing through the handle issues a new one, the old one serving only what was on its way; DELETE through it ends both', async () => {
    const first = await workerSession();
    // The same token again gives the session nothing new: it is kept, handle and all.
    const same = await post(auto, { path: '/sales/', handle: true }, { headers: { [HANDLE]: first } });
    assert.equal(((await same.json()) as { handle: string }).handle, first, 'a token no fresher keeps the session');
    const fresh = await op.sign(op.claims({ roles: ['analyst'], exp: Math.floor(Date.now() / 1000) + 900 }));
    const renewed = await post(auto, { path: '/sales/', handle: true }, { headers: { [HANDLE]: first }, token: fresh });
    const { handle: second } = (await renewed.json()) as { handle: string };
    assert.notEqual(second, first);
    assert.equal((await withHandle(auto, '/sales/', first)).status, 200, 'a request the worker sent with the old handle before the answer');
    assert.equal((await withHandle(auto, '/ops/', first)).status, 401, 'the old handle stands for its own app\'s session only');
    assert.equal((await auto.gw.fetch('/_embedgate/session', { headers: { 'sec-fetch-site': 'same-origin', [HANDLE]: first } })).status, 401,
      'the session probe reports no session behind the old handle');
    assert.equal((await withHandle(auto, '/sales/', second)).status, 200);
    const ended = await auto.gw.fetch('/_embedgate/session', { method: 'DELETE', headers: { origin: auto.origin, [HANDLE]: second } });
    assert.equal(ended.status, 204);
    assert.equal((await withHandle(auto, '/sales/', second)).status, 401, 'replayed after DELETE');
    assert.equal((await withHandle(auto, '/sales/', first)).status, 401, 'the old handle, after DELETE');
  });

  it('a state-changing request with the handle needs no Origin check (no other site can send the header), and one with a forged handle is refused', async () => {
    const handle = await workerSession();
    const posted = await withHandle(auto, '/sales/_dash-update-component', handle, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"output":"chart.figure"}' });
    assert.equal(posted.status, 200);
    const forged = await withHandle(auto, '/sales/_dash-update-component', 'x'.repeat(43), { method: 'POST', body: '{}' });
    assert.equal(forged.status, 401);
  });

  it('never logs a handle', async () => {
    const handle = await workerSession();
    await withHandle(auto, '/sales/', handle);
    assert.ok(!auto.gw.logs.some((line) => line.includes(handle)));
  });
});

/** Opens a socket offering `protocols`; resolves with it (open) or the refused status. */
function socket(target: Gw, path: string, protocols: string[]): Promise<{ ws: WebSocket } | { status: number }> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(`${target.gw.url.replace(/^http/, 'ws')}${path}`, protocols, { headers: { origin: target.origin } });
    ws.once('open', () => resolve({ ws }));
    ws.once('unexpected-response', (request, response) => {
      resolve({ status: response.statusCode ?? 0 });
      request.destroy();
    });
    ws.once('error', reject);
  });
}

async function ticket(target: Gw, handle: string, path: string): Promise<Response> {
  return withHandle(target, '/_embedgate/ws-ticket', handle, {
    method: 'POST', headers: { origin: target.origin, 'content-type': 'application/json' }, body: JSON.stringify({ path }),
  });
}

describe('WebSocket tickets', () => {
  it('a ticket opens one socket to its app: the app sees the user and not the ticket, the browser gets the protocol it offered', async () => {
    const handle = await workerSession();
    const issued = await ticket(auto, handle, '/sales/ws');
    assert.equal(issued.status, 200);
    const { ticket: value, expires_in: expiresIn } = (await issued.json()) as { ticket: string; expires_in: number };
    assert.ok(expiresIn <= 30, 'lives at most 30 s');
    const before = upstream.wsHandshakes.length;
    const opened = await socket(auto, '/sales/ws', ['embedgate', `embedgate.ticket.${value}`]);
    assert.ok('ws' in opened, `refused with ${'status' in opened ? opened.status : ''}`);
    assert.equal(opened.ws.protocol, 'embedgate');
    const handshake = upstream.wsHandshakes.slice(before).at(-1);
    assert.equal(handshake?.headers['x-forwarded-user'], 'user-1');
    assert.equal(handshake?.headers['sec-websocket-protocol'], undefined, 'no subprotocol reaches the app');
    opened.ws.close();
    assert.ok(!auto.gw.logs.some((line) => line.includes(value)), 'never logged');

    const again = await socket(auto, '/sales/ws', ['embedgate', `embedgate.ticket.${value}`]);
    assert.deepEqual(again, { status: 401 }, 'a ticket works once');
  });

  it('a ticket is bound to its app and session: refused at another app, not issued for another app, dead once the session ends', async () => {
    const handle = await workerSession();
    assert.equal((await ticket(auto, handle, '/ops/ws')).status, 403, 'no ticket for another app');
    const { ticket: forSales } = (await (await ticket(auto, handle, '/sales/ws')).json()) as { ticket: string };
    assert.deepEqual(await socket(auto, '/ops/ws', ['embedgate', `embedgate.ticket.${forSales}`]), { status: 401 });
    const { ticket: late } = (await (await ticket(auto, handle, '/sales/ws')).json()) as { ticket: string };
    await auto.gw.fetch('/_embedgate/session', { method: 'DELETE', headers: { origin: auto.origin, [HANDLE]: handle } });
    assert.deepEqual(await socket(auto, '/sales/ws', ['embedgate', `embedgate.ticket.${late}`]), { status: 401 }, 'the session ended');
    assert.deepEqual(await socket(auto, '/sales/ws', ['embedgate', `embedgate.ticket.${'A'.repeat(43)}`]), { status: 401 }, 'made up');
  });

  it('a socket opened with a ticket is closed with 1008 when its session is revoked', async () => {
    const handle = await workerSession();
    const { ticket: value } = (await (await ticket(auto, handle, '/sales/ws')).json()) as { ticket: string };
    const opened = await socket(auto, '/sales/ws', ['embedgate', `embedgate.ticket.${value}`]);
    assert.ok('ws' in opened);
    const closed = once(opened.ws, 'close');
    await auto.gw.fetch('/_embedgate/session', { method: 'DELETE', headers: { origin: auto.origin, [HANDLE]: handle } });
    const [code] = (await closed) as [number];
    assert.equal(code, 1008);
  });

  it('tickets come only to the frame itself, for a session (not a bearer), and not by GET', async () => {
    const handle = await workerSession();
    const foreign = await withHandle(auto, '/_embedgate/ws-ticket', handle, { method: 'POST', headers: { origin: HOST_ORIGIN }, body: '{"path":"/sales/ws"}' });
    assert.equal(foreign.status, 403);
    const bearer = await auto.gw.fetch('/_embedgate/ws-ticket', { method: 'POST', token: analyst, headers: { origin: auto.origin }, body: '{"path":"/sales/ws"}' });
    assert.equal(bearer.status, 401, 'a bearer alone is no session');
    // The frame script puts the bearer on the app's fetches in header mode: the session still decides.
    const both = await withHandle(auto, '/_embedgate/ws-ticket', handle, { method: 'POST', headers: { origin: auto.origin, authorization: `Bearer ${analyst}` }, body: '{"path":"/sales/ws"}' });
    assert.equal(both.status, 200);
    assert.equal((await withHandle(auto, '/_embedgate/ws-ticket', handle)).status, 405);
  });
});

describe('worker mode\'s scripts and pages', () => {
  it('the service worker script may serve any scope of the gateway; the worker page script is served too', async () => {
    const worker = await auto.gw.fetch('/_embedgate/worker.js');
    assert.equal(worker.status, 200);
    assert.equal(worker.headers.get('service-worker-allowed'), '/');
    assert.match(worker.headers.get('content-type') ?? '', /^text\/javascript/);
    assert.equal(worker.headers.get('access-control-allow-origin'), null);
    assert.equal((await auto.gw.fetch('/_embedgate/worker-page.js')).status, 200);
  });

  it('the bootstrap page names the mode and the app\'s prefix, and its policy lets it register the worker', async () => {
    const response = await workerMode.gw.fetch('/sales/page', { headers: { 'sec-fetch-dest': 'iframe', 'sec-fetch-mode': 'navigate' } });
    assert.equal(response.status, 401);
    const html = await response.text();
    assert.match(html, /data-embedgate-embed-mode="worker"/);
    assert.match(html, /data-embedgate-scope="\/sales\/"/);
    assert.match(response.headers.get('content-security-policy') ?? '', /worker-src 'self'/);
  });

  it('an app page that came through the worker (with the handle) gets the worker page script with the page\'s nonce; others do not', async () => {
    const handle = await workerSession();
    const through = await withHandle(auto, '/sales/page', handle, { headers: { accept: 'text/html' } });
    const html = await through.text();
    const nonce = /data-embedgate-mode="app"[^>]*nonce="([^"]+)"/.exec(html)?.[1];
    assert.ok(nonce !== undefined, html.slice(0, 400));
    assert.match(html, new RegExp(`<script src="/_embedgate/worker-page\\.js\\?v=[^"]+" nonce="${nonce.replace(/[+/=]/g, '\\$&')}"></script>`));
    const cookie = sessionCookieOf(await post(auto, { path: '/sales/' })) as string;
    const plain = await (await auto.gw.fetch('/sales/page', { headers: { cookie: `${COOKIE}=${cookie}`, accept: 'text/html' } })).text();
    assert.doesNotMatch(plain, /worker-page\.js/);
  });
});
