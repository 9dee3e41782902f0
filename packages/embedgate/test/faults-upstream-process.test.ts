// Fault suite, with real servers and real `embedgate serve` processes (no mocks): what a client sees when an app is
// down, frozen, slow, resets or talks garbage (a 502/504 within the app's timeouts, other apps unaffected); when the
// gateway gets SIGTERM under load (requests in flight finish, new connections are refused, exit 0); and when a
// worker of `--workers 2` is SIGKILLed under load (it is replaced; clients lose at most the requests it held).
// Timing bounds are the configured timeout plus a margin; every wait is a bounded poll.
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { Agent, createServer as createHttpServer, request, type IncomingHttpHeaders } from 'node:http';
import { connect, createServer as createTcpServer, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import WebSocket, { WebSocketServer } from 'ws';
import { spawnCli } from './support/cli.js';
import { eventually, startGateway, type RunningGateway } from './support/gateway.js';
import { startHostileOp, type HostileOp } from './support/hostile-op.js';
import { freePort } from './support/idp.js';
import { startUpstream, type Upstream } from './support/upstream.js';
import { echo, openWebSocket } from './support/ws-client.js';

const CONNECT_TIMEOUT_MS = 300;
const RESPONSE_TIMEOUT_MS = 500;
/** Scheduling slack on a busy machine: an answer "within the timeout" arrives before timeout + this. */
const MARGIN_MS = 700;
/**
 * Once a body streams to the caller, undici's body timeout applies (it pauses while a slow caller holds the body back),
 * and its clock ticks twice a second: it fires up to a second late.
 */
const UNDICI_TIMER_SLACK_MS = 1000;
/** A healthy app's answer while another app fails must be about as quick as ever. */
const HEALTHY_LATENCY_MS = 250;
/** No single request in this file waits longer for a byte: a hang fails the test instead of stalling it. */
const CLIENT_TIMEOUT_MS = 8000;
const HOST_ORIGIN = 'http://host.example';

let op: HostileOp;
let token: string;

before(async () => {
  op = await startHostileOp();
  token = await op.sign(op.claims({ roles: ['analyst'], exp: Math.floor(Date.now() / 1000) + 3600 }));
});

after(async () => {
  await op?.close();
});

// ---------------------------------------------------------------------------------------------------------------
// Clients

interface Outcome {
  status: number;
  /** The error code when no complete response arrived (ECONNREFUSED, ECONNRESET, …); the status may still be set. */
  error?: string;
  body: string;
  headers: IncomingHttpHeaders;
  ms: number;
}

/**
 * GET `url` with node:http (no retries, no redirects), reading the whole body. `agent: false` opens a new
 * connection; a keep-alive Agent reuses one. Never hangs: after `timeoutMs` (CLIENT_TIMEOUT_MS) without a byte the
 * outcome is error "hang".
 */
function get(url: string, options: { agent?: Agent | false; headers?: Record<string, string>; onHead?: () => void; timeoutMs?: number } = {}): Promise<Outcome> {
  const started = Date.now();
  return new Promise((resolve) => {
    let settled = false;
    const done = (outcome: Omit<Outcome, 'ms'>): void => {
      if (settled) return;
      settled = true;
      resolve({ ...outcome, ms: Date.now() - started });
    };
    const req = request(url, { agent: options.agent ?? false, headers: { authorization: `Bearer ${token}`, ...options.headers } }, (res) => {
      options.onHead?.();
      const chunks: Buffer[] = [];
      res.on('data', (chunk: Buffer) => chunks.push(chunk));
      const partial = (error: string): void => done({ status: res.statusCode ?? 0, error, body: Buffer.concat(chunks).toString(), headers: res.headers });
      res.on('end', () => (res.complete ? done({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString(), headers: res.headers }) : partial('incomplete')));
      res.on('aborted', () => partial('aborted'));
      res.on('error', (error: NodeJS.ErrnoException) => partial(error.code ?? error.message));
      res.on('close', () => partial('closed'));
    });
    req.setTimeout(options.timeoutMs ?? CLIENT_TIMEOUT_MS, () => {
      done({ status: 0, error: 'hang', body: '', headers: {} });
      req.destroy();
    });
    req.on('error', (error: NodeJS.ErrnoException) => done({ status: 0, error: error.code ?? error.message, body: '', headers: {} }));
    req.end();
  });
}

function jsonError(outcome: Outcome): string | undefined {
  try {
    return (JSON.parse(outcome.body) as { error?: string }).error;
  } catch {
    return undefined;
  }
}

interface LoadRecord extends Outcome {
  id: string;
  startedAt: number;
}

/**
 * One client of a load test: its own keep-alive connection (a new one only after the old one closes), one request
 * after another, each with a unique X-Request-Id the upstream records.
 */
class SequentialClient {
  readonly records: LoadRecord[] = [];
  private readonly agent = new Agent({ keepAlive: true, maxSockets: 1 });
  private stopped = false;
  private loop: Promise<void> = Promise.resolve();

  constructor(
    private readonly name: string,
    private readonly url: string,
    private readonly options: { stopOn?: (outcome: Outcome) => boolean; timeoutMs?: number } = {},
  ) {}

  start(): void {
    this.loop = (async () => {
      for (let i = 0; !this.stopped; i += 1) {
        const id = `${this.name}-${i}`;
        const startedAt = Date.now();
        const outcome = await get(this.url, { agent: this.agent, headers: { 'x-request-id': id }, timeoutMs: this.options.timeoutMs });
        this.records.push({ ...outcome, id, startedAt });
        if (this.options.stopOn?.(outcome) === true) return;
      }
    })();
  }

  /** Resolves once the loop has ended by itself (stopOn). */
  get ended(): Promise<void> {
    return this.loop;
  }

  async stop(): Promise<void> {
    this.stopped = true;
    await this.loop;
    this.agent.destroy();
  }

  get failures(): LoadRecord[] {
    return this.records.filter((record) => record.error !== undefined || record.status !== 200);
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Upstreams

/** The ways the misbehaving app answers, chosen by the last path segment of the request. */
type Fault =
  | 'hang' | 'late' | 'close-before-head' | 'reset-before-head' | 'reset-in-head' | 'garbage'
  | 'reset-mid-body' | 'stall-mid-body' | 'reset-mid-page' | 'stall-mid-page';

const BODY_HEAD = 'HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\nContent-Length: 100000\r\n\r\n';
const PAGE_HEAD = 'HTTP/1.1 200 OK\r\nContent-Type: text/html; charset=utf-8\r\nContent-Length: 100000\r\n\r\n<!doctype html><html><body>';
/** The misbehaving app sends half a page, then resets this much later (shapes the fault; nothing waits on it). */
const PAGE_RESET_AFTER_MS = 100;

interface FaultyUpstream {
  url: string;
  /** Connections open now. */
  readonly connections: number;
  /** Late answers sent so far (each after the gateway gave up on it). */
  readonly lateAnswers: number;
  /** Resets the connections of 'reset-mid-body' requests whose head and part of the body are out. */
  resetHeld(): void;
  close(): Promise<void>;
}

/** A TCP server that reads one request head per connection and then misbehaves as the path asks. */
async function startFaultyUpstream(): Promise<FaultyUpstream> {
  const sockets = new Set<Socket>();
  const held = new Set<Socket>();
  let lateAnswers = 0;
  const misbehave = (socket: Socket, fault: Fault): void => {
    switch (fault) {
      case 'hang':
        return;
      case 'late':
        // Answers once the gateway has given up (and maybe closed the connection), as a slow app would.
        setTimeout(() => {
          lateAnswers += 1;
          socket.end('HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 4\r\n\r\nlate');
        }, RESPONSE_TIMEOUT_MS + 200);
        return;
      case 'close-before-head':
        socket.end();
        return;
      case 'reset-before-head':
        socket.resetAndDestroy();
        return;
      case 'reset-in-head':
        socket.write('HTTP/1.1 200 OK\r\nContent-Ty', () => socket.resetAndDestroy());
        return;
      case 'garbage':
        socket.end(Buffer.from('SSH-2.0-OpenSSH_9.6\r\n\u0000\u00ff\u00fe this is not HTTP\r\n\r\n', 'latin1'));
        return;
      case 'reset-mid-body':
        socket.write(`${BODY_HEAD}${'x'.repeat(1000)}`, () => held.add(socket));
        return;
      case 'stall-mid-body':
        socket.write(`${BODY_HEAD}${'x'.repeat(1000)}`);
        return;
      case 'reset-mid-page':
        socket.write(`${PAGE_HEAD}<p>half a page`, () => setTimeout(() => socket.resetAndDestroy(), PAGE_RESET_AFTER_MS));
        return;
      case 'stall-mid-page':
        socket.write(`${PAGE_HEAD}<p>half a page`);
    }
  };
  const server = createTcpServer((socket) => {
    sockets.add(socket);
    socket.on('close', () => {
      sockets.delete(socket);
      held.delete(socket);
    });
    socket.on('error', () => undefined);
    let head = '';
    const onData = (chunk: Buffer): void => {
      head += chunk.toString('latin1');
      if (!head.includes('\r\n\r\n')) return;
      socket.off('data', onData);
      const target = head.split(' ')[1] ?? '';
      misbehave(socket, target.slice(target.lastIndexOf('/') + 1) as Fault);
    };
    socket.on('data', onData);
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as { port: number };
  return {
    url: `http://127.0.0.1:${port}`,
    get connections() {
      return sockets.size;
    },
    get lateAnswers() {
      return lateAnswers;
    },
    resetHeld: () => {
      for (const socket of held) socket.resetAndDestroy();
    },
    close: async () => {
      for (const socket of sockets) socket.destroy();
      await new Promise((resolve) => server.close(resolve));
    },
  };
}

/**
 * An app process that is frozen (SIGSTOP) with its accept queue full: the kernel no longer answers its SYNs, so
 * a connection attempt neither succeeds nor fails — only connect_timeout_ms ends it.
 */
async function startFrozenUpstream(): Promise<{ url: string; close(): Promise<void> }> {
  const program = "const s = require('node:net').createServer(); s.listen({ port: 0, host: '127.0.0.1', backlog: 1 }, () => console.log(s.address().port));";
  const child: ChildProcess = spawn(process.execPath, ['-e', program], { stdio: ['ignore', 'pipe', 'inherit'] });
  const [line] = (await once(child.stdout!, 'data')) as [Buffer];
  const port = Number(line.toString().trim());
  child.kill('SIGSTOP');
  // Fill the accept queue: connections complete until it is full, then a SYN goes unanswered.
  const fillers: Socket[] = [];
  for (;;) {
    assert.ok(fillers.length < 64, 'the frozen app\'s accept queue never filled');
    const socket = connect(port, '127.0.0.1');
    socket.on('error', () => undefined);
    fillers.push(socket);
    const connected = await Promise.race([
      once(socket, 'connect').then(() => true),
      new Promise<boolean>((resolve) => setTimeout(resolve, 300, false)),
    ]);
    if (!connected) break;
  }
  return {
    url: `http://127.0.0.1:${port}`,
    close: async () => {
      for (const socket of fillers) socket.destroy();
      const exited = once(child, 'exit');
      child.kill('SIGKILL');
      await exited;
    },
  };
}

interface DelayUpstream {
  url: string;
  /** X-Request-Ids of requests received and not yet answered. */
  readonly pending: ReadonlySet<string>;
  /** X-Request-Ids of every request received. */
  readonly received: ReadonlySet<string>;
  readonly wsConnections: number;
  close(): Promise<void>;
}

/**
 * An app whose /delay/<ms> answers "done" after <ms> and whose /stream/<ms> sends its head and "start " at once and
 * "done" after <ms>, with a WebSocket echo on the same port.
 */
async function startDelayUpstream(): Promise<DelayUpstream> {
  const pending = new Set<string>();
  const received = new Set<string>();
  const server = createHttpServer((req, res) => {
    const id = String(req.headers['x-request-id']);
    received.add(id);
    pending.add(id);
    const [, kind, ms] = /\/(delay|stream)\/(\d+)/.exec(req.url ?? '') ?? [];
    res.writeHead(200, { 'content-type': 'text/plain' });
    if (kind === 'stream') res.write('start ');
    const timer = setTimeout(() => res.end('done'), Number(ms ?? 0));
    res.on('close', () => {
      clearTimeout(timer);
      pending.delete(id);
    });
  });
  const wss = new WebSocketServer({ server });
  wss.on('connection', (ws) => ws.on('message', (data, isBinary) => ws.send(data, { binary: isBinary })));
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as { port: number };
  return {
    url: `http://127.0.0.1:${port}`,
    pending,
    received,
    get wsConnections() {
      return wss.clients.size;
    },
    close: async () => {
      for (const client of wss.clients) client.terminate();
      wss.close();
      const closed = new Promise((resolve) => server.close(resolve));
      server.closeAllConnections();
      await closed;
    },
  };
}

// ---------------------------------------------------------------------------------------------------------------
// 1. Upstream faults

describe('upstream faults: a failing app costs its callers a 502/504 within its timeouts, and nobody else anything', () => {
  let faulty: FaultyUpstream;
  let frozen: { url: string; close(): Promise<void> };
  let healthy: Upstream;
  let gw: RunningGateway;

  before(async () => {
    faulty = await startFaultyUpstream();
    frozen = await startFrozenUpstream();
    healthy = await startUpstream();
    const timeouts = { connect_timeout_ms: CONNECT_TIMEOUT_MS, response_timeout_ms: RESPONSE_TIMEOUT_MS };
    const allow = { roles: ['analyst'] };
    gw = await startGateway({
      issuers: [{ issuer: op.issuer, audiences: [op.audience] }],
      // Embedding on: HTML pages are read whole and rewritten, the path where a page that breaks off must still fail cleanly.
      embed: { allowed_origins: [HOST_ORIGIN] },
      apps: [
        { name: 'faulty', prefix: '/faulty/', upstream: faulty.url, allow, ...timeouts },
        { name: 'down', prefix: '/down/', upstream: `http://127.0.0.1:${await freePort()}`, allow, ...timeouts },
        { name: 'frozen', prefix: '/frozen/', upstream: frozen.url, allow, ...timeouts },
        { name: 'healthy', prefix: '/healthy/', upstream: healthy.url, allow, ...timeouts },
      ],
    }, 'info');
    await eventually(async () => (await gw.fetch('/readyz')).status === 200);
  });

  after(async () => {
    await gw?.close();
    await faulty?.close();
    await frozen?.close();
    await healthy?.close();
  });

  /** Every failure an app can cause before its head is out, what its caller gets, and by when. */
  const FAILURES: Array<{ path: string; status: number; error: string; atLeastMs: number; withinMs: number }> = [
    { path: '/down/page', status: 502, error: 'upstream_unavailable', atLeastMs: 0, withinMs: MARGIN_MS },
    { path: '/frozen/page', status: 502, error: 'upstream_unavailable', atLeastMs: CONNECT_TIMEOUT_MS - 50, withinMs: CONNECT_TIMEOUT_MS + MARGIN_MS },
    { path: '/faulty/hang', status: 504, error: 'upstream_timeout', atLeastMs: RESPONSE_TIMEOUT_MS - 50, withinMs: RESPONSE_TIMEOUT_MS + MARGIN_MS },
    { path: '/faulty/late', status: 504, error: 'upstream_timeout', atLeastMs: RESPONSE_TIMEOUT_MS - 50, withinMs: RESPONSE_TIMEOUT_MS + MARGIN_MS },
    { path: '/faulty/close-before-head', status: 502, error: 'upstream_unavailable', atLeastMs: 0, withinMs: MARGIN_MS },
    { path: '/faulty/reset-before-head', status: 502, error: 'upstream_unavailable', atLeastMs: 0, withinMs: MARGIN_MS },
    { path: '/faulty/reset-in-head', status: 502, error: 'upstream_unavailable', atLeastMs: 0, withinMs: MARGIN_MS },
    { path: '/faulty/garbage', status: 502, error: 'upstream_unavailable', atLeastMs: 0, withinMs: MARGIN_MS },
    { path: '/faulty/reset-mid-page', status: 502, error: 'upstream_unavailable', atLeastMs: 0, withinMs: PAGE_RESET_AFTER_MS + MARGIN_MS },
    { path: '/faulty/stall-mid-page', status: 504, error: 'upstream_timeout', atLeastMs: RESPONSE_TIMEOUT_MS - 50, withinMs: RESPONSE_TIMEOUT_MS + MARGIN_MS },
  ];

  function assertFailure(outcome: Outcome, expected: (typeof FAILURES)[number]): void {
    const what = `${expected.path}: ${outcome.status} ${outcome.error ?? ''} ${outcome.body.slice(0, 200)}`;
    assert.equal(outcome.error, undefined, what);
    assert.equal(outcome.status, expected.status, what);
    assert.equal(outcome.headers['content-type'], 'application/json', what);
    assert.equal(jsonError(outcome), expected.error, what);
    assert.ok(outcome.ms >= expected.atLeastMs, `${expected.path}: answered after ${outcome.ms} ms, before the timeout`);
    assert.ok(outcome.ms <= expected.withinMs, `${expected.path}: answered after ${outcome.ms} ms, later than ${expected.withinMs} ms`);
  }

  it('down, frozen, silent, late, reset, garbage or cut-off pages: each gets its 502/504 JSON within connect/response_timeout_ms', async () => {
    for (const expected of FAILURES) assertFailure(await get(`${gw.url}${expected.path}`), expected);
  });

  it('a late answer, arriving after the gateway gave up, is dropped harmlessly', async () => {
    const lateBefore = faulty.lateAnswers;
    assertFailure(await get(`${gw.url}/faulty/late`), FAILURES.find((f) => f.path === '/faulty/late')!);
    await eventually(() => faulty.lateAnswers > lateBefore, 2000);
    const next = await get(`${gw.url}/healthy/page`);
    assert.equal(next.status, 200);
    assert.equal((await get(`${gw.url}/healthz`)).status, 200);
  });

  it('a response that breaks off after its head is cut, never passed off as complete, within response_timeout_ms', async () => {
    // The app resets the connection once the client has the 200 head: the client sees the body end early.
    const reset = await get(`${gw.url}/faulty/reset-mid-body`, { onHead: () => setImmediate(() => faulty.resetHeld()) });
    assert.equal(reset.status, 200, 'the head was already on its way');
    assert.notEqual(reset.error, undefined, `the body looked complete: ${reset.body.length} bytes`);
    assert.ok(reset.body.length < 100000);
    // The app stops sending halfway: the gateway gives up after response_timeout_ms of silence and cuts the response.
    const stalled = await get(`${gw.url}/faulty/stall-mid-body`);
    assert.equal(stalled.status, 200);
    assert.notEqual(stalled.error, undefined, `the body looked complete: ${stalled.body.length} bytes`);
    assert.ok(stalled.ms <= RESPONSE_TIMEOUT_MS + UNDICI_TIMER_SLACK_MS + MARGIN_MS, `cut after ${stalled.ms} ms`);
  });

  it('an upload slower than response_timeout_ms is not cut: the clock starts once the request is sent', async () => {
    const chunks = 5;
    const outcome = await new Promise<Outcome>((resolve) => {
      const started = Date.now();
      const req = request(`${gw.url}/healthy/upload`, {
        method: 'POST', agent: false, headers: { authorization: `Bearer ${token}`, 'content-type': 'application/octet-stream' },
      }, (res) => {
        res.resume();
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: '', headers: res.headers, ms: Date.now() - started }));
      });
      req.on('error', (error: NodeJS.ErrnoException) => resolve({ status: 0, error: error.code ?? error.message, body: '', headers: {}, ms: Date.now() - started }));
      // One chunk every 200 ms: the whole body takes twice response_timeout_ms.
      let sent = 0;
      const timer = setInterval(() => {
        sent += 1;
        if (sent < chunks) req.write('x'.repeat(1000));
        else {
          clearInterval(timer);
          req.end('x'.repeat(1000));
        }
      }, RESPONSE_TIMEOUT_MS * 2 / chunks);
    });
    assert.equal(outcome.status, 200, outcome.error);
    assert.ok(outcome.ms >= RESPONSE_TIMEOUT_MS, `the upload took only ${outcome.ms} ms`);
    assert.equal(healthy.last()?.body.length, chunks * 1000);
  });

  it('a navigation to a failing app gets the small HTML error page, not JSON', async () => {
    for (const [path, status, title] of [['/down/page', 502, 'App unavailable'], ['/faulty/hang', 504, 'App timed out']] as const) {
      const outcome = await get(`${gw.url}${path}`, { headers: { 'sec-fetch-mode': 'navigate', 'sec-fetch-dest': 'document', accept: 'text/html' } });
      assert.equal(outcome.status, status, path);
      assert.match(String(outcome.headers['content-type']), /^text\/html/, path);
      assert.match(outcome.body, new RegExp(`<title>${title}</title>`), path);
      assert.match(outcome.body, /upstream_(unavailable|timeout)/, path);
      assert.match(String(outcome.headers['content-security-policy']), /default-src 'none'/, path);
    }
  });

  it('other apps are unaffected: a healthy app answers 200 promptly while every fault is in progress at once', async () => {
    // Five of each failure at once, the slow ones holding their connections for the whole timeout.
    let pending = 0;
    const failing = FAILURES.flatMap((expected) => Array.from({ length: 5 }, async () => {
      pending += 1;
      const outcome = await get(`${gw.url}${expected.path}`);
      pending -= 1;
      return outcome;
    }));
    // Once the silent, late and stalled ones hold their connections to the faulty app, and for as long as any fails:
    await eventually(() => faulty.connections >= 15, 2000, 5);
    const healthyOutcomes: Outcome[] = [];
    while (pending > 0) healthyOutcomes.push(await get(`${gw.url}/healthy/page`));
    const failed = await Promise.all(failing);
    for (const outcome of healthyOutcomes) assert.equal(outcome.status, 200, `${outcome.error ?? ''} ${outcome.body}`);
    const latencies = healthyOutcomes.map((outcome) => outcome.ms);
    assert.ok(latencies.length >= 3, `only ${latencies.length} healthy requests`);
    assert.ok(Math.max(...latencies) <= HEALTHY_LATENCY_MS, `healthy latencies: ${latencies.join(', ')} ms`);
    // And the failing apps still failed as promised, with a little more slack for 50 requests at once.
    FAILURES.forEach((expected, i) => {
      for (const outcome of failed.slice(i * 5, i * 5 + 5)) assertFailure(outcome, { ...expected, withinMs: expected.withinMs + MARGIN_MS });
    });
  });

  it('the gateway survives all of it: still healthy, and not one 500 or failed handler in its log', async () => {
    assert.equal((await get(`${gw.url}/healthz`)).status, 200);
    assert.equal((await get(`${gw.url}/healthy/page`)).status, 200);
    const failures = gw.logs.filter((line) => /request handling failed|"status":500/.test(line));
    assert.deepEqual(failures, []);
  });
});

// ---------------------------------------------------------------------------------------------------------------
// 2 and 3. The real process: SIGTERM under load, a SIGKILLed worker

describe('the embedgate serve process under load', () => {
  let upstream: DelayUpstream;
  let dir: string;

  before(async () => {
    upstream = await startDelayUpstream();
    dir = mkdtempSync(join(tmpdir(), 'embedgate-faults-'));
  });

  after(async () => {
    await upstream?.close();
    if (dir !== undefined) rmSync(dir, { recursive: true, force: true });
  });

  async function serve(workers?: number): Promise<{ url: string; gateway: ReturnType<typeof spawnCli> }> {
    const url = `http://127.0.0.1:${await freePort()}`;
    const file = join(dir, `gateway-${new URL(url).port}.json`);
    writeFileSync(file, JSON.stringify({
      listen: new URL(url).host,
      public_url: url,
      data_dir: join(dir, `data-${new URL(url).port}`),
      log_level: 'info',
      issuers: [{ issuer: op.issuer, audiences: [op.audience] }],
      apps: [{ name: 'slow', prefix: '/slow/', upstream: upstream.url, allow: { roles: ['analyst'] }, response_timeout_ms: 5000 }],
    }));
    const gateway = spawnCli(['serve', '--config', file, ...(workers === undefined ? [] : ['--workers', String(workers)])]);
    try {
      await eventually(async () => (await get(`${url}/readyz`)).status === 200, 20_000, 50);
    } catch (error) {
      await gateway.stop();
      throw new Error(`the gateway did not start: ${gateway.output()}`, { cause: error });
    }
    return { url, gateway };
  }

  it('SIGTERM under load: every request in flight ends 200, new connections are refused, the process exits 0 promptly', async () => {
    const { url, gateway } = await serve();
    const refused = (outcome: Outcome): boolean => outcome.error === 'ECONNREFUSED';
    // Keep-alive clients, one request after another: four whose answers come whole after 300 ms, and one whose
    // answer streams (its head is out before the signal, its body ends after it).
    const clients = [
      ...Array.from({ length: 4 }, (_, i) => new SequentialClient(`load${i}`, `${url}/slow/delay/300`, { stopOn: refused })),
      new SequentialClient('stream', `${url}/slow/stream/300`, { stopOn: refused }),
    ];
    try {
      for (const client of clients) client.start();
      await eventually(() => clients.every((client) => client.records.length >= 2), 5000);
      // A few more on connections of their own, in the app's hands when the signal comes.
      const extra = Array.from({ length: 3 }, (_, i) => get(`${url}/slow/delay/600`, { headers: { 'x-request-id': `extra-${i}` } }));
      await eventually(() => [0, 1, 2].every((i) => upstream.pending.has(`extra-${i}`)), 5000);
      assert.ok(upstream.pending.size > 3, 'the load clients have requests in flight too');

      const signalledAt = Date.now();
      gateway.child.kill('SIGTERM');
      // The listener closes at once: a new connection is refused.
      await eventually(async () => refused(await get(`${url}/healthz`)), 2000);

      for (const outcome of await Promise.all(extra)) {
        assert.equal(outcome.status, 200, `${outcome.error ?? ''} ${outcome.body}`);
        assert.equal(outcome.body, 'done');
      }
      const code = await gateway.exited;
      const exitMs = Date.now() - signalledAt;
      assert.equal(code, 0, gateway.output());
      // The longest request in flight needs 600 ms; the drain must not wait for its 10 s deadline.
      assert.ok(exitMs <= 600 + 2000, `exited ${exitMs} ms after SIGTERM`);

      await Promise.all(clients.map((client) => client.ended));
      // Whatever reached the app (those in flight at the signal among them) was answered in full; anything else was
      // refused at connect or, racing the close of a keep-alive connection that fell idle, closed before the gateway
      // read it (nothing done, safe to retry): never a 5xx, an answer cut short or a hang.
      const records = clients.flatMap((client) => client.records);
      for (const record of records) {
        if (upstream.received.has(record.id)) {
          assert.equal(record.status, 200, `${record.id}: ${record.error ?? ''}`);
          assert.equal(record.error, undefined, record.id);
          assert.equal(record.body, record.id.startsWith('stream') ? 'start done' : 'done', record.id);
        } else {
          assert.equal(record.status, 0, `${record.id} got ${record.status} without reaching the app`);
          assert.ok(['ECONNREFUSED', 'ECONNRESET'].includes(record.error ?? ''), `${record.id}: ${record.error ?? 'no error'}`);
        }
      }
      for (const client of clients) assert.ok(refused(client.records.at(-1)!), 'every client ends up refused');
    } finally {
      await Promise.all(clients.map((client) => client.stop()));
      await gateway.stop();
    }
  });

  it('SIGTERM with a WebSocket open: it is closed with 1001 going away, the app\'s side too, and the process exits 0', async () => {
    const { url, gateway } = await serve();
    try {
      const opened = await openWebSocket(`${url.replace(/^http/, 'ws')}/slow/ws`, { authorization: `Bearer ${token}` });
      assert.ok('ws' in opened, `refused: ${JSON.stringify(opened)}`);
      const ws: WebSocket = opened.ws;
      assert.equal(await echo(ws, 'before'), 'before');
      assert.equal(upstream.wsConnections, 1);
      const closed = once(ws, 'close') as Promise<[number, Buffer]>;
      const signalledAt = Date.now();
      gateway.child.kill('SIGTERM');
      const [code, reason] = await closed;
      assert.equal(code, 1001);
      assert.equal(reason.toString(), 'gateway shutting down');
      await eventually(() => upstream.wsConnections === 0, 2000);
      assert.equal(await gateway.exited, 0, gateway.output());
      assert.ok(Date.now() - signalledAt <= 2000, `exited ${Date.now() - signalledAt} ms after SIGTERM`);
    } finally {
      await gateway.stop();
    }
  });

  it('--workers 2, one SIGKILLed under load: it is replaced, 2 workers serve on, and clients lose at most the requests it held', async () => {
    const { url, gateway } = await serve(2);
    const clientCount = 8;
    // Requests take 100 ms; a client gives up on one after 3 s without an answer (see the round-robin note below).
    const clients = Array.from({ length: clientCount }, (_, i) => new SequentialClient(`w${i}`, `${url}/slow/delay/100`, { timeoutMs: 3000 }));
    try {
      await eventually(() => listeningPids(gateway.output()).length === 2, 10_000);
      const [victim, survivor] = listeningPids(gateway.output()) as [number, number];
      for (const client of clients) client.start();
      // Both workers hold some of the clients' connections.
      await eventually(() => {
        const served = servingPids(gateway.output());
        return served.has(victim) && served.has(survivor);
      }, 5000, 50);

      const countsAtKill = clients.map((client) => client.records.length);
      process.kill(victim, 'SIGKILL');
      await eventually(() => gateway.output().includes(`worker ${victim} stopped (SIGKILL)`), 5000, 5);
      const deathReportedAt = Date.now();
      await eventually(() => listeningPids(gateway.output()).length === 3, 10_000, 50);
      const replacement = listeningPids(gateway.output()).find((pid) => pid !== victim && pid !== survivor) as number;
      // Two workers again: the survivor and the replacement, which takes new connections.
      assert.ok(isAlive(survivor) && isAlive(replacement) && !isAlive(victim));
      await eventually(async () => {
        await Promise.all(Array.from({ length: 4 }, () => get(`${url}/slow/delay/0`)));
        return servingPids(gateway.output()).has(replacement);
      }, 10_000, 100);
      // Every client goes on being served afterwards.
      await eventually(() => clients.every((client, i) => client.records.length >= (countsAtKill[i] as number) + 5), 10_000, 50);
      await Promise.all(clients.map((client) => client.stop()));

      const records = clients.flatMap((client) => client.records);
      const failures = clients.flatMap((client) => client.failures);
      const detail = failures.map((f) => `${f.id}: ${f.status} ${f.error ?? ''}`).join(', ');
      // A client has one connection, so one request at a time on the killed worker: it loses at most that one, its
      // connection cut. Node's round-robin adds at most one more for the whole gateway: a new connection the primary
      // hands to the worker in the instant it dies is never taken back, and waits unanswered until the client gives up
      // (cluster's RoundRobinHandle only reclaims a connection the worker refuses; see workers.ts).
      for (const client of clients) {
        assert.ok(client.failures.filter((f) => f.error !== 'hang').length <= 1, `a client lost more than one request: ${detail}`);
      }
      assert.ok(failures.filter((f) => f.error === 'hang').length <= 1, `more than one connection stranded: ${detail}`);
      assert.ok(failures.length <= clientCount, detail);
      // What fails was in flight to the dying worker: sent before the primary reported the death, its connection cut
      // (no answer, or one cut short) or stranded; never a 5xx. Nothing sent afterwards fails.
      for (const failure of failures) {
        assert.ok(['ECONNRESET', 'aborted', 'closed', 'incomplete', 'hang'].includes(failure.error ?? ''), `${failure.id}: ${failure.status} ${failure.error ?? ''}`);
        assert.ok(failure.startedAt <= deathReportedAt, `${failure.id} was sent ${failure.startedAt - deathReportedAt} ms after the worker's death was reported`);
      }
      assert.ok(records.length - failures.length >= clientCount * 5, `${records.length} requests`);
    } finally {
      await Promise.all(clients.map((client) => client.stop()));
      assert.equal(await gateway.stop(), 0, gateway.output());
    }
  });
});

/** Worker pids in the order the primary reported them listening. */
function listeningPids(output: string): number[] {
  return [...output.matchAll(/worker (\d+) listening/g)].map((match) => Number(match[1]));
}

/** Pids that wrote access-log lines (pino puts a worker's pid on every line; lines are flushed at least once a second). */
function servingPids(output: string): Set<number> {
  const pids = new Set<number>();
  for (const line of output.split('\n')) {
    if (!line.startsWith('{') || !line.endsWith('}')) continue; // the last line may still be arriving
    const entry = JSON.parse(line) as { pid?: number; path?: string };
    if (entry.path?.startsWith('/slow/') === true && typeof entry.pid === 'number') pids.add(entry.pid);
  }
  return pids;
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}
