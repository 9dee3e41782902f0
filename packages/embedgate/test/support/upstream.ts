// A fake Dash app upstream that records every request it receives, with a WebSocket echo server on the same port.
import { once } from 'node:events';
import { createServer, type IncomingHttpHeaders, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { WebSocketServer, type WebSocket } from 'ws';

export interface RecordedRequest {
  method: string;
  /** The raw request target, exactly as received. */
  url: string;
  headers: IncomingHttpHeaders;
  rawHeaders: string[];
  body: Buffer;
}

export interface RecordedHandshake {
  url: string;
  headers: IncomingHttpHeaders;
}

export interface Upstream {
  readonly url: string;
  readonly port: number;
  readonly requests: readonly RecordedRequest[];
  last(): RecordedRequest | undefined;
  clear(): void;
  /** WebSocket connections currently open. */
  readonly wsConnections: number;
  /** TCP connections accepted since start (keep-alive reuse keeps this low). */
  readonly tcpConnections: number;
  readonly wsHandshakes: readonly RecordedHandshake[];
  close(): Promise<void>;
}

export const DASH_LAYOUT = { type: 'Div', namespace: 'dash_html_components', props: { children: 'secret data' } };
export const APP_PAGE = '<html><body>app page</body></html>';
export const SLOW_DELAY_MS = 5000;
export const BIG_BODY_BYTES = 5 * 1024 * 1024;
const BIG_CHUNK_BYTES = 64 * 1024;

export async function startUpstream(listenPort = 0): Promise<Upstream> {
  const requests: RecordedRequest[] = [];
  const wsHandshakes: RecordedHandshake[] = [];
  const wss = new WebSocketServer({ noServer: true, handleProtocols: (offered) => firstOf(offered) });
  const server = createServer((req, res) => {
    record(req).then((recorded) => {
      requests.push(recorded);
      respond(req, res, recorded.body);
    }, () => res.destroy()); // the client aborted while sending its body
  });
  let tcpConnections = 0;
  server.on('connection', () => {
    tcpConnections += 1;
  });
  server.on('upgrade', (req, socket, head) => {
    wsHandshakes.push({ url: req.url ?? '', headers: req.headers });
    wss.handleUpgrade(req, socket, head, echo);
  });
  server.listen(listenPort, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as AddressInfo;

  return {
    url: `http://127.0.0.1:${port}`,
    port,
    requests,
    last: () => requests.at(-1),
    clear: () => {
      requests.length = 0;
      wsHandshakes.length = 0;
    },
    get wsConnections() {
      return wss.clients.size;
    },
    get tcpConnections() {
      return tcpConnections;
    },
    wsHandshakes,
    close: async () => {
      for (const client of wss.clients) client.terminate();
      wss.close();
      const closed = new Promise((resolve) => server.close(resolve));
      server.closeAllConnections();
      await closed;
    },
  };
}

async function record(req: IncomingMessage): Promise<RecordedRequest> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  return { method: req.method ?? '', url: req.url ?? '', headers: req.headers, rawHeaders: req.rawHeaders, body: Buffer.concat(chunks) };
}

function respond(req: IncomingMessage, res: ServerResponse, body: Buffer): void {
  res.setHeader('x-received-path', req.url ?? '');
  res.setHeader('x-upstream', 'yes');
  res.setHeader('x-frame-options', 'DENY');
  res.setHeader('connection', 'keep-alive');
  const path = (req.url ?? '').split('?')[0] ?? '';
  if (path.endsWith('/_dash-update-component') && req.method === 'POST') {
    sendJson(res, { response: { receivedBytes: body.length }, multi: true });
  } else if (path.endsWith('/_dash-layout')) {
    sendJson(res, DASH_LAYOUT);
  } else if (path.endsWith('/_dash-dependencies')) {
    sendJson(res, []);
  } else if (path.endsWith('/slow')) {
    const timer = setTimeout(() => sendPage(res), SLOW_DELAY_MS);
    res.on('close', () => clearTimeout(timer));
  } else if (path.endsWith('/big')) {
    void streamBigBody(res);
  } else {
    sendPage(res);
  }
}

function sendJson(res: ServerResponse, value: unknown): void {
  res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(value));
}

function sendPage(res: ServerResponse): void {
  res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' }).end(APP_PAGE);
}

async function streamBigBody(res: ServerResponse): Promise<void> {
  res.writeHead(200, { 'content-type': 'application/octet-stream' });
  try {
    await pipeline(Readable.from(bigBodyChunks()), res);
  } catch {
    // The client went away mid-stream; nothing to clean up.
  }
}

function* bigBodyChunks(): Generator<Buffer> {
  for (let sent = 0; sent < BIG_BODY_BYTES; sent += BIG_CHUNK_BYTES) {
    yield Buffer.alloc(Math.min(BIG_CHUNK_BYTES, BIG_BODY_BYTES - sent), 'x');
  }
}

function echo(ws: WebSocket): void {
  ws.on('message', (data, isBinary) => ws.send(data, { binary: isBinary }));
}

function firstOf(offered: Set<string>): string | false {
  const [first] = offered;
  return first ?? false;
}
