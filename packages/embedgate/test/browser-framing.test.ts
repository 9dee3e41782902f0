// Framing and postMessage security in a real browser (Debian's Chromium, third-party cookies blocked): pages outside
// the allowlist cannot frame apps (4), gateway pages refuse all framing (105), the frame posts only to the exact
// host origin (106), the host SDK ignores hellos from anything but its iframe on the gateway's origin (107), and a
// foreign site's hidden frame gets neither the app nor the session cookie (109).
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { after, afterEach, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import type { Browser, Frame } from 'playwright-core';
import { launchChromium, openTab, rawHeaders, type BrowserTab } from './support/chromium.js';
import { postMessageCalls } from './support/post-message-calls.js';
import { eventually } from './support/gateway.js';
import { rawRequest } from './support/raw-http.js';
import {
  FRAME_ANCESTORS_REFUSAL, gatewayFrame, hostState, startEmbedEnv, textMatching, waitForHostEvent, type EmbedEnv,
} from './support/embed-browser-env.js';

const SESSION_COOKIE = '__Host-embedgate';
const SDK_DIST = join(dirname(fileURLToPath(import.meta.url)), '../../embed/dist');

let env: EmbedEnv;
let browser: Browser;
const tabs: BrowserTab[] = [];

before(async () => {
  env = await startEmbedEnv();
  browser = await launchChromium();
});

// Each test closes what it opened, so no page of an earlier test keeps calling the app.
afterEach(async () => {
  for (const opened of tabs.splice(0)) await opened.close().catch(() => undefined);
});

after(async () => {
  await browser?.close();
  await env?.close();
});

async function tab(): Promise<BrowserTab> {
  const opened = await openTab(browser);
  tabs.push(opened);
  return opened;
}

/** A tab whose partition (the allowed host's site) already holds a live embed session for alice. */
async function tabWithSession(): Promise<BrowserTab> {
  const t = await tab();
  await t.page.goto(`${env.host.origin}/host.html?user=alice`);
  await waitForHostEvent(t.page, 'ready');
  const app = gatewayFrame(t.page, env.gwOrigin);
  assert.ok(app !== undefined);
  // Let the app's own requests on load finish, so later counts of upstream requests start from a quiet state.
  for (const id of ['#layout', '#chart', '#payroll']) await textMatching(app, id, /^\d+$/);
  await textMatching(app, '#ws-echo', /\S/);
  assert.equal((await t.context.cookies()).filter((c) => c.name === SESSION_COOKIE).length, 1);
  return t;
}

/** Waits for Chromium's frame-ancestors refusal logged after console line `from`; returns the directive's sources. */
async function refusal(t: BrowserTab, from: number, framed = env.gwOrigin): Promise<string> {
  let sources = '';
  await eventually(() => t.consoleAt.slice(from).some((line) => {
    const match = FRAME_ANCESTORS_REFUSAL.exec(line.text);
    if (match === null || !(match[1] ?? '').startsWith(framed)) return false;
    sources = match[2] ?? '';
    return true;
  }), 10_000).catch(() => assert.fail(`no frame-ancestors refusal for ${framed}; console: ${JSON.stringify(t.console.slice(from))}`));
  return sources;
}

const sessionPosts = (): number => env.gatewayRequests().filter((r) => r.method === 'POST' && r.path === '/_embedgate/session').length;
const errorFrames = (t: BrowserTab): Frame[] => t.page.frames().filter((f) => f.url().startsWith('chrome-error://'));
const url = (origin: string, path: string, params: Record<string, string> = {}): string =>
  `${origin}${path}${Object.keys(params).length === 0 ? '' : `?${new URLSearchParams(params).toString()}`}`;

describe('who may frame the app', () => {
  it('4: a host page on an origin outside the allowlist (another localhost port) cannot frame the app: refused by frame-ancestors, getToken never called, no POST /_embedgate/session', async () => {
    const t = await tab();
    const posts = sessionPosts();
    const upstream = env.app.requests.length;
    const gatewayLog = env.gatewayRequests().length;
    await t.page.goto(url(env.other.origin, '/host.html', { user: 'alice' }));
    assert.equal(await refusal(t, 0), env.host.origin, 'the directive names only the allowed host');
    await t.page.waitForFunction('window.frameLoads >= 1');

    const state = await hostState(t.page);
    assert.equal(state.sdkMissing, false, 'the host SDK was loaded and attached');
    assert.ok(gatewayFrame(t.page, env.gwOrigin) === undefined, 'the iframe never shows the app or the bootstrap');
    assert.equal(errorFrames(t).length, 1, 'the iframe shows Chromium\'s error page');
    assert.equal(state.tokenCalls, 0, 'getToken never called');
    assert.deepEqual(env.other.tokenRequests, [], 'the page\'s token endpoint was never asked');
    assert.deepEqual(state.events, []);
    assert.deepEqual(state.messages, [], 'no hello reached the page');
    assert.equal(sessionPosts(), posts, 'the gateway never saw a POST /_embedgate/session');
    assert.deepEqual(env.gatewayRequests().slice(gatewayLog).filter((r) => r.path !== '/_embedgate/host.js'),
      [{ method: 'GET', path: '/sales/', status: 401 }], 'the gateway only answered the navigation (with the bootstrap, which was not rendered)');
    assert.equal(env.app.requests.length, upstream, 'the upstream received nothing');
  });

  it('4b: the bootstrap never runs under a parent outside the allowlist — a sandboxed (opaque-origin) parent, the gateway\'s own origin as parent, a foreign page around the allowed host: each refused before any script runs', async () => {
    // (i) The allowed host puts a sandboxed iframe (origin "null", URL on the allowed origin) around the app frame.
    const sandboxed = await tab();
    const posts = sessionPosts();
    await sandboxed.page.goto(url(env.host.origin, '/nest.html', { src: `${env.gwOrigin}/sales/` }));
    assert.equal(await refusal(sandboxed, 0), env.host.origin);
    const widget = sandboxed.page.frames().find((f) => f.url().startsWith(`${env.host.origin}/frame.html`));
    assert.ok(widget !== undefined);
    await widget.waitForFunction('window.frameLoads >= 1');
    assert.deepEqual((await hostState(widget)).messages, [], 'the sandboxed parent got no hello');
    assert.ok(gatewayFrame(sandboxed.page, env.gwOrigin) === undefined);
    assert.equal(sessionPosts(), posts, 'no session POST');

    // (ii) The app itself (gateway origin, allowed to be framed by the host) frames the app again. The inner request
    // carries the cookie of the host's partition, so it would be the app page (frame script in app mode): refused too.
    const nested = await tab();
    await nested.page.goto(url(env.host.origin, '/host.html', { user: 'alice', app: '/sales/nested' }));
    await waitForHostEvent(nested.page, 'ready');
    const outer = gatewayFrame(nested.page, env.gwOrigin, '/sales/nested');
    assert.ok(outer !== undefined, 'the outer app page is shown');
    assert.equal(await refusal(nested, 0), env.host.origin, 'the inner frame, whose parent is the gateway\'s origin, is refused');
    assert.deepEqual(nested.page.frames().filter((f) => f.url().startsWith(env.gwOrigin)).map((f) => f.url()), [`${env.gwOrigin}/sales/nested`],
      'the only gateway document is the outer app page');
    assert.deepEqual((await hostState(outer)).messages, [], 'the gateway-origin parent got no hello from the inner frame');
    assert.equal((await hostState(nested.page)).tokenCalls, 1, 'getToken only for the outer frame');
    assert.equal(sessionPosts(), posts + 1, 'one session POST: the outer frame\'s');

    // (iii) A foreign site frames the allowed host page (double framing): the app frame has a foreign ancestor.
    const framed = await tab();
    await framed.page.goto(url(env.foreign.origin, '/frame.html', { src: `${env.host.origin}/host.html?user=alice` }));
    assert.equal(await refusal(framed, 0), env.host.origin);
    const hostFrame = framed.page.frames().find((f) => f.url().startsWith(`${env.host.origin}/host.html`));
    assert.ok(hostFrame !== undefined);
    await hostFrame.waitForFunction('window.frameLoads >= 1');
    const state = await hostState(hostFrame);
    assert.equal(state.tokenCalls, 0, 'getToken never called');
    assert.deepEqual(state.messages, []);
    assert.ok(gatewayFrame(framed.page, env.gwOrigin) === undefined);
    assert.equal(sessionPosts(), posts + 1, 'no further session POST');
  });

  it('4c: defence in depth — with frame-ancestors stripped on the way (a browser that ignores it), the bootstrap itself refuses the unlisted parent: "approved page" message, no hello, no getToken, no session POST', async () => {
    const t = await tab();
    const posts = sessionPosts();
    const stripped: string[] = [];
    await t.context.route(`${env.gwOrigin}/sales/`, async (route) => {
      // Passed on as the iframe navigation it is (Playwright's fetch would not send the Sec-Fetch-* headers itself).
      const response = await route.fetch({
        headers: { ...await route.request().allHeaders(), 'sec-fetch-dest': 'iframe', 'sec-fetch-mode': 'navigate', 'sec-fetch-site': 'cross-site' },
      });
      const headers = response.headers();
      const policy = headers['content-security-policy'] ?? '';
      headers['content-security-policy'] = policy.split(';').filter((d) => !/^\s*frame-ancestors\b/i.test(d)).join(';');
      stripped.push(policy);
      await route.fulfill({ response, headers });
    });
    await t.page.goto(url(env.other.origin, '/host.html', { user: 'alice' }));
    await t.page.waitForFunction('window.frameLoads >= 1');
    const frame = gatewayFrame(t.page, env.gwOrigin) ?? assert.fail(`with frame-ancestors gone the bootstrap page loads (frames: ${t.page.frames().map((f) => f.url()).join(' ')}; console: ${t.console.join(' | ')}; stripped: ${stripped.join(' | ')})`);
    assert.equal(await textMatching(frame, '[role=alert], #embedgate-status', /approved page/), 'This app can only be shown inside an approved page.');
    assert.equal(stripped.length, 1);
    assert.match(stripped[0] ?? '', /frame-ancestors/, 'the gateway had sent frame-ancestors');
    assert.equal(await frame.title(), 'Signing in', 'the bootstrap page, not the app');
    const state = await hostState(t.page);
    assert.deepEqual(state.messages, [], 'no hello to the unlisted parent');
    assert.equal(state.tokenCalls, 0);
    assert.deepEqual(env.other.tokenRequests, []);
    assert.equal(sessionPosts(), posts, 'no session POST');
  });
});

describe('security cases H (framing, postMessage)', () => {
  it('105: the session endpoint and the gateway\'s HTML error pages refuse to be framed, even by the allowed host: real X-Frame-Options: DENY and frame-ancestors \'none\' headers', async () => {
    const t = await tabWithSession();
    const pages: Array<[string, number]> = [
      ['/_embedgate/session', 403],
      ['/_embedgate/no-such-endpoint', 404],
      ['/no-app-here/', 404],
      ['/sales/a%2Fb', 400],
    ];
    for (const [path, status] of pages) {
      const from = t.consoleAt.length;
      const navigated = t.page.waitForResponse((r) => r.url() === `${env.gwOrigin}${path}`);
      await t.page.goto(url(env.host.origin, '/frame.html', { src: `${env.gwOrigin}${path}` }));
      const response = await navigated;
      assert.equal(response.status(), status, path);
      // headers(), not allHeaders(): Chromium may never send the raw headers of a response it refuses to show.
      const headers = response.headers();
      assert.equal(headers['x-frame-options'], 'DENY', `${path}: X-Frame-Options header`);
      assert.match(headers['content-security-policy'] ?? '', /(^|;)\s*frame-ancestors 'none'\s*(;|$)/, `${path}: CSP header`);
      assert.match(headers['content-type'] ?? '', /^text\/html/, `${path}: an HTML page (what a frame would show)`);
      assert.equal(await refusal(t, from), "'none'", path);
      await t.page.waitForFunction('window.frameLoads >= 1');
      assert.equal(errorFrames(t).length, 1, `${path}: Chromium shows its error page instead`);
      assert.ok(gatewayFrame(t.page, env.gwOrigin, '/') === undefined, `${path}: no gateway document in the frame`);
      // The same page fetched outside the browser: the protection is in headers, not in a <meta> tag.
      const { body } = await rawRequest(env.gwOrigin, path, ['Sec-Fetch-Dest: iframe', 'Sec-Fetch-Mode: navigate', 'Sec-Fetch-Site: cross-site', 'Accept: text/html']);
      assert.match(body, /^<!doctype html>/i, path);
      assert.doesNotMatch(body, /<meta[^>]+http-equiv/i, `${path}: no <meta> policy`);
    }
  });

  it('105 (JSON endpoints): /healthz, /readyz, /metrics and /_embedgate/jwks.json refuse framing too', async () => {
    const t = await tab();
    const framed: string[] = [];
    for (const path of ['/healthz', '/readyz', '/metrics', '/_embedgate/jwks.json']) {
      const navigated = t.page.waitForResponse((r) => r.url() === `${env.gwOrigin}${path}`);
      await t.page.goto(url(env.foreign.origin, '/frame.html', { src: `${env.gwOrigin}${path}` }));
      const headers = (await navigated).headers();
      await t.page.waitForFunction('window.frameLoads >= 1');
      if (gatewayFrame(t.page, env.gwOrigin, path) !== undefined) {
        framed.push(`${path} (x-frame-options: ${headers['x-frame-options']}, content-security-policy: ${headers['content-security-policy']})`);
      }
    }
    assert.deepEqual(framed, [], 'rendered inside a foreign site\'s frame');
  });

  it('106 (static): the built frame.min.js and host.min.js never post a window message to "*"', () => {
    for (const file of ['frame.min.js', 'host.min.js']) {
      const code = readFileSync(join(SDK_DIST, file), 'utf8');
      const calls = postMessageCalls(code);
      assert.ok(calls.length > 0, `${file}: found its postMessage calls`);
      const windowCalls = calls.filter((call) => call.args.length >= 2);
      assert.equal(windowCalls.length, 1, `${file}: exactly one window.postMessage (with a targetOrigin): ${JSON.stringify(calls)}`);
      for (const call of calls) {
        assert.ok(call.args.length <= 3, `${file}: ${call.text}`);
        const target = call.args[1];
        if (target === undefined) continue;                       // MessagePort.postMessage(message): no origin
        assert.doesNotMatch(target, /^["'`]/, `${file}: targetOrigin is computed from the allowlist, not a literal: ${call.text}`);
        assert.doesNotMatch(target, /targetOrigin/, `${file}: no options-object form: ${call.text}`);
      }
      assert.doesNotMatch(code, /(["'`])\*\1/, `${file}: no "*" string anywhere`);
    }
  });

  it('106 (runtime): pages outside the allowlist receive no message from the frame — an unlisted page framing the app (live session in the partition), a popup\'s opener, a sandboxed parent — while the allowed host gets hellos from the gateway only', async () => {
    const t = await tabWithSession();
    const allowed = await hostState(t.page);
    assert.ok(allowed.messages.length > 0);
    assert.deepEqual([...new Set(allowed.messages.map((m) => `${m.origin} ${m.data} fromApp=${m.fromApp}`))],
      [`${env.gwOrigin} {"embedgate":1,"type":"hello"} fromApp=true`], 'the allowed host: hellos from the app frame only, carrying no token');

    // An unlisted origin frames the app; the partition holds a live session, so the gateway even serves the app.
    let from = t.consoleAt.length;
    await t.page.goto(url(env.other.origin, '/frame.html', { src: `${env.gwOrigin}/sales/` }));
    await refusal(t, from);
    await t.page.waitForFunction('window.frameLoads >= 1');
    assert.deepEqual((await hostState(t.page)).messages, [], 'the unlisted framing page got nothing');

    // An unlisted page opens the app in a popup (not framed): no bootstrap, nothing posted to the opener.
    const [popup] = await Promise.all([
      t.context.waitForEvent('page'),
      t.page.goto(url(env.other.origin, '/open.html', { src: `${env.gwOrigin}/sales/` })),
    ]);
    await popup.waitForLoadState('load');
    assert.equal(await popup.title(), 'Sign-in required', 'a top-level visit gets the gateway\'s 401 page');
    assert.equal(await popup.locator('script').count(), 0, 'no frame script in it');
    assert.deepEqual((await hostState(t.page)).messages, [], 'the opener got nothing');
    await popup.close();

    // A sandboxed (opaque-origin) parent inside the allowed host.
    from = t.consoleAt.length;
    await t.page.goto(url(env.host.origin, '/nest.html', { src: `${env.gwOrigin}/sales/` }));
    await refusal(t, from);
    const widget = t.page.frames().find((f) => f.url().startsWith(`${env.host.origin}/frame.html`));
    assert.ok(widget !== undefined);
    await widget.waitForFunction('window.frameLoads >= 1');
    assert.deepEqual((await hostState(widget)).messages, [], 'the sandboxed parent got nothing');
  });

  it('107: an attacker iframe inside the host page posts a fake hello with a port (and fake events): the host SDK ignores it — getToken not called for it, nothing sent on its port, the real channel intact', async () => {
    const t = await tab();
    await t.page.goto(url(env.host.origin, '/host.html', { user: 'alice', attacker: `${env.other.origin}/attacker.html` }));
    await waitForHostEvent(t.page, 'ready');
    const attacker = t.page.frames().find((f) => f.url().startsWith(`${env.other.origin}/attacker.html`));
    assert.ok(attacker !== undefined);
    const app = gatewayFrame(t.page, env.gwOrigin);
    assert.ok(app !== undefined);
    assert.equal(await textMatching(app, '#chart', /^\d+$/), '200');
    const calls = (await hostState(t.page)).tokenCalls;
    const tokenRequests = env.host.tokenRequests.length;

    await attacker.evaluate('window.sendHello()');
    // The host page's own recorder listens on the same window, before the SDK: once it has the fake hello, the SDK
    // has had it too.
    await t.page.waitForFunction((origin) => ((globalThis as unknown as { messages: Array<{ origin: string }> }).messages)
      .some((m) => m.origin === origin), env.other.origin);
    // The real frame still gets the host's messages: signOut() travels the channel and the frame answers on it. That
    // round trip (two ports, one HTTP request) is also far longer than an answer to the attacker would take.
    await t.page.evaluate('window.handle.signOut()');
    await waitForHostEvent(t.page, 'signed-out');
    assert.match(await textMatching(app, '[role=alert]', /signed out/i), /You are signed out/);

    const state = await hostState(t.page);
    assert.equal(state.tokenCalls, calls, 'getToken was not called for the attacker');
    assert.equal(env.host.tokenRequests.length, tokenRequests);
    assert.deepEqual(JSON.parse(await attacker.evaluate('JSON.stringify(window.portMessages)') as string), [], 'nothing came back on the attacker\'s port');
    assert.deepEqual(state.events.map((e) => e.type), ['ready', 'signed-out'], 'the fake events were not passed on; the real ones were');
    assert.ok(state.messages.some((m) => m.origin === env.other.origin && m.ports === 1 && !m.fromApp), 'the fake hello did reach the host window');
  });

  it('107: when the host\'s iframe itself shows another origin that says hello, the SDK ignores it by exact origin: no getToken, nothing on its port', async () => {
    const t = await tab();
    await t.page.goto(url(env.host.origin, '/host.html', { user: 'alice', src: `${env.other.origin}/attacker.html?auto=1` }));
    await eventually(() => t.consoleAt.some((line) => line.text.includes('embedgate: ignored a hello from')), 10_000);
    const warning = t.consoleAt.find((line) => line.text.includes('embedgate: ignored a hello from'));
    assert.equal(warning?.text, `embedgate: ignored a hello from ${env.other.origin}; the gateway option says ${env.gwOrigin}`);
    const attacker = t.page.frames().find((f) => f.url().startsWith(`${env.other.origin}/attacker.html`));
    assert.ok(attacker !== undefined);
    const state = await hostState(t.page);
    assert.ok(state.messages.some((m) => m.fromApp && m.origin === env.other.origin), 'the hello came from the attached iframe\'s window');
    assert.equal(state.tokenCalls, 0, 'getToken never called');
    assert.deepEqual(state.events, []);
    assert.deepEqual(JSON.parse(await attacker.evaluate('JSON.stringify(window.portMessages)') as string), []);
  });

  it('109: a foreign site frames the app path in a hidden iframe: refused by frame-ancestors, and the session cookie is not sent', async (ctx) => {
    const t = await tabWithSession();
    const posts = sessionPosts();
    const upstream = env.app.requests.length;
    const from = t.consoleAt.length;
    const target = `${env.gwOrigin}/sales/`;
    const navigation = t.page.waitForRequest((r) => r.url() === target && r.isNavigationRequest());
    await t.page.goto(url(env.foreign.origin, '/frame.html', { hidden: '1', src: target }));
    const request = await navigation;
    const headers = await rawHeaders(request);
    assert.equal(headers.cookie, undefined, `no cookie on the hidden frame's request (got ${headers.cookie})`);
    assert.equal(headers['sec-fetch-dest'], 'iframe');
    assert.equal((await request.response())?.status(), 401, 'without the cookie the gateway answers with the bootstrap');
    assert.equal(await refusal(t, from), env.host.origin);
    await t.page.waitForFunction('window.frameLoads >= 1');
    assert.ok(gatewayFrame(t.page, env.gwOrigin) === undefined);
    assert.deepEqual((await hostState(t.page)).messages, []);
    assert.equal(sessionPosts(), posts, 'no session POST');
    assert.equal(env.app.requests.length, upstream, 'the upstream received nothing');
    assert.equal((await t.context.cookies()).filter((c) => c.name === SESSION_COOKIE).length, 1, 'the session still exists in the host\'s partition');

    // For the record: another origin of the host's own site shares the partition (CHIPS keys by site), so there the
    // cookie does go out with the frame's navigation; the response is still refused by frame-ancestors.
    const sameSiteFrom = t.consoleAt.length;
    const sameSite = t.page.waitForRequest((r) => r.url() === target && r.isNavigationRequest());
    await t.page.goto(url(env.other.origin, '/frame.html', { hidden: '1', src: target }));
    const sameSiteHeaders = await rawHeaders(await sameSite);
    await refusal(t, sameSiteFrom);
    assert.ok(gatewayFrame(t.page, env.gwOrigin) === undefined);
    ctx.diagnostic(`same-site other origin (${env.other.origin}): cookie ${sameSiteHeaders.cookie?.includes(SESSION_COOKIE) ? 'sent' : 'not sent'}, upstream requests +${env.app.requests.length - upstream}`);
  });
});
