// The embedded IdP driven by an independent relying party (openid-client) and a tiny browser through its real pages.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { decodeJwt, decodeProtectedHeader, generateKeyPair, SignJWT } from 'jose';
import * as client from 'openid-client';
import { rotateSigningKey } from '../src/idp/signing-keys.js';
import { openIdpStore } from '../src/idp/store/open.js';
import { BrowserSession } from './support/browser-session.js';
import { eventually } from './support/gateway.js';
import { freePort, GATEWAY_AUDIENCE, startIdp, type RunningIdp } from './support/idp.js';
import {
  ALICE, assertNoSecretsLogged, BOB, discover, oauthError, POST_LOGOUT_URI, REDIRECT_URI, signIn, verifyAccessToken,
} from './support/idp-rp.js';

const DEVICE_GRANT = 'urn:ietf:params:oauth:grant-type:device_code';
const WEB_SECRET = 'web-app-secret-0123456789';
const JOB_SECRET = 'reporting-job-secret-0123456789';

describe('embedded IdP: code + PKCE, tokens, refresh, client credentials, introspection, revocation', () => {
  let op: RunningIdp;

  before(async () => {
    op = await startIdp({
      clients: [
        { client_id: 'portal', public: true, redirect_uris: [REDIRECT_URI], post_logout_redirect_uris: [POST_LOGOUT_URI] },
        { client_id: 'web', client_secret: WEB_SECRET, redirect_uris: [REDIRECT_URI] },
        { client_id: 'userinfo-rp', client_secret: WEB_SECRET, redirect_uris: [REDIRECT_URI], userinfo_tokens: true },
        { client_id: 'reporting-job', client_secret: JOB_SECRET, grant_types: ['client_credentials'], roles: ['analyst', 'reporter'] },
        { client_id: 'form-job', client_secret: JOB_SECRET, token_endpoint_auth_method: 'client_secret_post', grant_types: ['client_credentials'] },
      ],
      users: [ALICE, BOB],
    });
  });

  after(async () => {
    await op.close();
  });

  it('publishes a discovery document for code + PKCE (S256), device code and client credentials', async () => {
    const response = await fetch(`${op.issuer}/.well-known/openid-configuration`);
    assert.equal(response.status, 200);
    const doc = await response.json() as Record<string, unknown>;
    assert.equal(doc.issuer, op.issuer);
    for (const [key, path] of [
      ['authorization_endpoint', '/auth'], ['token_endpoint', '/token'], ['jwks_uri', '/jwks'], ['userinfo_endpoint', '/me'],
      ['introspection_endpoint', '/token/introspection'], ['revocation_endpoint', '/token/revocation'],
      ['end_session_endpoint', '/session/end'], ['device_authorization_endpoint', '/device/auth'],
    ] as const) {
      assert.equal(doc[key], `${op.issuer}${path}`, key);
    }
    assert.deepEqual(doc.code_challenge_methods_supported, ['S256']);
    assert.deepEqual(doc.response_types_supported, ['code']);
    const grants = doc.grant_types_supported as string[];
    for (const grant of ['authorization_code', 'refresh_token', 'client_credentials', DEVICE_GRANT]) {
      assert.ok(grants.includes(grant), `grant_types_supported has ${grant}`);
    }
    assert.equal(doc.backchannel_logout_supported, true);
    const config = await discover(op.issuer, 'portal');
    assert.equal(config.serverMetadata().issuer, op.issuer);
  });

  it('signs a user in with code + PKCE through the login form (public client) and issues verified tokens', async () => {
    const config = await discover(op.issuer, 'portal');
    const browser = new BrowserSession(op.issuer);
    const { tokens } = await signIn(config, browser, ALICE, {
      scope: 'openid profile email roles offline_access read', prompt: 'consent', tokenParameters: { resource: GATEWAY_AUDIENCE },
    });
    const claims = tokens.claims();
    assert.ok(claims !== undefined);
    assert.equal(claims.iss, op.issuer);
    assert.equal(claims.aud, 'portal');
    assert.equal(claims.sub, 'alice');
    assert.equal(claims.email, ALICE.email);
    assert.deepEqual(claims.roles, ALICE.roles);
    assert.ok(tokens.refresh_token, 'offline_access with prompt=consent gives a refresh token');

    const { payload, protectedHeader } = await verifyAccessToken(config, tokens.access_token);
    assert.equal(protectedHeader.typ, 'at+jwt');
    assert.equal(payload.aud, GATEWAY_AUDIENCE);
    assert.equal(payload.sub, 'alice');
    assert.equal(payload.client_id, 'portal');
    assert.deepEqual(payload.roles, ALICE.roles);
    assert.equal(payload.scope, 'read');
    assert.ok((payload.exp as number) - (payload.iat as number) <= 300);
  });

  it('signs a user in with a confidential client (client_secret_basic) and PKCE', async () => {
    const config = await discover(op.issuer, 'web', { secret: WEB_SECRET });
    const browser = new BrowserSession(op.issuer);
    const { tokens } = await signIn(config, browser, BOB, { tokenParameters: { resource: GATEWAY_AUDIENCE } });
    const claims = tokens.claims();
    assert.equal(claims?.sub, 'bob');
    assert.equal(claims?.aud, 'web');
    assert.deepEqual(claims?.roles, BOB.roles);
    const { payload } = await verifyAccessToken(config, tokens.access_token);
    assert.deepEqual(payload.roles, BOB.roles);
    assert.equal(payload.client_id, 'web');
  });

  it('gives a client that asks for no resource a JWT for the gateway (code, refresh, client credentials), with the user in the ID token', async () => {
    const portal = await discover(op.issuer, 'portal');
    const { tokens } = await signIn(portal, new BrowserSession(op.issuer), ALICE, { scope: 'openid profile email offline_access', prompt: 'consent' });
    const { payload } = await verifyAccessToken(portal, tokens.access_token);
    assert.equal(payload.aud, GATEWAY_AUDIENCE);
    assert.deepEqual(payload.roles, ALICE.roles);
    assert.equal(tokens.claims()?.email, ALICE.email, 'the ID token carries what userinfo would');
    assert.equal(tokens.claims()?.name, ALICE.name);
    const refreshed = await client.refreshTokenGrant(portal, tokens.refresh_token as string);
    assert.equal((await verifyAccessToken(portal, refreshed.access_token)).payload.aud, GATEWAY_AUDIENCE);

    const job = await discover(op.issuer, 'reporting-job', { secret: JOB_SECRET });
    const machine = await verifyAccessToken(job, (await client.clientCredentialsGrant(job)).access_token);
    assert.equal(machine.payload.aud, GATEWAY_AUDIENCE);
    assert.deepEqual(machine.payload.roles, ['analyst', 'reporter']);
  });

  it('answers userinfo for a client registered with userinfo_tokens that asks for no resource', async () => {
    const config = await discover(op.issuer, 'userinfo-rp', { secret: WEB_SECRET });
    const browser = new BrowserSession(op.issuer);
    const { tokens } = await signIn(config, browser, ALICE);
    assert.throws(() => decodeJwt(tokens.access_token), 'a userinfo token is opaque, not a JWT for the gateway');
    const info = await client.fetchUserInfo(config, tokens.access_token, 'alice');
    assert.equal(info.sub, 'alice');
    assert.equal(info.email, ALICE.email);
    assert.deepEqual(info.roles, ALICE.roles);
  });

  it('client credentials: the token carries the client roles for the resource; a wrong secret is invalid_client', async () => {
    const config = await discover(op.issuer, 'reporting-job', { secret: JOB_SECRET });
    const tokens = await client.clientCredentialsGrant(config, { resource: GATEWAY_AUDIENCE, scope: 'read' });
    const { payload } = await verifyAccessToken(config, tokens.access_token);
    assert.equal(payload.aud, GATEWAY_AUDIENCE);
    assert.equal(payload.client_id, 'reporting-job');
    assert.deepEqual(payload.roles, ['analyst', 'reporter']);

    const wrong = await discover(op.issuer, 'reporting-job', { secret: 'not-the-secret' });
    const failure = await oauthError(client.clientCredentialsGrant(wrong, { resource: GATEWAY_AUDIENCE }));
    assert.equal(failure.error, 'invalid_client');
    assert.equal(failure.status, 401);
  });

  it('client credentials with the secret in the form body, for a client registered for client_secret_post', async () => {
    const post = await client.discovery(new URL(op.issuer), 'form-job', undefined, client.ClientSecretPost(JOB_SECRET), { execute: [client.allowInsecureRequests] });
    assert.equal((await verifyAccessToken(post, (await client.clientCredentialsGrant(post)).access_token)).payload.client_id, 'form-job');
    const wrong = await client.discovery(new URL(op.issuer), 'form-job', undefined, client.ClientSecretPost('not-the-secret'), { execute: [client.allowInsecureRequests] });
    assert.equal((await oauthError(client.clientCredentialsGrant(wrong))).error, 'invalid_client');
  });

  it('rotates refresh tokens; reusing a rotated one fails and revokes the whole grant', async () => {
    const config = await discover(op.issuer, 'portal');
    const browser = new BrowserSession(op.issuer);
    const { tokens } = await signIn(config, browser, ALICE, { scope: 'openid offline_access read', prompt: 'consent' });
    const first = tokens.refresh_token as string;
    assert.ok(first);

    const second = await client.refreshTokenGrant(config, first, { resource: GATEWAY_AUDIENCE });
    assert.ok(second.refresh_token);
    assert.notEqual(second.refresh_token, first, 'a refresh returns a new refresh token');
    const { payload } = await verifyAccessToken(config, second.access_token);
    assert.equal(payload.sub, 'alice');
    assert.deepEqual(payload.roles, ALICE.roles);

    const third = await client.refreshTokenGrant(config, second.refresh_token as string);
    assert.ok(third.refresh_token);
    assert.notEqual(third.refresh_token, second.refresh_token);

    const reuse = await oauthError(client.refreshTokenGrant(config, first));
    assert.equal(reuse.error, 'invalid_grant');
    assert.equal(reuse.status, 400);
    const newest = await oauthError(client.refreshTokenGrant(config, third.refresh_token as string));
    assert.equal(newest.error, 'invalid_grant', 'reuse of a rotated token revoked the grant, so the newest one fails too');
    const info = await client.tokenIntrospection(config, third.access_token);
    assert.equal(info.active, false, 'access tokens of the revoked grant are gone too');
  });

  it('introspects an active token (RFC 7662) and reports a revoked one inactive', async () => {
    const config = await discover(op.issuer, 'web', { secret: WEB_SECRET });
    const browser = new BrowserSession(op.issuer);
    const { tokens } = await signIn(config, browser, BOB, { scope: 'openid email read' });
    const active = await client.tokenIntrospection(config, tokens.access_token);
    assert.equal(active.active, true);
    assert.equal(active.sub, 'bob');
    assert.equal(active.client_id, 'web');
    assert.ok(typeof active.exp === 'number' && active.exp > Date.now() / 1000);

    await client.tokenRevocation(config, tokens.access_token);
    const revoked = await client.tokenIntrospection(config, tokens.access_token);
    assert.deepEqual(revoked, { active: false });
    const garbage = await client.tokenIntrospection(config, 'not-a-token');
    assert.deepEqual(garbage, { active: false });
  });

  it('revokes a refresh token and an access token (RFC 7009)', async () => {
    const config = await discover(op.issuer, 'portal');
    const browser = new BrowserSession(op.issuer);
    const { tokens } = await signIn(config, browser, ALICE, { scope: 'openid offline_access read', prompt: 'consent' });
    const refresh = tokens.refresh_token as string;
    assert.equal((await client.tokenIntrospection(config, refresh)).active, true);
    await client.tokenRevocation(config, refresh);
    assert.equal((await client.tokenIntrospection(config, refresh)).active, false);
    assert.equal((await oauthError(client.refreshTokenGrant(config, refresh))).error, 'invalid_grant');

    const other = await signIn(config, browser, ALICE, { scope: 'openid read' });
    assert.equal((await client.tokenIntrospection(config, other.tokens.access_token)).active, true);
    await client.tokenRevocation(config, other.tokens.access_token);
    assert.equal((await client.tokenIntrospection(config, other.tokens.access_token)).active, false);
    await assert.rejects(client.fetchUserInfo(config, other.tokens.access_token, 'alice'), 'userinfo refuses a revoked token');
    // Revoking an unknown token is not an error (RFC 7009 §2.2).
    await client.tokenRevocation(config, 'unknown-token');
  });

  it('lets a public client introspect and revoke only its own tokens', async () => {
    const web = await discover(op.issuer, 'web', { secret: WEB_SECRET });
    const portal = await discover(op.issuer, 'portal');
    const webTokens = (await signIn(web, new BrowserSession(op.issuer), BOB, { scope: 'openid' })).tokens;
    const portalTokens = (await signIn(portal, new BrowserSession(op.issuer), ALICE, { scope: 'openid' })).tokens;

    assert.deepEqual(await client.tokenIntrospection(portal, webTokens.access_token), { active: false }, "not another client's token");
    const seenByWeb = await client.tokenIntrospection(web, portalTokens.access_token);
    assert.equal(seenByWeb.active, true, 'a confidential client (a resource server) may introspect any token');
    assert.equal(seenByWeb.client_id, 'portal');

    await client.tokenRevocation(portal, webTokens.access_token);
    assert.equal((await client.tokenIntrospection(web, webTokens.access_token)).active, true, 'a public client cannot revoke it');
    const refused = await oauthError(client.tokenRevocation(web, portalTokens.access_token));
    assert.deepEqual(refused, { error: 'invalid_request', status: 400 });
    assert.equal((await client.tokenIntrospection(portal, portalTokens.access_token)).active, true);
  });

  it('introspects a client-credentials JWT for the client that got it, and reports it inactive once revoked', async () => {
    const config = await discover(op.issuer, 'reporting-job', { secret: JOB_SECRET });
    const tokens = await client.clientCredentialsGrant(config, { resource: GATEWAY_AUDIENCE, scope: 'read' });
    const { payload } = await verifyAccessToken(config, tokens.access_token);
    const info = await client.tokenIntrospection(config, tokens.access_token);
    assert.equal(info.active, true);
    assert.equal(info.sub, 'reporting-job');
    assert.equal(info.client_id, 'reporting-job');
    assert.equal(info.scope, 'read');
    assert.equal(info.exp, payload.exp);
    assert.equal(info.aud, GATEWAY_AUDIENCE);
    assert.equal(info.iss, op.issuer);
    assert.deepEqual(info.roles, ['analyst', 'reporter']);

    await client.tokenRevocation(config, tokens.access_token);
    assert.deepEqual(await client.tokenIntrospection(config, tokens.access_token), { active: false });
  });

  it('introspects a code-flow JWT for a resource server, inactive once the user\'s grant is revoked', async () => {
    const portal = await discover(op.issuer, 'portal');
    const resourceServer = await discover(op.issuer, 'form-job', { secret: JOB_SECRET });
    const { tokens } = await signIn(portal, new BrowserSession(op.issuer), ALICE, { scope: 'openid offline_access read', prompt: 'consent' });
    const info = await client.tokenIntrospection(resourceServer, tokens.access_token);
    assert.equal(info.active, true);
    assert.equal(info.sub, 'alice');
    assert.equal(info.client_id, 'portal');
    assert.equal(info.scope, 'read');
    assert.equal(info.aud, GATEWAY_AUDIENCE);
    assert.ok(typeof info.exp === 'number' && info.exp > Date.now() / 1000);

    await client.tokenRevocation(portal, tokens.refresh_token as string);   // ends the grant
    assert.deepEqual(await client.tokenIntrospection(resourceServer, tokens.access_token), { active: false });
  });

  it('reports inactive a JWT it did not sign, one altered after signing and a bare jti', async () => {
    const job = await discover(op.issuer, 'reporting-job', { secret: JOB_SECRET });
    const real = (await client.clientCredentialsGrant(job)).access_token;
    const claims = decodeJwt(real);
    const { privateKey } = await generateKeyPair('RS256');
    const header = decodeProtectedHeader(real);
    const forged = await new SignJWT({ ...claims }).setProtectedHeader({ alg: 'RS256', typ: 'at+jwt', kid: header.kid as string }).sign(privateKey);
    const [head, , signature] = real.split('.');
    const altered = `${head}.${Buffer.from(JSON.stringify({ ...claims, scope: 'read write', roles: ['admin'] })).toString('base64url')}.${signature}`;
    for (const [label, token] of [['forged', forged], ['altered', altered], ['jti alone', claims.jti as string]] as const) {
      assert.deepEqual(await client.tokenIntrospection(job, token), { active: false }, label);
    }
    assert.equal((await client.tokenIntrospection(job, real)).active, true, 'the real token is still active');
    await client.tokenRevocation(job, forged);
    assert.equal((await client.tokenIntrospection(job, real)).active, true, 'revoking a forgery with its jti leaves the real token alone');
  });

  it('never writes tokens, codes, client secrets or passwords to its log', () => {
    assertNoSecretsLogged(op.logs, [WEB_SECRET, JOB_SECRET]);
  });
});

describe('embedded IdP: key rotation and restart', () => {
  let dataDir: string;
  let port: number;
  let op: RunningIdp | undefined;

  const settings = (): Record<string, unknown> => ({
    store: `sqlite:${join(dataDir, 'idp.db')}`,
    key_check_seconds: 0.1,
    clients: [
      { client_id: 'portal', public: true, redirect_uris: [REDIRECT_URI] },
      { client_id: 'reporting-job', client_secret: JOB_SECRET, grant_types: ['client_credentials'], roles: ['analyst'] },
    ],
    users: [ALICE],
  });

  before(async () => {
    dataDir = mkdtempSync(join(tmpdir(), 'embedgate-idp-restart-'));
    port = await freePort();
  });

  after(async () => {
    await op?.close();
    rmSync(dataDir, { recursive: true, force: true });
  });

  it('keeps verifying old tokens after a key rotation and signs new ones with the new key', async () => {
    op = await startIdp(settings(), port);
    const job = await discover(op.issuer, 'reporting-job', { secret: JOB_SECRET });
    const first = await client.clientCredentialsGrant(job, { resource: GATEWAY_AUDIENCE });
    const oldKid = decodeProtectedHeader(first.access_token).kid;

    const store = await openIdpStore(`sqlite:${join(dataDir, 'idp.db')}`);
    const newKid = await rotateSigningKey(store).finally(() => store.close());
    assert.notEqual(newKid, oldKid);

    // `embedgate idp rotate-keys` runs in another process; the IdP picks the key up within key_check_seconds.
    let second = first;
    await eventually(async () => {
      second = await client.clientCredentialsGrant(job, { resource: GATEWAY_AUDIENCE });
      return decodeProtectedHeader(second.access_token).kid === newKid;
    });
    const jwks = await (await fetch(job.serverMetadata().jwks_uri as string)).json() as { keys: { kid: string; d?: string }[] };
    assert.deepEqual(jwks.keys.map((key) => key.kid).sort(), [newKid, oldKid].sort(), 'both keys are published');
    assert.ok(jwks.keys.every((key) => key.d === undefined), 'no private key material is published');
    await verifyAccessToken(job, first.access_token);
    await verifyAccessToken(job, second.access_token);
  });

  it('survives a restart: the browser session, refresh tokens and signing keys are kept', async () => {
    assert.ok(op !== undefined);
    const portal = await discover(op.issuer, 'portal');
    const browser = new BrowserSession(op.issuer);
    const { tokens } = await signIn(portal, browser, ALICE, { scope: 'openid offline_access read', prompt: 'consent', tokenParameters: { resource: GATEWAY_AUDIENCE } });
    await op.close(); // removes only the helper's own scratch directory; the store lives in dataDir

    op = await startIdp(settings(), port);
    const restarted = await discover(op.issuer, 'portal');
    await verifyAccessToken(restarted, tokens.access_token);
    const refreshed = await client.refreshTokenGrant(restarted, tokens.refresh_token as string, { resource: GATEWAY_AUDIENCE });
    assert.equal((await verifyAccessToken(restarted, refreshed.access_token)).payload.sub, 'alice');
    const again = await signIn(restarted, browser, undefined);
    assert.equal(again.tokens.claims()?.sub, 'alice', 'still signed in: no login form after the restart');
  });
});
