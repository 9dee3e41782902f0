// One end-to-end embed scenario in three browser engines with third-party cookies blocked, all over HTTPS with the
// test CA, on the demo's apps: a host page on https://localhost:<port> frames the Dash-protocol sales dashboard (Dash's
// real renderer) and the live WebSocket app behind the gateway, which the browsers reach through a TLS-terminating
// proxy at https://127.0.0.1:<port> (another site). In each engine and embed.mode:
//   1. the host attaches the iframes (attach({ src }), and the classic way, setting iframe.src); the dashboard renders
//      for alice, its chart callback runs, the analyst's payroll callback is refused (403) and no payroll data reaches
//      the frame; the live app's socket streams for alice;
//   2. with ~8 s tokens the region changes every second (the renderer's set_props, as if the user picked one) for more
//      than two token lifetimes without a reload, every callback answered, the live socket still streaming;
//   3. sign-out in the host ends the frames' access (the next callback 401) and closes the live socket (1008);
//   4. a host page on an unlisted origin gets nothing;
//   5. worker mode: no gateway cookie, the frames are controlled by the service worker; cookie mode: the frames'
//      requests carry the partitioned cookie.
// Chromium and Firefox (only partitioned third-party cookies accepted) run cookie mode and worker mode (forced);
// WebKit (MiniBrowser, third-party cookies blocked) runs auto mode, which must end up in worker mode there.
// What went over the wire is read at the TLS proxy; every wait is an event or a bounded poll.
import assert from 'node:assert/strict';
import { after, before, describe, it, type TestContext } from 'node:test';
import { PAYROLL_PLACEHOLDER } from '@embedgate/demo';
import { eventually } from './support/gateway.js';
import { hostPageUrl, PROBE_COOKIE, startEmbedWorld, type AttachKind, type EmbedMode, type EmbedWorld } from './support/engines/embed-world.js';
import {
  FIREFOX_COOKIE_MODES, launchEngine, makeTestTls, type Engine, type EngineName, type EngineTab, type LaunchOptions, type TestTls,
} from './support/engines/index.js';
import { requestCookie, setCookiesFor, type ProxiedExchange } from './support/engines/tls-proxy.js';

const SESSION_COOKIE = '__Host-embedgate';
const HANDLE_HEADER = 'x-embedgate-session';
const TICKET_PROTOCOL = 'embedgate.ticket.';
/** The token lifetime of the renewal step; the app calls back for more than two of them. */
const SHORT_TTL_SECONDS = 8;
const RENEWAL_CALLBACKS = 2 * SHORT_TTL_SECONDS + 2;
const FRAMES = ['app', 'live'] as const;
const REGIONS = ['North', 'South', 'East', 'West'];
const chartTitle = (region: string): string => `${region}: monthly sales (k$)`;

interface ModeRun {
  mode: EmbedMode;
  /** How the session must travel in this engine and mode. */
  carrier: 'cookie' | 'worker';
}

interface EngineRun {
  engine: EngineName;
  title: string;
  launch?: Omit<LaunchOptions, 'tls'>;
  modes: ModeRun[];
}

const ALL_RUNS: EngineRun[] = [
  {
    engine: 'chromium',
    title: 'Chromium, third-party cookies blocked (storage partitioned, as in Chrome)',
    modes: [{ mode: 'cookie', carrier: 'cookie' }, { mode: 'worker', carrier: 'worker' }],
  },
  {
    engine: 'firefox',
    title: 'Firefox, cookieBehavior 5 + optInPartitioning (only partitioned third-party cookies)',
    launch: { firefox: FIREFOX_COOKIE_MODES.partitionedOnly },
    modes: [{ mode: 'cookie', carrier: 'cookie' }, { mode: 'worker', carrier: 'worker' }],
  },
  {
    engine: 'webkit',
    title: 'WebKit (MiniBrowser), third-party cookies blocked',
    modes: [{ mode: 'auto', carrier: 'worker' }],
  },
];

/** EMBED_ENGINES=chromium,webkit runs only those engines (all three by default). */
const ONLY = (process.env.EMBED_ENGINES ?? '').split(',').map((name) => name.trim()).filter((name) => name !== '');
const RUNS = ALL_RUNS.filter((run) => ONLY.length === 0 || ONLY.includes(run.engine));

interface HostEvent { frame: string; type: string; message: string; at: number }
interface HostState { events: HostEvent[]; tokenCalls: number; frameLoads: number; errors: string[]; sdkMissing: boolean }

const hostState = (tab: EngineTab): Promise<HostState> => tab.evalTop<HostState>(`({
  events: window.events || [], tokenCalls: window.tokenCalls || 0, frameLoads: window.frameLoads || 0,
  errors: window.errors || [], sdkMissing: !!window.sdkMissing })`);

/** The event types each frame reported, in order of first appearance. */
const eventTypes = (state: HostState): Record<string, string[]> => Object.fromEntries(
  FRAMES.map((frame) => [frame, [...new Set(state.events.filter((e) => e.frame === frame).map((e) => e.type))]]));

const text = (selector: string): string => `((document.querySelector(${JSON.stringify(selector)}) || {}).textContent || '')`;

/** Waits until the element's text in the frame matches, and returns it. */
async function frameText(tab: EngineTab, frame: string, selector: string, pattern: RegExp, timeoutMs = 20_000): Promise<string> {
  await tab.waitUntil(`${pattern.toString()}.test(${text(selector)})`, timeoutMs, frame);
  return tab.evalInFrame<string>(frame, text(selector));
}

/** Picks a region as a user would, through the renderer's set_props: the chart callback runs. */
const pickRegion = (tab: EngineTab, region: string): Promise<unknown> =>
  tab.evalInFrame('app', `(window.dash_clientside.set_props('region', { value: ${JSON.stringify(region)} }), true)`);

/**
 * A load of an app's page in a frame: the browser's navigation, or the service worker's fetch for it (which goes
 * out as Sec-Fetch-Dest: empty, mode same-origin).
 */
const isPageLoad = (e: ProxiedExchange, prefix: string): boolean => e.method === 'GET' && e.path === prefix;
const isAppPage = (e: ProxiedExchange): boolean => isPageLoad(e, '/sales/') || isPageLoad(e, '/live/');
const isCallback = (e: ProxiedExchange): boolean => e.method === 'POST' && e.path === '/sales/_dash-update-component';
const isSessionPost = (e: ProxiedExchange): boolean => e.method === 'POST' && e.path === '/_embedgate/session';
const isLiveSocket = (e: ProxiedExchange): boolean => e.upgrade && e.path === '/live/ws';
const describeExchange = (e: ProxiedExchange): string => {
  const handle = e.requestHeaders[HANDLE_HEADER] === undefined ? '' : ' (handle)';
  const failure = e.proxyFailure;
  const origin = failure === undefined ? '' : ` (the TLS proxy's: ${failure.code}${failure.browserGone ? ', the browser had gone' : ''})`;
  const requestId = e.status !== undefined && e.status >= 500 ? e.responseHeaders?.['x-request-id'] : undefined;
  return `${e.method} ${e.url}${handle} → ${e.status ?? '…'}${origin}${requestId === undefined ? '' : ` [request ${String(requestId)}]`}`;
};
/** An exchange the gateway answered, or could not: not one the browser gave up on before it was sent on. */
const reachedGateway = (e: ProxiedExchange): boolean => e.status !== undefined && e.proxyFailure?.browserGone !== true;
/** The gateway's warnings and errors, for failure messages. */
const gatewayWarnings = (world: EmbedWorld): string => world.gw.logs.filter((line) => /"level":(4|5|6)\d/.test(line)).join('\n') || 'none';
/** The exchanges with the time each was answered (epoch ms), for failure messages. */
const timeline = (exchanges: ProxiedExchange[]): string => exchanges.map((e) => `${describeExchange(e)} @${e.answeredAt ?? '…'}`).join(', ');

/**
 * The session's course since an exchange mark, for a failed socket step: each session POST (with the cookie it set),
 * WebSocket ticket request and upgrade (with the cookie it sent), by when the proxy received them; then the gateway's
 * denials and the sockets it closed. Cookie values are cut to 8 characters.
 */
function sessionCourse(world: EmbedWorld, exchangeMark: number): string {
  const cut = (value: string | undefined): string => (value === undefined ? '-' : value.slice(0, 8));
  const lines = world.proxy.exchanges.slice(exchangeMark).filter((e) => isSessionPost(e) || e.upgrade || e.path === '/_embedgate/ws-ticket').map((e) => {
    const set = setCookiesFor(e, SESSION_COOKIE)[0]?.split(';')[0]?.split('=')[1];
    return `${e.receivedAt}→${e.answeredAt ?? '…'} ${describeExchange(e)} sent:${cut(requestCookie(e, SESSION_COOKIE))} set:${cut(set)}`;
  });
  const closings = world.gw.logs.filter((line) => line.includes('closing a WebSocket'));
  return [...lines, `denials: ${JSON.stringify(world.denials())}`, `sockets closed: ${closings.join(' ') || 'none'}`].join('\n');
}

/** What each frame shows and which service worker it has: printed when the frames do not get ready. */
async function describeFrames(tab: EngineTab): Promise<string> {
  const lines = [`host events: ${JSON.stringify((await hostState(tab).catch(() => undefined))?.events ?? 'unreachable')}`];
  for (const frame of FRAMES) {
    const seen = await tab.evalInFrame<unknown>(frame, `(async () => {
      const workers = navigator.serviceWorker;
      const registrations = workers ? await Promise.race([workers.getRegistrations(), new Promise((r) => setTimeout(r, 2000, 'getRegistrations hung'))]) : 'no serviceWorker';
      const [navigation] = performance.getEntriesByType('navigation');
      return { href: location.href, readyState: document.readyState,
        navigation: navigation ? navigation.type + ' workerStart:' + Math.round(navigation.workerStart) : null, text: document.body ? document.body.innerText.slice(0, 200) : '',
        controller: workers && workers.controller ? workers.controller.scriptURL + ' ' + workers.controller.state : null,
        registrations: Array.isArray(registrations) ? registrations.map((r) => r.scope + ' active:' + (r.active && r.active.state)
          + ' installing:' + (r.installing && r.installing.state) + ' waiting:' + (r.waiting && r.waiting.state)) : registrations };
    })()`).catch((error: Error) => `unreachable: ${error.message.split('\n')[0]}`);
    lines.push(`${frame}: ${JSON.stringify(seen)}`);
  }
  return lines.join('\n');
}

/** A fresh session value set by the gateway (not the clearing one, which has an empty value and Max-Age=0). */
const setsValue = (line: string): boolean => !/^__Host-embedgate=;/.test(line) && !/Max-Age=0(;|$)/i.test(line);

for (const run of RUNS) {
  describe(`embed end to end on the demo's apps: ${run.title}`, { timeout: 300_000 }, () => {
    let tls: TestTls;
    let engine: Engine;
    before(async () => {
      tls = makeTestTls();
      engine = await launchEngine(run.engine, { tls, ...run.launch });
    });
    after(async () => {
      await engine?.close();
      tls?.cleanup();
    });

    it('runs the expected engine', (t) => {
      t.diagnostic(`${engine.version}`);
      assert.equal(engine.name, run.engine);
    });

    for (const { mode, carrier } of run.modes) {
      describe(`embed.mode ${mode} (the session travels by ${carrier === 'cookie' ? 'the partitioned cookie' : 'the service worker\'s handle'})`, () => {
        let world: EmbedWorld;
        /** The tab of steps 1 (attach({ src })), 2 and 3. */
        let main: EngineTab | undefined;
        const opened = new Set<EngineTab>();
        before(async () => {
          world = await startEmbedWorld(tls, mode);
        });
        after(async () => {
          for (const tab of opened) await tab.close().catch(() => undefined);
          await world?.close();
        });

        const newTab = async (): Promise<EngineTab> => {
          const tab = await engine.newTab();
          opened.add(tab);
          return tab;
        };
        const closeTab = async (tab: EngineTab): Promise<void> => {
          opened.delete(tab);
          await tab.close();
        };
        /** The exchanges from this mark on that match, once `count` of them were answered (bounded poll). */
        const awaitExchanges = async (mark: number, match: (e: ProxiedExchange) => boolean, count: number, timeoutMs: number): Promise<ProxiedExchange[]> => {
          const matching = (): ProxiedExchange[] => world.proxy.exchanges.slice(mark).filter((e) => e.status !== undefined && match(e));
          await eventually(() => matching().length >= count, timeoutMs, 50).catch(() => {
            throw new Error(`${matching().length} of ${count} expected exchanges: ${world.proxy.exchanges.slice(mark).slice(-20).map(describeExchange).join(', ')}`);
          });
          return matching();
        };

        /**
         * Step 1 in a new tab: the host page attaches both iframes, the dashboard renders and answers as alice may,
         * the live app streams; the carrier is checked on the wire. Returns the tab, with the apps loaded.
         */
        async function attachAndRender(t: TestContext, attach: AttachKind, ttl: number): Promise<EngineTab> {
          const exchangeMark = world.proxy.exchanges.length;
          const denialMark = world.denials().length;
          const tokenMark = world.tokenRequests(world.host).length;
          const tab = await newTab();
          try {
            await tab.goto(hostPageUrl(world.host, { attach, ttl }));
            await tab.waitUntil(`['app', 'live'].every((f) => (window.events || []).some((e) => e.frame === f && e.type === 'ready'))`, 30_000)
              .catch(async (error: Error) => {
                throw new Error(`${error.message}\n${await describeFrames(tab)}\nrequests: ${timeline(world.proxy.exchanges.slice(exchangeMark))}`);
              });

            // The dashboard, drawn by Dash's renderer from the layout the gateway let through, for alice.
            assert.equal(await frameText(tab, 'app', '#chart .gtitle', /\S/, 30_000), chartTitle('North'), 'the chart callback ran');
            assert.equal(await tab.evalInFrame('app', text('#title')), 'Sales dashboard');
            assert.equal(await tab.evalInFrame('app', text('#signed-in')), 'Signed in as alice (groups: analyst)', 'the identity the gateway forwarded');
            // The payroll callback the renderer fires at load is refused, and so is the one the button fires.
            const [atLoad] = await awaitExchanges(exchangeMark, (e) => isCallback(e) && e.status === 403, 1, 15_000);
            assert.ok(atLoad !== undefined);
            await tab.evalInFrame('app', `(document.getElementById('show-payroll').click(), true)`);
            await awaitExchanges(exchangeMark, (e) => isCallback(e) && e.status === 403, 2, 15_000);
            const refusals = world.denials().slice(denialMark).filter((d) => d.status === 403);
            assert.deepEqual(refusals.map((d) => [d.status, d.reason, d.path]), [
              [403, 'callback_forbidden', '/sales/_dash-update-component'], [403, 'callback_forbidden', '/sales/_dash-update-component'],
            ], 'the gateway refused the payroll callback twice, and nothing else for lack of a role');
            // No payroll data in the frame: the placeholder stays, and the refusal itself carries none.
            assert.equal(await tab.evalInFrame('app', text('#payroll')), PAYROLL_PLACEHOLDER);
            assert.equal(await tab.evalInFrame('app', `document.querySelectorAll('#payroll-table').length`), 0);
            assert.doesNotMatch(await tab.evalInFrame<string>('app', 'document.body.innerText'), /Salary|\$\d{2},\d{3}/);
            const payroll = await tab.evalInFrame<{ status: number; body: string }>('app', `fetch('/sales/_dash-update-component', {
              method: 'POST', headers: { 'content-type': 'application/json' },
              body: JSON.stringify({ output: 'payroll.children', outputs: { id: 'payroll', property: 'children' },
                inputs: [{ id: 'show-payroll', property: 'n_clicks', value: 9 }], changedPropIds: ['show-payroll.n_clicks'] }),
            }).then(async (r) => ({ status: r.status, body: await r.text() }))`);
            assert.equal(payroll.status, 403);
            assert.equal((JSON.parse(payroll.body) as { error?: string }).error, 'callback_forbidden', payroll.body);
            assert.doesNotMatch(payroll.body, /"response"|Salary|payroll-table/, 'no callback output in the refusal');

            // The live app: its page and its socket were served to alice, and the socket streams.
            const socketUser = await frameText(tab, 'live', '#socket-user', /^(?!unknown$)/).catch(async (error: Error) => {
              const state = await tab.evalInFrame<string>('live', text('#state')).catch(() => 'unreachable');
              throw new Error(`${error.message}\nthe live socket: ${state}\n${sessionCourse(world, exchangeMark)}`);
            });
            assert.equal(socketUser, 'alice', 'the socket handshake carried alice');
            assert.equal(await tab.evalInFrame('live', text('#user')), 'alice');
            await tab.waitUntil(`Number(${text('#count')}) >= 2`, 15_000, 'live');
            assert.equal(await tab.evalInFrame('live', text('#state')), 'open');

            const state = await hostState(tab);
            assert.equal(state.sdkMissing, false, 'host.js loaded from the gateway');
            assert.deepEqual(eventTypes(state), { app: ['ready'], live: ['ready'] }, 'each frame got ready, and no error');
            assert.deepEqual(state.errors, [], 'no uncaught error in the host page');
            assert.ok(state.tokenCalls >= 1);

            // The carrier, on the wire and in the frames.
            const exchanges = world.proxy.exchanges.slice(exchangeMark);
            assert.ok(exchanges.every((e) => requestCookie(e, PROBE_COOKIE) === undefined),
              'the unpartitioned SameSite=None probe cookie never came back: third-party cookies are blocked in the frames');
            const pages = exchanges.filter(isAppPage);
            const bootstraps = pages.filter((e) => e.status === 401);
            const appPages = pages.filter((e) => e.status === 200);
            const sessionPosts = exchanges.filter(isSessionPost);
            const hostPosts = sessionPosts.filter((e) => e.requestHeaders.origin === world.host.origin);
            const callbacks = exchanges.filter(isCallback);
            const upgrades = exchanges.filter(isLiveSocket);
            assert.deepEqual(upgrades.map((e) => e.status), [101], 'one WebSocket handshake, accepted');
            const upgrade = upgrades[0] as ProxiedExchange;
            assert.deepEqual(appPages.map((e) => e.path).sort(), ['/live/', '/sales/'], `one page per app: ${pages.map(describeExchange).join(', ')}`);
            assert.equal(hostPosts.length, attach === 'src' ? 2 : 0, 'attach({ src }) POSTs the token from the host page by CORS, once per frame; the classic way does not');
            assert.ok(hostPosts.every((e) => e.status === 200));
            const controlled = await Promise.all(FRAMES.map((frame) =>
              tab.evalInFrame<boolean>(frame, 'navigator.serviceWorker !== undefined && navigator.serviceWorker.controller !== null')));
            t.diagnostic(`${attach}: ${exchanges.length} requests, ${bootstraps.length} bootstrap page(s), ${state.tokenCalls} getToken call(s), `
              + `session POSTs ${sessionPosts.map((e) => `${e.requestHeaders.origin === world.host.origin ? 'host' : 'frame'}:${e.status}`).join(' ')}, `
              + `${world.tokenRequests(world.host).length - tokenMark} /token requests, ${callbacks.length} callbacks`);
            if (carrier === 'cookie') {
              // The page navigations (no bearer on a navigation) and every callback carry the partitioned cookie.
              assert.ok(appPages.every((e) => requestCookie(e, SESSION_COOKIE) !== undefined && e.requestHeaders.authorization === undefined),
                'the app page navigations carry the session cookie');
              assert.ok(callbacks.length >= 3 && callbacks.every((e) => requestCookie(e, SESSION_COOKIE) !== undefined), 'every callback carries the cookie');
              assert.ok(requestCookie(upgrade, SESSION_COOKIE) !== undefined, 'the WebSocket handshake carries the cookie');
              assert.ok(exchanges.every((e) => e.requestHeaders[HANDLE_HEADER] === undefined), 'no worker handle anywhere');
              assert.deepEqual(controlled, [false, false], 'no service worker controls the frames');
              // attach({ src }): the cookie from the host page's CORS POST is in the host's partition, where the frames
              // find it, so their first load is the app; the classic way goes through a bootstrap page per frame.
              assert.equal(bootstraps.length, attach === 'src' ? 0 : 2, `bootstrap pages: ${bootstraps.map(describeExchange).join(', ')}`);
              const made = [...hostPosts, ...sessionPosts.filter((e) => e.requestHeaders.origin === world.gwOrigin)][0];
              const [cookie] = setCookiesFor(made as ProxiedExchange, SESSION_COOKIE);
              assert.match(cookie ?? '', /; Secure; HttpOnly; SameSite=None; Partitioned$/, 'a partitioned cookie');
            } else {
              // The app pages came through the service workers, with the handle and without any cookie.
              assert.deepEqual(controlled, [true, true], 'both frames are controlled by their app\'s service worker');
              assert.ok(appPages.every((e) => /\S/.test(String(e.requestHeaders[HANDLE_HEADER] ?? ''))), 'the app page loads carry the worker\'s handle');
              assert.ok(callbacks.length >= 3 && callbacks.every((e) => e.requestHeaders[HANDLE_HEADER] !== undefined), 'every callback carries the handle');
              assert.ok(exchanges.every((e) => requestCookie(e, SESSION_COOKIE) === undefined), 'no request carried a gateway cookie');
              assert.ok(sessionPosts.filter((e) => e.requestHeaders.origin === world.gwOrigin && e.status === 200).length >= 2, 'each frame made its handle');
              // A handshake carries neither cookie nor header: the socket offered a single-use ticket.
              assert.match(String(upgrade.requestHeaders['sec-websocket-protocol'] ?? ''), new RegExp(`(^|, )embedgate, ${TICKET_PROTOCOL}\\S+$`),
                'the WebSocket offered a ticket');
              assert.equal(upgrade.responseHeaders?.['sec-websocket-protocol'], 'embedgate');
              // Even with attach({ src }) each frame needs its bootstrap page: only it can register the worker.
              assert.deepEqual(bootstraps.map((e) => e.path).sort(), ['/live/', '/sales/'], `each worker was registered by one bootstrap page: ${timeline(exchanges.filter((e) => isAppPage(e) || e.path.startsWith('/_embedgate/')))}`);
              // One frame at a time registers its worker and reloads (a Web Lock; Chromium could otherwise lose the
              // second scope and send that frame's reload past its worker): the second worker script is fetched only
              // once the first frame has asked for its app page.
              const [, second] = exchanges.filter((e) => e.path === '/_embedgate/worker.js');
              const firstPage = Math.min(...appPages.map((e) => e.seq));
              assert.ok(second !== undefined && second.seq > firstPage, `registrations one after the other: ${timeline(exchanges.filter((e) => isAppPage(e) || e.path === '/_embedgate/worker.js'))}`);
              if (mode === 'auto') {
                const probes = exchanges.filter((e) => e.method === 'GET' && e.path === '/_embedgate/session');
                assert.ok(probes.length >= 1 && probes.every((e) => e.status === 401), `auto mode's probe found no cookie: ${probes.map(describeExchange).join(', ')}`);
              }
            }
            await tab.evalInFrame('app', `(window.embedgateTestMark = 'first load', true)`);
            return tab;
          } catch (error) {
            await closeTab(tab);
            throw error;
          }
        }

        /** Ends step 1's tab when a step fails, so that it does not go on calling the gateway during later steps. */
        const dropMain = async (): Promise<void> => {
          const tab = main;
          main = undefined;
          if (tab !== undefined) await closeTab(tab).catch(() => undefined);
        };

        it('1a. attach({ src }) (the host page POSTs the token before the frames navigate): the dashboard renders for alice, its chart callback runs, the payroll callback is refused with no payroll data in the frame, the live socket streams', async (t) => {
          main = await attachAndRender(t, 'src', SHORT_TTL_SECONDS);
        });

        it(`2. with ${SHORT_TTL_SECONDS} s tokens the region changes every second for more than two token lifetimes, without a reload, every callback answered`, async (t) => {
          assert.ok(main !== undefined, 'step 1 left the apps loaded');
          const tab = main;
          try {
            const exchangeMark = world.proxy.exchanges.length;
            const denialMark = world.denials().length;
            const callsBefore = (await hostState(tab)).tokenCalls;
            const pointsBefore = Number(await tab.evalInFrame('live', text('#count')));
            const started = Date.now();
            // A user picking the next region every second.
            await tab.evalInFrame('app', `(window.embedgateTestLoop = setInterval(() => {
              window.embedgateTestPicks = (window.embedgateTestPicks || 0) + 1;
              window.dash_clientside.set_props('region', { value: ${JSON.stringify(REGIONS)}[window.embedgateTestPicks % 4] });
            }, 1000), true)`);
            // One pick a second, until more than two token lifetimes have gone by (each pick runs the region's callbacks).
            await tab.waitUntil(`window.embedgateTestPicks >= ${RENEWAL_CALLBACKS}`, (RENEWAL_CALLBACKS + 20) * 1000, 'app');
            const picks = await tab.evalInFrame<number>('app', '(clearInterval(window.embedgateTestLoop), window.embedgateTestPicks)');
            const elapsed = Date.now() - started;
            const last = REGIONS[picks % 4] as string;
            assert.equal(await frameText(tab, 'app', '#chart .gtitle', new RegExp(`^${last}:`), 10_000), chartTitle(last), 'the chart shows the last region picked');
            const callbacks = await awaitExchanges(exchangeMark, isCallback, picks, 10_000);

            assert.deepEqual(callbacks.filter((e) => e.status !== 200).map(describeExchange), [], 'every callback succeeded');
            assert.ok(elapsed / 1000 > 2 * SHORT_TTL_SECONDS, `ran for ${elapsed} ms, more than two token lifetimes`);
            assert.equal(await tab.evalInFrame('app', 'window.embedgateTestMark'), 'first load', 'the same document: never reloaded');
            const exchanges = world.proxy.exchanges.slice(exchangeMark);
            assert.deepEqual(exchanges.filter(isAppPage).map(describeExchange), [], 'no app page was loaded again');
            const state = await hostState(tab);
            const renewals = state.tokenCalls - callsBefore;
            assert.ok(renewals >= 3, `getToken was called again and again (${renewals} times)`);
            const rotations = exchanges.filter(isSessionPost);
            assert.ok(rotations.length >= 3 && rotations.every((e) => e.status === 200), `the sessions were renewed: ${rotations.map(describeExchange).join(', ')}`);
            assert.deepEqual(world.denials().slice(denialMark), [], 'the gateway refused nothing during the run');
            assert.deepEqual(eventTypes(state), { app: ['ready'], live: ['ready'] }, 'no error, sign-out or forbidden');
            // The live socket kept streaming through the renewals (a point every 500 ms).
            const liveState = await tab.evalInFrame<string>('live', text('#state'));
            assert.equal(liveState, 'open', `the live socket is still open:\n${sessionCourse(world, exchangeMark)}`);
            const points = Number(await tab.evalInFrame('live', text('#count'))) - pointsBefore;
            assert.ok(points >= 2 * SHORT_TTL_SECONDS, `the live socket delivered ${points} points meanwhile`);
            assert.deepEqual(exchanges.filter((e) => e.upgrade).map(describeExchange), [], 'on the same socket');
            if (carrier === 'worker') {
              assert.ok(rotations.every((e) => e.requestHeaders[HANDLE_HEADER] !== undefined), 'renewals went through the workers');
              assert.ok(exchanges.every((e) => requestCookie(e, SESSION_COOKIE) === undefined));
            } else {
              // Both frames renew the one session they share: the first renewal rotates the cookie; the other frame's, at
              // the same moment with a token no fresher, keeps the session just made.
              const rotating = rotations.filter((e) => setCookiesFor(e, SESSION_COOKIE).length === 1);
              assert.ok(rotating.length >= 2, `the cookie was rotated ${rotating.length} times`);
              assert.deepEqual(rotations.filter((e) => !rotating.includes(e)
                && !rotating.some((r) => Math.abs((r.answeredAt ?? 0) - (e.answeredAt ?? 0)) < 2000)).map(describeExchange), [],
                'a renewal that did not rotate came within 2 s of one that did');
            }
            t.diagnostic(`${callbacks.length} callbacks, ${points} live points, ${renewals} getToken calls, ${rotations.length} renewals in ${(elapsed / 1000).toFixed(1)} s`);
          } catch (error) {
            await dropMain();
            throw error;
          }
        });

        it('3. after the renewals a socket the live app opens now is accepted for alice too', async () => {
          assert.ok(main !== undefined, 'step 1 left the apps loaded');
          const exchangeMark = world.proxy.exchanges.length;
          const hello = await main.evalInFrame<string>('live', `new Promise((resolve) => {
            const ws = new WebSocket('wss://' + location.host + '/live/ws');
            const timer = setTimeout(() => resolve('no answer in 10 s'), 10000);
            ws.onmessage = (e) => { clearTimeout(timer); ws.close(1000); resolve(String(e.data)); };
            ws.onclose = (e) => { clearTimeout(timer); resolve('closed ' + e.code); };
          })`);
          assert.ok(hello.startsWith('{'), `the socket was accepted (${hello}):\n${sessionCourse(world, Math.max(0, exchangeMark - 40))}`);
          assert.deepEqual(JSON.parse(hello), { type: 'hello', user: 'alice' }, 'the upstream handshake carried X-Forwarded-User');
          const [upgrade, ...more] = world.proxy.exchanges.slice(exchangeMark).filter((e) => e.upgrade);
          assert.equal(more.length, 0);
          assert.equal(upgrade?.status, 101);
          if (carrier === 'cookie') {
            assert.ok(requestCookie(upgrade, SESSION_COOKIE) !== undefined, 'the handshake carries the renewed cookie');
          } else {
            assert.match(String(upgrade.requestHeaders['sec-websocket-protocol'] ?? ''), new RegExp(`^embedgate, ${TICKET_PROTOCOL}\\S+$`), 'a fresh ticket');
            const ticketRequest = world.proxy.exchanges.slice(exchangeMark).find((e) => e.path === '/_embedgate/ws-ticket');
            assert.equal(ticketRequest?.status, 200);
            assert.ok(ticketRequest?.requestHeaders[HANDLE_HEADER] !== undefined, 'the ticket request went through the worker');
          }
          assert.equal(await main.evalInFrame('live', text('#state')), 'open', 'the page\'s own socket is still open');
        });

        it('3. sign-out in the host ends the frames\' access (the next callback 401) and closes the live app\'s WebSocket with 1008', async () => {
          assert.ok(main !== undefined, 'step 1 left the apps loaded');
          const tab = main;
          try {
            assert.equal(await tab.evalInFrame<string>('live', text('#state')), 'open', 'the live socket is open before the sign-out');
            const exchangeMark = world.proxy.exchanges.length;
            await tab.evalTop('(window.handles.app.signOut(), window.handles.live.signOut(), true)');
            await tab.waitUntil(`['app', 'live'].every((f) => (window.events || []).some((e) => e.frame === f && e.type === 'signed-out'))`, 10_000);
            assert.equal(await frameText(tab, 'live', '#state', /^closed/, 10_000), 'closed (code 1008)', 'the socket was closed by the gateway');
            const deleted = await awaitExchanges(exchangeMark, (e) => e.method === 'DELETE' && e.path === '/_embedgate/session', 1, 5000);
            assert.ok(deleted.some((e) => e.status === 204), deleted.map(describeExchange).join(', '));
            const afterSignOut = world.proxy.exchanges.length;
            await pickRegion(tab, 'West');
            const [refused] = await awaitExchanges(afterSignOut, isCallback, 1, 10_000);
            assert.equal(refused?.status, 401, 'the next callback');
            assert.equal(await tab.evalInFrame('app', `fetch('/sales/_dash-layout').then((r) => r.status)`), 401, 'the layout too');
            assert.equal(await tab.evalInFrame('live', `fetch('/live/').then((r) => r.status)`), 401, 'the live page too');
            assert.deepEqual(world.proxy.exchanges.slice(exchangeMark).filter((e) => (e.path.startsWith('/sales/') || e.path.startsWith('/live/')) && e.status !== 401)
              .map(describeExchange), [], 'nothing reached an app after sign-out');
            assert.match(await tab.evalInFrame<string>('app', `(document.querySelector('[role=alert]') || {}).textContent || ''`), /signed out/i);
            const state = await hostState(tab);
            assert.deepEqual(eventTypes(state), { app: ['ready', 'signed-out'], live: ['ready', 'signed-out'] });
            assert.deepEqual(state.errors, []);
          } finally {
            await dropMain();
          }
        });

        it('1b. the classic way (the host sets iframe.src, each frame\'s bootstrap page makes the session): the same as 1a', async (t) => {
          await closeTab(await attachAndRender(t, 'classic', 300));
        });

        for (const attach of ['classic', 'src'] as const) {
          it(`4. a host page on an unlisted origin (${attach === 'src' ? 'attach({ src })' : 'iframe.src'}) gets nothing: no session POST reaches the gateway, ${attach === 'src' ? 'the token never leaves the page' : 'getToken is never called'}, no app data`, async (t) => {
            const exchangeMark = world.proxy.exchanges.length;
            const tab = await newTab();
            try {
              await tab.goto(hostPageUrl(world.other, { attach }));
              // The iframes navigate (after the refused session POSTs with attach({ src })) and their load events fire.
              const navigations = await awaitExchanges(exchangeMark, isAppPage, 2, 10_000);
              for (const navigation of navigations) {
                assert.equal(navigation.requestHeaders.referer, `${world.other.origin}/`);
                assert.equal(navigation.status, 401, 'the bootstrap page, not the app');
                assert.equal(navigation.responseHeaders?.['content-security-policy']?.includes(`frame-ancestors ${world.host.origin}`), true);
              }
              await tab.waitUntil('window.frameLoads >= 2', 10_000);
              // The browser refused to show them (frame-ancestors): no bootstrap page is in a frame, so nothing of the
              // gateway's runs there (Chromium shows its error page, Firefox its own, WebKit an empty document).
              for (const frame of FRAMES) {
                const inFrame = await tab.evalInFrame<string>(frame, `location.href + ' ' + document.title + ' '
                  + document.querySelectorAll('#embedgate-status, script[data-embedgate-mode], [role=alert]').length`)
                  .catch((error: Error) => `not reachable: ${error.message.split('\n')[0]}`);
                t.diagnostic(`the refused frame ${frame}: ${inFrame}`);
                assert.ok(inFrame.startsWith('not reachable') || / 0$/.test(inFrame), `no bootstrap page in the frame: ${inFrame}`);
                assert.ok(!/Signing in|Sales dashboard|Live metrics/.test(inFrame), inFrame);
              }

              const exchanges = world.proxy.exchanges.slice(exchangeMark);
              assert.deepEqual(exchanges.filter(isSessionPost).map((e) => `${describeExchange(e)} from ${String(e.requestHeaders.origin)}`), [],
                'no session POST reached the gateway');
              const state = await hostState(tab);
              if (attach === 'src') {
                // attach({ src }) asks the host page's own getToken() before it tries the CORS POST; the browser's
                // preflight is refused, so the POST with the token is never sent.
                const preflights = exchanges.filter((e) => e.method === 'OPTIONS' && e.path === '/_embedgate/session');
                assert.deepEqual(preflights.map((e) => [e.status, e.responseHeaders?.['access-control-allow-origin']]), [[403, undefined], [403, undefined]],
                  'the CORS preflights are refused');
                assert.equal(state.tokenCalls, 2, 'attach({ src }) itself called getToken once per frame');
              } else {
                assert.equal(state.tokenCalls, 0, 'getToken was never called');
                assert.deepEqual(world.tokenRequests(world.other), [], 'no /token request');
                assert.deepEqual(exchanges.filter((e) => e.path === '/_embedgate/session').map(describeExchange), []);
              }
              assert.deepEqual(state.events, [], 'no event');
              assert.deepEqual(exchanges.filter((e) => e.upgrade).map(describeExchange), [], 'no WebSocket');
              assert.deepEqual(exchanges.filter((e) => e.status === 200 && (e.path.startsWith('/sales/') || e.path.startsWith('/live/'))).map(describeExchange), [],
                'nothing of the apps was served');
            } finally {
              await closeTab(tab);
            }
          });
        }

        it(carrier === 'worker'
          ? `5. no cookie was set for the gateway${mode === 'auto' ? ' (the first POST\'s was refused by the browser)' : ''}, and the frames were controlled by the service workers`
          : '5. the frames\' requests carried the partitioned cookie, and no service worker', () => {
          const all = world.proxy.exchanges;
          const setting = all.filter((e) => setCookiesFor(e, SESSION_COOKIE).some(setsValue));
          const fromFrames = all.filter((e) => e.requestHeaders.origin === world.gwOrigin || e.requestHeaders['sec-fetch-site'] === 'same-origin');
          assert.deepEqual(all.filter((e) => requestCookie(e, PROBE_COOKIE) !== undefined).map(describeExchange), [], 'the unpartitioned probe cookie never came back');
          if (carrier === 'worker') {
            assert.deepEqual(all.filter((e) => requestCookie(e, SESSION_COOKIE) !== undefined).map(describeExchange), [],
              'the browser never sent a gateway cookie');
            if (mode === 'worker') {
              assert.deepEqual(setting.map(describeExchange), [], 'the gateway never set its cookie');
            } else {
              // auto: the bootstrap tried the cookie first, the browser dropped it, and the probe said so.
              assert.ok(setting.length >= 1, 'auto mode tried the cookie');
            }
            assert.ok(all.some((e) => e.path === '/_embedgate/worker.js' && e.status === 200), 'the worker script was fetched');
            const appPages = all.filter((e) => isAppPage(e) && e.status === 200);
            assert.ok(appPages.length >= 4 && appPages.every((e) => e.requestHeaders[HANDLE_HEADER] !== undefined), 'every app page came through a worker');
          } else {
            assert.ok(setting.length >= 2, 'the gateway set its cookie');
            assert.ok(setting.flatMap((e) => setCookiesFor(e, SESSION_COOKIE)).filter(setsValue).every((line) => /; Partitioned$/.test(line)), 'always partitioned');
            // Every callback the gateway let through (200) or refused by role (403) came with the cookie; only the
            // one after sign-out (401) came without.
            const calls = fromFrames.filter((e) => isCallback(e) && reachedGateway(e));
            assert.ok(calls.filter((e) => e.status === 200).length >= RENEWAL_CALLBACKS, 'the callbacks of the renewal step');
            assert.deepEqual(calls.filter((e) => (e.status === 200 || e.status === 403) !== (requestCookie(e, SESSION_COOKIE) !== undefined)).map(describeExchange), [],
              `the callbacks that were let through carried the cookie, the ones refused after sign-out did not; the gateway's warnings: ${gatewayWarnings(world)}`);
            assert.deepEqual(all.filter((e) => e.requestHeaders[HANDLE_HEADER] !== undefined).map(describeExchange), [], 'no worker handle');
            assert.equal(all.some((e) => e.path === '/_embedgate/worker.js'), false, 'no service worker was registered');
          }
          assert.deepEqual(engine.outbound, [], 'nothing tried to leave loopback');
        });
      });
    }
  });
}
