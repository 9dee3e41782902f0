// Starts a real gateway in this process for a test, with its JSON logs captured for inspection.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { pino } from 'pino';
import { parseConfig } from '../../src/config/load.js';
import { Gateway } from '../../src/gateway/server.js';

export interface RunningGateway {
  gateway: Gateway;
  url: string;
  /** Every log line written so far, as raw JSON text. */
  logs: string[];
  fetch(path: string, init?: RequestInit & { token?: string }): Promise<Response>;
  close(): Promise<void>;
}

/**
 * Validates `config` through the real schema (listen and public_url default to a free loopback port)
 * and starts the gateway. `public_url` is fixed to the actual address once the port is known.
 */
export async function startGateway(config: Record<string, unknown>, logLevel = 'debug'): Promise<RunningGateway> {
  const dataDir = mkdtempSync(join(tmpdir(), 'embedgate-test-'));
  const logs: string[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _encoding, done) {
      logs.push(...chunk.toString('utf8').split('\n').filter((line) => line !== ''));
      done();
    },
  });
  const parsed = parseConfig({ listen: '127.0.0.1:0', public_url: 'http://127.0.0.1', data_dir: dataDir, log_level: logLevel, ...config });
  const gateway = await Gateway.create(parsed, { logger: pino({ level: logLevel }, sink) });
  const { url } = await gateway.listen();
  return {
    gateway,
    url,
    logs,
    fetch: (path, init = {}) => {
      const { token, ...rest } = init;
      const headers = new Headers(rest.headers);
      if (token !== undefined) headers.set('authorization', `Bearer ${token}`);
      return fetch(`${url}${path}`, { ...rest, headers, redirect: 'manual' });
    },
    close: async () => {
      await gateway.close();
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

/** Polls `check` until it returns true, for states that settle in the background (bounded, no fixed sleep). */
export async function eventually(check: () => Promise<boolean> | boolean, timeoutMs = 5000, intervalMs = 20): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await check()) return;
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((resolve) => setTimeout(resolve, intervalMs));
  }
}
