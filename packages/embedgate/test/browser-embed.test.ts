// The embedded flow in a real browser: Debian's Chromium (third-party cookies blocked) shows a host page on
// http://localhost:<port> that frames an app behind the gateway on http://127.0.0.1:<port> (another site), with the
// host SDK from /_embedgate/host.js and tokens from the host's own endpoint. Sign-in, per-callback roles, renewal
// without reload, sign-out, WebSockets, and what a client without credentials gets.
import assert from 'node:assert/strict';
import { after, afterEach, before, describe, it } from 'node:test';
import type { Browser } from 'playwright-core';
import { launchChromium, openTab, type BrowserTab } from './support/chromium.js';
import {
  gatewayFrame, hostState, PROBE_COOKIE, startEmbedEnv, textMatching, waitForHostEvent, type EmbedEnv,
} from './support/embed-browser-env.js';

const SESSION_COOKIE = '__Host-embedgate';
/** Lifetime of the host's tokens in the renewal test; the test runs for several of them. */
const SHORT_TTL_SECONDS = 10;
const RENEWAL_RUN_MS = 35_000;

let env: EmbedEnv;
let browser: Browser;
const tabs: BrowserTab[] = [];

before(async () => {
  env = await startEmbedEnv();
  browser = await launchChromium();
});

// Each test closes what it opened, so no page of an earlier test keeps calling the app.
afterEach(async () => {
  for (const opened of tabs.splice(0)) await opened.close().catch(() => undefined);
});

after(async () => {
  await browser?.close();
  await env?.close();
});

async function tab(): Promise<BrowserTab> {
  const opened = await openTab(browser);
  tabs.push(opened);
  return opened;
}

/**
 * Opens the allowed host page for `user` and waits until the framed app is signed in and ready, and the requests the
 * app makes on load (layout, two callbacks, the WebSocket) have been answered.
 */
async function signedIn(user: string, ttl = 300): Promise<BrowserTab> {
  const t = await tab();
  await t.page.goto(`${env.host.origin}/host.html?user=${user}&ttl=${ttl}`);
  await waitForHostEvent(t.page, 'ready');
  const frame = appFrameOf(t);
  for (const id of ['#layout', '#chart', '#payroll']) await textMatching(frame, id, /^\d+$/);
  await textMatching(frame, '#ws-echo', /\S/);
  return t;
}

function appFrameOf(t: BrowserTab): NonNullable<ReturnType<typeof gatewayFrame>> {
  const frame = gatewayFrame(t.page, env.gwOrigin);
  assert.ok(frame !== undefined, `the #app iframe shows the app (frames: ${t.page.frames().map((f) => f.url()).join(', ')})`);
  return frame;
}

/** Opens a WebSocket to the app from the frame; resolves 'open' or 'closed <code>'. */
const OPEN_SOCKET = `new Promise((resolve) => {
  const ws = new WebSocket('ws://' + location.host + '/sales/ws');
  ws.onopen = () => { ws.close(1000); resolve('open'); };
  ws.onclose = (e) => resolve('closed ' + e.code);
})`;

const problems = (t: BrowserTab): string[] => [...t.errors, ...t.console.filter((line) => /embedgate|Uncaught/i.test(line))];

describe('embedded app in a cross-site iframe (Chromium, third-party cookies blocked)', () => {
  it('1: the app renders signed in; layout and a normal callback are 200, an analyst\'s payroll callback 403 (an admin\'s 200); the upstream sees X-Forwarded-User = sub; the host gets ready', async () => {
    const before = env.app.requests.length;
    const alice = await signedIn('alice');
    const frame = appFrameOf(alice);
    assert.equal(await frame.title(), 'Sales dashboard');
    assert.equal(await textMatching(frame, '#layout', /^\d+$/), '200', 'GET /sales/_dash-layout');
    assert.equal(await textMatching(frame, '#chart', /^\d+$/), '200', 'callback chart.figure');
    assert.equal(await textMatching(frame, '#payroll', /^\d+$/), '403', 'callback payroll.children for an analyst');

    const seen = env.app.requests.slice(before);
    assert.deepEqual(seen.map((r) => `${r.method} ${r.path}${r.output === undefined ? '' : ` ${r.output}`}`).sort(),
      ['GET /sales/', 'GET /sales/_dash-layout', 'POST /sales/_dash-update-component chart.figure'],
      'the upstream got the page, the layout and the allowed callback only (never the payroll callback)');
    assert.ok(seen.every((r) => r.user === 'alice'), `X-Forwarded-User is the token's sub on every request: ${JSON.stringify(seen.map((r) => r.user))}`);

    const state = await hostState(alice.page);
    assert.deepEqual(state.events.map((e) => e.type), ['ready'], 'the host got ready (and nothing else)');
    assert.equal(state.tokenCalls, 1, 'getToken once: the app page after the reload gets the bootstrap\'s token again');

    // Third-party cookies really are blocked in this frame: the app's unpartitioned SameSite=None cookie was dropped,
    // script cannot read or write cookies there, and the only cookie is the gateway's partitioned one.
    assert.ok(seen.every((r) => !(r.cookie ?? '').includes(PROBE_COOKIE)), 'the unpartitioned probe cookie never came back');
    assert.equal(await textMatching(frame, '#cookie-probe', /\S/), 'none readable');
    const cookies = await alice.context.cookies();
    assert.deepEqual(cookies.map((c) => c.name), [SESSION_COOKIE], `cookies in the jar: ${JSON.stringify(cookies)}`);
    const [session] = cookies;
    assert.equal(session?.partitionKey, 'http://localhost', 'partitioned under the host\'s site');
    assert.equal(session?.httpOnly, true);
    assert.equal(session?.secure, true);
    assert.equal(session?.sameSite, 'None');
    assert.deepEqual(problems(alice), []);

    const bob = await signedIn('bob');
    const bobFrame = appFrameOf(bob);
    assert.equal(await textMatching(bobFrame, '#payroll', /^\d+$/), '200', 'callback payroll.children for an admin');
    assert.equal(await textMatching(bobFrame, '#chart', /^\d+$/), '200');
    const payroll = env.app.requestsTo('/sales/_dash-update-component', 'POST').filter((r) => r.output === 'payroll.children');
    assert.deepEqual(payroll.map((r) => r.user), ['bob'], 'only the admin\'s payroll callback reached the app');
    assert.deepEqual(problems(bob), []);
  });

  it(`2: renewal without reload: with ${SHORT_TTL_SECONDS} s tokens the app calls back every second for ${RENEWAL_RUN_MS / 1000} s, all succeed, getToken is called again and again, and the page never reloads`, async (ctx) => {
    const t = await signedIn('alice', SHORT_TTL_SECONDS);
    const frame = appFrameOf(t);
    assert.equal(await textMatching(frame, '#chart', /^\d+$/), '200');
    const loadId = await frame.evaluate('window.appLoadId') as string;
    assert.match(loadId, /^[a-z0-9]+$/);
    const pagesBefore = env.app.requestsTo('/sales/', 'GET').length;
    const sessionPostsBefore = env.gatewayRequests().filter((r) => r.method === 'POST' && r.path === '/_embedgate/session').length;
    const logMark = env.gw.logs.length;
    const callsBefore = (await hostState(t.page)).tokenCalls;
    const started = Date.now();

    await frame.locator('#loop-start').click();
    await textMatching(frame, '#loop-ok', /^[1-9]\d*$/, 5000);
    // The one fixed wait of the suite: several token lifetimes have to pass.
    await t.page.waitForTimeout(RENEWAL_RUN_MS);

    const statuses = JSON.parse(await frame.evaluate('JSON.stringify(window.appStatuses)') as string) as Array<{ output: string; status: number; at: number }>;
    const during = statuses.filter((s) => s.at >= started);
    assert.ok(during.length >= RENEWAL_RUN_MS / 1000 - 3, `the app kept calling back (${during.length} callbacks)`);
    assert.deepEqual(during.filter((s) => s.status !== 200), [], 'every callback succeeded');
    assert.equal(await frame.locator('#loop-failed').textContent(), '0');

    assert.equal(await frame.evaluate('window.appLoadId'), loadId, 'the same document: never reloaded');
    assert.equal(env.app.requestsTo('/sales/', 'GET').length, pagesBefore, 'the app page was not fetched again');
    const state = await hostState(t.page);
    const renewals = state.tokenCalls - callsBefore;
    assert.ok(renewals >= 3, `getToken was called again during the run (${renewals} times)`);
    assert.deepEqual(state.events.map((e) => e.type), ['ready'], 'no error, sign-out or second ready');
    const rotations = env.gatewayRequests().filter((r) => r.method === 'POST' && r.path === '/_embedgate/session').slice(sessionPostsBefore);
    assert.ok(rotations.length >= 3 && rotations.every((r) => r.status === 200), `the session was rotated: ${JSON.stringify(rotations)}`);
    // Renewal happened before expiry: the gateway refused nothing (no 401 answered by a renew-and-retry).
    const audit = (line: string): string | undefined => (JSON.parse(line) as { audit?: string }).audit;
    assert.ok(env.gw.logs.slice(0, logMark).some((line) => audit(line) === 'deny'), 'earlier denials (the bootstrap\'s 401) are in the log');
    const denials = env.gw.logs.slice(logMark).filter((line) => audit(line) === 'deny');
    assert.deepEqual(denials, [], 'the gateway denied nothing during the run');
    const [cookie] = (await t.context.cookies()).filter((c) => c.name === SESSION_COOKIE);
    assert.ok(cookie !== undefined && cookie.expires * 1000 > started + RENEWAL_RUN_MS, 'the current cookie outlives the first token by far');
    assert.equal(await frame.locator('[role=alert]').count(), 0, 'no overlay');
    // The socket opened at load followed the rotations, and a new one opens on the current cookie alone
    // (a WebSocket cannot carry the bearer): the cookie was rotated too, long after the first one expired.
    assert.equal(await frame.locator('#ws-state').textContent(), 'open', 'the app\'s WebSocket is still open');
    assert.equal(await frame.evaluate(OPEN_SOCKET), 'open', 'a new WebSocket with the renewed cookie');
    assert.deepEqual(problems(t), []);
    ctx.diagnostic(`${during.length} callbacks, ${renewals} getToken calls and ${rotations.length} session rotations in ${RENEWAL_RUN_MS / 1000} s`);
  });

  it('3: signOut() from the host ends the session: the app shows it is signed out, the host gets signed-out, and the next callback is 401', async () => {
    const t = await signedIn('alice');
    const frame = appFrameOf(t);
    assert.equal(await textMatching(frame, '#chart', /^\d+$/), '200');
    const upstreamBefore = env.app.requests.length;

    await t.page.evaluate('window.handle.signOut()');
    await waitForHostEvent(t.page, 'signed-out');
    assert.match(await textMatching(frame, '[role=alert]', /signed out/i), /You are signed out/);
    assert.ok(env.gatewayRequests().some((r) => r.method === 'DELETE' && r.path === '/_embedgate/session' && r.status === 204), 'DELETE /_embedgate/session');
    assert.deepEqual((await t.context.cookies()).filter((c) => c.name === SESSION_COOKIE), [], 'the session cookie is gone');

    assert.equal(await frame.evaluate('window.dashCallback("chart.figure")'), 401, 'a callback after sign-out');
    const statuses = env.gatewayRequests().filter((r) => r.path === '/sales/_dash-update-component');
    assert.equal(statuses.at(-1)?.status, 401);
    assert.equal(env.app.requests.length, upstreamBefore, 'nothing reached the app after sign-out');
    assert.deepEqual((await hostState(t.page)).events.map((e) => e.type), ['ready', 'signed-out']);
  });

  it('5: a WebSocket in the framed app works (echo) and is closed with 1008 when the host signs out', async () => {
    const handshakesBefore = env.app.wsHandshakes.length;
    const t = await signedIn('alice');
    const frame = appFrameOf(t);
    const loadId = await frame.evaluate('window.appLoadId') as string;
    assert.equal(await textMatching(frame, '#ws-state', /open|closed|error/), 'open');
    assert.equal(await textMatching(frame, '#ws-echo', /\S/), `echo: ping ${loadId}`);
    const handshakes = env.app.wsHandshakes.slice(handshakesBefore);
    assert.equal(handshakes.length, 1);
    assert.equal(handshakes[0]?.user, 'alice', 'the upstream handshake carries X-Forwarded-User');
    assert.equal(handshakes[0]?.origin, env.gwOrigin);
    assert.ok(!(handshakes[0]?.cookie ?? '').includes(SESSION_COOKIE), 'the session cookie is not passed to the app');

    await t.page.evaluate('window.handle.signOut()');
    assert.equal(await textMatching(frame, '#ws-close', /^\d+$/, 10_000), '1008', 'close code');
    assert.equal(await frame.locator('#ws-state').textContent(), 'closed');
  });

  it('6: without cookie or token a plain client gets 401 on the app page, the layout, a callback, and the bootstrap\'s session POST', async () => {
    const before = env.app.requests.length;
    const checks: Array<[string, RequestInit]> = [
      ['/sales/', {}],
      ['/sales/_dash-layout', {}],
      ['/sales/_dash-update-component', { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"output":"chart.figure"}' }],
      // What the bootstrap sends, minus the token (a forged Origin is easy outside a browser).
      ['/_embedgate/session', { method: 'POST', headers: { 'content-type': 'application/json', origin: env.gwOrigin }, body: '{"path":"/sales/"}' }],
    ];
    for (const [path, init] of checks) {
      const response = await fetch(`${env.gwOrigin}${path}`, { ...init, redirect: 'manual' });
      const body = await response.text();
      assert.equal(response.status, 401, `${init.method ?? 'GET'} ${path}: ${body}`);
      assert.match(response.headers.get('www-authenticate') ?? '', /^Bearer /, path);
      assert.deepEqual(response.headers.getSetCookie(), [], `${path}: no cookie`);
      assert.ok(!body.includes('quarterly sales') && !body.includes('Sales dashboard'), `${path}: no app data`);
    }
    // The session endpoint without any Origin (curl's default) is refused before the token is even looked at.
    const bare = await fetch(`${env.gwOrigin}/_embedgate/session`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"path":"/sales/"}' });
    assert.equal(bare.status, 403, await bare.text());
    assert.deepEqual(bare.headers.getSetCookie(), []);
    assert.equal(env.app.requests.length, before, 'the upstream received nothing');
  });

  for (const [sdk, how] of [['module', 'import { attach } from …/_embedgate/host.mjs'], ['import', 'await import(…/_embedgate/host.js), then window.embedgate']] as const) {
    it(`7: a host page on another site loads the SDK as an ES module (${how}): the app signs in and its callback rules hold`, async () => {
      const t = await tab();
      await t.page.goto(`${env.host.origin}/host.html?user=alice&sdk=${sdk}`);
      await waitForHostEvent(t.page, 'ready');
      const frame = appFrameOf(t);
      assert.equal(await textMatching(frame, '#layout', /^\d+$/), '200');
      assert.equal(await textMatching(frame, '#payroll', /^\d+$/), '403', 'an analyst\'s payroll callback is still refused');
      assert.deepEqual((await hostState(t.page)).events.map((e) => e.type), ['ready']);
      assert.equal(await t.page.evaluate('typeof window.embedgate'), sdk === 'module' ? 'undefined' : 'object', 'the module sets no global; host.js does');
      assert.deepEqual(problems(t), []);
    });
  }

  it('7: host.js and host.mjs answer CORS for any origin (public scripts, no credentials); frame.js does not', async () => {
    for (const path of ['/_embedgate/host.js', '/_embedgate/host.mjs']) {
      const response = await fetch(`${env.gwOrigin}${path}`, { headers: { origin: 'https://any.example' } });
      assert.equal(response.status, 200, path);
      assert.equal(response.headers.get('access-control-allow-origin'), '*', path);
      assert.equal(response.headers.get('access-control-allow-credentials'), null, path);
      assert.match(response.headers.get('content-type') ?? '', /^text\/javascript/, path);
    }
    const frameScript = await fetch(`${env.gwOrigin}/_embedgate/frame.js`, { headers: { origin: 'https://any.example' } });
    assert.equal(frameScript.headers.get('access-control-allow-origin'), null);
  });
});
