// The floor for a Node gateway: a reverse proxy with no authentication, undici's pool and node:http, nothing else.
// By default it is the usual way to write one: undici's request() and the response body piped to the caller. With
// `dispatch` it hands undici a handler that writes each piece straight to the caller, as the gateway does (no body
// stream, no pipe): the lower floor. With `gateway-shape` it does the HTTP work the gateway does on every request,
// and no more: the gateway's own response relay, the same extra headers both ways (a fixed identity and assertion
// of the gateway's size), a request id and the gateway's per-response listeners. What the gateway costs above that
// row is its own work: authentication, policy, logs and metrics.
// Run as a child: node --import tsx bench/servers/bare-proxy.ts PORT UPSTREAM_URL [dispatch | gateway-shape]
import { randomUUID } from 'node:crypto';
import { createServer, type IncomingHttpHeaders, type IncomingMessage, type ServerResponse } from 'node:http';
import { Pool, type Dispatcher } from 'undici';

const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'proxy-connection', 'transfer-encoding', 'upgrade', 'te', 'trailer']);
const endToEnd = (headers: IncomingHttpHeaders | Record<string, string | string[] | undefined>): Record<string, string | string[]> =>
  Object.fromEntries(Object.entries(headers).filter((e): e is [string, string | string[]] => e[1] !== undefined && !HOP_BY_HOP.has(e[0])));

/** A fixed identity, with an assertion of the size of the gateway's for the bench's token (an ES256 JWT). */
const IDENTITY_HEADERS = {
  'x-forwarded-user': 'bench-user', 'x-forwarded-groups': 'analyst', 'x-forwarded-email': 'bench@example.com', 'x-embedgate-assertion': `eyJ${'a'.repeat(600)}`,
};
const RESPONSE_TIMEOUT_MS = 30_000;

const pool = new Pool(process.argv[3] as string, { connections: 256, keepAliveTimeout: 30_000 });
const mode = process.argv[4];
const gatewayShape = mode === 'gateway-shape';
const hasBody = (req: IncomingMessage): boolean => req.headers['content-length'] !== undefined || req.headers['transfer-encoding'] !== undefined;

async function proxyBare(req: IncomingMessage, res: ServerResponse): Promise<void> {
  const upstream = await pool.request({ path: req.url as string, method: req.method as string, headers: endToEnd(req.headers), body: hasBody(req) ? req : null });
  res.writeHead(upstream.statusCode, endToEnd(upstream.headers));
  // pipe(), not stream.pipeline(): on Node 20 pipeline() builds an AbortController and a DOMException per call.
  upstream.body.once('error', () => res.destroy()).pipe(res);
  res.once('close', () => upstream.body.destroy());
}

/** undici's dispatch with a handler that writes the head and each piece of the body straight to the caller. */
function proxyDispatch(req: IncomingMessage, res: ServerResponse): Promise<void> {
  let controller: Dispatcher.DispatchController | undefined;
  res.once('close', () => {
    if (!res.writableFinished) controller?.abort(new Error('the caller went away'));
  });
  pool.dispatch({ path: req.url as string, method: req.method as string, headers: endToEnd(req.headers), body: hasBody(req) ? req : null }, {
    onRequestStart: (started) => {
      controller = started;
    },
    onResponseStart: (_controller, status, headers) => {
      if (status >= 200) res.writeHead(status, endToEnd(headers));
    },
    onResponseData: (paused, chunk) => {
      if (res.write(chunk)) return;
      paused.pause();
      res.once('drain', () => paused.resume());
    },
    onResponseEnd: () => res.end(),
    onResponseError: () => (res.headersSent ? res.destroy() : res.writeHead(502).end()),
  });
  return Promise.resolve();
}

const inFlight = new Set<ServerResponse>();
// The gateway's own header copying and response relay (loaded only for this mode: the memory section runs this file
// alone).
const gatewayParts = gatewayShape
  ? { ...await import('../../packages/embedgate/src/http/headers.js'), ...await import('../../packages/embedgate/src/gateway/response-relay.js') }
  : undefined;
const SHAPED_APP = { config: { name: 'sales', response_timeout_ms: RESPONSE_TIMEOUT_MS } };
const IGNORED_REPORTS = { headReceived: (): void => undefined, failed: (): void => undefined };
const FRAMING = (headers: Record<string, string | string[]>): void => {
  headers['content-security-policy'] = 'frame-ancestors http://127.0.0.1:3000';
};

function proxyShaped(req: IncomingMessage, res: ServerResponse): Promise<void> {
  const { forwardableRequestHeaders, ResponseRelay } = gatewayParts as NonNullable<typeof gatewayParts>;
  // The gateway's listeners: shutdown tracking on 'close' and the access log on 'finish' (its line is the gateway's
  // own work, so only the listener is here); the relay adds the upstream cancel on 'close'.
  inFlight.add(res);
  res.on('close', () => inFlight.delete(res));
  res.on('finish', () => undefined);
  const requestId = randomUUID();
  const headers = forwardableRequestHeaders(req.headers, false);
  headers['x-forwarded-for'] = '127.0.0.1';
  headers['x-forwarded-proto'] = 'http';
  headers['x-forwarded-host'] = req.headers.host ?? '';
  headers['x-request-id'] = requestId;
  Object.assign(headers, IDENTITY_HEADERS);
  const path = req.url as string;
  // The relay reads only the app's name and response timeout of the mounted app.
  const request = { app: SHAPED_APP as never, path, headers, body: undefined, requestId, rewrite: { headers: FRAMING } };
  const relay = new ResponseRelay(req, res, request, IGNORED_REPORTS);
  relay.startClock();
  pool.dispatch({ path, method: req.method as string, headers, body: null }, relay);
  return Promise.resolve();
}

const proxy = gatewayShape ? proxyShaped : mode === 'dispatch' ? proxyDispatch : proxyBare;
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
