// The floor for any Node gateway: a reverse proxy with no authentication, undici's pool and node:http, nothing else.
// With `gateway-shape` it also does the HTTP work the gateway does on every request, and no more: the same extra
// headers both ways (a fixed identity and assertion of the gateway's size), a request id, a response timer and an
// abort emitter for undici, and the gateway's per-response listeners. What the gateway costs above that row is its
// own work: authentication, policy, logs and metrics.
// Run as a child: node --import tsx bench/servers/bare-proxy.ts PORT UPSTREAM_URL [gateway-shape]
import { randomUUID } from 'node:crypto';
import { EventEmitter } from 'node:events';
import { createServer, type IncomingHttpHeaders, type IncomingMessage, type ServerResponse } from 'node:http';
import { Pool } from 'undici';

const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'proxy-connection', 'transfer-encoding', 'upgrade', 'te', 'trailer']);
const endToEnd = (headers: IncomingHttpHeaders | Record<string, string | string[] | undefined>): Record<string, string | string[]> =>
  Object.fromEntries(Object.entries(headers).filter((e): e is [string, string | string[]] => e[1] !== undefined && !HOP_BY_HOP.has(e[0])));

/** A fixed identity, with an assertion of the size of the gateway's for the bench's token (an ES256 JWT). */
const IDENTITY_HEADERS = {
  'x-forwarded-user': 'bench-user', 'x-forwarded-groups': 'analyst', 'x-forwarded-email': 'bench@example.com', 'x-embedgate-assertion': `eyJ${'a'.repeat(600)}`,
};
const RESPONSE_TIMEOUT_MS = 30_000;

const pool = new Pool(process.argv[3] as string, { connections: 256, keepAliveTimeout: 30_000 });
const gatewayShape = process.argv[4] === 'gateway-shape';

async function proxyBare(req: IncomingMessage, res: ServerResponse): Promise<void> {
  const hasBody = req.headers['content-length'] !== undefined || req.headers['transfer-encoding'] !== undefined;
  const upstream = await pool.request({ path: req.url as string, method: req.method as string, headers: endToEnd(req.headers), body: hasBody ? req : null });
  res.writeHead(upstream.statusCode, endToEnd(upstream.headers));
  // pipe(), not stream.pipeline(): on Node 20 pipeline() builds an AbortController and a DOMException per call.
  upstream.body.once('error', () => res.destroy()).pipe(res);
  res.once('close', () => upstream.body.destroy());
}

const inFlight = new Set<ServerResponse>();
// The gateway's own header copying (loaded only for this mode: the memory section runs this file alone).
const headerHygiene = gatewayShape ? await import('../../packages/embedgate/src/http/headers.js') : undefined;

async function proxyShaped(req: IncomingMessage, res: ServerResponse): Promise<void> {
  const { forwardableRequestHeaders, forwardableResponseHeaders } = headerHygiene as NonNullable<typeof headerHygiene>;
  // The gateway's listeners: shutdown tracking on 'close', the access log on 'finish' (its line is the gateway's own
  // work, so only the listener is here), and the upstream cancel on 'close'.
  inFlight.add(res);
  res.once('close', () => inFlight.delete(res));
  res.once('finish', () => undefined);
  const abort = new EventEmitter();
  res.once('close', () => {
    if (!res.writableFinished) abort.emit('abort');
  });
  const timer = setTimeout(() => abort.emit('abort'), RESPONSE_TIMEOUT_MS);
  const requestId = randomUUID();
  const headers = forwardableRequestHeaders(req.headers, false);
  headers['x-forwarded-for'] = '127.0.0.1';
  headers['x-forwarded-proto'] = 'http';
  headers['x-forwarded-host'] = req.headers.host ?? '';
  headers['x-request-id'] = requestId;
  Object.assign(headers, IDENTITY_HEADERS);
  const upstream = await pool.request({ path: req.url as string, method: req.method as string, headers, body: null, signal: abort })
    .finally(() => clearTimeout(timer));
  const answer = forwardableResponseHeaders(upstream.headers);
  answer['x-request-id'] = requestId;
  answer['content-security-policy'] = 'frame-ancestors http://127.0.0.1:3000';
  res.writeHead(upstream.statusCode, answer);
  upstream.body.once('error', () => res.destroy()).pipe(res);
}

const proxy = gatewayShape ? proxyShaped : proxyBare;
createServer(async (req, res) => {
  try {
    await proxy(req, res);
  } catch {
    if (res.headersSent) res.destroy();
    else res.writeHead(502).end();
  }
}).listen(Number(process.argv[2]), '127.0.0.1');
// A clean exit on SIGTERM, as the gateway's: it is what writes a --cpu-prof profile.
process.once('SIGTERM', () => process.exit(0));
