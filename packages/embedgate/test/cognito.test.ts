// Amazon Cognito's access tokens, as the `cognito` preset reads them: no `aud` claim, the app client in `client_id`,
// `token_use: "access"`, groups in `cognito:groups`. They are accepted for the configured app clients; Cognito ID
// tokens (and anything without token_use "access") are not access tokens and are refused.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { eventually, startGateway, type RunningGateway } from './support/gateway.js';
import { startHostileOp, type HostileOp } from './support/hostile-op.js';
import { startUpstream, type Upstream } from './support/upstream.js';

const APP_CLIENT = '4example3clientid5abc6def7';

let op: HostileOp;
let upstream: Upstream;
let gw: RunningGateway;

before(async () => {
  op = await startHostileOp();
  upstream = await startUpstream();
  gw = await startGateway({
    issuers: [{ issuer: op.issuer, audiences: [APP_CLIENT], preset: 'cognito' }],
    apps: [{ name: 'sales', prefix: '/sales/', upstream: upstream.url, allow: { roles: ['analyst'] } }],
  });
  await eventually(async () => (await gw.fetch('/readyz')).status === 200);
});

after(async () => {
  await gw?.close();
  await upstream?.close();
  await op?.close();
});

/** A Cognito user-pool access token: no aud, client_id, token_use access, groups in cognito:groups. */
function cognitoAccess(overrides: Record<string, unknown> = {}): Record<string, unknown> {
  return op.claims({
    aud: undefined, roles: undefined, client_id: APP_CLIENT, token_use: 'access', 'cognito:groups': ['analyst'],
    scope: 'openid email', username: 'ana', ...overrides,
  });
}

async function call(claims: Record<string, unknown>): Promise<{ status: number; error: string | undefined }> {
  const response = await gw.fetch('/sales/', { token: await op.sign(claims) });
  const body = response.status === 200 ? {} : await response.json() as { error?: string };
  return { status: response.status, error: body.error };
}

describe('cognito preset', () => {
  it('accepts a Cognito access token for a configured app client, with its cognito:groups as roles', async () => {
    const before = upstream.requests.length;
    assert.deepEqual(await call(cognitoAccess()), { status: 200, error: undefined });
    assert.equal(upstream.requests[before]?.headers['x-forwarded-groups'], 'analyst');
  });

  it('refuses an access token of another app client, or with a client_id that is not a string', async () => {
    assert.deepEqual(await call(cognitoAccess({ client_id: 'another-client' })), { status: 401, error: 'invalid_audience' });
    assert.deepEqual(await call(cognitoAccess({ client_id: [APP_CLIENT] })), { status: 401, error: 'invalid_audience' });
    assert.deepEqual(await call(cognitoAccess({ client_id: undefined })), { status: 401, error: 'invalid_audience' });
  });

  it('refuses Cognito ID tokens and tokens that do not say token_use "access"', async () => {
    const idToken = cognitoAccess({ aud: APP_CLIENT, client_id: undefined, token_use: 'id', email: 'ana@example.com' });
    assert.deepEqual(await call(idToken), { status: 401, error: 'invalid_token_type' });
    assert.deepEqual(await call(cognitoAccess({ token_use: undefined })), { status: 401, error: 'invalid_token_type' });
    assert.deepEqual(await call(cognitoAccess({ token_use: 'refresh' })), { status: 401, error: 'invalid_token_type' });
  });

  it('still checks aud when a token has one: it must name a configured audience, whatever client_id says', async () => {
    assert.deepEqual(await call(cognitoAccess({ aud: APP_CLIENT })), { status: 200, error: undefined });
    assert.deepEqual(await call(cognitoAccess({ aud: 'https://elsewhere.example' })), { status: 401, error: 'invalid_audience' });
  });

  it('keeps every other check: issuer, expiry, signature', async () => {
    assert.deepEqual(await call(cognitoAccess({ exp: Math.floor(Date.now() / 1000) - 60 })), { status: 401, error: 'token_expired' });
    assert.deepEqual(await call(cognitoAccess({ iss: 'https://cognito-idp.eu-west-1.amazonaws.com/other' })), { status: 401, error: 'unknown_issuer' });
  });
});
