// A tiny HTTPS site on 127.0.0.1 for the engine tests: every request is recorded (method, path, headers, body), and
// a test can wait, bounded, for the request it expects instead of sleeping.
import { once } from 'node:events';
import { createServer, type Server } from 'node:https';
import type { IncomingHttpHeaders, IncomingMessage, ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import type { TestTls } from './tls.js';

export interface RecordedRequest {
  method: string;
  /** Path and query, as sent. */
  url: string;
  /** Path without the query. */
  path: string;
  query: URLSearchParams;
  headers: IncomingHttpHeaders;
  body: string;
}

export type SiteHandler = (request: RecordedRequest, response: ServerResponse) => void;

export interface Site {
  /** e.g. https://localhost:43211 (no trailing slash). */
  origin: string;
  requests: RecordedRequest[];
  /** The first recorded request that matches (already made, or the next one); rejects after timeoutMs. */
  waitForRequest(match: (request: RecordedRequest) => boolean, timeoutMs?: number, what?: string): Promise<RecordedRequest>;
  close(): Promise<void>;
}

/**
 * Starts an HTTPS server on 127.0.0.1 with the test certificate. `hostname` is only what the origin says
 * ("localhost" or "127.0.0.1"): both resolve to the one loopback listener, and they are different sites.
 */
export async function startSite(tls: TestTls, hostname: 'localhost' | '127.0.0.1', handler: SiteHandler): Promise<Site> {
  const requests: RecordedRequest[] = [];
  const waiters = new Set<() => void>();
  const sockets = new Set<Socket>();
  const server: Server = createServer({ cert: tls.certPem, key: tls.keyPem }, (incoming: IncomingMessage, response) => {
    const chunks: Buffer[] = [];
    incoming.on('data', (chunk: Buffer) => chunks.push(chunk));
    incoming.on('end', () => {
      const url = incoming.url ?? '/';
      const parsed = new URL(url, 'https://site.invalid');
      const request: RecordedRequest = {
        method: incoming.method ?? 'GET', url, path: parsed.pathname, query: parsed.searchParams,
        headers: incoming.headers, body: Buffer.concat(chunks).toString('utf8'),
      };
      requests.push(request);
      for (const wake of [...waiters]) wake();
      response.setHeader('Cache-Control', 'no-store');
      try {
        handler(request, response);
      } catch (error) {
        response.statusCode = 500;
        response.end(String(error));
      }
    });
  });
  server.on('connection', (socket: Socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const address = server.address();
  if (address === null || typeof address === 'string') throw new Error('the site has no port');
  return {
    origin: `https://${hostname}:${address.port}`,
    requests,
    waitForRequest(match, timeoutMs = 10_000, what = 'a matching request') {
      const found = requests.find(match);
      if (found !== undefined) return Promise.resolve(found);
      return new Promise((resolve, reject) => {
        const wake = (): void => {
          const hit = requests.find(match);
          if (hit === undefined) return;
          waiters.delete(wake);
          clearTimeout(timer);
          resolve(hit);
        };
        const timer = setTimeout(() => {
          waiters.delete(wake);
          reject(new Error(`no ${what} reached https://${hostname}:${address.port} within ${timeoutMs} ms; got: ${requests.map((r) => `${r.method} ${r.url}`).join(', ')}`));
        }, timeoutMs);
        waiters.add(wake);
      });
    },
    close: () => new Promise<void>((resolve) => {
      for (const socket of sockets) socket.destroy();
      server.close(() => resolve());
    }),
  };
}

/** The cookie names and values a request carried. */
export function cookiesOf(request: RecordedRequest): Record<string, string> {
  const cookies: Record<string, string> = {};
  for (const pair of (request.headers.cookie ?? '').split(';')) {
    const at = pair.indexOf('=');
    if (at > 0) cookies[pair.slice(0, at).trim()] = pair.slice(at + 1).trim();
  }
  return cookies;
}
