// The identity assertion: verifiable with the gateway's JWKS, scoped to the app, and signed by a key that survives restarts.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { createLocalJWKSet, decodeProtectedHeader, jwtVerify } from 'jose';
import { startGateway, type RunningGateway } from './support/gateway.js';
import { startHostileOp, type HostileOp } from './support/hostile-op.js';
import { startUpstream, type Upstream } from './support/upstream.js';

describe('X-Embedgate-Assertion', () => {
  let op: HostileOp;
  let upstream: Upstream;
  let dataDir: string;

  before(async () => {
    op = await startHostileOp();
    upstream = await startUpstream();
    dataDir = mkdtempSync(join(tmpdir(), 'embedgate-assertion-'));
  });

  after(async () => {
    await upstream.close();
    await op.close();
    rmSync(dataDir, { recursive: true, force: true });
  });

  const config = (): Record<string, unknown> => ({
    public_url: 'https://gw.example.com',
    data_dir: dataDir,
    issuers: [{ issuer: op.issuer, audiences: [op.audience] }],
    apps: [
      { name: 'sales', prefix: '/sales/', upstream: upstream.url, allow: { roles: ['analyst'] } },
      { name: 'hr', prefix: '/hr/', upstream: upstream.url, allow: { roles: ['analyst'] } },
    ],
  });

  async function assertionThrough(gw: RunningGateway, path: string, token: string): Promise<string> {
    upstream.clear();
    assert.equal((await gw.fetch(path, { token })).status, 200);
    const assertion = upstream.last()?.headers['x-embedgate-assertion'];
    assert.equal(typeof assertion, 'string');
    return assertion as string;
  }

  it('apps[].identity_headers sends only the identity headers an app reads, over HTTP and forward-auth; an incoming copy of a left-out header is still dropped', async () => {
    const gw = await startGateway({
      ...config(),
      trusted_proxies: ['127.0.0.1/32'],
      apps: [
        { name: 'sales', prefix: '/sales/', upstream: upstream.url, allow: { roles: ['analyst'] }, identity_headers: ['user'] },
        { name: 'hr', prefix: '/hr/', upstream: upstream.url, allow: { roles: ['analyst'] }, identity_headers: ['assertion'] },
        { name: 'all', prefix: '/all/', upstream: upstream.url, allow: { roles: ['analyst'] } },
      ],
    });
    try {
      const token = await op.sign(op.claims({ roles: ['analyst'], email: 'ana@example.com' }));
      const forged = { 'x-forwarded-groups': 'admin', 'x-embedgate-assertion': 'forged', 'x-forwarded-email': 'boss@example.com' };
      const identityOf = async (path: string): Promise<Record<string, unknown>> => {
        upstream.clear();
        assert.equal((await gw.fetch(path, { token, headers: forged })).status, 200);
        const headers = upstream.last()?.headers ?? {};
        return Object.fromEntries(['x-forwarded-user', 'x-forwarded-groups', 'x-forwarded-email', 'x-embedgate-assertion']
          .filter((name) => headers[name] !== undefined).map((name) => [name, name === 'x-embedgate-assertion' ? 'signed' : headers[name]]));
      };
      assert.deepEqual(await identityOf('/sales/'), { 'x-forwarded-user': 'user-1' }, 'user only; the forged groups, email and assertion are gone');
      const hr = await identityOf('/hr/');
      assert.deepEqual(Object.keys(hr), ['x-embedgate-assertion']);
      assert.notEqual(upstream.last()?.headers['x-embedgate-assertion'], 'forged');
      assert.deepEqual(Object.keys(await identityOf('/all/')).sort(), ['x-embedgate-assertion', 'x-forwarded-email', 'x-forwarded-groups', 'x-forwarded-user']);
      // Forward-auth answers with the same choice.
      const auth = await gw.fetch('/_embedgate/auth', { token, headers: { 'x-forwarded-uri': '/sales/', 'x-forwarded-method': 'GET' } });
      assert.equal(auth.status, 200);
      assert.equal(auth.headers.get('x-forwarded-user'), 'user-1');
      assert.equal(auth.headers.get('x-forwarded-groups'), null);
      assert.equal(auth.headers.get('x-embedgate-assertion'), null);
    } finally {
      await gw.close();
    }
  });

  it('verifies against /_embedgate/jwks.json with aud = app name and carries the identity', async () => {
    const gw = await startGateway(config());
    try {
      const jwks = await (await gw.fetch('/_embedgate/jwks.json')).json() as { keys: Array<Record<string, unknown>> };
      assert.equal(jwks.keys.length, 1);
      assert.equal(jwks.keys[0]?.d, undefined, 'no private key material is published');
      const token = await op.sign(op.claims({ sub: 'alice', email: 'alice@example.com', roles: ['analyst'] }));
      const assertion = await assertionThrough(gw, '/sales/', token);
      const { payload, protectedHeader } = await jwtVerify(assertion, createLocalJWKSet(jwks as never), {
        issuer: 'https://gw.example.com', audience: 'sales', algorithms: ['ES256'], typ: 'embedgate-assertion+jwt',
      });
      assert.equal(protectedHeader.alg, 'ES256');
      assert.equal(payload.sub, 'alice');
      assert.equal(payload.email, 'alice@example.com');
      assert.deepEqual(payload.roles, ['analyst']);
      assert.equal(payload.idp, op.issuer);
      assert.ok((payload.exp as number) - (payload.iat as number) <= 60, 'short-lived by default');
      const other = await assertionThrough(gw, '/hr/', token);
      await assert.rejects(jwtVerify(other, createLocalJWKSet(jwks as never), { audience: 'sales' }), 'an assertion for one app is refused by another');
    } finally {
      await gw.close();
    }
  });

  it('is signed once for a burst of first requests with one token, and each app gets its own', async () => {
    const gw = await startGateway(config());
    try {
      const token = await op.sign(op.claims({ sub: 'burst', roles: ['analyst'] }));
      upstream.clear();
      const statuses = await Promise.all(Array.from({ length: 20 }, (_, i) => gw.fetch(i % 2 === 0 ? '/sales/' : '/hr/', { token }).then((r) => r.status)));
      assert.deepEqual(new Set(statuses), new Set([200]));
      const seen = upstream.requests.map((request) => request.headers['x-embedgate-assertion'] as string);
      assert.equal(seen.length, 20);
      assert.equal(new Set(seen).size, 2, 'one assertion per app, shared by the concurrent requests');
    } finally {
      await gw.close();
    }
  });

  it('never outlives the token it was made from', async () => {
    const gw = await startGateway(config());
    try {
      const exp = Math.floor(Date.now() / 1000) + 20;
      const assertion = await assertionThrough(gw, '/sales/', await op.sign(op.claims({ exp })));
      const { payload } = await jwtVerify(assertion, createLocalJWKSet(await (await gw.fetch('/_embedgate/jwks.json')).json() as never));
      assert.ok((payload.exp as number) <= exp);
    } finally {
      await gw.close();
    }
  });

  it('keeps its signing key across a restart (persisted with mode 0600)', async () => {
    const token = await op.sign(op.claims());
    const first = await startGateway(config());
    const kidBefore = decodeProtectedHeader(await assertionThrough(first, '/sales/', token)).kid;
    await first.close();
    assert.equal(statSync(join(dataDir, 'assertion-key.json')).mode & 0o777, 0o600);
    const second = await startGateway(config());
    try {
      const kidAfter = decodeProtectedHeader(await assertionThrough(second, '/sales/', token)).kid;
      assert.equal(kidAfter, kidBefore);
    } finally {
      await second.close();
    }
  });
});
