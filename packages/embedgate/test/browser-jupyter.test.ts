// A real third-party app in a cross-site iframe: Debian's Jupyter Notebook behind the gateway at /jupyter/, framed by a
// host page on http://localhost:<port> with the host SDK, in Chromium with third-party cookies blocked. The notebook
// loads, a kernel runs a cell over its WebSocket (through the gateway, on the embed session), Jupyter sees the user
// from the gateway's assertion, no Jupyter path or socket answers without a token or session, and Jupyter's own XSRF
// cookie is shown to be unusable in such a frame (the reason docs/apps/jupyter.md turns that check off).
import assert from 'node:assert/strict';
import { after, afterEach, before, describe, it } from 'node:test';
import type { Browser } from 'playwright-core';
import { launchChromium, openTab, type BrowserTab } from './support/chromium.js';
import { gatewayFrame, hostState, startSite, textMatching, waitForHostEvent, type Site } from './support/embed-browser-env.js';
import { eventually, startGateway, type RunningGateway } from './support/gateway.js';
import { startHostileOp, type HostileOp } from './support/hostile-op.js';
import { freePort } from './support/idp.js';
import { startJupyter, TEST_CELL, TEST_NOTEBOOK, type RunningJupyter } from './support/jupyter.js';
import { rawRequest } from './support/raw-http.js';
import { openWebSocket } from './support/ws-client.js';

const PREFIX = '/jupyter/';
/** A second server with Jupyter's XSRF check left on, to show what it breaks. */
const XSRF_PREFIX = '/jupyter-xsrf/';
const SESSION_COOKIE = '__Host-embedgate';
/** Jupyter's first page load and a kernel start take a few seconds on a small machine. */
const UI_TIMEOUT = 30_000;
/** Jupyter's page always tries this optional extension (ipywidgets) and logs a warning when it is missing. */
const OPTIONAL_WIDGETS = /\/nbextensions\/widgets\/notebook\/js\/extension\.js/;

let op: HostileOp;
let jupyter: RunningJupyter;
let xsrfJupyter: RunningJupyter;
let host: Site;
let gw: RunningGateway;
let gwOrigin: string;
let browser: Browser;
const tabs: BrowserTab[] = [];

before(async () => {
  op = await startHostileOp();
  const gwPort = await freePort();
  gwOrigin = `http://127.0.0.1:${gwPort}`;
  [jupyter, xsrfJupyter, host, browser] = await Promise.all([
    startJupyter({ gateway: gwOrigin, app: 'jupyter', prefix: PREFIX }),
    startJupyter({ gateway: gwOrigin, app: 'jupyter-xsrf', prefix: XSRF_PREFIX, checkXsrf: true }),
    startSite({ host: 'localhost', gateway: gwOrigin, op }),
    launchChromium(),
  ]);
  gw = await startGateway({
    listen: `127.0.0.1:${gwPort}`,
    public_url: gwOrigin,
    issuers: [{ issuer: op.issuer, audiences: [op.audience] }],
    embed: { allowed_origins: [host.origin] },
    sessions: { store: 'memory:' },
    apps: [
      { name: 'jupyter', prefix: PREFIX, upstream: jupyter.url, allow: { roles: ['analyst', 'admin'] } },
      { name: 'jupyter-xsrf', prefix: XSRF_PREFIX, upstream: xsrfJupyter.url, allow: { roles: ['analyst', 'admin'] } },
    ],
  });
  await eventually(async () => (await gw.fetch('/readyz')).status === 200, 10_000);
});

afterEach(async () => {
  for (const opened of tabs.splice(0)) await opened.close().catch(() => undefined);
});

after(async () => {
  await browser?.close();
  await gw?.close();
  await host?.close();
  await Promise.all([jupyter?.stop(), xsrfJupyter?.stop()]);
  await op?.close();
});

async function tab(): Promise<BrowserTab> {
  const opened = await openTab(browser);
  tabs.push(opened);
  return opened;
}

/** Opens the host page framing `path` through the gateway for alice, and waits until the frame script says ready. */
async function embedded(path: string): Promise<{ t: BrowserTab; frame: NonNullable<ReturnType<typeof gatewayFrame>> }> {
  const t = await tab();
  await t.page.goto(`${host.origin}/host.html?user=alice&app=${encodeURIComponent(path)}`);
  await waitForHostEvent(t.page, 'ready', 1, UI_TIMEOUT);
  const prefix = `/${path.split('/')[1] ?? ''}/`;
  const frame = gatewayFrame(t.page, gwOrigin, prefix);
  assert.ok(frame !== undefined, `the iframe shows Jupyter (frames: ${t.page.frames().map((f) => f.url()).join(', ')})`);
  return { t, frame };
}

/** Gateway access-log entries (method, path, status) so far. */
function gatewayRequests(): Array<{ method: string; path: string; status: number }> {
  return gw.logs.flatMap((line) => {
    const entry = JSON.parse(line) as { msg?: string; method?: string; path?: string; status?: number };
    return entry.msg === 'request' && entry.method !== undefined && entry.path !== undefined && entry.status !== undefined
      ? [{ method: entry.method, path: entry.path, status: entry.status }] : [];
  });
}

const bearerFor = (user: string, roles: string[]): Promise<string> => op.sign(op.claims({ sub: user, roles }));
const JSON_TYPE = { 'content-type': 'application/json' };

describe('Jupyter Notebook in a cross-site iframe behind the gateway (Chromium, third-party cookies blocked)', () => {
  it('Jupyter\'s file list and the notebook load signed in, a kernel runs a cell over its WebSocket, the notebook saves, and Jupyter sees the user', async () => {
    const { t, frame } = await embedded(`${PREFIX}tree`);

    // Jupyter's home page lists the notebook; opening it stays in the frame (custom.js), where the session is.
    const link = frame.locator('#notebook_list a.item_link', { hasText: TEST_NOTEBOOK });
    await link.waitFor({ timeout: UI_TIMEOUT });
    await link.click();
    await waitForHostEvent(t.page, 'ready', 2, UI_TIMEOUT);
    assert.equal(frame.url(), `${gwOrigin}${PREFIX}notebooks/${TEST_NOTEBOOK}`);
    assert.equal(t.context.pages().length, 1, 'no new tab was opened');

    // The notebook UI: its name, the prepared cell, and a kernel that came up idle over its WebSocket.
    assert.equal(await textMatching(frame, '#notebook_name', /\S/, UI_TIMEOUT), TEST_NOTEBOOK.replace(/\.ipynb$/, ''));
    assert.match(await frame.locator('.code_cell .CodeMirror').first().innerText(), /print\(6 \* 7\)/);
    await frame.locator('#kernel_indicator_icon.kernel_idle_icon').waitFor({ timeout: UI_TIMEOUT });

    // Run the cell as a user does: the execute request and its output travel over the kernel's WebSocket.
    await frame.locator('.code_cell .CodeMirror').first().click();
    await t.page.keyboard.press('Shift+Enter');
    assert.equal((await textMatching(frame, '.output_area .output_stdout', /\S/, UI_TIMEOUT)).trim(), '42', `${TEST_CELL} printed 42`);
    assert.equal(await frame.locator('.code_cell .input_prompt').first().innerText(), 'In\u00a0[1]:');

    // Saving is a PUT through the gateway: the output reaches the file on disk.
    await frame.locator('button[data-jupyter-action="jupyter-notebook:save-notebook"]').click();
    await eventually(() => jupyter.readNotebook().includes('"42\\n"'), UI_TIMEOUT);
    // Saving ends with a checkpoint (a POST); after it the page is quiet.
    await eventually(() => jupyter.requests().includes(`201 POST ${PREFIX}api/contents/${TEST_NOTEBOOK}/checkpoints`), UI_TIMEOUT);

    // Jupyter got its user from the gateway's signed assertion on the page, the API and the kernel socket. The socket
    // cannot carry a bearer (browsers send none on WebSockets): it went through the gateway on the session cookie.
    const seen = jupyter.identities();
    const paths = new Set(seen.map((s) => `${s.method} ${s.path.replace(/[0-9a-f-]{36}/g, '<id>')}`));
    for (const expected of [
      `GET ${PREFIX}notebooks/${TEST_NOTEBOOK}`,
      `GET ${PREFIX}api/contents/${TEST_NOTEBOOK}`,
      `POST ${PREFIX}api/sessions`,
      `GET ${PREFIX}api/kernels/<id>/channels`,
      `PUT ${PREFIX}api/contents/${TEST_NOTEBOOK}`,
    ]) assert.ok(paths.has(expected), `Jupyter identified ${expected}: ${[...paths].join(', ')}`);
    assert.deepEqual([...new Set(seen.map((s) => `${s.user} ${s.forwardedUser} ${s.groups}`))], ['alice alice analyst'],
      'every request Jupyter identified was alice (assertion sub = X-Forwarded-User), with her roles');

    // Through the gateway nothing failed but the bootstrap's 401 and Jupyter's optional widgets extension.
    const failed = gatewayRequests().filter((r) => r.path.startsWith(PREFIX) && r.status >= 400 && !OPTIONAL_WIDGETS.test(r.path));
    assert.deepEqual(failed, [{ method: 'GET', path: `${PREFIX}tree`, status: 401 }], 'only the bootstrap page was refused');
    assert.deepEqual(t.errors, [], 'no uncaught errors in any frame');
    const unexpected = t.consoleAt.filter((c) => (c.type === 'error' || /embedgate|violates|Refused|blocked/i.test(c.text))
      && !(c.url === `${gwOrigin}${PREFIX}tree` && /status of 401/.test(c.text)) // the bootstrap page
      && !OPTIONAL_WIDGETS.test(c.url) && !OPTIONAL_WIDGETS.test(c.text)
      && c.url !== `${host.origin}/favicon.ico`);
    assert.deepEqual(unexpected, [], 'no other console errors, refusals or CSP violations');

    // The only cookie is the gateway's partitioned one (Jupyter's _xsrf cookie was dropped, see the last test).
    const cookies = await t.context.cookies();
    assert.deepEqual(cookies.map((c) => c.name), [SESSION_COOKIE], `cookies: ${cookies.map((c) => c.name).join(', ')}`);
    assert.equal(cookies[0]?.partitionKey, 'http://localhost');
    assert.deepEqual((await hostState(t.page)).events.map((e) => e.type), ['ready', 'ready'], 'ready for the file list, then for the notebook');

    // What stands in for Jupyter's XSRF check: with this very session cookie, a request that changes state is refused
    // by the gateway unless it comes from the gateway's own origin, and the kernel socket only opens for allowed origins.
    const session = `${SESSION_COOKIE}=${cookies[0]?.value ?? ''}`;
    const requestsBefore = jupyter.requests().length;
    const startKernel = { method: 'POST', body: `{"path":"${TEST_NOTEBOOK}","type":"notebook","kernel":{"name":"python3"}}` };
    const crossSite: Array<Record<string, string>> = [{ origin: host.origin }, { origin: 'null' }, {}, { 'sec-fetch-site': 'same-site' }];
    for (const headers of crossSite) {
      const refused = await fetch(`${gwOrigin}${PREFIX}api/sessions`, { ...startKernel, headers: { ...JSON_TYPE, ...headers, cookie: session } });
      assert.equal(refused.status, 403, `POST with the session cookie and ${JSON.stringify(headers)}`);
      assert.equal(((await refused.json()) as { error?: string }).error, 'cross_site_request');
    }
    const kernels = await fetch(`${gwOrigin}${PREFIX}api/kernels`, { headers: { cookie: session, origin: gwOrigin } });
    assert.equal(kernels.status, 200, 'the same cookie with the gateway\'s Origin works');
    const [running] = (await kernels.json()) as Array<{ id: string }>;
    assert.ok(running !== undefined);
    const channels = `${gwOrigin.replace('http:', 'ws:')}${PREFIX}api/kernels/${running.id}/channels`;
    const foreign = await openWebSocket(channels, { cookie: session, origin: 'http://attacker.example' });
    if ('ws' in foreign) foreign.ws.terminate();
    assert.ok('status' in foreign && foreign.status === 403, 'the gateway refuses a kernel socket from an origin it does not allow');
    await eventually(() => jupyter.requests().slice(requestsBefore).includes(`200 GET ${PREFIX}api/kernels`), 5000);
    const reached = jupyter.requests().slice(requestsBefore);
    assert.deepEqual(reached.filter((line) => line.includes('api/sessions')), [], 'none of the refused POSTs reached Jupyter');
    // The host page's origin may open sockets at the gateway, but Jupyter's own allow_origin (the gateway's origin
    // only) still refuses it; the gateway reports the upstream's refusal as 502.
    const fromHost = await openWebSocket(channels, { cookie: session, origin: host.origin });
    if ('ws' in fromHost) fromHost.ws.terminate();
    assert.ok('status' in fromHost && fromHost.status === 502, `the kernel socket from the host page's origin did not open: ${'status' in fromHost ? fromHost.status : 'open'}`);
    await eventually(() => jupyter.logs.some((line) => line.includes(`Blocking Cross Origin WebSocket Attempt.  Origin: ${host.origin}`)), 5000);
  });

  it('without a token or session every Jupyter path and the kernel WebSocket get 401 from the gateway, and Jupyter refuses callers without an assertion', async () => {
    // A real kernel, made with a bearer token (the same API the notebook uses).
    const bearer = await bearerFor('bob', ['admin']);
    const created = await gw.fetch(`${PREFIX}api/kernels`, { method: 'POST', token: bearer, headers: JSON_TYPE, body: '{"name":"python3"}' });
    assert.equal(created.status, 201, await created.clone().text());
    const kernel = (await created.json()) as { id: string };
    await eventually(() => jupyter.requests().includes(`201 POST ${PREFIX}api/kernels`), 5000);
    const requestsBefore = jupyter.requests().length;
    const identitiesBefore = jupyter.identities().length;

    const checks: Array<[string, RequestInit]> = [
      [PREFIX, {}],
      [`${PREFIX}tree`, {}],
      [`${PREFIX}notebooks/${TEST_NOTEBOOK}`, {}],
      [`${PREFIX}edit/${TEST_NOTEBOOK}`, {}],
      [`${PREFIX}files/${TEST_NOTEBOOK}`, {}],
      [`${PREFIX}nbconvert/html/${TEST_NOTEBOOK}`, {}],
      [`${PREFIX}api`, {}],
      [`${PREFIX}api/status`, {}],
      [`${PREFIX}api/kernels`, {}],
      [`${PREFIX}api/kernels`, { method: 'POST', headers: JSON_TYPE, body: '{"name":"python3"}' }],
      [`${PREFIX}api/kernels/${kernel.id}`, {}],
      [`${PREFIX}api/kernels/${kernel.id}`, { method: 'DELETE' }],
      [`${PREFIX}api/kernels/${kernel.id}/restart`, { method: 'POST' }],
      [`${PREFIX}api/kernels/${kernel.id}/interrupt`, { method: 'POST' }],
      [`${PREFIX}api/sessions`, {}],
      [`${PREFIX}api/sessions`, { method: 'POST', headers: JSON_TYPE, body: `{"path":"${TEST_NOTEBOOK}","type":"notebook","kernel":{"name":"python3"}}` }],
      [`${PREFIX}api/contents`, {}],
      [`${PREFIX}api/contents/${TEST_NOTEBOOK}`, {}],
      [`${PREFIX}api/contents/${TEST_NOTEBOOK}`, { method: 'PUT', headers: JSON_TYPE, body: '{"type":"file","format":"text","content":"x"}' }],
      [`${PREFIX}api/contents/${TEST_NOTEBOOK}`, { method: 'DELETE' }],
      [`${PREFIX}api/kernelspecs`, {}],
      [`${PREFIX}api/config/notebook`, {}],
      [`${PREFIX}api/nbconvert`, {}],
      [`${PREFIX}api/terminals`, {}],
      [`${PREFIX}api/shutdown`, { method: 'POST' }],
      [`${PREFIX}kernelspecs/python3/logo-64x64.png`, {}],
      [`${PREFIX}static/base/js/namespace.js`, {}],
      [`${PREFIX}static/components/requirejs/require.js`, {}],
      [`${PREFIX}nbextensions/widgets/notebook/js/extension.js`, {}],
      [`${PREFIX}custom/custom.js`, {}],
      [`${PREFIX}metrics`, {}],
      [`${PREFIX}login`, {}],
      [`${PREFIX}logout`, {}],
    ];
    for (const [path, init] of checks) {
      // As a page of another site would send them, and with the gateway's own Origin (what the framed app sends).
      for (const origin of [host.origin, gwOrigin]) {
        const response = await fetch(`${gwOrigin}${path}`, { ...init, headers: { ...init.headers as Record<string, string>, origin }, redirect: 'manual' });
        const body = await response.text();
        const what = `${init.method ?? 'GET'} ${path} (Origin ${origin})`;
        assert.equal(response.status, 401, `${what}: ${body}`);
        assert.match(response.headers.get('www-authenticate') ?? '', /^Bearer /, what);
        assert.deepEqual(response.headers.getSetCookie(), [], `${what}: no cookie`);
        assert.equal((JSON.parse(body) as { error?: string }).error, 'missing_token', what);
      }
    }
    // An iframe navigation without a session gets the gateway's bootstrap page, never Jupyter's.
    const bootstrap = await rawRequest(gwOrigin, `${PREFIX}tree`, ['Sec-Fetch-Dest: iframe', 'Sec-Fetch-Mode: navigate']);
    assert.equal(bootstrap.status, 401);
    assert.match(bootstrap.body, /embedgate-status/);
    // (It names the app's prefix, the path asked for, as its service worker's scope; nothing of Jupyter's.)
    assert.doesNotMatch(bootstrap.body.replace(`data-embedgate-scope="${PREFIX}"`, ''), /Jupyter|notebook/i);
    // The kernel WebSocket: no credentials with the gateway's Origin, the host's, or none; a made-up session cookie.
    const channels = `${gwOrigin.replace('http:', 'ws:')}${PREFIX}api/kernels/${kernel.id}/channels`;
    const anonymous: Array<Record<string, string>> = [{ origin: gwOrigin }, { origin: host.origin }, {}, { origin: gwOrigin, cookie: `${SESSION_COOKIE}=made-up` }];
    for (const headers of anonymous) {
      const opened = await openWebSocket(channels, headers);
      if ('ws' in opened) opened.ws.terminate();
      assert.ok('status' in opened && opened.status === 401, `the kernel WebSocket was refused with 401 (${JSON.stringify(headers)})`);
    }

    // With a bearer the same API works, and the page's framing rules are the gateway's: Jupyter's
    // frame-ancestors 'self' is replaced by the allowed host, the rest of its policy kept.
    const listed = await gw.fetch(`${PREFIX}api/kernels`, { token: bearer });
    assert.equal(listed.status, 200);
    assert.ok(((await listed.json()) as Array<{ id: string }>).some((k) => k.id === kernel.id));
    const page = await gw.fetch(`${PREFIX}tree`, { token: bearer });
    assert.equal(page.status, 200);
    const csp = page.headers.get('content-security-policy') ?? '';
    assert.match(csp, new RegExp(`frame-ancestors ${host.origin}$`), csp);
    assert.match(csp, /report-uri \/jupyter\/api\/security\/csp-report/, csp);
    assert.doesNotMatch(csp, /'self'/, csp);

    // Jupyter logged nothing from the refused requests: the next thing it saw was the bearer's kernel list.
    await eventually(() => jupyter.requests().length > requestsBefore, 5000);
    assert.deepEqual(jupyter.requests().slice(requestsBefore, requestsBefore + 1), [`200 GET ${PREFIX}api/kernels`],
      'none of the refused requests reached Jupyter');
    assert.ok(jupyter.identities().slice(identitiesBefore).every((s) => s.user === 'bob'));

    // A process that reaches Jupyter's port directly, even with forged identity headers, gets nothing.
    const forged = { 'x-forwarded-user': 'bob', 'x-forwarded-groups': 'admin', 'x-embedgate-assertion': 'e30.e30.' };
    for (const [path, init] of [
      [`${PREFIX}api/kernels`, {}],
      [`${PREFIX}api/sessions`, { method: 'POST', headers: JSON_TYPE, body: '{"path":"x.ipynb","type":"notebook","kernel":{"name":"python3"}}' }],
      [`${PREFIX}api/contents/${TEST_NOTEBOOK}`, {}],
    ] as Array<[string, RequestInit]>) {
      const direct = await fetch(`${jupyter.url}${path}`, { ...init, headers: { ...init.headers as Record<string, string>, ...forged }, redirect: 'manual' });
      assert.equal(direct.status, 403, `direct ${init.method ?? 'GET'} ${path}: ${await direct.text()}`);
    }
    const tree = await fetch(`${jupyter.url}${PREFIX}tree`, { headers: forged, redirect: 'manual' });
    assert.equal(tree.status, 302, 'Jupyter sends an unidentified page request to its login page');
    assert.equal((await fetch(`${jupyter.url}${PREFIX}login`)).status, 403, 'which refuses: sign in through embedgate');
    const direct = await openWebSocket(`${jupyter.url.replace('http:', 'ws:')}${PREFIX}api/kernels/${kernel.id}/channels`, forged);
    if ('ws' in direct) direct.ws.terminate();
    assert.ok('status' in direct && direct.status === 403, 'the kernel socket refuses a direct caller');

    const deleted = await gw.fetch(`${PREFIX}api/kernels/${kernel.id}`, { method: 'DELETE', token: bearer });
    assert.equal(deleted.status, 204);
  });

  it('with Jupyter\'s own XSRF check on, the framed notebook cannot start a kernel: the browser drops the _xsrf cookie', async () => {
    const { t } = await embedded(`${XSRF_PREFIX}notebooks/${TEST_NOTEBOOK}`);
    await eventually(() => gatewayRequests().some((r) => r.method === 'POST' && r.path === `${XSRF_PREFIX}api/sessions`), UI_TIMEOUT);
    const started = gatewayRequests().filter((r) => r.method === 'POST' && r.path === `${XSRF_PREFIX}api/sessions`);
    assert.deepEqual(started.map((r) => r.status), [403], 'POST /api/sessions (start a kernel) was refused by Jupyter');
    await eventually(() => xsrfJupyter.logs.some((line) => line.includes('\'_xsrf\' argument missing from POST')), 5000);
    // Jupyter did send the cookie with the page; with third-party cookies blocked the browser kept none of it.
    const sent = await gw.fetch(`${XSRF_PREFIX}tree`, { token: await bearerFor('alice', ['analyst']) });
    assert.match(sent.headers.getSetCookie().join('\n'), /^_xsrf=[^;]+; expires=[^;]+; Path=\/$/m, 'Jupyter sets _xsrf without SameSite, Secure or Partitioned');
    assert.deepEqual((await t.context.cookies()).map((c) => c.name), [SESSION_COOKIE]);
    assert.equal(xsrfJupyter.kernelFiles().length, 0, 'no kernel was started');
  });
});
