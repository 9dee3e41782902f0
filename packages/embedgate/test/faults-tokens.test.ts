// Fault suite for bearer-token verification, against real servers: an issuer that is down when the gateway starts or
// goes down later, signing-key rotation and withdrawal, unknown-kid floods, and 110,000 distinct tokens thrown at a
// gateway process whose memory and verified-token cache must stay bounded.
//
// "Down" is a closed port: a TCP front door stands between the gateway and the test OP (it is the issuer URL), and
// taking it down closes its listening socket and cuts every connection through it, as a stopped IdP would.
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes, randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, connect, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, beforeEach, describe, it, type TestContext } from 'node:test';
import { setTimeout as delay } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { Pool, request } from 'undici';
import { REPO_ROOT } from './support/cli.js';
import { eventually, startGateway, type RunningGateway } from './support/gateway.js';
import { startHostileOp, type HostileOp } from './support/hostile-op.js';
import { freePort } from './support/idp.js';
import { startUpstream, type Upstream } from './support/upstream.js';

/** A TCP forwarder to the OP that can be stopped (port closed, connections cut) and started again on the same port. */
interface FrontDoor {
  readonly url: string;
  up(): Promise<void>;
  down(): Promise<void>;
}

async function startFrontDoor(targetPort: () => number): Promise<FrontDoor> {
  const port = await freePort();
  const sockets = new Set<Socket>();
  const server: Server = createServer((client) => {
    const target = connect(targetPort(), '127.0.0.1');
    for (const socket of [client, target]) {
      sockets.add(socket);
      socket.on('close', () => sockets.delete(socket));
      socket.on('error', () => undefined);
    }
    client.pipe(target).pipe(client);
    client.on('close', () => target.destroy());
    target.on('close', () => client.destroy());
  });
  const up = (): Promise<void> => new Promise((resolve, reject) => {
    if (server.listening) {
      resolve();
      return;
    }
    server.once('error', reject);
    server.listen(port, '127.0.0.1', () => {
      server.off('error', reject);
      resolve();
    });
  });
  await up();
  return {
    url: `http://127.0.0.1:${port}`,
    up,
    down: async () => {
      if (!server.listening) return;
      const closed = new Promise((resolve) => server.close(resolve));
      for (const socket of sockets) socket.destroy();
      await closed;
    },
  };
}

let op: HostileOp;
let front: FrontDoor;
let upstream: Upstream;

before(async () => {
  let opPort = 0;
  front = await startFrontDoor(() => opPort);
  [op, upstream] = await Promise.all([startHostileOp({ issuerOverride: front.url }), startUpstream()]);
  opPort = Number(new URL(op.url).port);
});

after(async () => {
  await front.down();
  await upstream.close();
  await op.close();
});

/** Every test starts with the issuer up, publishing its default keys (rsa-1 among them, not rsa-2), all via the front door. */
beforeEach(async () => {
  await front.up();
  op.setDiscovery({ jwks_uri: `${front.url}/jwks` });
  op.setJwksFailure(null);
  op.publish('rsa');
  op.unpublish('rsa2');
});

function gatewayConfig(issuer: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    issuers: [{ issuer: op.issuer, audiences: [op.audience], http_timeout_ms: 500, ...issuer }],
    apps: [{ name: 'sales', prefix: '/sales/', upstream: upstream.url, allow: { roles: ['analyst'] } }],
  };
}

async function launch(t: TestContext, issuer: Record<string, unknown> = {}): Promise<RunningGateway> {
  const gateway = await startGateway(gatewayConfig(issuer), 'warn');
  t.after(() => gateway.close());
  return gateway;
}

async function launchReady(t: TestContext, issuer: Record<string, unknown> = {}): Promise<RunningGateway> {
  const gateway = await launch(t, issuer);
  await eventually(async () => (await gateway.fetch('/readyz')).status === 200);
  return gateway;
}

interface Answer {
  status: number;
  error: string | undefined;
  contentType: string;
  wwwAuthenticate: string | null;
  retryAfter: string | null;
  body: string;
  ms: number;
}

/**
 * A request to the sales app with `token`: an API call (fetch/XHR), or a page load. undici's request() rather than
 * fetch(), which would overwrite Sec-Fetch-Mode.
 */
async function call(gateway: RunningGateway, token: string, navigation = false): Promise<Answer> {
  const started = Date.now();
  const headers: Record<string, string> = navigation
    ? { accept: 'text/html,application/xhtml+xml', 'sec-fetch-mode': 'navigate', 'sec-fetch-dest': 'document' }
    : { accept: 'application/json', 'sec-fetch-mode': 'cors' };
  const response = await request(`${gateway.url}/sales/`, { headers: { ...headers, authorization: `Bearer ${token}` } });
  const body = await response.body.text();
  const header = (name: string): string | undefined => {
    const value = response.headers[name];
    return Array.isArray(value) ? value.join(', ') : value;
  };
  const contentType = header('content-type') ?? '';
  let error: string | undefined;
  if (contentType.startsWith('application/json')) error = (JSON.parse(body) as { error?: string }).error;
  return {
    status: response.statusCode, error, contentType, wwwAuthenticate: header('www-authenticate') ?? null, retryAfter: header('retry-after') ?? null,
    body, ms: Date.now() - started,
  };
}

async function readiness(gateway: RunningGateway): Promise<{ status: number; issuers: Array<{ ready: boolean; error?: string }> }> {
  const response = await gateway.fetch('/readyz');
  return { status: response.status, issuers: ((await response.json()) as { issuers: Array<{ ready: boolean; error?: string }> }).issuers };
}

/** The 503 a client must treat as "try again", never as "signed out". */
function assertUnavailable(answer: Answer, label: string): void {
  assert.equal(answer.status, 503, `${label}: got ${answer.status} ${answer.body.slice(0, 200)}`);
  assert.equal(answer.error, 'idp_unavailable', label);
  assert.equal(answer.wwwAuthenticate, null, `${label}: no Bearer challenge, so clients do not drop the user's token`);
  assert.equal(answer.retryAfter, '5', `${label}: Retry-After says when to try again`);
}

const validToken = (): Promise<string> => op.sign(op.claims({ jti: randomUUID() }));

describe('the issuer is down', () => {
  it('an issuer down when the gateway starts: the gateway serves, bearer requests get 503 idp_unavailable (JSON for API calls, the HTML page for navigations), never 401 or 500, and tokens work without a restart once the issuer is back', async (t) => {
    await front.down();
    const gateway = await launch(t);
    assert.equal((await gateway.fetch('/healthz')).status, 200, 'the gateway itself is up');
    // /readyz reports the issuer as not ready, with the reason, for as long as it has no keys.
    await eventually(async () => (await readiness(gateway)).issuers[0]?.error !== undefined);
    const notReady = await readiness(gateway);
    assert.equal(notReady.status, 503);
    assert.equal(notReady.issuers[0]?.ready, false);
    assert.match(notReady.issuers[0]?.error ?? '', /discovery failed/);

    const token = await validToken();
    const seen = upstream.requests.length;
    const api = await call(gateway, token);
    assertUnavailable(api, 'an API call');
    assert.match(api.contentType, /^application\/json/);
    // A request waits at most about a second for a fetch it started before giving up.
    assert.ok(api.ms < 3000, `answered in ${api.ms} ms`);
    const page = await call(gateway, token, true);
    assert.equal(page.status, 503, 'a navigation');
    assert.match(page.contentType, /^text\/html/);
    assert.match(page.body, /Temporarily unavailable/);
    assert.match(page.body, /idp_unavailable/);
    const burst = await Promise.all(Array.from({ length: 20 }, async () => call(gateway, await validToken())));
    for (const answer of burst) assertUnavailable(answer, 'a concurrent request');
    assert.equal(upstream.requests.length, seen, 'nothing reached the app');

    // Back up: requests retry the fetch at most once a second (and a background retry backs off from 1 s to 30 s),
    // so the same gateway process serves the token again within a bounded wait.
    await front.up();
    const backAt = Date.now();
    await eventually(async () => (await call(gateway, token)).status === 200, 10_000);
    assert.ok(Date.now() - backAt < 10_000);
    assert.equal((await readiness(gateway)).status, 200, '/readyz is ready again');
    assert.equal((await call(gateway, token, true)).status, 200, 'navigations too');
  });

  it('an issuer that goes down while the gateway runs: tokens signed with its cached keys keep working, even past jwks_cache_seconds; an unknown kid gets 503 idp_unavailable, not 401; a key published meanwhile is accepted once it is back', async (t) => {
    const gateway = await launchReady(t, { jwks_cache_seconds: 1, jwks_refetch_cooldown_seconds: 1 });
    const cached = await validToken();
    assert.equal((await call(gateway, cached)).status, 200, 'verified (and its verdict cached) while the issuer is up');
    const fetchesBefore = op.jwksRequests;

    await front.down();
    // Time passing is the property here: past jwks_cache_seconds and the cooldown, so the next token makes the
    // gateway try (and fail) to refresh its keys — it then keeps verifying with the keys it has.
    await delay(1100);
    assert.equal((await call(gateway, cached)).status, 200, 'a token verified before the outage');
    assert.equal((await call(gateway, await validToken())).status, 200, 'a new token signed with a cached key');
    assert.equal((await readiness(gateway)).status, 200, '/readyz stays ready: the gateway has keys to verify with');

    // The issuer may have rotated to a key the gateway has not seen: the gateway cannot tell, so it says "try again".
    const rotated = await op.sign(op.claims(), { key: 'rsa2' });
    assertUnavailable(await call(gateway, rotated), 'a kid the gateway does not know, while the issuer is down');
    const flood = await Promise.all(Array.from({ length: 50 }, () => op.sign(op.claims(), { key: 'rsa2', kid: `k-${randomUUID()}` })));
    for (const answer of await Promise.all(flood.map((token) => call(gateway, token)))) assertUnavailable(answer, 'an unknown kid');
    assert.equal(op.jwksRequests, fetchesBefore, 'no JWKS request got through while the issuer was down');

    op.publish('rsa2');
    await front.up();
    // The refetch the new kid asks for happens once the 1 s cooldown since the last failed attempt has passed.
    await eventually(async () => (await call(gateway, rotated)).status === 200, 10_000);
    const stillUnknown = await call(gateway, flood[0] as string);
    assert.equal(stillUnknown.status, 401, 'with the issuer back, a kid it does not publish is refused as before');
    assert.equal(stillUnknown.error, 'unknown_key');
    assert.equal((await call(gateway, cached)).status, 200);
  });
});

describe('signing-key rotation', () => {
  it('a new kid is accepted without a restart while the old key is still published, old-kid tokens keep working, and once the old key leaves the JWKS its tokens are refused within jwks_cache_seconds (the next refetch)', async (t) => {
    // How the gateway refetches (tokens/issuer-keys.ts): (a) a token whose kid it does not have makes it refetch, at
    // most once per jwks_refetch_cooldown_seconds; (b) once its keys are older than jwks_cache_seconds the next token
    // makes it refetch (at most once per min(cache, cooldown)), and cached verdicts are not reused with stale keys.
    // A refetch that finds a key withdrawn drops the issuer's cached verdicts.
    const cacheSeconds = 2;
    const gateway = await launchReady(t, { jwks_cache_seconds: cacheSeconds, jwks_refetch_cooldown_seconds: 1 });
    const old = await validToken();
    assert.equal((await call(gateway, old)).status, 200, 'a token signed with the current key (rsa-1)');
    const fetches = op.jwksRequests;

    op.publish('rsa2');
    const fresh = await op.sign(op.claims(), { key: 'rsa2' });
    // Within 1 s of the last fetch the new kid is refused (401 unknown_key); the first request after that refetches.
    await eventually(async () => (await call(gateway, fresh)).status === 200, 5000);
    assert.ok(op.jwksRequests - fetches >= 1 && op.jwksRequests - fetches <= 2, `JWKS refetches for the new kid: ${op.jwksRequests - fetches}`);
    assert.equal((await call(gateway, old)).status, 200, 'an old-kid token verified before the rotation');
    assert.equal((await call(gateway, await validToken())).status, 200, 'a new token signed with the old key, still published');

    op.unpublish('rsa');
    const withdrawnAt = Date.now();
    const fetchesAtWithdrawal = op.jwksRequests;
    await eventually(async () => (await call(gateway, await validToken())).status === 401, (cacheSeconds + 3) * 1000, 50);
    const refusedAfter = Date.now() - withdrawnAt;
    assert.ok(refusedAfter <= (cacheSeconds + 1) * 1000, `old-kid tokens refused ${refusedAfter} ms after the key was withdrawn`);
    assert.ok(op.jwksRequests > fetchesAtWithdrawal, 'the refusal follows a refetch');
    const refused = await call(gateway, await validToken());
    assert.equal(refused.status, 401);
    assert.equal(refused.error, 'unknown_key');
    assert.match(refused.wwwAuthenticate ?? '', /error="invalid_token"/);
    assert.equal((await call(gateway, old)).status, 401, 'a token whose verdict was cached before the withdrawal');
    assert.equal((await call(gateway, fresh)).status, 200, 'tokens signed with the new key');
  });

  it('unknown-kid refetches are rate limited: 200 tokens with random kids get a quick 401 unknown_key, the OP sees at most one JWKS fetch per cooldown, and the gateway keeps serving', async (t) => {
    const cooldownMs = 1000;
    const gateway = await launchReady(t, { jwks_refetch_cooldown_seconds: cooldownMs / 1000 });
    const tokens = await Promise.all(Array.from({ length: 200 }, () => op.sign(op.claims({ jti: randomUUID() }), { kid: `rotated_rsa_${randomUUID()}` })));
    // Time passing is the property: the cooldown since the startup fetch is over, so the first unknown kid refetches.
    await delay(cooldownMs + 100);
    const fetches = op.jwksRequests;
    const started = Date.now();
    const answers: Answer[] = [];
    let next = 0;
    await Promise.all(Array.from({ length: 20 }, async () => {
      while (next < tokens.length) answers.push(await call(gateway, tokens[next++] as string));
    }));
    const elapsed = Date.now() - started;
    const refetches = op.jwksRequests - fetches;
    assert.equal(answers.length, 200);
    for (const answer of answers) {
      assert.equal(answer.status, 401, answer.body);
      assert.equal(answer.error, 'unknown_key');
    }
    assert.ok(refetches >= 1, 'an unknown kid does make the gateway look for a new key');
    assert.ok(refetches <= 2, `${refetches} JWKS fetches for 200 unknown kids in ${elapsed} ms`);
    const slowest = Math.max(...answers.map((answer) => answer.ms));
    assert.ok(slowest < 1000, `slowest answer ${slowest} ms`);
    assert.equal((await gateway.fetch('/healthz')).status, 200);
    assert.equal((await call(gateway, await validToken())).status, 200, 'valid tokens still pass');
  });
});

// ---- The gateway as its own process, for memory measurements that the test's own allocations do not blur. ----

const MAIN_MODULE = fileURLToPath(new URL('../src/cli/main.ts', import.meta.url));

interface GatewayProcess {
  url: string;
  child: ChildProcess;
  stderr: () => string;
  stop(): Promise<void>;
}

/** Runs `embedgate serve` from source (tsx) as a child process with `config`. */
async function spawnGateway(config: Record<string, unknown>): Promise<GatewayProcess> {
  const dir = mkdtempSync(join(tmpdir(), 'embedgate-faults-'));
  const url = `http://127.0.0.1:${await freePort()}`;
  const file = join(dir, 'gateway.json');
  writeFileSync(file, JSON.stringify({ listen: new URL(url).host, public_url: url, data_dir: join(dir, 'data'), log_level: 'error', ...config }));
  const script = `import { main } from ${JSON.stringify(MAIN_MODULE)}; process.exitCode = await main(['serve', '--config', ${JSON.stringify(file)}]);`;
  const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { cwd: REPO_ROOT, stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr?.on('data', (chunk: Buffer) => { stderr += chunk.toString(); });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  return {
    url,
    child,
    stderr: () => stderr,
    stop: async () => {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
      await exited;
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** Reads gauges from the gateway's /metrics. */
async function metrics(pool: Pool): Promise<Map<string, number>> {
  const { body } = await pool.request({ path: '/metrics', method: 'GET' });
  const values = new Map<string, number>();
  for (const line of (await body.text()).split('\n')) {
    const match = /^([a-z_]+)(?:\{[^}]*\})? ([0-9.e+-]+)$/.exec(line);
    if (match !== null) values.set(match[1] as string, (values.get(match[1] as string) ?? 0) + Number(match[2]));
  }
  return values;
}

const MB = 1024 * 1024;

describe('caches under attack', () => {
  it('100,000 distinct bogus tokens and 10,000 distinct valid ones leave the gateway process\'s memory bounded and its verified-token cache at most verified_token_cache_size', async (t) => {
    const cacheLimit = 2000;
    const gateway = await spawnGateway({ ...gatewayConfig(), verified_token_cache_size: cacheLimit });
    t.after(() => gateway.stop());
    const pool = new Pool(gateway.url, { connections: 16, pipelining: 1 });
    t.after(() => pool.close());

    // Signed by the OP's published EC key while the gateway process starts; each has its own sub and jti.
    const valid: string[] = [];
    for (let i = 0; i < 10_000; i += 1) valid.push(await op.sign(op.claims({ sub: `user-${i}`, jti: `v${i}` }), { alg: 'ES256' }));
    await eventually(async () => {
      if (gateway.child.exitCode !== null) throw new Error(`the gateway exited: ${gateway.stderr()}`);
      return (await fetch(`${gateway.url}/readyz`).catch(() => undefined))?.status === 200;
    }, 30_000, 100);

    // Well-formed JWTs from the trusted issuer, each distinct: half name the real EC key with a random signature,
    // half name a kid the issuer never published.
    const now = Math.floor(Date.now() / 1000);
    const bogus = (i: number): string => op.unsigned(
      { alg: 'ES256', kid: i % 2 === 0 ? op.keys.ec.kid : `kid-${i}` },
      { ...op.claims({ sub: `attacker-${i}`, jti: `j${i}` }), iat: now, exp: now + 300 },
      randomBytes(64).toString('base64url'),
    );

    /** Sends `count` requests with the tokens `tokenOf` makes, 64 at a time over 16 keep-alive connections; returns the statuses seen. */
    const send = async (count: number, tokenOf: (i: number) => string): Promise<Map<number, number>> => {
      const statuses = new Map<number, number>();
      let next = 0;
      await Promise.all(Array.from({ length: 64 }, async () => {
        while (next < count) {
          const i = next++;
          const { statusCode, body } = await pool.request({ path: '/sales/', method: 'GET', headers: { authorization: `Bearer ${tokenOf(i)}`, accept: 'application/json' } });
          await body.dump();
          statuses.set(statusCode, (statuses.get(statusCode) ?? 0) + 1);
        }
      }));
      return statuses;
    };

    // Warm up (JIT, connection pools, first allocations) before the baseline.
    await send(2000, (i) => (i % 2 === 0 ? bogus(1_000_000 + i) : (valid[i] as string)));
    const baseline = await metrics(pool);
    const jwksFetches = op.jwksRequests;

    const bogusStatuses = await send(100_000, bogus);
    assert.deepEqual([...bogusStatuses], [[401, 100_000]], 'every bogus token is refused');
    const validStatuses = await send(10_000, (i) => valid[i] as string);
    assert.deepEqual([...validStatuses], [[200, 10_000]], 'every valid token is accepted');
    upstream.clear();

    const loaded = await metrics(pool);
    const cached = loaded.get('embedgate_verified_token_cache_entries');
    assert.ok(cached !== undefined, 'the cache size gauge is published');
    assert.ok(cached <= cacheLimit && cached > 0, `verified-token cache: ${cached} entries, limit ${cacheLimit}`);
    assert.ok(op.jwksRequests - jwksFetches <= 1, 'unknown kids within the 30 s default cooldown cause at most one refetch');

    const growth = (name: string): number => (loaded.get(name) ?? NaN) - (baseline.get(name) ?? NaN);
    const rssGrowth = growth('embedgate_process_resident_memory_bytes');
    const heapGrowth = growth('embedgate_nodejs_heap_size_used_bytes');
    t.diagnostic(`RSS growth ${(rssGrowth / MB).toFixed(1)} MB, heap growth ${(heapGrowth / MB).toFixed(1)} MB, cache ${cached} entries`);
    // Keeping the bogus tokens alone would take over 33 MB (100,000 strings of ~340 bytes), before any Map entry,
    // promise or identity; the bounded cache holds at most 2,000 identities, a few MB. The rest of the headroom is for
    // garbage not yet collected when /metrics is read (observed growth: a few MB).
    assert.ok(heapGrowth < 30 * MB, `heap grew by ${(heapGrowth / MB).toFixed(1)} MB`);
    assert.ok(rssGrowth < 48 * MB, `RSS grew by ${(rssGrowth / MB).toFixed(1)} MB`);

    assert.equal(gateway.child.exitCode, null, `the gateway is still running: ${gateway.stderr()}`);
    const { statusCode, body } = await pool.request({ path: '/sales/', method: 'GET', headers: { authorization: `Bearer ${await validToken()}` } });
    await body.dump();
    assert.equal(statusCode, 200, 'and still serving');
  });
});
