// The shipped frame scripts (dist bundles bootstrap.min.js and frame.min.js, built in memory) run in a Node vm with a fake browser around it:
// parent window, MessageChannel, fetch, XMLHttpRequest, timers. Covers the bootstrap and app-mode flows and the
// postMessage cases 106/107 on the frame side. Real-browser tests (Chromium) live with the e2e suite.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import vm from 'node:vm';
import { MessageChannel, type MessagePort } from 'node:worker_threads';
import { bundle } from '../build.mjs';

const bundles = await bundle({ write: false });
/** The bootstrap page's script and the app pages' script. */
const SCRIPTS = { bootstrap: bundles['bootstrap.min.js'] as string, app: bundles['frame.min.js'] as string };

const HOST = 'https://host.example';
const OTHER = 'http://localhost:3000';
const GW = 'https://gw.example';
const BASE = GW + '/sales/';
const SESSION = GW + '/_embedgate/session';

const openPorts = new Set<MessagePort>();
after(() => openPorts.forEach((p) => p.close()));

interface Posted { message: unknown; targetOrigin: string; delivered: boolean }
interface Recorded { url: string; method: string; auth: string | null; credentials: string; body?: string }

class HostSide {
  received: Array<Record<string, unknown>> = [];
  constructor(readonly port: MessagePort) {
    openPorts.add(port);
    port.on('message', (m: Record<string, unknown>) => this.received.push(m));
  }
  reply(message: unknown): void {
    this.port.postMessage(message);
  }
  types(): unknown[] {
    return this.received.map((m) => m.type);
  }
}

interface Options {
  mode: 'bootstrap' | 'app';
  origins?: string[];
  /** location.ancestorOrigins; null = the browser has none (Firefox) */
  ancestorOrigins?: string[] | null;
  referrer?: string;
  /** the parent's real origin (what the browser compares targetOrigin with) */
  parentOrigin?: string;
  top?: boolean;
  expires?: number | string;
  headerMode?: boolean;
  waitForToken?: boolean;
  /** the parent drops the first n hellos (host SDK not attached yet) */
  dropHellos?: number;
  /** history.state of the frame's entry (the bootstrap's reload marker lives there) */
  historyState?: Record<string, unknown> | null;
  server?: (r: Recorded) => Response | Promise<Response>;
  /** embed.mode, and the app prefix the bootstrap registers the service worker for */
  embedMode?: 'auto' | 'cookie' | 'worker';
  scope?: string;
  /** navigator.serviceWorker; absent when undefined */
  serviceWorker?: FakeWorkers;
  /** navigator.locks; absent when undefined */
  locks?: FakeLocks;
}

/**
 * A stand-in for navigator.serviceWorker: records registrations (and unregistrations) and what the worker is told,
 * answers get-handle. Its registrations' worker is activated at once.
 */
class FakeWorkers {
  registered: Array<{ url: string; scope: string }> = [];
  unregistered: string[] = [];
  told: unknown[] = [];
  handle = '';
  constructor(private readonly refuse = false) {}
  readonly active = {
    state: 'activated',
    addEventListener: () => undefined,
    postMessage: (message: { type: string; handle?: string }, transfer?: MessagePort[]) => {
      this.told.push(message);
      if (message.type === 'handle') this.handle = message.handle ?? '';
      if (message.type === 'get-handle') {
        transfer?.[0]?.postMessage({ handle: this.handle });
        transfer?.[0]?.close();
      }
    },
  };
  private registration(scope: string) {
    return { scope: new URL(scope, BASE).href, installing: null, waiting: null, active: this.active, unregister: async () => this.unregistered.push(scope) };
  }
  register(url: string, options: { scope: string }): Promise<unknown> {
    if (this.refuse) return Promise.reject(new Error('The user denied permission to use Service Worker.'));
    this.registered.push({ url, scope: options.scope });
    return Promise.resolve(this.registration(options.scope));
  }
  getRegistrations(): Promise<unknown[]> {
    return Promise.resolve(this.registered.map((r) => this.registration(r.scope)));
  }
}

/** A stand-in for navigator.locks: records each request and whether its lock was released. */
class FakeLocks {
  taken: Array<{ name: string; released: boolean }> = [];
  request(name: string, callback: () => Promise<void>): Promise<void> {
    const lock = { name, released: false };
    this.taken.push(lock);
    return callback().then(() => void (lock.released = true));
  }
}

const nowS = () => Date.now() / 1000;
const json = (status: number, body: unknown) =>
  new Response(JSON.stringify(body), { status, headers: { 'content-type': 'application/json' } });

function frame(o: Options) {
  const posted: Posted[] = [];
  const hosts: HostSide[] = [];
  const requests: Recorded[] = [];
  const timers = new Map<number, { fn: () => void; ms: number }>();
  const windowListeners: Array<(e: unknown) => void> = [];
  const elements: Array<{ textContent: string; style: Record<string, string>; attrs: Record<string, string> }> = [];
  const xhrs: FakeXHR[] = [];
  let reloads = 0;
  let nextTimer = 1;
  let drop = o.dropHellos ?? 0;
  const parentOrigin = o.parentOrigin ?? HOST;
  const history = { state: o.historyState ?? null as unknown, replaceState(state: unknown) { history.state = structuredClone(state); } };

  const parent = {
    postMessage(message: unknown, targetOrigin: string, transfer?: MessagePort[]) {
      const delivered = targetOrigin === parentOrigin && drop-- <= 0;
      posted.push({ message: structuredClone(message), targetOrigin, delivered }); // cloned, as a browser does
      const port = transfer?.[0];
      if (port && delivered) hosts.push(new HostSide(port));
      else port?.close();
    },
  };
  const server = o.server ?? ((r: Recorded) =>
    r.method === 'POST' ? json(200, { expires_at: Math.floor(nowS()) + 300 }) : new Response(null, { status: 204 }));
  // The page's own fetch: records what leaves the browser.
  const pageFetch = async (input: RequestInfo | URL, init?: RequestInit): Promise<Response> => {
    const request = input instanceof Request ? input : new Request(new URL(String(input), BASE), init);
    const body = request.body ? await request.text() : undefined;
    const rec: Recorded = {
      url: request.url, method: request.method, auth: request.headers.get('authorization'),
      credentials: request.credentials, ...(body !== undefined ? { body } : {}),
    };
    requests.push(rec);
    return rec.url === SESSION ? server(rec) : (appServer(rec) ?? new Response('ok'));
  };
  let appServer: (r: Recorded) => Response | undefined = () => undefined;

  class FakeXHR {
    status = 0;
    url = '';
    headers: Record<string, string> = {};
    sent = false;
    listeners: Record<string, Array<() => void>> = {};
    open(_method: string, url: string | URL) {
      this.url = String(url);
    }
    setRequestHeader(name: string, value: string) {
      this.headers[name.toLowerCase()] = value;
    }
    send() {
      this.sent = true;
      xhrs.push(this);
    }
    addEventListener(type: string, fn: () => void) {
      (this.listeners[type] ??= []).push(fn);
    }
    respond(status: number) {
      this.status = status;
      for (const fn of this.listeners.loadend ?? []) fn();
    }
  }

  const body = {
    append(el: (typeof elements)[number]) {
      elements.push(el);
    },
  };
  const dataset: Record<string, string> = { embedgateMode: o.mode, embedgateOrigins: JSON.stringify(o.origins ?? [HOST]) };
  if (o.expires !== undefined) dataset.embedgateExpires = String(o.expires);
  if (o.headerMode !== undefined) dataset.embedgateHeaderMode = String(o.headerMode);
  if (o.waitForToken !== undefined) dataset.embedgateWaitForToken = String(o.waitForToken);
  if (o.embedMode !== undefined) dataset.embedgateEmbedMode = o.embedMode;
  if (o.scope !== undefined) dataset.embedgateScope = o.scope;
  const sandbox: Record<string, unknown> = {
    document: {
      currentScript: { dataset },
      referrer: o.referrer ?? '',
      baseURI: BASE,
      body,
      documentElement: body,
      createElement: () => {
        const el = { textContent: '', style: {}, attrs: {} as Record<string, string>, setAttribute(n: string, v: string) { el.attrs[n] = v; } };
        return el;
      },
      querySelector: () => null,
    },
    location: {
      origin: GW, href: BASE, pathname: '/sales/', ...(o.ancestorOrigins === null ? {} : { ancestorOrigins: o.ancestorOrigins ?? [parentOrigin] }),
      reload: () => void reloads++,
    },
    fetch: pageFetch,
    navigator: { ...(o.serviceWorker && { serviceWorker: o.serviceWorker }), ...(o.locks && { locks: o.locks }) },
    XMLHttpRequest: FakeXHR,
    MessageChannel, URL, Request, Response, Headers,
    setTimeout: (fn: () => void, ms: number) => {
      const id = nextTimer++;
      timers.set(id, { fn, ms });
      return id;
    },
    clearTimeout: (id: number) => void timers.delete(id),
    history,
    addEventListener: (type: string, fn: (e: unknown) => void) => type === 'message' && windowListeners.push(fn),
  };
  const ctx = vm.createContext(sandbox);
  vm.runInContext('globalThis.window = globalThis', ctx);
  if (o.top) vm.runInContext('globalThis.parent = globalThis', ctx);
  else sandbox.parent = parent;
  vm.runInContext(SCRIPTS[o.mode], ctx, { filename: o.mode === 'app' ? 'frame.min.js' : 'bootstrap.min.js' });

  return {
    posted, hosts, requests, timers, xhrs, history, sandbox,
    get reloads() {
      return reloads;
    },
    get host(): HostSide {
      const h = hosts.at(-1);
      assert.ok(h, 'a hello reached the host');
      return h;
    },
    overlay: () => elements[0]?.textContent,
    overlays: () => elements.length,
    /** the page's (wrapped) fetch */
    fetch: (input: RequestInfo | URL, init?: RequestInit) =>
      (sandbox.fetch as typeof fetch)(input, init),
    xhr: () => new (sandbox.XMLHttpRequest as typeof FakeXHR)(),
    /** the Authorization the frame would put on a same-origin request now (probed with an XHR nobody sees) */
    bearer(): string | undefined {
      const probe = new (sandbox.XMLHttpRequest as typeof FakeXHR)();
      probe.open('GET', '/sales/probe');
      probe.send();
      xhrs.splice(xhrs.indexOf(probe), 1);
      return probe.headers.authorization;
    },
    setAppServer(fn: (r: Recorded) => Response | undefined) {
      appServer = fn;
    },
    /** a window 'message' event, as the browser would deliver it */
    windowMessage(event: { source: unknown; origin: string; data: unknown }) {
      for (const fn of windowListeners) fn(event);
    },
    parent,
    /** runs (and removes) the pending timers whose delay matches */
    fire(match: (ms: number) => boolean): number {
      let n = 0;
      for (const [id, t] of [...timers]) {
        if (match(t.ms)) {
          timers.delete(id);
          t.fn();
          n++;
        }
      }
      return n;
    },
  };
}

const tick = (ms = 5) => new Promise((r) => setTimeout(r, ms));
async function until(cond: () => boolean, what: string): Promise<void> {
  for (let i = 0; i < 200 && !cond(); i++) await tick();
  assert.ok(cond(), what);
}
const tracked: Posted[][] = [];
const track = <T extends { posted: Posted[] }>(f: T): T => {
  tracked.push(f.posted);
  return f;
};

// ---------------------------------------------------------------- bootstrap mode

test('bootstrap: not framed → a message and nothing sent', () => {
  const f = track(frame({ mode: 'bootstrap', top: true }));
  assert.equal(f.overlay(), 'This app can only be shown inside an approved page.');
  assert.deepEqual(f.posted, []);
  assert.deepEqual(f.requests, []);
});

test('106: bootstrap framed by a page not on the allowlist → a message and no hello at all', () => {
  for (const ancestor of ['https://attacker.example', 'https://host.example.attacker.example', 'http://host.example']) {
    const f = track(frame({ mode: 'bootstrap', ancestorOrigins: [ancestor], parentOrigin: ancestor }));
    assert.equal(f.overlay(), 'This app can only be shown inside an approved page.');
    assert.deepEqual(f.posted, [], ancestor);
  }
  // Firefox (no ancestorOrigins): the referrer decides
  const f = track(frame({ mode: 'bootstrap', ancestorOrigins: null, referrer: 'https://attacker.example/x', parentOrigin: 'https://attacker.example' }));
  assert.deepEqual(f.posted, []);
  assert.ok(f.overlay());
  // an empty allowlist
  const g = track(frame({ mode: 'bootstrap', origins: [] }));
  assert.deepEqual(g.posted, []);
});

test('bootstrap: hello to the exact parent origin → token → POST /_embedgate/session → reload', async () => {
  const f = track(frame({ mode: 'bootstrap' }));
  assert.equal(f.posted.length, 1);
  assert.deepEqual(f.posted[0], { message: { embedgate: 1, type: 'hello' }, targetOrigin: HOST, delivered: true });
  await until(() => f.host.received.length === 1, 'token-request');
  assert.deepEqual(f.host.received, [{ type: 'token-request' }]);
  f.host.reply({ type: 'token', token: 'tok-1' });
  await until(() => f.reloads === 1, 'reloaded');
  assert.deepEqual(f.requests, [
    { url: SESSION, method: 'POST', auth: 'Bearer tok-1', credentials: 'include', body: '{"path":"/sales/"}' },
  ]);
  assert.equal(f.overlays(), 0);
  assert.ok((f.history.state as Record<string, unknown> | null)?.['embedgate:reloaded'], 'reload marker set in this frame\'s history entry');
});

const HANDLE = 'h'.repeat(43);
/** The gateway: a cookie session for a plain POST, a handle for one that asks; the probe finds `cookieKept`. */
const modeServer = (cookieKept: boolean) => (r: Recorded): Response => {
  if (r.method === 'GET') return cookieKept ? json(200, { expires_at: Math.floor(nowS()) + 300 }) : json(401, { error: 'missing_token' });
  const asked = JSON.parse(r.body ?? '{}') as { handle?: boolean };
  return json(200, { expires_at: Math.floor(nowS()) + 300, ...(asked.handle ? { handle: HANDLE } : {}) });
};

test('bootstrap, auto mode, the cookie came back: no handle asked, no worker, reload', async () => {
  const workers = new FakeWorkers();
  const f = track(frame({ mode: 'bootstrap', embedMode: 'auto', scope: '/sales/', serviceWorker: workers, server: modeServer(true) }));
  await until(() => f.host.received.length === 1, 'token-request');
  f.host.reply({ type: 'token', token: 'tok-1' });
  await until(() => f.reloads === 1, 'reloaded');
  assert.deepEqual(f.requests.map((r) => `${r.method} ${r.body ?? ''}`), ['POST {"path":"/sales/"}', 'GET ']);
  assert.deepEqual(workers.registered, []);
});

test('bootstrap, auto mode, the frame refused the cookie: the same token once more for a handle, the worker registered for the prefix and given the handle, then reload', async () => {
  const workers = new FakeWorkers();
  const f = track(frame({ mode: 'bootstrap', embedMode: 'auto', scope: '/sales/', serviceWorker: workers, server: modeServer(false) }));
  await until(() => f.host.received.length === 1, 'token-request');
  f.host.reply({ type: 'token', token: 'tok-1' });
  await until(() => f.reloads === 1, 'reloaded');
  assert.deepEqual(f.requests.map((r) => `${r.method} ${r.auth ?? ''} ${r.body ?? ''}`),
    ['POST Bearer tok-1 {"path":"/sales/"}', 'GET  ', 'POST Bearer tok-1 {"path":"/sales/","handle":true}']);
  assert.deepEqual(f.host.received, [{ type: 'token-request' }], 'one token, no second getToken');
  assert.deepEqual(workers.registered, [{ url: '/_embedgate/worker.js', scope: '/sales/' }]);
  assert.equal(workers.handle, HANDLE, 'the worker holds the handle before the reload');
});

test('bootstrap, worker mode: one frame at a time registers its worker, holding the lock until its reload; released when the worker is refused', async () => {
  const locks = new FakeLocks();
  const f = track(frame({ mode: 'bootstrap', embedMode: 'worker', scope: '/sales/', serviceWorker: new FakeWorkers(), locks, server: modeServer(false) }));
  await until(() => f.host.received.length === 1, 'token-request');
  f.host.reply({ type: 'token', token: 'tok-1' });
  await until(() => f.reloads === 1, 'reloaded');
  assert.deepEqual(locks.taken, [{ name: 'embedgate:worker', released: false }], 'held until the page unloads');

  const refused = new FakeLocks();
  const g = track(frame({ mode: 'bootstrap', embedMode: 'worker', scope: '/sales/', serviceWorker: new FakeWorkers(true), locks: refused, server: modeServer(false) }));
  await until(() => g.host.received.length === 1, 'token-request');
  g.host.reply({ type: 'token', token: 'tok-1' });
  await until(() => g.overlay() !== undefined, 'message');
  await until(() => refused.taken[0]?.released === true, 'released');
  assert.equal(g.reloads, 0);

  const cookie = new FakeLocks();
  const h = track(frame({ mode: 'bootstrap', embedMode: 'cookie', locks: cookie }));
  await until(() => h.host.received.length === 1, 'token-request');
  h.host.reply({ type: 'token', token: 'tok-1' });
  await until(() => h.reloads === 1, 'reloaded');
  assert.deepEqual(cookie.taken, [], 'no lock without a worker');
});

test('bootstrap, worker mode: back right after its reload (the browser bypassed the worker), the frame registers it afresh once; the next time it stops', async () => {
  const workers = new FakeWorkers();
  const f = track(frame({ mode: 'bootstrap', embedMode: 'worker', scope: '/sales/', serviceWorker: workers, server: modeServer(false),
    historyState: { 'embedgate:reloaded': { at: Date.now() - 2000, tries: 0 } } }));
  await until(() => f.host.received.length === 1, 'token-request');
  f.host.reply({ type: 'token', token: 'tok-1' });
  await until(() => f.reloads === 1, 'reloaded');
  assert.deepEqual(workers.unregistered, [], 'nothing registered yet to unregister');
  assert.equal(workers.handle, HANDLE);
  assert.equal((f.history.state as Record<string, { tries: number }>)['embedgate:reloaded']?.tries, 1, 'the retry is counted');

  const stale = new FakeWorkers();
  await stale.register('/_embedgate/worker.js', { scope: '/sales/' });
  const g = track(frame({ mode: 'bootstrap', embedMode: 'worker', scope: '/sales/', serviceWorker: stale, server: modeServer(false),
    historyState: { 'embedgate:reloaded': { at: Date.now() - 2000, tries: 0 } } }));
  await until(() => g.host.received.length === 1, 'token-request');
  g.host.reply({ type: 'token', token: 'tok-1' });
  await until(() => g.reloads === 1, 'reloaded');
  assert.deepEqual(stale.unregistered, ['/sales/'], 'the registration the browser bypassed is dropped');
  assert.equal(stale.registered.length, 2, 'and made again');

  const h = track(frame({ mode: 'bootstrap', embedMode: 'worker', scope: '/sales/', serviceWorker: new FakeWorkers(), server: modeServer(false),
    historyState: { 'embedgate:reloaded': { at: Date.now() - 2000, tries: 1 } } }));
  await until(() => h.host.received.length === 1, 'token-request');
  h.host.reply({ type: 'token', token: 'tok-1' });
  await until(() => h.overlay() !== undefined, 'message');
  assert.match(h.overlay() ?? '', /blocked the sign-in cookie/);
  assert.equal(h.reloads, 0, 'no reload loop');
});

test('bootstrap, worker mode: a handle at once (no cookie attempt); where the browser refuses the worker, a message and no reload loop', async () => {
  const workers = new FakeWorkers();
  const f = track(frame({ mode: 'bootstrap', embedMode: 'worker', scope: '/sales/', serviceWorker: workers, server: modeServer(false) }));
  await until(() => f.host.received.length === 1, 'token-request');
  f.host.reply({ type: 'token', token: 'tok-1' });
  await until(() => f.reloads === 1, 'reloaded');
  assert.deepEqual(f.requests.map((r) => r.body), ['{"path":"/sales/","handle":true}']);
  assert.equal(workers.handle, HANDLE);

  const refusing = new FakeWorkers(true);
  const g = track(frame({ mode: 'bootstrap', embedMode: 'worker', scope: '/sales/', serviceWorker: refusing, server: modeServer(false) }));
  await until(() => g.host.received.length === 1, 'token-request');
  g.host.reply({ type: 'token', token: 'tok-1' });
  await until(() => g.overlay() !== undefined, 'message');
  assert.equal(g.overlay(), 'This browser blocked the sign-in cookie. Allow cookies for this site, then reload.');
  assert.equal(g.reloads, 0);
  assert.equal(g.host.received.at(-1)?.type, 'error');
});

test('bootstrap, cookie mode: never a handle or a worker, even where the cookie did not stick', async () => {
  const workers = new FakeWorkers();
  const f = track(frame({ mode: 'bootstrap', embedMode: 'cookie', scope: '/sales/', serviceWorker: workers, server: modeServer(false) }));
  await until(() => f.host.received.length === 1, 'token-request');
  f.host.reply({ type: 'token', token: 'tok-1' });
  await until(() => f.reloads === 1, 'reloaded');
  assert.deepEqual(f.requests.map((r) => r.method), ['POST']);
  assert.deepEqual(workers.registered, []);
});

for (const [status, type, text] of [
  [401, 'signed-out', 'You are signed out. Sign in again to use this app.'],
  [403, 'forbidden', 'You do not have access to this app.'],
  [500, 'error', 'Sign-in failed. Reload the page to try again.'],
] as const) {
  test(`bootstrap: session answer ${status} → {type:'${type}'} and a message`, async () => {
    const f = track(frame({ mode: 'bootstrap', server: () => json(status, { error: 'x' }) }));
    await until(() => f.host.received.length === 1, 'token-request');
    f.host.reply({ type: 'token', token: 'tok' });
    await until(() => f.host.received.length === 2, 'outcome');
    assert.equal(f.host.received[1]?.type, type);
    if (type === 'error') assert.equal(typeof f.host.received[1]?.message, 'string');
    assert.equal(f.overlay(), text);
    assert.equal(f.reloads, 0);
  });
}

test('bootstrap: no-token from the host → signed-out message, no session request', async () => {
  const f = track(frame({ mode: 'bootstrap' }));
  await until(() => f.host.received.length === 1, 'token-request');
  f.host.reply({ type: 'no-token', reason: 'signed-out' });
  await until(() => f.host.received.length === 2, 'signed-out');
  assert.deepEqual(f.host.received[1], { type: 'signed-out' });
  assert.equal(f.overlay(), 'You are signed out. Sign in again to use this app.');
  assert.deepEqual(f.requests, []);

  const g = track(frame({ mode: 'bootstrap' }));
  await until(() => g.host.received.length === 1, 'token-request');
  g.host.reply({ type: 'no-token', reason: 'error' });
  await until(() => g.overlay() !== undefined, 'message');
  assert.equal(g.overlay(), 'Sign-in failed. Reload the page to try again.');
  assert.deepEqual(g.requests, []);
});

test('bootstrap: malformed host messages are ignored', async () => {
  const f = track(frame({ mode: 'bootstrap' }));
  await until(() => f.host.received.length === 1, 'token-request');
  for (const junk of [{ type: 'token' }, { type: 'token', token: '' }, { type: 'token', token: 'a\nb' }, 'tok', null,
    { type: 'no-token', reason: 'nope' }, { embedgate: 1, type: 'hello' }]) f.host.reply(junk);
  await tick(30);
  assert.equal(f.requests.length, 0);
  f.host.reply({ type: 'token', token: 'good' });
  await until(() => f.reloads === 1, 'reload');
  assert.equal(f.requests[0]?.auth, 'Bearer good');
});

test('bootstrap without ancestorOrigins and a same-origin referrer: a hello per allowlisted origin, only the parent gets one', async () => {
  const f = track(frame({ mode: 'bootstrap', ancestorOrigins: null, referrer: BASE + 'page', origins: [OTHER, HOST], parentOrigin: HOST }));
  assert.deepEqual(f.posted.map((p) => [p.targetOrigin, p.delivered]), [[OTHER, false], [HOST, true]]);
  await until(() => f.host.received.length === 1, 'token-request');
  f.host.reply({ type: 'token', token: 't' });
  await until(() => f.reloads === 1, 'reload');
});

test('bootstrap: the host attaches late → its attach ping gets a new hello; pings from elsewhere are ignored', async () => {
  const f = track(frame({ mode: 'bootstrap', dropHellos: 1 }));
  assert.equal(f.hosts.length, 0);
  f.windowMessage({ source: {}, origin: HOST, data: { embedgate: 1, type: 'attach' } });             // not the parent
  f.windowMessage({ source: f.parent, origin: 'https://attacker.example', data: { embedgate: 1, type: 'attach' } });
  f.windowMessage({ source: f.parent, origin: HOST, data: { type: 'attach' } });
  assert.equal(f.posted.length, 1);
  f.windowMessage({ source: f.parent, origin: HOST, data: { embedgate: 1, type: 'attach' } });
  assert.equal(f.posted.length, 2);
  assert.equal(f.posted[1]?.targetOrigin, HOST);
  await until(() => f.host.received.length === 1, 'token-request re-sent on the new port');
  f.host.reply({ type: 'token', token: 't' });
  await until(() => f.reloads === 1, 'reload');
});

test('bootstrap: the host never answers → a message after the timeout; a later attach retries', async () => {
  const f = track(frame({ mode: 'bootstrap' }));
  await until(() => f.host.received.length === 1, 'token-request');
  assert.equal(f.fire((ms) => ms === 20_000), 1);
  await until(() => f.overlay() !== undefined, 'message');
  assert.equal(f.overlay(), 'Sign-in failed. Reload the page to try again.');
  f.windowMessage({ source: f.parent, origin: HOST, data: { embedgate: 1, type: 'attach' } });
  await until(() => f.host.received.length === 1 && f.hosts.length === 2, 'new token-request');
  f.host.reply({ type: 'token', token: 't' });
  await until(() => f.reloads === 1, 'reload');
});

test('bootstrap: a second bootstrap right after its reload means the cookie was refused → no reload loop', async () => {
  const f = track(frame({ mode: 'bootstrap', historyState: { 'embedgate:reloaded': { at: Date.now() - 2000, tries: 0 } } }));
  await until(() => f.host.received.length === 1, 'token-request');
  f.host.reply({ type: 'token', token: 't' });
  await until(() => f.host.received.length === 2, 'error');
  assert.equal(f.reloads, 0);
  assert.equal(f.host.received[1]?.type, 'error');
  assert.match(f.overlay() ?? '', /cookie/);
  // an old marker does not block
  const g = track(frame({ mode: 'bootstrap', historyState: { 'embedgate:reloaded': { at: Date.now() - 60_000, tries: 0 } } }));
  await until(() => g.host.received.length === 1, 'token-request');
  g.host.reply({ type: 'token', token: 't' });
  await until(() => g.reloads === 1, 'reload');
});

test('bootstrap: sign-out from the host → DELETE, signed-out message, no reload', async () => {
  const f = track(frame({ mode: 'bootstrap' }));
  await until(() => f.host.received.length === 1, 'token-request');
  f.host.reply({ type: 'sign-out' });
  await until(() => f.host.received.length === 2, 'signed-out');
  assert.deepEqual(f.host.received[1], { type: 'signed-out' });
  assert.deepEqual(f.requests.map((r) => r.method), ['DELETE']);
  f.host.reply({ type: 'token', token: 'late' });
  await tick(20);
  assert.equal(f.reloads, 0);
});

// ---------------------------------------------------------------- app mode

test('app: hello + ready, renewal scheduled at ~70% of the remaining life', async () => {
  const expires = Math.floor(nowS()) + 300;
  const f = track(frame({ mode: 'app', expires, headerMode: false, historyState: { 'embedgate:reloaded': Date.now() - 1000 } }));
  assert.equal(f.posted.length, 1);
  assert.equal(f.posted[0]?.targetOrigin, HOST);
  await until(() => f.host.received.length === 1, 'ready');
  assert.deepEqual(f.host.received, [{ type: 'ready' }]);
  const delays = [...f.timers.values()].map((t) => t.ms);
  assert.equal(delays.length, 1);
  assert.ok(delays[0]! > 205_000 && delays[0]! <= 210_000, String(delays[0]));
  assert.equal(f.history.state, null, 'the app page clears the bootstrap\'s reload marker');
});

test('app: renewal asks for a token, rotates the session and reschedules from the new expires_at', async () => {
  const next = Math.floor(nowS()) + 600;
  const f = track(frame({ mode: 'app', expires: Math.floor(nowS()) + 300, server: () => json(200, { expires_at: next }) }));
  await until(() => f.host.received.length === 1, 'ready');
  f.fire((ms) => ms > 200_000);
  await until(() => f.host.received.length === 2, 'token-request');
  assert.deepEqual(f.host.received[1], { type: 'token-request' });
  f.host.reply({ type: 'token', token: 'fresh' });
  await until(() => f.requests.length === 1, 'session POST');
  assert.deepEqual(f.requests[0],
    { url: SESSION, method: 'POST', auth: 'Bearer fresh', credentials: 'include', body: '{"path":"/sales/"}' });
  await until(() => [...f.timers.values()].some((t) => t.ms > 400_000), 'rescheduled');
  const delay = [...f.timers.values()].find((t) => t.ms > 400_000)!.ms;
  assert.ok(delay > 415_000 && delay <= 420_000, String(delay));
  assert.equal(f.overlays(), 0);
});

test('app: renewal timing follows the server clock (Date header), and renewals never come back to back', async () => {
  const hourMs = 3600_000;
  const serverNowS = () => Math.floor((Date.now() - hourMs) / 1000);             // the server is an hour behind
  const f = track(frame({
    mode: 'app', expires: Math.floor(nowS()) + 300,
    server: () => new Response(JSON.stringify({ expires_at: serverNowS() + 300 }), {
      status: 200, headers: { 'content-type': 'application/json', date: new Date(Date.now() - hourMs).toUTCString() },
    }),
  }));
  await until(() => f.host.received.length === 1, 'ready');
  f.fire(() => true);
  await until(() => f.host.received.length === 2, 'token-request');
  f.host.reply({ type: 'token', token: 't' });
  const renewalTimers = (x: { timers: Map<number, { ms: number }> }) =>
    [...x.timers.values()].map((t) => t.ms).filter((ms) => ms !== 20_000);
  await until(() => renewalTimers(f).length === 1, 'rescheduled');
  const delay = renewalTimers(f)[0]!;
  assert.ok(delay > 205_000 && delay <= 211_000, `70% of 300 s in server time, not 0: ${delay}`);

  // a server that always answers with an expiry in the past cannot make the frame renew in a tight loop
  const g = track(frame({ mode: 'app', expires: Math.floor(nowS()) + 300, server: () => json(200, { expires_at: 1000 }) }));
  await until(() => g.host.received.length === 1, 'ready');
  g.fire(() => true);
  await until(() => g.host.received.length === 2, 'token-request');
  g.host.reply({ type: 'token', token: 't' });
  await until(() => renewalTimers(g).length === 1, 'rescheduled');
  assert.deepEqual(renewalTimers(g), [5000]);
});

test('app: an expiry already past renews at once', async () => {
  const f = track(frame({ mode: 'app', expires: Math.floor(nowS()) - 5 }));
  assert.deepEqual([...f.timers.values()].map((t) => t.ms), [0]);
});

test('app: renewal answered 401 → signed-out overlay and message; 403 → forbidden', async () => {
  for (const [status, type] of [[401, 'signed-out'], [403, 'forbidden']] as const) {
    const f = track(frame({ mode: 'app', expires: Math.floor(nowS()) + 300, server: () => json(status, {}) }));
    await until(() => f.host.received.length === 1, 'ready');
    f.fire(() => true);
    await until(() => f.host.received.length === 2, 'token-request');
    f.host.reply({ type: 'token', token: 't' });
    await until(() => f.host.received.length === 3, 'outcome');
    assert.deepEqual(f.host.received[2], { type });
    assert.ok(f.overlay());
    assert.equal(f.timers.size, 0, 'no more renewals');
  }
});

test('app: a transient renewal failure is reported and retried while the session lasts', async () => {
  let calls = 0;
  const f = track(frame({
    mode: 'app', expires: Math.floor(nowS()) + 300,
    server: () => (++calls === 1 ? json(502, {}) : json(200, { expires_at: Math.floor(nowS()) + 300 })),
  }));
  await until(() => f.host.received.length === 1, 'ready');
  f.fire(() => true);
  await until(() => f.host.received.length === 2, 'token-request');
  f.host.reply({ type: 'token', token: 't' });
  await until(() => f.host.received.length === 3, 'error');
  assert.equal(f.host.received[2]?.type, 'error');
  assert.equal(f.overlays(), 0, 'the app stays usable');
  assert.equal(f.timers.size, 1, 'retry scheduled');
  f.fire(() => true);
  await until(() => f.host.received.length === 4, 'second token-request');
  f.host.reply({ type: 'token', token: 't2' });
  await until(() => f.requests.length === 2 && f.timers.size === 1, 'renewed');
  assert.equal(f.overlays(), 0);
});

test('app: sign-out from the host → DELETE /_embedgate/session, overlay, signed-out', async () => {
  const f = track(frame({ mode: 'app', expires: Math.floor(nowS()) + 300 }));
  await until(() => f.host.received.length === 1, 'ready');
  f.host.reply({ type: 'sign-out' });
  await until(() => f.host.received.length === 2, 'signed-out');
  assert.deepEqual(f.host.received[1], { type: 'signed-out' });
  assert.deepEqual(f.requests.map((r) => [r.url, r.method, r.credentials]), [[SESSION, 'DELETE', 'include']]);
  assert.equal(f.overlay(), 'You are signed out. Sign in again to use this app.');
  assert.equal(f.timers.size, 0);
});

test('app without a parent (standalone) stays silent and wraps nothing', () => {
  const f = track(frame({ mode: 'app', top: true, headerMode: true }));
  assert.deepEqual(f.posted, []);
  assert.equal(f.overlays(), 0);
  assert.equal((f.sandbox.fetch as { name: string }).name, 'pageFetch');
});

test('header mode: until the first token, same-origin requests go at once with the cookie only', async () => {
  const f = track(frame({ mode: 'app', expires: Math.floor(nowS()) + 300, headerMode: true }));
  await until(() => f.host.received.length === 2, 'ready + token-request');
  await f.fetch('/sales/_dash-layout');
  const early = f.xhr();
  early.open('GET', '/sales/_dash-layout');
  early.send();
  f.host.reply({ type: 'token', token: 'T1' });
  await until(() => f.bearer() === 'Bearer T1', 'the token is taken');
  await f.fetch('/sales/_dash-dependencies');
  assert.deepEqual(f.requests.map((r) => [r.url, r.auth]), [
    [GW + '/sales/_dash-layout', null],
    [GW + '/sales/_dash-dependencies', 'Bearer T1'],
  ]);
  assert.equal(early.headers.authorization, undefined);
});

test('header mode: same-origin fetch and XHR carry the latest bearer; cross-origin and app-set headers are untouched', async () => {
  const f = track(frame({ mode: 'app', expires: Math.floor(nowS()) + 300, headerMode: true, waitForToken: true }));
  await until(() => f.host.received.length === 2, 'ready + token-request');
  assert.deepEqual(f.host.types(), ['ready', 'token-request']);
  const early = f.fetch('/sales/_dash-layout');               // an app that reads the bearer: waits for the first token
  await tick(20);
  assert.equal(f.requests.length, 0);
  f.host.reply({ type: 'token', token: 'T1' });
  await early;
  await f.fetch('_dash-dependencies');
  await f.fetch(new URL(GW + '/sales/x'));
  await f.fetch(new Request(GW + '/sales/y', { method: 'POST', body: '{"a":1}' }));
  await f.fetch('https://api.example/data');
  await f.fetch('//gw.example.attacker.example/steal');
  await f.fetch('/sales/own', { headers: { Authorization: 'Bearer app-own' } });
  await f.fetch(new Request(GW + '/sales/own2', { headers: { authorization: 'Basic abc' } }));
  assert.deepEqual(f.requests.map((r) => [r.url, r.auth]), [
    [GW + '/sales/_dash-layout', 'Bearer T1'],
    [GW + '/sales/_dash-dependencies', 'Bearer T1'],
    [GW + '/sales/x', 'Bearer T1'],
    [GW + '/sales/y', 'Bearer T1'],
    ['https://api.example/data', null],
    ['https://gw.example.attacker.example/steal', null],
    [GW + '/sales/own', 'Bearer app-own'],
    [GW + '/sales/own2', 'Basic abc'],
  ]);
  assert.equal(f.requests[3]?.body, '{"a":1}');

  const same = f.xhr();
  same.open('GET', '/sales/_dash-layout');
  same.send();
  const cross = f.xhr();
  cross.open('GET', 'https://api.example/x');
  cross.send();
  const own = f.xhr();
  own.open('GET', '/sales/x');
  own.setRequestHeader('Authorization', 'Bearer mine');
  own.send();
  assert.equal(same.headers.authorization, 'Bearer T1');
  assert.equal(cross.headers.authorization, undefined);
  assert.equal(own.headers.authorization, 'Bearer mine');
});

test('header mode off: no bearer on requests', async () => {
  const f = track(frame({ mode: 'app', expires: Math.floor(nowS()) + 300, headerMode: false }));
  await until(() => f.host.received.length === 1, 'ready');
  await f.fetch('/sales/x');
  const x = f.xhr();
  x.open('GET', '/sales/x');
  x.send();
  assert.equal(f.requests[0]?.auth, null);
  assert.equal(x.headers.authorization, undefined);
});

test('a 401 on a same-origin fetch renews once and retries once with the new token', async () => {
  const f = track(frame({ mode: 'app', expires: Math.floor(nowS()) + 300, headerMode: true }));
  await until(() => f.host.received.length === 2, 'token-request');
  f.host.reply({ type: 'token', token: 'old' });
  await until(() => f.bearer() === 'Bearer old', 'the token is taken');
  let dashCalls = 0;
  f.setAppServer((r) => (r.url.endsWith('/_dash-update-component') && ++dashCalls === 1
    ? new Response('JWT Expired', { status: 401 }) : undefined));
  const pending = f.fetch('/sales/_dash-update-component', { method: 'POST', body: '{"output":"x.children"}' });
  await until(() => f.host.received.length === 3, 'renewal token-request');
  f.host.reply({ type: 'token', token: 'new' });
  const response = await pending;
  assert.equal(response.status, 200);
  assert.deepEqual(f.requests.map((r) => [r.url.replace(GW, ''), r.method, r.auth, r.body ?? '']), [
    ['/sales/_dash-update-component', 'POST', 'Bearer old', '{"output":"x.children"}'],
    ['/_embedgate/session', 'POST', 'Bearer new', '{"path":"/sales/"}'],
    ['/sales/_dash-update-component', 'POST', 'Bearer new', '{"output":"x.children"}'],
  ]);
});

test('a 401 that persists after renewal is returned to the app (one retry, no loop); concurrent 401s share one renewal', async () => {
  const f = track(frame({ mode: 'app', expires: Math.floor(nowS()) + 300, headerMode: false }));
  await until(() => f.host.received.length === 1, 'ready');
  f.setAppServer((r) => (r.url.includes('/denied') ? new Response('JWT Expired', { status: 401 }) : undefined));
  const a = f.fetch('/sales/denied/a');
  const b = f.fetch('/sales/denied/b');
  await until(() => f.host.received.length === 2, 'one token-request');
  f.host.reply({ type: 'token', token: 'n' });
  const [ra, rb] = await Promise.all([a, b]);
  assert.equal(ra.status, 401);
  assert.equal(rb.status, 401);
  assert.equal(f.requests.filter((r) => r.url === SESSION).length, 1, 'one renewal');
  assert.equal(f.requests.filter((r) => r.url.includes('/denied/a')).length, 2, 'retried once');
  // right after a renewal, another 401 does not renew again
  const c = await f.fetch('/sales/denied/c');
  assert.equal(c.status, 401);
  assert.equal(f.requests.filter((r) => r.url === SESSION).length, 1);
  assert.deepEqual(f.host.types(), ['ready', 'token-request']);
  // cross-origin 401s are none of our business
  f.setAppServer(() => new Response('no', { status: 401 }));
  await f.fetch('https://api.example/x');
  assert.equal(f.host.received.length, 2);
});

test('a 401 whose renewal is refused (401) → signed-out overlay; later requests pass through untouched', async () => {
  const f = track(frame({ mode: 'app', expires: Math.floor(nowS()) + 300, headerMode: true, server: () => json(401, {}) }));
  await until(() => f.host.received.length === 2, 'token-request');
  f.host.reply({ type: 'token', token: 'old' });
  await until(() => f.bearer() === 'Bearer old', 'the token is taken');
  f.setAppServer(() => new Response('', { status: 401 }));
  const pending = f.fetch('/sales/x');
  await until(() => f.host.received.length === 3, 'renewal token-request');
  f.host.reply({ type: 'token', token: 'rejected' });
  assert.equal((await pending).status, 401);
  await until(() => f.host.received.length === 4, 'signed-out');
  assert.deepEqual(f.host.received[3], { type: 'signed-out' });
  assert.equal(f.overlay(), 'You are signed out. Sign in again to use this app.');
  await f.fetch('/sales/y');
  assert.equal(f.requests.at(-1)?.auth, null, 'no bearer after sign-out');
});

test('XHR 401 renews (no retry)', async () => {
  const f = track(frame({ mode: 'app', expires: Math.floor(nowS()) + 300 }));
  await until(() => f.host.received.length === 1, 'ready');
  const x = f.xhr();
  x.open('POST', '/sales/_dash-update-component');
  x.send();
  x.respond(401);
  await until(() => f.host.received.length === 2, 'token-request');
  f.host.reply({ type: 'token', token: 'n' });
  await until(() => f.requests.length === 1, 'renewed');
  assert.equal(f.requests[0]?.url, SESSION);
  assert.equal(f.xhrs.length, 1, 'not retried');
  const cross = f.xhr();
  cross.open('GET', 'https://api.example/x');
  cross.send();
  cross.respond(401);
  await tick(20);
  assert.equal(f.host.received.length, 2);
});

test('app framed by a page off the allowlist: overlay, no hello, nothing wrapped', () => {
  const f = track(frame({ mode: 'app', ancestorOrigins: ['https://attacker.example'], parentOrigin: 'https://attacker.example', headerMode: true }));
  assert.deepEqual(f.posted, []);
  assert.ok(f.overlay());
  assert.equal((f.sandbox.fetch as { name: string }).name, 'pageFetch');
});

test('106: the frame never posts to "*" and only ever to allowlisted origins', () => {
  const allPosted = tracked.flat();
  assert.ok(allPosted.length > 10);
  for (const p of allPosted) {
    assert.notEqual(p.targetOrigin, '*');
    assert.ok([HOST, OTHER].includes(p.targetOrigin), p.targetOrigin);
    assert.deepEqual(p.message, { embedgate: 1, type: 'hello' }, 'window messages carry nothing but hello');
  }
});
