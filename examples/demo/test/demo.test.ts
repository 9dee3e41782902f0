// The demo as a newcomer meets it: `embedgate demo` (what `npm start` runs) started as a real process, its portal in
// Chromium with third-party cookies blocked, signing in as each demo user through the real IdP, the apps embedded
// through the real gateway, the portal ↔ dashboard bridge (the region picker outside the frame, the selection panel),
// the attacker's view, sign-out, a port in use and Ctrl-C.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { Browser, FrameLocator, Locator, Page, Response } from 'playwright-core';
import { launchChromium, openTab, type BrowserTab } from '../../../packages/embedgate/test/support/chromium.js';
import { spawnCli } from '../../../packages/embedgate/test/support/cli.js';
import { eventually } from '../../../packages/embedgate/test/support/gateway.js';
import { freePort } from '../../../packages/embedgate/test/support/idp.js';
import { PAYROLL_PLACEHOLDER } from '../src/dash-app/layout.js';

/** Where to save a picture of the portal with the apps (docs/demo-portal.png is made this way). */
const SCREENSHOT = process.env.EMBEDGATE_DEMO_SCREENSHOT;

interface DemoUser { username: string; password: string; roles: string }

let dataDir: string;
let ports: Record<'portal' | 'gateway' | 'idp' | 'dash' | 'live', number>;
let demo: ReturnType<typeof spawnCli>;
let users: Map<string, DemoUser>;
let browser: Browser;
let portal: string;

const portArgs = (): string[] => Object.entries(ports).flatMap(([name, port]) => [`--${name}-port`, String(port)]);

before(async () => {
  dataDir = mkdtempSync(join(tmpdir(), 'embedgate-demo-'));
  ports = { portal: await freePort(), gateway: await freePort(), idp: await freePort(), dash: await freePort(), live: await freePort() };
  demo = spawnCli(['demo', '--data-dir', dataDir, ...portArgs()]);
  await eventually(() => demo.output().includes('Ctrl-C stops it') || demo.child.exitCode !== null, 30_000);
  assert.equal(demo.child.exitCode, null, `the demo stopped: ${demo.output()}`);
  portal = `http://localhost:${ports.portal}`;
  users = new Map(demo.output().split('\n').flatMap((line) => {
    const match = /^ {2}(admin|analyst|guest)\s+(\S+)\s+(.+)$/.exec(line);
    return match === null ? [] : [[match[1] as string, { username: match[1] as string, password: match[2] as string, roles: (match[3] as string).trim() }]];
  }));
  browser = await launchChromium();
});

after(async () => {
  await browser?.close();
  if (demo?.child.exitCode === null) await demo.stop();
  rmSync(dataDir, { recursive: true, force: true });
});

function user(name: string): DemoUser {
  const found = users.get(name);
  assert.ok(found !== undefined, `the demo printed no line for ${name}`);
  return found;
}

async function signIn(page: Page, name: string): Promise<void> {
  await page.goto(portal);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.getByLabel('Username').fill(name);
  await page.getByLabel('Password').fill(user(name).password);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.waitForURL(`${portal}/`);
  await page.locator('#who').waitFor();
}

/** The status line under an embedded app, once the host SDK has reported on it. */
async function appState(page: Page, app: 'sales' | 'live'): Promise<string> {
  const status = page.locator(`#status-${app}[data-state]`);
  await status.waitFor({ timeout: 20_000 });
  return await status.getAttribute('data-state') ?? '';
}

/**
 * The Dash callbacks' answers as the frame received them: the component ids a 200 updated, or the gateway's error
 * code (playwright cannot read request bodies of cross-site frames, so the answers tell which callback it was).
 */
function callbackAnswers(page: Page): Array<{ status: number; ids: string[]; error: string }> {
  const answers: Array<{ status: number; ids: string[]; error: string }> = [];
  page.on('response', (response: Response) => {
    if (!response.url().endsWith('/sales/_dash-update-component')) return;
    void response.json().then((body: { response?: Record<string, unknown>; error?: string }) => {
      answers.push({ status: response.status(), ids: Object.keys(body.response ?? {}), error: body.error ?? '' });
    }, () => undefined);
  });
  return answers;
}

async function signOut(tab: BrowserTab): Promise<number[]> {
  const deletes: number[] = [];
  tab.page.on('response', (response: Response) => {
    if (response.url().endsWith('/_embedgate/session') && response.request().method() === 'DELETE') deletes.push(response.status());
  });
  await tab.page.getByRole('button', { name: 'Sign out' }).click();
  await tab.page.getByRole('button', { name: 'Yes, sign me out' }).click();
  await tab.page.waitForURL(`${portal}/`);
  await tab.page.getByRole('button', { name: 'Sign in' }).waitFor();
  return deletes;
}

const sales = (page: Page): FrameLocator => page.frameLocator('#frame-sales');
const live = (page: Page): FrameLocator => page.frameLocator('#frame-live');
const chartTitle = (region: string): string => `${region}: monthly sales (k$)`;

/** The portal's region picker, outside the frame; usable once the dashboard's bridge has told the portal its region. */
async function regionPicker(page: Page): Promise<Locator> {
  const picker = page.getByLabel('Dashboard region');
  await page.locator('#region-picker:enabled').waitFor({ timeout: 20_000 });
  return picker;
}

/** Waits until the dashboard in the frame draws the chart of this region. */
async function chartShows(page: Page, region: string): Promise<void> {
  await sales(page).locator('#chart .gtitle', { hasText: chartTitle(region) }).waitFor({ timeout: 15_000 });
}

const gtitle = async (page: Page): Promise<string> => await sales(page).locator('#chart .gtitle').first().textContent() ?? '';

/** Waits until the portal's picker shows this region. */
async function pickerShows(page: Page, region: string): Promise<void> {
  await page.waitForFunction(`document.getElementById('region-picker').value === ${JSON.stringify(region)}`, undefined, { timeout: 15_000 });
}

/** The portal's panel of the dashboard's selections, newest first. */
const selectionPanel = (page: Page): Locator => page.getByRole('region', { name: 'Dashboard selections' }).getByRole('listitem');

const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];

/**
 * Clicks the chart's bar of this month the way a user does: the mouse onto the bar, and the click once the chart's
 * hover label names that month (plotly clicks the point it last hovered, and it hovers at most every 50 ms).
 */
async function clickBar(page: Page, month: string): Promise<void> {
  const bar = sales(page).locator('#chart .bars .point path').nth(MONTHS.indexOf(month));
  await bar.scrollIntoViewIfNeeded();
  const box = await bar.boundingBox();
  assert.ok(box !== null, `the ${month} bar is drawn`);
  await page.mouse.move(box.x + box.width / 2, box.y + box.height / 2);
  await sales(page).locator('#chart .hoverlayer .hovertext', { hasText: `(${month},` }).waitFor({ timeout: 5000 });
  await page.mouse.down();
  await page.mouse.up();
}

describe('embedgate demo', () => {
  it('prints the portal, gateway and IdP URLs and the three demo users with their roles', () => {
    const output = demo.output();
    assert.match(output, new RegExp(`Portal \\(open this\\)\\s+http://localhost:${ports.portal}\\b`));
    assert.match(output, new RegExp(`Gateway\\s+http://127\\.0\\.0\\.1:${ports.gateway}\\b`));
    assert.match(output, new RegExp(`Identity provider\\s+http://127\\.0\\.0\\.1:${ports.idp}\\b`));
    assert.deepEqual([...users.values()].map((u) => [u.username, u.roles]), [['admin', 'admin'], ['analyst', 'analyst'], ['guest', '(no role)']]);
    for (const { password } of users.values()) assert.ok(password.length >= 12, 'a real password');
  });

  it('admin: signs in, sees the dashboard with the payroll and the live feed, and signing out ends the apps\' sessions', async () => {
    const tab = await openTab(browser);
    const callbacks = callbackAnswers(tab.page);
    await signIn(tab.page, 'admin');
    assert.match(await tab.page.locator('#who').textContent() ?? '', /Ada Admin\s*admin/);
    assert.equal(await appState(tab.page, 'sales'), 'ready');
    assert.equal(await appState(tab.page, 'live'), 'ready');
    await sales(tab.page).locator('#payroll-table').waitFor();
    assert.match(await sales(tab.page).locator('#signed-in').textContent() ?? '', /admin.*admin/, 'the app shows the user and roles the gateway sent');
    await sales(tab.page).locator('#chart .main-svg').first().waitFor();
    await eventually(() => callbacks.some((c) => c.status === 200 && c.ids.includes('payroll')), 10_000);
    assert.deepEqual(callbacks.filter((c) => c.status !== 200), [], 'no callback refused');
    assert.equal(await live(tab.page).locator('#user').textContent(), 'admin', 'the live app serves the signed-in user');
    await live(tab.page).locator('#socket-user', { hasText: 'admin' }).waitFor();
    await eventually(async () => Number(await live(tab.page).locator('#count').textContent()) >= 2, 10_000);
    assert.equal(await live(tab.page).locator('#state').textContent(), 'open', 'the socket, authenticated by the gateway, stays open');
    const deletes = await signOut(tab);
    assert.deepEqual(deletes, [204, 204], 'both apps\' sessions ended');
    assert.deepEqual(tab.errors, []);
    await tab.close();
  });

  it('admin: the portal\'s region picker drives the dashboard, follows the region picked in the frame, and lists the months clicked on the chart', async () => {
    const tab = await openTab(browser);
    if (SCREENSHOT !== undefined) await tab.page.setViewportSize({ width: 1280, height: 1200 });
    await signIn(tab.page, 'admin');
    assert.equal(await appState(tab.page, 'sales'), 'ready');
    const picker = await regionPicker(tab.page);
    await chartShows(tab.page, 'North');
    assert.equal(await picker.inputValue(), 'North', 'the picker shows the dashboard\'s region');
    assert.deepEqual(await selectionPanel(tab.page).allInnerTexts(), ['Nothing selected yet.']);

    // Outside the frame: the picker sets the dashboard's filter, and its chart callback draws that region.
    await picker.selectOption('East');
    await chartShows(tab.page, 'East');
    assert.equal((await sales(tab.page).locator('#region').innerText()).trim(), 'East', 'the dashboard\'s own dropdown follows');

    // Inside the frame: the user picks a region in the dashboard's dropdown, and the portal's picker follows.
    await sales(tab.page).locator('#region').click();
    await sales(tab.page).getByRole('option', { name: 'West' }).click();
    await chartShows(tab.page, 'West');
    await pickerShows(tab.page, 'West');

    // A click on the chart's March bar: the dashboard's selection, in the portal's panel, with the value it shows.
    await clickBar(tab.page, 'Mar');
    await selectionPanel(tab.page).filter({ hasText: 'West, Mar:' }).waitFor({ timeout: 15_000 });
    // The bridge publishes from the renderer's store, which may run ahead of the frame's page by a render.
    await sales(tab.page).locator('#selection-text').filter({ hasText: 'West, Mar:' }).waitFor({ timeout: 15_000 });
    const inFrame = await sales(tab.page).locator('#selection-text').innerText();
    assert.match(inFrame, /^Selected: West, Mar: \d+ k\$$/);
    assert.equal(await selectionPanel(tab.page).first().innerText(), inFrame.replace('Selected: ', ''));

    // Back from the portal, and another month: newest first.
    await picker.selectOption('South');
    await chartShows(tab.page, 'South');
    await clickBar(tab.page, 'Jun');
    await selectionPanel(tab.page).filter({ hasText: 'South, Jun:' }).waitFor({ timeout: 15_000 });
    await sales(tab.page).locator('#selection-text').filter({ hasText: 'South, Jun:' }).waitFor({ timeout: 15_000 });
    const latest = (await sales(tab.page).locator('#selection-text').innerText()).replace('Selected: ', '');
    assert.match(latest, /^South, Jun: \d+ k\$$/);
    const entries = await selectionPanel(tab.page).allInnerTexts();
    assert.equal(entries[0], latest, 'the newest selection is on top');
    assert.ok(entries.includes(inFrame.replace('Selected: ', '')), 'the earlier one is kept');
    assert.ok(!entries.some((entry) => entry.startsWith('Error')), `no bridge error: ${entries.join(' | ')}`);
    assert.equal(await picker.inputValue(), 'South');
    if (SCREENSHOT !== undefined) {
      await sales(tab.page).locator('#payroll-table').waitFor();
      await live(tab.page).locator('#socket-user', { hasText: 'admin' }).waitFor();
      await tab.page.screenshot({ path: SCREENSHOT });
    }

    // When the dashboard cannot apply the region (here its renderer lost Dash's set_props), the panel says so and the
    // picker goes back to the region the dashboard shows.
    await sales(tab.page).locator('body').evaluate(() => {
      (globalThis as unknown as { dash_clientside: { set_props?: unknown } }).dash_clientside.set_props = undefined;
    });
    await picker.selectOption('North');
    await selectionPanel(tab.page).filter({ hasText: 'could not set the region to North' }).waitFor({ timeout: 20_000 });
    assert.equal(await selectionPanel(tab.page).first().innerText(), 'Error: could not set the region to North: region: not supported (not_supported)');
    await pickerShows(tab.page, 'South');
    assert.equal(await gtitle(tab.page), chartTitle('South'), 'the chart is unchanged');
    assert.deepEqual(tab.errors, []);
    await signOut(tab);
    await tab.close();
  });

  it('analyst: the dashboard and its region picker work but the admin-only payroll callback gets 403 from the gateway', async () => {
    const tab = await openTab(browser);
    const callbacks = callbackAnswers(tab.page);
    await signIn(tab.page, 'analyst');
    assert.equal(await appState(tab.page, 'sales'), 'ready');
    await sales(tab.page).locator('#chart .main-svg').first().waitFor();
    await eventually(() => callbacks.some((c) => c.status === 403), 10_000);
    await (await regionPicker(tab.page)).selectOption('East');
    await chartShows(tab.page, 'East');
    await clickBar(tab.page, 'Jan');
    await selectionPanel(tab.page).filter({ hasText: 'East, Jan:' }).waitFor({ timeout: 15_000 });
    assert.deepEqual(callbacks.filter((c) => c.status !== 200), [{ status: 403, ids: [], error: 'callback_forbidden' }], 'the payroll callback, refused');
    assert.ok(callbacks.some((c) => c.status === 200 && c.ids.includes('chart')), 'the chart callback ran');
    assert.ok(!callbacks.some((c) => c.ids.includes('payroll')), 'no payroll data reached the frame');
    assert.equal(await sales(tab.page).locator('#payroll-table').count(), 0, 'no salaries shown');
    assert.equal(await sales(tab.page).locator('#payroll').innerText(), PAYROLL_PLACEHOLDER);
    assert.doesNotMatch(await tab.page.locator('body').innerText(), /Salary|Ada Moreau|98,000/, 'nor in the portal');
    assert.equal(await appState(tab.page, 'live'), 'ready');
    await signOut(tab);
    await tab.close();
  });

  it('guest (no role): both apps say the user has no access, and no app data reaches the page', async () => {
    const tab = await openTab(browser);
    await signIn(tab.page, 'guest');
    assert.match(await tab.page.locator('#who').textContent() ?? '', /no role/);
    assert.equal(await appState(tab.page, 'sales'), 'forbidden');
    assert.equal(await appState(tab.page, 'live'), 'forbidden');
    await sales(tab.page).getByText('You do not have access to this app.').waitFor();
    await signOut(tab);
    await tab.close();
  });

  it('shows what an attacker gets: 401 for every app endpoint called without a token', async () => {
    const tab = await openTab(browser);
    await signIn(tab.page, 'analyst');
    const probes = tab.page.locator('#probes .probe');
    await probes.first().waitFor();
    const lines = await probes.allTextContents();
    assert.deepEqual(lines, [
      'GET /sales/_dash-layout → 401 missing_token',
      'POST /sales/_dash-update-component → 401 missing_token',
      'GET /live/ → 401 missing_token',
    ]);
    await tab.close();
  });

  it('a second demo on a port in use says which port and exits 1 without a stack trace', async () => {
    const second = spawnCli(['demo', '--data-dir', dataDir, ...portArgs()]);
    const code = await second.exited;
    assert.equal(code, 1, second.output());
    assert.match(second.output(), new RegExp(`port ${ports.idp} \\(the identity provider\\) is already in use`));
    assert.doesNotMatch(second.output(), /\n\s+at /, 'no stack trace');
  });

  it('Ctrl-C stops everything and frees every port', async () => {
    demo.child.kill('SIGINT');
    assert.equal(await demo.exited, 0);
    for (const port of Object.values(ports)) {
      const server = createServer();
      await new Promise<void>((resolve, reject) => server.once('error', reject).listen(port, '127.0.0.1', () => resolve()));
      await new Promise<void>((resolve) => server.close(() => resolve()));
    }
  });
});
