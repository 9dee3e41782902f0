// `embedgate demo`: the whole system on loopback in one process, until Ctrl-C — the embedded identity provider, the
// gateway, the sample apps of @embedgate/demo and the host portal — from the demo's config file.
import { mkdirSync } from 'node:fs';
import { createRequire } from 'node:module';
import { parseArgs } from 'node:util';
import { pino, type Logger } from 'pino';
import { ConfigError, loadConfigFile } from '../config/load.js';
import type { GatewayConfig } from '../config/schema.js';
import { Gateway } from '../gateway/server.js';
import { loadIdpConfigFile, type IdpConfig } from '../idp/config.js';
import { IdentityProvider } from '../idp/server.js';
import { createLogger } from '../ops/logger.js';
import { usageError } from './args.js';
import { reportConfigError } from './check-config.js';
import { DEMO_USERS, demoPasswords, passwordVariable } from './demo-passwords.js';

const USAGE = `Usage: embedgate demo [options]

Runs the demo on loopback until Ctrl-C: the identity provider, the gateway, a Dash-protocol sample app, a live
WebSocket app and a host portal that signs in and embeds them. Prints the URLs and the demo users.

Options:
  --config FILE        the demo config (default: examples/demo/embedgate.yaml of @embedgate/demo)
  --data-dir DIR       where the IdP, the sessions and the demo passwords are kept (default ./data/demo)
  --portal-port N      default 3000      --gateway-port N   default 4180     --idp-port N   default 4000
  --dash-port N        default 8050      --live-port N      default 8060
  --verbose            the services' logs at info level (default: warnings only)

The ports and the data directory can also be set with DEMO_PORTAL_PORT, DEMO_GATEWAY_PORT, DEMO_IDP_PORT,
DEMO_DASH_PORT, DEMO_LIVE_PORT and DEMO_DATA_DIR; the passwords with ${DEMO_USERS.map(passwordVariable).join(', ')}.
Exit codes: 2 for bad options or configuration, 1 when something cannot start (e.g. a port is taken).`;

const PORT_OPTIONS = {
  'portal-port': 'DEMO_PORTAL_PORT',
  'gateway-port': 'DEMO_GATEWAY_PORT',
  'idp-port': 'DEMO_IDP_PORT',
  'dash-port': 'DEMO_DASH_PORT',
  'live-port': 'DEMO_LIVE_PORT',
} as const;

/** What the command uses of @embedgate/demo (loaded at run time: the gateway does not depend on the demo). */
interface SampleApp { url: string; close(): Promise<void> }
interface DemoPackage {
  startDashApp(options: { port: number; prefix: string }): Promise<SampleApp>;
  startStreamApp(options: { port: number; prefix: string }): Promise<SampleApp>;
  startPortal(options: {
    port: number; issuer: string; clientId: string; gateway: string;
    apps: Array<{ name: string; title: string; path: string }>;
    probes: Array<{ method: 'GET' | 'POST'; path: string; body?: string }>;
  }): Promise<SampleApp>;
}

const DEMO_PACKAGE = '@embedgate/demo';
const SAMPLE_APPS = { sales: { title: 'Sales dashboard', start: 'startDashApp' }, live: { title: 'Live feed', start: 'startStreamApp' } } as const;

interface Options { config?: string; dataDir: string; verbose: boolean }

function parse(args: string[], env: NodeJS.ProcessEnv): { ok: true; options: Options } | { ok: false; exitCode: number } {
  let values: Record<string, string | boolean | undefined>;
  try {
    ({ values } = parseArgs({
      args,
      strict: true,
      options: {
        config: { type: 'string', short: 'c' },
        'data-dir': { type: 'string' },
        verbose: { type: 'boolean' },
        help: { type: 'boolean', short: 'h' },
        ...Object.fromEntries(Object.keys(PORT_OPTIONS).map((name) => [name, { type: 'string' }])),
      },
    }));
  } catch (error) {
    return usageError((error as Error).message, USAGE);
  }
  if (values.help === true) {
    process.stdout.write(`${USAGE}\n`);
    return { ok: false, exitCode: 0 };
  }
  for (const [name, variable] of Object.entries(PORT_OPTIONS)) {
    const value = values[name];
    if (typeof value !== 'string') continue;
    if (!/^\d{1,5}$/.test(value) || Number(value) < 1 || Number(value) > 65535) {
      process.stderr.write(`embedgate: --${name} must be a port number (1-65535), not "${value}"\n`);
      return { ok: false, exitCode: 2 };
    }
    env[variable] = value;
  }
  if (typeof values['data-dir'] === 'string') env.DEMO_DATA_DIR = values['data-dir'];
  env.DEMO_DATA_DIR ??= './data/demo';
  return { ok: true, options: { ...(typeof values.config === 'string' ? { config: values.config } : {}), dataDir: env.DEMO_DATA_DIR, verbose: values.verbose === true } };
}

async function loadDemoPackage(): Promise<{ demo: DemoPackage; config: string } | undefined> {
  try {
    const specifier: string = DEMO_PACKAGE;
    const demo = await import(specifier) as DemoPackage;
    return { demo, config: createRequire(import.meta.url).resolve(`${DEMO_PACKAGE}/embedgate.yaml`) };
  } catch {
    return undefined;
  }
}

/** A service that could not start: which, and why, in one line. */
class StartFailure extends Error {}

async function start<T>(what: string, port: number, run: () => Promise<T>): Promise<T> {
  try {
    return await run();
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    throw new StartFailure(code === 'EADDRINUSE'
      ? `port ${port} (${what}) is already in use: stop what uses it, or pick another port (embedgate demo --help)`
      : `${what} did not start: ${(error as Error).message}`);
  }
}

const listenPort = (listen: string): number => Number(listen.slice(listen.lastIndexOf(':') + 1));
const portOf = (url: string): number => Number(new URL(url).port || (new URL(url).protocol === 'https:' ? 443 : 80));

interface Running { closers: Array<() => Promise<void>>; lines: string[] }

async function startAll(demo: DemoPackage, gatewayConfig: GatewayConfig, idpConfig: IdpConfig, logger: Logger, running: Running): Promise<void> {
  await start('the identity provider', listenPort(idpConfig.listen), async () => {
    const service = await IdentityProvider.create(idpConfig, { logger });
    running.closers.push(() => service.close());
    await service.listen();
  });
  await start('the gateway', listenPort(gatewayConfig.listen), async () => {
    const service = await Gateway.create(gatewayConfig, { logger });
    running.closers.push(() => service.close());
    await service.listen();
  });
  const apps: Array<{ name: string; title: string; path: string }> = [];
  for (const app of gatewayConfig.apps) {
    const sample = SAMPLE_APPS[app.name as keyof typeof SAMPLE_APPS] as (typeof SAMPLE_APPS)[keyof typeof SAMPLE_APPS] | undefined;
    if (sample === undefined) continue;
    const port = portOf(app.upstream);
    const started = await start(`the ${sample.title.toLowerCase()} app`, port, () => demo[sample.start]({ port, prefix: app.prefix }));
    running.closers.push(() => started.close());
    apps.push({ name: app.name, title: sample.title, path: app.prefix });
  }
  const portalOrigin = gatewayConfig.embed.allowed_origins[0];
  const client = idpConfig.clients.find((c) => c.public && c.redirect_uris.some((uri) => uri.startsWith(`${portalOrigin}/`)));
  if (portalOrigin === undefined || client === undefined) {
    throw new StartFailure('the config needs embed.allowed_origins[0] (the portal) and a public idp client redirecting to it');
  }
  const portal = await start('the portal', portOf(portalOrigin), () => demo.startPortal({
    port: portOf(portalOrigin),
    issuer: idpConfig.issuer,
    clientId: client.client_id,
    gateway: gatewayConfig.public_url,
    apps,
    probes: [
      { method: 'GET', path: '/sales/_dash-layout' },
      { method: 'POST', path: '/sales/_dash-update-component', body: JSON.stringify({ output: 'payroll.children', outputs: { id: 'payroll', property: 'children' }, inputs: [], changedPropIds: [] }) },
      { method: 'GET', path: '/live/' },
    ],
  }));
  running.closers.push(() => portal.close());
  running.lines.push(
    `  Portal (open this)   ${portalOrigin}`,
    `  Gateway              ${gatewayConfig.public_url}   (apps: ${apps.map((a) => a.path).join(', ')})`,
    `  Identity provider    ${idpConfig.issuer}`,
  );
}

export async function demoCommand(args: string[], env: NodeJS.ProcessEnv = process.env): Promise<number> {
  const parsed = parse(args, env);
  if (!parsed.ok) return parsed.exitCode;
  const { options } = parsed;
  const loaded = await loadDemoPackage();
  if (loaded === undefined) {
    process.stderr.write(`embedgate: the demo needs the ${DEMO_PACKAGE} package (built): run it from the embedgate repository after npm install\n`);
    return 2;
  }
  const configFile = options.config ?? loaded.config;
  mkdirSync(options.dataDir, { recursive: true });
  const passwords = demoPasswords(options.dataDir, env);
  let gatewayConfig: GatewayConfig;
  let idpConfig: IdpConfig;
  try {
    gatewayConfig = loadConfigFile(configFile, env);
    idpConfig = loadIdpConfigFile(configFile, env);
  } catch (error) {
    if (error instanceof ConfigError) return reportConfigError(configFile, error);
    throw error;
  }
  const logger = createLogger(options.verbose ? 'info' : 'warn', pino.destination(2));
  const running: Running = { closers: [], lines: [] };
  const stop = async (): Promise<void> => {
    for (const close of running.closers.reverse()) await close().catch(() => undefined);
  };
  try {
    await startAll(loaded.demo, gatewayConfig, idpConfig, logger, running);
  } catch (error) {
    await stop();
    if (!(error instanceof StartFailure)) throw error;
    process.stderr.write(`embedgate demo: ${error.message}\n`);
    return 1;
  }
  const users = idpConfig.users.map((user) => `  ${user.username.padEnd(9)} ${(passwords[user.username] ?? '(from the config)').padEnd(18)} ${user.roles.length > 0 ? user.roles.join(', ') : '(no role)'}`);
  process.stdout.write(['embedgate demo is running; Ctrl-C stops it.', '', ...running.lines, '',
    'Sign in to the portal as one of these users (username, password, roles):', ...users, '',
    `The passwords are kept in ${options.dataDir}/demo-passwords.json (or set ${DEMO_USERS.map(passwordVariable).join(', ')}).`, ''].join('\n'));
  await new Promise<void>((resolve) => {
    process.once('SIGINT', () => resolve());
    process.once('SIGTERM', () => resolve());
  });
  process.stdout.write('embedgate demo: stopping\n');
  await stop();
  return 0;
}
