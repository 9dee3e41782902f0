// The live app's server: `GET <prefix>` serves the page, `<prefix>ws` upgrades to a WebSocket that first names the
// user the handshake carried (X-Forwarded-User, set by the gateway) and then pushes a value every 500 ms.
import { createServer, type IncomingMessage } from 'node:http';
import { WebSocketServer, type WebSocket } from 'ws';
import { identityFrom } from '../shared/identity.js';
import { listen, normalizePrefix, type SampleApp, type SampleAppOptions } from '../shared/listen.js';
import { renderStreamPage } from './page.js';

const INTERVAL_MS = 500;

/** A smooth made-up metric between 0 and 100. */
function valueAt(seq: number): number {
  return Math.round((50 + 30 * Math.sin(seq / 6) + 12 * Math.sin(seq / 1.7)) * 10) / 10;
}

function stream(socket: WebSocket, req: IncomingMessage): void {
  socket.send(JSON.stringify({ type: 'hello', user: identityFrom(req.headers).user ?? null }));
  let seq = 0;
  const timer = setInterval(() => {
    seq += 1;
    socket.send(JSON.stringify({ type: 'point', seq, value: valueAt(seq), at: Date.now() }));
  }, INTERVAL_MS);
  socket.on('close', () => clearInterval(timer));
  socket.on('error', () => socket.terminate());
}

export async function startStreamApp(options: SampleAppOptions): Promise<SampleApp> {
  const prefix = normalizePrefix(options.prefix ?? '/live/');
  const socketPath = `${prefix}ws`;
  const sockets = new WebSocketServer({ noServer: true, maxPayload: 4096 });
  sockets.on('connection', stream);

  const server = createServer((req, res) => {
    const [path = '/', query] = (req.url ?? '/').split('?', 2);
    if (`${path}/` === prefix) {
      res.writeHead(308, { location: query === undefined ? prefix : `${prefix}?${query}` }).end();
    } else if (path !== prefix) {
      res.writeHead(404, { 'content-type': 'text/plain; charset=utf-8' }).end('not found\n');
    } else if (req.method !== 'GET') {
      res.writeHead(405, { allow: 'GET', 'content-type': 'text/plain; charset=utf-8' }).end('use GET\n');
    } else {
      res.writeHead(200, { 'content-type': 'text/html; charset=utf-8', 'cache-control': 'no-store' });
      res.end(renderStreamPage(socketPath, identityFrom(req.headers).user));
    }
  });
  server.on('upgrade', (req, socket, head) => {
    socket.on('error', () => socket.destroy());
    if ((req.url ?? '').split('?', 1)[0] !== socketPath) {
      socket.end('HTTP/1.1 404 Not Found\r\nConnection: close\r\nContent-Length: 0\r\n\r\n');
      return;
    }
    sockets.handleUpgrade(req, socket, head, (ws) => sockets.emit('connection', ws, req));
  });

  return listen(server, options.port, options.host ?? '127.0.0.1', () => {
    for (const client of sockets.clients) client.terminate();
    sockets.close();
  });
}
