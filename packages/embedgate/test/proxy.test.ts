// What a user relies on from the proxy: streaming, header hygiene, prefixes, upstream failures, error pages,
// Dash callback rules, WebSockets, health and metrics endpoints and the audit log.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { createServer as createHttpServer, type Server } from 'node:http';
import { connect, createServer } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { Readable } from 'node:stream';
import { gzipSync } from 'node:zlib';
import WebSocket from 'ws';
import { eventually, startGateway, type RunningGateway } from './support/gateway.js';
import { startHostileOp, type HostileOp } from './support/hostile-op.js';
import { rawRequest } from './support/raw-http.js';
import { BIG_BODY_BYTES, SLOW_DELAY_MS, startUpstream, type Upstream } from './support/upstream.js';
import { echo, openWebSocket, type Opened } from './support/ws-client.js';

const HOST_ORIGIN = 'http://host.example';
const DASH_MAX_BODY = 4096;
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

let op: HostileOp;
let upstream: Upstream;
let flood: Flood;
let gw: RunningGateway;
let analyst: string;
let admin: string;

/** FLOOD_BYTES, sent no faster than the gateway takes them. */
const FLOOD_BYTES = 128 * 1024 * 1024;

/** An app with one large response (/flood/all), which says how far it got and whether it waits for the gateway to read. */
interface Flood {
  url: string;
  sent: number;
  /** The last write filled the app's buffer: it waits for 'drain'. */
  waiting: boolean;
  done: boolean;
  server: Server;
}

/** The flood app; it also serves HTML pages the gateway cannot rewrite and an answer preceded by 103 Early Hints. */
async function startFlood(): Promise<Flood> {
  const piece = Buffer.alloc(64 * 1024, 'f');
  const server = createHttpServer((req, res) => {
    if (req.url === '/flood/compress.html') {
      res.writeHead(200, { 'content-type': 'text/html', 'content-encoding': 'compress' }).end('<html><head></head></html>');
      return;
    }
    if (req.url === '/flood/huge.html') {
      res.writeHead(200, { 'content-type': 'text/html' }).end(`<html><head></head><body>${'x'.repeat(9 * 1024 * 1024)}</body></html>`);
      return;
    }
    if (req.url === '/flood/hints') {
      res.writeEarlyHints({ link: '</flood/style.css>; rel=preload; as=style' });
      res.writeHead(200, { 'content-type': 'text/plain' }).end('after the hints');
      return;
    }
    res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': FLOOD_BYTES });
    const pump = (): void => {
      while (flood.sent < FLOOD_BYTES) {
        flood.sent += piece.length;
        if (!res.write(piece)) {
          flood.waiting = true;
          res.once('drain', () => {
            flood.waiting = false;
            pump();
          });
          return;
        }
      }
      flood.done = true;
      res.end();
    };
    pump();
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as { port: number };
  return { url: `http://127.0.0.1:${port}`, sent: 0, waiting: false, done: false, server };
}

/** A loopback port nothing listens on. */
async function closedPort(): Promise<number> {
  const server = createServer().listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as { port: number };
  await new Promise((resolve) => server.close(resolve));
  return port;
}

const tokenFor = (claims: Record<string, unknown> = {}): Promise<string> => op.sign(op.claims(claims));

async function errorOf(response: Response): Promise<string> {
  return ((await response.json()) as { error: string }).error;
}

before(async () => {
  op = await startHostileOp();
  upstream = await startUpstream();
  flood = await startFlood();
  const allow = { roles: ['analyst', 'admin'] };
  const app = (name: string, settings: Record<string, unknown> = {}): Record<string, unknown> => ({ name, prefix: `/${name}/`, upstream: upstream.url, allow, ...settings });
  gw = await startGateway({
    issuers: [{ issuer: op.issuer, audiences: [op.audience], leeway_seconds: 0 }],
    embed: { allowed_origins: [HOST_ORIGIN] },
    apps: [
      app('app', { public: ['/app/public/**'] }),
      app('strip', { strip_prefix: true }),
      app('down', { upstream: `http://127.0.0.1:${await closedPort()}` }),
      app('slowapp', { response_timeout_ms: 300 }),
      app('flood', { upstream: flood.url }),
      app('dash', {
        dash: {
          max_body_bytes: DASH_MAX_BODY,
          callbacks: [
            { output: 'secret-*', allow: { roles: ['admin'] } },
            { output: 'payroll', allow: { roles: ['admin'] } },
            { output: '{"index":*,"type":"salary"}', allow: { roles: ['admin'] } },
          ],
        },
      }),
    ],
  });
  await eventually(async () => (await gw.fetch('/readyz')).status === 200);
  analyst = await tokenFor({ roles: ['analyst'] });
  admin = await tokenFor({ roles: ['admin'] });
});

after(async () => {
  await gw.close();
  await upstream.close();
  flood.server.closeAllConnections();
  await new Promise((resolve) => flood.server.close(resolve));
  await op.close();
});

describe('streaming', () => {
  it('streams a 2 MB request body to the upstream byte for byte', async () => {
    const body = randomBytes(2 * 1024 * 1024);
    upstream.clear();
    const response = await gw.fetch('/app/upload', { method: 'POST', token: analyst, body, headers: { 'content-type': 'application/octet-stream' } });
    assert.equal(response.status, 200);
    const received = upstream.last()?.body ?? Buffer.alloc(0);
    assert.equal(received.length, body.length);
    assert.ok(received.equals(body), 'the upstream received a different body');
  });

  it('streams a 5 MB response back', async () => {
    const response = await gw.fetch('/app/big', { token: analyst });
    assert.equal(response.status, 200);
    assert.equal(response.headers.get('content-type'), 'application/octet-stream');
    const body = Buffer.from(await response.arrayBuffer());
    assert.equal(body.length, BIG_BODY_BYTES);
    assert.ok(body.equals(Buffer.alloc(BIG_BODY_BYTES, 'x')), 'the response body was altered');
  });

  it('a caller that stops reading holds the app back: the gateway does not read the app ahead of it', async () => {
    const url = new URL(gw.url);
    const socket = connect(Number(url.port), url.hostname);
    socket.pause();
    let received = 0;
    socket.on('data', (chunk: Buffer) => {
      received += chunk.length;
    });
    socket.write(`GET /flood/all HTTP/1.1\r\nHost: ${url.host}\r\nAuthorization: Bearer ${analyst}\r\nConnection: close\r\n\r\n`);
    const ended = once(socket, 'end');
    await eventually(() => flood.waiting, 10_000, 5);
    // For two seconds the caller reads nothing. A gateway that read the app regardless would take all 128 MB in
    // well under that; this one takes what fits in the sockets' buffers and its own.
    const window = Date.now() + 2000;
    while (Date.now() < window) {
      assert.ok(flood.sent < 48 * 1024 * 1024 && !flood.done, `the app got ${(flood.sent / 1048576).toFixed(1)} MB out while the caller read nothing`);
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    socket.resume();
    await ended;
    assert.ok(flood.done && received > FLOOD_BYTES, `once the caller reads, the whole body arrives (${received} bytes with the head)`);
  });
});

describe('pages the gateway rewrites, and informational answers', () => {
  it('an HTML page it cannot decode, or one too large to hold (over 8 MB), gets 502 upstream_page_unreadable', async () => {
    for (const path of ['/flood/compress.html', '/flood/huge.html']) {
      const response = await gw.fetch(path, { token: analyst });
      assert.equal(response.status, 502, path);
      assert.equal(await errorOf(response), 'upstream_page_unreadable', path);
    }
  });

  it('103 Early Hints from the app stay between the app and the gateway; the caller gets the final answer', async () => {
    // The first status line on the wire is the final one (the raw body is chunked).
    const response = await rawRequest(gw.url, '/flood/hints', [`Authorization: Bearer ${analyst}`]);
    assert.equal(response.status, 200);
    assert.match(response.body, /\r\nafter the hints\r\n/);
  });
});

describe('headers', () => {
  it('drops hop-by-hop headers and keeps the upstream\'s response headers', async () => {
    upstream.clear();
    const response = await rawRequest(gw.url, '/app/page', [
      `Authorization: Bearer ${analyst}`, 'Connection: x-secret', 'X-Secret: leaked', 'Keep-Alive: timeout=5',
      'TE: trailers', 'Proxy-Authorization: Basic dXNlcjpwYXNz', 'Proxy-Connection: keep-alive', 'X-Kept: yes',
    ]);
    assert.equal(response.status, 200);
    assert.equal(response.headers['x-upstream'], 'yes');
    const seen = upstream.last()?.headers ?? {};
    for (const name of ['x-secret', 'keep-alive', 'te', 'proxy-authorization', 'proxy-connection']) assert.equal(seen[name], undefined, name);
    assert.doesNotMatch(String(seen.connection), /x-secret/i);
    assert.equal(seen['x-kept'], 'yes', 'ordinary headers pass');
  });

  it('sets X-Forwarded-For/Proto/Host and an X-Request-Id that the response repeats', async () => {
    upstream.clear();
    const response = await gw.fetch('/app/page', { token: analyst });
    const seen = upstream.last()?.headers ?? {};
    assert.equal(seen['x-forwarded-for'], '127.0.0.1');
    assert.equal(seen['x-forwarded-proto'], 'http');
    assert.equal(seen['x-forwarded-host'], new URL(gw.url).host);
    assert.match(String(seen['x-request-id']), UUID);
    assert.equal(response.headers.get('x-request-id'), seen['x-request-id']);
  });

  it('reuses a sane incoming X-Request-Id and replaces any other', async () => {
    const cases: Array<[incoming: string, reused: boolean]> = [
      ['req-42.abc:7_Z', true],
      ['has spaces in it', false],
      ['x'.repeat(129), false],
      ['<script>', false],
    ];
    for (const [incoming, reused] of cases) {
      const response = await gw.fetch('/app/page', { token: analyst, headers: { 'x-request-id': incoming } });
      const seen = String(upstream.last()?.headers['x-request-id']);
      if (reused) assert.equal(seen, incoming);
      else assert.match(seen, UUID, incoming);
      assert.equal(response.headers.get('x-request-id'), seen);
    }
  });
});

describe('prefixes', () => {
  it('strip_prefix forwards the path below the prefix, query included', async () => {
    for (const [path, forwarded] of [['/strip/x?q=1&r=%2F', '/x?q=1&r=%2F'], ['/strip/', '/'], ['/strip/a/b/', '/a/b/']] as const) {
      assert.equal((await gw.fetch(path, { token: analyst })).status, 200, path);
      assert.equal(upstream.last()?.url, forwarded, path);
    }
    await gw.fetch('/app/x?q=1', { token: analyst });
    assert.equal(upstream.last()?.url, '/app/x?q=1', 'without strip_prefix the path is unchanged');
  });

  it('redirects a prefix without its trailing slash, keeping the query', async () => {
    for (const [path, location] of [['/app?x=1&y=2', '/app/?x=1&y=2'], ['/strip', '/strip/']] as const) {
      const response = await gw.fetch(path);
      assert.equal(response.status, 308, path);
      assert.equal(response.headers.get('location'), location, path);
    }
  });
});

describe('upstream failures', () => {
  it('answers 502 upstream_unavailable quickly when the app is down', async () => {
    const started = Date.now();
    const response = await gw.fetch('/down/page', { token: analyst });
    assert.equal(response.status, 502);
    assert.equal(await errorOf(response), 'upstream_unavailable');
    assert.ok(Date.now() - started < 1000, `took ${Date.now() - started} ms`);
  });

  it('answers 504 upstream_timeout when the app exceeds response_timeout_ms', async () => {
    const started = Date.now();
    const response = await gw.fetch('/slowapp/slow', { token: analyst });
    assert.equal(response.status, 504);
    assert.equal(await errorOf(response), 'upstream_timeout');
    assert.ok(Date.now() - started < SLOW_DELAY_MS / 2, `took ${Date.now() - started} ms`);
  });

  it('keeps upstream connections alive: sequential requests share one connection', async () => {
    await gw.fetch('/app/warm', { token: analyst });
    const before = upstream.tcpConnections;
    for (let i = 0; i < 10; i++) assert.equal((await gw.fetch(`/app/page-${i}`, { token: analyst })).status, 200);
    assert.equal(upstream.tcpConnections, before, 'no new upstream connection for 10 sequential requests');
  });
});

describe('gateway answers', () => {
  it('answers 404 for unmounted paths and unknown gateway endpoints', async () => {
    for (const [path, error] of [['/nowhere/x', 'no_app'], ['/', 'no_app'], ['/_embedgate/x', 'not_found'], ['/_embedgate/', 'not_found']] as const) {
      const response = await gw.fetch(path, { token: analyst });
      assert.equal(response.status, 404, path);
      assert.equal(await errorOf(response), error, path);
    }
  });

  it('gives navigations an HTML 401 page that cannot be framed and XHR a JSON 401', async () => {
    const navigations = [['Sec-Fetch-Mode: navigate'], ['Accept: text/html,application/xhtml+xml']];
    for (const lines of navigations) {
      const response = await rawRequest(gw.url, '/app/', lines);
      assert.equal(response.status, 401, lines[0]);
      assert.match(response.headers['content-type'] ?? '', /^text\/html/, lines[0]);
      assert.match(response.headers['content-security-policy'] ?? '', /frame-ancestors 'none'/, lines[0]);
      assert.match(response.body, /<html/i, lines[0]);
      assert.match(response.headers['www-authenticate'] ?? '', /^Bearer realm="embedgate"/);
    }
    const xhrs = [['Accept: application/json'], ['Sec-Fetch-Mode: cors', 'Accept: text/html'], ['Accept: text/html', 'X-Requested-With: XMLHttpRequest']];
    for (const lines of xhrs) {
      const response = await rawRequest(gw.url, '/app/', lines);
      assert.equal(response.status, 401, lines.join(', '));
      assert.equal(response.headers['content-type'], 'application/json', lines.join(', '));
      assert.equal(await errorOf(new Response(response.body)), 'missing_token');
    }
  });
});

describe('Dash callbacks', () => {
  const CALLBACK = '/dash/_dash-update-component';

  /** The outputs list Dash sends for an `output` string of plain ids. */
  function outputsFor(output: string): unknown {
    const names = output.startsWith('..') ? output.slice(2, -2).split('...') : [output];
    const specs = names.map((name) => ({ id: name.slice(0, name.lastIndexOf('.')), property: name.slice(name.lastIndexOf('.') + 1) }));
    return names.length === 1 ? specs[0] : specs;
  }

  const callbackBody = (output: string, outputs: unknown = outputsFor(output)): string =>
    JSON.stringify({ output, outputs, inputs: [{ id: 'picker', property: 'value', value: 1 }], changedPropIds: ['picker.value'] });

  const postCallback = (body: string | Buffer, token: string, headers: Record<string, string> = {}): Promise<Response> =>
    gw.fetch(CALLBACK, { method: 'POST', token, body, headers: { 'content-type': 'application/json', ...headers } });

  const salary = { id: { type: 'salary', index: 1 }, property: 'children' };
  const bonus = { id: { type: 'bonus', index: 1 }, property: 'children' };
  const cases: Array<[what: string, body: string, analystStatus: number]> = [
    ['single allowed output', callbackBody('graph.figure'), 200],
    ['pattern rule secret-*', callbackBody('secret-table.data'), 403],
    ['id-only rule, listed property', callbackBody('payroll.children'), 403],
    ['id-only rule, any property', callbackBody('payroll.style'), 403],
    ['id-only rule does not cover a longer id', callbackBody('payroll-summary.children'), 200],
    ['multi-output with one forbidden output', callbackBody('..a.children...payroll.children..'), 403],
    ['multi-output, all allowed', callbackBody('..a.children...b.figure..'), 200],
    ['harmless output, forbidden outputs list', callbackBody('a.children', { id: 'payroll', property: 'children' }), 403],
    ['pattern-matching ids: salary', callbackBody('{"index":["ALL"],"type":"salary"}.children', [[salary]]), 403],
    ['pattern-matching ids: salary in the outputs list only', callbackBody('totals.children', [salary]), 403],
    ['pattern-matching ids: bonus', callbackBody('{"index":["ALL"],"type":"bonus"}.children', [[bonus]]), 200],
  ];

  it('checks every output a callback names against the callback rules', async () => {
    for (const [what, body, analystStatus] of cases) {
      upstream.clear();
      const asAnalyst = await postCallback(body, analyst);
      assert.equal(asAnalyst.status, analystStatus, `analyst: ${what}`);
      if (analystStatus === 403) {
        assert.equal(await errorOf(asAnalyst), 'callback_forbidden', what);
        assert.equal(upstream.requests.length, 0, `${what}: not proxied`);
      }
      assert.equal((await postCallback(body, admin)).status, 200, `admin: ${what}`);
    }
  });

  it('refuses malformed, oversized and compressed callback bodies before the app sees them', async () => {
    const refusals: Array<[what: string, body: string | Buffer, headers: Record<string, string>, status: number, error: string]> = [
      ['not JSON', '{"output": ', {}, 400, 'malformed_callback'],
      ['a JSON array', '[]', {}, 400, 'malformed_callback'],
      ['no output', JSON.stringify({ outputs: { id: 'a', property: 'children' }, inputs: [] }), {}, 400, 'malformed_callback'],
      ['empty output', callbackBody('', []), {}, 400, 'malformed_callback'],
      ['malformed outputs list', JSON.stringify({ output: 'a.children', outputs: [{ id: 'a' }] }), {}, 400, 'malformed_callback'],
      ['over max_body_bytes', callbackBody('graph.figure', { id: 'graph', property: 'figure', pad: 'x'.repeat(DASH_MAX_BODY) }), {}, 413, 'body_too_large'],
      ['gzip', gzipSync(callbackBody('payroll.children')), { 'content-encoding': 'gzip' }, 415, 'unsupported_content_encoding'],
    ];
    upstream.clear();
    for (const [what, body, headers, status, error] of refusals) {
      const response = await postCallback(body, analyst, headers);
      assert.equal(response.status, status, what);
      assert.equal(await errorOf(response), error, what);
    }
    assert.equal(upstream.requests.length, 0);
  });

  it('an oversized body without Content-Length gets its 413 while it is still being sent; a client that leaves mid-body costs nothing', async () => {
    upstream.clear();
    // Chunked, 64 KB in 1 KB chunks: the limit holds while reading, and the answer arrives.
    const pad = 'x'.repeat(1024);
    const chunks = (async function* (): AsyncGenerator<string> {
      yield callbackBody('graph.figure').slice(0, -1);
      for (let i = 0; i < 64; i++) yield `,"pad${i}":"${pad}"`;
      yield '}';
    })();
    const chunked = await gw.fetch(CALLBACK, {
      method: 'POST', token: analyst, body: Readable.from(chunks), duplex: 'half', headers: { 'content-type': 'application/json' },
    } as RequestInit);
    assert.equal(chunked.status, 413);
    assert.equal(await errorOf(chunked), 'body_too_large');
    // A client that sends the head and half the body, then goes: the next callback is served as usual.
    const socket = connect(Number(new URL(gw.url).port), '127.0.0.1');
    await once(socket, 'connect');
    const logged = gw.logs.length;
    const head = [`POST ${CALLBACK} HTTP/1.1`, `Host: ${new URL(gw.url).host}`, `Authorization: Bearer ${analyst}`,
      'Content-Type: application/json', 'Content-Length: 400', '', '{"output":"graph.figure"'].join('\r\n');
    await new Promise((resolve) => socket.write(head, resolve));
    socket.destroy();
    await eventually(() => gw.logs.slice(logged).some((line) => line.includes('"reason":"incomplete_body"')), 5000);
    assert.equal((await postCallback(callbackBody('graph.figure'), analyst)).status, 200);
    assert.equal(upstream.requests.length, 1, 'only the whole callback reached the app');
  });

  it('passes an allowed callback body to the app byte for byte', async () => {
    const body = `{ "output" : "graph.figure",\n  "outputs": {"id": "graph", "property": "figure"},\t"inputs": [{"id":"q","property":"value","value":"caf\u00e9 \u2713 \\u00e9"}] }`;
    upstream.clear();
    assert.equal((await postCallback(body, analyst)).status, 200);
    const received = upstream.last();
    assert.ok(received?.body.equals(Buffer.from(body)), 'the app received a different body');
    assert.equal(received?.headers['content-length'], String(Buffer.byteLength(body)));
  });
});

describe('WebSockets', () => {
  function openWs(headers: Record<string, string>): Promise<Opened> {
    return openWebSocket(`${gw.url.replace(/^http/, 'ws')}/app/ws`, headers);
  }

  async function closeWs(ws: WebSocket): Promise<void> {
    ws.close();
    await once(ws, 'close');
  }

  it('relays messages for a valid token, with identity headers and no Authorization upstream', async () => {
    upstream.clear();
    const outcome = await openWs({ authorization: `Bearer ${analyst}` });
    assert.ok('ws' in outcome, `refused with ${'status' in outcome ? outcome.status : ''}`);
    assert.equal(await echo(outcome.ws, 'hello'), 'hello');
    const handshake = upstream.wsHandshakes.at(-1);
    assert.equal(handshake?.headers['x-forwarded-user'], 'user-1');
    assert.equal(handshake?.headers['x-forwarded-groups'], 'analyst');
    assert.equal(handshake?.headers.authorization, undefined);
    await closeWs(outcome.ws);
  });

  it('refuses an upgrade without a token (401) or from a foreign origin (403)', async () => {
    upstream.clear();
    assert.deepEqual(await openWs({}), { status: 401 });
    assert.deepEqual(await openWs({ authorization: 'Bearer not-a-jwt' }), { status: 401 });
    assert.deepEqual(await openWs({ authorization: `Bearer ${analyst}`, origin: 'http://evil.example' }), { status: 403 });
    assert.deepEqual(await openWs({ authorization: `Bearer ${analyst}`, origin: `${HOST_ORIGIN}.evil.example` }), { status: 403 });
    assert.equal(upstream.wsHandshakes.length, 0, 'no refused upgrade reached the app');
  });

  it('accepts an allowed origin', async () => {
    const outcome = await openWs({ authorization: `Bearer ${analyst}`, origin: HOST_ORIGIN });
    assert.ok('ws' in outcome);
    assert.equal(await echo(outcome.ws, 'from the host page'), 'from the host page');
    await closeWs(outcome.ws);
  });

  it('closes the socket with 1008 when the token expires', async () => {
    // Expires 0.5-1.5 s from now (exp has one-second resolution); leeway_seconds is 0.
    const token = await tokenFor({ exp: Math.floor((Date.now() + 1500) / 1000) });
    const outcome = await openWs({ authorization: `Bearer ${token}` });
    assert.ok('ws' in outcome);
    const closed = once(outcome.ws, 'close');
    assert.equal(await echo(outcome.ws, 'still valid'), 'still valid');
    const [code] = (await closed) as [number];
    assert.equal(code, 1008);
    await eventually(() => upstream.wsConnections === 0);
  });
});

describe('operations', () => {
  it('answers /healthz and /readyz', async () => {
    const health = await gw.fetch('/healthz');
    assert.equal(health.status, 200);
    assert.deepEqual(await health.json(), { status: 'ok' });
    const ready = await gw.fetch('/readyz');
    assert.equal(ready.status, 200);
    assert.equal(((await ready.json()) as { status: string }).status, 'ready');
  });

  it('answers /readyz 503 while the issuer keys cannot be loaded', async () => {
    const unready = await startGateway({
      issuers: [{ issuer: `http://127.0.0.1:${await closedPort()}`, audiences: ['x'] }],
      apps: [{ name: 'app', prefix: '/app/', upstream: upstream.url, allow: { authenticated: true } }],
    });
    try {
      const response = await unready.fetch('/readyz');
      assert.equal(response.status, 503);
      assert.equal(((await response.json()) as { status: string }).status, 'not_ready');
      assert.equal((await unready.fetch('/healthz')).status, 200, 'still alive');
    } finally {
      await unready.close();
    }
  });

  it('exposes request, denial, JWKS and upstream-latency metrics', async () => {
    assert.equal((await gw.fetch('/app/page', { token: analyst })).status, 200);
    assert.equal((await gw.fetch('/app/page')).status, 401);
    const metrics = await (await gw.fetch('/metrics')).text();
    const series = (name: string, ...labels: string[]): RegExp =>
      new RegExp(`^${name}\\{${labels.map((l) => `(?=[^}]*${l})`).join('')}[^}]*\\} [1-9]`, 'm');
    assert.match(metrics, series('embedgate_requests_total', 'app="app"', 'outcome="proxied"'));
    assert.match(metrics, series('embedgate_requests_total', 'app="app"', 'outcome="unauthenticated"'));
    assert.match(metrics, series('embedgate_auth_failures_total', 'reason="missing_token"'));
    assert.match(metrics, series('embedgate_jwks_fetches_total', 'kind="jwks"', 'result="ok"'));
    assert.match(metrics, series('embedgate_upstream_duration_seconds_count', 'app="app"'));

    // Counted exactly, and a scrape reads the totals without adding to them.
    const proxied = async (): Promise<number> => Number(/^embedgate_requests_total\{(?=[^}]*app="app")(?=[^}]*outcome="proxied")[^}]*\} (\d+)/m
      .exec(await (await gw.fetch('/metrics')).text())?.[1]);
    const before = await proxied();
    for (let i = 0; i < 3; i += 1) assert.equal((await gw.fetch('/app/page', { token: analyst })).status, 200);
    assert.equal(await proxied(), before + 3);
    assert.equal(await proxied(), before + 3, 'a second scrape');
  });

  it('writes a JSON audit line with the reason for every denial', async () => {
    const guest = await tokenFor({ roles: ['guest'] });
    const denials: Array<[path: string, init: RequestInit & { token?: string }]> = [
      ['/app/page', {}],
      ['/app/page', { token: 'not-a-jwt' }],
      ['/app/page', { token: guest }],
      ['/app/a;b', {}],
      ['/nowhere/', {}],
      ['/dash/_dash-update-component', { method: 'POST', token: analyst, body: JSON.stringify({ output: 'payroll.children' }) }],
    ];
    for (const [i, [path, init]] of denials.entries()) {
      const requestId = `audit-${i}`;
      const response = await gw.fetch(path, { ...init, headers: { 'x-request-id': requestId } });
      assert.ok(response.status >= 400, path);
      const reason = await errorOf(response);
      await eventually(() => gw.logs.some((line) => {
        const entry = JSON.parse(line) as { audit?: string; reqId?: string; reason?: string; status?: number };
        return entry.audit === 'deny' && entry.reqId === requestId && entry.reason === reason && entry.status === response.status;
      }), 1000);
    }
  });
});
