// Streams an HTTP request to its upstream over a keep-alive pool and streams the response back.
import { EventEmitter } from 'node:events';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import type { Readable } from 'node:stream';
import { brotliDecompressSync, gunzipSync, inflateSync } from 'node:zlib';
import { buildConnector, errors, Pool } from 'undici';
import type { Logger } from 'pino';
import { forwardableResponseHeaders, type HeaderMap } from '../http/headers.js';
import type { Denial } from '../http/respond.js';
import type { GatewayMetrics } from '../ops/metrics.js';
import type { MountedApp } from './apps.js';

export interface ProxyRequest {
  app: MountedApp;
  path: string;
  headers: HeaderMap;
  /** A buffered body (already inspected), or undefined to stream the incoming request. */
  body: Buffer | undefined;
  requestId: string;
  /** Changes to the app's response: headers always, the HTML of successful pages when `html` is set. */
  rewrite?: ResponseRewrite;
  /** Pages served to a signed-in user are never stored by the browser: after sign-out, Back shows nothing. */
  signedIn?: boolean;
}

export interface ResponseRewrite {
  headers(headers: HeaderMap, isHtml: boolean): void;
  html?: (html: string) => string;
}

/** HTML larger than this is passed through untouched rather than held in memory. */
const MAX_REWRITTEN_HTML_BYTES = 8 * 1024 * 1024;

const DECODERS: Record<string, (input: Buffer) => Buffer> = {
  gzip: (input) => gunzipSync(input),
  'x-gzip': (input) => gunzipSync(input),
  deflate: (input) => inflateSync(input),
  br: (input) => brotliDecompressSync(input),
  identity: (input) => input,
};

/** A successful GET of an HTML page in an ASCII-compatible charset (UTF-16 pages are left alone). */
function isHtmlPage(method: string, status: number, headers: HeaderMap): boolean {
  const type = String(headers['content-type'] ?? '').toLowerCase();
  return method === 'GET' && status === 200 && type.startsWith('text/html') && !type.includes('utf-16');
}

/**
 * Reads a whole (possibly compressed) HTML body, or returns undefined when it is too large or undecodable; rejects
 * when the app breaks off. `onChunk` runs for every piece received.
 */
async function readHtml(body: AsyncIterable<Buffer>, encoding: string, onChunk: () => void): Promise<string | undefined> {
  const decode = DECODERS[encoding];
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of body) {
    onChunk();
    size += chunk.length;
    if (size > MAX_REWRITTEN_HTML_BYTES || decode === undefined) return undefined;
    chunks.push(chunk);
  }
  try {
    // latin1 maps every byte to one character and back, so inserting ASCII keeps any ASCII-compatible charset
    // (UTF-8, ISO-8859-x, windows-125x) byte for byte.
    return decode?.(Buffer.concat(chunks)).toString('latin1');
  } catch {
    return undefined;
  }
}

function hasBody(req: IncomingMessage): boolean {
  return req.headers['transfer-encoding'] !== undefined || (req.headers['content-length'] !== undefined && req.headers['content-length'] !== '0');
}

const UPSTREAM_TIMEOUT: Denial = { status: 504, error: 'upstream_timeout', message: 'The app did not answer in time.' };

/** Maps an undici failure before the response started to the answer the caller gets. */
export function upstreamFailure(error: unknown): Denial {
  const code = (error as { code?: string }).code ?? '';
  if (code === 'UND_ERR_HEADERS_TIMEOUT' || code === 'UND_ERR_BODY_TIMEOUT') return UPSTREAM_TIMEOUT;
  return { status: 502, error: 'upstream_unavailable', message: 'The app cannot be reached right now.' };
}

/**
 * undici's connector with connect_timeout_ms kept to the millisecond: undici's own connect timeout runs on its coarse
 * clock (ticks twice a second) and fired a 300 ms timeout after up to 1.3 s.
 */
function connectWithin(timeoutMs: number): buildConnector.connector {
  const connect = buildConnector({ timeout: 0 });
  return (options, callback) => {
    // The connector returns the socket it opens (its type says void) and calls back asynchronously, once.
    const socket = connect(options, (...result) => {
      clearTimeout(timer);
      callback(...result);
    }) as unknown as Socket;
    const timer = setTimeout(() => {
      // The socket's error reaches the callback above, as with undici's own timeout.
      socket.destroy(new errors.ConnectTimeoutError(`Connect Timeout Error (attempted address: ${options.hostname}:${options.port}, timeout: ${timeoutMs}ms)`));
    }, timeoutMs);
  };
}

/**
 * response_timeout_ms, to the millisecond, from the moment the request (body included) is on its way for as long as
 * the caller has no head yet: until the app's head (streamed responses) or the last piece of a page the gateway
 * rewrites. undici's own headers and body timeouts run on a coarse clock that fires up to a second late (a 300 ms
 * timeout took 1-1.5 s); they stay for a slow upload and as the streamed body's idle timeout, which undici, unlike
 * this timer, suspends while a slow client holds the body back.
 */
class ResponseDeadline {
  expired = false;
  private timer: NodeJS.Timeout | undefined = undefined;
  private over = false;

  constructor(private readonly ms: number, private readonly abort: EventEmitter) {}

  start(): void {
    if (this.over || this.timer !== undefined) return;
    this.timer = setTimeout(() => {
      this.expired = true;
      this.abort.emit('abort');
    }, this.ms);
  }

  /** The app sent more of the page: it has response_timeout_ms again for the next piece. */
  extend(): void {
    this.timer?.refresh();
  }

  /** The caller has its head or its error: the clock stops for good (an upload ending later does not restart it). */
  clear(): void {
    this.over = true;
    clearTimeout(this.timer);
  }
}

export class UpstreamProxy {
  private readonly pools = new Map<string, Pool>();

  constructor(private readonly metrics: GatewayMetrics, private readonly logger: Logger) {}

  private pool(app: MountedApp): Pool {
    let pool = this.pools.get(app.config.name);
    if (pool === undefined) {
      pool = new Pool(app.origin, {
        connections: 256,
        pipelining: 1,
        keepAliveTimeout: 30_000,
        connect: connectWithin(app.config.connect_timeout_ms),
        headersTimeout: app.config.response_timeout_ms,
        bodyTimeout: app.config.response_timeout_ms,
      });
      this.pools.set(app.config.name, pool);
    }
    return pool;
  }

  /** Resolves once the response is streaming back; returns a denial if the upstream failed before answering. */
  async forward(req: IncomingMessage, res: ServerResponse, request: ProxyRequest): Promise<Denial | undefined> {
    // undici takes an emitter as its abort signal: cheaper than an AbortController, whose abort() builds a DOMException.
    const abort = new EventEmitter();
    let clientGone = false;
    let upstreamBody: Readable | undefined = undefined;
    // The caller went away before the whole answer was sent: cancel the upstream request or stop reading its body.
    const onClose = (): void => {
      if (res.writableFinished) return;
      clientGone = true;
      abort.emit('abort');
      upstreamBody?.destroy();
    };
    res.once('close', onClose);
    const started = process.hrtime.bigint();
    const deadline = new ResponseDeadline(request.app.config.response_timeout_ms, abort);
    const body = request.body ?? (hasBody(req) ? req : null);
    // A streamed upload may take longer than the timeout: the clock starts once the caller has sent all of it.
    if (body === req) req.once('end', () => deadline.start());
    else deadline.start();
    let response;
    try {
      if (request.body !== undefined) request.headers['content-length'] = String(request.body.length);
      response = await this.pool(request.app).request({
        path: request.path,
        method: req.method as string,
        headers: request.headers,
        body,
        signal: abort,
      });
    } catch (error) {
      deadline.clear();
      res.off('close', onClose);
      return this.failed(request, error, deadline, clientGone);
    }
    this.metrics.upstreamLatency.observe({ app: request.app.config.name }, Number(process.hrtime.bigint() - started) / 1e9);
    const headers = forwardableResponseHeaders(response.headers);
    headers['x-request-id'] = request.requestId;
    const html = isHtmlPage(req.method as string, response.statusCode, headers);
    request.rewrite?.headers(headers, html);
    if (html && request.signedIn === true) headers['cache-control'] = 'no-store';
    const rewriteHtml = request.rewrite?.html;
    if (html && rewriteHtml !== undefined) {
      const encoding = String(headers['content-encoding'] ?? 'identity').toLowerCase();
      let page: string | undefined;
      try {
        page = await readHtml(response.body, encoding, () => deadline.extend());
      } catch (error) {
        // The app reset, stalled or closed halfway through the page: the caller has no head yet, so it gets a 502/504.
        return this.failed(request, error, deadline, clientGone);
      } finally {
        deadline.clear();
        res.off('close', onClose);
      }
      if (page === undefined) return { status: 502, error: 'upstream_page_unreadable', message: 'The app sent a page the gateway cannot read.' };
      const body = Buffer.from(rewriteHtml(page), 'latin1');
      delete headers['content-encoding'];
      // The page differs per response (nonce, session expiry): no validator may let a cache revive an old copy.
      delete headers.etag;
      delete headers['last-modified'];
      headers['content-length'] = String(body.length);
      res.writeHead(response.statusCode, headers);
      res.end(body);
      return undefined;
    }
    deadline.clear();
    res.writeHead(response.statusCode, headers);
    // pipe() rather than stream.pipeline(), which builds an AbortController per call and aborts it at the end.
    upstreamBody = response.body;
    upstreamBody.once('error', (error) => res.destroy(error));
    upstreamBody.pipe(res);
    return undefined;
  }

  /** The answer for an app that failed before the caller got a head; undefined when the caller has gone. */
  private failed(request: ProxyRequest, error: unknown, deadline: ResponseDeadline, clientGone: boolean): Denial | undefined {
    if (clientGone) return undefined;
    const reason = deadline.expired ? 'timeout' : (error as { code?: string }).code ?? 'error';
    this.logger.warn({ reqId: request.requestId, app: request.app.config.name, err: reason }, 'upstream request failed');
    return deadline.expired ? UPSTREAM_TIMEOUT : upstreamFailure(error);
  }

  async close(): Promise<void> {
    await Promise.all([...this.pools.values()].map((pool) => pool.destroy()));
  }
}
