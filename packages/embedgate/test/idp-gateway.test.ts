// The embedded IdP and the gateway together: its tokens and roles are honoured, key rotation needs no gateway
// restart, and an IdP restart loses no user, refresh token or key.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { decodeProtectedHeader } from 'jose';
import * as client from 'openid-client';
import { BrowserSession } from './support/browser-session.js';
import { runCli } from './support/cli.js';
import { eventually, startGateway, type RunningGateway } from './support/gateway.js';
import { GATEWAY_AUDIENCE, freePort, startIdp, type RunningIdp } from './support/idp.js';
import { discover, REDIRECT_URI, signIn } from './support/idp-rp.js';
import { startUpstream, type Upstream } from './support/upstream.js';

const PASSWORD = 'correct horse battery staple';
const MACHINE_SECRET = 'machine-secret-0123456789';
const DAVE_PASSWORD = 'dave-password-4567';
const users = [
  { username: 'alice', password: PASSWORD, email: 'alice@example.com', roles: ['admin'] },
  { username: 'bob', password: PASSWORD, email: 'bob@example.com', roles: ['analyst'] },
  { username: 'carol', password: PASSWORD, roles: [] },
];
const clients = [
  { client_id: 'portal', public: true, redirect_uris: [REDIRECT_URI] },
  { client_id: 'reporting-job', client_secret: MACHINE_SECRET, grant_types: ['client_credentials'], roles: ['analyst'] },
];

let upstream: Upstream;
let dataDir: string;

before(async () => {
  upstream = await startUpstream();
  dataDir = mkdtempSync(join(tmpdir(), 'embedgate-idp-gateway-'));
});

after(async () => {
  await upstream.close();
  rmSync(dataDir, { recursive: true, force: true });
});

function gatewayFor(issuer: string, extra: Record<string, unknown> = {}): Promise<RunningGateway> {
  return startGateway({
    issuers: [{ issuer, audiences: [GATEWAY_AUDIENCE], algorithms: ['RS256'], require_typ: 'at+jwt', ...extra }],
    apps: [{
      name: 'sales', prefix: '/sales/', upstream: upstream.url,
      allow: { roles: ['analyst', 'admin'] },
      dash: { callbacks: [{ output: 'payroll.children', allow: { roles: ['admin'] } }] },
    }],
  });
}

/** A user's JWT access token for the gateway, through the real login form. */
async function userToken(issuer: string, username: string, password = PASSWORD): Promise<string> {
  const config = await discover(issuer, 'portal');
  const { tokens } = await signIn(config, new BrowserSession(issuer), { username, password }, {
    scope: 'openid', tokenParameters: { resource: GATEWAY_AUDIENCE },
  });
  return tokens.access_token;
}

async function machineToken(issuer: string): Promise<string> {
  const config = await discover(issuer, 'reporting-job', { secret: MACHINE_SECRET });
  return (await client.clientCredentialsGrant(config, { resource: GATEWAY_AUDIENCE })).access_token;
}

const payroll = { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ output: 'payroll.children', inputs: [] }) };

describe('the gateway honours the IdP', () => {
  let idp: RunningIdp;
  let gw: RunningGateway;

  before(async () => {
    idp = await startIdp({ users, clients });
    gw = await gatewayFor(idp.issuer);
  });
  after(async () => {
    await gw.close();
    await idp.close();
  });

  it('maps user roles: admin runs payroll, analyst sees the app but not payroll, no role is refused', async () => {
    const [alice, bob, carol] = await Promise.all(['alice', 'bob', 'carol'].map((name) => userToken(idp.issuer, name)));
    upstream.clear();
    assert.equal((await gw.fetch('/sales/', { token: alice })).status, 200);
    assert.equal(upstream.last()?.headers['x-forwarded-user'], 'alice');
    assert.equal(upstream.last()?.headers['x-forwarded-email'], 'alice@example.com');
    assert.equal(upstream.last()?.headers['x-forwarded-groups'], 'admin');
    assert.equal((await gw.fetch('/sales/_dash-update-component', { token: alice, ...payroll })).status, 200);
    assert.equal((await gw.fetch('/sales/', { token: bob })).status, 200);
    assert.equal((await gw.fetch('/sales/_dash-update-component', { token: bob, ...payroll })).status, 403);
    assert.equal((await gw.fetch('/sales/', { token: carol })).status, 403);
  });

  it('maps a machine client\'s configured roles', async () => {
    const token = await machineToken(idp.issuer);
    upstream.clear();
    assert.equal((await gw.fetch('/sales/_dash-layout', { token })).status, 200);
    assert.equal(upstream.last()?.headers['x-forwarded-user'], 'reporting-job');
    assert.equal(upstream.last()?.headers['x-forwarded-groups'], 'analyst');
  });
});

describe('signing-key rotation with `embedgate idp rotate-keys`', () => {
  it('a token signed before and one signed after both verify, with no gateway restart', async () => {
    const store = `sqlite:${join(dataDir, 'rotation.db')}`;
    const idp = await startIdp({ users, clients, store, key_check_seconds: 0.1 });
    const gw = await gatewayFor(idp.issuer, { jwks_refetch_cooldown_seconds: 0 });
    try {
      const before = await machineToken(idp.issuer);
      assert.equal((await gw.fetch('/sales/', { token: before })).status, 200);

      const configFile = join(dataDir, 'rotation.yaml');
      writeFileSync(configFile, `idp:\n  issuer: ${idp.issuer}\n  resource: ${GATEWAY_AUDIENCE}\n  store: ${store}\n`);
      const rotated = await runCli(['idp', 'rotate-keys', '--config', configFile]);
      assert.equal(rotated.code, 0, rotated.stderr);
      const newKid = /new signing key (\S+);/.exec(rotated.stdout)?.[1];
      assert.ok(newKid !== undefined, rotated.stdout);

      const jwksUri = `${idp.issuer}/jwks`;
      await eventually(async () => ((await (await fetch(jwksUri)).json()) as { keys: unknown[] }).keys.length === 2);
      const after = await machineToken(idp.issuer);
      assert.equal(decodeProtectedHeader(after).kid, newKid, 'new tokens are signed with the new key');
      assert.notEqual(decodeProtectedHeader(before).kid, newKid);
      assert.equal((await gw.fetch('/sales/', { token: after })).status, 200, 'the gateway fetched the new key by itself');
      assert.equal((await gw.fetch('/sales/', { token: before })).status, 200, 'the old key is still published');
    } finally {
      await gw.close();
      await idp.close();
    }
  });
});

describe('IdP restart', () => {
  it('keeps users (also those added with `embedgate users`), refresh tokens and signing keys', async () => {
    const store = `sqlite:${join(dataDir, 'restart.db')}`;
    const port = await freePort();
    const configFile = join(dataDir, 'restart.yaml');
    writeFileSync(configFile, `idp:\n  issuer: http://127.0.0.1:${port}\n  resource: ${GATEWAY_AUDIENCE}\n  store: ${store}\n`);

    let idp = await startIdp({ users, clients, store }, port);
    const added = await runCli(['users', 'add', 'dave', '--roles', 'analyst', '--email', 'dave@example.com', '--config', configFile], {
      env: { ...process.env, EMBEDGATE_PASSWORD: DAVE_PASSWORD },
    });
    assert.equal(added.code, 0, added.stderr);
    const config = await discover(idp.issuer, 'portal');
    const { tokens } = await signIn(config, new BrowserSession(idp.issuer), { username: 'dave', password: DAVE_PASSWORD }, {
      scope: 'openid offline_access', prompt: 'consent', tokenParameters: { resource: GATEWAY_AUDIENCE },
    });
    assert.ok(tokens.refresh_token !== undefined, 'offline_access gives a refresh token');
    const keysBefore = await (await fetch(`${idp.issuer}/jwks`)).json();
    await idp.close(false);

    idp = await startIdp({ users, clients, store }, port);
    const gw = await gatewayFor(idp.issuer);
    try {
      assert.deepEqual(await (await fetch(`${idp.issuer}/jwks`)).json(), keysBefore, 'the same signing keys');
      assert.equal((await gw.fetch('/sales/', { token: tokens.access_token })).status, 200, 'a token from before the restart verifies');
      const refreshed = await client.refreshTokenGrant(await discover(idp.issuer, 'portal'), tokens.refresh_token, { resource: GATEWAY_AUDIENCE });
      assert.ok(refreshed.refresh_token !== undefined && refreshed.refresh_token !== tokens.refresh_token, 'the refresh token still works and rotates');
      upstream.clear();
      assert.equal((await gw.fetch('/sales/', { token: refreshed.access_token })).status, 200);
      assert.equal(upstream.last()?.headers['x-forwarded-user'], 'dave');
      const again = await userToken(idp.issuer, 'dave', DAVE_PASSWORD);
      assert.equal((await gw.fetch('/sales/', { token: again })).status, 200, 'the CLI-added user can still sign in');
    } finally {
      await gw.close();
      await idp.close();
    }
  });
});
