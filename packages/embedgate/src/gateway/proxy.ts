// Sends an HTTP request to its app over a keep-alive pool per app; the response comes back through a ResponseRelay.
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import { buildConnector, errors, Pool } from 'undici';
import type { Logger } from 'pino';
import type { HeaderMap } from '../http/headers.js';
import type { GatewayMetrics } from '../ops/metrics.js';
import type { MountedApp } from './apps.js';
import { ResponseRelay, type RelayReports } from './response-relay.js';

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

function hasBody(req: IncomingMessage): boolean {
  return req.headers['transfer-encoding'] !== undefined || (req.headers['content-length'] !== undefined && req.headers['content-length'] !== '0');
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

export class UpstreamProxy {
  private readonly pools = new Map<string, Pool>();

  private readonly reports: RelayReports;

  constructor(metrics: GatewayMetrics, logger: Logger) {
    this.reports = {
      headReceived: (request, seconds) => metrics.upstreamLatency.observe(request.app.config.name, seconds),
      failed: (request, reason) => logger.warn({ reqId: request.requestId, app: request.app.config.name, err: reason }, 'upstream request failed'),
    };
  }

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

  /** Sends the request to its app; the relay answers the caller (with a 502 or 504 if the app fails before its head). */
  forward(req: IncomingMessage, res: ServerResponse, request: ProxyRequest): void {
    const relay = new ResponseRelay(req, res, request, this.reports);
    const body = request.body ?? (hasBody(req) ? req : null);
    // A streamed upload may take longer than the timeout: the clock starts once the caller has sent all of it.
    if (body === req) req.once('end', () => relay.startClock());
    else relay.startClock();
    if (request.body !== undefined) request.headers['content-length'] = String(request.body.length);
    this.pool(request.app).dispatch({ path: request.path, method: req.method as string, headers: request.headers, body }, relay);
  }

  async close(): Promise<void> {
    await Promise.all([...this.pools.values()].map((pool) => pool.destroy()));
  }
}
