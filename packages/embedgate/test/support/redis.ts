// A throwaway Redis server for tests: Debian's redis-server on a free 127.0.0.1 port, its append-only file in a temp
// dir (so a restart keeps the data), stoppable and restartable on the same port.
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, rmSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { eventually } from './gateway.js';
import { freePort } from './idp.js';

export const REDIS_SERVER = process.env.EMBEDGATE_REDIS_SERVER ?? '/usr/bin/redis-server';

export interface RunningRedis {
  /** redis://127.0.0.1:PORT */
  url: string;
  /** Stops the server (SIGTERM; it saves its append-only file first). */
  stop(): Promise<void>;
  /** Starts it again on the same port with the same data. */
  start(): Promise<void>;
  /** Stops it for good and removes its data. */
  close(): Promise<void>;
}

function accepts(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1');
    socket.once('connect', () => {
      socket.end();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

export async function startRedis(): Promise<RunningRedis> {
  const dir = mkdtempSync(join(tmpdir(), 'embedgate-redis-'));
  const port = await freePort();
  let child: ChildProcess | undefined;
  let output = '';

  const start = async (): Promise<void> => {
    output = '';
    child = spawn(REDIS_SERVER, [
      '--bind', '127.0.0.1', '--port', String(port), '--dir', dir, '--save', '',
      '--appendonly', 'yes', '--appendfsync', 'always', '--protected-mode', 'yes',
    ], { stdio: ['ignore', 'pipe', 'pipe'] });
    child.stdout?.on('data', (d: Buffer) => { output += d.toString(); });
    child.stderr?.on('data', (d: Buffer) => { output += d.toString(); });
    const failed = once(child, 'error').then(([error]) => {
      throw new Error(`${REDIS_SERVER} did not start (${(error as Error).message}); install it with: apt-get install -y redis-server`);
    });
    await Promise.race([eventually(() => accepts(port), 10_000), failed]).catch((error: unknown) => {
      throw new Error(`redis-server is not accepting connections: ${(error as Error).message}\n${output.slice(-2000)}`);
    });
  };
  const stop = async (): Promise<void> => {
    const running = child;
    child = undefined;
    if (running === undefined || running.exitCode !== null) return;
    const exited = once(running, 'exit');
    running.kill('SIGTERM');
    await exited;
  };

  await start();
  return {
    url: `redis://127.0.0.1:${port}`,
    stop,
    start,
    close: async () => {
      await stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
