// The embed timing benchmark's world, free of any browser automation: a Dash-like app that reports when its first
// request (/_dash-layout) left, a host site (another site) whose page frames it and reports when it set the
// iframe's src, a token issuer standing in for the host's OIDC client, and the gateway. The host page then asks
// for the next page of the plan and goes there (after signing the app out, so the next visit starts with no session).
import { once } from 'node:events';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
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

export interface VisitTiming extends Visit {
  /** milliseconds from the host setting the iframe's src to the app's first XHR leaving the frame */
  ms: number;
  /** how the app page was loaded (performance navigation type): 'reload' after the embed bootstrap */
  navigation: string;
}

export interface TimingSite {
  /** The first page of a plan; each page goes on to the next. */
  start(plan: Visit[]): string;
  /** Resolves when every visit of the plan has reported. */
  finished(): Promise<VisitTiming[]>;
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

async function listen(server: Server): Promise<string> {
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

async function close(server: Server): Promise<void> {
  server.closeAllConnections();
  server.close();
  await once(server, 'close');
}

interface Pending { srcSetAt?: number; firstRequestAt?: number; navigation?: string; done?: () => void }

export async function startTimingSite(): Promise<TimingSite> {
  let plan: Visit[] = [];
  const pending = new Map<string, Pending>();
  const timings: VisitTiming[] = [];
  let finish: (timings: VisitTiming[]) => void = () => undefined;
  const finished = new Promise<VisitTiming[]>((resolve) => (finish = resolve));
  let hostOrigin = '';
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
    timings.push({ ...visit, ms: seen.firstRequestAt - seen.srcSetAt, navigation: seen.navigation ?? '' });
    seen.done();
    if (timings.length === plan.length) finish(timings);
  };
  const send = (res: ServerResponse, type: string, body: string): void => {
    res.writeHead(200, { 'content-type': type, 'cache-control': 'no-store' });
    res.end(body);
  };

  const op: HostileOp = await startHostileOp();
  const app = createServer((req: IncomingMessage, res: ServerResponse) => {
    const url = new URL(req.url ?? '/', 'http://app.invalid');
    if (url.pathname === '/sales/') send(res, 'text/html; charset=utf-8', url.searchParams.has('hop') ? HOP_PAGE : APP_PAGE);
    else if (url.pathname === '/sales/_dash-layout') send(res, 'application/json', '{"props":{"children":"ok"}}');
    else if (url.pathname === '/sales/_report') {
      send(res, 'text/plain', '');
      record(url);
    } else res.writeHead(404).end();
  });
  const appUrl = await listen(app);
  const gatewayOrigin = `http://127.0.0.1:${await freePort()}`;
  const workerOrigin = `http://127.0.0.1:${await freePort()}`;
  const host = createServer((req: IncomingMessage, res: ServerResponse) => {
    const url = new URL(req.url ?? '/', 'http://host.invalid');
    if (url.pathname === '/host.html') send(res, 'text/html; charset=utf-8', hostPage(gatewayOrigin, workerOrigin, appUrl, url.searchParams.get('via') as Via));
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
  hostOrigin = `http://localhost:${new URL(await listen(host)).port}`;
  const gateway = (origin: string, mode: 'auto' | 'worker'): Promise<RunningGateway> => startGateway({
    listen: origin.slice('http://'.length),
    public_url: origin,
    issuers: [{ issuer: op.issuer, audiences: [op.audience] }],
    embed: { allowed_origins: [hostOrigin], mode },
    sessions: { store: 'memory:' },
    apps: [{ name: 'sales', prefix: '/sales/', upstream: appUrl, allow: { roles: ['analyst'] } }],
  }, 'warn');
  const gw = await gateway(gatewayOrigin, 'auto');
  const workerGw = await gateway(workerOrigin, 'worker');

  return {
    start(visits) {
      plan = visits;
      return visitUrl(visits[0] as Visit);
    },
    finished: () => finished,
    close: async () => {
      await gw.close();
      await workerGw.close();
      await Promise.all([close(app), close(host)]);
      await op.close();
    },
  };
}
