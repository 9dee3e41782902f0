// The world of the real-browser embed tests: a Dash-like upstream app, host sites on http://localhost:<port> (a
// different site from the gateway on http://127.0.0.1:<port>), a token endpoint standing in for the host's OIDC
// client (tokens forged by the hostile OP), and the gateway between them.
import { once } from 'node:events';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Frame, FrameLocator, Page } from 'playwright-core';
import { WebSocketServer } from 'ws';
import { eventually, startGateway, type RunningGateway } from './gateway.js';
import { startHostileOp, type HostileOp } from './hostile-op.js';
import { freePort } from './idp.js';

// ---------------------------------------------------------------------------------------------------------------
// The upstream: a small Dash-protocol-like app mounted at /sales/.

export interface AppRequest {
  method: string;
  path: string;
  /** X-Forwarded-User as the app received it (undefined when the gateway set none). */
  user: string | undefined;
  /** The Cookie header the app received. */
  cookie: string | undefined;
  /** An X-Embedgate-Session header that reached the app (the gateway strips it; a request straight to the app would not). */
  sessionHandle: string | undefined;
  /** For callbacks: the "output" the body names. */
  output?: string;
}

export interface AppHandshake {
  user: string | undefined;
  origin: string | undefined;
  cookie: string | undefined;
}

export interface DashApp {
  url: string;
  requests: AppRequest[];
  wsHandshakes: AppHandshake[];
  /** Requests for one path (query ignored), optionally one method. */
  requestsTo(path: string, method?: string): AppRequest[];
  close(): Promise<void>;
}

/**
 * Cookie the app sets on its page, exactly like the gateway's session cookie but not Partitioned: with third-party
 * cookies blocked the browser must drop it, which proves the blocking is on in the frame.
 */
export const PROBE_COOKIE = 'unpartitioned_probe';

/** The app's page. Its inline script runs after the injected frame script (which wraps fetch) and shows results. */
export const APP_HTML = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Sales dashboard</title></head>
<body>
<h1 id="app-title">Sales dashboard</h1>
<dl>
  <dt>layout</dt><dd id="layout">pending</dd>
  <dt>chart</dt><dd id="chart">pending</dd>
  <dt>payroll</dt><dd id="payroll">pending</dd>
  <dt>cookies</dt><dd id="cookie-probe">pending</dd>
  <dt>socket</dt><dd id="ws-state">connecting</dd><dd id="ws-echo"></dd><dd id="ws-close"></dd>
  <dt>refresh loop</dt><dd id="loop-ok">0</dd><dd id="loop-failed">0</dd>
</dl>
<button id="loop-start" type="button">Refresh every second</button>
<script>
(function () {
  var byId = function (id) { return document.getElementById(id); };
  window.appLoadId = Math.random().toString(36).slice(2);
  window.appStatuses = [];
  window.dashCallback = function (output) {
    var parts = output.split('.');
    return fetch('/sales/_dash-update-component', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ output: output, outputs: { id: parts[0], property: parts[1] }, inputs: [], changedPropIds: [] }),
    }).then(function (r) { return r.status; }, function () { return 0; }).then(function (status) {
      window.appStatuses.push({ output: output, status: status, at: Date.now() });
      return status;
    });
  };
  fetch('/sales/_dash-layout').then(function (r) { byId('layout').textContent = String(r.status); },
    function () { byId('layout').textContent = 'network error'; });
  window.dashCallback('chart.figure').then(function (s) { byId('chart').textContent = String(s); });
  window.dashCallback('payroll.children').then(function (s) { byId('payroll').textContent = String(s); });
  document.cookie = 'js_probe=1; Path=/; Secure; SameSite=None';
  byId('cookie-probe').textContent = document.cookie === '' ? 'none readable' : document.cookie;
  var ws = new WebSocket((location.protocol === 'https:' ? 'wss://' : 'ws://') + location.host + '/sales/ws');
  window.appSocket = ws;
  ws.onopen = function () { byId('ws-state').textContent = 'open'; ws.send('ping ' + window.appLoadId); };
  ws.onmessage = function (e) { byId('ws-echo').textContent = String(e.data); };
  ws.onclose = function (e) { byId('ws-state').textContent = 'closed'; byId('ws-close').textContent = String(e.code); };
  ws.onerror = function () { byId('ws-state').textContent = 'error'; };
  var ok = 0, failed = 0, timer;
  byId('loop-start').addEventListener('click', function () {
    if (timer) return;
    timer = setInterval(function () {
      window.dashCallback('chart.figure').then(function (s) {
        if (s === 200) ok++; else failed++;
        byId('loop-ok').textContent = String(ok);
        byId('loop-failed').textContent = String(failed);
      });
    }, 1000);
  });
})();
</script>
</body></html>`;

/** /sales/nested: the app framing itself, with every window message it receives recorded. */
export const NESTED_HTML = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Nested</title></head>
<body><h1>Nested</h1><script>
window.messages = [];
window.addEventListener('message', function (e) { window.messages.push({ origin: e.origin, data: JSON.stringify(e.data) }); });
</script><iframe id="inner" title="inner" src="/sales/" style="width:800px;height:500px"></iframe></body></html>`;

const DASH_LAYOUT = { type: 'Div', namespace: 'dash_html_components', props: { id: 'root', children: 'quarterly sales' } };

export async function startDashApp(): Promise<DashApp> {
  const requests: AppRequest[] = [];
  const wsHandshakes: AppHandshake[] = [];
  const wss = new WebSocketServer({ noServer: true });
  const header = (req: IncomingMessage, name: string): string | undefined => {
    const value = req.headers[name];
    return Array.isArray(value) ? value.join(', ') : value;
  };
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      const path = (req.url ?? '').split('?')[0] ?? '';
      const recorded: AppRequest = {
        method: req.method ?? '', path, user: header(req, 'x-forwarded-user'), cookie: header(req, 'cookie'), sessionHandle: header(req, 'x-embedgate-session'),
      };
      if (path === '/sales/_dash-update-component') {
        try {
          recorded.output = String((JSON.parse(Buffer.concat(chunks).toString('utf8')) as { output?: unknown }).output);
        } catch {
          recorded.output = '<not json>';
        }
      }
      requests.push(recorded);
      if (path === '/sales/' && req.method === 'GET') {
        res.writeHead(200, {
          'content-type': 'text/html; charset=utf-8',
          'set-cookie': `${PROBE_COOKIE}=1; Path=/; Max-Age=600; Secure; HttpOnly; SameSite=None`,
        });
        res.end(APP_HTML);
      } else if (path === '/sales/nested' && req.method === 'GET') {
        // An app page that frames the app again: the inner frame's parent is the gateway's own origin.
        res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' });
        res.end(NESTED_HTML);
      } else if (path === '/sales/_dash-layout' && req.method === 'GET') {
        json(res, DASH_LAYOUT);
      } else if (path === '/sales/_dash-update-component' && req.method === 'POST') {
        json(res, { multi: true, response: { [recorded.output ?? '']: { at: Date.now() } } });
      } else {
        res.writeHead(404, { 'content-type': 'text/plain' });
        res.end('not found');
      }
    });
  });
  server.on('upgrade', (req, socket, head) => {
    wsHandshakes.push({ user: header(req, 'x-forwarded-user'), origin: header(req, 'origin'), cookie: header(req, 'cookie') });
    wss.handleUpgrade(req, socket, head, (ws) => ws.on('message', (data) => ws.send(`echo: ${String(data)}`)));
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    requests,
    wsHandshakes,
    requestsTo: (path, method) => requests.filter((r) => r.path === path && (method === undefined || r.method === method)),
    close: async () => {
      for (const client of wss.clients) client.terminate();
      wss.close();
      await closeServer(server);
    },
  };
}

function json(res: ServerResponse, value: unknown): void {
  res.writeHead(200, { 'content-type': 'application/json' });
  res.end(JSON.stringify(value));
}

async function closeServer(server: Server): Promise<void> {
  const closed = new Promise((resolve) => server.close(resolve));
  server.closeAllConnections();
  await closed;
}

// ---------------------------------------------------------------------------------------------------------------
// Host sites: the same small set of pages on every origin, so that any of them can play host, outsider or attacker.

export const USERS: Record<string, string[]> = { alice: ['analyst'], bob: ['admin'], carol: ['viewer'] };

export interface TokenRequest {
  user: string;
  at: number;
}

export interface Site {
  /** e.g. http://localhost:43123 */
  origin: string;
  port: number;
  tokenRequests: TokenRequest[];
  close(): Promise<void>;
}

const page = (title: string, body: string): string =>
  `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>${title}</title></head><body>${body}</body></html>`;

/** Records every window message as { origin, data (JSON), ports, fromApp }, from the start of the page. */
const MESSAGE_RECORDER = `window.messages = [];
window.addEventListener('message', function (e) {
  var app = document.getElementById('app');
  var data; try { data = JSON.stringify(e.data); } catch (x) { data = String(e.data); }
  window.messages.push({ origin: e.origin, data: data, ports: e.ports.length, fromApp: !!app && e.source === app.contentWindow });
});`;

/** How the host page loads the SDK (?sdk=): a classic script tag, the ES module's named exports, or import() of host.js. */
const SDK_LOADERS: Record<string, (gateway: string) => string> = {
  classic: (gateway) => `<script src="${gateway}/_embedgate/host.js"></script><script>window.startHost(window.embedgate);</script>`,
  module: (gateway) => `<script type="module">import * as sdk from '${gateway}/_embedgate/host.mjs'; window.startHost(sdk);</script>`,
  import: (gateway) => `<script type="module">await import('${gateway}/_embedgate/host.js'); window.startHost(window.embedgate);</script>`,
};

/**
 * GET /host.html?user=&ttl=&app=&src=&attacker=&sdk=&before= — the host page: loads the gateway's host SDK
 *   (sdk=classic, the default: a script tag; module: host.mjs's exports; import: import() of host.js), attaches the
 *   iframe #app (before=1: attach() makes the session and then navigates the iframe, else the page sets its src)
 *   (window.handle), counts getToken calls (window.tokenCalls), records events (window.events) and every window
 *   message (window.messages); the iframe shows gateway + app (default /sales/), or src when given; with attacker=URL
 *   it also frames that URL next to the app.
 * GET /token?user=&ttl= — a freshly signed access token for that user (ttl seconds), '' for an unknown user.
 * GET /attacker.html?auto=1 — window.sendHello() posts a fake hello with a port to window.parent (targetOrigin "*"),
 *   asks for a token on that port, and posts fake frame events; what comes back on the port is in
 *   window.portMessages. auto=1 calls it on load.
 * GET /frame.html?src=&hidden=1 — frames src in #app (hidden: 0×0, invisible) and records window messages.
 * GET /open.html?src= — opens src in a popup (window.popup) and records window messages.
 * GET /nest.html?src= — frames /frame.html?src= in a sandbox="allow-scripts" iframe: src gets a parent whose origin
 *   is opaque ("null") while every ancestor's URL is on this site.
 */
export async function startSite(opts: { host: string; gateway: string; op: HostileOp }): Promise<Site> {
  const tokenRequests: TokenRequest[] = [];
  const server = createServer((req, res) => {
    void respondSite(req, res, opts, tokenRequests).catch(() => {
      res.writeHead(500).end();
    });
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as AddressInfo;
  return { origin: `http://${opts.host}:${port}`, port, tokenRequests, close: () => closeServer(server) };
}

async function respondSite(req: IncomingMessage, res: ServerResponse, opts: { gateway: string; op: HostileOp }, tokenRequests: TokenRequest[]): Promise<void> {
  const url = new URL(req.url ?? '/', 'http://site.invalid');
  const q = (name: string, fallback = ''): string => url.searchParams.get(name) ?? fallback;
  const html = (body: string): void => {
    res.writeHead(200, { 'content-type': 'text/html; charset=utf-8', 'cache-control': 'no-store' });
    res.end(body);
  };
  const attr = (value: string): string => value.replace(/&/g, '&amp;').replace(/"/g, '&quot;').replace(/</g, '&lt;');
  switch (url.pathname) {
    case '/token': {
      const user = q('user');
      tokenRequests.push({ user, at: Date.now() });
      const roles = USERS[user];
      const ttl = Number(q('ttl', '300'));
      const token = roles === undefined ? '' : await opts.op.sign(opts.op.claims({ sub: user, roles, exp: Math.floor(Date.now() / 1000) + ttl }));
      res.writeHead(200, { 'content-type': 'text/plain', 'cache-control': 'no-store' });
      res.end(token);
      return;
    }
    case '/host.html': {
      const attacker = q('attacker');
      html(page('Host portal', `<h1>Host portal</h1>
<iframe id="app" title="Sales dashboard" style="width:900px;height:600px;border:0"></iframe>
${attacker === '' ? '' : `<iframe id="attacker" title="Advert" src="${attr(attacker)}"></iframe>`}
<script>${MESSAGE_RECORDER}</script>
<script>
window.startHost = function (sdk) {
  var params = new URLSearchParams(location.search);
  var user = params.get('user') || 'alice';
  var ttl = params.get('ttl') || '300';
  var iframe = document.getElementById('app');
  window.events = []; window.tokenCalls = 0; window.frameLoads = 0;
  iframe.addEventListener('load', function () { window.frameLoads++; });
  if (!sdk) { window.sdkMissing = true; return; }
  var src = params.get('src') || ${JSON.stringify(opts.gateway)} + (params.get('app') || '/sales/');
  var before = params.get('before') === '1';
  window.handle = sdk.attach(iframe, {
    gateway: ${JSON.stringify(opts.gateway)},
    getToken: function () {
      window.tokenCalls++;
      return fetch('/token?user=' + encodeURIComponent(user) + '&ttl=' + encodeURIComponent(ttl)).then(function (r) { return r.text(); });
    },
    src: before ? src : undefined,
  });
  sdk.events.forEach(function (type) {
    window.handle.on(type, function (d) { window.events.push({ type: d.type, message: d.message || '', at: Date.now() }); });
  });
  if (!before) iframe.src = src;
};
</script>
${SDK_LOADERS[q('sdk', 'classic')]?.(opts.gateway) ?? ''}`));
      return;
    }
    case '/attacker.html':
      html(page('Advert', `<p>advert</p><script>
window.portMessages = [];
window.helloSent = 0;
window.sendHello = function () {
  var channel = new MessageChannel();
  channel.port1.onmessage = function (e) { window.portMessages.push(JSON.stringify(e.data)); };
  window.parent.postMessage({ embedgate: 1, type: 'hello' }, '*', [channel.port2]);
  channel.port1.postMessage({ type: 'token-request' });
  window.parent.postMessage({ embedgate: 1, type: 'signed-out' }, '*');
  window.parent.postMessage({ type: 'forbidden', message: 'fake' }, '*');
  window.helloSent++;
};
if (new URLSearchParams(location.search).get('auto') === '1') window.sendHello();
</script>`));
      return;
    case '/frame.html': {
      const hidden = q('hidden') === '1' ? ' width="0" height="0" style="display:none;border:0"' : ' style="width:900px;height:600px"';
      html(page('Outsider', `<h1>Outsider</h1><script>${MESSAGE_RECORDER}
window.frameLoads = 0;</script>
<iframe id="app" title="framed"${hidden} src="${attr(q('src'))}" onload="window.frameLoads++"></iframe>`));
      return;
    }
    case '/nest.html':
      html(page('Sandboxed parent', `<h1>Host with a sandboxed widget</h1>
<iframe id="widget" title="widget" sandbox="allow-scripts" style="width:950px;height:650px"
  src="/frame.html?src=${attr(encodeURIComponent(q('src')))}"></iframe>`));
      return;
    case '/open.html':
      html(page('Opener', `<h1>Opener</h1><script>${MESSAGE_RECORDER}
window.popup = window.open(${JSON.stringify(q('src'))}, 'gw');</script>`));
      return;
    default:
      res.writeHead(404, { 'content-type': 'text/plain' });
      res.end('not found');
  }
}

// ---------------------------------------------------------------------------------------------------------------
// The whole world.

export interface EmbedEnv {
  op: HostileOp;
  app: DashApp;
  /** The allowed host: http://localhost:<port>. */
  host: Site;
  /** Another origin of the same site (http://localhost:<other port>), not in the allowlist. */
  other: Site;
  /** A different site (http://127.0.0.1:<port>), not in the allowlist. */
  foreign: Site;
  gw: RunningGateway;
  /** http://127.0.0.1:<port> */
  gwOrigin: string;
  /** Gateway access-log entries (method, path, status) so far. */
  gatewayRequests(): Array<{ method: string; path: string; status: number }>;
  close(): Promise<void>;
}

export async function startEmbedEnv(options: { mode?: 'auto' | 'cookie' | 'worker' } = {}): Promise<EmbedEnv> {
  const op = await startHostileOp();
  const app = await startDashApp();
  const gwPort = await freePort();
  const gwOrigin = `http://127.0.0.1:${gwPort}`;
  const host = await startSite({ host: 'localhost', gateway: gwOrigin, op });
  const other = await startSite({ host: 'localhost', gateway: gwOrigin, op });
  const foreign = await startSite({ host: '127.0.0.1', gateway: gwOrigin, op });
  const gw = await startGateway({
    listen: `127.0.0.1:${gwPort}`,
    public_url: gwOrigin,
    // No clock leeway: a token that is not renewed in time is refused, so renewal is really tested.
    issuers: [{ issuer: op.issuer, audiences: [op.audience], leeway_seconds: 0 }],
    embed: { allowed_origins: [host.origin], ...(options.mode === undefined ? {} : { mode: options.mode }) },
    sessions: { store: 'memory:' },
    apps: [{
      name: 'sales',
      prefix: '/sales/',
      upstream: app.url,
      allow: { roles: ['analyst', 'admin'] },
      dash: { callbacks: [{ output: 'payroll.children', allow: { roles: ['admin'] } }] },
    }],
  });
  await eventually(async () => (await gw.fetch('/readyz')).status === 200, 10_000);
  if (gw.logs.some((line) => line.includes('not built'))) throw new Error('the embed SDK is not built: run npm run build');
  return {
    op, app, host, other, foreign, gw, gwOrigin,
    gatewayRequests: () => gw.logs.flatMap((line) => {
      const entry = JSON.parse(line) as { msg?: string; method?: string; path?: string; status?: number };
      return entry.msg === 'request' && entry.method !== undefined && entry.path !== undefined && entry.status !== undefined
        ? [{ method: entry.method, path: entry.path, status: entry.status }] : [];
    }),
    close: async () => {
      await gw.close();
      await Promise.all([host.close(), other.close(), foreign.close(), app.close()]);
      await op.close();
    },
  };
}

// ---------------------------------------------------------------------------------------------------------------
// Reading the pages' state from the test.

export interface HostEvent {
  type: string;
  message: string;
  at: number;
}

export interface RecordedMessage {
  origin: string;
  /** JSON of the message data */
  data: string;
  ports: number;
  /** event.source was the #app iframe's window */
  fromApp: boolean;
}

export interface HostState {
  events: HostEvent[];
  tokenCalls: number;
  messages: RecordedMessage[];
  frameLoads: number;
  sdkMissing: boolean;
}

/** The recorded state of a host.html / frame.html / nest.html page (fields a page does not keep are empty). */
export async function hostState(page: Page | Frame): Promise<HostState> {
  const json = await page.evaluate(`JSON.stringify({
    events: window.events || [], tokenCalls: window.tokenCalls || 0, messages: window.messages || [],
    frameLoads: window.frameLoads || 0, sdkMissing: !!window.sdkMissing })`) as string;
  return JSON.parse(json) as HostState;
}

/** Waits until the host page has seen `count` events of this type. */
export async function waitForHostEvent(page: Page, type: string, count = 1, timeout = 15_000): Promise<void> {
  await page.waitForFunction(
    ([t, n]) => ((globalThis as unknown as { events?: HostEvent[] }).events ?? []).filter((e) => e.type === t).length >= n,
    [type, count] as const,
    { timeout },
  );
}

/** The frame currently showing a gateway page under `prefix` (e.g. the app in the host's #app iframe). */
export function gatewayFrame(page: Page, gwOrigin: string, prefix = '/sales/'): Frame | undefined {
  return page.frames().find((frame) => frame.url().startsWith(gwOrigin + prefix));
}

/** Waits until the element's text matches, and returns it. */
export async function textMatching(root: Page | Frame | FrameLocator, selector: string, pattern: RegExp, timeout = 15_000): Promise<string> {
  const element = root.locator(selector).filter({ hasText: pattern });
  await element.waitFor({ timeout });
  return (await element.textContent()) ?? '';
}

/** Chromium's console line for a frame refused by frame-ancestors, e.g. `... directive: "frame-ancestors 'none'"`. */
export const FRAME_ANCESTORS_REFUSAL = /^Framing '(.*)' violates the following Content Security Policy directive: "frame-ancestors ([^"]*)"/;
