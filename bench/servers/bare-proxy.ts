// The floor for any Node gateway: a reverse proxy with no authentication, undici's pool and node:http, nothing else.
// Run as a child: node --import tsx bench/servers/bare-proxy.ts PORT UPSTREAM_URL
import { createServer, type IncomingHttpHeaders } from 'node:http';
import { Pool } from 'undici';

const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'proxy-connection', 'transfer-encoding', 'upgrade', 'te', 'trailer']);
const endToEnd = (headers: IncomingHttpHeaders | Record<string, string | string[] | undefined>): Record<string, string | string[]> =>
  Object.fromEntries(Object.entries(headers).filter((e): e is [string, string | string[]] => e[1] !== undefined && !HOP_BY_HOP.has(e[0])));

const pool = new Pool(process.argv[3] as string, { connections: 256, keepAliveTimeout: 30_000 });
createServer(async (req, res) => {
  try {
    const hasBody = req.headers['content-length'] !== undefined || req.headers['transfer-encoding'] !== undefined;
    const upstream = await pool.request({ path: req.url as string, method: req.method as string, headers: endToEnd(req.headers), body: hasBody ? req : null });
    res.writeHead(upstream.statusCode, endToEnd(upstream.headers));
    // pipe(), not stream.pipeline(): on Node 20 pipeline() builds an AbortController and a DOMException per call.
    upstream.body.once('error', () => res.destroy()).pipe(res);
    res.once('close', () => upstream.body.destroy());
  } catch {
    if (res.headersSent) res.destroy();
    else res.writeHead(502).end();
  }
}).listen(Number(process.argv[2]), '127.0.0.1');
// A clean exit on SIGTERM, as the gateway's: it is what writes a --cpu-prof profile.
process.once('SIGTERM', () => process.exit(0));
