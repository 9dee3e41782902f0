// A TLS-terminating reverse proxy for the engine tests: the gateway speaks plain HTTP only, so the browsers reach it
// at https://127.0.0.1:<proxy port> (the test certificate) and the proxy forwards every request and every WebSocket
// upgrade to the gateway's 127.0.0.1 port, bodies and frames untouched, adding X-Forwarded-Proto: https and
// X-Forwarded-For (configure the gateway with trusted_proxies: ['127.0.0.1/32'] and public_url = proxy.origin).
// Every exchange is recorded with its request and response headers, so a test can see what went over the wire
// (cookies, Set-Cookie, the service worker's X-Embedgate-Session header, WebSocket subprotocols) and wait, bounded,
// for the exchange it expects.
import { once } from 'node:events';
import { Agent, request as httpRequest, type IncomingHttpHeaders, type IncomingMessage, type OutgoingHttpHeaders } from 'node:http';
import { createServer, type Server } from 'node:https';
import { connect, type Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import type { TestTls } from './tls.js';

export interface ProxiedExchange {
  /** Order of arrival, from 0. */
  seq: number;
  method: string;
  /** Path and query, as sent. */
  url: string;
  /** Path without the query. */
  path: string;
  /** The browser's request headers (lower-case names), before the proxy added its own. */
  requestHeaders: IncomingHttpHeaders;
  /** True for a WebSocket upgrade. */
  upgrade: boolean;
  /** The gateway's status (101 for an accepted upgrade); undefined until it answered, 502 when it could not be reached. */
  status?: number;
  /** The gateway's response headers (lower-case names); set-cookie is always an array. */
  responseHeaders?: IncomingHttpHeaders;
  /** When the request reached the proxy (Date.now()). */
  receivedAt: number;
  /** When the response head came back (Date.now()). */
  answeredAt?: number;
  /**
   * Why the proxy answered 502 itself (the error code of its leg to the gateway) and whether the browser had already
   * gone by then; undefined when the status is the gateway's.
   */
  proxyFailure?: { code: string; browserGone: boolean };
}

export interface TlsProxy {
  /** https://127.0.0.1:<port>: what the gateway's public_url must be. */
  origin: string;
  port: number;
  exchanges: ProxiedExchange[];
  /**
   * The first exchange that matches, answered (already, or the next one); rejects after timeoutMs with the list of
   * what did pass.
   */
  waitFor(match: (exchange: ProxiedExchange) => boolean, timeoutMs?: number, what?: string): Promise<ProxiedExchange>;
  close(): Promise<void>;
}

/** Hop-by-hop headers (RFC 9110 7.6.1) are the proxy's own business on each leg; everything else passes as it is. */
const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'proxy-connection', 'te', 'trailer', 'transfer-encoding', 'upgrade']);

/** Raw headers (name, value, name, value…) without hop-by-hop ones and without the ones the proxy sets itself. */
function forwardable(raw: string[], drop: ReadonlySet<string> = new Set()): string[] {
  const kept: string[] = [];
  for (let i = 0; i + 1 < raw.length; i += 2) {
    const name = (raw[i] as string).toLowerCase();
    if (!HOP_BY_HOP.has(name) && !drop.has(name)) kept.push(raw[i] as string, raw[i + 1] as string);
  }
  return kept;
}

const FORWARDED = new Set(['x-forwarded-proto', 'x-forwarded-for']);

/** X-Forwarded-For as a proxy appends to it: the chain the client sent (if any), then the client's address. */
function forwardedFor(req: IncomingMessage): string {
  const peer = (req.socket.remoteAddress ?? '').replace(/^::ffff:/, '');
  const previous = req.headers['x-forwarded-for'];
  return previous === undefined || previous === '' ? peer : `${String(previous)}, ${peer}`;
}

function headersOf(raw: string[]): IncomingHttpHeaders {
  const headers: Record<string, string | string[]> = {};
  for (let i = 0; i + 1 < raw.length; i += 2) {
    const name = (raw[i] as string).toLowerCase();
    const value = raw[i + 1] as string;
    const previous = headers[name];
    if (name === 'set-cookie') headers[name] = [...((previous as string[] | undefined) ?? []), value];
    else headers[name] = previous === undefined ? value : `${String(previous)}, ${value}`;
  }
  return headers as IncomingHttpHeaders;
}

export interface TlsProxyOptions {
  /**
   * Set-Cookie lines the proxy adds to the gateway's answer for these paths (e.g. an unpartitioned SameSite=None
   * cookie: a test that never sees it come back knows the browser blocks third-party cookies in the frame).
   */
  addCookies?: Record<string, string>;
}

/** Starts the proxy on 127.0.0.1 (a free port) in front of the gateway at http://127.0.0.1:<gatewayPort>. */
export async function startTlsProxy(tls: TestTls, gatewayPort: number, options: TlsProxyOptions = {}): Promise<TlsProxy> {
  const exchanges: ProxiedExchange[] = [];
  const waiters = new Set<() => void>();
  const sockets = new Set<Socket | Duplex>();
  const agent = new Agent({ keepAlive: true, maxSockets: 64 });
  const wake = (): void => {
    for (const waiter of [...waiters]) waiter();
  };
  const record = (req: IncomingMessage, upgrade: boolean): ProxiedExchange => {
    const url = req.url ?? '/';
    const exchange: ProxiedExchange = {
      seq: exchanges.length, method: req.method ?? 'GET', url, path: url.split('?')[0] ?? url,
      requestHeaders: req.headers, upgrade, receivedAt: Date.now(),
    };
    exchanges.push(exchange);
    return exchange;
  };
  const answered = (exchange: ProxiedExchange, status: number, headers: IncomingHttpHeaders): void => {
    exchange.status = status;
    exchange.responseHeaders = headers;
    exchange.answeredAt = Date.now();
    wake();
  };

  const server: Server = createServer({ cert: tls.certPem, key: tls.keyPem }, (req, res) => {
    const exchange = record(req, false);
    let browserGone = false;
    res.on('close', () => {
      browserGone = !res.writableFinished;
    });
    const headers = [...forwardable(req.rawHeaders, FORWARDED), 'X-Forwarded-Proto', 'https', 'X-Forwarded-For', forwardedFor(req)];
    const upstream = httpRequest({
      host: '127.0.0.1', port: gatewayPort, method: req.method, path: req.url, agent,
      // Node takes raw headers (name, value, …) as they are: order, case and repeated headers kept.
      headers: headers as unknown as OutgoingHttpHeaders,
    }, (answer) => {
      const added = options.addCookies?.[exchange.path];
      const raw = [...forwardable(answer.rawHeaders), ...(added === undefined ? [] : ['Set-Cookie', added])];
      answered(exchange, answer.statusCode ?? 502, headersOf(answer.rawHeaders));
      res.writeHead(answer.statusCode ?? 502, answer.statusMessage, raw);
      answer.pipe(res);
      answer.on('error', () => res.destroy());
    });
    upstream.on('error', (error: NodeJS.ErrnoException) => {
      if (exchange.status === undefined) {
        exchange.proxyFailure = { code: error.code ?? error.message, browserGone };
        answered(exchange, 502, {});
      }
      if (res.headersSent) res.destroy();
      else res.writeHead(502, { 'content-type': 'text/plain' }).end('the gateway could not be reached');
    });
    req.pipe(upstream);
    req.on('error', () => {
      browserGone = true;
      upstream.destroy();
    });
  });

  // WebSockets: the handshake goes to the gateway as it came (plus the X-Forwarded-* headers), and from then on the
  // two connections are piped to each other byte for byte; the gateway's answer head is only read to record it.
  server.on('upgrade', (req: IncomingMessage, client: Duplex, head: Buffer) => {
    const exchange = record(req, true);
    sockets.add(client);
    client.on('close', () => sockets.delete(client));
    const gateway = connect(gatewayPort, '127.0.0.1');
    sockets.add(gateway);
    gateway.on('close', () => sockets.delete(gateway));
    const raw = [...forwardable(req.rawHeaders, FORWARDED), 'Connection', 'Upgrade', 'Upgrade', req.headers.upgrade ?? 'websocket',
      'X-Forwarded-Proto', 'https', 'X-Forwarded-For', forwardedFor(req)];
    let lines = `${req.method ?? 'GET'} ${req.url ?? '/'} HTTP/1.1\r\n`;
    for (let i = 0; i + 1 < raw.length; i += 2) lines += `${raw[i] as string}: ${raw[i + 1] as string}\r\n`;
    gateway.write(`${lines}\r\n`, 'latin1');
    if (head.length > 0) gateway.write(head);
    let responseHead = Buffer.alloc(0);
    const readHead = (chunk: Buffer): void => {
      responseHead = Buffer.concat([responseHead, chunk]);
      const end = responseHead.indexOf('\r\n\r\n');
      if (end === -1 && responseHead.length < 65536) return;
      gateway.off('data', readHead);
      const [statusLine = '', ...headerLines] = responseHead.subarray(0, end === -1 ? responseHead.length : end).toString('latin1').split('\r\n');
      const rawResponse = headerLines.flatMap((line) => {
        const colon = line.indexOf(':');
        return colon === -1 ? [] : [line.slice(0, colon).trim(), line.slice(colon + 1).trim()];
      });
      answered(exchange, Number(statusLine.split(' ')[1] ?? 0), headersOf(rawResponse));
    };
    gateway.on('data', readHead);
    gateway.pipe(client);
    client.pipe(gateway);
    const end = (): void => {
      if (exchange.status === undefined) answered(exchange, 502, {});
      client.destroy();
      gateway.destroy();
    };
    gateway.on('error', end);
    client.on('error', end);
    gateway.on('close', end);
    client.on('close', end);
  });
  server.on('connection', (socket: Socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
  });
  // A client that goes away mid-handshake is no concern of the test.
  server.on('tlsClientError', () => undefined);

  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const address = server.address();
  if (address === null || typeof address === 'string') throw new Error('the TLS proxy has no port');
  const origin = `https://127.0.0.1:${address.port}`;
  return {
    origin,
    port: address.port,
    exchanges,
    waitFor(match, timeoutMs = 10_000, what = 'a matching exchange') {
      const done = (exchange: ProxiedExchange): boolean => exchange.status !== undefined && match(exchange);
      const found = exchanges.find(done);
      if (found !== undefined) return Promise.resolve(found);
      return new Promise((resolve, reject) => {
        const waiter = (): void => {
          const hit = exchanges.find(done);
          if (hit === undefined) return;
          waiters.delete(waiter);
          clearTimeout(timer);
          resolve(hit);
        };
        const timer = setTimeout(() => {
          waiters.delete(waiter);
          const seen = exchanges.slice(-30).map((e) => `${e.method} ${e.path} ${e.status ?? '…'}`).join(', ');
          reject(new Error(`no ${what} passed ${origin} within ${timeoutMs} ms; the last ones: ${seen}`));
        }, timeoutMs);
        waiters.add(waiter);
      });
    },
    close: () => new Promise<void>((resolve) => {
      for (const socket of sockets) socket.destroy();
      agent.destroy();
      server.close(() => resolve());
    }),
  };
}

/** The value of one cookie a request carried, if it did. */
export function requestCookie(exchange: ProxiedExchange, name: string): string | undefined {
  for (const pair of String(exchange.requestHeaders.cookie ?? '').split(';')) {
    const at = pair.indexOf('=');
    if (at > 0 && pair.slice(0, at).trim() === name) return pair.slice(at + 1).trim();
  }
  return undefined;
}

/** The Set-Cookie lines of a response that write this cookie. */
export function setCookiesFor(exchange: ProxiedExchange, name: string): string[] {
  const lines = exchange.responseHeaders?.['set-cookie'] ?? [];
  return lines.filter((line) => line.trimStart().startsWith(`${name}=`));
}
