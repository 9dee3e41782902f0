// The embed timing benchmark's world, free of any browser automation: a Dash-like app that reports when its first
// request (/_dash-layout) left, a host site (another site) whose page frames it and reports when it set the
// iframe's src, a token issuer standing in for the host's OIDC client, and the gateway. The host page then asks
// for the next page of the plan and goes there (after signing the app out, so the next visit starts with no session).
// Plain HTTP for Chromium; with `tls`, everything over HTTPS (what Firefox and WebKit need for Secure and Partitioned
// cookies and service workers): the host and app sites with the test certificate, each gateway behind a TLS proxy.
import { once } from 'node:events';
import { createServer, type IncomingMessage, type RequestListener, type Server, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer, type Server as HttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import type { TestTls } from '../packages/embedgate/test/support/engines/tls.js';
import { requestCookie, startTlsProxy, type TlsProxy } from '../packages/embedgate/test/support/engines/tls-proxy.js';
import { startGateway, type RunningGateway } from '../packages/embedgate/test/support/gateway.js';
import { startHostileOp, type HostileOp } from '../packages/embedgate/test/support/hostile-op.js';
import { freePort } from '../packages/embedgate/test/support/idp.js';

/**
 * How the host page frames the app: directly; directly through a page that only loads the app in its place (what
 * a second page load costs the browser); through the gateway, starting with no session: the frame's bootstrap page
 * makes it (`gateway`), attach({ src }) makes it before the iframe navigates (`attach`), or the bootstrap registers
 * the service worker of a gateway in worker mode (`worker`).
 */
export type Via = 'direct' | 'hop' | 'gateway' | 'attach' | 'worker';

export interface Visit {
  id: string;
  via: Via;
}

/** A browser that reports no visit for this long is stuck (a visit takes well under a second): its plan is ended. */
export const STALL_MS = 30_000;
/** The most one browser's plan may take (21 rounds of 5 visits take about 10 s in Chromium). */
export const PLAN_MS = 4 * 60_000;

/** How the app page's request through the gateway carried the session: the cookie, or the service worker's handle. */
export type Carrier = 'cookie' | 'worker' | 'none';

export interface VisitTiming extends Visit {
  /** milliseconds from the host setting the iframe's src to the app's first XHR leaving the frame */
  ms: number;
  /** how the app page was loaded (performance navigation type): 'reload' after the embed bootstrap */
  navigation: string;
  /** Over HTTPS only, for visits through a gateway: what the app page's request carried, as seen at the TLS proxy. */
  carrier?: Carrier;
}

export interface TimingSiteOptions {
  /** Serve the host and the app over HTTPS with this certificate, and put each gateway behind a TLS proxy. */
  tls?: TestTls;
}

export interface TimingSite {
  /** An empty page on the host's origin, to open before start()'s page (with an automated browser). */
  blankPage: string;
  /** The first page of a plan; each page goes on to the next. */
  start(plan: Visit[]): string;
  /**
   * Resolves when every visit of the plan has reported; rejects when no visit reported for `stallMs`, or the plan
   * took more than `totalMs`.
   */
  finished(stallMs: number, totalMs: number): Promise<VisitTiming[]>;
  close(): Promise<void>;
}

const APP_PAGE = `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>App</title></head><body><p id="layout">…</p>
<script>
function report() {
  var entry = performance.getEntriesByType('resource').filter(function (e) { return /\\/_dash-layout$/.test(e.name); })[0];
  if (!entry) return setTimeout(report, 5); // the entry is added when the response has ended
  var query = '?run=' + new URLSearchParams(location.search).get('run') + '&firstRequestAt=' + (performance.timeOrigin + entry.startTime)
    + '&navigation=' + performance.getEntriesByType('navigation')[0].type;
  fetch('/sales/_report' + query, { method: 'POST' });
}
fetch('/sales/_dash-layout').then(function (r) { return r.text(); }).then(function (text) {
  document.getElementById('layout').textContent = text;
  report();
});
</script></body></html>`;

const HOP_PAGE = `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Hop</title></head><body><script>
location.replace(location.pathname + '?run=' + new URLSearchParams(location.search).get('run'));
</script></body></html>`;

function hostPage(gateway: string, workerGateway: string, app: string, via: Via): string {
  const sdkFrom = via === 'worker' ? workerGateway : gateway;
  const appAt = via === 'worker' ? workerGateway : via === 'gateway' || via === 'attach' ? gateway : app;
  return `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Host</title></head><body>
<iframe id="app" title="App" style="width:800px;height:400px;border:0"></iframe>
<script src="${sdkFrom}/_embedgate/host.js"></script>
<script>
var params = new URLSearchParams(location.search);
var run = params.get('run');
var via = params.get('via');
var iframe = document.getElementById('app');
// Like an OIDC client's silent token method with a fresh token in memory: fetched once, at "sign-in".
var token = fetch('/token').then(function (r) { return r.text(); });
var src = ${JSON.stringify(appAt)} + '/sales/?run=' + run + (via === 'hop' ? '&hop=1' : '');
var srcSetAt = performance.timeOrigin + performance.now();
var handle = embedgate.attach(iframe, { gateway: ${JSON.stringify(sdkFrom)}, getToken: function () { return token; }, src: via === 'attach' ? src : undefined });
if (via !== 'attach') iframe.src = src;
fetch('/report?run=' + run + '&srcSetAt=' + srcSetAt, { method: 'POST' });
fetch('/next?run=' + run).then(function (r) { return r.text(); }).then(function (next) {
  var go = function () { if (next) location.href = next; };
  if (via === 'gateway' || via === 'attach' || via === 'worker') {
    handle.on('signed-out', go);
    handle.signOut();
  } else go();
});
</script></body></html>`;
}

async function listen(server: Server | HttpsServer, scheme: 'http' | 'https' = 'http'): Promise<string> {
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return `${scheme}://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

async function close(server: Server | HttpsServer): Promise<void> {
  server.closeAllConnections();
  server.close();
  await once(server, 'close');
}

interface Pending { srcSetAt?: number; firstRequestAt?: number; navigation?: string; done?: () => void }

const HANDLE_HEADER = 'x-embedgate-session';
const SESSION_COOKIE = '__Host-embedgate';

/** What the app page of visit `id` carried on its way through one of the TLS proxies (the page, not the bootstrap). */
function carrierOf(proxies: TlsProxy[], id: string): Carrier {
  const page = proxies.flatMap((proxy) => proxy.exchanges).find((e) => e.method === 'GET' && e.path === '/sales/' && e.status === 200
    && new URLSearchParams(e.url.slice(e.url.indexOf('?') + 1)).get('run') === id);
  if (page === undefined) return 'none';
  if (page.requestHeaders[HANDLE_HEADER] !== undefined) return 'worker';
  return requestCookie(page, SESSION_COOKIE) === undefined ? 'none' : 'cookie';
}

export async function startTimingSite(options: TimingSiteOptions = {}): Promise<TimingSite> {
  const { tls } = options;
  let plan: Visit[] = [];
  const pending = new Map<string, Pending>();
  const timings: VisitTiming[] = [];
  let lastProgressAt = Date.now();
  let finish: (timings: VisitTiming[]) => void = () => undefined;
  const finished = new Promise<VisitTiming[]>((resolve) => (finish = resolve));
  let hostOrigin = '';
  const proxies: TlsProxy[] = [];
  const visitUrl = (visit: Visit): string => `${hostOrigin}/host.html?run=${visit.id}&via=${visit.via}`;

  const entry = (id: string): Pending => {
    let found = pending.get(id);
    if (found === undefined) pending.set(id, found = {});
    return found;
  };
  const record = (url: URL): void => {
    const id = url.searchParams.get('run') ?? '';
    const visit = plan.find((v) => v.id === id);
    if (visit === undefined) return;
    const seen = entry(id);
    const number = (name: string): number | undefined => Number(url.searchParams.get(name)) || undefined;
    seen.srcSetAt ??= number('srcSetAt');
    seen.firstRequestAt ??= number('firstRequestAt');
    seen.navigation ??= url.searchParams.get('navigation') ?? undefined;
    if (seen.srcSetAt === undefined || seen.firstRequestAt === undefined || seen.done === undefined) return;
    const timing: VisitTiming = { ...visit, ms: seen.firstRequestAt - seen.srcSetAt, navigation: seen.navigation ?? '' };
    if (proxies.length > 0 && visit.via !== 'direct' && visit.via !== 'hop') timing.carrier = carrierOf(proxies, id);
    timings.push(timing);
    lastProgressAt = Date.now();
    seen.done();
    if (timings.length === plan.length) finish(timings);
  };
  const send = (res: ServerResponse, type: string, body: string): void => {
    res.writeHead(200, { 'content-type': type, 'cache-control': 'no-store' });
    res.end(body);
  };
  const serve = (handler: RequestListener): Server | HttpsServer =>
    tls === undefined ? createServer(handler) : createHttpsServer({ cert: tls.certPem, key: tls.keyPem }, handler);

  const op: HostileOp = await startHostileOp();
  const appHandler: RequestListener = (req, res) => {
    const url = new URL(req.url ?? '/', 'http://app.invalid');
    if (url.pathname === '/sales/') send(res, 'text/html; charset=utf-8', url.searchParams.has('hop') ? HOP_PAGE : APP_PAGE);
    else if (url.pathname === '/sales/_dash-layout') send(res, 'application/json', '{"props":{"children":"ok"}}');
    else if (url.pathname === '/sales/_report') {
      send(res, 'text/plain', '');
      record(url);
    } else res.writeHead(404).end();
  };
  // The gateways' upstream is plain HTTP; over HTTPS the app framed directly is the same app on an HTTPS listener.
  const app = createServer(appHandler);
  const appUrl = await listen(app);
  const appTls = tls === undefined ? undefined : createHttpsServer({ cert: tls.certPem, key: tls.keyPem }, appHandler);
  const appFramedUrl = appTls === undefined ? appUrl : await listen(appTls, 'https');
  // Over HTTPS, the browsers reach each gateway (plain HTTP on gatewayPort) through its TLS proxy.
  const gatewayAt = async (): Promise<{ port: number; origin: string }> => {
    const port = await freePort();
    if (tls === undefined) return { port, origin: `http://127.0.0.1:${port}` };
    const proxy = await startTlsProxy(tls, port);
    proxies.push(proxy);
    return { port, origin: proxy.origin };
  };
  const gatewayAddress = await gatewayAt();
  const workerAddress = await gatewayAt();
  const host = serve((req: IncomingMessage, res: ServerResponse) => {
    const url = new URL(req.url ?? '/', 'http://host.invalid');
    if (url.pathname === '/host.html') {
      send(res, 'text/html; charset=utf-8', hostPage(gatewayAddress.origin, workerAddress.origin, appFramedUrl, url.searchParams.get('via') as Via));
    } else if (url.pathname === '/start.html') send(res, 'text/html; charset=utf-8', '<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Start</title></head><body></body></html>');
    else if (url.pathname === '/token') {
      void op.sign(op.claims({ sub: 'alice', roles: ['analyst'] })).then((token) => send(res, 'text/plain', token));
    } else if (url.pathname === '/report') {
      send(res, 'text/plain', '');
      record(url);
    } else if (url.pathname === '/next') {
      // Answered once the app has reported too, with the next page of the plan ('' at the end).
      const id = url.searchParams.get('run') ?? '';
      const next = plan[plan.findIndex((v) => v.id === id) + 1];
      entry(id).done = () => send(res, 'text/plain', next === undefined ? '' : visitUrl(next));
      record(url);
    } else res.writeHead(404).end();
  });
  // localhost: another site than the gateway's 127.0.0.1, as in production.
  const scheme = tls === undefined ? 'http' : 'https';
  hostOrigin = `${scheme}://localhost:${new URL(await listen(host, scheme)).port}`;
  const gateway = (address: { port: number; origin: string }, mode: 'auto' | 'worker'): Promise<RunningGateway> => startGateway({
    listen: `127.0.0.1:${address.port}`,
    public_url: address.origin,
    // Over HTTPS: the X-Forwarded-Proto of the TLS proxy on loopback is to be believed.
    ...(tls === undefined ? {} : { trusted_proxies: ['127.0.0.1/32'] }),
    issuers: [{ issuer: op.issuer, audiences: [op.audience] }],
    embed: { allowed_origins: [hostOrigin], mode },
    sessions: { store: 'memory:' },
    apps: [{ name: 'sales', prefix: '/sales/', upstream: appUrl, allow: { roles: ['analyst'] } }],
  }, 'warn');
  const gw = await gateway(gatewayAddress, 'auto');
  const workerGw = await gateway(workerAddress, 'worker');

  return {
    blankPage: `${hostOrigin}/start.html`,
    start(visits) {
      plan = visits;
      lastProgressAt = Date.now();
      return visitUrl(visits[0] as Visit);
    },
    finished: (stallMs, totalMs) => {
      const startedAt = Date.now();
      let timer: NodeJS.Timeout | undefined;
      const watchdog = new Promise<never>((_, reject) => {
        timer = setInterval(() => {
          const now = Date.now();
          const where = `${timings.length} of ${plan.length} visits reported, the last ${timings.at(-1)?.id ?? 'none'}`;
          if (now - lastProgressAt > stallMs) reject(new Error(`no visit reported for ${stallMs / 1000} s (${where})`));
          else if (now - startedAt > totalMs) reject(new Error(`the plan took more than ${totalMs / 1000} s (${where})`));
        }, 250);
      });
      return Promise.race([finished, watchdog]).finally(() => clearInterval(timer));
    },
    close: async () => {
      await gw.close();
      await workerGw.close();
      await Promise.all([...proxies.map((proxy) => proxy.close()), close(app), close(host), ...(appTls === undefined ? [] : [close(appTls)])]);
      await op.close();
    },
  };
}
