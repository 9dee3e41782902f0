// Faults around sessions, with real processes: gateways run as `embedgate serve` children, Redis is Debian's
// redis-server, revocations go through the real `embedgate sessions revoke`. Each test is named after the promise it
// shows: a Redis that dies under traffic costs cookie requests a 503 (never a crash, never a bearer request, never a
// session) and comes back by itself within seconds; a SIGKILLed gateway loses no SQLite session and obeys a revocation
// at once; and hundreds of proxied WebSockets close within a second of their session's revocation or expiry.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { Redis } from 'ioredis';
import WebSocket from 'ws';
import { BIN, spawnCli } from './support/cli.js';
import { eventually } from './support/gateway.js';
import { startHostileOp, type HostileOp } from './support/hostile-op.js';
import { freePort } from './support/idp.js';
import { startRedis, type RunningRedis } from './support/redis.js';
import { startUpstream, type Upstream } from './support/upstream.js';
import { echo, openWebSocket } from './support/ws-client.js';

const COOKIE = '__Host-embedgate';
/** The promise every close below is held to: from the event (revocation, expiry) to the client seeing the close. */
const CLOSE_WITHIN_MS = 1000;

let op: HostileOp;
let upstream: Upstream;
let dir: string;

before(async () => {
  op = await startHostileOp();
  upstream = await startUpstream();
  dir = mkdtempSync(join(tmpdir(), 'embedgate-faults-'));
});

after(async () => {
  await upstream?.close();
  await op?.close();
  rmSync(dir, { recursive: true, force: true });
});

const nowSeconds = (): number => Math.floor(Date.now() / 1000);
const tokenFor = (sub: string, extra: Record<string, unknown> = {}): Promise<string> => op.sign(op.claims({ sub, ...extra }));

/** A gateway config file: one app (sales, WebSockets on), cookies for the given public URL, the given store. */
function writeConfig(name: string, config: { port: number; publicUrl: string; store?: string; dataDir?: string }): string {
  const file = join(dir, `${name}.json`);
  writeFileSync(file, JSON.stringify({
    listen: `127.0.0.1:${config.port}`,
    public_url: config.publicUrl,
    data_dir: config.dataDir ?? join(dir, `${name}-data`),
    log_level: 'warn',
    issuers: [{ issuer: op.issuer, audiences: [op.audience] }],
    embed: { allowed_origins: ['http://host.example'] },
    ...(config.store === undefined ? {} : { sessions: { store: config.store } }),
    apps: [{ name: 'sales', prefix: '/sales/', upstream: upstream.url, allow: { roles: ['analyst'] } }],
  }));
  return file;
}

interface ServedGateway {
  url: string;
  pid: number;
  output(): string;
  /** Still the same process, and it answers /healthz. */
  healthy(): Promise<boolean>;
  /** SIGKILL, resolved once the process is gone. */
  kill(): Promise<void>;
  stop(): Promise<number | null>;
}

/** `embedgate serve --config FILE` as a child process, resolved once it is ready (its issuer's keys are loaded). */
async function serve(configFile: string, port: number): Promise<ServedGateway> {
  const run = spawnCli(['serve', '--config', configFile]);
  const url = `http://127.0.0.1:${port}`;
  const died = run.exited.then((code) => {
    throw new Error(`embedgate serve exited (${code}) before it was ready:\n${run.output()}`);
  });
  await Promise.race([eventually(async () => (await fetch(`${url}/readyz`).catch(() => undefined))?.status === 200, 20_000, 50), died]);
  died.catch(() => undefined);
  const pid = run.child.pid as number;
  return {
    url,
    pid,
    output: run.output,
    healthy: async () => run.child.exitCode === null && run.child.signalCode === null
      && (await fetch(`${url}/healthz`).catch(() => undefined))?.status === 200,
    kill: async () => {
      run.child.kill('SIGKILL');
      await run.exited;
    },
    stop: run.stop,
  };
}

/** Makes an embed session the way the bootstrap does (same origin, bearer, JSON body); returns its cookie and expiry. */
async function newSession(gatewayUrl: string, origin: string, token: string): Promise<{ cookie: string; expiresAt: number }> {
  const response = await fetch(`${gatewayUrl}/_embedgate/session`, {
    method: 'POST',
    headers: { authorization: `Bearer ${token}`, origin, 'content-type': 'application/json' },
    body: '{"path":"/sales/"}',
  });
  assert.equal(response.status, 200, `session request: ${response.status} ${await response.clone().text()}`);
  const { expires_at: expiresAt } = (await response.json()) as { expires_at: number };
  const line = response.headers.getSetCookie().find((each) => each.startsWith(`${COOKIE}=`)) ?? '';
  return { cookie: line.slice(COOKIE.length + 1, line.indexOf(';')), expiresAt };
}

const cookieHeaders = (cookie: string): Record<string, string> => ({ cookie: `${COOKIE}=${cookie}` });

/**
 * GETs a distinct app path with each cookie, in parallel; returns each answer's status and the user the upstream saw
 * for it (undefined when the request did not reach the upstream).
 */
async function usersSeenUpstream(gatewayUrl: string, cookies: string[], tag: string): Promise<Array<{ status: number; user: string | undefined }>> {
  return Promise.all(cookies.map(async (cookie, i) => {
    const path = `/sales/${tag}-${i}`;
    const response = await fetch(`${gatewayUrl}${path}`, { headers: cookieHeaders(cookie) });
    await response.arrayBuffer();
    const seen = upstream.requests.findLast((request) => request.url === path);
    return { status: response.status, user: response.status === 200 ? seen?.headers['x-forwarded-user'] as string | undefined : undefined };
  }));
}

/** A proxied WebSocket, and when and how it closed. */
interface Tracked {
  ws: WebSocket;
  user: string;
  cookie: string;
  closedAt?: number;
  code?: number;
}

/** Opens a socket with the cookie, from the gateway's own origin (its public URL, unless given). */
async function openTracked(gatewayUrl: string, cookie: string, user: string, origin = gatewayUrl): Promise<Tracked> {
  const opened = await openWebSocket(`${gatewayUrl.replace(/^http/, 'ws')}/sales/ws`, { ...cookieHeaders(cookie), origin });
  assert.ok('ws' in opened, `the upgrade was refused with ${'status' in opened ? opened.status : '?'}`);
  const tracked: Tracked = { ws: opened.ws, user, cookie };
  opened.ws.once('close', (code) => {
    tracked.closedAt = Date.now();
    tracked.code = code;
  });
  return tracked;
}

/** Opens one socket per entry, `batch` handshakes at a time. */
async function openMany(gatewayUrl: string, wanted: Array<{ cookie: string; user: string }>, batch = 50): Promise<Tracked[]> {
  const sockets: Tracked[] = [];
  for (let at = 0; at < wanted.length; at += batch) {
    sockets.push(...await Promise.all(wanted.slice(at, at + batch).map(({ cookie, user }) => openTracked(gatewayUrl, cookie, user))));
  }
  return sockets;
}

/** The largest delay from `eventAt` to each socket's close, once all have closed (bounded wait). */
async function closeLag(sockets: Tracked[], eventAt: number, timeoutMs = 5000): Promise<number> {
  await eventually(() => sockets.every((socket) => socket.closedAt !== undefined), timeoutMs, 10).catch(() => {
    const open = sockets.filter((socket) => socket.closedAt === undefined).length;
    throw new Error(`${open} of ${sockets.length} sockets were still open ${timeoutMs} ms after the event`);
  });
  return Math.max(...sockets.map((socket) => (socket.closedAt as number) - eventAt));
}

/** `embedgate sessions revoke --user SUB`, and the moment it reported the sessions ended (the store write is done). */
function revokeWithCli(configFile: string, user: string): Promise<{ code: number | null; stdout: string; stderr: string; endedAt: number }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [BIN, 'sessions', 'revoke', '--user', user, '--config', configFile]);
    let stdout = '';
    let stderr = '';
    let endedAt = 0;
    child.stdout.on('data', (data: Buffer) => {
      stdout += data.toString();
      if (endedAt === 0 && stdout.includes('ended ')) endedAt = Date.now();
    });
    child.stderr.on('data', (data: Buffer) => { stderr += data.toString(); });
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr, endedAt }));
  });
}

/** One value of the gateway's /metrics (the first series of that name, with the given labels if any). */
async function metric(gatewayUrl: string, name: string): Promise<number | undefined> {
  const text = await (await fetch(`${gatewayUrl}/metrics`)).text();
  const line = text.split('\n').find((each) => each.startsWith(`${name} `) || each.startsWith(`${name}{`));
  return line === undefined ? undefined : Number(line.slice(line.lastIndexOf(' ') + 1));
}

function acceptsConnections(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1');
    socket.once('connect', () => {
      socket.end();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

const percentile = (values: number[], p: number): number => {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor((sorted.length * p) / 100))] ?? 0;
};

/** The pid Redis reports for itself (the test support starts it; a restart changes it). */
async function redisPid(url: string): Promise<number> {
  const probe = new Redis(url, { maxRetriesPerRequest: 0 });
  try {
    const pid = Number(/process_id:(\d+)/.exec(await probe.info('server'))?.[1]);
    assert.ok(pid > 0);
    return pid;
  } finally {
    probe.disconnect();
  }
}

describe('Redis killed under session and bearer traffic on two gateway instances', () => {
  let redis: RunningRedis;
  let a: ServedGateway;
  let b: ServedGateway;
  /** What both instances are reached by (a load balancer's URL: here a's), the Origin their pages send. */
  let publicUrl: string;
  let pids: number[];

  before(async () => {
    redis = await startRedis();
    const [portA, portB] = [await freePort(), await freePort()];
    publicUrl = `http://127.0.0.1:${portA}`;
    [a, b] = await Promise.all([
      serve(writeConfig('redis-a', { port: portA, publicUrl, store: redis.url }), portA),
      serve(writeConfig('redis-b', { port: portB, publicUrl, store: redis.url }), portB),
    ]);
    pids = [a.pid, b.pid];
  });

  after(async () => {
    await a?.stop();
    await b?.stop();
    await redis?.close();
  });

  /** Neither instance crashed: the same processes, alive and answering, with no error or fatal log line. */
  async function assertBothAlive(): Promise<void> {
    assert.deepEqual([a.pid, b.pid], pids);
    assert.equal(await a.healthy(), true, 'instance a answers /healthz');
    assert.equal(await b.healthy(), true, 'instance b answers /healthz');
    for (const gateway of [a, b]) assert.doesNotMatch(gateway.output(), /"level":(50|60)/);
  }

  it('cookie requests get 503 session_store_unavailable while Redis is down, bearer requests stay 200, and both instances (same pids) serve every session again within seconds of Redis returning', async () => {
    // redis-server runs with appendonly yes and appendfsync always: every write it acknowledged is on disk, so a
    // SIGKILL (no chance to save) loses none of it and the restart on the same port reloads it.
    const instances = { a, b };
    const users = ['ana', 'bo', 'cy', 'dee'];
    const sessions: Array<{ cookie: string; user: string }> = [];
    for (let i = 0; i < 20; i += 1) {
      const user = users[i % users.length] as string;
      const made = await newSession(i % 2 === 0 ? a.url : b.url, publicUrl, await tokenFor(user));
      sessions.push({ cookie: made.cookie, user });
    }
    const bearer = await tokenFor('bearer-user');
    // A socket on b whose session a ends after the outage: the session-end events must be back too.
    const watched = await newSession(a.url, publicUrl, await tokenFor('eve'));
    const watchedSocket = await openTracked(b.url, watched.cookie, 'eve', publicUrl);

    // Traffic: on each instance, one loop of cookie requests and one of bearer requests, paced, until told to stop.
    interface Sample { at: number; instance: 'a' | 'b'; kind: 'cookie' | 'bearer'; status: number; error?: string; ms: number }
    const samples: Sample[] = [];
    let stopped = false;
    const loop = async (instance: 'a' | 'b', kind: 'cookie' | 'bearer'): Promise<void> => {
      for (let n = 0; !stopped && n < 5000; n += 1) {
        const session = sessions[n % sessions.length] as { cookie: string };
        const started = Date.now();
        const headers = kind === 'bearer' ? { authorization: `Bearer ${bearer}` } : cookieHeaders(session.cookie);
        try {
          const response = await fetch(`${instances[instance].url}/sales/_dash-layout`, { headers });
          const body = (await response.json()) as { error?: string };
          samples.push({ at: started, instance, kind, status: response.status, ms: Date.now() - started, ...(body.error === undefined ? {} : { error: body.error }) });
        } catch (error) {
          samples.push({ at: started, instance, kind, status: 0, error: (error as Error).message, ms: Date.now() - started });
        }
        await new Promise((resolve) => setTimeout(resolve, 10));
      }
    };
    const loops = [loop('a', 'cookie'), loop('a', 'bearer'), loop('b', 'cookie'), loop('b', 'bearer')];
    const count = (filter: (sample: Sample) => boolean): number => samples.filter(filter).length;
    try {
      await eventually(() => (['a', 'b'] as const).every((instance) => count((s) => s.instance === instance && s.kind === 'cookie' && s.status === 200) >= 5), 10_000);

      // Kill it: the pid from Redis itself, SIGKILL, and wait until its port refuses connections.
      const pid = await redisPid(redis.url);
      // The last session made before the kill: acknowledged, so it must survive it.
      const last = await newSession(b.url, publicUrl, await tokenFor('fay'));
      sessions.push({ cookie: last.cookie, user: 'fay' });
      const killedAt = Date.now();
      process.kill(pid, 'SIGKILL');
      const redisPort = Number(new URL(redis.url).port);
      await eventually(async () => !(await acceptsConnections(redisPort)), 5000);

      // Down: every instance answers cookie requests 503 (JSON), for a few rounds of the traffic loops.
      await eventually(() => (['a', 'b'] as const).every((instance) => count((s) => s.at > killedAt && s.instance === instance && s.kind === 'cookie' && s.status === 503) >= 3), 20_000);
      for (const gateway of [a, b]) {
        const refused = await fetch(`${gateway.url}/sales/_dash-layout`, { headers: cookieHeaders(sessions[0]?.cookie as string) });
        assert.equal(refused.status, 503);
        assert.match(refused.headers.get('content-type') ?? '', /^application\/json/);
        assert.equal(refused.headers.get('retry-after'), '2');
        assert.deepEqual(await refused.json(), { error: 'session_store_unavailable', message: 'Sessions cannot be checked right now; try again in a moment.' });
        assert.equal((await fetch(`${gateway.url}/sales/`, { headers: { authorization: `Bearer ${bearer}` } })).status, 200, 'a bearer request needs no store');
      }
      assert.equal(watchedSocket.closedAt, undefined, 'an open WebSocket is not cut by the outage');

      // Back: the same port, the same data. Time until every session works on both instances.
      await redis.start();
      const restartedAt = Date.now();
      let rounds = 0;
      await eventually(async () => {
        rounds += 1;
        for (const gateway of [a, b]) {
          const seen = await usersSeenUpstream(gateway.url, sessions.map((s) => s.cookie), `back-${rounds}`);
          if (!seen.every(({ status }) => status === 200)) return false;
        }
        return true;
      }, 15_000, 50);
      const recoveredMs = Date.now() - restartedAt;
      stopped = true;
      await Promise.all(loops);

      // No session lost: every one (the last made before the kill too) is its user's, on both instances.
      for (const gateway of [a, b]) {
        const seen = await usersSeenUpstream(gateway.url, sessions.map((s) => s.cookie), `after-${gateway.pid}`);
        assert.deepEqual(seen.map(({ status, user }) => `${status} ${user}`), sessions.map(({ user }) => `200 ${user}`));
      }
      // New sessions can be made again, and one made on b works on a.
      const fresh = await newSession(b.url, publicUrl, await tokenFor('gus'));
      assert.equal((await fetch(`${a.url}/sales/`, { headers: cookieHeaders(fresh.cookie) })).status, 200);
      // Session-end events flow again: ending the watched session on a closes its socket on b (which b's check of its
      // sockets after reconnecting left open: its session was live).
      assert.equal(watchedSocket.closedAt, undefined);
      const endedAt = Date.now();
      const ended = await fetch(`${a.url}/_embedgate/session`, { method: 'DELETE', headers: { origin: publicUrl, ...cookieHeaders(watched.cookie) } });
      assert.equal(ended.status, 204);
      const watchLag = await closeLag([watchedSocket], endedAt, 3000);
      assert.equal(watchedSocket.code, 1008);

      // What the traffic saw: bearer requests never failed; cookie requests only ever got 200 or a JSON 503.
      const during = samples.filter((s) => s.at > killedAt && s.at < restartedAt);
      const bearerSamples = samples.filter((s) => s.kind === 'bearer');
      const cookieSamples = samples.filter((s) => s.kind === 'cookie');
      assert.deepEqual([...new Set(bearerSamples.map((s) => s.status))], [200], 'every bearer request, before, during and after the outage');
      assert.ok(during.some((s) => s.kind === 'bearer'), 'bearer traffic ran during the outage');
      assert.deepEqual([...new Set(cookieSamples.map((s) => s.status))].sort(), [200, 503]);
      assert.deepEqual([...new Set(cookieSamples.filter((s) => s.status === 503).map((s) => s.error))], ['session_store_unavailable']);
      const firstBack = (instance: 'a' | 'b'): number => Math.min(...samples.filter((s) => s.instance === instance && s.kind === 'cookie' && s.status === 200 && s.at > killedAt).map((s) => s.at + s.ms));

      await assertBothAlive();

      const duringBearer = during.filter((s) => s.kind === 'bearer').map((s) => s.ms);
      const duringCookie = during.filter((s) => s.kind === 'cookie' && s.status === 503).map((s) => s.ms);
      const report = {
        outageMs: restartedAt - killedAt,
        recoveredMs,
        firstCookie200AfterRestartMs: { a: firstBack('a') - restartedAt, b: firstBack('b') - restartedAt },
        sessionEndEventLagMs: watchLag,
        requests: { cookie: cookieSamples.length, bearer: bearerSamples.length, cookie503: duringCookie.length },
        bearerMsDuringOutage: { p50: percentile(duringBearer, 50), max: Math.max(...duringBearer) },
        cookie503Ms: { p50: percentile(duringCookie, 50), max: Math.max(...duringCookie) },
      };
      console.log(`redis outage: ${JSON.stringify(report)}`);
      assert.ok(recoveredMs <= 5000, `every session was back ${recoveredMs} ms after Redis returned`);
      assert.ok(watchLag <= CLOSE_WITHIN_MS, `the socket on the other instance closed ${watchLag} ms after the session ended`);
    } finally {
      stopped = true;
      await Promise.all(loops);
      watchedSocket.ws.terminate();
    }
  });

  it('Redis frozen (SIGSTOP): cookie requests get 503 within about a second instead of hanging, bearer requests stay 200; SIGCONT: served again at once', async () => {
    // SIGSTOP keeps every connection open and every byte of data, but nothing answers: a hung Redis, not a dead one.
    const session = await newSession(a.url, publicUrl, await tokenFor('hal'));
    const bearer = await tokenFor('bearer-user');
    const pid = await redisPid(redis.url);
    const frozenAt = Date.now();
    process.kill(pid, 'SIGSTOP');
    let thawedAt = 0;
    try {
      const answers = await Promise.all([a, b, a, b].map(async (gateway) => {
        const started = Date.now();
        const response = await fetch(`${gateway.url}/sales/_dash-layout`, { headers: cookieHeaders(session.cookie), signal: AbortSignal.timeout(10_000) });
        return { status: response.status, body: (await response.json()) as { error?: string }, ms: Date.now() - started };
      }));
      assert.deepEqual(answers.map(({ status, body }) => `${status} ${body.error}`), Array(4).fill('503 session_store_unavailable'));
      const bearerStarted = Date.now();
      for (const gateway of [a, b]) assert.equal((await fetch(`${gateway.url}/sales/`, { headers: { authorization: `Bearer ${bearer}` } })).status, 200);
      const bearerMs = Date.now() - bearerStarted;
      const slowest = Math.max(...answers.map(({ ms }) => ms));
      process.kill(pid, 'SIGCONT');
      thawedAt = Date.now();
      await eventually(async () => {
        const statuses = await Promise.all([a, b].map(async (gateway) => (await fetch(`${gateway.url}/sales/`, { headers: cookieHeaders(session.cookie) })).status));
        return statuses.every((status) => status === 200);
      }, 10_000, 20);
      const backMs = Date.now() - thawedAt;
      console.log(`redis frozen: ${JSON.stringify({ frozenMs: thawedAt - frozenAt, slowest503Ms: slowest, twoBearerRequestsMs: bearerMs, backAfterSigcontMs: backMs })}`);
      assert.ok(slowest <= 3000, `a cookie request waited ${slowest} ms for the frozen store`);
      assert.ok(backMs <= 2000, `served again ${backMs} ms after SIGCONT`);
    } finally {
      if (thawedAt === 0) process.kill(pid, 'SIGCONT');
    }
    await assertBothAlive();
  });

  it('a session ended while another instance\'s event connection to Redis is cut still closes that instance\'s sockets, as soon as it is back', async () => {
    // Redis pub/sub delivers nothing to a subscriber that is not connected: the instance must look again itself.
    const sessions = await Promise.all(['ivy', 'jo'].map(async (user) => newSession(a.url, publicUrl, await tokenFor(user))));
    const [ended, kept] = await Promise.all(sessions.map((session, i) => openTracked(b.url, session.cookie, i === 0 ? 'ivy' : 'jo', publicUrl)));
    const admin = new Redis(redis.url, { maxRetriesPerRequest: 0 });
    try {
      await eventually(async () => String(await admin.call('CLIENT', 'LIST', 'TYPE', 'pubsub')).trim() !== '', 5000);
      // Cut every subscriber connection (b's among them; it reconnects after its 100 ms back-off) and end the session
      // on a in that window.
      const cut = await admin.client('KILL', 'TYPE', 'pubsub');
      assert.ok(Number(cut) >= 1, 'b had a subscriber connection to cut');
      const endedAt = Date.now();
      const response = await fetch(`${a.url}/_embedgate/session`, { method: 'DELETE', headers: { origin: publicUrl, ...cookieHeaders(sessions[0]?.cookie as string) } });
      assert.equal(response.status, 204);
      const lag = await closeLag([ended as Tracked], endedAt, 5000);
      assert.equal(ended?.code, 1008);
      assert.equal(kept?.ws.readyState, WebSocket.OPEN, 'a socket of a live session stays open through the recheck');
      assert.equal(await echo((kept as Tracked).ws, 'still here'), 'still here');
      console.log(`event gap: ${JSON.stringify({ closeLagMs: lag })}`);
      assert.ok(lag <= CLOSE_WITHIN_MS, `b closed the socket ${lag} ms after the session ended on a`);
    } finally {
      admin.disconnect();
      ended?.ws.terminate();
      kept?.ws.terminate();
    }
    await assertBothAlive();
  });
});

describe('SIGKILL and restart with SQLite sessions', () => {
  let gateway: ServedGateway | undefined;

  after(async () => {
    await gateway?.stop();
  });

  it('every session made before a SIGKILL still works after the restart, as the same user; `embedgate sessions revoke --user` then takes effect at once (401, sockets closed 1008 within a second), other users unaffected', async () => {
    const port = await freePort();
    const url = `http://127.0.0.1:${port}`;
    const dataDir = join(dir, 'sqlite-data');
    const configFile = writeConfig('sqlite', { port, publicUrl: url, store: `sqlite:${join(dataDir, 'sessions.db')}`, dataDir });
    gateway = await serve(configFile, port);

    const users = ['ana', 'bo', 'cy', 'dee', 'eve'];
    const made: Array<{ cookie: string; user: string }> = [];
    const tokens = new Map(await Promise.all(users.map(async (user) => [user, await tokenFor(user)] as const)));
    for (let i = 0; i < 50; i += 1) {
      const user = users[i % users.length] as string;
      made.push({ cookie: (await newSession(url, url, tokens.get(user) as string)).cookie, user });
    }
    const before = await usersSeenUpstream(url, made.map((m) => m.cookie), 'before-kill');
    assert.deepEqual(before.map(({ status, user }) => `${status} ${user}`), made.map(({ user }) => `200 ${user}`));

    const killedPid = gateway.pid;
    await gateway.kill();
    gateway = undefined;
    const restartStarted = Date.now();
    gateway = await serve(configFile, port);
    const restartMs = Date.now() - restartStarted;
    assert.notEqual(gateway.pid, killedPid);

    const after = await usersSeenUpstream(url, made.map((m) => m.cookie), 'after-kill');
    assert.deepEqual(after.map(({ status, user }) => `${status} ${user}`), made.map(({ user }) => `200 ${user}`), 'all 50 sessions, each its own user');

    // Revoke one user on the running (restarted) gateway while they and another user have sockets open.
    const anaCookies = made.filter((m) => m.user === 'ana');
    const boCookies = made.filter((m) => m.user === 'bo');
    const anaSockets = await openMany(url, anaCookies.slice(0, 3));
    const boSockets = await openMany(url, boCookies.slice(0, 3));
    for (const socket of [...anaSockets, ...boSockets]) assert.equal(await echo(socket.ws, 'hi'), 'hi');

    const revoked = await revokeWithCli(configFile, 'ana');
    assert.equal(revoked.code, 0, revoked.stderr);
    assert.equal(revoked.stdout.trim(), 'ended 10 session(s) of ana');
    const answers = await usersSeenUpstream(url, made.map((m) => m.cookie), 'after-revoke');
    assert.deepEqual(answers.map(({ status }) => status), made.map(({ user }) => (user === 'ana' ? 401 : 200)), 'the next request: 401 for ana, 200 for the others');
    const lag = await closeLag(anaSockets, revoked.endedAt);
    assert.deepEqual(anaSockets.map((s) => s.code), [1008, 1008, 1008]);
    for (const socket of boSockets) {
      assert.equal(socket.ws.readyState, WebSocket.OPEN, 'another user\'s socket stays open');
      assert.equal(await echo(socket.ws, 'still here'), 'still here');
      socket.ws.close();
    }
    console.log(`sqlite SIGKILL: ${JSON.stringify({ restartMs, sessions: made.length, revokeCloseLagMs: lag })}`);
    assert.ok(lag <= CLOSE_WITHIN_MS, `ana's sockets closed ${lag} ms after the revocation`);
  });
});

describe('500 proxied WebSockets whose sessions are revoked or expire', () => {
  let gateway: ServedGateway | undefined;
  const sockets: Tracked[] = [];

  after(async () => {
    for (const socket of sockets) socket.ws.terminate();
    await gateway?.stop();
  });

  it('each socket closes within a second of its session\'s revocation (CLI or DELETE) or expiry, upstream side too; the others stay open and the gateway keeps no closed socket', async () => {
    const port = await freePort();
    const url = `http://127.0.0.1:${port}`;
    const dataDir = join(dir, 'many-data');
    const configFile = writeConfig('many', { port, publicUrl: url, store: `sqlite:${join(dataDir, 'sessions.db')}`, dataDir });
    gateway = await serve(configFile, port);
    const upstreamBefore = upstream.wsConnections;
    const fdsBefore = await metric(url, 'embedgate_process_open_fds') as number;

    // Five users, four sessions each, 25 sockets per session: ana is revoked by the CLI, bo's sessions are DELETEd,
    // cy's expire on their own (a token that ends soon), dee and eve keep theirs.
    const SESSIONS_PER_USER = 4;
    const SOCKETS_PER_SESSION = 25;
    const sessionsOf = new Map<string, string[]>();
    for (const user of ['ana', 'bo', 'dee', 'eve']) {
      const token = await tokenFor(user);
      const cookies = [];
      for (let i = 0; i < SESSIONS_PER_USER; i += 1) cookies.push((await newSession(url, url, token)).cookie);
      sessionsOf.set(user, cookies);
    }
    const wanted = (user: string): Array<{ cookie: string; user: string }> =>
      (sessionsOf.get(user) as string[]).flatMap((cookie) => Array.from({ length: SOCKETS_PER_SESSION }, () => ({ cookie, user })));
    const openedStarted = Date.now();
    sockets.push(...await openMany(url, ['ana', 'bo', 'dee', 'eve'].flatMap(wanted)));
    // cy last, with sessions that end a few seconds from now: the sockets open well before that.
    const cyToken = await tokenFor('cy', { exp: nowSeconds() + 4 });
    const cySessions = [];
    for (let i = 0; i < SESSIONS_PER_USER; i += 1) cySessions.push(await newSession(url, url, cyToken));
    sessionsOf.set('cy', cySessions.map((s) => s.cookie));
    sockets.push(...await openMany(url, wanted('cy')));
    const openMs = Date.now() - openedStarted;
    const cyExpiresAt = Math.min(...cySessions.map((s) => s.expiresAt)) * 1000;
    assert.ok(Date.now() < cyExpiresAt - 500, 'cy\'s sockets opened before their sessions end');
    assert.equal(sockets.length, 500);
    assert.equal(upstream.wsConnections - upstreamBefore, 500);
    assert.equal(await metric(url, 'embedgate_websockets_open'), 500);
    const fdsOpen = await metric(url, 'embedgate_process_open_fds') as number;
    assert.ok(sockets.every((s) => s.closedAt === undefined));

    const of = (user: string): Tracked[] => sockets.filter((s) => s.user === user);
    const lags: Record<string, number> = {};

    // Expiry: cy's sessions end at their expires_at, and so do their sockets.
    lags.expiry = await closeLag(of('cy'), cyExpiresAt, 10_000);
    assert.equal((await fetch(`${url}/sales/`, { headers: cookieHeaders(sessionsOf.get('cy')?.[0] as string) })).status, 401);

    // Revocation by the operator: `embedgate sessions revoke --user ana` in another process.
    const revoked = await revokeWithCli(configFile, 'ana');
    assert.equal(revoked.code, 0, revoked.stderr);
    assert.equal(revoked.stdout.trim(), `ended ${SESSIONS_PER_USER} session(s) of ana`);
    lags.cliRevoke = await closeLag(of('ana'), revoked.endedAt);

    // Revocation by the user's page: DELETE /_embedgate/session for each of bo's sessions, all at once.
    const deletedAt = Date.now();
    const deletes = await Promise.all((sessionsOf.get('bo') as string[]).map((cookie) =>
      fetch(`${url}/_embedgate/session`, { method: 'DELETE', headers: { origin: url, ...cookieHeaders(cookie) } })));
    assert.deepEqual(deletes.map((response) => response.status), [204, 204, 204, 204]);
    lags.deleteRevoke = await closeLag(of('bo'), deletedAt);

    const affected = [...of('ana'), ...of('bo'), ...of('cy')];
    assert.equal(affected.length, 300);
    assert.deepEqual([...new Set(affected.map((s) => s.code))], [1008], 'closed as a policy violation');
    const unaffected = [...of('dee'), ...of('eve')];
    assert.ok(unaffected.every((s) => s.closedAt === undefined && s.ws.readyState === WebSocket.OPEN), 'dee\'s and eve\'s sockets stay open');
    for (const socket of unaffected.filter((_s, i) => i % 20 === 0)) assert.equal(await echo(socket.ws, 'alive'), 'alive');

    // The upstream saw its side closed, and the gateway keeps nothing of the closed sockets.
    await eventually(() => upstream.wsConnections - upstreamBefore === 200, 5000);
    await eventually(async () => (await metric(url, 'embedgate_websockets_open')) === 200, 5000);
    let fdsAfter = 0;
    await eventually(async () => {
      fdsAfter = await metric(url, 'embedgate_process_open_fds') as number;
      // Each open socket holds two descriptors (client and upstream); some slack for keep-alive HTTP connections.
      return fdsAfter <= fdsBefore + 2 * 200 + 40;
    }, 5000, 50);

    console.log(`500 websockets: ${JSON.stringify({ openMs, closeLagMs: lags, fds: { before: fdsBefore, open: fdsOpen, after: fdsAfter } })}`);
    for (const [event, lag] of Object.entries(lags)) assert.ok(lag <= CLOSE_WITHIN_MS, `${event}: the last socket closed ${lag} ms after the event`);
    assert.equal(await gateway.healthy(), true);
  });
});
