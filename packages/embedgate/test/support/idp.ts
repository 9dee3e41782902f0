// Starts the real embedded identity provider in this process on a free loopback port, with logs captured.
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { pino } from 'pino';
import { parseIdpConfig, type IdpConfig } from '../../src/idp/config.js';
import { IdentityProvider } from '../../src/idp/server.js';

export interface RunningIdp {
  idp: IdentityProvider;
  issuer: string;
  config: IdpConfig;
  /** Every log line written so far, as raw JSON text. */
  logs: string[];
  /** Stops the IdP; the store (and its directory) is kept for a restart unless `removeData` is set. */
  close(removeData?: boolean): Promise<void>;
}

export const GATEWAY_AUDIENCE = 'http://127.0.0.1:4180';

/** A free loopback port (bound and released; fine for tests on one machine). */
export async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise((resolve) => server.close(resolve));
  return port;
}

/**
 * Starts the IdP with `idp` merged over a default section (a fresh SQLite file, the gateway audience).
 * Pass `port` and the same `store` to restart on the same address and data.
 */
export async function startIdp(idp: Record<string, unknown> = {}, port?: number): Promise<RunningIdp> {
  const listenPort = port ?? await freePort();
  const dataDir = mkdtempSync(join(tmpdir(), 'embedgate-idp-'));
  const issuer = `http://127.0.0.1:${listenPort}`;
  const config = parseIdpConfig({
    issuer,
    listen: `127.0.0.1:${listenPort}`,
    store: `sqlite:${join(dataDir, 'idp.db')}`,
    resource: GATEWAY_AUDIENCE,
    log_level: 'debug',
    ...idp,
  });
  const logs: string[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _encoding, done) {
      logs.push(...chunk.toString('utf8').split('\n').filter((line) => line !== ''));
      done();
    },
  });
  const instance = await IdentityProvider.create(config, { logger: pino({ level: 'debug' }, sink) });
  await instance.listen();
  return {
    idp: instance,
    issuer,
    config,
    logs,
    close: async (removeData = true) => {
      await instance.close();
      if (removeData) rmSync(dataDir, { recursive: true, force: true });
    },
  };
}
