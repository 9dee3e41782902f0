// The embedded IdP on a real (throwaway) PostgreSQL store: tokens and sign-in work, a restart on the same database
// keeps keys, refresh tokens and users, and `embedgate idp rotate-keys` (a separate process, bin → dist, so build
// first; `npm test` does) adds a key that the running IdP starts publishing and signing with.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { decodeProtectedHeader } from 'jose';
import * as client from 'openid-client';
import pg from 'pg';
import { BrowserSession } from './support/browser-session.js';
import { runCli } from './support/cli.js';
import { eventually } from './support/gateway.js';
import { freePort, GATEWAY_AUDIENCE, startIdp, type RunningIdp } from './support/idp.js';
import { ALICE, discover, REDIRECT_URI, signIn, verifyAccessToken } from './support/idp-rp.js';
import { startPostgres, type RunningPostgres } from './support/postgres.js';

const MACHINE_SECRET = 'postgres-machine-secret-0123456789';
const DAVE_PASSWORD = 'dave-postgres-passphrase-5e2d';
const CLIENTS = [
  { client_id: 'portal', public: true, redirect_uris: [REDIRECT_URI] },
  { client_id: 'reporting-job', client_secret: MACHINE_SECRET, grant_types: ['client_credentials'], roles: ['analyst'] },
];

interface Jwks {
  keys: { kid: string }[];
}

let postgres: RunningPostgres;
let dir: string;
let port: number;
let configFile: string;

/** The IdP section shared by every start: the same database, clients and seed user. */
function idpSection(): Record<string, unknown> {
  return { store: postgres.url, clients: CLIENTS, users: [ALICE], key_check_seconds: 0.1 };
}

async function jwks(issuer: string): Promise<Jwks> {
  const response = await fetch(`${issuer}/jwks`);
  assert.equal(response.status, 200);
  return await response.json() as Jwks;
}

async function machineToken(issuer: string): Promise<string> {
  const config = await discover(issuer, 'reporting-job', { secret: MACHINE_SECRET });
  const tokens = await client.clientCredentialsGrant(config, { resource: GATEWAY_AUDIENCE });
  const { payload } = await verifyAccessToken(config, tokens.access_token);
  assert.equal(payload.client_id, 'reporting-job');
  assert.deepEqual(payload.roles, ['analyst']);
  return tokens.access_token;
}

/** A user's sign-in through the login form, with offline access so that a refresh token comes back. */
async function userSignIn(issuer: string, user: { username: string; password: string }): Promise<client.TokenEndpointResponse> {
  const config = await discover(issuer, 'portal');
  const { tokens } = await signIn(config, new BrowserSession(issuer), user, {
    scope: 'openid offline_access', prompt: 'consent', tokenParameters: { resource: GATEWAY_AUDIENCE },
  });
  assert.equal((await verifyAccessToken(config, tokens.access_token)).payload.sub, user.username);
  return tokens;
}

async function usernamesInDatabase(): Promise<string[]> {
  const db = new pg.Client({ connectionString: postgres.url });
  await db.connect();
  try {
    return (await db.query<{ username: string }>('SELECT username FROM users ORDER BY username')).rows.map((row) => row.username);
  } finally {
    await db.end();
  }
}

before(async () => {
  postgres = await startPostgres();
  dir = mkdtempSync(join(tmpdir(), 'embedgate-idp-postgres-'));
  port = await freePort();
  configFile = join(dir, 'idp.yaml');
  writeFileSync(configFile, [
    'idp:',
    `  issuer: http://127.0.0.1:${port}`,
    `  resource: ${GATEWAY_AUDIENCE}`,
    `  store: ${JSON.stringify(postgres.url)}`,
    '',
  ].join('\n'));
});

after(async () => {
  await postgres?.stop();
  if (dir !== undefined) rmSync(dir, { recursive: true, force: true });
});

describe('embedded IdP on PostgreSQL', () => {
  let idp: RunningIdp | undefined;
  let beforeRestart: client.TokenEndpointResponse | undefined;
  let keysBeforeRestart: Jwks | undefined;

  after(async () => {
    await idp?.close();
  });

  it('issues a client-credentials token and signs a user in, keeping users in the database', async () => {
    idp = await startIdp(idpSection(), port);
    await machineToken(idp.issuer);
    beforeRestart = await userSignIn(idp.issuer, ALICE);
    assert.ok(beforeRestart.refresh_token !== undefined, 'offline_access with consent gives a refresh token');
    assert.deepEqual(await usernamesInDatabase(), ['alice'], 'the seed user is in PostgreSQL, not in a SQLite file');
    keysBeforeRestart = await jwks(idp.issuer);
    assert.equal(keysBeforeRestart.keys.length, 1);
  });

  it('manages users with `embedgate users` on the same database while the IdP runs', async () => {
    assert.ok(idp !== undefined);
    const env = Object.fromEntries(Object.entries(process.env).filter(([name]) => !name.startsWith('EMBEDGATE_')));
    const added = await runCli(['users', 'add', 'dave', '--roles', 'viewer', '--config', configFile], { env: { ...env, EMBEDGATE_PASSWORD: DAVE_PASSWORD } });
    assert.equal(added.code, 0, added.stderr);
    const listed = await runCli(['users', 'list', '--config', configFile], { env });
    assert.equal(listed.code, 0, listed.stderr);
    assert.equal(listed.stdout, `alice\t${ALICE.email}\t${ALICE.roles.join(',')}\ndave\t-\tviewer\n`);
    await userSignIn(idp.issuer, { username: 'dave', password: DAVE_PASSWORD });
  });

  it('after a restart on the same database and port: the same JWKS, the old refresh token refreshes, users sign in', async () => {
    assert.ok(idp !== undefined && beforeRestart?.refresh_token !== undefined && keysBeforeRestart !== undefined);
    await idp.close();
    idp = undefined;
    idp = await startIdp(idpSection(), port);

    assert.deepEqual(await jwks(idp.issuer), keysBeforeRestart, 'the signing keys came from the database');
    const config = await discover(idp.issuer, 'portal');
    await verifyAccessToken(config, beforeRestart.access_token); // a token from before the restart still verifies
    const refreshed = await client.refreshTokenGrant(config, beforeRestart.refresh_token, { resource: GATEWAY_AUDIENCE });
    assert.equal((await verifyAccessToken(config, refreshed.access_token)).payload.sub, 'alice');
    assert.ok(refreshed.refresh_token !== undefined && refreshed.refresh_token !== beforeRestart.refresh_token, 'it rotates');
    await userSignIn(idp.issuer, ALICE);
    await userSignIn(idp.issuer, { username: 'dave', password: DAVE_PASSWORD });
  });

  it('`embedgate idp rotate-keys` against the same database adds a key the running IdP publishes and signs with', async () => {
    assert.ok(idp !== undefined && keysBeforeRestart !== undefined);
    const running = idp;
    const oldKid = keysBeforeRestart.keys[0]?.kid;
    const before = await machineToken(running.issuer);
    assert.equal(decodeProtectedHeader(before).kid, oldKid);

    const rotated = await runCli(['idp', 'rotate-keys', '--config', configFile]);
    assert.equal(rotated.code, 0, rotated.stderr);
    const newKid = /new signing key (\S+);/.exec(rotated.stdout)?.[1];
    assert.ok(newKid !== undefined && newKid !== oldKid, rotated.stdout);

    await eventually(async () => (await jwks(running.issuer)).keys.some((key) => key.kid === newKid));
    assert.deepEqual((await jwks(running.issuer)).keys.map((key) => key.kid).sort(), [oldKid, newKid].sort(), 'the old key is still published');
    const after = await machineToken(running.issuer);
    assert.equal(decodeProtectedHeader(after).kid, newKid, 'new tokens are signed with the new key');
    await verifyAccessToken(await discover(running.issuer, 'portal'), before); // and the old token still verifies
  });
});
