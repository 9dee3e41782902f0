// The host ↔ app bridge in real Chromium (third-party cookies blocked), against the demo's Dash app run by Dash's
// real renderer behind a real gateway: a host page on http://localhost:<port> frames http://127.0.0.1:<gateway>/sales/
// (another site). Host → app: setProps and initialProps run the app's callbacks; app → host: published props, emitted
// events, navigation and the content height; and the limits: only props on embed.bridge.host_may_set, server-side
// callback rules still decide, exact origins, schema, 64 KB and rate limits, no bridge unless configured.
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, afterEach, before, describe, it } from 'node:test';
import { NO_SELECTION, PAYROLL_PLACEHOLDER, startDashApp, type SampleApp } from '@embedgate/demo';
import type { Browser, Frame, Page } from 'playwright-core';
import { launchChromium, openTab, type BrowserTab } from './support/chromium.js';
import { eventually, startGateway, type RunningGateway } from './support/gateway.js';
import { startHostileOp, type HostileOp } from './support/hostile-op.js';
import { freePort } from './support/idp.js';

const USERS: Record<string, string[]> = { alice: ['analyst'], bob: ['admin'] };
const chartTitle = (region: string): string => `${region}: monthly sales (k$)`;

interface Site {
  origin: string;
  close(): Promise<void>;
}

interface HostEvent {
  type: string;
  code?: string;
  message?: string;
  id?: string;
  prop?: string;
  value?: unknown;
  name?: string;
  data?: unknown;
  path?: string;
  height?: number;
}

interface CallResult {
  ok: boolean;
  name?: string;
  code?: string;
  message?: string;
}

let op: HostileOp;
let sales: SampleApp;
let plain: SampleApp;
let gw: RunningGateway;
let gwOrigin: string;
let host: Site;
let unlisted: Site;
let attacker: Site;
let browser: Browser;
const tabs: BrowserTab[] = [];

/** The pages of a host site; `gateway` is the gateway's origin. */
function sitePage(url: URL, gateway: string): string | undefined {
  const sdk = `<script src="${gateway}/_embedgate/host.js"></script>`;
  switch (url.pathname) {
    case '/host.html':
    case '/raw.html': {
      // raw.html takes the bridge's port itself (before the SDK sees the hello) and speaks the protocol by hand.
      const raw = url.pathname === '/raw.html' ? `<script>
window.rawMessages = []; window.rawPort = null;
window.addEventListener('message', function (e) {
  if (!e.data || e.data.type !== 'bridge-hello' || e.source !== document.getElementById('app').contentWindow) return;
  e.stopImmediatePropagation();
  window.rawPort = e.ports[0];
  window.rawPort.onmessage = function (m) { window.rawMessages.push(m.data); };
});
</script>` : '';
      const attackerFrame = url.searchParams.get('attacker');
      return `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Host</title></head><body>
<iframe id="app" title="Sales dashboard" style="width:900px;height:500px;border:0"></iframe>
${attackerFrame === null ? '' : `<iframe id="attacker" title="Advert" src="${attackerFrame}"></iframe>`}
${raw}${sdk}<script>
(function () {
  var p = new URLSearchParams(location.search);
  var user = p.get('user') || 'alice';
  window.events = [];
  var options = {
    gateway: ${JSON.stringify(gateway)},
    getToken: function () { return fetch('/token?user=' + user).then(function (r) { return r.text(); }); },
    src: ${JSON.stringify(gateway)} + (p.get('app') || '/sales/'),
  };
  if (p.get('initial')) options.initialProps = JSON.parse(p.get('initial'));
  if (p.get('resize') === '1') options.autoResize = true;
  var attachFrame = function () {
    window.handle = window.embedgate.attach(document.getElementById('app'), options);
    window.embedgate.events.forEach(function (type) {
      window.handle.on(type, function (d) { window.events.push(JSON.parse(JSON.stringify(Object.assign({}, d, { error: undefined })))); });
    });
  };
  attachFrame();
  // Detaches and attaches again, as a host page that attaches after the app loaded.
  window.reattach = function () { window.handle.detach(); window.events = []; attachFrame(); };
  window.call = function (method) {
    var args = Array.prototype.slice.call(arguments, 1);
    return window.handle[method].apply(window.handle, args).then(
      function () { return { ok: true }; },
      function (e) { return { ok: false, name: e.name, code: e.code, message: e.message }; });
  };
})();
</script></body></html>`;
    }
    case '/element.html':
      // The custom element: initialProps set before it is upgraded, auto-resize as an attribute.
      return `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Host</title></head><body>
<embedgate-frame id="dash" src="${gateway}/sales/" gateway="${gateway}" title="Sales dashboard" auto-resize></embedgate-frame>
<script>
window.events = [];
var el = document.getElementById('dash');
el.initialProps = { region: { value: 'South' } };
['ready', 'props', 'resize', 'error'].forEach(function (type) {
  el.addEventListener('embedgate:' + type, function (e) { window.events.push(JSON.parse(JSON.stringify(Object.assign({}, e.detail, { error: undefined })))); });
});
el.getToken = function () { return fetch('/token?user=alice').then(function (r) { return r.text(); }); };
window.call = function (method) {
  var args = Array.prototype.slice.call(arguments, 1);
  return el[method].apply(el, args).then(function () { return { ok: true }; }, function (e) { return { ok: false, name: e.name, code: e.code, message: e.message }; });
};
</script>${sdk}</body></html>`;
    case '/attacker.html':
      return `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Advert</title></head><body><script>
window.portMessages = [];
// A fake bridge hello to the host page, then requests on the port it would get.
window.fakeBridge = function () {
  var channel = new MessageChannel();
  channel.port1.onmessage = function (e) { window.portMessages.push(e.data); };
  window.parent.postMessage({ embedgate: 1, type: 'bridge-hello' }, '*', [channel.port2]);
  channel.port1.postMessage({ type: 'props', id: 'region', prop: 'value', value: 'Forged' });
};
// Bridge requests straight to the app's window, as if from the host.
window.pokeApp = function () {
  var app = window.parent.frames[0];
  app.postMessage({ type: 'set-props', seq: 1, id: 'region', props: { value: 'South' } }, '*');
  app.postMessage({ embedgate: 1, type: 'attach' }, '*');
};
</script></body></html>`;
    default:
      return undefined;
  }
}

async function startSite(hostname: string, gateway: () => string): Promise<Site> {
  const server: Server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const url = new URL(req.url ?? '/', 'http://site.invalid');
    if (url.pathname === '/token') {
      const user = url.searchParams.get('user') ?? '';
      const roles = USERS[user];
      const signed = roles === undefined ? Promise.resolve('') : op.sign(op.claims({ sub: user, roles, exp: Math.floor(Date.now() / 1000) + 300 }));
      void signed.then((token) => res.writeHead(200, { 'content-type': 'text/plain' }).end(token));
      return;
    }
    const page = sitePage(url, gateway());
    if (page === undefined) res.writeHead(404).end();
    else res.writeHead(200, { 'content-type': 'text/html; charset=utf-8', 'cache-control': 'no-store' }).end(page);
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return {
    origin: `http://${hostname}:${(server.address() as AddressInfo).port}`,
    close: () => new Promise((resolve) => {
      server.closeAllConnections();
      server.close(() => resolve());
    }),
  };
}

before(async () => {
  op = await startHostileOp();
  sales = await startDashApp({ port: 0, prefix: '/sales/' });
  plain = await startDashApp({ port: 0, prefix: '/plain/' });
  const port = await freePort();
  gwOrigin = `http://127.0.0.1:${port}`;
  host = await startSite('localhost', () => gwOrigin);
  unlisted = await startSite('localhost', () => gwOrigin);
  attacker = await startSite('127.0.0.1', () => gwOrigin);
  gw = await startGateway({
    listen: `127.0.0.1:${port}`,
    public_url: gwOrigin,
    issuers: [{ issuer: op.issuer, audiences: [op.audience] }],
    embed: { allowed_origins: [host.origin] },
    sessions: { store: 'memory:' },
    apps: [{
      name: 'sales',
      prefix: '/sales/',
      upstream: sales.url,
      allow: { roles: ['analyst', 'admin'] },
      dash: { callbacks: [{ output: 'payroll.children', allow: { roles: ['admin'] } }] },
      embed: { bridge: { host_may_set: ['region.value', 'show-payroll.n_clicks'], publish: ['region.value', 'selection.data', 'payroll.children'], events: true } },
    }, {
      name: 'plain',
      prefix: '/plain/',
      upstream: plain.url,
      allow: { roles: ['analyst', 'admin'] },
    }],
  });
  await eventually(async () => (await gw.fetch('/readyz')).status === 200, 10_000);
  browser = await launchChromium();
});

afterEach(async () => {
  for (const tab of tabs.splice(0)) await tab.close().catch(() => undefined);
});

after(async () => {
  await browser?.close();
  await gw?.close();
  for (const closer of [host, unlisted, attacker, sales, plain]) await closer?.close();
  await op?.close();
});

/** A new tab on a host page; waits until the app frame is ready and its chart is drawn. */
async function openHost(params: Record<string, string> = {}, page = '/host.html', site = host): Promise<{ tab: BrowserTab; app: Frame }> {
  const tab = await openTab(browser);
  tabs.push(tab);
  await tab.page.goto(`${site.origin}${page}?${new URLSearchParams(params).toString()}`);
  await tab.page.waitForFunction(() => (globalThis as unknown as { events: HostEvent[] }).events.some((e) => e.type === 'ready'), undefined, { timeout: 20_000 });
  const app = tab.page.frames().find((frame) => frame.url().startsWith(`${gwOrigin}${params.app ?? '/sales/'}`));
  assert.ok(app !== undefined, 'the app frame');
  // 'ready' comes from the frame script, first in the page: the bridge's script after it (and the app's) may still be
  // loading. Once the document is parsed, every script of the page has run.
  await app.waitForLoadState('domcontentloaded');
  return { tab, app };
}

const events = (page: Page): Promise<HostEvent[]> => page.evaluate(() => (globalThis as unknown as { events: HostEvent[] }).events);
const call = (page: Page, method: string, ...args: unknown[]): Promise<CallResult> =>
  page.evaluate(([m, a]) => (globalThis as unknown as { call: (method: string, ...args: unknown[]) => Promise<CallResult> }).call(m as string, ...(a as unknown[])), [method, args] as const);

/** Waits for a host event that matches, and returns it. */
async function hostEvent(page: Page, match: (event: HostEvent) => boolean, what: string): Promise<HostEvent> {
  let found: HostEvent | undefined;
  await eventually(async () => {
    found = (await events(page)).find(match);
    return found !== undefined;
  }, 15_000, 50).catch(async () => assert.fail(`no ${what}; the host got ${JSON.stringify((await events(page)).slice(-10))}`));
  return found as HostEvent;
}

const gtitle = (app: Frame): Promise<string> => app.locator('#chart .gtitle').first().textContent().then((text) => text ?? '');
async function waitForTitle(app: Frame, region: string): Promise<void> {
  await app.locator('#chart .gtitle', { hasText: chartTitle(region) }).waitFor({ timeout: 15_000 }).catch(async (error: Error) => {
    const tab = tabs.at(-1);
    throw new Error(`${error.message}\nconsole: ${tab?.console.join('\n')}\nerrors: ${tab?.errors.join('\n')}\nbody: ${await app.evaluate('document.body.innerHTML.slice(0, 2000)')}`);
  });
}
const denials = (): Array<{ status?: number; reason?: string }> => gw.logs.flatMap((line) => {
  try {
    const entry = JSON.parse(line) as { audit?: string; status?: number; reason?: string };
    return entry.audit === 'deny' ? [entry] : [];
  } catch {
    return [];
  }
});

describe('host → app', () => {
  it('initialProps and setProps(region.value) run the app\'s chart callback, and the frame shows the result', async () => {
    const { tab, app } = await openHost({ initial: JSON.stringify({ region: { value: 'East' } }) });
    await waitForTitle(app, 'East');
    assert.equal(await app.locator('#region').innerText().then((text) => text.trim()), 'East', 'the dropdown shows the value the host set');
    assert.deepEqual(await call(tab.page, 'setProps', 'region', { value: 'West' }), { ok: true });
    await waitForTitle(app, 'West');
    assert.equal(await gtitle(app), chartTitle('West'));
  });

  it('a prop not on embed.bridge.host_may_set is refused with prop_not_allowed, and nothing of the request is applied', async () => {
    const { tab, app } = await openHost();
    await waitForTitle(app, 'North');
    const figure = { data: [], layout: { title: { text: 'Forged' } } };
    assert.deepEqual(await call(tab.page, 'setProps', 'chart', { figure }),
      { ok: false, name: 'EmbedBridgeError', code: 'prop_not_allowed', message: 'not in embed.bridge.host_may_set: chart.figure' });
    const mixed = await call(tab.page, 'setProps', 'region', { value: 'South', options: [] });
    assert.equal(mixed.code, 'prop_not_allowed', 'one prop off the list refuses the whole request');
    assert.equal(await call(tab.page, 'setProps', 'nowhere', { value: 1 }).then((r) => r.code), 'prop_not_allowed');
    // Values the browser cannot send as JSON are refused by the SDK at once, and the next request still goes out.
    for (const value of ['function () { return 1; }', '10n', 'new Date()', 'NaN']) {
      const refused = await tab.page.evaluate(`window.call('setProps', 'region', { value: ${value} })`) as CallResult;
      assert.deepEqual([refused.name, refused.code], ['EmbedBridgeError', 'invalid_message'], value);
    }
    assert.equal(await gtitle(app), chartTitle('North'), 'the chart is unchanged');
    assert.equal(await app.locator('#region').innerText().then((text) => text.trim()), 'North');
    // The app still works afterwards.
    assert.deepEqual(await call(tab.page, 'setProps', 'region', { value: 'South' }), { ok: true });
    await waitForTitle(app, 'South');
  });

  it('setting a prop never bypasses authorization: the analyst sets show-payroll.n_clicks, the payroll callback is refused (403) and no payroll data reaches the frame or the host', async () => {
    const { tab, app } = await openHost({ user: 'alice' });
    await waitForTitle(app, 'North');
    const before = denials().filter((d) => d.reason === 'callback_forbidden').length;
    assert.deepEqual(await call(tab.page, 'setProps', 'show-payroll', { n_clicks: 7 }), { ok: true }, 'the prop is on the list, so it is applied');
    await eventually(() => denials().filter((d) => d.reason === 'callback_forbidden').length > before, 10_000, 50);
    assert.equal(await app.locator('#payroll').innerText(), PAYROLL_PLACEHOLDER);
    assert.equal(await app.locator('#payroll-table').count(), 0);
    const published = (await events(tab.page)).filter((e) => e.type === 'props' && e.id === 'payroll');
    assert.deepEqual(published.map((e) => e.value), [PAYROLL_PLACEHOLDER], 'the host only ever heard the placeholder');
    assert.doesNotMatch(JSON.stringify(await events(tab.page)), /Salary|98,000|Ada Moreau/);
  });

  it('send(name, data) reaches the app\'s window.embedgate.on(name) handlers (for apps that are not Dash); with no handler it is refused with no_listener', async () => {
    const { tab, app } = await openHost();
    await app.evaluate(`window.received = []; window.stopListening = window.embedgate.on('refresh', (data) => window.received.push(data)); true`);
    assert.deepEqual(await call(tab.page, 'send', 'refresh', { since: '2026-01-01', rows: [1, 2] }), { ok: true });
    assert.deepEqual(await app.evaluate('window.received'), [{ since: '2026-01-01', rows: [1, 2] }]);
    assert.equal((await call(tab.page, 'send', 'other', null)).code, 'no_listener');
    await app.evaluate('window.stopListening()');
    assert.equal((await call(tab.page, 'send', 'refresh', 1)).code, 'no_listener', 'a removed handler hears nothing');
    assert.equal((await call(tab.page, 'send', 'bad name!', 1)).code, 'invalid_message');
  });

  it('navigate() moves within the app\'s prefix (the host hears the new path); other paths and origins are refused', async () => {
    const { tab, app } = await openHost();
    await waitForTitle(app, 'North');
    assert.deepEqual(await call(tab.page, 'navigate', '/sales/?tab=payroll#top'), { ok: true });
    await hostEvent(tab.page, (e) => e.type === 'navigate' && e.path === '/sales/?tab=payroll#top', 'navigate event');
    assert.equal(await app.evaluate('location.pathname + location.search + location.hash'), '/sales/?tab=payroll#top');
    for (const path of ['/plain/', '/sales/../plain/', 'https://evil.example/sales/', '//evil.example/sales/', 'javascript:alert(1)']) {
      assert.equal((await call(tab.page, 'navigate', path)).code, 'path_not_allowed', path);
    }
    assert.equal(await app.evaluate('location.href'), `${gwOrigin}/sales/?tab=payroll#top`, 'still where it was');
  });
});

describe('<embedgate-frame>', () => {
  it('initialProps (set before the element is defined), setProps, auto-resize and props events work on the element as on attach()', async () => {
    const { tab, app } = await openHost({}, '/element.html');
    await waitForTitle(app, 'South');
    await hostEvent(tab.page, (e) => e.type === 'props' && e.id === 'region' && e.value === 'South', 'region.value on the element');
    assert.deepEqual(await call(tab.page, 'setProps', 'region', { value: 'North' }), { ok: true });
    await waitForTitle(app, 'North');
    assert.equal((await call(tab.page, 'setProps', 'chart', { figure: {} })).code, 'prop_not_allowed');
    const contentHeight = await app.evaluate('Math.ceil(document.documentElement.getBoundingClientRect().height)') as number;
    await eventually(async () => await tab.page.evaluate(`document.querySelector('#dash iframe').getBoundingClientRect().height`) === contentHeight, 10_000, 50);
  });
});

describe('app → host', () => {
  it('published props reach the host: the initial region, a region the user picks in the frame, and the month clicked on the chart (selection.data)', async () => {
    const { tab, app } = await openHost();
    await waitForTitle(app, 'North');
    await hostEvent(tab.page, (e) => e.type === 'props' && e.id === 'region' && e.value === 'North', 'the initial region.value');
    // The user picks a region in the dropdown inside the frame.
    await app.locator('#region').click();
    await app.getByRole('option', { name: 'East' }).click();
    await waitForTitle(app, 'East');
    await hostEvent(tab.page, (e) => e.type === 'props' && e.id === 'region' && e.value === 'East', 'region.value from the user');
    // The user clicks the third bar (March): the app's callback sets selection.data, which the host hears.
    const bar = app.locator('#chart .bars .point path').nth(2);
    const box = await bar.boundingBox();
    assert.ok(box !== null);
    await tab.page.mouse.click(box.x + box.width / 2, box.y + box.height / 2);
    const selected = await hostEvent(tab.page, (e) => e.type === 'props' && e.id === 'selection' && e.value !== null, 'selection.data');
    const value = selected.value as { region: string; month: string; sales: number };
    assert.deepEqual([value.region, value.month], ['East', 'Mar']);
    assert.equal(await app.locator('#selection-text').innerText(), `Selected: East, Mar: ${value.sales} k$`, 'the same value the app shows');
    assert.notEqual(await app.locator('#selection-text').innerText(), NO_SELECTION);
    // A host that attaches after the app loaded hears the current values again, not only later changes.
    await tab.page.evaluate('window.reattach()');
    const again = await hostEvent(tab.page, (e) => e.type === 'props' && e.id === 'selection', 'selection.data after attaching again');
    assert.deepEqual(again.value, value);
    await hostEvent(tab.page, (e) => e.type === 'props' && e.id === 'region' && e.value === 'East', 'region.value after attaching again');
  });

  it('window.embedgate.emit(name, data) in the app reaches the host as an event; a bad name or non-JSON data throws in the app', async () => {
    const { tab, app } = await openHost();
    await app.evaluate(() => (globalThis as unknown as { embedgate: { emit(name: string, data: unknown): void } }).embedgate.emit('row-selected', { id: 42, tags: ['a'] }));
    const event = await hostEvent(tab.page, (e) => e.type === 'event', 'the emitted event');
    assert.deepEqual([event.name, event.data], ['row-selected', { id: 42, tags: ['a'] }]);
    const thrown = await app.evaluate(() => {
      const { emit } = (globalThis as unknown as { embedgate: { emit(name: unknown, data?: unknown): void } }).embedgate;
      return [() => emit('bad name!'), () => emit('x', () => 1), () => emit('x', new Date()), () => emit('x', Number.NaN)].map((attempt) => {
        try {
          attempt();
          return 'no error';
        } catch (error) {
          return (error as Error).name;
        }
      });
    });
    assert.deepEqual(thrown, ['TypeError', 'TypeError', 'TypeError', 'TypeError']);
  });

  it('autoResize sizes the iframe to the app\'s content and follows it when it grows and shrinks', async () => {
    const { tab, app } = await openHost({ resize: '1' });
    await waitForTitle(app, 'North');
    const heights = async (): Promise<[number, number]> => [
      await tab.page.evaluate('document.getElementById(\'app\').getBoundingClientRect().height') as number,
      await app.evaluate('Math.ceil(document.documentElement.getBoundingClientRect().height)') as number,
    ];
    await eventually(async () => {
      const [frame, content] = await heights();
      return frame === content;
    }, 10_000, 50);
    const [first] = await heights();
    assert.notEqual(first, 500, 'no longer the 500 px the page set');
    await app.evaluate(`document.body.insertAdjacentHTML('beforeend', '<div id="grown" style="height:700px"></div>')`);
    await eventually(async () => (await heights())[0] === first + 700, 10_000, 50);
    await app.evaluate(`document.getElementById('grown').remove()`);
    await eventually(async () => (await heights())[0] === first, 10_000, 50);
    assert.ok((await events(tab.page)).some((e) => e.type === 'resize' && e.height === first + 700));
  });
});

describe('bridge security', () => {
  it('a foreign window cannot set props or read events: an attacker frame in the host page gets nothing on a fake bridge hello, and its requests to the app\'s window change nothing', async () => {
    const { tab, app } = await openHost({ attacker: `${attacker.origin}/attacker.html` });
    await waitForTitle(app, 'North');
    const advert = tab.page.frames().find((frame) => frame.url().startsWith(`${attacker.origin}/attacker.html`));
    assert.ok(advert !== undefined);
    await advert.evaluate(() => (globalThis as unknown as { fakeBridge(): void; pokeApp(): void }).fakeBridge());
    await advert.evaluate(() => (globalThis as unknown as { pokeApp(): void }).pokeApp());
    // The host's own channel still works, and the round trip outlasts any answer to the attacker.
    assert.deepEqual(await call(tab.page, 'setProps', 'region', { value: 'West' }), { ok: true });
    await waitForTitle(app, 'West');
    await app.evaluate(() => (globalThis as unknown as { embedgate: { emit(name: string): void } }).embedgate.emit('after-attack'));
    await hostEvent(tab.page, (e) => e.type === 'event' && e.name === 'after-attack', 'the app\'s event');
    assert.deepEqual(await advert.evaluate(() => (globalThis as unknown as { portMessages: unknown[] }).portMessages), [], 'nothing came back to the attacker');
    const hostEvents = await events(tab.page);
    assert.ok(!hostEvents.some((e) => e.value === 'Forged'), 'the forged props event was not passed on');
    assert.ok(!hostEvents.some((e) => e.type === 'props' && e.value === 'South'), 'the app never applied the attacker\'s region');
  });

  it('malformed, oversized and too many messages from the host are refused with errors on the port, and the app keeps working', async () => {
    const { tab, app } = await openHost({}, '/raw.html');
    await waitForTitle(app, 'North');
    await tab.page.waitForFunction(() => (globalThis as unknown as { rawPort: unknown }).rawPort !== null);
    // (String expressions: functions defined inside an evaluated callback would not survive the test's transpiler.)
    const results = await tab.page.evaluate(`(async () => {
      const send = (message) => window.rawPort.postMessage(message);
      send({ type: 'nope', seq: 1 });
      send({ type: 'set-props', seq: 2, id: 'region', props: { value: 'x'.repeat(70 * 1024) } });
      send({ type: 'set-props', seq: 3, id: 'region', props: { value: new Date() } });
      send({ type: 'set-props', seq: 4, id: 'region', props: {} });
      send({ type: 'set-props', id: 'region', props: { value: 'South' } });
      const done = () => [1, 2, 3, 4].every((seq) => window.rawMessages.some((m) => m.type === 'result' && m.seq === seq))
        && window.rawMessages.some((m) => m.type === 'bridge-error');
      for (let i = 0; i < 200 && !done(); i += 1) await new Promise((resolve) => setTimeout(resolve, 25));
      return window.rawMessages.filter((m) => m.type === 'result' || m.type === 'bridge-error');
    })()`) as Array<Record<string, unknown>>;
    const codeOf = (seq: number): unknown => results.find((m) => m.seq === seq)?.code;
    assert.deepEqual([codeOf(1), codeOf(2), codeOf(3), codeOf(4)], ['invalid_message', 'message_too_large', 'invalid_message', 'invalid_message']);
    assert.ok(results.some((m) => m.type === 'bridge-error' && m.code === 'invalid_message'), 'a request without a seq gets a bridge-error');
    // A burst far over the rate: the excess is refused, and the app still answers a valid request after it.
    const burst = await tab.page.evaluate(`(async () => {
      for (let seq = 100; seq < 400; seq += 1) window.rawPort.postMessage({ type: 'navigate', seq, path: '/elsewhere/' });
      const answered = () => window.rawMessages.filter((m) => m.type === 'result' && m.seq >= 100);
      for (let i = 0; i < 200 && answered().length < 300; i += 1) await new Promise((resolve) => setTimeout(resolve, 25));
      return answered().map((m) => m.code);
    })()`) as string[];
    assert.equal(burst.length, 300, 'every request was answered');
    assert.ok(burst.filter((code) => code === 'rate_limited').length >= 150, `most of the burst was rate limited: ${burst.filter((c) => c === 'rate_limited').length}`);
    assert.ok(burst.filter((code) => code === 'path_not_allowed').length >= 50, 'the first ones were checked as usual');
    await eventually(async () => {
      await tab.page.evaluate(`window.rawPort.postMessage({ type: 'set-props', seq: 1000, id: 'region', props: { value: 'South' } })`);
      return (await gtitle(app)) === chartTitle('South');
    }, 5000, 250);
  });

  it('oversized, non-JSON and too many messages from the app are dropped with an error event at the host, and the bridge keeps working', async () => {
    const { tab, app } = await openHost();
    await waitForTitle(app, 'North');
    await app.evaluate(() => (globalThis as unknown as { embedgate: { emit(name: string, data: unknown): void } }).embedgate.emit('big', 'x'.repeat(70 * 1024)));
    await hostEvent(tab.page, (e) => e.type === 'error' && e.code === 'value_too_large', 'value_too_large');
    await app.evaluate(() => {
      const { emit } = (globalThis as unknown as { embedgate: { emit(name: string, data: unknown): void } }).embedgate;
      for (let i = 0; i < 400; i += 1) emit('flood', i);
    });
    await hostEvent(tab.page, (e) => e.type === 'error' && e.code === 'rate_limited', 'rate_limited');
    const flood = (await events(tab.page)).filter((e) => e.type === 'event' && e.name === 'flood').length;
    assert.ok(flood >= 50 && flood <= 150, `${flood} of 400 flood events passed`);
    assert.ok(!(await events(tab.page)).some((e) => e.type === 'event' && e.name === 'big'), 'the oversized event never arrived');
    await eventually(async () => (await call(tab.page, 'setProps', 'region', { value: 'East' })).ok, 5000, 250);
    await waitForTitle(app, 'East');
  });

  it('no bridge unless configured: an app without embed.bridge gets no bridge script, and a host page on an unlisted origin gets no bridge hello', async () => {
    const { tab, app } = await openHost({ app: '/plain/' });
    assert.equal(await app.locator('script[src*="/_embedgate/bridge.js"]').count(), 0, 'no bridge script in the page');
    assert.equal(await app.evaluate(() => typeof (globalThis as unknown as { embedgate?: { emit?: unknown } }).embedgate?.emit), 'undefined');
    assert.deepEqual((await events(tab.page)).filter((e) => e.type !== 'ready'), [], 'no bridge event');

    const outsider = await openTab(browser);
    tabs.push(outsider);
    const hellos: string[] = [];
    await outsider.page.exposeFunction('recordHello', (origin: string) => hellos.push(origin));
    await outsider.page.addInitScript(`window.addEventListener('message', (e) => {
      if (e.data && e.data.type === 'bridge-hello') window.recordHello(e.origin);
    })`);
    await outsider.page.goto(`${unlisted.origin}/host.html`);
    await outsider.page.waitForFunction(`document.getElementById('app') !== null`);
    await eventually(() => outsider.consoleAt.some((line) => line.text.includes('frame-ancestors')), 10_000, 50);
    assert.deepEqual(hellos, [], 'no bridge hello reached the unlisted page');
  });
});
