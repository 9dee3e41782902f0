// The Dash-protocol sample app with Dash's real front end: Debian's Chromium loads the page through a small stand-in
// for the gateway (it forwards every request with X-Forwarded-User/Groups and answers 403 itself to non-admins'
// `payroll.children` callbacks), and dash-renderer, dcc and plotly.js, served from npm, run the dashboard. The
// protocol's error paths are checked with raw HTTP requests.
import assert from 'node:assert/strict';
import { createServer, request, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import type { Browser, Page, Response } from 'playwright-core';
import { launchChromium, openTab, type BrowserTab } from '../../../packages/embedgate/test/support/chromium.js';
import { startDashApp, type SampleApp } from '../src/dash-app/index.js';
import { PAYROLL_PLACEHOLDER } from '../src/dash-app/layout.js';

interface Who {
  user: string;
  groups: string[];
}

let app: SampleApp;
let gateway: { url: string; server: Server };
let browser: Browser;
/** The identity the stand-in gateway forwards; each test sets it before it loads the page. */
let who: Who = { user: 'alice', groups: ['sales', 'admin'] };

/** What the gateway does for this app, reduced to the two things the app relies on. */
async function startGatewayStandIn(target: string): Promise<{ url: string; server: Server }> {
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      const body = Buffer.concat(chunks);
      if (req.url?.endsWith('/_dash-update-component') && !who.groups.includes('admin')) {
        const { output } = JSON.parse(body.toString('utf8')) as { output?: unknown };
        if (output === 'payroll.children') {
          res.writeHead(403, { 'content-type': 'application/json' }).end('{"error":"forbidden"}');
          return;
        }
      }
      const headers = { ...req.headers, 'x-forwarded-user': who.user, 'x-forwarded-groups': who.groups.join(',') };
      const upstream = request(`${target}${req.url}`, { method: req.method, headers }, (answer) => {
        res.writeHead(answer.statusCode ?? 502, answer.headers);
        answer.pipe(res);
      });
      upstream.on('error', () => res.destroy());
      upstream.end(body);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, server };
}

/** A request with its path sent exactly as written (fetch would normalize `..`). */
function raw(method: string, path: string, body?: string): Promise<{ status: number; type: string; text: string }> {
  return new Promise((resolve, reject) => {
    const req = request(`${app.url}${path}`, { method, headers: { 'content-type': 'application/json' } }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => (text += chunk));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, type: res.headers['content-type'] ?? '', text }));
    });
    req.on('error', reject);
    req.end(body);
  });
}

before(async () => {
  app = await startDashApp({ port: 0 });
  gateway = await startGatewayStandIn(app.url);
  browser = await launchChromium();
});

after(async () => {
  await browser?.close();
  gateway?.server.closeAllConnections();
  await new Promise((resolve) => gateway?.server.close(resolve));
  await app?.close();
});

/** Opens the dashboard through the stand-in gateway and waits until the chart is drawn. */
async function openDashboard(): Promise<{ tab: BrowserTab; paths: string[] }> {
  const tab = await openTab(browser);
  const paths: string[] = [];
  tab.page.on('request', (req) => paths.push(new URL(req.url()).pathname));
  await tab.page.goto(`${gateway.url}/sales/`);
  await tab.page.locator('#chart .main-svg').first().waitFor();
  return { tab, paths };
}

function callbackAnswer(page: Page, output: string): Promise<Response> {
  return page.waitForResponse(
    (res) => res.url().endsWith('/sales/_dash-update-component') && res.request().postDataJSON()?.output === output,
  );
}

async function chooseRegion(page: Page, region: string): Promise<void> {
  await page.locator('#region').click();
  await page.getByRole('option', { name: region }).click();
}

describe('Dash-protocol sample app', () => {
  it('renders the dashboard with the real dash-renderer, everything under /sales/', async () => {
    who = { user: 'alice', groups: ['sales', 'admin'] };
    const { tab, paths } = await openDashboard();
    try {
      const { page } = tab;
      assert.equal(await page.locator('#title').textContent(), 'Sales dashboard');
      assert.equal(await page.locator('#signed-in').textContent(), 'Signed in as alice (groups: sales, admin)');
      assert.equal(await page.locator('#region').innerText(), 'North');
      await page.locator('#chart .gtitle', { hasText: 'North: monthly sales (k$)' }).waitFor();
      assert.equal(await page.locator('#chart .bars .point').count(), 12);
      await page.locator('#payroll-table').waitFor();
      assert.equal(await page.locator('#payroll-table tbody tr').count(), 4);
      assert.match(await page.locator('#payroll-table').innerText(), /Ada Moreau\s+Regional manager\s+\$98,000/);

      const reloaded = callbackAnswer(page, 'payroll.children');
      await page.locator('#show-payroll').click();
      const answer = await reloaded;
      assert.equal(answer.status(), 200);
      assert.deepEqual(answer.request().postDataJSON().inputs, [{ id: 'show-payroll', property: 'n_clicks', value: 1 }]);

      const outside = paths.filter((path) => !path.startsWith('/sales/'));
      assert.deepEqual(outside, [], 'every request of the page stays under the prefix');
      assert.ok(paths.some((path) => path.includes('/_dash-component-suites/plotly/')), 'plotly.js came from the app');
      assert.deepEqual(tab.errors, []);
    } finally {
      await tab.close();
    }
  });

  it('runs _dash-update-component when another region is chosen and redraws the chart', async () => {
    who = { user: 'alice', groups: ['sales', 'admin'] };
    const { tab } = await openDashboard();
    try {
      const { page } = tab;
      await page.locator('#chart .gtitle', { hasText: 'North' }).waitFor();
      const northBars = await page.locator('#chart .bars .point path').evaluateAll((bars) => bars.map((bar) => bar.getAttribute('d')));
      const updated = callbackAnswer(page, 'chart.figure');
      await chooseRegion(page, 'East');
      const answer = await updated;
      assert.equal(answer.status(), 200);
      const sent = answer.request().postDataJSON() as Record<string, unknown>;
      assert.deepEqual(sent.inputs, [{ id: 'region', property: 'value', value: 'East' }]);
      assert.deepEqual(sent.changedPropIds, ['region.value']);
      const body = (await answer.json()) as { multi: boolean; response: { chart: { figure: { data: Array<{ name: string }> } } } };
      assert.equal(body.multi, true);
      assert.equal(body.response.chart.figure.data[0]?.name, 'East');

      await page.locator('#chart .gtitle', { hasText: 'East: monthly sales (k$)' }).waitFor();
      const eastBars = await page.locator('#chart .bars .point path').evaluateAll((bars) => bars.map((bar) => bar.getAttribute('d')));
      assert.notDeepEqual(eastBars, northBars);
      assert.deepEqual(tab.errors, []);
    } finally {
      await tab.close();
    }
  });

  it('keeps working when the gateway refuses payroll.children with 403', async () => {
    who = { user: 'bob', groups: ['sales'] };
    const tab = await openTab(browser);
    try {
      const { page } = tab;
      const refused = callbackAnswer(page, 'payroll.children');
      await page.goto(`${gateway.url}/sales/`);
      assert.equal((await refused).status(), 403);
      assert.equal(await page.locator('#signed-in').textContent(), 'Signed in as bob (groups: sales)');
      assert.equal(await page.locator('#payroll').textContent(), PAYROLL_PLACEHOLDER);
      assert.equal(await page.locator('#payroll-table').count(), 0);

      await page.locator('#chart .gtitle', { hasText: 'North' }).waitFor();
      await chooseRegion(page, 'West');
      await page.locator('#chart .gtitle', { hasText: 'West: monthly sales (k$)' }).waitFor();
      assert.equal(await page.locator('#payroll').textContent(), PAYROLL_PLACEHOLDER);
      assert.deepEqual(tab.errors, []);
    } finally {
      await tab.close();
    }
  });

  it('says "anonymous" when no identity is forwarded', async () => {
    const layout = await fetch(`${app.url}/sales/_dash-layout`).then((res) => res.text());
    assert.match(layout, /"Signed in as anonymous"/);
  });

  it('answers bad requests with a 4xx JSON error, never a 500', async () => {
    const update = '/sales/_dash-update-component';
    const cases: Array<[string, string, string | undefined, number]> = [
      ['POST', update, '{"output": "chart.figure", "inputs": [', 400],
      ['POST', update, '[]', 400],
      ['POST', update, '{"output": "chart.figure"}', 400],
      ['POST', update, '{"output": "chart.figure", "inputs": []}', 400],
      ['POST', update, '{"output": "chart.figure", "inputs": [{"id": "region", "property": "value", "value": "Atlantis"}]}', 400],
      ['POST', update, '{"output": "salaries.children", "inputs": []}', 404],
      ['GET', update, undefined, 405],
      ['POST', '/sales/_dash-layout', '{}', 405],
      ['GET', '/sales/nothing-here', undefined, 404],
      ['GET', '/elsewhere/', undefined, 404],
      ['GET', '/sales/_dash-component-suites/dash/dcc/../../../../package.json', undefined, 404],
      ['GET', '/sales/_dash-component-suites/dash/dcc/%2e%2e%2fpackage.json', undefined, 404],
      ['GET', '/sales/_dash-component-suites/dash/dcc/no-such-chunk.js', undefined, 404],
    ];
    for (const [method, path, body, status] of cases) {
      const res = await raw(method, path, body);
      assert.equal(res.status, status, `${method} ${path} ${body ?? ''}`);
      assert.match(res.type, /^application\/json/);
      assert.equal(typeof (JSON.parse(res.text) as { error?: unknown }).error, 'string');
    }
  });

  it('answers a well-formed callback request like Dash does', async () => {
    const res = await raw('POST', '/sales/_dash-update-component', JSON.stringify({
      output: 'payroll.children',
      outputs: { id: 'payroll', property: 'children' },
      inputs: [{ id: 'show-payroll', property: 'n_clicks', value: 0 }],
      changedPropIds: [],
    }));
    assert.equal(res.status, 200);
    const body = JSON.parse(res.text) as { multi: boolean; response: { payroll: { children: { type: string; namespace: string } } } };
    assert.equal(body.multi, true);
    assert.deepEqual(
      { type: body.response.payroll.children.type, namespace: body.response.payroll.children.namespace },
      { type: 'Table', namespace: 'dash_html_components' },
    );
  });

  it('rejects with the listening error when the port is taken', async () => {
    const port = Number(new URL(app.url).port);
    await assert.rejects(startDashApp({ port }), { code: 'EADDRINUSE' });
  });
});
