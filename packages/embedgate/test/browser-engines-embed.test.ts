// One end-to-end embed scenario in three browser engines with third-party cookies blocked, all over HTTPS with the
// test CA: a host page on https://localhost:<port> frames the Dash-protocol test app behind the gateway, which the
// browsers reach through a TLS-terminating proxy at https://127.0.0.1:<port> (another site). In each engine and
// embed.mode:
//   1. the host attaches the iframe (attach({ src }), and the classic way, setting iframe.src); the app renders, its
//      layout and a normal callback answer 200, an analyst's payroll callback 403 with no payroll data in the frame,
//      and the upstream sees X-Forwarded-User = alice;
//   2. with ~8 s tokens the app calls back every second for more than two token lifetimes without a reload;
//   3. the app's WebSocket echoes; sign-out in the host ends the frame's access (401) and closes the socket (1008);
//   4. a host page on an unlisted origin gets nothing;
//   5. worker mode: no gateway cookie, the frame is controlled by the service worker; cookie mode: the frame's
//      requests carry the partitioned cookie.
// Chromium and Firefox (only partitioned third-party cookies accepted) run cookie mode and worker mode (forced);
// WebKit (MiniBrowser, third-party cookies blocked) runs auto mode, which must end up in worker mode there.
// What went over the wire is read at the TLS proxy; every wait is an event or a bounded poll.
import assert from 'node:assert/strict';
import { after, before, describe, it, type TestContext } from 'node:test';
import { PROBE_COOKIE } from './support/embed-browser-env.js';
import { hostPageUrl, startEmbedWorld, type AttachKind, type EmbedMode, type EmbedWorld } from './support/engines/embed-world.js';
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

interface HostEvent { type: string; message: string; at: number }
interface HostState { events: HostEvent[]; tokenCalls: number; frameLoads: number; errors: string[]; sdkMissing: boolean }

const hostState = (tab: EngineTab): Promise<HostState> => tab.evalTop<HostState>(`({
  events: window.events || [], tokenCalls: window.tokenCalls || 0, frameLoads: window.frameLoads || 0,
  errors: window.errors || [], sdkMissing: !!window.sdkMissing })`);

const text = (id: string): string => `(document.getElementById(${JSON.stringify(id)}) || {}).textContent`;

/** Waits until the app element's text matches, and returns it. */
async function frameText(tab: EngineTab, id: string, pattern: RegExp, timeoutMs = 15_000): Promise<string> {
  await tab.waitUntil(`${pattern.toString()}.test(${text(id)} || '')`, timeoutMs, 'app');
  return tab.evalInFrame<string>('app', text(id));
}

/**
 * A load of the app's page in the frame: the browser's navigation, or the service worker's fetch for it (which goes
 * out as Sec-Fetch-Dest: empty, mode same-origin).
 */
const isAppNavigation = (e: ProxiedExchange): boolean => e.method === 'GET' && e.path === '/sales/';
const isCallback = (e: ProxiedExchange): boolean => e.method === 'POST' && e.path === '/sales/_dash-update-component';
const isSessionPost = (e: ProxiedExchange): boolean => e.method === 'POST' && e.path === '/_embedgate/session';
const describeExchange = (e: ProxiedExchange): string => `${e.method} ${e.url} → ${e.status ?? '…'}`;

/** A fresh session value set by the gateway (not the clearing one, which has an empty value and Max-Age=0). */
const setsValue = (line: string): boolean => !/^__Host-embedgate=;/.test(line) && !/Max-Age=0(;|$)/i.test(line);

for (const run of RUNS) {
  describe(`embed end to end: ${run.title}`, { timeout: 300_000 }, () => {
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
        let mainLoadId = '';
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

        /**
         * Step 1 in a new tab: the host page attaches the iframe, the app renders and answers as alice may; the
         * carrier is checked on the wire. Returns the tab, with the app loaded.
         */
        async function attachAndRender(t: TestContext, attach: AttachKind, ttl: number): Promise<EngineTab> {
          const exchangeMark = world.proxy.exchanges.length;
          const upstreamMark = world.app.requests.length;
          const tokenMark = world.tokenRequests(world.host).length;
          const handshakeMark = world.app.wsHandshakes.length;
          const tab = await newTab();
          try {
            await tab.goto(hostPageUrl(world.host, { attach, ttl }));
            await tab.waitUntil(`(window.events || []).some((e) => e.type === 'ready')`, 20_000);
            assert.equal(await tab.evalInFrame('app', 'document.title'), 'Sales dashboard');
            assert.equal(await frameText(tab, 'layout', /^\d+$/), '200', 'GET /sales/_dash-layout');
            assert.equal(await frameText(tab, 'chart', /^\d+$/), '200', 'callback chart.figure');
            assert.equal(await frameText(tab, 'payroll', /^\d+$/), '403', 'callback payroll.children for an analyst');
            // The app's WebSocket, opened at load, echoes.
            const loadId = await tab.evalInFrame<string>('app', 'window.appLoadId');
            await tab.waitUntil(`/\\S/.test(${text('ws-echo')}) || /\\d/.test(${text('ws-close')})`, 15_000, 'app');
            const socket = await tab.evalInFrame<string[]>('app', `[${text('ws-state')}, ${text('ws-echo')}, ${text('ws-close')}]`);
            assert.deepEqual(socket, ['open', `echo: ping ${loadId}`, ''], 'the app\'s WebSocket: state, echo, close code');

            // No payroll data in the frame: the refused callback's answer is the gateway's denial, nothing of the app's.
            const payroll = await tab.evalInFrame<{ status: number; body: string }>('app', `fetch('/sales/_dash-update-component', {
              method: 'POST', headers: { 'content-type': 'application/json' },
              body: JSON.stringify({ output: 'payroll.children', outputs: { id: 'payroll', property: 'children' }, inputs: [], changedPropIds: [] }),
            }).then(async (r) => ({ status: r.status, body: await r.text() }))`);
            assert.equal(payroll.status, 403);
            assert.equal((JSON.parse(payroll.body) as { error?: string }).error, 'callback_forbidden', payroll.body);
            assert.ok(!payroll.body.includes('"response"'), `no callback output in the refusal: ${payroll.body}`);
            assert.ok(!(await tab.evalInFrame<string>('app', 'document.body.innerText')).includes('"response"'));

            const upstream = world.app.requests.slice(upstreamMark);
            assert.deepEqual(
              [...new Set(upstream.map((r) => `${r.method} ${r.path}${r.output === undefined ? '' : ` ${r.output}`}`))].sort(),
              ['GET /sales/', 'GET /sales/_dash-layout', 'POST /sales/_dash-update-component chart.figure'],
              'the upstream got the page, the layout and the allowed callback only (never the payroll callback)',
            );
            assert.deepEqual([...new Set(upstream.map((r) => r.user))], ['alice'], 'X-Forwarded-User is alice on every request');
            assert.ok(upstream.every((r) => !(r.cookie ?? '').includes(PROBE_COOKIE)),
              'the app\'s unpartitioned SameSite=None cookie never came back (third-party cookies are blocked in the frame)');
            assert.ok(upstream.every((r) => !(r.cookie ?? '').includes(SESSION_COOKIE)), 'the gateway\'s cookie is never passed to the app');

            const state = await hostState(tab);
            assert.equal(state.sdkMissing, false, 'host.js loaded from the gateway');
            assert.deepEqual([...new Set(state.events.map((e) => e.type))], ['ready'], 'the host got ready, and no error');
            assert.deepEqual(state.errors, [], 'no uncaught error in the host page');
            assert.ok(state.tokenCalls >= 1);

            // The carrier, on the wire and in the frame.
            const exchanges = world.proxy.exchanges.slice(exchangeMark);
            const navigations = exchanges.filter(isAppNavigation);
            const bootstraps = navigations.filter((e) => e.status === 401);
            const appPage = navigations.filter((e) => e.status === 200);
            const sessionPosts = exchanges.filter(isSessionPost);
            const hostPost = sessionPosts.filter((e) => e.requestHeaders.origin === world.host.origin);
            const callbacks = exchanges.filter(isCallback);
            const upgrades = exchanges.filter((e) => e.upgrade && e.path === '/sales/ws');
            assert.deepEqual(upgrades.map((e) => e.status), [101], 'one WebSocket handshake, accepted');
            const upgrade = upgrades[0] as ProxiedExchange;
            assert.deepEqual(world.app.wsHandshakes.slice(handshakeMark).map((h) => [h.user, h.origin]), [['alice', world.gwOrigin]],
              'the upstream handshake carries X-Forwarded-User = alice and the gateway\'s origin');
            assert.equal(appPage.length, 1, `one app page: ${navigations.map(describeExchange).join(', ')}`);
            assert.equal(hostPost.length, attach === 'src' ? 1 : 0, 'attach({ src }) POSTs the token from the host page by CORS; the classic way does not');
            const controlled = await tab.evalInFrame<boolean>('app', 'navigator.serviceWorker !== undefined && navigator.serviceWorker.controller !== null');
            t.diagnostic(`${attach}: ${exchanges.length} requests, ${bootstraps.length} bootstrap page(s), ${state.tokenCalls} getToken call(s), `
              + `session POSTs ${sessionPosts.map((e) => `${e.requestHeaders.origin === world.host.origin ? 'host' : 'frame'}:${e.status}`).join(' ')}, `
              + `${world.tokenRequests(world.host).length - tokenMark} /token requests`);
            if (carrier === 'cookie') {
              // The app page navigation (no bearer on a navigation) and every callback carry the partitioned cookie.
              assert.ok(requestCookie(appPage[0] as ProxiedExchange, SESSION_COOKIE) !== undefined, 'the app page navigation carries the session cookie');
              assert.equal(appPage[0]?.requestHeaders.authorization, undefined);
              assert.ok(callbacks.length >= 2 && callbacks.every((e) => requestCookie(e, SESSION_COOKIE) !== undefined), 'every callback carries the cookie');
              assert.ok(requestCookie(upgrade, SESSION_COOKIE) !== undefined, 'the WebSocket handshake carries the cookie');
              assert.ok(exchanges.every((e) => e.requestHeaders[HANDLE_HEADER] === undefined), 'no worker handle anywhere');
              assert.equal(controlled, false, 'no service worker controls the frame');
              // attach({ src }): the cookie from the host page's CORS POST is in the host's partition, where the frame
              // finds it, so its first load is the app; the classic way goes through the bootstrap page once.
              assert.equal(bootstraps.length, attach === 'src' ? 0 : 1, 'bootstrap pages');
              const made = [...hostPost, ...sessionPosts.filter((e) => e.requestHeaders.origin === world.gwOrigin)][0];
              const [cookie] = setCookiesFor(made as ProxiedExchange, SESSION_COOKIE);
              assert.match(cookie ?? '', /; Secure; HttpOnly; SameSite=None; Partitioned$/, 'a partitioned cookie');
            } else {
              // The app page came through the service worker, with the handle and without any cookie.
              assert.equal(controlled, true, 'the frame is controlled by the service worker');
              assert.match(String(appPage[0]?.requestHeaders[HANDLE_HEADER] ?? ''), /\S/, 'the app page load carries the worker\'s handle');
              assert.ok(callbacks.length >= 2 && callbacks.every((e) => e.requestHeaders[HANDLE_HEADER] !== undefined), 'every callback carries the handle');
              assert.ok(exchanges.every((e) => requestCookie(e, SESSION_COOKIE) === undefined), 'no request carried a gateway cookie');
              assert.ok(sessionPosts.some((e) => e.requestHeaders.origin === world.gwOrigin && e.status === 200), 'the frame made its handle');
              // A handshake carries neither cookie nor header: the socket offered a single-use ticket.
              assert.match(String(upgrade.requestHeaders['sec-websocket-protocol'] ?? ''), new RegExp(`(^|, )embedgate, ${TICKET_PROTOCOL}\\S+$`),
                'the WebSocket offered a ticket');
              assert.equal(upgrade.responseHeaders?.['sec-websocket-protocol'], 'embedgate');
              // Even with attach({ src }) the frame needs its bootstrap page: only it can register the worker.
              assert.equal(bootstraps.length, 1, 'the worker was registered by one bootstrap page');
              if (mode === 'auto') {
                const probes = exchanges.filter((e) => e.method === 'GET' && e.path === '/_embedgate/session');
                assert.ok(probes.length >= 1 && probes.every((e) => e.status === 401), `auto mode's probe found no cookie: ${probes.map(describeExchange).join(', ')}`);
              }
            }
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

        it('1a. attach({ src }) (the host page POSTs the token before the frame navigates): the app renders, layout and a normal callback 200, the analyst\'s payroll callback 403 with no payroll data, the upstream sees alice', async (t) => {
          main = await attachAndRender(t, 'src', SHORT_TTL_SECONDS);
          mainLoadId = await main.evalInFrame<string>('app', 'window.appLoadId');
        });

        it(`2. with ${SHORT_TTL_SECONDS} s tokens the app calls back every second for more than two token lifetimes without a reload`, async (t) => {
          assert.ok(main !== undefined, 'step 1 left the app loaded');
          const tab = main;
          try {
            const exchangeMark = world.proxy.exchanges.length;
            const denialMark = world.denials().length;
            const callsBefore = (await hostState(tab)).tokenCalls;
            const started = Date.now();
            await tab.evalInFrame('app', `(document.getElementById('loop-start').click(), true)`);
            await tab.waitUntil(`Number(${text('loop-ok')}) + Number(${text('loop-failed')}) >= ${RENEWAL_CALLBACKS}`,
              (RENEWAL_CALLBACKS + 15) * 1000, 'app');
            const elapsed = Date.now() - started;

            const statuses = await tab.evalInFrame<Array<{ output: string; status: number; at: number }>>('app', 'window.appStatuses');
            const during = statuses.filter((s) => s.at >= started);
            assert.ok(during.length >= RENEWAL_CALLBACKS, `the app kept calling back (${during.length} callbacks)`);
            assert.deepEqual(during.filter((s) => s.status !== 200), [], 'every callback succeeded');
            assert.equal(await tab.evalInFrame('app', text('loop-failed')), '0');
            assert.ok(elapsed / 1000 > 2 * SHORT_TTL_SECONDS, `ran for ${elapsed} ms, more than two token lifetimes`);

            assert.equal(await tab.evalInFrame('app', 'window.appLoadId'), mainLoadId, 'the same document: never reloaded');
            const exchanges = world.proxy.exchanges.slice(exchangeMark);
            assert.deepEqual(exchanges.filter(isAppNavigation).map(describeExchange), [], 'the app page was not loaded again');
            const state = await hostState(tab);
            const renewals = state.tokenCalls - callsBefore;
            assert.ok(renewals >= 3, `getToken was called again and again (${renewals} times)`);
            const rotations = exchanges.filter(isSessionPost);
            assert.ok(rotations.length >= 3 && rotations.every((e) => e.status === 200), `the session was renewed: ${rotations.map(describeExchange).join(', ')}`);
            assert.deepEqual(world.denials().slice(denialMark), [], 'the gateway refused nothing during the run');
            assert.deepEqual([...new Set(state.events.map((e) => e.type))], ['ready'], 'no error, sign-out or forbidden');
            if (carrier === 'worker') {
              assert.ok(rotations.every((e) => e.requestHeaders[HANDLE_HEADER] !== undefined), 'renewals went through the worker');
              assert.ok(exchanges.every((e) => requestCookie(e, SESSION_COOKIE) === undefined));
            } else {
              assert.ok(rotations.every((e) => setCookiesFor(e, SESSION_COOKIE).length === 1), 'every renewal rotated the cookie');
            }
            t.diagnostic(`${during.length} callbacks, ${renewals} getToken calls, ${rotations.length} renewals in ${(elapsed / 1000).toFixed(1)} s`);
          } catch (error) {
            await dropMain();
            throw error;
          }
        });

        it('3. the app\'s WebSocket (/sales/ws) is still open after the renewals, and a socket the app opens now echoes too', async () => {
          assert.ok(main !== undefined, 'step 1 left the app loaded');
          assert.equal(await main.evalInFrame('app', text('ws-state')), 'open', 'the app\'s socket from the page load is still open');
          const handshakeMark = world.app.wsHandshakes.length;
          const exchangeMark = world.proxy.exchanges.length;
          const again = await main.evalInFrame<string>('app', `new Promise((resolve) => {
            const ws = new WebSocket('wss://' + location.host + '/sales/ws');
            const timer = setTimeout(() => resolve('no answer in 10 s'), 10000);
            ws.onopen = () => ws.send('again');
            ws.onmessage = (e) => { clearTimeout(timer); ws.close(1000); resolve(String(e.data)); };
            ws.onclose = (e) => { clearTimeout(timer); resolve('closed ' + e.code); };
          })`);
          assert.equal(again, 'echo: again', 'a WebSocket opened now');
          const [upgrade, ...more] = world.proxy.exchanges.slice(exchangeMark).filter((e) => e.upgrade);
          assert.equal(more.length, 0);
          assert.equal(upgrade?.status, 101);
          if (carrier === 'cookie') {
            assert.ok(requestCookie(upgrade, SESSION_COOKIE) !== undefined, 'the handshake carries the renewed cookie');
          } else {
            // The frame holds its token by now (header mode puts it on the ticket request): the ticket is still issued.
            assert.match(String(upgrade.requestHeaders['sec-websocket-protocol'] ?? ''), new RegExp(`^embedgate, ${TICKET_PROTOCOL}\\S+$`), 'a fresh ticket');
            const ticketRequest = world.proxy.exchanges.slice(exchangeMark).find((e) => e.path === '/_embedgate/ws-ticket');
            assert.equal(ticketRequest?.status, 200);
            assert.match(String(ticketRequest?.requestHeaders.authorization ?? ''), /^Bearer /, 'the ticket request carried the bearer as well as the handle');
            assert.ok(ticketRequest?.requestHeaders[HANDLE_HEADER] !== undefined);
          }
          assert.deepEqual(world.app.wsHandshakes.slice(handshakeMark).map((h) => [h.user, h.origin]), [['alice', world.gwOrigin]],
            'the upstream handshake carries X-Forwarded-User and the gateway\'s origin');
          assert.equal(await main.evalInFrame('app', text('ws-echo')), `echo: ping ${mainLoadId}`, 'the first socket\'s echo');
        });

        it('3. sign-out in the host ends the frame\'s access (the next callback 401) and closes the app\'s WebSocket with 1008', async () => {
          assert.ok(main !== undefined, 'step 1 left the app loaded');
          const tab = main;
          try {
            assert.equal(await tab.evalInFrame<string>('app', text('ws-state')), 'open', 'the app\'s socket is open before the sign-out');
            const exchangeMark = world.proxy.exchanges.length;
            const upstreamMark = world.app.requests.length;
            await tab.evalTop('(window.handle.signOut(), true)');
            await tab.waitUntil(`(window.events || []).some((e) => e.type === 'signed-out')`, 10_000);
            assert.equal(await frameText(tab, 'ws-close', /^\d+$/, 10_000), '1008', 'the socket\'s close code');
            assert.equal(await tab.evalInFrame('app', text('ws-state')), 'closed');
            const deleted = await world.proxy.waitFor((e) => e.method === 'DELETE' && e.path === '/_embedgate/session' && e.seq >= exchangeMark, 5000, 'DELETE /_embedgate/session');
            assert.equal(deleted.status, 204);
            assert.equal(await tab.evalInFrame('app', 'window.dashCallback("chart.figure")'), 401, 'the next callback');
            assert.equal(await tab.evalInFrame('app', `fetch('/sales/_dash-layout').then((r) => r.status)`), 401, 'the layout too');
            assert.equal(world.app.requests.length, upstreamMark, 'nothing reached the app after sign-out');
            assert.match(await tab.evalInFrame<string>('app', `(document.querySelector('[role=alert]') || {}).textContent || ''`), /signed out/i);
            const state = await hostState(tab);
            assert.deepEqual([...new Set(state.events.map((e) => e.type))], ['ready', 'signed-out']);
            assert.deepEqual(state.errors, []);
          } finally {
            await dropMain();
          }
        });

        it('1b. the classic way (the host sets iframe.src, the frame\'s bootstrap page makes the session): the same as 1a', async (t) => {
          await closeTab(await attachAndRender(t, 'classic', 300));
        });

        for (const attach of ['classic', 'src'] as const) {
          it(`4. a host page on an unlisted origin (${attach === 'src' ? 'attach({ src })' : 'iframe.src'}) gets nothing: no session POST reaches the gateway, ${attach === 'src' ? 'the token never leaves the page' : 'getToken is never called'}, no app data`, async (t) => {
            const exchangeMark = world.proxy.exchanges.length;
            const upstreamMark = world.app.requests.length;
            const tab = await newTab();
            try {
              await tab.goto(hostPageUrl(world.other, { attach }));
              // The iframe navigates (after the refused session POST with attach({ src })) and its load event fires.
              const navigation = await world.proxy.waitFor((e) => e.seq >= exchangeMark && isAppNavigation(e), 10_000, 'the iframe navigation');
              assert.equal(navigation.requestHeaders.referer, `${world.other.origin}/`);
              assert.equal(navigation.status, 401, 'the bootstrap page, not the app');
              assert.equal(navigation.responseHeaders?.['content-security-policy']?.includes(`frame-ancestors ${world.host.origin}`), true);
              await tab.waitUntil('window.frameLoads >= 1', 10_000);
              // The browser refused to show it (frame-ancestors): the bootstrap page is not in the frame, so nothing of
              // the gateway's runs there (Chromium shows its error page, Firefox its own, WebKit an empty document).
              const inFrame = await tab.evalInFrame<string>('app', `location.href + ' ' + document.title + ' '
                + document.querySelectorAll('#embedgate-status, script[data-embedgate-mode], [role=alert]').length`)
                .catch((error: Error) => `not reachable: ${error.message.split('\n')[0]}`);
              t.diagnostic(`the refused frame: ${inFrame}`);
              assert.ok(inFrame.startsWith('not reachable') || / 0$/.test(inFrame), `no bootstrap page in the frame: ${inFrame}`);
              assert.ok(!inFrame.includes('Signing in') && !inFrame.includes('Sales dashboard'), inFrame);

              const exchanges = world.proxy.exchanges.slice(exchangeMark);
              assert.deepEqual(exchanges.filter(isSessionPost).map((e) => `${describeExchange(e)} from ${String(e.requestHeaders.origin)}`), [],
                'no session POST reached the gateway');
              const state = await hostState(tab);
              if (attach === 'src') {
                // attach({ src }) asks the host page's own getToken() before it tries the CORS POST; the browser's
                // preflight is refused, so the POST with the token is never sent.
                const preflight = exchanges.find((e) => e.method === 'OPTIONS' && e.path === '/_embedgate/session');
                assert.equal(preflight?.status, 403, 'the CORS preflight is refused');
                assert.equal(preflight?.responseHeaders?.['access-control-allow-origin'], undefined);
                assert.equal(state.tokenCalls, 1, 'attach({ src }) itself called getToken once');
              } else {
                assert.equal(state.tokenCalls, 0, 'getToken was never called');
                assert.deepEqual(world.tokenRequests(world.other), [], 'no /token request');
                assert.deepEqual(exchanges.filter((e) => e.path === '/_embedgate/session').map(describeExchange), []);
              }
              assert.deepEqual(state.events, [], 'no event');
              assert.deepEqual(exchanges.filter((e) => e.upgrade).map(describeExchange), [], 'no WebSocket');
              assert.deepEqual(world.app.requests.slice(upstreamMark), [], 'the upstream received nothing');
            } finally {
              await closeTab(tab);
            }
          });
        }

        it(carrier === 'worker'
          ? `5. no cookie was set for the gateway${mode === 'auto' ? ' (the first POST\'s was refused by the browser)' : ''}, and the frames were controlled by the service worker`
          : '5. the frame\'s requests carried the partitioned cookie, and no service worker', () => {
          const all = world.proxy.exchanges;
          const setting = all.filter((e) => setCookiesFor(e, SESSION_COOKIE).some(setsValue));
          const fromFrame = all.filter((e) => e.requestHeaders.origin === world.gwOrigin || e.requestHeaders['sec-fetch-site'] === 'same-origin');
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
            const appPages = all.filter((e) => isAppNavigation(e) && e.status === 200);
            assert.ok(appPages.length >= 2 && appPages.every((e) => e.requestHeaders[HANDLE_HEADER] !== undefined), 'every app page came through the worker');
          } else {
            assert.ok(setting.length >= 2, 'the gateway set its cookie');
            assert.ok(setting.flatMap((e) => setCookiesFor(e, SESSION_COOKIE)).filter(setsValue).every((line) => /; Partitioned$/.test(line)), 'always partitioned');
            // Every callback the gateway let through (200) or refused by role (403) came with the cookie; only the
            // ones after sign-out (401: the loop goes on until the tab closes) came without.
            const calls = fromFrame.filter(isCallback);
            assert.ok(calls.filter((e) => e.status === 200).length >= RENEWAL_CALLBACKS, 'the callbacks of the renewal step');
            assert.deepEqual(calls.filter((e) => (e.status === 200 || e.status === 403) !== (requestCookie(e, SESSION_COOKIE) !== undefined)).map(describeExchange), [],
              'the callbacks that were let through carried the cookie, the ones refused after sign-out did not');
            assert.deepEqual(all.filter((e) => e.requestHeaders[HANDLE_HEADER] !== undefined).map(describeExchange), [], 'no worker handle');
            assert.equal(all.some((e) => e.path === '/_embedgate/worker.js'), false, 'no service worker was registered');
          }
          assert.deepEqual(engine.outbound, [], 'nothing tried to leave loopback');
        });
      });
    }
  });
}
