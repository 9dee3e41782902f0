// Sessions in a real Redis (started by the test), shared by two gateway instances behind one public URL: a session
// made on one works on the other, ending it on one ends it on both, an instance that dies loses no session, and
// while Redis is down bearer requests keep working, session requests get 503 session_store_unavailable (never a
// crash), and the gateways reconnect by themselves when it is back.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { Redis } from 'ioredis';
import { RedisSessionStore } from '../src/sessions/redis.js';
import type { SessionRecord } from '../src/sessions/types.js';
import { eventually, startGateway, type RunningGateway } from './support/gateway.js';
import { startHostileOp, type HostileOp } from './support/hostile-op.js';
import { freePort } from './support/idp.js';
import { rawRequest } from './support/raw-http.js';
import { startRedis, type RunningRedis } from './support/redis.js';
import { startUpstream, type Upstream } from './support/upstream.js';
import { openWebSocket } from './support/ws-client.js';

const COOKIE = '__Host-embedgate';

let redis: RunningRedis;
let op: HostileOp;
let upstream: Upstream;
/** The URL both instances are reached by (a load balancer's), which is the Origin the framed app sends. */
let publicUrl: string;
let first: RunningGateway;
let second: RunningGateway;

const nowSeconds = (): number => Math.floor(Date.now() / 1000);

async function startInstance(port?: number): Promise<RunningGateway> {
  const gateway = await startGateway({
    ...(port === undefined ? {} : { listen: `127.0.0.1:${port}` }),
    public_url: publicUrl,
    issuers: [{ issuer: op.issuer, audiences: [op.audience] }],
    embed: { allowed_origins: ['http://host.example'] },
    sessions: { store: redis.url },
    apps: [{ name: 'sales', prefix: '/sales/', upstream: upstream.url, allow: { roles: ['analyst'] } }],
  });
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
  await first?.close();
  await second?.close();
  await upstream?.close();
  await op?.close();
  await redis?.close();
});

/** Makes an embed session on `gateway` the way the bootstrap does; returns the cookie value. */
async function newSession(gateway: RunningGateway, sub = 'ana'): Promise<string> {
  const response = await gateway.fetch('/_embedgate/session', {
    method: 'POST',
    token: await op.sign(op.claims({ sub })),
    headers: { origin: publicUrl, 'content-type': 'application/json' },
    body: JSON.stringify({ path: '/sales/' }),
  });
  assert.equal(response.status, 200);
  const cookie = response.headers.getSetCookie().find((line) => line.startsWith(`${COOKIE}=`)) ?? '';
  return cookie.slice(COOKIE.length + 1, cookie.indexOf(';'));
}

const withCookie = (value: string): { headers: Record<string, string> } => ({ headers: { cookie: `${COOKIE}=${value}` } });

function record(id: string, subject: string, ttl = 300): SessionRecord {
  const now = nowSeconds();
  return { id, issuer: 'https://op.example', subject, email: undefined, emailVerified: undefined, roles: ['analyst'], scopes: [], claims: { sub: subject }, expiresAt: now + ttl, createdAt: now };
}

describe('Redis session store', () => {
  it('keeps records until they expire, deletes one, and deletes every session of one user', async () => {
    const store = new RedisSessionStore(redis.url);
    try {
      await store.put(record('a1', 'alice'));
      await store.put(record('a2', 'alice'));
      await store.put(record('b1', 'bob'));
      // Two seconds: expiresAt counts from the start of the current second, so this one lives between 1 and 2 s.
      await store.put(record('short', 'carol', 2));
      assert.equal((await store.get('a1'))?.subject, 'alice');
      assert.equal(await store.delete('a1'), true);
      assert.equal(await store.delete('a1'), false, 'already gone');
      assert.equal(await store.get('a1'), undefined);
      assert.deepEqual(await store.deleteBySubject('https://op.example', 'alice'), ['a2']);
      assert.equal(await store.get('a2'), undefined);
      assert.equal((await store.get('b1'))?.subject, 'bob', 'another user keeps theirs');
      assert.deepEqual(await store.deleteBySubject('https://op.example', 'nobody'), []);
      assert.deepEqual((await store.list()).map((r) => r.id).filter((id) => ['b1', 'short'].includes(id)).sort(), ['b1', 'short']);
      assert.deepEqual((await store.list('bob')).map((r) => r.id), ['b1']);
      await eventually(async () => (await store.get('short')) === undefined, 5000);
    } finally {
      await store.close();
    }
  });

  it('a user\'s index of session ids does not grow for ever: ids of sessions that are gone are dropped as new ones come', async () => {
    const store = new RedisSessionStore(redis.url);
    const client = new Redis(redis.url);
    try {
      // 200 sessions one after another, each ended before the next (as renewals and sign-ins do), one still live.
      for (let i = 0; i < 200; i += 1) {
        await store.put(record(`dana-${i}`, 'dana'));
        if (i < 199) await store.delete(`dana-${i}`);
      }
      const index = (await client.keys('embedgate:subject:*')).find((key) => Buffer.from(key.split(':').pop() as string, 'base64url').toString().endsWith('\ndana'));
      assert.ok(index !== undefined, 'the user\'s index');
      const size = await client.scard(index);
      assert.ok(size <= 33, `the index holds ${size} ids for 1 live session`);
      assert.equal(await client.sismember(index, 'dana-199'), 1, 'the live one is kept');
      assert.deepEqual(await store.deleteBySubject('https://op.example', 'dana'), ['dana-199'], 'revoking the user still finds it');
    } finally {
      client.disconnect();
      await store.close();
    }
  });
});

describe('two gateway instances sharing Redis', () => {
  it('a session made on one instance works on the other; ending it on one ends it on both', async () => {
    const cookie = await newSession(first);
    const before = upstream.requests.length;
    assert.equal((await second.fetch('/sales/', withCookie(cookie))).status, 200, 'the other instance knows the session');
    assert.equal(upstream.requests[before]?.headers['x-forwarded-user'], 'ana');
    const ended = await second.fetch('/_embedgate/session', { method: 'DELETE', headers: { origin: publicUrl, cookie: `${COOKIE}=${cookie}` } });
    assert.equal(ended.status, 204);
    const refused = await first.fetch('/sales/', withCookie(cookie));
    assert.equal(refused.status, 401);
    assert.equal(((await refused.json()) as { error: string }).error, 'session_expired');
  });

  it('an instance that dies loses no session: the other one goes on serving it', async () => {
    const port = Number(new URL(publicUrl).port);
    const cookie = await newSession(first);
    await first.close();
    assert.equal((await second.fetch('/sales/', withCookie(cookie))).status, 200);
    first = await startInstance(port);
    assert.equal((await first.fetch('/sales/', withCookie(cookie))).status, 200, 'and the restarted one too');
  });

  it('Redis down: bearer requests work, session requests get 503 session_store_unavailable (JSON, HTML, WebSocket); back up: the same session works again', async () => {
    const cookie = await newSession(first);
    await redis.stop();
    try {
      const bearer = await second.fetch('/sales/', { token: await op.sign(op.claims()) });
      assert.equal(bearer.status, 200, 'bearer requests do not need the store');
      const json = await second.fetch('/sales/_dash-layout', withCookie(cookie));
      assert.equal(json.status, 503);
      assert.deepEqual(await json.json(), { error: 'session_store_unavailable', message: 'Sessions cannot be checked right now; try again in a moment.' });
      const page = await rawRequest(second.url, '/sales/', [`Cookie: ${COOKIE}=${cookie}`, 'Sec-Fetch-Dest: document', 'Sec-Fetch-Mode: navigate', 'Accept: text/html']);
      assert.equal(page.status, 503);
      assert.match(page.headers['content-type'] ?? '', /^text\/html/);
      const socket = await openWebSocket(`${second.url.replace('http', 'ws')}/sales/ws`, { cookie: `${COOKIE}=${cookie}`, origin: publicUrl });
      assert.deepEqual(socket, { status: 503 });
      const post = await second.fetch('/_embedgate/session', {
        method: 'POST', token: await op.sign(op.claims()), headers: { origin: publicUrl, 'content-type': 'application/json' }, body: '{"path":"/sales/"}',
      });
      assert.equal(post.status, 503, 'no session can be made either');
      assert.equal((await second.fetch('/healthz')).status, 200, 'the gateway is alive');
    } finally {
      await redis.start();
    }
    await eventually(async () => (await second.fetch('/sales/', withCookie(cookie))).status === 200, 10_000);
    assert.equal((await first.fetch('/sales/', withCookie(cookie))).status, 200);
  });
});
