// Memory: the gateway's VmRSS while 1,000 connections load it, the same load on the bare Node proxy for reference (what
// Node, node:http and undici's pool cost by themselves), and bytes per session in the memory store (a child started
// with --expose-gc).
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { transformSync } from 'esbuild';
import { freePort, rssBytes, startChild, waitForPort } from '../children.js';
import { load, type LoadFigures, type Target } from '../load.js';
import type { Timing } from '../options.js';
import type { MemoryResults } from '../results.js';
import type { RunningGateway } from '../servers/embedgate.js';
import { REQUEST_PATH } from '../servers/payload.js';

const CONNECTIONS = 1000;

async function sessionMemory(count: number): Promise<MemoryResults['sessions']> {
  const script = fileURLToPath(new URL('../micro/session-memory.ts', import.meta.url));
  const { stdout } = await promisify(execFile)(process.execPath, ['--expose-gc', '--import', 'tsx', script, String(count)]);
  return JSON.parse(stdout) as MemoryResults['sessions'];
}

/** VmRSS of `pid` just before, and at most during, CONNECTIONS connections of load on `target`. */
async function rssUnderLoad(pid: number, target: Target, timing: Timing): Promise<{ idleRssBytes: number; peakRssBytes: number; figures: LoadFigures }> {
  const idleRssBytes = rssBytes(pid);
  let peakRssBytes = idleRssBytes;
  const sample = (): void => {
    peakRssBytes = Math.max(peakRssBytes, rssBytes(pid));
  };
  const figures = await load(target, { connections: CONNECTIONS, seconds: timing.peakSeconds, onTick: sample });
  sample();
  return { idleRssBytes, peakRssBytes, figures };
}

/**
 * The bare proxy under the same load, as a fresh process. It runs with its types stripped by plain node rather than
 * with --import tsx: tsx's loader thread alone adds about 27 MB of RSS, which neither Node nor the gateway needs.
 */
async function bareProxyMemory(upstream: string, timing: Timing): Promise<NonNullable<MemoryResults['bare']>> {
  const dir = mkdtempSync(join(tmpdir(), 'embedgate-bare-'));
  const source = readFileSync(fileURLToPath(new URL('../servers/bare-proxy.ts', import.meta.url)), 'utf8');
  const { code } = transformSync(source, { loader: 'ts', format: 'esm' });
  // From the temp dir, 'undici' would not resolve: import the copy the bench (and the gateway) resolve.
  const file = join(dir, 'bare-proxy.mjs');
  writeFileSync(file, code.replaceAll(/from\s*["']undici["']/g, `from ${JSON.stringify(import.meta.resolve('undici'))}`));
  const port = await freePort();
  const child = startChild('bare proxy (memory)', process.execPath, [file, String(port), upstream]);
  try {
    await waitForPort(child, port);
    const startRssBytes = rssBytes(child.pid);
    const { peakRssBytes, figures } = await rssUnderLoad(child.pid, { url: `http://127.0.0.1:${port}${REQUEST_PATH}` }, timing);
    return { startRssBytes, peakRssBytes, rpsAtConnections: figures.rps, errorsAtConnections: figures.errors + figures.non2xx };
  } finally {
    await child.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

export async function measureMemory(target: Target, gateway: RunningGateway, upstream: string, timing: Timing): Promise<MemoryResults> {
  const { idleRssBytes, peakRssBytes, figures } = await rssUnderLoad(gateway.child.pid, target, timing);
  return {
    startRssBytes: gateway.startRssBytes, idleRssBytes, peakRssBytes, connections: CONNECTIONS, rpsAtConnections: figures.rps, errorsAtConnections: figures.errors + figures.non2xx,
    bare: await bareProxyMemory(upstream, timing),
    sessions: await sessionMemory(timing.sessions),
  };
}
