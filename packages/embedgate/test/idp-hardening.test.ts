// The embedded IdP under bad input (each a clean OAuth error, never a 500), its pages' safety, lockouts and rate limits.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import * as client from 'openid-client';
import { ConfigError } from '../src/config/load.js';
import { parseIdpConfig } from '../src/idp/config.js';
import { BrowserSession, parseForms, type Page } from './support/browser-session.js';
import { GATEWAY_AUDIENCE, startIdp, type RunningIdp } from './support/idp.js';
import {
  ALICE, authorizationRequest, BOB, browserAuthorize, discover, isConsentPage, isLoginPage, oauthError, POST_LOGOUT_URI,
  REDIRECT_URI, signIn, submitLogin,
} from './support/idp-rp.js';

const DEVICE_GRANT = 'urn:ietf:params:oauth:grant-type:device_code';
const GENERIC_LOGIN_ERROR = 'Wrong username or password, or too many attempts. Try again later.';
const JOB_SECRET = 'reporting-job-secret-0123456789';

const CLIENTS = [
  { client_id: 'portal', public: true, redirect_uris: [REDIRECT_URI], post_logout_redirect_uris: [POST_LOGOUT_URI] },
  { client_id: 'partner', public: true, name: 'Partner Reports', consent: true, redirect_uris: [REDIRECT_URI] },
  { client_id: 'cli', public: true, name: 'Command line', grant_types: [DEVICE_GRANT] },
  { client_id: 'reporting-job', client_secret: JOB_SECRET, grant_types: ['client_credentials'], roles: ['analyst'] },
];

/** The `<p class="error">` text of a page, if any. */
function errorText(html: string): string | undefined {
  return /<p class="error"[^>]*>([^<]*)<\/p>/.exec(html)?.[1];
}

/** What every page of the IdP must satisfy: not frameable, labelled inputs, nothing loaded from elsewhere. */
function assertSafePage(page: Page, issuer: string, what: string): void {
  assert.equal(page.left, false, `${what}: is a page of the IdP`);
  assert.match(page.headers.get('content-type') ?? '', /^text\/html/, `${what}: HTML`);
  assert.match(page.headers.get('content-security-policy') ?? '', /frame-ancestors 'none'/, `${what}: CSP frame-ancestors 'none'`);
  assert.equal(page.headers.get('x-frame-options'), 'DENY', `${what}: X-Frame-Options DENY`);
  const labels = new Set([...page.html.matchAll(/<label\b[^>]*\bfor="([^"]+)"/g)].map((match) => match[1]));
  for (const input of page.html.matchAll(/<input\b[^>]*>/g)) {
    if (/\btype="hidden"/.test(input[0])) continue;
    const id = /\bid="([^"]+)"/.exec(input[0])?.[1];
    assert.ok(id !== undefined && labels.has(id), `${what}: ${input[0]} has a <label for>`);
  }
  const origin = new URL(issuer).origin;
  for (const url of page.html.matchAll(/https?:\/\/[^\s"'<>)]+/g)) {
    assert.equal(new URL(url[0]).origin, origin, `${what}: no URL to another origin (${url[0]})`);
  }
  assert.doesNotMatch(page.html, /<link\b|<img\b|<iframe\b|<script\b[^>]*\bsrc=/i, `${what}: no external assets`);
  // oidc-provider's auto-submitting pages carry one inline script; the CSP must allow exactly that one by its hash.
  const csp = page.headers.get('content-security-policy') ?? '';
  for (const script of page.html.matchAll(/<script>([\s\S]*?)<\/script>/g)) {
    const hash = createHash('sha256').update(script[1] as string).digest('base64');
    assert.match(csp, new RegExp(`script-src [^;]*'sha256-${hash.replace(/[+/=]/g, '\\$&')}'`), `${what}: inline script allowed by hash only`);
    assert.doesNotMatch(csp, /script-src[^;]*'unsafe-inline'/, `${what}: no unsafe-inline scripts`);
  }
}

describe('embedded IdP: bad input is refused cleanly', () => {
  let op: RunningIdp;
  let portal: client.Configuration;

  before(async () => {
    op = await startIdp({ clients: CLIENTS, users: [ALICE, BOB] });
    portal = await discover(op.issuer, 'portal');
  });

  after(async () => {
    await op.close();
  });

  it('re-renders the login page with one generic message (401) for a wrong password and for an unknown user', async () => {
    const browser = new BrowserSession(op.issuer);
    const login = await browser.get((await authorizationRequest(portal)).url);
    assert.ok(isLoginPage(login));
    assert.equal(errorText(login.html), undefined);

    const wrong = await submitLogin(browser, { username: 'alice', password: 'not-her-password' });
    assert.equal(wrong.status, 401);
    assert.ok(isLoginPage(wrong), 'the form is shown again');
    assert.equal(errorText(wrong.html), GENERIC_LOGIN_ERROR);
    assert.match(wrong.html, /<input id="username"[^>]*value="alice"/, 'the username is kept');
    assert.ok(!wrong.html.includes('not-her-password'), 'the password is not echoed');

    const unknown = await submitLogin(browser, { username: 'mallory', password: 'whatever-123' });
    assert.equal(unknown.status, 401);
    assert.equal(errorText(unknown.html), GENERIC_LOGIN_ERROR, 'an unknown user gets the same message');

    const ok = await submitLogin(browser, ALICE);
    assert.ok(ok.left, 'the right password still works on the same page');
    assert.equal(new URL(ok.url).origin + new URL(ok.url).pathname, REDIRECT_URI);
    assert.ok(!op.logs.some((line) => line.includes('not-her-password') || line.includes(ALICE.password)), 'passwords never reach the logs');
  });

  it('answers an unknown client with a 400 error page', async () => {
    const url = new URL(client.buildAuthorizationUrl(portal, {
      redirect_uri: REDIRECT_URI, scope: 'openid', code_challenge: await client.calculatePKCECodeChallenge(client.randomPKCECodeVerifier()),
      code_challenge_method: 'S256',
    }));
    url.searchParams.set('client_id', 'no-such-client');
    const page = await new BrowserSession(op.issuer).get(url);
    assert.equal(page.left, false);
    assert.equal(page.status, 400);
    assert.match(page.html, /invalid_client/);
    assertSafePage(page, op.issuer, 'unknown client error page');
  });

  it('never redirects to an unregistered redirect_uri', async () => {
    const evil = 'http://evil.example/callback';
    const pending = await authorizationRequest(portal, { redirectUri: evil });
    const page = await new BrowserSession(op.issuer).get(pending.url);
    assert.equal(page.left, false, 'no redirect off the IdP');
    assert.equal(page.status, 400);
    assert.match(page.html, /redirect_uri/);
    assert.ok(!page.html.includes('evil.example'));
  });

  it('refuses an authorization request without a code_challenge (PKCE is required)', async () => {
    const state = client.randomState();
    const url = client.buildAuthorizationUrl(portal, { redirect_uri: REDIRECT_URI, scope: 'openid', state });
    const page = await new BrowserSession(op.issuer).get(url);
    assert.ok(page.left, 'the error goes back to the registered redirect_uri');
    const back = new URL(page.url);
    assert.equal(`${back.origin}${back.pathname}`, REDIRECT_URI);
    assert.equal(back.searchParams.get('error'), 'invalid_request');
    assert.equal(back.searchParams.get('state'), state);
    assert.equal(back.searchParams.get('code'), null);

    const plain = client.buildAuthorizationUrl(portal, {
      redirect_uri: REDIRECT_URI, scope: 'openid', state, code_challenge: 'a'.repeat(43), code_challenge_method: 'plain',
    });
    const plainPage = await new BrowserSession(op.issuer).get(plain);
    assert.ok(plainPage.left);
    assert.equal(new URL(plainPage.url).searchParams.get('error'), 'invalid_request', 'plain PKCE is refused too');
  });

  it('answers invalid_grant for a wrong PKCE verifier and for a replayed authorization code', async () => {
    const browser = new BrowserSession(op.issuer);
    const pending = await authorizationRequest(portal);
    const callback = await browserAuthorize(browser, pending, ALICE);
    const mismatch = await oauthError(client.authorizationCodeGrant(portal, callback, {
      pkceCodeVerifier: client.randomPKCECodeVerifier(), expectedNonce: pending.nonce, expectedState: pending.state,
    }));
    assert.deepEqual(mismatch, { error: 'invalid_grant', status: 400 });

    const fresh = await authorizationRequest(portal);
    const code = await browserAuthorize(browser, fresh, undefined);
    const checks = { pkceCodeVerifier: fresh.verifier, expectedNonce: fresh.nonce, expectedState: fresh.state };
    const first = await client.authorizationCodeGrant(portal, code, checks);
    assert.equal((await client.tokenIntrospection(portal, first.access_token)).active, true);
    const replay = await oauthError(client.authorizationCodeGrant(portal, code, checks));
    assert.deepEqual(replay, { error: 'invalid_grant', status: 400 });
    assert.equal((await client.tokenIntrospection(portal, first.access_token)).active, false, 'a replayed code revokes what it issued');
  });

  it('refuses a cross-origin POST to the login form and a wrong csrf token with 403', async () => {
    const browser = new BrowserSession(op.issuer);
    const login = await browser.get((await authorizationRequest(portal)).url);
    const [form] = parseForms(login.html, login.url);
    assert.ok(form !== undefined);
    const fields = { ...form.fields, username: ALICE.username, password: ALICE.password };

    const attacker = await browser.postForm(form.action, fields, { origin: 'http://evil.example' });
    assert.equal(attacker.status, 403);
    assert.equal(attacker.left, false);
    assertSafePage(attacker, op.issuer, '403 page');

    const forged = await browser.postForm(form.action, { ...fields, csrf: 'forged-token' });
    assert.equal(forged.status, 403);
    const missing = await browser.postForm(form.action, { username: ALICE.username, password: ALICE.password });
    assert.equal(missing.status, 403);

    const real = await browser.postForm(form.action, fields);
    assert.ok(real.left, 'the genuine form still signs in');
  });

  it('answers bad interaction requests with 4xx pages, never a 500', async () => {
    const browser = new BrowserSession(op.issuer);
    const unknown = await browser.get('/interaction/not-a-real-uid');
    assert.equal(unknown.status, 400);
    assertSafePage(unknown, op.issuer, 'expired interaction page');
    const badMethod = await browser.request('/interaction/not-a-real-uid', { method: 'DELETE' });
    assert.equal(badMethod.status, 405);
    const login = await browser.get((await authorizationRequest(portal)).url);
    const [form] = parseForms(login.html, login.url);
    assert.ok(form !== undefined);
    const json = await browser.request(form.action, {
      method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ username: 'alice' }),
    });
    assert.equal(json.status, 403, 'a non-form body is refused');
    const huge = await browser.postForm(form.action, { ...form.fields, username: 'alice', password: 'x'.repeat(64 * 1024) });
    assert.ok(huge.status >= 400 && huge.status < 500, `an oversized form is refused (${huge.status})`);
    const token = await fetch(portal.serverMetadata().token_endpoint as string, {
      method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: 'grant_type=authorization_code&client_id=portal&code=nope',
    });
    assert.equal(token.status, 400);
    assert.equal((await token.json() as { error: string }).error, 'invalid_grant');
  });

  it('asks for consent for a consent: true client; Allow issues a code, Deny returns access_denied', async () => {
    const partner = await discover(op.issuer, 'partner');
    const browser = new BrowserSession(op.issuer);
    const denied = await authorizationRequest(partner, { scope: 'openid email' });
    let page = await browser.get(denied.url);
    page = await submitLogin(browser, BOB);
    assert.ok(isConsentPage(page));
    assert.match(page.html, /Partner Reports/);
    assert.match(page.html, /<li>email<\/li>/);
    page = await browser.submit({}, { button: 'Deny' });
    assert.ok(page.left);
    const back = new URL(page.url);
    assert.equal(back.searchParams.get('error'), 'access_denied');
    assert.equal(back.searchParams.get('state'), denied.state);

    const allowed = await authorizationRequest(partner, { scope: 'openid email' });
    page = await browser.get(allowed.url);
    assert.ok(isConsentPage(page), 'still asked after a denial');
    page = await browser.submit({}, { button: 'Allow' });
    assert.ok(page.left);
    const tokens = await client.authorizationCodeGrant(partner, new URL(page.url), {
      pkceCodeVerifier: allowed.verifier, expectedNonce: allowed.nonce, expectedState: allowed.state,
    });
    assert.equal(tokens.claims()?.sub, 'bob');

    const again = await signIn(partner, browser, undefined, { scope: 'openid email' });
    assert.equal(again.tokens.claims()?.sub, 'bob', 'an approved client is not asked again');
  });

  it('serves every page unframeable, with labelled inputs and no external assets', async () => {
    const pages: [string, Page][] = [];
    const browser = new BrowserSession(op.issuer);
    const login = await browser.get((await authorizationRequest(portal)).url);
    pages.push(['login', login]);
    pages.push(['login with error', await submitLogin(browser, { username: 'alice', password: 'nope-nope' })]);
    await submitLogin(browser, ALICE);

    const partner = await discover(op.issuer, 'partner');
    const consent = await browser.get((await authorizationRequest(partner, { scope: 'openid profile' })).url);
    assert.ok(isConsentPage(consent));
    pages.push(['consent', consent]);

    const cli = await discover(op.issuer, 'cli');
    const device = await client.initiateDeviceAuthorization(cli, { scope: 'openid' });
    pages.push(['device input', await browser.get(device.verification_uri)]);
    pages.push(['device input with error', await browser.submit({ user_code: 'BAD-CODE' })]);
    await browser.get(device.verification_uri);
    const confirm = await browser.submit({ user_code: device.user_code });
    assert.match(confirm.html, /Confirm the device/);
    pages.push(['device confirm', confirm]);
    const success = await browser.submit({}, { button: /^Yes/ });
    assert.match(success.html, /Device connected/, 'already signed in: straight to success');
    pages.push(['device success', success]);

    const { tokens } = await signIn(portal, browser, undefined);
    const logout = await browser.get(client.buildEndSessionUrl(portal, { id_token_hint: tokens.id_token as string }));
    assert.match(logout.html, /Sign out\?/);
    pages.push(['logout', logout]);
    const signedOut = await browser.submit({}, { button: /Yes/ });
    assert.match(signedOut.html, /Signed out/);
    pages.push(['signed out', signedOut]);

    // oidc-provider's own auto-submitting pages (verification_uri_complete, logout without a session).
    const complete = await client.initiateDeviceAuthorization(cli, { scope: 'openid' });
    assert.ok(complete.verification_uri_complete !== undefined);
    pages.push(['device auto-submit', await new BrowserSession(op.issuer).get(complete.verification_uri_complete)]);
    pages.push(['logout auto-submit', await new BrowserSession(op.issuer).get(client.buildEndSessionUrl(portal))]);

    pages.push(['error (bad redirect_uri)', await browser.get((await authorizationRequest(portal, { redirectUri: 'http://evil.example/' })).url)]);
    pages.push(['error (expired interaction)', await browser.get('/interaction/expired-uid')]);

    for (const [what, page] of pages) {
      assert.ok(page.status < 500, `${what}: ${page.status}`);
      assertSafePage(page, op.issuer, what);
    }
  });
});

describe('embedded IdP: login lockout', () => {
  let op: RunningIdp;

  before(async () => {
    op = await startIdp({ clients: CLIENTS, users: [ALICE, BOB], login_failures_before_lockout: 3, lockout_seconds: 600 });
  });

  after(async () => {
    await op.close();
  });

  it('locks a user out after N failures with the same generic message, even with the right password', async () => {
    const portal = await discover(op.issuer, 'portal');
    const browser = new BrowserSession(op.issuer);
    await browser.get((await authorizationRequest(portal)).url);
    for (let i = 0; i < 3; i += 1) {
      const page = await submitLogin(browser, { username: 'alice', password: `wrong-${i}` });
      assert.equal(page.status, 401);
      assert.equal(errorText(page.html), GENERIC_LOGIN_ERROR);
    }
    const locked = await submitLogin(browser, ALICE);
    assert.equal(locked.status, 401, 'locked: the right password is refused');
    assert.equal(errorText(locked.html), GENERIC_LOGIN_ERROR, 'with the same message (no hint that the account exists)');
    const lockedAgain = await submitLogin(browser, { username: ` ${ALICE.username} `, password: ALICE.password });
    assert.equal(lockedAgain.status, 401, 'nor with spaces around the username');

    const other = new BrowserSession(op.issuer);
    const { tokens } = await signIn(portal, other, BOB);
    assert.equal(tokens.claims()?.sub, 'bob', 'other users are not locked out');
    assert.ok(op.logs.some((line) => line.includes('"audit":"login_failed"')), 'failures are audited');
  });
});

describe('embedded IdP: token endpoint rate limit', () => {
  let op: RunningIdp;

  before(async () => {
    op = await startIdp({ clients: CLIENTS, users: [ALICE], token_requests_per_minute: 3 });
  });

  after(async () => {
    await op.close();
  });

  it('answers the 4th token request in a minute with 429 slow_down', async () => {
    const job = await discover(op.issuer, 'reporting-job', { secret: JOB_SECRET });
    for (let i = 0; i < 3; i += 1) {
      const tokens = await client.clientCredentialsGrant(job, { resource: GATEWAY_AUDIENCE });
      assert.ok(tokens.access_token, `request ${i + 1} is served`);
    }
    const limited = await fetch(job.serverMetadata().token_endpoint as string, {
      method: 'POST',
      headers: {
        'content-type': 'application/x-www-form-urlencoded',
        authorization: `Basic ${Buffer.from(`reporting-job:${JOB_SECRET}`).toString('base64')}`,
      },
      body: new URLSearchParams({ grant_type: 'client_credentials', resource: GATEWAY_AUDIENCE }),
    });
    assert.equal(limited.status, 429);
    assert.equal((await limited.json() as { error: string }).error, 'slow_down');
    assert.ok(Number(limited.headers.get('retry-after')) > 0, 'Retry-After says when to come back');
    const viaClient = await oauthError(client.clientCredentialsGrant(job, { resource: GATEWAY_AUDIENCE }));
    assert.deepEqual(viaClient, { error: 'slow_down', status: 429 });
    for (const path of ['/token/', '/TOKEN', '/Token/']) {
      // oidc-provider routes these spellings to the token endpoint too, so they share its budget.
      const other = await fetch(`${op.issuer}${path}`, {
        method: 'POST',
        headers: {
          'content-type': 'application/x-www-form-urlencoded',
          authorization: `Basic ${Buffer.from(`reporting-job:${JOB_SECRET}`).toString('base64')}`,
        },
        body: new URLSearchParams({ grant_type: 'client_credentials', resource: GATEWAY_AUDIENCE }),
      });
      assert.equal(other.status, 429, `${path} is limited too`);
    }
    const discovery = await fetch(`${op.issuer}/.well-known/openid-configuration`);
    assert.equal(discovery.status, 200, 'other endpoints are not limited');
  });
});

describe('embedded IdP behind a proxy (behind_proxy: true): limits per real client address', () => {
  let op: RunningIdp;

  before(async () => {
    op = await startIdp({
      clients: CLIENTS, users: [ALICE, BOB], behind_proxy: true, login_failures_before_lockout: 1, token_requests_per_minute: 2,
    });
  });

  after(async () => {
    await op.close();
  });

  /** What the proxy forwards: whatever the client claimed, then the address the proxy saw. */
  const via = (claimed: string, seen: string): Record<string, string> => ({ 'x-forwarded-for': `${claimed}, ${seen}` });

  it('counts failed sign-ins per forwarded client address, not per proxy', async () => {
    const portal = await discover(op.issuer, 'portal');
    const attacker = new BrowserSession(op.issuer);
    const login = await attacker.get((await authorizationRequest(portal)).url);
    const [form] = parseForms(login.html, login.url);
    assert.ok(form !== undefined);
    // 4 × login_failures_before_lockout failures from one address lock that address out, whatever it claims to be.
    for (let i = 0; i < 4; i += 1) {
      const page = await attacker.postForm(form.action, { ...form.fields, username: `guess${i}`, password: 'x' }, via(`10.9.9.${i}`, '203.0.113.7'));
      assert.equal(page.status, 401);
    }
    const blocked = await attacker.postForm(form.action, { ...form.fields, username: BOB.username, password: BOB.password }, via('10.9.9.99', '203.0.113.7'));
    assert.equal(blocked.status, 401, 'the attacking address is locked out even with a valid password');

    const user = new BrowserSession(op.issuer);
    const page = await user.get((await authorizationRequest(portal)).url);
    const [userForm] = parseForms(page.html, page.url);
    assert.ok(userForm !== undefined);
    const done = await user.postForm(userForm.action, { ...userForm.fields, username: ALICE.username, password: ALICE.password }, via('203.0.113.8', '203.0.113.8'));
    assert.ok(done.left, 'another client behind the same proxy can still sign in');
  });

  it('rate-limits the token endpoint per forwarded address; a spoofed X-Forwarded-For entry does not reset it', async () => {
    const token = (headers: Record<string, string>): Promise<Response> => fetch(`${op.issuer}/token`, {
      method: 'POST',
      headers: {
        'content-type': 'application/x-www-form-urlencoded',
        authorization: `Basic ${Buffer.from(`reporting-job:${JOB_SECRET}`).toString('base64')}`,
        ...headers,
      },
      body: new URLSearchParams({ grant_type: 'client_credentials', resource: GATEWAY_AUDIENCE }),
    });
    assert.equal((await token(via('6.6.6.1', '198.51.100.1'))).status, 200);
    assert.equal((await token(via('6.6.6.2', '198.51.100.1'))).status, 200);
    assert.equal((await token(via('6.6.6.3', '198.51.100.1'))).status, 429, 'a new made-up leftmost address does not get a new budget');
    assert.equal((await token(via('198.51.100.2', '198.51.100.2'))).status, 200, 'another real client has its own budget');
  });
});

describe('embedded IdP configuration', () => {
  it('refuses an issuer with a path (discovery would not be served there), naming the field', () => {
    assert.throws(
      () => parseIdpConfig({ issuer: 'http://127.0.0.1:4000/idp', resource: GATEWAY_AUDIENCE }),
      (error: Error) => error instanceof ConfigError && /^idp\.issuer: must be an origin without a path/m.test(error.message),
    );
    assert.equal(parseIdpConfig({ issuer: 'http://127.0.0.1:4000', resource: GATEWAY_AUDIENCE }).issuer, 'http://127.0.0.1:4000');
  });
});
