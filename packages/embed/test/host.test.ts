// Host SDK (attach) in Node, with a fake window and iframe: which hellos are accepted, how token requests are
// answered, events, signOut, detach. Cases 106/107 (postMessage sender/receiver) on the host side.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { MessageChannel, type MessagePort } from 'node:worker_threads';

const fakeWindow = new EventTarget();
(globalThis as { window?: unknown }).window = fakeWindow;
const { attach, gatewayOrigin } = await import('../src/attach.ts');

const GW = 'https://gw.example';
const created = new Set<MessagePort>();
after(() => created.forEach((p) => p.close()));

interface Posted { message: unknown; targetOrigin: string }

function setup(getToken: () => unknown = async () => 'token-1') {
  const posted: Posted[] = [];
  const contentWindow = {
    postMessage(message: unknown, targetOrigin: string) {
      posted.push({ message, targetOrigin });
    },
  };
  const iframe = Object.assign(new EventTarget(), { contentWindow });
  const domEvents: Array<{ type: string; detail: unknown }> = [];
  for (const type of ['ready', 'signed-out', 'forbidden', 'error']) {
    iframe.addEventListener('embedgate:' + type, (e) => domEvents.push({ type: e.type, detail: (e as CustomEvent).detail }));
  }
  const handle = attach(iframe as unknown as HTMLIFrameElement, {
    gateway: GW + '/sales/', getToken: getToken as () => Promise<string>,
  });
  const events: unknown[] = [];
  for (const type of ['ready', 'signed-out', 'forbidden', 'error'] as const) handle.on(type, (d) => events.push(d));
  return { iframe, contentWindow, handle, posted, events, domEvents };
}

/** Dispatches a window 'message' event as the browser would; returns the frame's end of the channel. */
function hello(source: unknown, origin = GW, data: unknown = { embedgate: 1, type: 'hello' }, withPort = true) {
  const { port1, port2 } = new MessageChannel();
  created.add(port1).add(port2);
  const event = Object.assign(new Event('message'), { data, origin, source, ports: withPort ? [port2] : [] });
  fakeWindow.dispatchEvent(event);
  const received: unknown[] = [];
  port1.on('message', (m) => received.push(m));
  return { port: port1, received };
}

const tick = (ms = 20) => new Promise((r) => setTimeout(r, ms));
async function until(cond: () => boolean, what: string) {
  for (let i = 0; i < 100 && !cond(); i++) await tick(10);
  assert.ok(cond(), what);
}
const closeAll = (...ports: MessagePort[]) => ports.forEach((p) => p.close());

test('attach posts an attach ping to the iframe with the exact gateway origin, never *', () => {
  const { posted, handle } = setup();
  assert.deepEqual(posted, [{ message: { embedgate: 1, type: 'attach' }, targetOrigin: GW }]);
  handle.detach();
});

test('gatewayOrigin: exact origin of an http(s) URL; anything else throws', () => {
  assert.equal(gatewayOrigin('https://gw.example/sales/?x#y'), GW);
  assert.equal(gatewayOrigin('http://127.0.0.1:4180'), 'http://127.0.0.1:4180');
  assert.throws(() => gatewayOrigin('javascript:alert(1)'), TypeError);
  assert.throws(() => gatewayOrigin('gw.example'), TypeError);
  assert.throws(() => gatewayOrigin('*'), TypeError);
});

test('107: a hello from the wrong origin, the wrong window, without a port or malformed is ignored', async () => {
  const { contentWindow, handle } = setup();
  const warnings: string[] = [];
  const warn = console.warn;
  console.warn = (message: string) => warnings.push(message);
  const attempts = [
    hello(contentWindow, 'https://attacker.example'),
    hello(contentWindow, 'https://gw.example.attacker.example'),
    hello(contentWindow, 'http://gw.example'),
    hello(contentWindow, 'https://gw.example:8443'),
    hello({ postMessage() {} }, GW),             // another window, right origin
    hello(null, GW),
    hello(contentWindow, GW, { embedgate: 2, type: 'hello' }),
    hello(contentWindow, GW, { type: 'hello' }),
    hello(contentWindow, GW, '{"embedgate":1,"type":"hello"}'),
  ];
  for (const a of attempts) a.port.postMessage({ type: 'token-request' });
  hello(contentWindow, GW, { embedgate: 1, type: 'hello' }, false); // no port: nothing to answer on
  await tick(50);
  for (const a of attempts) assert.deepEqual(a.received, [], 'no token for a rejected hello');
  console.warn = warn;
  // a hello from the iframe itself but another origin is worth a console warning (usually a `gateway` typo)
  assert.equal(warnings.length, 4);
  assert.match(warnings[0] ?? '', /ignored a hello from https:\/\/attacker\.example; the gateway option says https:\/\/gw\.example/);
  closeAll(...attempts.map((a) => a.port));
  handle.detach();
});

test('a valid hello: token-request answered with getToken() on the port only', async () => {
  const { contentWindow, handle, posted } = setup(async () => 'eyJhbGciOi.J9.sig');
  const { port, received } = hello(contentWindow);
  port.postMessage({ type: 'token-request' });
  await until(() => received.length === 1, 'token answered');
  assert.deepEqual(received, [{ type: 'token', token: 'eyJhbGciOi.J9.sig' }]);
  // the token never went through window.postMessage
  assert.ok(posted.every((p) => !JSON.stringify(p.message).includes('eyJ')));
  port.close();
  handle.detach();
});

test('null / empty token → no-token signed-out; a throwing getToken → no-token error plus an error event', async () => {
  for (const value of [null, undefined, '']) {
    const { contentWindow, handle } = setup(async () => value);
    const { port, received } = hello(contentWindow);
    port.postMessage({ type: 'token-request' });
    await until(() => received.length === 1, 'answered');
    assert.deepEqual(received, [{ type: 'no-token', reason: 'signed-out' }]);
    port.close();
    handle.detach();
  }
  const boom = new Error('login_required');
  for (const getToken of [async () => { throw boom; }, () => { throw boom; }]) {
    const { contentWindow, handle, events, domEvents } = setup(getToken);
    const { port, received } = hello(contentWindow);
    port.postMessage({ type: 'token-request' });
    await until(() => received.length === 1, 'answered');
    assert.deepEqual(received, [{ type: 'no-token', reason: 'error' }]);
    assert.deepEqual(events, [{ type: 'error', message: 'getToken failed', error: boom }]);
    assert.equal(domEvents.length, 1);
    assert.equal(domEvents[0]?.type, 'embedgate:error');
    port.close();
    handle.detach();
  }
});

test('frame events reach on() listeners and embedgate:* DOM events on the iframe; junk is ignored', async () => {
  const { contentWindow, handle, events, domEvents } = setup();
  const { port } = hello(contentWindow);
  port.postMessage({ type: 'ready' });
  port.postMessage({ type: 'token', token: 'x' });            // not a frame message
  port.postMessage({ type: 'error' });                        // error needs a message
  port.postMessage({ type: 'forbidden', message: 'no role' });
  port.postMessage({ type: 'error', message: 'gateway 502' });
  port.postMessage({ type: 'signed-out' });
  await until(() => events.length === 4, 'four events');
  assert.deepEqual(events, [
    { type: 'ready' }, { type: 'forbidden', message: 'no role' }, { type: 'error', message: 'gateway 502' }, { type: 'signed-out' },
  ]);
  assert.deepEqual(domEvents.map((e) => e.type),
    ['embedgate:ready', 'embedgate:forbidden', 'embedgate:error', 'embedgate:signed-out']);
  port.close();
  handle.detach();
});

test('on() returns an unsubscribe; a throwing listener does not stop the others', async () => {
  const { contentWindow, handle } = setup();
  const seen: string[] = [];
  const off = handle.on('ready', () => seen.push('a'));
  handle.on('ready', () => {
    throw new Error('listener bug');
  });
  handle.on('ready', () => seen.push('c'));
  // the listener's error is rethrown in a microtask (reported, not swallowed); capture it here
  const rethrown: unknown[] = [];
  const realQueue = globalThis.queueMicrotask;
  globalThis.queueMicrotask = (fn) => {
    try {
      fn();
    } catch (e) {
      rethrown.push(e);
    }
  };
  const { port } = hello(contentWindow);
  port.postMessage({ type: 'ready' });
  await until(() => seen.length === 2, 'both listeners');
  off();
  port.postMessage({ type: 'ready' });
  await until(() => seen.length === 3, 'after off');
  assert.deepEqual(seen, ['a', 'c', 'c']);
  globalThis.queueMicrotask = realQueue;
  assert.equal(rethrown.length, 2);
  assert.match(String(rethrown[0]), /listener bug/);
  port.close();
  handle.detach();
});

test('a new hello (after a reload) replaces the port; the old one is closed', async () => {
  const { contentWindow, handle } = setup(async () => 'tok');
  const first = hello(contentWindow);
  let firstClosed = false;
  first.port.on('close', () => (firstClosed = true));
  const second = hello(contentWindow);
  await until(() => firstClosed, 'old port closed');
  handle.signOut();
  await until(() => second.received.length === 1, 'sign-out on the new port');
  assert.deepEqual(second.received, [{ type: 'sign-out' }]);
  assert.deepEqual(first.received, []);
  second.port.close();
  handle.detach();
});

test('the page after a reload gets the last token once without a getToken() call; renewals always call it', async () => {
  let calls = 0;
  const { contentWindow, handle } = setup(async () => `tok-${++calls}`);
  const ask = async (page: ReturnType<typeof hello>, count: number): Promise<unknown> => {
    page.port.postMessage({ type: 'token-request' });
    await until(() => page.received.length === count, 'answered');
    return page.received[count - 1];
  };
  const bootstrap = hello(contentWindow);
  assert.deepEqual(await ask(bootstrap, 1), { type: 'token', token: 'tok-1' });
  const app = hello(contentWindow);                            // the app page the bootstrap reloaded into
  assert.deepEqual(await ask(app, 1), { type: 'token', token: 'tok-1' });
  assert.equal(calls, 1, 'no second getToken() for the reloaded page');
  assert.deepEqual(await ask(app, 2), { type: 'token', token: 'tok-2' }, 'a renewal on the same port calls getToken()');
  const next = hello(contentWindow);                           // a page the app navigated to
  assert.deepEqual(await ask(next, 1), { type: 'token', token: 'tok-2' });
  assert.deepEqual(await ask(next, 2), { type: 'token', token: 'tok-3' });
  closeAll(bootstrap.port, app.port, next.port);
  handle.detach();
});

test('the last token is not handed to a new page when it is older than 5 s, or after signed-out, forbidden or signOut()', async () => {
  const realNow = Date.now;
  const endings: Array<[string, (s: ReturnType<typeof setup>, page: ReturnType<typeof hello>) => Promise<void>]> = [
    ['older than 5 s', async () => {
      Date.now = () => realNow() + 5001;
    }],
    ['signed-out', async ({ events }, page) => {
      page.port.postMessage({ type: 'signed-out' });
      await until(() => events.length === 1, 'signed-out event');
    }],
    ['forbidden', async ({ events }, page) => {
      page.port.postMessage({ type: 'forbidden', message: 'no role' });
      await until(() => events.length === 1, 'forbidden event');
    }],
    ['signOut()', async ({ handle }, page) => {
      handle.signOut();
      await until(() => page.received.length === 2, 'sign-out sent');
    }],
  ];
  for (const [name, end] of endings) {
    let calls = 0;
    const context = setup(async () => `tok-${++calls}`);
    const first = hello(context.contentWindow);
    first.port.postMessage({ type: 'token-request' });
    await until(() => first.received.length === 1, 'first answered');
    const next = await (async () => {
      try {
        await end(context, first);
        const page = hello(context.contentWindow);
        page.port.postMessage({ type: 'token-request' });
        await until(() => page.received.length === 1, 'next answered');
        return page;
      } finally {
        Date.now = realNow;
      }
    })();
    assert.deepEqual(next.received[0], { type: 'token', token: 'tok-2' }, name);
    closeAll(first.port, next.port);
    context.handle.detach();
  }
});

test('signOut before any hello is delivered with the next hello', async () => {
  const { contentWindow, handle } = setup();
  handle.signOut();
  const { port, received } = hello(contentWindow);
  await until(() => received.length === 1, 'sign-out');
  assert.deepEqual(received, [{ type: 'sign-out' }]);
  port.close();
  handle.detach();
});

test('detach stops listening and closes the port', async () => {
  const { contentWindow, handle } = setup();
  const first = hello(contentWindow);
  let closed = false;
  first.port.on('close', () => (closed = true));
  handle.detach();
  await until(() => closed, 'port closed');
  const later = hello(contentWindow);
  later.port.postMessage({ type: 'token-request' });
  await tick(50);
  assert.deepEqual(later.received, []);
  later.port.close();
});

test('attach validates its options', () => {
  const iframe = Object.assign(new EventTarget(), { contentWindow: null }) as unknown as HTMLIFrameElement;
  assert.throws(() => attach(iframe, { gateway: 'ftp://gw.example', getToken: async () => 'x' }), TypeError);
  assert.throws(() => attach(iframe, { gateway: GW, getToken: 'x' as unknown as () => Promise<string> }), TypeError);
});
