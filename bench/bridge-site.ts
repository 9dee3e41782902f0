// The bridge benchmark's world, on loopback: the demo's Dash app (Dash's real renderer) behind a gateway whose config
// gives the app a bridge (the host may set region.value; the app publishes chart.figure, the output of the callback
// region.value drives), a token issuer standing in for the host's OIDC client, and a host site on another site
// (http://localhost:<port>, the gateway is on 127.0.0.1) whose page attaches the app with attach({ src }).
// The host page measures on its own clock; the probe (PROBE_SCRIPT, added to every frame before its scripts run)
// measures inside the app's frame on the frame's clock.
import { once } from 'node:events';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { startDashApp, type SampleApp } from '@embedgate/demo';
import { REGIONS } from '../examples/demo/src/dash-app/sales-data.js';
import { startGateway, type RunningGateway } from '../packages/embedgate/test/support/gateway.js';
import { startHostileOp, type HostileOp } from '../packages/embedgate/test/support/hostile-op.js';
import { freePort } from '../packages/embedgate/test/support/idp.js';

/** The app's path on the gateway. */
export const APP_PATH = '/sales/';
export { REGIONS };
/** The chart title the app's callback makes for a region (examples/demo/src/dash-app/callbacks.ts). */
export const chartTitle = (region: string): string => `${region}: monthly sales (k$)`;

export interface BridgeSite {
  /** The host page, which attaches the app. */
  hostPage: string;
  /** The gateway's origin (the app frame's). */
  gateway: string;
  close(): Promise<void>;
}

/**
 * The host page. window.bench.viaBridge(region, title) calls handle.setProps('region', { value: region }) and resolves
 * with the milliseconds (host clock) until the host hears the chart.figure with that title, which the app's callback
 * makes for that region; window.bench.published(title) resolves once that is the latest chart.figure the host heard
 * (however the change was made). Bridge errors are collected in window.benchErrors.
 */
function hostPage(gateway: string): string {
  return `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Host</title></head><body>
<iframe id="app" title="Sales dashboard" style="width:900px;height:600px;border:0"></iframe>
<script src="${gateway}/_embedgate/host.js"></script>
<script>
(function () {
  var token = fetch('/token').then(function (r) { return r.text(); });
  var handle = embedgate.attach(document.getElementById('app'), {
    gateway: ${JSON.stringify(gateway)}, getToken: function () { return token; }, src: ${JSON.stringify(gateway + APP_PATH)},
  });
  var titleOf = function (d) {
    return d.id === 'chart' && d.prop === 'figure' && d.value && d.value.layout && d.value.layout.title ? d.value.layout.title.text : undefined;
  };
  var heard = [];
  var waiting = [];
  handle.on('props', function (d) {
    var title = titleOf(d);
    if (title === undefined) return;
    heard.push(title);
    waiting = waiting.filter(function (w) { return w.title === title ? (w.resolve(), false) : true; });
  });
  window.benchErrors = [];
  handle.on('error', function (d) { window.benchErrors.push(d.code + ': ' + d.message); });
  window.bench = {
    published: function (title) {
      return new Promise(function (resolve) {
        if (heard[heard.length - 1] === title) resolve();
        else waiting.push({ title: title, resolve: resolve });
      });
    },
    viaBridge: function (region, title) {
      return new Promise(function (resolve, reject) {
        var startedAt;
        var off = handle.on('props', function (d) {
          if (titleOf(d) !== title) return;
          var at = performance.now();
          off();
          resolve(at - startedAt);
        });
        startedAt = performance.now();
        handle.setProps('region', { value: region }).catch(function (error) {
          off();
          reject(error);
        });
      });
    },
  };
})();
</script></body></html>`;
}

/**
 * Runs in every frame before the page's own scripts (an init script); only the app's frame (the one with a Dash
 * renderer) uses it. It subscribes to the renderer's store before the bridge does (the bridge wraps the same
 * dash_stores.push after this script did), so it sees a new chart.figure before the bridge starts publishing it.
 * On the frame's clock:
 * - benchProbe.arm(title) starts a measurement: it notes the click events on a dropdown option from now on, and
 *   resolves with them and the moment the store first holds the chart.figure with that title;
 * - benchProbe.viaSetProps(region, title) sets region.value with the renderer's own dash_clientside.set_props and
 *   resolves with the milliseconds until the store holds that figure;
 * - benchProbe.settled(title) resolves once the store holds that figure, no callback is pending and the chart shows
 *   it, two animation frames later (checked on every store change and DOM mutation).
 */
export const PROBE_SCRIPT = `(() => {
  if (window === window.top) return;
  const stores = window.dash_stores = window.dash_stores || [];
  const titleNow = () => {
    try {
      return window.dash_component_api.getLayout('chart').props.figure.layout.title.text;
    } catch {
      return undefined;
    }
  };
  const loading = () => stores.some((store) => store.getState().isLoading);
  const listeners = new Set();
  const changed = () => listeners.forEach((listener) => listener());
  const push = stores.push.bind(stores);
  stores.push = (...added) => {
    const length = push(...added);
    added.forEach((store) => store.subscribe(changed));
    return length;
  };
  let clicks;
  addEventListener('click', (event) => {
    if (clicks && event.target instanceof Element && event.target.closest('[role=option]') !== null) clicks.push(performance.now());
  }, true);
  const until = (title) => new Promise((resolve) => {
    const check = () => {
      if (titleNow() !== title) return;
      const at = performance.now();
      listeners.delete(check);
      resolve(at);
    };
    listeners.add(check);
  });
  window.benchProbe = {
    arm(title) {
      const seen = clicks = [];
      return until(title).then((storeAt) => {
        clicks = undefined;
        return { storeAt, clicks: seen };
      });
    },
    viaSetProps(region, title) {
      const stored = until(title);
      const startedAt = performance.now();
      window.dash_clientside.set_props('region', { value: region });
      return stored.then((at) => at - startedAt);
    },
    settled(title) {
      return new Promise((resolve) => {
        let done = false;
        const drawn = () => {
          const shown = document.querySelector('#chart .gtitle');
          return shown !== null && shown.textContent === title;
        };
        const check = () => {
          if (done || titleNow() !== title || loading() || !drawn()) return;
          done = true;
          listeners.delete(check);
          observer.disconnect();
          requestAnimationFrame(() => requestAnimationFrame(() => resolve()));
        };
        const observer = new MutationObserver(check);
        observer.observe(document.body, { subtree: true, childList: true, characterData: true, attributes: true });
        listeners.add(check);
        check();
      });
    },
  };
})();`;

export async function startBridgeSite(): Promise<BridgeSite> {
  const op: HostileOp = await startHostileOp();
  const app: SampleApp = await startDashApp({ port: 0, prefix: APP_PATH });
  const port = await freePort();
  const gateway = `http://127.0.0.1:${port}`;
  const host: Server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const url = new URL(req.url ?? '/', 'http://host.invalid');
    if (url.pathname === '/token') {
      void op.sign(op.claims({ sub: 'alice', roles: ['analyst'], exp: Math.floor(Date.now() / 1000) + 3600 }))
        .then((token) => res.writeHead(200, { 'content-type': 'text/plain', 'cache-control': 'no-store' }).end(token));
    } else if (url.pathname === '/host.html') {
      res.writeHead(200, { 'content-type': 'text/html; charset=utf-8', 'cache-control': 'no-store' }).end(hostPage(gateway));
    } else res.writeHead(404).end();
  });
  host.listen(0, '127.0.0.1');
  await once(host, 'listening');
  // localhost: another site than the gateway's 127.0.0.1, as in production.
  const hostOrigin = `http://localhost:${(host.address() as AddressInfo).port}`;
  const gw: RunningGateway = await startGateway({
    listen: `127.0.0.1:${port}`,
    public_url: gateway,
    issuers: [{ issuer: op.issuer, audiences: [op.audience] }],
    embed: { allowed_origins: [hostOrigin] },
    sessions: { store: 'memory:' },
    apps: [{
      name: 'sales', prefix: APP_PATH, upstream: app.url, allow: { roles: ['analyst'] },
      embed: { bridge: { host_may_set: ['region.value'], publish: ['chart.figure'] } },
    }],
  }, 'warn');
  return {
    hostPage: `${hostOrigin}/host.html`,
    gateway,
    close: async () => {
      await gw.close();
      host.closeAllConnections();
      host.close();
      await once(host, 'close');
      await app.close();
      await op.close();
    },
  };
}
