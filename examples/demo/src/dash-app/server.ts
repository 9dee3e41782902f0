// The Dash-protocol HTTP server: routes the index page, `_dash-layout`, `_dash-dependencies`,
// `_dash-update-component` and `_dash-component-suites/…` under the app's path prefix; everything else is a 4xx.
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { BadCallback, DEPENDENCIES, runCallback } from './callbacks.js';
import { renderIndexPage } from './index-page.js';
import { identityFrom } from '../shared/identity.js';
import { buildLayout } from './layout.js';
import { listen, normalizePrefix, type SampleApp, type SampleAppOptions } from '../shared/listen.js';
import { serveSuiteFile } from './suites.js';

const MAX_BODY_BYTES = 1024 * 1024;
const SUITES = '_dash-component-suites/';

function sendJson(res: ServerResponse, status: number, value: unknown): void {
  const body = JSON.stringify(value);
  res.writeHead(status, {
    'content-type': 'application/json; charset=utf-8',
    'content-length': Buffer.byteLength(body),
    'cache-control': 'no-store',
  });
  res.end(body);
}

function methodNotAllowed(res: ServerResponse, allowed: string): void {
  res.setHeader('allow', allowed);
  sendJson(res, 405, { error: `use ${allowed}` });
}

/** The request body as JSON; undefined after answering 413 (too large) or 400 (not JSON) itself. */
async function readJson(req: IncomingMessage, res: ServerResponse): Promise<{ value: unknown } | undefined> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size <= MAX_BODY_BYTES) chunks.push(chunk);
  }
  if (size > MAX_BODY_BYTES) {
    sendJson(res, 413, { error: 'request body too large' });
    return undefined;
  }
  try {
    return { value: JSON.parse(Buffer.concat(chunks).toString('utf8')) as unknown };
  } catch {
    sendJson(res, 400, { error: 'request body is not JSON' });
    return undefined;
  }
}

async function updateComponent(req: IncomingMessage, res: ServerResponse): Promise<void> {
  const body = await readJson(req, res);
  if (body === undefined) return;
  try {
    sendJson(res, 200, runCallback(body.value));
  } catch (error) {
    if (!(error instanceof BadCallback)) throw error;
    sendJson(res, error.status, { error: error.message });
  }
}

async function route(prefix: string, indexPage: string, req: IncomingMessage, res: ServerResponse): Promise<void> {
  const [path = '/', query] = (req.url ?? '/').split('?', 2);
  if (`${path}/` === prefix) {
    res.writeHead(308, { location: query === undefined ? prefix : `${prefix}?${query}` }).end();
    return;
  }
  if (!path.startsWith(prefix)) {
    sendJson(res, 404, { error: `not found; this app lives under ${prefix}` });
    return;
  }
  const rest = path.slice(prefix.length);
  const method = req.method ?? 'GET';
  if (rest === '_dash-update-component') {
    if (method === 'POST') await updateComponent(req, res);
    else methodNotAllowed(res, 'POST');
    return;
  }
  if (method !== 'GET') {
    methodNotAllowed(res, 'GET');
    return;
  }
  const suiteFile = rest.startsWith(SUITES) ? rest.slice(SUITES.length) : undefined;
  if (rest === '') {
    res.writeHead(200, { 'content-type': 'text/html; charset=utf-8', 'cache-control': 'no-store' }).end(indexPage);
  } else if (rest === '_dash-layout') {
    sendJson(res, 200, buildLayout(identityFrom(req.headers)));
  } else if (rest === '_dash-dependencies') {
    sendJson(res, 200, DEPENDENCIES);
  } else if (suiteFile === undefined || !serveSuiteFile(suiteFile, req, res)) {
    sendJson(res, 404, { error: 'not found' });
  }
}

export async function startDashApp(options: SampleAppOptions): Promise<SampleApp> {
  const prefix = normalizePrefix(options.prefix ?? '/sales/');
  const indexPage = renderIndexPage(prefix);
  const server = createServer((req, res) => {
    route(prefix, indexPage, req, res).catch((error: unknown) => {
      console.error(`dash-app: ${req.method} ${req.url?.split('?')[0]} failed:`, error);
      if (!res.headersSent) sendJson(res, 500, { error: 'internal error' });
      else res.destroy();
    });
  });
  return listen(server, options.port, options.host ?? '127.0.0.1');
}
