// Security cases 105, 106, 107 and 109 on a gateway in cookieless worker mode (embed.mode: worker), in Chromium with
// third-party cookies blocked: the frame's service worker holds the session handle, so these check that nothing
// outside the gateway's origin can frame, read, replace or reach that handle (browser-framing.test.ts: cookie mode).
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { after, afterEach, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import type { Browser, Frame, Page } from 'playwright-core';
import { blockThirdPartyCookies, launchChromium, openTab, rawHeaders, type BrowserTab } from './support/chromium.js';
import { postMessageCalls } from './support/post-message-calls.js';
import { eventually } from './support/gateway.js';
import { rawRequest } from './support/raw-http.js';
import {
  FRAME_ANCESTORS_REFUSAL, gatewayFrame, hostState, startEmbedEnv, textMatching, waitForHostEvent, type EmbedEnv,
} from './support/embed-browser-env.js';

const SDK_DIST = join(dirname(fileURLToPath(import.meta.url)), '../../embed/dist');
const HANDLE_HEADER = 'x-embedgate-session';

let env: EmbedEnv;
let browser: Browser;
const tabs: BrowserTab[] = [];

before(async () => {
  env = await startEmbedEnv({ mode: 'worker' });
  browser = await launchChromium();
});

// Each test closes what it opened, so no page (or service worker) of an earlier test keeps calling the app.
afterEach(async () => {
  for (const opened of tabs.splice(0)) await opened.close().catch(() => undefined);
});

after(async () => {
  await browser?.close();
  await env?.close();
});

/**
 * Records, in every frame that is not on the gateway's origin, each message it receives: on the window and on any
 * MessagePort whose onmessage or message listener the page sets (the host SDK's port, an attacker's). Observation
 * only: the listeners run as before.
 */
const RECEIVED_RECORDER = (gateway: string): string => `(() => {
  if (location.origin === ${JSON.stringify(gateway)}) return;
  const received = [];
  Object.defineProperty(window, 'receivedMessages', { value: received });
  const record = (kind, e) => {
    let data; try { data = JSON.stringify(e.data); } catch (x) { data = String(e.data); }
    received.push({ kind: kind, origin: e.origin, data: data, ports: e.ports ? e.ports.length : 0 });
  };
  window.addEventListener('message', (e) => record('window', e), true);
  const onmessage = Object.getOwnPropertyDescriptor(MessagePort.prototype, 'onmessage');
  Object.defineProperty(MessagePort.prototype, 'onmessage', {
    configurable: true, enumerable: onmessage.enumerable,
    get() { return onmessage.get.call(this); },
    set(listener) {
      onmessage.set.call(this, typeof listener === 'function' ? function (e) { record('port', e); return listener.call(this, e); } : listener);
    },
  });
  const add = MessagePort.prototype.addEventListener;
  MessagePort.prototype.addEventListener = function (type, listener, options) {
    if (type === 'message') add.call(this, 'message', (e) => record('port', e), options);
    return add.call(this, type, listener, options);
  };
})();`;

interface Received {
  kind: 'window' | 'port';
  origin: string;
  data: string;
  ports: number;
}

async function received(page: Page | Frame): Promise<Received[]> {
  return JSON.parse(await page.evaluate('JSON.stringify(window.receivedMessages)') as string) as Received[];
}

async function tab(): Promise<BrowserTab> {
  const opened = await openTab(browser);
  tabs.push(opened);
  await opened.context.addInitScript({ content: RECEIVED_RECORDER(env.gwOrigin) });
  return opened;
}

/** Another page in the tab's context (same partitions, same service workers), third-party cookies blocked. */
async function secondPage(t: BrowserTab): Promise<Page> {
  const page = await t.context.newPage();
  await blockThirdPartyCookies(t.context, page);
  return page;
}

/**
 * A tab whose partition (the allowed host's site) holds a live worker session for alice: the app is framed, signed
 * in and controlled by the service worker, its requests on load are answered. Returns the app frame and the handle
 * the worker holds.
 */
async function tabWithSession(query = ''): Promise<{ t: BrowserTab; app: Frame; handle: string }> {
  const t = await tab();
  await t.page.goto(`${env.host.origin}/host.html?user=alice${query}`);
  await waitForHostEvent(t.page, 'ready');
  const app = gatewayFrame(t.page, env.gwOrigin);
  assert.ok(app !== undefined, `the app is framed (frames: ${t.page.frames().map((f) => f.url()).join(', ')})`);
  for (const id of ['#layout', '#chart', '#payroll']) await textMatching(app, id, /^\d+$/);
  await textMatching(app, '#ws-echo', /^echo: /);
  assert.equal(await app.evaluate('navigator.serviceWorker.controller !== null'), true, 'the app page is controlled by the service worker');
  assert.deepEqual(await t.context.cookies(), [], 'worker mode: no cookie at all');
  const handle = await workerHandle(app);
  assert.match(handle, /^[A-Za-z0-9_-]{43}$/);
  assert.equal(await probe(handle), 200, 'the handle the worker holds is the live session');
  return { t, app, handle };
}

/** The handle the service worker holds, asked the way the bootstrap page asks it (get-handle with a port). */
async function workerHandle(app: Frame): Promise<string> {
  return await app.evaluate(`new Promise((resolve, reject) => {
    const worker = navigator.serviceWorker.controller;
    if (!worker) return reject(new Error('the page has no service worker'));
    const { port1, port2 } = new MessageChannel();
    const timer = setTimeout(() => reject(new Error('the service worker did not answer')), 5000);
    port1.onmessage = (e) => { clearTimeout(timer); resolve(String(e.data.handle)); };
    worker.postMessage({ embedgate: 1, type: 'get-handle' }, [port2]);
  })`) as string;
}

/** The gateway's session probe for a handle: 200 while its session lives, 401 once it does not. */
async function probe(handle: string): Promise<number> {
  return (await env.gw.fetch('/_embedgate/session', { headers: { 'sec-fetch-site': 'same-origin', [HANDLE_HEADER]: handle } })).status;
}

/** Waits for Chromium's frame-ancestors refusal logged after console line `from`; returns the directive's sources. */
async function refusal(t: BrowserTab, from: number, framed = env.gwOrigin): Promise<string> {
  let sources = '';
  await eventually(() => t.consoleAt.slice(from).some((line) => {
    const match = FRAME_ANCESTORS_REFUSAL.exec(line.text);
    if (match === null || !(match[1] ?? '').startsWith(framed)) return false;
    sources = match[2] ?? '';
    return true;
  }), 10_000).catch(() => assert.fail(`no frame-ancestors refusal for ${framed}; console: ${JSON.stringify(t.console.slice(from))}`));
  return sources;
}

const gatewayLogFrom = (mark: number): string[] => env.gatewayRequests().slice(mark).map((r) => `${r.method} ${r.path} ${r.status}`);
const sessionPosts = (): number => env.gatewayRequests().filter((r) => r.method === 'POST' && r.path === '/_embedgate/session').length;
const errorFrames = (page: Page): Frame[] => page.frames().filter((f) => f.url().startsWith('chrome-error://'));
const url = (origin: string, path: string, params: Record<string, string> = {}): string =>
  `${origin}${path}${Object.keys(params).length === 0 ? '' : `?${new URLSearchParams(params).toString()}`}`;

describe('security cases H in worker mode (framing, postMessage, the service worker\'s handle)', () => {
  it('105 (worker mode): the session endpoint, the ws-ticket endpoint and the gateway\'s HTML error pages refuse to be framed, even by the allowed host whose partition holds a live worker session: real X-Frame-Options: DENY and frame-ancestors \'none\' headers', async () => {
    const { t } = await tabWithSession();
    const framer = await secondPage(t);
    const pages: Array<[string, number]> = [
      ['/_embedgate/session', 403],
      ['/_embedgate/ws-ticket', 405],
      ['/_embedgate/no-such-endpoint', 404],
      ['/no-app-here/', 404],
    ];
    for (const [path, status] of pages) {
      const from = t.consoleAt.length;
      const navigated = framer.waitForResponse((r) => r.url() === `${env.gwOrigin}${path}`);
      await framer.goto(url(env.host.origin, '/frame.html', { src: `${env.gwOrigin}${path}` }));
      const response = await navigated;
      assert.equal(response.status(), status, path);
      assert.equal(response.fromServiceWorker(), false, `${path}: outside the worker's scope, straight from the gateway`);
      // headers(), not allHeaders(): Chromium may never send the raw headers of a response it refuses to show.
      const headers = response.headers();
      assert.equal(headers['x-frame-options'], 'DENY', `${path}: X-Frame-Options header`);
      assert.match(headers['content-security-policy'] ?? '', /(^|;)\s*frame-ancestors 'none'\s*(;|$)/, `${path}: CSP header`);
      assert.match(headers['content-type'] ?? '', /^text\/html/, `${path}: an HTML page (what a frame would show)`);
      assert.equal(await refusal(t, from), "'none'", path);
      await framer.waitForFunction('window.frameLoads >= 1');
      assert.equal(errorFrames(framer).length, 1, `${path}: Chromium shows its error page instead`);
      assert.ok(gatewayFrame(framer, env.gwOrigin, '/') === undefined, `${path}: no gateway document in the frame`);
      // The same page fetched outside the browser: the protection is in headers, not in a <meta> tag.
      const { body } = await rawRequest(env.gwOrigin, path, ['Sec-Fetch-Dest: iframe', 'Sec-Fetch-Mode: navigate', 'Sec-Fetch-Site: cross-site', 'Accept: text/html']);
      assert.match(body, /^<!doctype html>/i, path);
      assert.doesNotMatch(body, /<meta[^>]+http-equiv/i, `${path}: no <meta> policy`);
    }
  });

  // The service worker fetches a framed navigation in its scope again with fetch() (Sec-Fetch-Mode: same-origin,
  // Sec-Fetch-Dest: empty); it says what the request was (X-Embedgate-Navigation), so the gateway still answers its
  // own errors there as a page: HTML with both framing headers, never an API call's JSON.
  it('105 (worker mode): a gateway error for a framed navigation inside the app\'s scope, fetched by the service worker, is still the HTML error page with frame-ancestors \'none\' and X-Frame-Options: DENY', async () => {
    const { t, app } = await tabWithSession();
    const framer = await secondPage(t);
    // A request through the worker just before: it is running and holds the handle (a restarted one asks the page).
    assert.equal(await app.evaluate('window.dashCallback("chart.figure")'), 200);
    const path = '/sales/a%2Fb';
    const navigated = framer.waitForResponse((r) => r.url() === `${env.gwOrigin}${path}`);
    await framer.goto(url(env.host.origin, '/frame.html', { src: `${env.gwOrigin}${path}` }));
    const response = await navigated;
    assert.equal(response.fromServiceWorker(), true, 'precondition: the worker answered the navigation');
    assert.equal(response.status(), 400);
    await framer.waitForFunction('window.frameLoads >= 1');
    assert.equal(errorFrames(framer).length, 1, 'Chromium shows its error page instead');
    assert.ok(gatewayFrame(framer, env.gwOrigin, '/') === undefined, 'no gateway document in the frame');
    const headers = response.headers();
    assert.equal(headers['x-frame-options'], 'DENY', 'X-Frame-Options header');
    assert.match(headers['content-security-policy'] ?? '', /(^|;)\s*frame-ancestors 'none'\s*(;|$)/,
      `CSP frame-ancestors 'none' header (got content-type ${headers['content-type']}, content-security-policy ${headers['content-security-policy']})`);
    assert.match(headers['content-type'] ?? '', /^text\/html/, 'the gateway\'s HTML error page, as a navigation without the worker gets');
  });

  it('a session ended on the server while the worker still holds its handle: reloading the host page gets the bootstrap page through the worker (HTML, not an API error) and signs the app in again', async () => {
    const { t, handle } = await tabWithSession();
    const ended = await env.gw.fetch('/_embedgate/session', { method: 'DELETE', headers: { origin: env.gwOrigin, [HANDLE_HEADER]: handle } });
    assert.equal(ended.status, 204, 'revoked from outside the browser');
    assert.equal(await probe(handle), 401);
    const mark = env.gatewayRequests().length;
    await t.page.reload();
    await waitForHostEvent(t.page, 'ready');
    const app = gatewayFrame(t.page, env.gwOrigin);
    assert.ok(app !== undefined, 'the app is framed again');
    await textMatching(app, '#layout', /^200$/);
    const log = gatewayLogFrom(mark).filter((line) => line.startsWith('GET /sales/ ') || line.startsWith('POST /_embedgate/session'));
    assert.deepEqual(log.slice(0, 3), ['GET /sales/ 401', 'POST /_embedgate/session 200', 'GET /sales/ 200'],
      'the stale handle got the bootstrap page, which made a new session, and the app loaded');
    assert.ok((await hostState(t.page)).tokenCalls >= 1, 'the reloaded host page was asked for a token');
    const renewed = await workerHandle(app);
    assert.notEqual(renewed, handle);
    assert.equal(await probe(renewed), 200);
  });

  it('106 (worker mode, static): the built worker.min.js, worker-page.min.js and bootstrap.min.js post to no window but the parent, with a computed target origin; every other postMessage is to a same-origin service worker, client or port (no target origin, at most a transfer list); no "*" anywhere', () => {
    const expected: Record<string, { windowCalls: number; minCalls: number }> = {
      'worker.min.js': { windowCalls: 0, minCalls: 3 },
      'worker-page.min.js': { windowCalls: 0, minCalls: 2 },
      'bootstrap.min.js': { windowCalls: 1, minCalls: 4 },
    };
    for (const [file, { windowCalls, minCalls }] of Object.entries(expected)) {
      const code = readFileSync(join(SDK_DIST, file), 'utf8');
      const calls = postMessageCalls(code);
      assert.ok(calls.length >= minCalls, `${file}: found its postMessage calls (${calls.length}): ${JSON.stringify(calls)}`);
      assert.doesNotMatch(code, /(["'`])\*\1/, `${file}: no "*" string anywhere`);
      const toWindows = calls.filter((call) => call.args.length === 3);
      assert.equal(toWindows.length, windowCalls, `${file}: window.postMessage calls (message, targetOrigin, transfer): ${JSON.stringify(toWindows)}`);
      for (const call of toWindows) {
        assert.equal(call.receiver, 'window.parent', `${file}: only the parent is posted to: ${call.text}`);
        assert.match(call.args[1] ?? '', /^[A-Za-z_$][\w$]*$/, `${file}: targetOrigin is a variable (an allowlisted origin), not a literal: ${call.text}`);
        assert.match(call.args[2] ?? '', /^\[[^\]]*\]$/, `${file}: the port goes in the transfer list: ${call.text}`);
      }
      for (const call of calls.filter((c) => c.args.length < 3)) {
        assert.ok(call.args.length >= 1, `${file}: ${call.text}`);
        assert.doesNotMatch(call.receiver, /\b(window|parent|top|opener|frames)\b/, `${file}: no window without a target origin: ${call.text}`);
        const second = call.args[1];
        // client.postMessage(message, [port]) / worker.postMessage(message, [port]): a transfer list, never an origin.
        if (second !== undefined) assert.match(second, /^\[[^\]]*\]$/, `${file}: the second argument is a transfer list: ${call.text}`);
      }
    }
    // The worker's one-argument and transfer-list posts go to what a service worker can reach: its own origin's
    // window clients and the ports pages gave it. It has no window to post to.
    const worker = readFileSync(join(SDK_DIST, 'worker.min.js'), 'utf8');
    assert.match(worker, /clients\.matchAll\(\{type:"window"\}\)/, 'the worker posts to the window clients of its own origin');
    assert.ok(postMessageCalls(worker).some((call) => call.args.length === 2), 'worker.min.js: the get-handle ask, with a transferred port, was checked');
    assert.doesNotMatch(worker, /includeUncontrolled/, 'only pages the worker controls');
  });

  it('106 (worker mode, runtime): with the worker holding a live handle in the allowed host\'s partition, an unlisted page framing the app (another localhost port), a sandboxed parent and a popup\'s opener receive no message at all; the allowed host gets hellos and port messages from the app, and the handle is in none of them', async (ctx) => {
    const { t, app, handle } = await tabWithSession();
    const allowed = await received(t.page);
    const windowMessages = allowed.filter((m) => m.kind === 'window');
    assert.ok(windowMessages.length > 0);
    assert.deepEqual([...new Set(windowMessages.map((m) => `${m.origin} ${m.data} ports=${m.ports}`))],
      [`${env.gwOrigin} {"embedgate":1,"type":"hello"} ports=1`], 'the allowed host: hellos from the gateway\'s origin only, carrying nothing but a port');
    const portTypes = new Set(allowed.filter((m) => m.kind === 'port').map((m) => (JSON.parse(m.data) as { type?: string }).type));
    assert.deepEqual([...portTypes].sort(), ['ready', 'token-request'], 'on the port: token requests and ready');
    assert.deepEqual((await hostState(t.page)).messages.filter((m) => !m.fromApp), [], 'nothing from any other window');
    const seen: Received[] = [...allowed];

    const framer = await secondPage(t);
    // An unlisted origin of the same site frames the app: same partition, so the worker holding the handle answers
    // the navigation (the gateway even serves the app page), and Chromium refuses to show it.
    assert.equal(await app.evaluate('window.dashCallback("chart.figure")'), 200, 'the worker is running and holds the handle');
    const upstream = env.app.requests.length;
    let from = t.consoleAt.length;
    const served = framer.waitForResponse((r) => r.url() === `${env.gwOrigin}/sales/`);
    await framer.goto(url(env.other.origin, '/frame.html', { src: `${env.gwOrigin}/sales/` }));
    const response = await served;
    assert.equal(await refusal(t, from), env.host.origin, 'refused by frame-ancestors, which names only the allowed host');
    await framer.waitForFunction('window.frameLoads >= 1');
    assert.ok(gatewayFrame(framer, env.gwOrigin) === undefined, 'the app is not shown');
    assert.deepEqual(await received(framer), [], 'the unlisted framing page got no message at all (window or port)');
    assert.deepEqual((await hostState(framer)).messages, []);
    ctx.diagnostic(`unlisted same-site page: navigation answered ${response.fromServiceWorker() ? 'by the service worker' : 'from the network'} with ${response.status()}, `
      + `upstream +${env.app.requests.length - upstream} (${env.app.requests.slice(upstream).map((r) => `${r.method} ${r.path} as ${r.user}`).join(', ')})`);

    // A sandboxed (opaque-origin) parent inside the allowed host: the same partition, the same worker.
    from = t.consoleAt.length;
    await framer.goto(url(env.host.origin, '/nest.html', { src: `${env.gwOrigin}/sales/` }));
    assert.equal(await refusal(t, from), env.host.origin);
    const widget = framer.frames().find((f) => f.url().startsWith(`${env.host.origin}/frame.html`));
    assert.ok(widget !== undefined);
    await widget.waitForFunction('window.frameLoads >= 1');
    assert.deepEqual(await received(widget), [], 'the sandboxed parent got no message at all');
    assert.deepEqual(await received(framer), [], 'nor the allowed host page around it');

    // An unlisted page opens the app in a popup: a top-level visit, no bootstrap, nothing to the opener.
    const [popup] = await Promise.all([
      t.context.waitForEvent('page'),
      framer.goto(url(env.other.origin, '/open.html', { src: `${env.gwOrigin}/sales/` })),
    ]);
    await popup.waitForLoadState('load');
    assert.equal(await popup.title(), 'Sign-in required', 'a top-level visit gets the gateway\'s 401 page');
    assert.equal(await popup.locator('script').count(), 0, 'no frame script in it');
    assert.deepEqual(await received(framer), [], 'the opener got no message at all');
    await popup.close();

    seen.push(...await received(t.page));
    assert.ok(seen.length > 0);
    assert.deepEqual(seen.filter((m) => m.data.includes(handle)), [], 'the handle is in no message a page outside the gateway\'s origin received');
    assert.equal(await workerHandle(app), handle, 'the worker still holds the same handle');
  });

  it('107 (worker mode): an attacker iframe in the host page posts a fake hello to the host SDK and imitations of the worker protocol (handle, get-handle and announce with ports, attach, sign-out, token) to the app frame: nothing answers on its ports, getToken is not called for it, the worker\'s handle is unchanged (even across a worker restart), the app\'s next request succeeds as alice, and signOut still ends the session', async () => {
    const { t, app, handle } = await tabWithSession(`&attacker=${encodeURIComponent(`${env.other.origin}/attacker.html`)}`);
    const attacker = t.page.frames().find((f) => f.url().startsWith(`${env.other.origin}/attacker.html`));
    assert.ok(attacker !== undefined);
    const calls = (await hostState(t.page)).tokenCalls;
    const tokenRequests = env.host.tokenRequests.length;
    const posts = sessionPosts();

    // What reaches the app frame's window from the attacker (observation only: the page's own listeners are the SDK's).
    await app.evaluate(`window.fromAttacker = [];
      window.addEventListener('message', (e) => { if (e.origin === ${JSON.stringify(env.other.origin)}) window.fromAttacker.push(JSON.stringify(e.data)); });`);
    await attacker.evaluate('window.sendHello()');
    await attacker.evaluate(`(() => {
      window.workerPortMessages = [];
      const app = window.parent.frames[0];
      const port = () => {
        const channel = new MessageChannel();
        channel.port1.onmessage = (e) => window.workerPortMessages.push(JSON.stringify(e.data));
        return channel.port2;
      };
      app.postMessage({ embedgate: 1, type: 'handle', handle: 'attacker-value' }, '*');
      app.postMessage({ embedgate: 1, type: 'get-handle' }, '*', [port()]);
      app.postMessage({ embedgate: 1, type: 'announce' }, '*', [port()]);
      app.postMessage({ embedgate: 1, type: 'attach' }, '*');
      app.postMessage({ type: 'sign-out' }, '*', [port()]);
      app.postMessage({ type: 'token', token: 'attacker-token' }, '*');
      app.postMessage({ marker: 'last' }, '*');
    })()`);
    // Messages from one window to another arrive in order: once the marker is there, all of them were delivered.
    await app.waitForFunction('window.fromAttacker.some((m) => m.includes("last"))');
    assert.equal(await app.evaluate('window.fromAttacker.length'), 7, 'every imitation reached the app frame\'s window');
    await t.page.waitForFunction((origin) => ((globalThis as unknown as { messages: Array<{ origin: string }> }).messages)
      .some((m) => m.origin === origin), env.other.origin);

    assert.equal(await workerHandle(app), handle, 'the worker holds the same handle');
    // Stop the worker: its memory is gone, and its next request takes the handle from the page's copy — the one a
    // forged "handle" message would have replaced.
    const cdp = await t.context.newCDPSession(t.page);
    let stopped = false;
    cdp.on('ServiceWorker.workerVersionUpdated', ({ versions }) => {
      if (versions.some((v) => v.scriptURL.startsWith(`${env.gwOrigin}/_embedgate/worker.js`) && v.runningStatus === 'stopped')) stopped = true;
    });
    await cdp.send('ServiceWorker.enable');
    await cdp.send('ServiceWorker.stopAllWorkers');
    await eventually(() => stopped, 10_000);
    const mark = env.gatewayRequests().length;
    const upstream = env.app.requests.length;
    assert.equal(await app.evaluate('window.dashCallback("chart.figure")'), 200, 'the app\'s next request succeeds');
    assert.deepEqual(gatewayLogFrom(mark), ['POST /sales/_dash-update-component 200'], 'first time, with the real handle: no 401, no new session');
    const seenUpstream = env.app.requests.slice(upstream);
    assert.deepEqual(seenUpstream.map((r) => `${r.method} ${r.path} ${r.output} as ${r.user}`), ['POST /sales/_dash-update-component chart.figure as alice']);
    assert.equal(seenUpstream[0]?.sessionHandle, undefined, 'the handle is not passed on to the app');
    assert.equal(await workerHandle(app), handle, 'the restarted worker got the real handle back');
    assert.equal(await probe(handle), 200);

    // The real channel: signOut() travels the host's port, the frame ends the session through the worker. That round
    // trip is also far longer than an answer to the attacker would take.
    await t.page.evaluate('window.handle.signOut()');
    await waitForHostEvent(t.page, 'signed-out');
    assert.match(await textMatching(app, '[role=alert]', /signed out/i), /You are signed out/);
    assert.equal(await probe(handle), 401, 'the session is over at the gateway');
    assert.equal(await workerHandle(app), '', 'the worker let go of the handle');
    const afterSignOut = env.app.requests.length;
    assert.equal(await app.evaluate('window.dashCallback("chart.figure")'), 401, 'a callback after sign-out');
    assert.equal(env.app.requests.length, afterSignOut, 'nothing reached the app after sign-out');

    const state = await hostState(t.page);
    assert.equal(state.tokenCalls, calls, 'getToken was not called for the attacker');
    assert.equal(env.host.tokenRequests.length, tokenRequests);
    assert.equal(sessionPosts(), posts, 'no session POST');
    assert.deepEqual(state.events.map((e) => e.type), ['ready', 'signed-out'], 'the attacker\'s fake events were not passed on; the real ones were');
    assert.ok(state.messages.some((m) => m.origin === env.other.origin && m.ports === 1 && !m.fromApp), 'the fake hello did reach the host window');
    assert.deepEqual(JSON.parse(await attacker.evaluate('JSON.stringify(window.portMessages)') as string), [], 'nothing came back on the fake hello\'s port');
    assert.deepEqual(JSON.parse(await attacker.evaluate('JSON.stringify(window.workerPortMessages)') as string), [], 'nothing came back on the ports sent to the app frame');
    assert.deepEqual((await received(attacker)).filter((m) => m.data.includes(handle)), [], 'no message with the handle reached the attacker');
  });

  it('109 (worker mode): a foreign site frames the app path in a hidden iframe while the allowed host\'s partition holds a live worker session: refused by frame-ancestors; no handle on the request, no session POST, no service worker registered in its partition, nothing to the upstream', async () => {
    const { t, app, handle } = await tabWithSession();
    const framer = await secondPage(t);
    const mark = env.gatewayRequests().length;
    const upstream = env.app.requests.length;
    const from = t.consoleAt.length;
    const target = `${env.gwOrigin}/sales/`;
    const navigation = framer.waitForRequest((r) => r.url() === target && r.isNavigationRequest());
    await framer.goto(url(env.foreign.origin, '/frame.html', { hidden: '1', src: target }));
    const request = await navigation;
    const headers = await rawHeaders(request);
    assert.equal(headers[HANDLE_HEADER], undefined, 'no handle on the hidden frame\'s request');
    assert.equal(headers.cookie, undefined, 'no cookie either');
    assert.equal(headers['sec-fetch-dest'], 'iframe');
    const response = await request.response();
    assert.equal(response?.fromServiceWorker(), false, 'no service worker between the frame and the gateway');
    assert.equal(response?.status(), 401, 'without a session the gateway answers with the bootstrap page');
    assert.equal(await refusal(t, from), env.host.origin);
    await framer.waitForFunction('window.frameLoads >= 1');
    assert.ok(gatewayFrame(framer, env.gwOrigin) === undefined, 'the bootstrap page never ran');
    assert.deepEqual(await received(framer), [], 'the foreign page got no message');
    assert.deepEqual(gatewayLogFrom(mark), ['GET /sales/ 401'], 'the gateway answered the navigation only: no session POST, no worker script, no ticket');
    assert.equal(env.app.requests.length, upstream, 'the upstream received nothing');

    // The frame's partition (the gateway's origin under the foreign site, which is the gateway's own site) has no
    // service worker; the allowed host's has the app's. Asked from a gateway page in each.
    const registrations = `navigator.serviceWorker.getRegistrations().then((all) => all.map((r) => r.scope))`;
    const inForeignPartition = await secondPage(t);
    await inForeignPartition.goto(`${env.gwOrigin}/_embedgate/no-such-endpoint`);
    assert.deepEqual(await inForeignPartition.evaluate(registrations), [], 'no service worker in the foreign site\'s partition');
    assert.deepEqual(await app.evaluate(registrations), [`${env.gwOrigin}/sales/`], 'the allowed host\'s partition has the app\'s');
    assert.equal(await workerHandle(app), handle, 'the session in the host\'s partition is untouched');
    assert.equal(await app.evaluate('window.dashCallback("chart.figure")'), 200);
  });
});
