// The live WebSocket sample app: its page in Debian's Chromium (user shown, socket open, points drawn as they
// arrive) and its socket from a Node client (the first message names the handshake's X-Forwarded-User).
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { request, type IncomingMessage } from 'node:http';
import { after, before, describe, it } from 'node:test';
import type { Browser } from 'playwright-core';
import WebSocket from 'ws';
import { launchChromium, openTab } from '../../../packages/embedgate/test/support/chromium.js';
import { startStreamApp, type SampleApp } from '../src/stream-app/index.js';

let app: SampleApp;
let browser: Browser;

before(async () => {
  app = await startStreamApp({ port: 0 });
  browser = await launchChromium();
});

after(async () => {
  await browser?.close();
  await app?.close();
});

function socketUrl(path = '/live/ws'): string {
  return `${app.url.replace(/^http/, 'ws')}${path}`;
}

/** The socket's first `count` messages, parsed (listening from the start, so none is missed). */
function messages(socket: WebSocket, count: number): Promise<Array<Record<string, unknown>>> {
  return new Promise((resolve, reject) => {
    const received: Array<Record<string, unknown>> = [];
    socket.on('message', (data: Buffer) => {
      received.push(JSON.parse(data.toString('utf8')) as Record<string, unknown>);
      if (received.length === count) resolve(received);
    });
    socket.once('error', reject);
  });
}

describe('live WebSocket sample app', () => {
  it('shows the forwarded user and draws the points it receives over the socket', async () => {
    const tab = await openTab(browser);
    try {
      const { page } = tab;
      await page.setExtraHTTPHeaders({ 'x-forwarded-user': 'carol' });
      await page.goto(`${app.url}/live/`);
      assert.equal(await page.locator('#user').textContent(), 'carol');
      await page.locator('#count', { hasText: /^([3-9]|\d{2,})$/ }).waitFor();
      assert.equal(await page.locator('#state').textContent(), 'open');
      assert.equal(await page.locator('#socket-user').textContent(), 'carol');
      const drawn = await page.locator('#line').evaluate((line) => (line.getAttribute('points') ?? '').split(' ').length);
      assert.ok(drawn >= 3, `the line has ${drawn} points`);
      assert.deepEqual(tab.errors, []);
    } finally {
      await tab.close();
    }
  });

  it('shows the close code when the socket goes away', async () => {
    const doomed = await startStreamApp({ port: 0 });
    const tab = await openTab(browser);
    try {
      await tab.page.goto(`${doomed.url}/live/`);
      await tab.page.locator('#state', { hasText: 'open' }).waitFor();
      await doomed.close();
      await tab.page.locator('#state', { hasText: /^closed \(code \d+\)$/ }).waitFor();
      assert.deepEqual(tab.errors, []);
    } finally {
      await tab.close();
    }
  });

  it('names the handshake user in the first message, then pushes numbered values', async () => {
    const socket = new WebSocket(socketUrl(), { headers: { 'x-forwarded-user': 'dave' } });
    try {
      const [hello, first, second] = await messages(socket, 3);
      assert.deepEqual(hello, { type: 'hello', user: 'dave' });
      assert.equal(first?.type, 'point');
      assert.equal(first?.seq, 1);
      assert.equal(second?.seq, 2);
      assert.equal(typeof first?.value, 'number');
    } finally {
      socket.close();
    }
  });

  it('says user null on a handshake without X-Forwarded-User, and the page says anonymous', async () => {
    const socket = new WebSocket(socketUrl());
    try {
      const [hello] = await messages(socket, 1);
      assert.deepEqual(hello, { type: 'hello', user: null });
    } finally {
      socket.close();
    }
    const page = await fetch(`${app.url}/live/`).then((res) => res.text());
    assert.match(page, /<dd id="user">anonymous<\/dd>/);
  });

  it('escapes the user in the page', async () => {
    const page = await fetch(`${app.url}/live/`, { headers: { 'x-forwarded-user': '<img src=x onerror=alert(1)>' } }).then((res) => res.text());
    assert.match(page, /<dd id="user">&#60;img src=x onerror=alert\(1\)&#62;<\/dd>/);
  });

  it('refuses other paths and upgrades elsewhere', async () => {
    assert.equal((await fetch(`${app.url}/live/other`)).status, 404);
    assert.equal((await fetch(`${app.url}/`)).status, 404);
    assert.equal((await fetch(`${app.url}/live/`, { method: 'POST' })).status, 405);
    const upgrade = request(`${app.url}/live/not-the-socket`, {
      headers: { connection: 'Upgrade', upgrade: 'websocket', 'sec-websocket-version': '13', 'sec-websocket-key': 'dGhlIHNhbXBsZSBub25jZQ==' },
    });
    upgrade.end();
    const [response] = (await once(upgrade, 'response')) as [IncomingMessage];
    assert.equal(response.statusCode, 404);
    response.resume();
  });

  it('rejects with the listening error when the port is taken', async () => {
    const port = Number(new URL(app.url).port);
    await assert.rejects(startStreamApp({ port }), { code: 'EADDRINUSE' });
  });
});
