// A login session's life against the real embedded IdP (30 s access tokens, rotating refresh tokens): refreshed
// before its access token expires — once, even when requests on two instances sharing Redis find it due together —
// roles changed at the IdP arrive with the next refresh, a refused refresh ends the session, sign-out on one
// instance ends it (and its WebSocket) on the other, an instance killed mid-traffic loses nothing, the SQLite store
// keeps sessions over a restart, and the idle and absolute timeouts (98) hold however often tokens are refreshed.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { openIdpStore } from '../src/idp/store/open.js';
import { eventually, startGateway, type RunningGateway } from './support/gateway.js';
import { LOGIN_COOKIE, navigate, setCookieValue, signInThroughGateway } from './support/gateway-sign-in.js';
import { freePort, GATEWAY_AUDIENCE, startIdp, type RunningIdp } from './support/idp.js';
import { startRedis, type RunningRedis } from './support/redis.js';
import { startUpstream, type Upstream } from './support/upstream.js';
import { echo, openWebSocket } from './support/ws-client.js';

const PASSWORD = 'correct horse battery staple';
const CLIENT_SECRET = 'gateway-client-secret-0123456789';
const ENCRYPTION_KEY = randomBytes(32).toString('base64');
const ACCESS_TOKEN_SECONDS = 30;
const USERS = ['ana', 'bo', 'cy', 'dee', 'eve', 'fay', 'gus'];

let idp: RunningIdp;
let redis: RunningRedis;
let upstream: Upstream;
/** Ports of the gateways, known before the IdP starts so that their callbacks can be registered. */
const ports = { shared: 0, sqlite: 0, short: 0 };
/** Two instances behind one public URL (the shared port's), sharing Redis. */
let first: RunningGateway;
let second: RunningGateway;

const origin = (port: number): string => `http://127.0.0.1:${port}`;
const user = (username: string): { username: string; password: string } => ({ username, password: PASSWORD });

function gatewayConfig(port: number, login: Record<string, unknown>, extra: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    public_url: origin(port),
    issuers: [{ issuer: idp.issuer, audiences: [GATEWAY_AUDIENCE] }],
    login: {
      issuer: idp.issuer, client_id: 'gateway', client_secret: CLIENT_SECRET, resource: GATEWAY_AUDIENCE,
      prompt: 'consent', encryption_key: ENCRYPTION_KEY, post_logout_redirect_uri: `${origin(port)}/sales/`, ...login,
    },
    apps: [{ name: 'sales', prefix: '/sales/', upstream: upstream.url, allow: { roles: ['analyst'] } }],
    ...extra,
  };
}

async function ready(gateway: RunningGateway): Promise<RunningGateway> {
  await eventually(async () => (await gateway.fetch('/readyz')).status === 200, 10_000);
  return gateway;
}

function startShared(listen?: number): Promise<RunningGateway> {
  return startGateway({
    ...gatewayConfig(ports.shared, { refresh_before_seconds: 25 }, { sessions: { store: redis.url } }),
    ...(listen === undefined ? {} : { listen: `127.0.0.1:${listen}` }),
  }).then(ready);
}

before(async () => {
  for (const name of Object.keys(ports) as Array<keyof typeof ports>) ports[name] = await freePort();
  idp = await startIdp({
    access_token_ttl_seconds: ACCESS_TOKEN_SECONDS,
    users: USERS.map((username) => ({ username, password: PASSWORD, email: `${username}@example.com`, roles: ['analyst'] })),
    clients: [{
      client_id: 'gateway', client_secret: CLIENT_SECRET,
      redirect_uris: Object.values(ports).map((port) => `${origin(port)}/_embedgate/callback`),
      post_logout_redirect_uris: Object.values(ports).map((port) => `${origin(port)}/sales/`),
    }],
  });
  redis = await startRedis();
  upstream = await startUpstream();
  first = await startShared(ports.shared);
  second = await startShared();
});

after(async () => {
  await first?.close();
  await second?.close();
  await upstream?.close();
  await redis?.close();
  await idp?.close(true);
});

const withSession = (cookie: string, headers: Record<string, string> = {}): RequestInit => ({ headers: { cookie: `${LOGIN_COOKIE}=${cookie}`, ...headers } });

/** Audit lines of one kind for one user, across gateways. */
function audits(gateways: RunningGateway[], kind: string, sub: string): number {
  return gateways.flatMap((g) => g.logs).filter((line) => line.includes(`"audit":"${kind}"`) && line.includes(`"sub":"${sub}"`)).length;
}

/** Waits for wall-clock time to pass: the subject of these tests (token lifetimes, idle time), not synchronisation. */
function letTimePass(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Requests `path` with the session on each gateway in turn until `done()` holds; every answer must be 200. */
async function useUntil(gateways: RunningGateway[], cookie: string, done: () => boolean, timeoutMs: number): Promise<number> {
  let turn = 0;
  await eventually(async () => {
    const gateway = gateways[turn++ % gateways.length] as RunningGateway;
    const response = await gateway.fetch('/sales/data', withSession(cookie));
    assert.equal(response.status, 200, `request ${turn} with the session`);
    return done();
  }, timeoutMs, 250);
  return turn;
}

describe('refresh', () => {
  it('the access token is refreshed before it expires; the session outlives it, and the rotated refresh token works again', async () => {
    const { cookie } = await signInThroughGateway(first.url, idp.issuer, user('ana'), '/sales/');
    const started = Date.now();
    await useUntil([first, second], cookie, () => audits([first, second], 'session_refreshed', 'ana') >= 2, 25_000);
    assert.ok(Date.now() - started < ACCESS_TOKEN_SECONDS * 1000, 'two refreshes within one access token life');
    assert.equal(upstream.last()?.headers['x-forwarded-user'], 'ana');
  });

  it('requests on both instances that find the session due at once refresh it exactly once', async () => {
    const { cookie } = await signInThroughGateway(first.url, idp.issuer, user('bo'), '/sales/');
    // Due 25 s before the 30 s token expires.
    await letTimePass(6_000);
    const before = audits([first, second], 'session_refreshed', 'bo');
    const answers = await Promise.all(Array.from({ length: 12 }, (_, i) => (i % 2 === 0 ? first : second).fetch('/sales/data', withSession(cookie))));
    assert.deepEqual(answers.map((r) => r.status), Array(12).fill(200));
    assert.equal(audits([first, second], 'session_refreshed', 'bo') - before, 1, 'one refresh (a second use of the rotated refresh token would have ended the grant)');
    assert.equal((await second.fetch('/sales/data', withSession(cookie))).status, 200);
  });

  it('roles changed at the IdP arrive with the next refresh (403); a user removed at the IdP loses the session at the next one', async () => {
    const { cookie } = await signInThroughGateway(first.url, idp.issuer, user('cy'), '/sales/');
    const store = await openIdpStore(idp.config.store);
    try {
      await store.setUserRoles('cy', ['viewer']);
      await eventually(async () => (await first.fetch('/sales/data', withSession(cookie))).status === 403, 15_000, 250);
      await store.removeUser('cy');
      await eventually(async () => (await second.fetch('/sales/data', withSession(cookie))).status === 401, 15_000, 250);
    } finally {
      await store.close();
    }
    const refused = await first.fetch('/sales/data', withSession(cookie));
    assert.equal(refused.status, 401);
    assert.equal(((await refused.json()) as { error: string }).error, 'session_expired');
    assert.ok(first.logs.concat(second.logs).some((line) => line.includes('"audit":"session_ended"') && line.includes('refresh refused')));
    const page = await navigate(first.url, '/sales/', `${LOGIN_COOKIE}=${cookie}`);
    assert.equal(page.status, 302, 'a page asks for sign-in again');
    assert.ok((page.headers.location ?? '').startsWith(idp.issuer));
    assert.equal(setCookieValue(page.setCookies, LOGIN_COOKIE), '', 'and the dead cookie is cleared');
  });
});

describe('sessions shared by two instances (Redis)', () => {
  it('a session made on one instance works on the other; sign-out on one ends it there and closes its WebSocket on the other', async () => {
    const { cookie } = await signInThroughGateway(first.url, idp.issuer, user('dee'), '/sales/');
    assert.equal((await second.fetch('/sales/', withSession(cookie))).status, 200);
    const opened = await openWebSocket(`${second.url.replace('http', 'ws')}/sales/ws`, { cookie: `${LOGIN_COOKIE}=${cookie}`, origin: origin(ports.shared) });
    assert.ok('ws' in opened, 'the socket opens with the session');
    assert.match(await echo(opened.ws, 'hello'), /hello/);
    const closed = new Promise<number>((resolve) => opened.ws.once('close', (code) => resolve(code)));
    assert.equal((await first.fetch('/_embedgate/logout', withSession(cookie))).status, 200, 'GET only shows the sign-out button');
    assert.equal((await second.fetch('/sales/data', withSession(cookie))).status, 200);
    const posted = await first.fetch('/_embedgate/logout', { method: 'POST', ...withSession(cookie, { origin: origin(ports.shared) }) });
    assert.equal(posted.status, 303);
    assert.equal(await closed, 1008, 'the other instance closed the socket');
    assert.equal((await second.fetch('/sales/data', withSession(cookie))).status, 401);
  });

  it('an instance killed mid-traffic loses no session: the other serves every request, the restarted one too', async () => {
    const { cookie } = await signInThroughGateway(first.url, idp.issuer, user('eve'), '/sales/');
    const statuses: number[] = [];
    const killedAnswers: Array<number | 'refused'> = [];
    const traffic = (async () => {
      for (let i = 0; i < 40; i += 1) {
        statuses.push((await second.fetch('/sales/data', withSession(cookie))).status);
        killedAnswers.push(await first.fetch('/sales/data', withSession(cookie)).then((r) => r.status, () => 'refused' as const));
      }
    })();
    await eventually(() => statuses.length >= 10);
    await first.close();
    await traffic;
    assert.deepEqual([...new Set(statuses)], [200], 'every request on the surviving instance was served');
    assert.ok(killedAnswers.every((answer) => answer === 200 || answer === 'refused'), `the dying instance never refused the session: ${killedAnswers.join(',')}`);
    assert.ok(killedAnswers.includes('refused'), 'the instance was killed while traffic ran');
    first = await startShared(ports.shared);
    assert.equal((await first.fetch('/sales/data', withSession(cookie))).status, 200);
  });
});

describe('the SQLite store', () => {
  it('a login session survives a gateway restart and goes on refreshing', async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'embedgate-restart-'));
    const config = { ...gatewayConfig(ports.sqlite, { refresh_before_seconds: 25 }), listen: `127.0.0.1:${ports.sqlite}`, data_dir: dataDir };
    let gateway = await ready(await startGateway(config));
    try {
      const { cookie } = await signInThroughGateway(gateway.url, idp.issuer, user('fay'), '/sales/');
      await gateway.close();
      gateway = await ready(await startGateway(config));
      assert.equal((await gateway.fetch('/sales/data', withSession(cookie))).status, 200, 'the same cookie after the restart');
      await useUntil([gateway], cookie, () => audits([gateway], 'session_refreshed', 'fay') >= 1, 15_000);
    } finally {
      await gateway.close();
      rmSync(dataDir, { recursive: true, force: true });
    }
  });
});

describe('98 timeouts', () => {
  let short: RunningGateway;

  before(async () => {
    short = await ready(await startGateway({
      ...gatewayConfig(ports.short, { idle_timeout_seconds: 10, session_max_seconds: 16, refresh_before_seconds: 25 }),
      listen: `127.0.0.1:${ports.short}`,
    }));
  });

  after(() => short?.close());

  it('98: a session used often enough lives on, refreshed, but ends at the absolute timeout all the same', async () => {
    const signedIn = Date.now();
    const { cookie } = await signInThroughGateway(short.url, idp.issuer, user('gus'), '/sales/');
    let ended = 0;
    await eventually(async () => {
      const response = await short.fetch('/sales/data', withSession(cookie));
      if (response.status === 401) ended = Date.now();
      else assert.equal(response.status, 200);
      return response.status === 401;
    }, 25_000, 1000);
    const lived = (ended - signedIn) / 1000;
    assert.ok(audits([short], 'session_refreshed', 'gus') >= 1, 'refreshed while it lived');
    assert.ok(lived >= 15 && lived <= 19, `ended after ${lived} s, at the 16 s absolute timeout (past the 10 s idle timeout thanks to use)`);
  });

  it('98: a session left unused longer than the idle timeout ends', async () => {
    const { cookie } = await signInThroughGateway(short.url, idp.issuer, user('ana'), '/sales/');
    assert.equal((await short.fetch('/sales/data', withSession(cookie))).status, 200);
    await letTimePass(11_000);
    const refused = await short.fetch('/sales/data', withSession(cookie));
    assert.equal(refused.status, 401);
    assert.equal(((await refused.json()) as { error: string }).error, 'session_expired');
    assert.ok(short.logs.some((line) => line.includes('"audit":"session_ended"') && line.includes('idle timeout')));
  });
});
