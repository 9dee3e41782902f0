// Memory: the gateway's VmRSS while 1,000 connections load it, and bytes per session in the memory store (a child
// started with --expose-gc).
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { rssBytes } from '../children.js';
import { load, type Target } from '../load.js';
import type { Timing } from '../options.js';
import type { MemoryResults } from '../results.js';
import type { RunningGateway } from '../servers/embedgate.js';

const CONNECTIONS = 1000;

async function sessionMemory(count: number): Promise<MemoryResults['sessions']> {
  const script = fileURLToPath(new URL('../micro/session-memory.ts', import.meta.url));
  const { stdout } = await promisify(execFile)(process.execPath, ['--expose-gc', '--import', 'tsx', script, String(count)]);
  return JSON.parse(stdout) as MemoryResults['sessions'];
}

export async function measureMemory(target: Target, gateway: RunningGateway, timing: Timing): Promise<MemoryResults> {
  const gatewayPid = gateway.child.pid;
  const idleRssBytes = rssBytes(gatewayPid);
  let peakRssBytes = idleRssBytes;
  const sample = (): void => {
    peakRssBytes = Math.max(peakRssBytes, rssBytes(gatewayPid));
  };
  const figures = await load(target, { connections: CONNECTIONS, seconds: timing.peakSeconds, onTick: sample });
  sample();
  return {
    startRssBytes: gateway.startRssBytes, idleRssBytes, peakRssBytes, connections: CONNECTIONS, rpsAtConnections: figures.rps, errorsAtConnections: figures.errors + figures.non2xx,
    sessions: await sessionMemory(timing.sessions),
  };
}
