// What three browser engines actually do, with third-party cookies blocked, for what an embedded app needs: a host
// site (https://localhost:P1) frames a "gateway" site (https://127.0.0.1:P2, a different site), and we record
//   a. whether an unpartitioned SameSite=None cookie set in the frame comes back (third-party cookies blocked?),
//   b. whether a Partitioned (CHIPS) cookie set by the frame's own fetch() comes back on its next navigation,
//   c. whether a Partitioned cookie set on a credentialed CORS fetch from the host page reaches a frame made later,
//   d. whether a service worker the frame registers controls its later requests and can add a header to them,
//   e. whether a MessageChannel port handed from the frame to the host page works.
// The assertions are the facts observed in each engine (versions in the diagnostics), so this file is the matrix and
// fails when an engine changes. Nothing leaves loopback: each engine's proxy is a guard that refuses and records.
import assert from 'node:assert/strict';
import type { ServerResponse } from 'node:http';
import { after, before, describe, it, type TestContext } from 'node:test';
import {
  FIREFOX_COOKIE_MODES, launchEngine, makeTestTls, type Engine, type EngineName, type EngineTab, type LaunchOptions, type TestTls,
} from './support/engines/index.js';
import { cookiesOf, startSite, type RecordedRequest, type Site } from './support/engines/site.js';

const HANDLE = 'h-4711';
const PNG = Buffer.from('iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAQAAAC1HAwCAAAAC0lEQVR42mNkYAAAAAYAAjCB0C8AAAAASUVORK5CYII=', 'base64');

/**
 * The gateway's service worker: adds X-Test-Handle (which the page hands it by postMessage) to same-origin requests
 * only, and X-Test-Boot (one random value per worker instance: the same value everywhere means the in-memory state
 * was kept). A request is rebuilt rather than copied: a navigation request cannot be copied with new init, and a
 * copied no-cors request (an <img>, a classic <script>) would silently drop any header that is not CORS-safelisted.
 */
const SERVICE_WORKER = `
const boot = Math.random().toString(36).slice(2);
let handle = null;
const seen = [];
self.addEventListener('install', () => self.skipWaiting());
self.addEventListener('activate', (event) => event.waitUntil(self.clients.claim()));
self.addEventListener('message', (event) => {
  if (event.data && typeof event.data.handle === 'string') handle = event.data.handle;
  const reply = { boot, handle, seen: seen.slice() };
  if (event.ports[0]) event.ports[0].postMessage(reply); else event.source.postMessage(reply);
});
self.addEventListener('fetch', (event) => {
  const request = event.request;
  seen.push(request.method + ' ' + request.url);
  if (new URL(request.url).origin !== self.location.origin || handle === null) return;
  event.respondWith((async () => {
    const headers = new Headers(request.headers);
    headers.set('X-Test-Handle', handle);
    headers.set('X-Test-Boot', boot);
    const init = {
      method: request.method, headers, mode: 'same-origin', credentials: 'same-origin', cache: 'no-store',
      redirect: request.mode === 'navigate' ? 'manual' : 'follow',
    };
    if (request.method !== 'GET' && request.method !== 'HEAD') init.body = await request.arrayBuffer();
    return fetch(request.url, init);
  })());
});
`;

function html(response: ServerResponse, body: string, setCookie?: string): void {
  response.setHeader('Content-Type', 'text/html; charset=utf-8');
  if (setCookie !== undefined) response.setHeader('Set-Cookie', setCookie);
  response.end(`<!doctype html><html><head><meta charset="utf-8"><title>test</title></head><body>${body}</body></html>`);
}

/** The host page: makes iframes on request and takes a MessagePort from a frame (case e). */
function hostPage(gatewayOrigin: string): string {
  return `<script>
window.addFrame = (id, src) => new Promise((resolve, reject) => {
  const frame = document.createElement('iframe');
  frame.id = id;
  frame.onload = () => resolve(true);
  frame.onerror = () => reject(new Error('iframe ' + id + ' failed'));
  frame.src = src;
  document.body.append(frame);
});
window.received = [];
window.addEventListener('message', (event) => {
  if (!event.data || event.data.type !== 'port' || !event.ports[0]) return;
  const port = event.ports[0];
  window.received.push({ origin: event.origin, fromGateway: event.origin === ${JSON.stringify(gatewayOrigin)} });
  window.heldPort = port;
  port.onmessage = (message) => { window.portReply = message.data; };
  port.postMessage('ping');
});
</script>`;
}

interface Sites { host: Site; gateway: Site }

async function startSites(tls: TestTls): Promise<Sites> {
  let gatewayOrigin = '';
  const host = await startSite(tls, 'localhost', (request, response) => {
    if (request.path === '/host') return html(response, hostPage(gatewayOrigin));
    if (request.path === '/other') {
      response.setHeader('Access-Control-Allow-Origin', '*');
      response.setHeader('Content-Type', 'application/json');
      return void response.end('{"other":true}');
    }
    response.statusCode = 404;
    response.end();
  });
  const gateway = await startSite(tls, '127.0.0.1', (request, response) => {
    const origin = request.headers.origin;
    if (origin === host.origin) {
      response.setHeader('Access-Control-Allow-Origin', origin);
      response.setHeader('Access-Control-Allow-Credentials', 'true');
      response.setHeader('Vary', 'Origin');
    }
    if (request.method === 'OPTIONS') {
      response.setHeader('Access-Control-Allow-Methods', 'GET, POST');
      response.setHeader('Access-Control-Allow-Headers', 'Authorization');
      response.setHeader('Access-Control-Max-Age', '0');
      response.statusCode = 204;
      return void response.end();
    }
    const setCookie = request.query.get('set') ?? undefined;
    if (request.path.endsWith('/set-cookie')) {
      if (setCookie !== undefined) response.setHeader('Set-Cookie', setCookie);
      response.setHeader('Content-Type', 'text/plain');
      return void response.end('ok');
    }
    if (request.path === '/_sw/sw.js') {
      response.setHeader('Content-Type', 'text/javascript');
      response.setHeader('Service-Worker-Allowed', '/app/');
      return void response.end(SERVICE_WORKER);
    }
    if (request.path === '/app/script.js') {
      response.setHeader('Content-Type', 'text/javascript');
      return void response.end('window.scriptRan = true;');
    }
    if (request.path === '/app/img.png') {
      response.setHeader('Content-Type', 'image/png');
      return void response.end(PNG);
    }
    if (request.path === '/app/data' || request.path === '/app/post') {
      response.setHeader('Content-Type', 'application/json');
      return void response.end(JSON.stringify({ path: request.path, body: request.body }));
    }
    if (request.path === '/app/page') {
      return html(response, '<script src="/app/script.js"></script><img id="img" src="/app/img.png">', setCookie);
    }
    return html(response, '<p>gateway page</p>', setCookie);
  });
  gatewayOrigin = gateway.origin;
  return { host, gateway };
}

const PLAIN = 'SameSite=None; Secure; Path=/';
const PARTITIONED = 'Partitioned; SameSite=None; Secure; HttpOnly; Path=/';
const q = (cookie: string): string => `set=${encodeURIComponent(cookie)}`;

function has(request: RecordedRequest, name: string): boolean {
  return cookiesOf(request)[name] !== undefined;
}

// ----- the five observations -----

interface ThirdPartyBlocked {
  /** The cookie set on the frame's document response, then on the frame's own fetch: sent back on a fetch? */
  navCookieOnFetch: boolean;
  fetchCookieOnFetch: boolean;
  /** …and on the frame's next navigation? */
  navCookieOnNavigation: boolean;
  fetchCookieOnNavigation: boolean;
  /** document.cookie in the frame. */
  documentCookie: string;
  /** Control: the same kind of cookie set first-party (127.0.0.1 as the top page) is sent. */
  firstPartyControl: boolean;
}

async function caseA(tab: EngineTab, { host, gateway }: Sites): Promise<ThirdPartyBlocked> {
  await tab.goto(`${host.origin}/host`);
  await tab.evalTop(`addFrame('a', ${JSON.stringify(`${gateway.origin}/a/frame?${q(`a_nav=1; ${PLAIN}`)}`)})`);
  await tab.evalInFrame('a', `fetch('/a/set-cookie?${q(`a_fetch=1; ${PLAIN}`)}', { credentials: 'include' }).then((r) => r.status)`);
  const documentCookie = await tab.evalInFrame<string>('a', 'document.cookie');
  await tab.evalInFrame('a', `fetch('/a/echo', { credentials: 'include' }).then((r) => r.status)`);
  const echo = await gateway.waitForRequest((r) => r.path === '/a/echo', 10_000, '/a/echo');
  await tab.evalInFrame('a', `(location.assign('/a/next'), true)`);
  const next = await gateway.waitForRequest((r) => r.path === '/a/next', 10_000, 'the frame navigation to /a/next');
  // Control: 127.0.0.1 as the top-level site sets and gets the same kind of cookie.
  await tab.goto(`${gateway.origin}/a/top?${q(`a_top=1; ${PLAIN}`)}`);
  await tab.evalTop(`fetch('/a/top-echo', { credentials: 'include' }).then((r) => r.status)`);
  const control = await gateway.waitForRequest((r) => r.path === '/a/top-echo', 10_000, '/a/top-echo');
  return {
    navCookieOnFetch: has(echo, 'a_nav'),
    fetchCookieOnFetch: has(echo, 'a_fetch'),
    navCookieOnNavigation: has(next, 'a_nav'),
    fetchCookieOnNavigation: has(next, 'a_fetch'),
    documentCookie,
    firstPartyControl: has(control, 'a_top'),
  };
}

interface PartitionedFromFrame {
  /** The Partitioned cookie set by the frame's fetch() is sent on the frame's next navigation. */
  onNextNavigation: boolean;
  /** …on a later fetch() of the frame. */
  onFetch: boolean;
  /** …on a new iframe the host page makes afterwards (same partition: the host's site). */
  onNewFrame: boolean;
}

async function caseB(tab: EngineTab, { host, gateway }: Sites): Promise<PartitionedFromFrame> {
  await tab.goto(`${host.origin}/host`);
  await tab.evalTop(`addFrame('b', ${JSON.stringify(`${gateway.origin}/b/frame`)})`);
  await tab.evalInFrame('b', `fetch('/b/set-cookie?${q(`b_part=1; ${PARTITIONED}`)}', { credentials: 'include' }).then((r) => r.status)`);
  await tab.evalInFrame('b', `fetch('/b/echo', { credentials: 'include' }).then((r) => r.status)`);
  const echo = await gateway.waitForRequest((r) => r.path === '/b/echo', 10_000, '/b/echo');
  await tab.evalInFrame('b', `(location.assign('/b/next'), true)`);
  const next = await gateway.waitForRequest((r) => r.path === '/b/next', 10_000, 'the frame navigation to /b/next');
  await tab.evalTop(`addFrame('b2', ${JSON.stringify(`${gateway.origin}/b/new-frame`)})`);
  const newFrame = await gateway.waitForRequest((r) => r.path === '/b/new-frame', 10_000, 'the new frame');
  return { onNextNavigation: has(next, 'b_part'), onFetch: has(echo, 'b_part'), onNewFrame: has(newFrame, 'b_part') };
}

interface PartitionedFromHost {
  /** The browser sent a CORS preflight (for the Authorization header) and then the POST. */
  preflight: boolean;
  status: number;
  /** The Partitioned cookie from that response is sent on a navigation of an iframe the host page makes afterwards. */
  onFrameNavigation: boolean;
  /** …on a later credentialed fetch from the host page. */
  onHostFetch: boolean;
}

async function caseC(tab: EngineTab, { host, gateway }: Sites): Promise<PartitionedFromHost> {
  await tab.goto(`${host.origin}/host`);
  const status = await tab.evalTop<number>(`fetch(${JSON.stringify(`${gateway.origin}/c/set-cookie?${q(`c_part=1; ${PARTITIONED}`)}`)}, {
    method: 'POST', credentials: 'include', headers: { Authorization: 'Bearer test-token' }, body: 'x',
  }).then((r) => r.status)`);
  const preflight = gateway.requests.some((r) => r.method === 'OPTIONS' && r.path === '/c/set-cookie');
  await tab.evalTop(`fetch(${JSON.stringify(`${gateway.origin}/c/echo`)}, { credentials: 'include' }).then((r) => r.status)`);
  const echo = await gateway.waitForRequest((r) => r.path === '/c/echo', 10_000, '/c/echo');
  await tab.evalTop(`addFrame('c', ${JSON.stringify(`${gateway.origin}/c/frame`)})`);
  const frame = await gateway.waitForRequest((r) => r.path === '/c/frame', 10_000, 'the frame navigation to /c/frame');
  return { preflight, status, onFrameNavigation: has(frame, 'c_part'), onHostFetch: has(echo, 'c_part') };
}

interface ServiceWorkerInFrame {
  /** "ok", or the error registration failed with. */
  registration: string;
  /** The worker got the handle by postMessage and answered. */
  handedHandle: boolean;
  /** Which requests reached the server with X-Test-Handle (undefined: the request never came). */
  headerOn?: { navigation: boolean; script: boolean; image: boolean; fetch: boolean; post: boolean; postBody: boolean };
  /** The request to the other origin (the host site) came without the header; did the worker see it at all? */
  otherOrigin?: { reached: boolean; header: boolean; workerSawIt: boolean };
  /** The frame document after the navigation is controlled by the worker. */
  controlled?: boolean;
  /** The page used the worker's responses: the script ran and the image decoded. */
  subresourcesWorked?: boolean;
  /** Every header came from one worker instance, and it still held the handle at the end (in-memory state kept). */
  stateKept?: boolean;
  /** A new iframe made by the host page at a URL in scope is controlled by the same registration (header sent). */
  newFrameHeader?: boolean;
}

async function caseD(tab: EngineTab, { host, gateway }: Sites): Promise<ServiceWorkerInFrame> {
  await tab.goto(`${host.origin}/host`);
  await tab.evalTop(`addFrame('d', ${JSON.stringify(`${gateway.origin}/app/start`)})`);
  const registration = await tab.evalInFrame<string>('d', `Promise.race([
    navigator.serviceWorker.register('/_sw/sw.js', { scope: '/app/' }).then(() => navigator.serviceWorker.ready).then(() => 'ok'),
    new Promise((resolve) => setTimeout(() => resolve('timeout after 10 s'), 10000)),
  ]).catch((error) => error.name + ': ' + error.message)`);
  if (registration !== 'ok') return { registration: registration.replaceAll(gateway.origin, '<gateway>'), handedHandle: false };
  const reply = await tab.evalInFrame<{ handle: string | null; boot: string } | null>('d', `new Promise((resolve) => {
    const channel = new MessageChannel();
    channel.port1.onmessage = (event) => resolve(event.data);
    navigator.serviceWorker.ready.then((r) => r.active.postMessage({ handle: ${JSON.stringify(HANDLE)} }, [channel.port2]));
    setTimeout(() => resolve(null), 10000);
  })`);
  await tab.evalInFrame('d', `(location.assign('/app/page'), true)`);
  const page = await gateway.waitForRequest((r) => r.path === '/app/page', 10_000, 'the frame navigation to /app/page');
  await tab.waitUntil(`location.pathname === '/app/page' && document.readyState === 'complete'`, 10_000, 'd');
  const controlled = await tab.evalInFrame<boolean>('d', 'navigator.serviceWorker.controller !== null');
  const subresourcesWorked = await tab.evalInFrame<boolean>('d', `window.scriptRan === true && document.getElementById('img').naturalWidth === 1`);
  await tab.evalInFrame('d', `Promise.all([
    fetch('/app/data').then((r) => r.json()),
    fetch('/app/post', { method: 'POST', body: 'payload-123', headers: { 'Content-Type': 'text/plain' } }).then((r) => r.json()),
    fetch(${JSON.stringify(`${host.origin}/other`)}).then((r) => r.json()),
  ])`);
  const script = await gateway.waitForRequest((r) => r.path === '/app/script.js', 10_000, '/app/script.js');
  const image = await gateway.waitForRequest((r) => r.path === '/app/img.png', 10_000, '/app/img.png');
  const data = await gateway.waitForRequest((r) => r.path === '/app/data', 10_000, '/app/data');
  const post = await gateway.waitForRequest((r) => r.path === '/app/post', 10_000, '/app/post');
  const other = host.requests.find((r) => r.path === '/other');
  const final = await tab.evalInFrame<{ boot: string; handle: string | null; seen: string[] } | null>('d', `new Promise((resolve) => {
    const channel = new MessageChannel();
    channel.port1.onmessage = (event) => resolve(event.data);
    navigator.serviceWorker.controller.postMessage({}, [channel.port2]);
    setTimeout(() => resolve(null), 10000);
  })`);
  await tab.evalTop(`addFrame('d2', ${JSON.stringify(`${gateway.origin}/app/page?again`)})`);
  const again = await gateway.waitForRequest((r) => r.path === '/app/page' && r.query.has('again'), 10_000, 'the new frame');
  const carries = (request: RecordedRequest): boolean => request.headers['x-test-handle'] === HANDLE;
  const ownRequests = [page, script, image, data, post];
  const boots = new Set(ownRequests.map((r) => r.headers['x-test-boot']));
  return {
    registration,
    handedHandle: reply?.handle === HANDLE,
    headerOn: {
      navigation: carries(page), script: carries(script), image: carries(image), fetch: carries(data), post: carries(post),
      postBody: post.body === 'payload-123',
    },
    otherOrigin: {
      reached: other !== undefined,
      header: other?.headers['x-test-handle'] !== undefined,
      workerSawIt: final?.seen.some((url) => url.endsWith('/other')) ?? false,
    },
    controlled,
    subresourcesWorked,
    stateKept: boots.size === 1 && !boots.has(undefined) && final?.handle === HANDLE && boots.has(final.boot),
    newFrameHeader: carries(again),
  };
}

interface PortFromFrame {
  /** The host page got the port from the gateway's origin, and a message round trip over it worked. */
  received: Array<{ origin: string; fromGateway: boolean }>;
  reply: string;
}

async function caseE(tab: EngineTab, { host, gateway }: Sites): Promise<PortFromFrame> {
  await tab.goto(`${host.origin}/host`);
  await tab.evalTop(`addFrame('e', ${JSON.stringify(`${gateway.origin}/e/frame`)})`);
  await tab.evalInFrame('e', `(() => {
    const channel = new MessageChannel();
    window.keptChannel = channel;
    channel.port1.onmessage = (event) => channel.port1.postMessage('pong:' + event.data);
    window.parent.postMessage({ type: 'port' }, ${JSON.stringify(host.origin)}, [channel.port2]);
    return true;
  })()`);
  await tab.waitUntil(`window.portReply !== undefined`, 10_000);
  return { received: await tab.evalTop('window.received'), reply: await tab.evalTop('window.portReply') };
}

// ----- the matrix -----

interface Expected {
  a: ThirdPartyBlocked;
  b: PartitionedFromFrame;
  c: PartitionedFromHost;
  d: ServiceWorkerInFrame;
  e: Omit<PortFromFrame, 'received'>;
}

interface EngineRun {
  title: string;
  engine: EngineName;
  launch?: Omit<LaunchOptions, 'tls'>;
  expected: Expected;
}

const BLOCKED: ThirdPartyBlocked = {
  navCookieOnFetch: false, fetchCookieOnFetch: false, navCookieOnNavigation: false, fetchCookieOnNavigation: false,
  documentCookie: '', firstPartyControl: true,
};
/** Unpartitioned third-party cookies are not blocked but kept in the host site's partition, so they come back. */
const PARTITIONED_NOT_BLOCKED: ThirdPartyBlocked = {
  navCookieOnFetch: true, fetchCookieOnFetch: true, navCookieOnNavigation: true, fetchCookieOnNavigation: true,
  documentCookie: 'a_nav=1; a_fetch=1', firstPartyControl: true,
};
const CHIPS_WORKS: Pick<Expected, 'b' | 'c'> = {
  b: { onNextNavigation: true, onFetch: true, onNewFrame: true },
  c: { preflight: true, status: 200, onFrameNavigation: true, onHostFetch: true },
};
const CHIPS_REJECTED: Pick<Expected, 'b' | 'c'> = {
  b: { onNextNavigation: false, onFetch: false, onNewFrame: false },
  c: { preflight: true, status: 200, onFrameNavigation: false, onHostFetch: false },
};
const SERVICE_WORKER_WORKS: ServiceWorkerInFrame = {
  registration: 'ok',
  handedHandle: true,
  headerOn: { navigation: true, script: true, image: true, fetch: true, post: true, postBody: true },
  otherOrigin: { reached: true, header: false, workerSawIt: true },
  controlled: true,
  subresourcesWorked: true,
  stateKept: true,
  newFrameHeader: true,
};
const PORT_WORKS = { reply: 'pong:ping' };

const RUNS: EngineRun[] = [
  {
    // Chrome's own default: third-party storage partitioned (this adapter turns Playwright's switch-off back on).
    title: 'Chromium, third-party cookies blocked',
    engine: 'chromium',
    expected: { a: BLOCKED, ...CHIPS_WORKS, d: SERVICE_WORKER_WORKS, e: PORT_WORKS },
  },
  {
    // The existing harness (support/chromium.ts) as Playwright launches it: ThirdPartyStoragePartitioning disabled,
    // so blocking third-party cookies blocks all third-party storage (localStorage, IndexedDB and CacheStorage fail
    // the same way). Chrome ships with partitioning on, so a test of a frame's service worker or storage made with
    // that harness sees Playwright's Chromium, not Chrome.
    title: 'Chromium as support/chromium.ts launches it (Playwright: third-party storage partitioning off)',
    engine: 'chromium',
    launch: { chromium: { playwrightDefaults: true } },
    expected: {
      a: BLOCKED,
      ...CHIPS_WORKS,
      d: {
        registration: 'NotSupportedError: Failed to register a ServiceWorker for scope (\'<gateway>/app/\') with script '
          + '(\'<gateway>/_sw/sw.js\'): The user denied permission to use Service Worker.',
        handedHandle: false,
      },
      e: PORT_WORKS,
    },
  },
  {
    title: 'Firefox, cookieBehavior 1 (reject all third-party cookies)',
    engine: 'firefox',
    launch: { firefox: FIREFOX_COOKIE_MODES.rejectAll },
    expected: { a: BLOCKED, ...CHIPS_REJECTED, d: { registration: 'SecurityError: The operation is insecure.', handedHandle: false }, e: PORT_WORKS },
  },
  {
    // optInPartitioning only acts with cookieBehavior 5: with 1, Partitioned cookies are rejected all the same.
    title: 'Firefox, cookieBehavior 1 + optInPartitioning',
    engine: 'firefox',
    launch: { firefox: { ...FIREFOX_COOKIE_MODES.rejectAll, prefs: { 'network.cookie.cookieBehavior.optInPartitioning': true } } },
    expected: { a: BLOCKED, ...CHIPS_REJECTED, d: { registration: 'SecurityError: The operation is insecure.', handedHandle: false }, e: PORT_WORKS },
  },
  {
    // Firefox's "third-party cookie deprecation" mode (the content-blocking feature "3pcd"): only Partitioned
    // third-party cookies are accepted; third-party storage stays available, partitioned.
    title: 'Firefox, cookieBehavior 5 + optInPartitioning (unpartitioned third-party cookies blocked)',
    engine: 'firefox',
    launch: { firefox: FIREFOX_COOKIE_MODES.partitionedOnly },
    expected: { a: BLOCKED, ...CHIPS_WORKS, d: SERVICE_WORKER_WORKS, e: PORT_WORKS },
  },
  {
    // What Firefox users have (Standard and Strict tracking protection both mean 5, "Total Cookie Protection"):
    // third-party cookies are not blocked but partitioned by the top-level site.
    title: 'Firefox, cookieBehavior 5 (the default: third-party cookies partitioned, not blocked)',
    engine: 'firefox',
    launch: { firefox: FIREFOX_COOKIE_MODES.firefoxDefault },
    expected: { a: PARTITIONED_NOT_BLOCKED, ...CHIPS_WORKS, d: SERVICE_WORKER_WORKS, e: PORT_WORKS },
  },
  {
    // WebKitGTK has no CHIPS: a Partitioned cookie is a third-party cookie like any other and is rejected.
    title: 'WebKit, third-party cookies blocked (MiniBrowser --cookies-policy=no-third-party)',
    engine: 'webkit',
    expected: { a: BLOCKED, ...CHIPS_REJECTED, d: SERVICE_WORKER_WORKS, e: PORT_WORKS },
  },
];

for (const run of RUNS) {
  describe(`browser engines: ${run.title}`, { timeout: 120_000 }, () => {
    let tls: TestTls;
    let sites: Sites;
    let engine: Engine;
    before(async () => {
      tls = makeTestTls();
      sites = await startSites(tls);
      engine = await launchEngine(run.engine, { tls, ...run.launch });
    });
    after(async () => {
      await engine?.close();
      await sites?.host.close();
      await sites?.gateway.close();
      tls?.cleanup();
    });

    const inTab = async <T>(t: TestContext, observe: (tab: EngineTab, sites: Sites) => Promise<T>): Promise<T> => {
      const tab = await engine.newTab();
      try {
        const observed = await observe(tab, sites);
        t.diagnostic(`${engine.version}: ${JSON.stringify(observed)}`);
        return observed;
      } finally {
        await tab.close();
      }
    };

    it('runs the expected engine', (t) => {
      t.diagnostic(`${engine.version}; settings: ${JSON.stringify(engine.settings)}`);
      assert.equal(engine.name, run.engine);
    });

    it('a. an unpartitioned SameSite=None cookie set in the cross-site frame is not sent back', async (t) => {
      assert.deepEqual(await inTab(t, caseA), run.expected.a);
    });

    it('b. a Partitioned cookie set by the frame\'s own fetch() and the frame\'s next navigation', async (t) => {
      assert.deepEqual(await inTab(t, caseB), run.expected.b);
    });

    it('c. a Partitioned cookie from the host page\'s credentialed CORS fetch and a frame made afterwards', async (t) => {
      assert.deepEqual(await inTab(t, caseC), run.expected.c);
    });

    it('d. a service worker registered by the frame on its own origin', async (t) => {
      assert.deepEqual(await inTab(t, caseD), run.expected.d);
    });

    it('e. a MessageChannel port handed from the frame to the host page', async (t) => {
      const observed = await inTab(t, caseE);
      assert.deepEqual(observed.received, [{ origin: sites.gateway.origin, fromGateway: true }]);
      assert.equal(observed.reply, run.expected.e.reply);
    });

    it('nothing tried to leave loopback, and a request that does is caught by the guard', async () => {
      const attempts = (): string[] => engine.outbound.map((line) => line.split(' ').slice(0, 2).join(' '));
      assert.deepEqual(attempts(), [], 'the browser sent nothing anywhere but loopback');
      const tab = await engine.newTab();
      try {
        await tab.goto(`${sites.host.origin}/host`);
        const outcome = await tab.evalTop<string>(`fetch('https://example.invalid/probe').then(() => 'answered', () => 'refused')`);
        assert.equal(outcome, 'refused');
        assert.deepEqual(attempts(), ['CONNECT example.invalid:443']);
      } finally {
        await tab.close();
      }
    });
  });
}
