// Discovery and JWKS handling behind bearer verification (security cases 19–28, 72): keys come only from the discovered
// JWKS, rotate and expire as configured, and every IdP failure fails closed with 503 — never 200, never 500.
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, beforeEach, describe, it, type TestContext } from 'node:test';
import { setTimeout as delay } from 'node:timers/promises';
import { eventually, startGateway, type RunningGateway } from './support/gateway.js';
import { startHostileOp, type FailureMode, type HostileOp } from './support/hostile-op.js';
import { startUpstream, type Upstream } from './support/upstream.js';

let op: HostileOp;
let upstream: Upstream;

before(async () => {
  [op, upstream] = await Promise.all([startHostileOp(), startUpstream()]);
});

after(async () => {
  await upstream.close();
  await op.close();
});

/** Every test starts from an OP that serves its default discovery document and keys. */
beforeEach(() => {
  op.setDiscovery(null);
  op.setDiscoveryFailure(null);
  op.setJwks(null);
  op.setJwksFailure(null);
  op.setJwksPath('/jwks');
  for (const name of ['rsa', 'rsaPss', 'ec', 'ed'] as const) op.publish(name);
  op.unpublish('rsa2');
  op.unpublish('rsa1024');
});

/** Starts a gateway trusting `op` (with `issuer` settings on top), closed when the test ends. */
async function launch(t: TestContext, issuer: Record<string, unknown> = {}): Promise<RunningGateway> {
  const gateway = await startGateway({
    issuers: [{ issuer: op.issuer, audiences: [op.audience], ...issuer }],
    apps: [{ name: 'sales', prefix: '/sales/', upstream: upstream.url, allow: { roles: ['analyst', 'admin'] } }],
  });
  t.after(() => gateway.close());
  return gateway;
}

async function launchReady(t: TestContext, issuer: Record<string, unknown> = {}): Promise<RunningGateway> {
  const gateway = await launch(t, issuer);
  await eventually(async () => (await gateway.fetch('/readyz')).status === 200);
  return gateway;
}

interface Readiness {
  status: string;
  issuers: Array<{ issuer: string; ready: boolean; error?: string }>;
}

async function readiness(gateway: RunningGateway): Promise<{ status: number; body: Readiness }> {
  const response = await gateway.fetch('/readyz');
  return { status: response.status, body: await response.json() as Readiness };
}

/** Sends `token` to /sales/ and asserts the status and error code; only a 200 may reach the app. */
async function assertOutcome(gateway: RunningGateway, token: string, status: number, error: string | undefined, label: string): Promise<void> {
  const seen = upstream.requests.length;
  const response = await gateway.fetch('/sales/', { token });
  const text = await response.text();
  assert.equal(response.status, status, `${label}: got ${response.status} ${text}`);
  if (error !== undefined) assert.equal((JSON.parse(text) as { error: string }).error, error, label);
  assert.equal(upstream.requests.length, seen + (status === 200 ? 1 : 0), `${label}: the app sees only accepted requests`);
}

const validToken = (): Promise<string> => op.sign(op.claims());

describe('19, 20: discovery', () => {
  const rigged: Array<[string, () => Record<string, unknown>, RegExp]> = [
    ['names another issuer', () => ({ issuer: 'https://example.com' }), /https:\/\/example\.com/],
    ['adds a trailing slash to the issuer', () => ({ issuer: `${op.issuer}/` }), /names issuer/],
    ['points jwks_uri at a file', () => ({ jwks_uri: 'file:///etc/passwd' }), /jwks_uri/],
  ];
  for (const [label, overrides, problem] of rigged) {
    it(`19: a discovery document that ${label} → the gateway serves, /readyz 503 names the problem, tokens → 503`, async (t) => {
      op.setDiscovery(overrides());
      const jwksFetches = op.jwksRequests;
      const gateway = await launch(t);
      await eventually(async () => (await readiness(gateway)).body.issuers[0]?.error !== undefined);
      const ready = await readiness(gateway);
      assert.equal(ready.status, 503);
      assert.match(ready.body.issuers[0]?.error ?? '', problem);
      assert.equal((await gateway.fetch('/healthz')).status, 200, 'the gateway itself is up');
      await assertOutcome(gateway, await validToken(), 503, 'idp_unavailable', 'a valid token');
      assert.equal(op.jwksRequests, jwksFetches, 'no keys are fetched from a refused provider');
    });
  }

  it('20: the JWKS is fetched from the jwks_uri that discovery names', async (t) => {
    const jwksPath = `/keys/${randomUUID()}`;
    op.setJwksPath(jwksPath);
    const seen = op.requests.length;
    const gateway = await launchReady(t);
    await assertOutcome(gateway, await validToken(), 200, undefined, 'a valid token');
    const paths = op.requests.slice(seen).map((request) => request.path);
    assert.ok(paths.includes(jwksPath), 'the discovered jwks_uri was used');
    assert.ok(!paths.includes('/jwks'), 'no guessed JWKS location was tried');
  });
});

describe('21, 23, 27, 28: which published keys verify tokens', () => {
  it('21: a newly published kid is accepted after exactly one extra JWKS fetch; another unknown kid within the cooldown fetches nothing', async (t) => {
    const gateway = await launchReady(t, { jwks_refetch_cooldown_seconds: 1 });
    const fetches = op.jwksRequests;
    op.publish('rsa2');
    const rotated = await op.sign(op.claims(), { key: 'rsa2' });
    await eventually(async () => (await gateway.fetch('/sales/', { token: rotated })).status === 200);
    assert.equal(op.jwksRequests, fetches + 1, 'one refetch, however often the new kid was presented');
    const unknown = await op.sign(op.claims(), { key: 'rsa2', kid: `rotated_rsa_${Date.now()}` });
    await assertOutcome(gateway, unknown, 401, 'unknown_key', 'a second unknown kid');
    assert.equal(op.jwksRequests, fetches + 1, 'no refetch within the cooldown');
  });

  it('23: unparseable and foreign JWKS entries next to the real key are ignored', async (t) => {
    op.setJwks({
      keys: [
        { kty: 'FOO', kid: 'foo', x: 'junk' },
        { kty: 'AKP', kid: 'akp', alg: 'ML-DSA-44', pub: '%%% not base64url %%%' },
        { kty: 'RSA', kid: 'broken-rsa', n: '%%', e: 'AQAB' },
        { kty: 'EC', kid: 'broken-ec', crv: 'P-999', x: 'a', y: 'b' },
        null, 'junk', 42, [], { kid: 'no-kty' },
        op.keys.rsa.publicJwk,
      ],
    });
    const gateway = await launchReady(t);
    await assertOutcome(gateway, await validToken(), 200, undefined, 'a token signed with the real key');
    for (const kid of ['broken-rsa', 'broken-ec', 'foo', 'akp']) {
      await assertOutcome(gateway, await op.sign(op.claims(), { kid }), 401, undefined, `a token naming the junk key ${kid}`);
    }
  });

  it('27: a kid that points at a key for encryption → 401', async (t) => {
    const jwk = op.keys.rsa2.publicJwk;
    op.setJwks({
      keys: [
        { ...jwk, kid: 'rsa2-sig' },
        { ...jwk, kid: 'rsa2-use-enc', use: 'enc' },
        { ...jwk, kid: 'rsa2-alg-oaep', use: undefined, alg: 'RSA-OAEP' },
        { ...jwk, kid: 'rsa2-ops-encrypt', use: undefined, key_ops: ['encrypt'] },
      ],
    });
    const gateway = await launchReady(t);
    await assertOutcome(gateway, await op.sign(op.claims(), { key: 'rsa2', kid: 'rsa2-sig' }), 200, undefined, 'the same key published for signing');
    for (const kid of ['rsa2-use-enc', 'rsa2-alg-oaep', 'rsa2-ops-encrypt']) {
      await assertOutcome(gateway, await op.sign(op.claims(), { key: 'rsa2', kid }), 401, 'unknown_key', kid);
    }
  });

  it('28: a published RSA-1024 key, and a token signed with it → 401', async (t) => {
    op.publish('rsa1024');
    const gateway = await launchReady(t);
    await assertOutcome(gateway, await op.sign(op.claims(), { key: 'rsa1024' }), 401, 'weak_key', 'RSA-1024');
    await assertOutcome(gateway, await validToken(), 200, undefined, 'RSA-2048 from the same JWKS');
  });
});

describe('24: keys the IdP removes', () => {
  // Time passing is the property under test: the JWKS cache lives 1 s, and the waits are just past it.
  const pastTtl = (): Promise<void> => delay(1100);

  it('24: after jwks_cache_seconds, a token signed with a dropped key → 401; the other keys still work', async (t) => {
    const gateway = await launchReady(t, { jwks_cache_seconds: 1, jwks_refetch_cooldown_seconds: 1 });
    op.unpublish('rsa');
    await pastTtl();
    await assertOutcome(gateway, await validToken(), 401, 'unknown_key', 'RSA token after the key was dropped');
    await assertOutcome(gateway, await op.sign(op.claims(), { alg: 'ES256' }), 200, undefined, 'EC token');
  });

  it('24: a token accepted and cached before its key was dropped → 401 after jwks_cache_seconds', async (t) => {
    const gateway = await launchReady(t, { jwks_cache_seconds: 1, jwks_refetch_cooldown_seconds: 1 });
    const token = await validToken();
    await assertOutcome(gateway, token, 200, undefined, 'before the key was dropped');
    op.unpublish('rsa');
    await pastTtl();
    await assertOutcome(gateway, token, 401, undefined, 'the cached token after the key was dropped');
  });

  it('24: jwks_cache_seconds holds with the default refetch cooldown', async (t) => {
    const gateway = await launchReady(t, { jwks_cache_seconds: 1 });
    op.unpublish('rsa');
    await pastTtl();
    await assertOutcome(gateway, await validToken(), 401, 'unknown_key', 'RSA token after the key was dropped');
  });
});

describe('25, 72: IdP failures fail closed', () => {
  const failures: Array<['discovery' | 'jwks', Exclude<FailureMode, null>]> = [
    ['jwks', 'status500'], ['jwks', 'html'], ['jwks', 'invalid-json'], ['jwks', 'hang'],
    ['discovery', 'status500'], ['discovery', 'hang'],
  ];
  const setFailure = (where: 'discovery' | 'jwks', mode: FailureMode): void => {
    if (where === 'jwks') op.setJwksFailure(mode);
    else op.setDiscoveryFailure(mode);
  };
  for (const [where, mode] of failures) {
    it(`25: ${where} answering ${mode} at start → 503 idp_unavailable; the gateway recovers by itself once the IdP is fixed`, async (t) => {
      setFailure(where, mode);
      const gateway = await launch(t, { http_timeout_ms: 300 });
      await assertOutcome(gateway, await validToken(), 503, 'idp_unavailable', 'a valid token while the IdP fails');
      const broken = await readiness(gateway);
      assert.equal(broken.status, 503);
      assert.equal(typeof broken.body.issuers[0]?.error, 'string', '/readyz says what is wrong');
      setFailure(where, null);
      await eventually(async () => (await readiness(gateway)).status === 200, 10_000);
      await assertOutcome(gateway, await validToken(), 200, undefined, 'a valid token after recovery');
    });
  }

  it('25: a JWKS that breaks after start keeps the loaded keys, and an unknown kid gets 503 while the JWKS cannot be read (never 401: the key may be new)', async (t) => {
    const gateway = await launchReady(t, { jwks_refetch_cooldown_seconds: 0 });
    op.setJwksFailure('html');
    const fetches = op.jwksRequests;
    await assertOutcome(gateway, await op.sign(op.claims(), { key: 'rsa2' }), 503, 'idp_unavailable', 'an unpublished key while the JWKS is broken');
    assert.ok(op.jwksRequests > fetches, 'the unknown kid made the gateway try the broken JWKS');
    await assertOutcome(gateway, await validToken(), 200, undefined, 'a token signed with a loaded key');
  });

  const unusable: Array<[string, object]> = [
    ['zero keys', { keys: [] }],
    ['only unusable keys', { keys: [{ kty: 'FOO', kid: 'foo' }, { kty: 'oct', kid: 'empty-hmac', k: '' }, { kty: 'RSA', kid: 'private', n: 'AQAB', e: 'AQAB', d: 'AQAB' }] }],
    ['a null key', { keys: [null] }],
    ['no keys member', {}],
  ];
  for (const [label, document] of unusable) {
    it(`72: a JWKS with ${label} → the gateway serves, valid tokens → 503 idp_unavailable, forged ones → 401, /readyz 503`, async (t) => {
      op.setJwks(document);
      const gateway = await launch(t);
      await eventually(async () => (await readiness(gateway)).body.issuers[0]?.error !== undefined);
      assert.equal((await readiness(gateway)).status, 503);
      assert.equal((await gateway.fetch('/healthz')).status, 200, 'the gateway itself is up');
      for (const alg of ['RS256', 'ES256']) {
        await assertOutcome(gateway, await op.sign(op.claims(), { alg }), 503, 'idp_unavailable', `a valid ${alg} token`);
      }
      await assertOutcome(gateway, op.hmac({ kid: 'empty-hmac' }, op.claims(), ''), 401, undefined, 'HS256 with an empty secret');
      await assertOutcome(gateway, op.unsigned({ alg: 'none' }, op.claims(), 'c2ln'), 401, undefined, 'alg none');
    });
  }
});
