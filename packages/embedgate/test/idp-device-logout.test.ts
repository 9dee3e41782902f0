// The embedded IdP's device authorization grant and logout (RP-initiated and back-channel), driven as a real RP would.
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { jwtVerify } from 'jose';
import * as client from 'openid-client';
import { BrowserSession } from './support/browser-session.js';
import { freePort, GATEWAY_AUDIENCE, startIdp, type RunningIdp } from './support/idp.js';
import {
  ALICE, assertNoSecretsLogged, authorizationRequest, BOB, discover, idpJwks, isLoginPage, oauthError, POST_LOGOUT_URI, REDIRECT_URI, signIn, submitLogin, verifyAccessToken,
} from './support/idp-rp.js';

const DEVICE_GRANT = 'urn:ietf:params:oauth:grant-type:device_code';
const BACKCHANNEL_EVENT = 'http://schemas.openid.net/event/backchannel-logout';
const APP_SECRET = 'backchannel-app-secret-0123456789';

/** A relying party's back-channel logout endpoint: resolves `next()` with each logout_token it receives. */
interface LogoutReceiver {
  url: string;
  next(): Promise<string>;
  close(): Promise<void>;
}

async function startLogoutReceiver(): Promise<LogoutReceiver> {
  const received: string[] = [];
  const waiting: ((token: string) => void)[] = [];
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      const token = new URLSearchParams(Buffer.concat(chunks).toString('utf8')).get('logout_token') ?? '';
      res.writeHead(req.method === 'POST' && token !== '' ? 200 : 400, { 'cache-control': 'no-store' }).end();
      const waiter = waiting.shift();
      if (waiter) waiter(token);
      else received.push(token);
    });
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/backchannel-logout`,
    next: () => {
      const token = received.shift();
      return token === undefined ? new Promise((resolve) => waiting.push(resolve)) : Promise.resolve(token);
    },
    close: () => new Promise((resolve) => {
      server.close(() => resolve());
      server.closeAllConnections();
    }),
  };
}

describe('embedded IdP: device authorization grant', () => {
  let op: RunningIdp;
  let config: client.Configuration;

  before(async () => {
    op = await startIdp({
      clients: [{ client_id: 'cli', public: true, name: 'Command line', grant_types: [DEVICE_GRANT, 'refresh_token'] }],
      users: [ALICE, BOB],
    });
    config = await discover(op.issuer, 'cli');
  });

  after(async () => {
    await op.close();
  });

  /** The device's polling, without the default 5 s wait before the first poll (the user has already acted). */
  const poll = (response: client.DeviceAuthorizationResponse): ReturnType<typeof client.pollDeviceAuthorizationGrant> =>
    client.pollDeviceAuthorizationGrant(config, { ...response, interval: 0 }, { resource: GATEWAY_AUDIENCE });

  it('signs a device in end to end: code entry, login form, confirmation, then the poll gets tokens', async () => {
    const device = await client.initiateDeviceAuthorization(config, { scope: 'openid offline_access read' });
    assert.match(device.user_code, /\S/);
    assert.ok(device.verification_uri.startsWith(`${op.issuer}/`));
    assert.ok(device.expires_in > 0 && device.expires_in <= op.config.device_code_ttl_seconds);

    const browser = new BrowserSession(op.issuer);
    const input = await browser.get(device.verification_uri);
    assert.equal(input.status, 200);
    assert.match(input.html, /<label for="user_code">/);
    let page = await browser.submit({ user_code: device.user_code });
    assert.equal(page.status, 200);
    assert.match(page.html, /Confirm the device/);
    assert.ok(page.html.includes(device.user_code), 'the confirmation page shows the code to compare');
    assert.ok(page.html.includes('Command line'), 'and names the client');
    page = await browser.submit({}, { button: /^Yes/ });
    assert.ok(isLoginPage(page), `the login form follows the confirmation, got ${page.status}:\n${page.html}`);
    page = await submitLogin(browser, ALICE);
    assert.equal(page.status, 200);
    assert.match(page.html, /Device connected/);
    assert.ok(page.html.includes('Command line'));

    const tokens = await poll(device);
    const { payload } = await verifyAccessToken(config, tokens.access_token);
    assert.equal(payload.sub, 'alice');
    assert.equal(payload.client_id, 'cli');
    assert.deepEqual(payload.roles, ALICE.roles);
    assert.equal(tokens.claims()?.sub, 'alice');
    assert.ok(tokens.refresh_token, 'offline_access gives the device a refresh token');
    const refreshed = await client.refreshTokenGrant(config, tokens.refresh_token, { resource: GATEWAY_AUDIENCE });
    assert.equal((await verifyAccessToken(config, refreshed.access_token)).payload.sub, 'alice');

    const replay = await oauthError(poll(device));
    assert.equal(replay.error, 'invalid_grant', 'a device code is used once');
  });

  it('introspects the device\'s JWT access token (RFC 7662); revoking it ends it and its grant\'s refresh token', async () => {
    const device = await client.initiateDeviceAuthorization(config, { scope: 'openid offline_access read' });
    const browser = new BrowserSession(op.issuer);
    await browser.get(device.verification_uri_complete as string);
    await browser.submit({}, { button: 'Continue' });
    await browser.submit({}, { button: /^Yes/ });
    await submitLogin(browser, BOB);
    const tokens = await poll(device);
    const { payload } = await verifyAccessToken(config, tokens.access_token);

    const info = await client.tokenIntrospection(config, tokens.access_token);
    assert.equal(info.active, true);
    assert.equal(info.sub, 'bob');
    assert.equal(info.client_id, 'cli');
    assert.equal(info.scope, 'read');
    assert.equal(info.exp, payload.exp);
    assert.equal(info.aud, GATEWAY_AUDIENCE);

    await client.tokenRevocation(config, tokens.access_token);
    assert.deepEqual(await client.tokenIntrospection(config, tokens.access_token), { active: false });
    assert.equal((await oauthError(client.refreshTokenGrant(config, tokens.refresh_token as string))).error, 'invalid_grant', 'the grant\'s refresh token went with it');
  });

  it('accepts the verification_uri_complete link (code filled in), also without JavaScript', async () => {
    const device = await client.initiateDeviceAuthorization(config, { scope: 'openid' });
    assert.ok(device.verification_uri_complete !== undefined);
    const browser = new BrowserSession(op.issuer);
    const page = await browser.get(device.verification_uri_complete);
    assert.equal(page.status, 200);
    assert.match(page.headers.get('content-security-policy') ?? '', /frame-ancestors 'none'/);
    const confirm = await browser.submit({}, { button: 'Continue' }); // the <noscript> button
    assert.match(confirm.html, /Confirm the device/);
    assert.ok(confirm.html.includes(device.user_code));
    const login = await browser.submit({}, { button: /^Yes/ });
    assert.ok(isLoginPage(login));
    assert.match((await submitLogin(browser, BOB)).html, /Device connected/);
    const tokens = await poll(device);
    assert.equal((await verifyAccessToken(config, tokens.access_token)).payload.sub, 'bob');
  });

  it('shows the code page again with an error for an unknown user code (no 500)', async () => {
    const device = await client.initiateDeviceAuthorization(config, { scope: 'openid' });
    const browser = new BrowserSession(op.issuer);
    await browser.get(device.verification_uri);
    const page = await browser.submit({ user_code: 'WRONG-CODE' });
    assert.ok(page.status >= 200 && page.status < 500, `status ${page.status}`);
    assert.match(page.html, /role="alert"/);
    assert.match(page.html, /not valid or has expired/);
    assert.match(page.html, /<input id="user_code"/, 'the user can try again');
    const pending = await fetch(config.serverMetadata().token_endpoint as string, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ grant_type: DEVICE_GRANT, device_code: device.device_code, client_id: 'cli' }),
    });
    assert.equal(pending.status, 400);
    assert.equal((await pending.json() as { error: string }).error, 'authorization_pending', 'the real request is still pending');
  });

  it('re-renders a usable code form (no 500) when the form is posted without the browser session', async () => {
    const device = await client.initiateDeviceAuthorization(config, { scope: 'openid' });
    const browser = new BrowserSession(op.issuer);
    const input = await browser.get(device.verification_uri);
    browser.clearCookies(); // e.g. the session cookie was lost or the session expired meanwhile
    const page = await browser.submit({ user_code: device.user_code });
    assert.ok(page.status >= 200 && page.status < 500, `status ${page.status}`);
    assert.match(page.html, /<input id="user_code"/, 'the code form is shown again');
    assert.match(page.html, /role="alert"/);
    assert.notEqual(page.html, input.html);
    const confirm = await browser.submit({ user_code: device.user_code });
    assert.match(confirm.html, /Confirm the device/, 'and that form works');
    const stranger = await fetch(device.verification_uri, {
      method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: 'xsrf=forged&user_code=ABCD-EFGH',
    });
    assert.ok(stranger.status < 500, `a forged post gets ${stranger.status}`);
    assert.ok(!op.logs.some((line) => /"level":50/.test(line)), 'no server errors were logged');
  });

  it('answers access_denied at the poll when the user cancels on the confirmation page', async () => {
    const device = await client.initiateDeviceAuthorization(config, { scope: 'openid' });
    const browser = new BrowserSession(op.issuer);
    await browser.get(device.verification_uri);
    const confirm = await browser.submit({ user_code: device.user_code });
    assert.match(confirm.html, /Confirm the device/);
    const page = await browser.submit({}, { button: /^No/ });
    assert.ok(page.status < 500, `status ${page.status}`);
    assert.match(page.html, /cancelled/, 'the user is told the request was cancelled');
    assert.doesNotMatch(page.html, /not valid/, 'not that they mistyped the code');
    const failure = await oauthError(poll(device));
    assert.equal(failure.error, 'access_denied');
  });

  it('never writes tokens, codes, client secrets or passwords to its log', () => {
    assertNoSecretsLogged(op.logs);
  });
});

describe('embedded IdP: RP-initiated and back-channel logout', () => {
  let op: RunningIdp;
  let receiver: LogoutReceiver;

  before(async () => {
    receiver = await startLogoutReceiver();
    op = await startIdp({
      clients: [
        { client_id: 'portal', public: true, redirect_uris: [REDIRECT_URI], post_logout_redirect_uris: [POST_LOGOUT_URI] },
        {
          client_id: 'bc-app', client_secret: APP_SECRET, redirect_uris: [REDIRECT_URI], post_logout_redirect_uris: [POST_LOGOUT_URI],
          backchannel_logout_uri: receiver.url,
        },
        // Its back-channel endpoint is down: the logout must still complete, and the failure must be logged.
        { client_id: 'bc-down', client_secret: APP_SECRET, redirect_uris: [REDIRECT_URI], backchannel_logout_uri: `http://127.0.0.1:${await freePort()}/logout` },
      ],
      users: [ALICE],
    });
  });

  after(async () => {
    await op.close();
    await receiver.close();
  });

  it('logs out with id_token_hint: confirm page, then a redirect to the registered post_logout_redirect_uri', async () => {
    const config = await discover(op.issuer, 'portal');
    const browser = new BrowserSession(op.issuer);
    const { tokens } = await signIn(config, browser, ALICE);
    const state = client.randomState();
    const url = client.buildEndSessionUrl(config, { id_token_hint: tokens.id_token as string, post_logout_redirect_uri: POST_LOGOUT_URI, state });
    const confirm = await browser.get(url);
    assert.equal(confirm.status, 200);
    assert.match(confirm.html, /Sign out\?/);
    const done = await browser.submit({}, { button: /Yes/ });
    assert.ok(done.left, `redirected back to the client, got ${done.status}`);
    const back = new URL(done.url);
    assert.equal(`${back.origin}${back.pathname}`, POST_LOGOUT_URI);
    assert.equal(back.searchParams.get('state'), state);

    // The session is gone: a new authorization asks for the password again.
    const again = await browser.get((await authorizationRequest(config)).url);
    assert.ok(isLoginPage(again), 'signed out: the login form is shown again');
  });

  it('refuses an unregistered post_logout_redirect_uri (no redirect to it)', async () => {
    const config = await discover(op.issuer, 'portal');
    const browser = new BrowserSession(op.issuer);
    const { tokens } = await signIn(config, browser, ALICE);
    const evil = 'http://evil.example/after-logout';
    const url = client.buildEndSessionUrl(config, { id_token_hint: tokens.id_token as string, post_logout_redirect_uri: evil });
    const page = await browser.get(url);
    assert.equal(page.left, false, 'never redirected off the IdP');
    assert.equal(page.status, 400);
    assert.ok(!page.html.includes('evil.example'), 'the error page does not link to it either');
    assert.match(page.html, /post_logout_redirect_uri/);
  });

  it('sends a verifiable logout_token to the back-channel logout URI of a signed-in client', async () => {
    const config = await discover(op.issuer, 'bc-app', { secret: APP_SECRET });
    const browser = new BrowserSession(op.issuer);
    const { tokens } = await signIn(config, browser, ALICE);
    const sid = tokens.claims()?.sid;
    assert.ok(typeof sid === 'string', 'the ID token carries sid (backchannel_logout_session_required)');

    // The same browser session also signs in to a client whose back-channel endpoint is down.
    await signIn(await discover(op.issuer, 'bc-down', { secret: APP_SECRET }), browser, undefined);

    const logoutToken = receiver.next();
    await browser.get(client.buildEndSessionUrl(config, { id_token_hint: tokens.id_token as string, post_logout_redirect_uri: POST_LOGOUT_URI }));
    const done = await browser.submit({}, { button: /Yes/ });
    assert.ok(done.left, 'the logout completes although one client could not be notified');
    assert.ok(op.logs.some((line) => line.includes('"audit":"backchannel_logout_failed"') && line.includes('"client":"bc-down"')),
      'the failed notification is logged');
    assert.ok(op.logs.some((line) => line.includes('"audit":"backchannel_logout"') && line.includes('"client":"bc-app"')));

    const { payload, protectedHeader } = await jwtVerify(await logoutToken, idpJwks(config.serverMetadata().jwks_uri as string), {
      issuer: op.issuer, audience: 'bc-app', algorithms: ['RS256'],
    });
    assert.equal(protectedHeader.typ, 'logout+jwt');
    assert.deepEqual(payload.events, { [BACKCHANNEL_EVENT]: {} });
    assert.equal(payload.sid, sid);
    assert.equal(payload.sub, 'alice');
    assert.equal(payload.nonce, undefined);
    assert.ok(typeof payload.jti === 'string' && typeof payload.iat === 'number');
  });

  it('never writes tokens, logout tokens, client secrets or passwords to its log', () => {
    assertNoSecretsLogged(op.logs, [APP_SECRET]);
  });
});
