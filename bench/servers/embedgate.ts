// Starts `embedgate serve --config FILE` (the real CLI) as a child with a config written to a temp dir, and makes
// embed sessions on it the way the frame's bootstrap does.
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { rssBytes, startChild, waitFor, type Child } from '../children.js';
import { BIN } from './embedgate-cli.js';
import { AUDIENCE } from './issuer.js';
import { REQUEST_PATH } from './payload.js';

export const SESSION_COOKIE = '__Host-embedgate';
/** The Dash callback output the bench's callback requests name, and the rule that covers it. */
export const DASH_OUTPUT = 'sales-table.children';
const ROLES = ['analyst', 'admin'];

export interface GatewaySetup {
  /** Directory for the config, data (assertion key, SQLite sessions) and the log. */
  dir: string;
  port: number;
  issuer: string;
  upstream: string;
  /** `routes` entries of the app; the last one matches REQUEST_PATH, the others never match. */
  routes: number;
  workers?: number;
  /** `trusted_proxies`: set for the gateway nginx asks with auth_request (it must believe X-Forwarded-Uri). */
  trustedProxies?: string[];
  /** Extra node options for the gateway process, e.g. --cpu-prof. */
  nodeOptions?: string[];
}

export interface RunningGateway {
  url: string;
  child: Child;
  /** VmRSS of the gateway process once it was ready, before any load. */
  startRssBytes: number;
}

/** `routes` entries as an operator would write them: one page area each, with its own role rule. */
function routes(count: number): Array<Record<string, unknown>> {
  const last = `${REQUEST_PATH.slice(0, REQUEST_PATH.lastIndexOf('/'))}/**`;
  return Array.from({ length: count }, (_, i) => i === count - 1
    ? { paths: [last], methods: ['GET'], allow: { roles: ROLES } }
    : { paths: [`/sales/area-${i}/**`, `/sales/area-${i}`], allow: { roles: [`area-${i}`, 'admin'] } });
}

/** The gateway's config: one Dash app with `routes`, callback rules and a public area, the bench issuer. */
/** The prefix of the app that takes only the user header (the `lean` row of the table). */
export const LEAN_PREFIX = '/lean/';

export function gatewayConfig(setup: GatewaySetup): Record<string, unknown> {
  const url = `http://127.0.0.1:${setup.port}`;
  return {
    listen: `127.0.0.1:${setup.port}`,
    public_url: url,
    data_dir: join(setup.dir, 'data'),
    ...(setup.trustedProxies === undefined ? {} : { trusted_proxies: setup.trustedProxies }),
    issuers: [{ issuer: setup.issuer, audiences: [AUDIENCE], algorithms: ['RS256'] }],
    // Embedding on, as where the apps are framed by a host site: responses get the embedding headers.
    embed: { allowed_origins: ['http://127.0.0.1:3000'] },
    apps: [{
      name: 'sales',
      prefix: '/sales/',
      upstream: setup.upstream,
      allow: { roles: ROLES },
      public: ['/sales/assets/**'],
      routes: routes(setup.routes),
      dash: { callbacks: [{ output: DASH_OUTPUT, allow: { roles: ROLES } }, { output: 'payroll.children', allow: { roles: ['admin'] } }] },
    }, {
      // The same upstream for an app that reads only X-Forwarded-User (apps[].identity_headers): no assertion.
      name: 'lean',
      prefix: LEAN_PREFIX,
      upstream: setup.upstream,
      allow: { roles: ROLES },
      identity_headers: ['user'],
    }],
  };
}

/** Writes the config (JSON is YAML), starts the CLI and waits until /readyz answers 200 (the issuer's keys loaded). */
export async function startGateway(name: string, setup: GatewaySetup): Promise<RunningGateway> {
  mkdirSync(setup.dir, { recursive: true });
  const file = join(setup.dir, 'embedgate.yaml');
  writeFileSync(file, JSON.stringify(gatewayConfig(setup), null, 2));
  const args = [...(setup.nodeOptions ?? []), BIN, 'serve', '--config', file, ...(setup.workers === undefined ? [] : ['--workers', String(setup.workers)])];
  const child = startChild(name, process.execPath, args, join(setup.dir, 'gateway.log'));
  const url = `http://127.0.0.1:${setup.port}`;
  // Every worker loads the keys by itself: a few answers in a row, so that most of them have.
  let ready = 0;
  await waitFor(child, 'a ready /readyz', async () => {
    ready = (await fetch(`${url}/readyz`)).status === 200 ? ready + 1 : 0;
    return ready >= 2 * (setup.workers ?? 1);
  });
  return { url, child, startRssBytes: rssBytes(child.pid) };
}

/** POST /_embedgate/session with the bearer, from the gateway's own origin; returns the session cookie header. */
export async function createSession(gatewayUrl: string, token: string): Promise<string> {
  const response = await fetch(`${gatewayUrl}/_embedgate/session`, {
    method: 'POST',
    headers: { authorization: `Bearer ${token}`, origin: gatewayUrl, 'content-type': 'application/json' },
    body: JSON.stringify({ path: '/sales/' }),
  });
  const cookie = response.headers.getSetCookie().map((c) => c.split(';')[0] ?? '').find((c) => c.startsWith(`${SESSION_COOKIE}=`));
  if (response.status !== 200 || cookie === undefined) throw new Error(`POST /_embedgate/session answered ${response.status}: ${await response.text()}`);
  return cookie;
}

/** A worker-mode session handle (what the frame's service worker puts in X-Embedgate-Session), made as the frame does. */
export async function createHandle(gatewayUrl: string, token: string): Promise<string> {
  const response = await fetch(`${gatewayUrl}/_embedgate/session`, {
    method: 'POST',
    headers: { authorization: `Bearer ${token}`, origin: gatewayUrl, 'content-type': 'application/json' },
    body: JSON.stringify({ path: '/sales/', handle: true }),
  });
  const { handle } = (await response.json()) as { handle?: string };
  if (response.status !== 200 || typeof handle !== 'string') throw new Error(`POST /_embedgate/session for a handle answered ${response.status}`);
  return handle;
}

/** A Dash callback request body as Dash 2 sends it, naming one output. */
export function dashCallbackBody(): string {
  const [id, property] = DASH_OUTPUT.split('.') as [string, string];
  return JSON.stringify({
    output: DASH_OUTPUT,
    outputs: { id, property },
    inputs: [{ id: 'region-dropdown', property: 'value', value: 'emea' }, { id: 'period-slider', property: 'value', value: [3, 9] }],
    changedPropIds: ['region-dropdown.value'],
    state: [{ id: 'sales-table', property: 'page_current', value: 0 }],
  });
}
