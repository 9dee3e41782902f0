// The soak's processes, all on 127.0.0.1: redis-server, the Dash-like upstream, the embedded IdP (`embedgate idp`)
// issuing 60 s tokens by client credentials, and `embedgate serve` with its sessions in Redis and callback rules.
import { spawn } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { freePort, startChild, track, waitFor, waitForPort, type Child } from '../children.js';
import { BIN } from '../servers/embedgate-cli.js';
import { LogFilter } from './log-filter.js';

export const REDIS_SERVER = process.env.EMBEDGATE_REDIS_SERVER ?? '/usr/bin/redis-server';
export const TOKEN_SECONDS = 60;
/** The gateway's clock leeway for this issuer: a token is refused from exp + this on. */
export const LEEWAY_SECONDS = 5;
/** The callback outputs: one for analysts and admins, one for admins only. */
export const OPEN_OUTPUT = 'sales-table.children';
export const ADMIN_OUTPUT = 'payroll.children';
/** Client-credentials clients of the IdP: several analysts (several users' sessions) and one admin. */
export const CLIENTS = [
  { id: 'soak-analyst-1', role: 'analyst' },
  { id: 'soak-analyst-2', role: 'analyst' },
  { id: 'soak-analyst-3', role: 'analyst' },
  { id: 'soak-admin', role: 'admin' },
] as const;
export const CLIENT_SECRET = 'soak-secret-0123456789abcdef';

export interface SoakWorld {
  gatewayUrl: string;
  gatewayPid: number;
  issuer: string;
  redisUrl: string;
  redisPid: number;
  idpPid: number;
  gatewayLog: LogFilter;
  close(): Promise<void>;
}

async function startRedis(dir: string): Promise<{ url: string; child: Child }> {
  const port = await freePort();
  const child = startChild('redis-server', REDIS_SERVER, [
    '--bind', '127.0.0.1', '--port', String(port), '--dir', dir, '--save', '', '--appendonly', 'no', '--protected-mode', 'yes',
  ], join(dir, 'redis.log'));
  await waitForPort(child, port);
  return { url: `redis://127.0.0.1:${port}`, child };
}

async function startUpstream(): Promise<{ url: string; child: Child }> {
  const port = await freePort();
  const file = fileURLToPath(new URL('./upstream-server.ts', import.meta.url));
  const child = startChild('upstream', process.execPath, ['--import', 'tsx', file, String(port)]);
  await waitForPort(child, port);
  return { url: `http://127.0.0.1:${port}`, child };
}

async function startIdp(dir: string, gatewayUrl: string): Promise<{ issuer: string; child: Child }> {
  const port = await freePort();
  const issuer = `http://127.0.0.1:${port}`;
  const file = join(dir, 'idp.yaml');
  writeFileSync(file, JSON.stringify({
    idp: {
      issuer, listen: `127.0.0.1:${port}`, store: `sqlite:${join(dir, 'idp.db')}`, resource: gatewayUrl,
      access_token_ttl_seconds: TOKEN_SECONDS, token_requests_per_minute: 100_000, log_level: 'warn',
      clients: CLIENTS.map((c) => ({ client_id: c.id, client_secret: CLIENT_SECRET, grant_types: ['client_credentials'], roles: [c.role] })),
    },
  }, null, 2));
  const child = startChild('embedgate idp', process.execPath, [BIN, 'idp', '--config', file], join(dir, 'idp.log'));
  await waitFor(child, 'IdP discovery', async () => (await fetch(`${issuer}/.well-known/openid-configuration`)).ok);
  return { issuer, child };
}

function gatewayConfig(dir: string, port: number, issuer: string, upstream: string, redisUrl: string): Record<string, unknown> {
  const url = `http://127.0.0.1:${port}`;
  return {
    listen: `127.0.0.1:${port}`,
    public_url: url,
    data_dir: join(dir, 'data'),
    issuers: [{ issuer, audiences: [url], algorithms: ['RS256'], require_typ: 'at+jwt', leeway_seconds: LEEWAY_SECONDS }],
    embed: { allowed_origins: ['http://127.0.0.1:3000'] },
    sessions: { store: redisUrl },
    apps: [{
      name: 'sales',
      prefix: '/sales/',
      upstream,
      allow: { roles: ['analyst', 'admin'] },
      public: ['/sales/assets/**'],
      dash: { callbacks: [{ output: OPEN_OUTPUT, allow: { roles: ['analyst', 'admin'] } }, { output: ADMIN_OUTPUT, allow: { roles: ['admin'] } }] },
    }],
  };
}

/** `embedgate serve` in its own process group, its stdout (JSON log lines) read through a LogFilter. */
async function startGateway(dir: string, port: number, config: Record<string, unknown>): Promise<{ pid: number; log: LogFilter; child: Child }> {
  mkdirSync(dir, { recursive: true });
  const file = join(dir, 'embedgate.yaml');
  writeFileSync(file, JSON.stringify(config, null, 2));
  const spawned = spawn(process.execPath, [BIN, 'serve', '--config', file], { stdio: ['ignore', 'pipe', 'pipe'], detached: true });
  if (spawned.pid === undefined || spawned.stdout === null) throw new Error('embedgate serve: could not start');
  track(spawned);
  const pid = spawned.pid;
  const log = new LogFilter(spawned.stdout, join(dir, 'gateway.log'));
  let stderr = '';
  spawned.stderr?.on('data', (chunk: Buffer) => {
    stderr = (stderr + chunk.toString('utf8')).slice(-8192);
  });
  const exited = new Promise<number | string>((resolve) => spawned.once('exit', (code, signal) => resolve(code ?? signal ?? 'unknown')));
  const child: Child = {
    name: 'embedgate serve', pid, exited, stderr: () => stderr,
    stop: async (graceMs = 5000) => {
      if (spawned.exitCode !== null || spawned.signalCode !== null) return;
      spawned.kill('SIGTERM');
      const timer = setTimeout(() => spawned.kill('SIGKILL'), graceMs);
      await exited;
      clearTimeout(timer);
    },
  };
  const url = `http://127.0.0.1:${port}`;
  await waitFor(child, 'a ready /readyz', async () => (await fetch(`${url}/readyz`)).status === 200, 30_000);
  return { pid, log, child };
}

export async function startSoakWorld(dir: string): Promise<SoakWorld> {
  const children: Child[] = [];
  try {
    const redis = await startRedis(dir);
    children.push(redis.child);
    const upstream = await startUpstream();
    children.push(upstream.child);
    const port = await freePort();
    const gatewayUrl = `http://127.0.0.1:${port}`;
    const idp = await startIdp(dir, gatewayUrl);
    children.push(idp.child);
    const gateway = await startGateway(join(dir, 'gateway'), port, gatewayConfig(join(dir, 'gateway'), port, idp.issuer, upstream.url, redis.url));
    children.push(gateway.child);
    return {
      gatewayUrl, gatewayPid: gateway.pid, issuer: idp.issuer, redisUrl: redis.url, redisPid: redis.child.pid, idpPid: idp.child.pid,
      gatewayLog: gateway.log,
      close: async () => {
        // The gateway first (it drains), then what it depends on.
        for (const child of children.reverse()) await child.stop();
        await gateway.log.close();
      },
    };
  } catch (error) {
    for (const child of children.reverse()) await child.stop();
    throw error;
  }
}
