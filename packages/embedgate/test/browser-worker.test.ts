// Chromium (third-party cookies blocked): the session made by the host page before its iframe navigates (one page
// load, no bootstrap), and worker mode forced on a gateway, where no cookie exists at all and the frame's service
// worker carries the session: the app renders, its callback rules hold, it lives past several token lifetimes, its
// WebSocket works and closes at sign-out, and a host on an unlisted origin gets nothing.
import assert from 'node:assert/strict';
import { after, afterEach, before, describe, it } from 'node:test';
import type { Browser, Frame } from 'playwright-core';
import { launchChromium, openTab, type BrowserTab } from './support/chromium.js';
import { gatewayFrame, hostState, startEmbedEnv, textMatching, waitForHostEvent, type EmbedEnv } from './support/embed-browser-env.js';

let browser: Browser;
const tabs: BrowserTab[] = [];

before(async () => {
  browser = await launchChromium();
});

afterEach(async () => {
  for (const opened of tabs.splice(0)) await opened.close().catch(() => undefined);
});

after(async () => {
  await browser?.close();
});

async function tab(): Promise<BrowserTab> {
  const opened = await openTab(browser);
  tabs.push(opened);
  return opened;
}

function appFrame(env: EmbedEnv, t: BrowserTab): Frame {
  const frame = gatewayFrame(t.page, env.gwOrigin);
  assert.ok(frame !== undefined, `the app is framed (frames: ${t.page.frames().map((f) => f.url()).join(', ')})`);
  return frame;
}

/** Bootstrap pages the gateway served (an iframe navigation answered 401 with the bootstrap). */
const bootstraps = (env: EmbedEnv, from: number): number =>
  env.gatewayRequests().slice(from).filter((r) => r.method === 'GET' && r.path.startsWith('/sales/') && r.status === 401).length;

describe('the session made before the iframe navigates (attach({ src }), Chromium, third-party cookies blocked)', () => {
  let env: EmbedEnv;
  before(async () => {
    env = await startEmbedEnv();
  });
  after(async () => {
    await env?.close();
  });

  it('the iframe\'s first page load is the app itself: no bootstrap page, one getToken, callback rules hold', async () => {
    const mark = env.gatewayRequests().length;
    const t = await tab();
    await t.page.goto(`${env.host.origin}/host.html?user=alice&before=1`);
    await waitForHostEvent(t.page, 'ready');
    const frame = appFrame(env, t);
    assert.equal(await textMatching(frame, '#layout', /^\d+$/), '200');
    assert.equal(await textMatching(frame, '#payroll', /^\d+$/), '403');
    assert.equal(bootstraps(env, mark), 0, 'no bootstrap page');
    const seen = env.gatewayRequests().slice(mark);
    assert.equal(seen.filter((r) => r.method === 'POST' && r.path === '/_embedgate/session').length, 1, 'one session POST (the host page\'s)');
    const state = await hostState(t.page);
    assert.equal(state.tokenCalls, 1, 'the frame got the host\'s token again without a second getToken');
    assert.equal(await t.page.evaluate('window.frameLoads'), 1, 'one page load in the iframe');
  });
});

describe('worker mode forced (Chromium, third-party cookies blocked): no cookie at all', () => {
  let env: EmbedEnv;
  before(async () => {
    env = await startEmbedEnv({ mode: 'worker' });
  });
  after(async () => {
    await env?.close();
  });

  async function signedIn(user: string, ttl = 300, query = ''): Promise<BrowserTab> {
    const t = await tab();
    await t.page.goto(`${env.host.origin}/host.html?user=${user}&ttl=${ttl}${query}`);
    await waitForHostEvent(t.page, 'ready');
    return t;
  }

  it('the app renders under its service worker, its callbacks run (the analyst\'s payroll refused), the WebSocket echoes, and no cookie exists', async () => {
    const t = await signedIn('alice');
    const frame = appFrame(env, t);
    assert.equal(await textMatching(frame, '#layout', /^\d+$/), '200');
    assert.equal(await textMatching(frame, '#chart', /^\d+$/), '200');
    assert.equal(await textMatching(frame, '#payroll', /^\d+$/), '403');
    assert.match(await textMatching(frame, '#ws-echo', /\S/), /^echo: ping /, 'the ticketed WebSocket echoes');
    assert.equal(await frame.evaluate('navigator.serviceWorker.controller !== null'), true, 'the page is controlled by the worker');
    assert.deepEqual(await t.context.cookies(), [], 'no cookie in the jar');
    const app = env.app.requests.filter((r) => r.path === '/sales/_dash-layout').at(-1);
    assert.equal(app?.user, 'alice');
  });

  it('the session outlives two token lifetimes without a reload, renewed through the worker', async () => {
    const ttl = 8;
    const t = await signedIn('alice', ttl);
    const frame = appFrame(env, t);
    await textMatching(frame, '#layout', /^\d+$/);
    const loadId = await frame.evaluate('window.appLoadId');
    await frame.click('#loop-start');
    await textMatching(frame, '#loop-ok', new RegExp(`^(${2 * ttl + 3}|[3-9]\\d)$`), (2 * ttl + 10) * 1000);
    assert.equal(await frame.locator('#loop-failed').textContent(), '0', 'no callback failed');
    assert.equal(await frame.evaluate('window.appLoadId'), loadId, 'never reloaded');
    assert.ok((await hostState(t.page)).tokenCalls >= 3, 'renewed with fresh tokens');
  });

  it('a worker the browser stopped gets the handle back from the app page: its next request succeeds with no new token or session', async () => {
    const t = await signedIn('alice');
    const frame = appFrame(env, t);
    await textMatching(frame, '#layout', /^\d+$/);
    const tokenCalls = (await hostState(t.page)).tokenCalls;
    const posts = env.gatewayRequests().filter((r) => r.path === '/_embedgate/session').length;
    const cdp = await t.context.newCDPSession(t.page);
    await cdp.send('ServiceWorker.enable');
    await cdp.send('ServiceWorker.stopAllWorkers');
    // An image: a request the frame script does not touch (its fetch and XHR carry the bearer in header mode).
    const mark = env.gatewayRequests().length;
    await frame.evaluate(`new Promise((done) => { const image = new Image(); image.onload = image.onerror = done; image.src = '/sales/_dash-layout'; })`);
    const image = env.gatewayRequests().slice(mark).find((r) => r.path === '/sales/_dash-layout');
    assert.equal(image?.status, 200, 'the restarted worker asked the page for the handle');
    assert.equal((await hostState(t.page)).tokenCalls, tokenCalls, 'no new token');
    assert.equal(env.gatewayRequests().filter((r) => r.path === '/_embedgate/session').length, posts, 'no new session');
  });

  it('a reload the browser sends past the worker comes back to the bootstrap page: the frame registers its worker afresh once and the app loads; where every reload is sent past it, the frame stops after that one retry with a message', async () => {
    const t = await signedIn('alice');
    const frame = appFrame(env, t);
    await textMatching(frame, '#layout', /^\d+$/);
    // What Chromium's registration scope cache did when two frames registered at once: the frame's reload went to
    // the network. Here the registration is gone (unregistered), so the reload is not routed to the worker either.
    const bypass = `navigator.serviceWorker.getRegistration().then((r) => r.unregister()).then(() => { setTimeout(() => location.reload()); return true; })`;
    const mark = env.gatewayRequests().length;
    await frame.evaluate(bypass);
    await waitForHostEvent(t.page, 'ready', 2);
    assert.equal(await textMatching(frame, '#layout', /^\d+$/), '200', 'the app loaded again');
    assert.equal(await frame.evaluate('navigator.serviceWorker.controller !== null'), true, 'under a worker registered afresh');
    const seen = env.gatewayRequests().slice(mark);
    assert.deepEqual(seen.filter((r) => r.method === 'GET' && r.path === '/sales/').map((r) => r.status), [401, 200], 'one bootstrap page, then the app');
    assert.ok(seen.some((r) => r.path === '/_embedgate/worker.js'), 'the worker was registered again');
    assert.deepEqual((await hostState(t.page)).events.map((e) => e.type), ['ready', 'ready'], 'no error meanwhile');

    // Now the browser sends every request of the frame past its worker: a retry cannot help, and the frame stops.
    const cdp = await t.context.newCDPSession(frame);
    await cdp.send('Network.enable');
    await cdp.send('Network.setBypassServiceWorker', { bypass: true });
    const again = env.gatewayRequests().length;
    await frame.evaluate('setTimeout(() => location.reload()), true');
    await waitForHostEvent(t.page, 'error');
    assert.match(await textMatching(frame, '[role=alert]', /\S/), /blocked the sign-in cookie/, 'the frame says it cannot sign in');
    const pages = env.gatewayRequests().slice(again).filter((r) => r.method === 'GET' && r.path === '/sales/').map((r) => r.status);
    assert.deepEqual(pages, [401, 401, 401], 'the bootstrap page, its reload, one retry with a fresh worker, and no more');
  });

  it('sign-out in the host ends the frame\'s access and closes its WebSocket', async () => {
    const t = await signedIn('alice');
    const frame = appFrame(env, t);
    await textMatching(frame, '#ws-echo', /\S/);
    await t.page.evaluate('window.handle.signOut()');
    await waitForHostEvent(t.page, 'signed-out');
    assert.equal(await textMatching(frame, '#ws-close', /\d/), '1008');
    const status = await frame.evaluate(`fetch('/sales/_dash-layout').then((r) => r.status)`);
    assert.equal(status, 401, 'the next request is refused');
  });

  it('the worker puts the handle on nothing bound for another origin, and no foreign page can register it', async () => {
    const t = await signedIn('alice');
    const frame = appFrame(env, t);
    await textMatching(frame, '#layout', /^\d+$/);
    const elsewhere = `${env.app.url}/sales/elsewhere`;
    const status = await frame.evaluate(`fetch(${JSON.stringify(elsewhere)}, { mode: 'no-cors' }).then(() => 'sent', () => 'failed')`);
    assert.equal(status, 'sent');
    const straight = env.app.requestsTo('/sales/elsewhere');
    assert.equal(straight.length, 1, 'the request went out');
    assert.equal(straight[0]?.sessionHandle, undefined, 'without the handle');
    assert.ok(env.app.requests.every((r) => r.sessionHandle === undefined), 'no request reached the app with a handle');

    const foreign = await tab();
    await foreign.page.goto(`${env.foreign.origin}/frame.html?src=about:blank`);
    const registered = await foreign.page.evaluate(`navigator.serviceWorker.register(${JSON.stringify(`${env.gwOrigin}/_embedgate/worker.js`)}, { scope: ${JSON.stringify(`${env.gwOrigin}/sales/`)} }).then(() => 'registered', (e) => e.name)`);
    assert.equal(registered, 'SecurityError');
  });

  it('a host on an unlisted origin gets nothing: no session, no worker, no app', async () => {
    const mark = env.gatewayRequests().length;
    const t = await tab();
    await t.page.goto(`${env.other.origin}/host.html?user=alice`);
    await t.page.waitForLoadState('load');
    const posted = env.gatewayRequests().slice(mark).filter((r) => r.path === '/_embedgate/session' && r.method === 'POST');
    assert.deepEqual(posted, []);
    assert.equal((await hostState(t.page)).tokenCalls, 0, 'getToken never called');
    assert.deepEqual(env.app.requests.filter((r) => r.user === undefined && r.path === '/sales/'), []);
  });
});
