// The host portal's server on http://localhost:<port>: its page and script, its settings for the script, and the
// "attacker" probe that calls the apps' endpoints through the gateway with no token, the way curl would.
import { readFile } from 'node:fs/promises';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { listen } from '../shared/listen.js';
import { PORTAL_HTML } from './page.js';

export interface PortalApp {
  name: string;
  title: string;
  /** the app's path on the gateway, e.g. /sales/ */
  path: string;
}

export interface PortalOptions {
  port: number;
  /** the address to bind; the portal is visited as http://localhost:<port> */
  host?: string;
  /** the OpenID Provider the portal signs in with */
  issuer: string;
  clientId: string;
  /** the gateway's public URL */
  gateway: string;
  apps: PortalApp[];
  /** requests the probe sends without a token, e.g. POST /sales/_dash-update-component */
  probes: Array<{ method: 'GET' | 'POST'; path: string; body?: string }>;
}

export interface Portal {
  /** http://localhost:<port> */
  url: string;
  close(): Promise<void>;
}

/** What the portal's script needs: the bundled client, built by `npm run build` (build.mjs). */
const CLIENT_SCRIPT = new URL('./client.js', import.meta.url);

interface ProbeResult { request: string; status: number; error: string }

async function probe(gateway: string, probes: PortalOptions['probes']): Promise<ProbeResult[]> {
  return Promise.all(probes.map(async ({ method, path, body }) => {
    const request = `${method} ${path}`;
    try {
      const response = await fetch(new URL(path, gateway), {
        method, redirect: 'manual', headers: body === undefined ? {} : { 'content-type': 'application/json' }, body,
      });
      const answer = await response.json().catch(() => ({})) as { error?: unknown };
      return { request, status: response.status, error: typeof answer.error === 'string' ? answer.error : '' };
    } catch {
      return { request, status: 0, error: 'gateway unreachable' };
    }
  }));
}

export async function startPortal(options: PortalOptions): Promise<Portal> {
  const client = await readFile(CLIENT_SCRIPT).catch(() => {
    throw new Error(`the portal's script is not built (${CLIENT_SCRIPT.pathname}): run npm run build`);
  });
  const settings = JSON.stringify({ issuer: options.issuer, clientId: options.clientId, gateway: options.gateway, apps: options.apps });
  const send = (res: ServerResponse, status: number, type: string, body: string | Buffer): void => {
    res.writeHead(status, {
      'content-type': type,
      'cache-control': 'no-store',
      'x-content-type-options': 'nosniff',
      'referrer-policy': 'strict-origin-when-cross-origin',
    });
    res.end(body);
  };
  const respond = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const { pathname } = new URL(req.url ?? '/', 'http://portal.invalid');
    if (req.method !== 'GET') return send(res, 405, 'text/plain', 'method not allowed');
    switch (pathname) {
      case '/':
      case '/callback':
        return send(res, 200, 'text/html; charset=utf-8', PORTAL_HTML);
      case '/client.js':
        return send(res, 200, 'text/javascript; charset=utf-8', client);
      case '/config.json':
        return send(res, 200, 'application/json', settings);
      case '/probe':
        return send(res, 200, 'application/json', JSON.stringify(await probe(options.gateway, options.probes)));
      default:
        return send(res, 404, 'text/plain', 'not found');
    }
  };
  const server = createServer((req, res) => {
    respond(req, res).catch(() => send(res, 500, 'text/plain', 'the portal failed; see its terminal'));
  });
  const running = await listen(server, options.port, options.host ?? '127.0.0.1');
  return { url: `http://localhost:${new URL(running.url).port}`, close: running.close };
}
