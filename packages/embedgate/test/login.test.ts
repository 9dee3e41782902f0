// Standalone browser sign-in (authorization code + PKCE + state + nonce) against the embedded IdP's real login form:
// an app opened in a tab signs the user in and comes back to the page; scripts get 401 JSON instead of redirects;
// the redirect_uri never comes from Host; the callback refuses answers this browser did not ask for.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import type { Browser, Page } from 'playwright-core';
import { launchChromium, openTab } from './support/chromium.js';
import { eventually, startGateway, type RunningGateway } from './support/gateway.js';
import { freePort, GATEWAY_AUDIENCE, startIdp, type RunningIdp } from './support/idp.js';
import { rawRequest } from './support/raw-http.js';
import { startUpstream, type Upstream } from './support/upstream.js';

const PASSWORD = 'correct horse battery staple';
const CLIENT_SECRET = 'gateway-client-secret-0123456789';
const SESSION_COOKIE = '__Host-embedgate-session';

let idp: RunningIdp;
let upstream: Upstream;
let gw: RunningGateway;
let gwOrigin: string;
let browser: Browser;

before(async () => {
  const port = await freePort();
  gwOrigin = `http://127.0.0.1:${port}`;
  idp = await startIdp({
    users: [{ username: 'ana', password: PASSWORD, email: 'ana@example.com', roles: ['analyst'] }],
    clients: [{
      client_id: 'gateway', client_secret: CLIENT_SECRET, redirect_uris: [`${gwOrigin}/_embedgate/callback`],
      post_logout_redirect_uris: [`${gwOrigin}/sales/`],
    }],
  });
  upstream = await startUpstream();
  gw = await startGateway({
    listen: `127.0.0.1:${port}`,
    public_url: gwOrigin,
    issuers: [{ issuer: idp.issuer, audiences: [GATEWAY_AUDIENCE] }],
    login: {
      issuer: idp.issuer, client_id: 'gateway', client_secret: CLIENT_SECRET, resource: GATEWAY_AUDIENCE,
      scopes: ['openid', 'profile', 'email'], encryption_key: randomBytes(32).toString('base64'),
      post_logout_redirect_uri: `${gwOrigin}/sales/`,
    },
    sessions: { store: 'memory:' },
    apps: [{ name: 'sales', prefix: '/sales/', upstream: upstream.url, allow: { roles: ['analyst'] } }],
  });
  await eventually(async () => (await gw.fetch('/readyz')).status === 200);
  browser = await launchChromium();
});

after(async () => {
  await browser?.close();
  await gw?.close();
  await upstream?.close();
  await idp?.close(true);
});

const NAVIGATION = ['Sec-Fetch-Dest: document', 'Sec-Fetch-Mode: navigate', 'Sec-Fetch-Site: none', 'Accept: text/html'];

/** Opens `path` in the tab and signs in as ana on the IdP's page; the tab ends on `path`, signed in. */
async function signIn(page: Page, path: string): Promise<void> {
  await page.goto(`${gwOrigin}${path}`);
  assert.ok(page.url().startsWith(`${idp.issuer}/interaction/`), `the IdP's login page, not ${page.url()}`);
  await page.getByLabel('Username').fill('ana');
  await page.getByLabel('Password').fill(PASSWORD);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.waitForURL(`${gwOrigin}${path}`);
}

describe('standalone sign-in', () => {
  it('an app opened in a tab sends the user to the IdP, and back to the same page signed in', async () => {
    const tab = await openTab(browser);
    const before = upstream.requests.length;
    await signIn(tab.page, '/sales/reports?q=1');
    assert.match(await tab.page.content(), /app page/);
    const seen = upstream.requests.slice(before);
    assert.deepEqual(seen.map((r) => r.url), ['/sales/reports?q=1'], 'the app got the page once, after sign-in');
    assert.equal(seen[0]?.headers['x-forwarded-user'], 'ana');
    assert.ok(!(seen[0]?.headers.cookie ?? '').includes('__Host-embedgate'), 'the app never sees the gateway\'s cookies');
    const cookies = (await tab.context.cookies(gwOrigin)).filter((c) => c.name.startsWith('__Host-embedgate')).map((c) => ({ name: c.name, httpOnly: c.httpOnly, secure: c.secure, sameSite: c.sameSite, path: c.path }));
    assert.deepEqual(cookies, [{ name: SESSION_COOKIE, httpOnly: true, secure: true, sameSite: 'Lax', path: '/' }], 'the session cookie only; the sign-in cookie is gone');
    // The session works for the app's scripts too.
    const status = await tab.page.evaluate(async () => (await fetch('/sales/_dash-layout')).status);
    assert.equal(status, 200);
    await tab.close();
  });

  it('scripts, API clients and WebSocket upgrades without a session get 401 JSON, never a redirect', async () => {
    for (const headers of [['Accept: application/json'], ['Sec-Fetch-Mode: cors', 'Sec-Fetch-Dest: empty', 'Accept: */*'], ['Accept: */*']]) {
      const response = await rawRequest(gwOrigin, '/sales/_dash-layout', headers);
      assert.equal(response.status, 401, headers.join(', '));
      assert.equal(response.headers.location, undefined);
      assert.equal((JSON.parse(response.body) as { error: string }).error, 'missing_token');
    }
    const post = await rawRequest(gwOrigin, '/sales/_dash-update-component', ['Accept: text/html', 'Content-Type: application/json'], 'POST', '{}');
    assert.equal(post.status, 401, 'a POST is never sent to sign in');
  });

  it('the redirect carries PKCE S256, a fresh state and nonce, and the configured redirect_uri whatever Host says', async () => {
    const first = await rawRequest(gwOrigin, '/sales/', [...NAVIGATION, 'X-Forwarded-Host: evil.example', 'X-Forwarded-Proto: https']);
    const second = await rawRequest(gwOrigin, '/sales/', [...NAVIGATION, 'Host: evil.example']);
    const urls = [first, second].map((response) => {
      assert.equal(response.status, 302);
      assert.equal(response.headers['cache-control'], 'no-store');
      return new URL(response.headers.location ?? '');
    });
    for (const url of urls) {
      assert.equal(url.origin, idp.issuer);
      assert.equal(url.searchParams.get('redirect_uri'), `${gwOrigin}/_embedgate/callback`);
      assert.equal(url.searchParams.get('code_challenge_method'), 'S256');
      assert.match(url.searchParams.get('code_challenge') ?? '', /^[A-Za-z0-9_-]{43}$/);
      assert.equal(url.searchParams.get('response_type'), 'code');
      assert.equal(url.searchParams.get('resource'), GATEWAY_AUDIENCE);
    }
    const [a, b] = urls as [URL, URL];
    assert.notEqual(a.searchParams.get('state'), b.searchParams.get('state'));
    assert.notEqual(a.searchParams.get('nonce'), b.searchParams.get('nonce'));
    assert.notEqual(a.searchParams.get('code_challenge'), b.searchParams.get('code_challenge'));
    const cookie = first.setCookies[0] ?? '';
    assert.match(cookie, /^__Host-embedgate-tx-[A-Za-z0-9_-]{16}=[^;]+; Path=\/; Max-Age=600; Secure; HttpOnly; SameSite=Lax$/);
    assert.ok(!cookie.includes(a.searchParams.get('state') ?? '-'), 'the state is not readable in the cookie');
  });

  it('parallel sign-ins each get their own cookie, at most five: the oldest make way', async () => {
    const jar = new Map<string, string>();
    for (let i = 0; i < 7; i++) {
      const cookie = [...jar].map(([name, value]) => `${name}=${value}`).join('; ');
      const response = await rawRequest(gwOrigin, '/sales/', [...NAVIGATION, ...(cookie === '' ? [] : [`Cookie: ${cookie}`])]);
      assert.equal(response.status, 302);
      for (const line of response.setCookies) {
        const [pair = ''] = line.split(';');
        const name = pair.slice(0, pair.indexOf('='));
        if (line.includes('Max-Age=0')) jar.delete(name);
        else jar.set(name, pair.slice(name.length + 1));
      }
    }
    assert.equal(jar.size, 5);
  });

  it('the callback refuses answers this browser did not start: unknown state, no cookie, a tampered cookie, a swapped state', async () => {
    const started = await rawRequest(gwOrigin, '/sales/', NAVIGATION);
    const state = new URL(started.headers.location ?? '').searchParams.get('state') ?? '';
    const [pair = ''] = (started.setCookies[0] ?? '').split(';');
    const tampered = `${pair.slice(0, -4)}AAAA`;
    const script = '<script>alert(1)</script>';
    const cases: Array<[string, string, string[]]> = [
      ['no cookie', `state=${state}&code=abc`, []],
      ['unknown state', `state=${encodeURIComponent(script)}&code=abc`, [`Cookie: ${pair}`]],
      ['tampered cookie', `state=${state}&code=abc`, [`Cookie: ${tampered}`]],
      ['no state', 'code=abc', [`Cookie: ${pair}`]],
      ['an error from the provider', `state=${state}&error=access_denied&error_description=${encodeURIComponent(script)}`, [`Cookie: ${pair}`]],
      ['a forged code', `state=${state}&code=forged&iss=${encodeURIComponent(idp.issuer)}`, [`Cookie: ${pair}`]],
    ];
    for (const [label, query, headers] of cases) {
      const response = await rawRequest(gwOrigin, `/_embedgate/callback?${query}`, [...NAVIGATION, ...headers]);
      assert.equal(response.status, 400, label);
      assert.ok(!response.setCookies.some((c) => c.startsWith(`${SESSION_COOKIE}=`)), `${label}: no session`);
      assert.ok(!response.body.includes('<script>alert'), `${label}: nothing echoed`);
      assert.match(response.body, /login_failed/, label);
    }
  });

  it('sign-out: a POST from the gateway\'s page ends the session and the IdP session; Back does not bring the page back', async () => {
    const tab = await openTab(browser);
    await signIn(tab.page, '/sales/');
    assert.match(await tab.page.content(), /app page/);
    const logoutRequests: Array<{ url: string; method: string; body: string }> = [];
    tab.page.on('request', (request) => {
      if (request.url().startsWith(idp.issuer) && request.url().includes('session/end')) {
        logoutRequests.push({ url: request.url(), method: request.method(), body: request.postData() ?? '' });
      }
    });
    await tab.page.goto(`${gwOrigin}/_embedgate/logout`);
    await tab.page.getByRole('button', { name: 'Sign out' }).click();
    await tab.page.getByRole('button', { name: 'Yes, sign me out' }).click();
    // Back at the app, signed out everywhere: the gateway sends the browser to the IdP's login form again.
    await tab.page.waitForURL(new RegExp(`^${idp.issuer}/interaction/`));
    const endSession = new URL(logoutRequests[0]?.url ?? 'http://missing.invalid/');
    assert.equal(endSession.searchParams.get('post_logout_redirect_uri'), `${gwOrigin}/sales/`);
    assert.equal(endSession.searchParams.get('client_id'), 'gateway');
    assert.equal(endSession.searchParams.get('id_token_hint'), null, 'no token in a URL the gateway builds');
    assert.deepEqual((await tab.context.cookies(gwOrigin)).filter((c) => c.name === SESSION_COOKIE), [], 'the session cookie is gone');
    for (let step = 0; step < 4; step++) {
      await tab.page.goBack().catch(() => undefined);
      assert.doesNotMatch(await tab.page.content(), /app page/, `Back (${step + 1}) shows no app data`);
    }
    await tab.close();
  });

  it('sign-out only from the gateway\'s own origin: a cross-site POST is refused and the session lives on', async () => {
    for (const origin of ['Origin: http://evil.example', 'Origin: null']) {
      const response = await rawRequest(gwOrigin, '/_embedgate/logout', [origin, `Cookie: ${SESSION_COOKIE}=${'A'.repeat(43)}`], 'POST');
      assert.equal(response.status, 403, origin);
    }
  });
});
