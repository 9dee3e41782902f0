// The embed world for the three engines, all over HTTPS with the test CA: the demo's apps (examples/demo: the
// Dash-protocol sales dashboard, run by Dash's real renderer, and the live WebSocket app) behind a real gateway (plain
// HTTP on 127.0.0.1), a TLS-terminating proxy in front of it (the gateway's public origin, https://127.0.0.1:<proxy
// port>), a host site on https://localhost:<port> (another site) whose page frames both apps with the SDK from the
// gateway and gets tokens from its own /token endpoint (signed by a test OP), and a second host site on another
// https://localhost port that is not in embed.allowed_origins.
import type { ServerResponse } from 'node:http';
import { startDashApp, startStreamApp, type SampleApp } from '@embedgate/demo';
import { USERS } from '../embed-browser-env.js';
import { eventually, startGateway, type RunningGateway } from '../gateway.js';
import { startHostileOp, type HostileOp } from '../hostile-op.js';
import { freePort } from './engine.js';
import { startSite, type RecordedRequest, type Site } from './site.js';
import type { TestTls } from './tls.js';
import { startTlsProxy, type TlsProxy } from './tls-proxy.js';

/**
 * An unpartitioned SameSite=None cookie the proxy adds to the sales page's answer: a browser that blocks third-party
 * cookies never sends it back from the frame.
 */
export const PROBE_COOKIE = 'unpartitioned_probe';

export type EmbedMode = 'auto' | 'cookie' | 'worker';

export interface EmbedWorld {
  mode: EmbedMode;
  op: HostileOp;
  /** The demo's sales dashboard (Dash protocol), framed at /sales/ in <iframe id=app>. */
  sales: SampleApp;
  /** The demo's live WebSocket app, framed at /live/ in <iframe id=live>. */
  live: SampleApp;
  gw: RunningGateway;
  proxy: TlsProxy;
  /** The gateway as the browsers see it: the proxy's origin, https://127.0.0.1:<port>. */
  gwOrigin: string;
  /** The allowed host, https://localhost:<port>. */
  host: Site;
  /** Another origin of the same site, https://localhost:<other port>, not in embed.allowed_origins. */
  other: Site;
  /** The /token requests a host site answered. */
  tokenRequests(site: Site): RecordedRequest[];
  /** Gateway access-log entries (method, path, status). */
  gatewayRequests(): Array<{ method: string; path: string; status: number }>;
  /** Gateway audit lines for denials, as parsed JSON. */
  denials(): Array<{ status?: number; reason?: string; method?: string; path?: string }>;
  close(): Promise<void>;
}

/** How the host page attaches the iframe: attach({ src }) (the session before the navigation) or iframe.src. */
export type AttachKind = 'src' | 'classic';

/** The host page's URL on a site: `user` gets tokens of `ttl` seconds. */
export function hostPageUrl(site: Site, options: { attach: AttachKind; user?: string; ttl?: number }): string {
  const query = new URLSearchParams({ attach: options.attach, user: options.user ?? 'alice', ttl: String(options.ttl ?? 300) });
  return `${site.origin}/host.html?${query}`;
}

/**
 * GET /host.html?attach=src|classic&user=&ttl= — frames the sales app in <iframe id=app> and the live app in
 * <iframe id=live>, with the SDK from the gateway's /_embedgate/host.js; window.handles holds attach()'s handles by
 * frame id, window.events the SDK's events ({ frame, type, message, at }), window.tokenCalls the getToken calls,
 * window.frameLoads the iframes' load events, window.errors the page's uncaught errors.
 */
function hostPage(gwOrigin: string): string {
  const gateway = JSON.stringify(gwOrigin);
  return `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Host portal</title></head><body>
<h1>Host portal</h1>
<iframe id="app" title="Sales dashboard" style="width:960px;height:760px;border:0"></iframe>
<iframe id="live" title="Live metrics" style="width:760px;height:480px;border:0"></iframe>
<script>
window.events = []; window.tokenCalls = 0; window.frameLoads = 0; window.errors = []; window.handles = {};
window.addEventListener('error', function (e) { window.errors.push(String(e.message)); });
window.addEventListener('unhandledrejection', function (e) { window.errors.push('unhandled: ' + String(e.reason)); });
['app', 'live'].forEach(function (id) {
  document.getElementById(id).addEventListener('load', function () { window.frameLoads++; });
});
</script>
<script src=${JSON.stringify(`${gwOrigin}/_embedgate/host.js`)}></script>
<script>
(function () {
  var params = new URLSearchParams(location.search);
  var user = params.get('user') || 'alice';
  var ttl = params.get('ttl') || '300';
  var sdk = window.embedgate;
  if (!sdk) { window.sdkMissing = true; return; }
  var before = params.get('attach') === 'src';
  var getToken = function () {
    window.tokenCalls++;
    return fetch('/token?user=' + encodeURIComponent(user) + '&ttl=' + encodeURIComponent(ttl)).then(function (r) { return r.text(); });
  };
  [['app', '/sales/'], ['live', '/live/']].forEach(function (frame) {
    var iframe = document.getElementById(frame[0]);
    var src = ${gateway} + frame[1];
    var handle = sdk.attach(iframe, { gateway: ${gateway}, getToken: getToken, src: before ? src : undefined });
    sdk.events.forEach(function (type) {
      handle.on(type, function (d) { window.events.push({ frame: frame[0], type: d.type, message: d.message || '', at: Date.now() }); });
    });
    window.handles[frame[0]] = handle;
    if (!before) iframe.src = src;
  });
})();
</script>
</body></html>`;
}

function hostSite(tls: TestTls, gwOrigin: () => string, op: HostileOp): Promise<Site> {
  return startSite(tls, 'localhost', (request, response: ServerResponse) => {
    if (request.path === '/host.html') {
      response.setHeader('Content-Type', 'text/html; charset=utf-8');
      response.end(hostPage(gwOrigin()));
      return;
    }
    if (request.path === '/token') {
      const user = request.query.get('user') ?? '';
      const roles = USERS[user];
      const ttl = Number(request.query.get('ttl') ?? '300');
      response.setHeader('Content-Type', 'text/plain');
      if (roles === undefined) return void response.end('');
      op.sign(op.claims({ sub: user, roles, exp: Math.floor(Date.now() / 1000) + ttl })).then(
        (token) => response.end(token),
        () => response.writeHead(500).end(),
      );
      return;
    }
    response.statusCode = 404;
    response.end('not found');
  });
}

/** Starts everything for one embed.mode; close() stops it all. */
export async function startEmbedWorld(tls: TestTls, mode: EmbedMode): Promise<EmbedWorld> {
  const closers: Array<() => Promise<void>> = [];
  const closeAll = async (): Promise<void> => {
    for (const close of closers.splice(0).reverse()) await close().catch(() => undefined);
  };
  try {
    const op = await startHostileOp();
    closers.push(() => op.close());
    const sales = await startDashApp({ port: 0 });
    closers.push(() => sales.close());
    const live = await startStreamApp({ port: 0 });
    closers.push(() => live.close());
    const gwPort = await freePort();
    const proxy = await startTlsProxy(tls, gwPort, {
      addCookies: { '/sales/': `${PROBE_COOKIE}=1; Path=/; Max-Age=600; Secure; HttpOnly; SameSite=None` },
    });
    closers.push(() => proxy.close());
    const host = await hostSite(tls, () => proxy.origin, op);
    closers.push(() => host.close());
    const other = await hostSite(tls, () => proxy.origin, op);
    closers.push(() => other.close());
    const gw = await startGateway({
      listen: `127.0.0.1:${gwPort}`,
      public_url: proxy.origin,
      trusted_proxies: ['127.0.0.1/32'],
      // No clock leeway: a token that is not renewed in time is refused, so renewal is really tested.
      issuers: [{ issuer: op.issuer, audiences: [op.audience], leeway_seconds: 0 }],
      embed: { allowed_origins: [host.origin], mode },
      sessions: { store: 'memory:' },
      // The demo's own app policies (examples/demo/embedgate.yaml).
      apps: [{
        name: 'sales',
        prefix: '/sales/',
        upstream: sales.url,
        allow: { roles: ['analyst', 'admin'] },
        dash: { callbacks: [{ output: 'payroll.children', allow: { roles: ['admin'] } }] },
      }, {
        name: 'live',
        prefix: '/live/',
        upstream: live.url,
        allow: { roles: ['analyst', 'admin'] },
      }],
    });
    closers.push(() => gw.close());
    await eventually(async () => (await gw.fetch('/readyz')).status === 200, 10_000);
    if (gw.logs.some((line) => line.includes('not built'))) throw new Error('the embed SDK is not built: run npm run build');
    const parsed = (): Array<Record<string, unknown>> => gw.logs.flatMap((line) => {
      try {
        return [JSON.parse(line) as Record<string, unknown>];
      } catch {
        return [];
      }
    });
    return {
      mode, op, sales, live, gw, proxy, gwOrigin: proxy.origin, host, other,
      tokenRequests: (site) => site.requests.filter((r) => r.path === '/token'),
      gatewayRequests: () => parsed().flatMap((entry) =>
        entry.msg === 'request' && typeof entry.method === 'string' && typeof entry.path === 'string' && typeof entry.status === 'number'
          ? [{ method: entry.method, path: entry.path, status: entry.status }] : []),
      denials: () => parsed().filter((entry) => entry.audit === 'deny') as Array<{ status?: number; reason?: string; method?: string; path?: string }>,
      close: closeAll,
    };
  } catch (error) {
    await closeAll();
    throw error;
  }
}
