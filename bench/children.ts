// The benchmark's child processes: each in its own process group, awaited until it answers, killed on exit and Ctrl-C.
import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, openSync, readFileSync } from 'node:fs';
import { connect, createServer, type AddressInfo } from 'node:net';

export interface Child {
  name: string;
  pid: number;
  /** Resolves with the exit code (or the signal's name) when the process has ended. */
  exited: Promise<number | string>;
  /** The last few KB of its stderr, for error messages. */
  stderr(): string;
  /** SIGTERM to the process group, then SIGKILL after `graceMs`. */
  stop(graceMs?: number): Promise<void>;
}

const live = new Map<number, ChildProcess>();
const STDERR_KEPT = 8192;

function killGroup(pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(-pid, signal);
  } catch {
    // Already gone.
  }
}

/** Registers a process started elsewhere (in its own group) so it dies with the benchmark. */
export function track(child: ChildProcess): void {
  const { pid } = child;
  if (pid === undefined) return;
  live.set(pid, child);
  child.once('exit', () => live.delete(pid));
}

/** Starts `command args` detached (its own process group); stdout goes to `stdoutFile` or nowhere. */
export function startChild(name: string, command: string, args: string[], stdoutFile?: string): Child {
  const stdout = stdoutFile === undefined ? 'ignore' : openSync(stdoutFile, 'a');
  const child = spawn(command, args, { stdio: ['ignore', stdout, 'pipe'], detached: true });
  if (typeof stdout === 'number') closeSync(stdout);
  if (child.pid === undefined) throw new Error(`${name}: could not start ${command}`);
  const pid = child.pid;
  track(child);
  let stderr = '';
  child.stderr?.on('data', (chunk: Buffer) => {
    stderr = (stderr + chunk.toString('utf8')).slice(-STDERR_KEPT);
  });
  const exited = new Promise<number | string>((resolve) => child.once('exit', (code, signal) => resolve(code ?? signal ?? 'unknown')));
  return {
    name,
    pid,
    exited,
    stderr: () => stderr,
    stop: async (graceMs = 5000) => {
      if (!live.has(pid)) return;
      killGroup(pid, 'SIGTERM');
      const timer = setTimeout(() => killGroup(pid, 'SIGKILL'), graceMs);
      await exited;
      clearTimeout(timer);
      // Workers of a cluster or nginx may outlive their parent by a moment.
      killGroup(pid, 'SIGKILL');
    },
  };
}

function portOpen(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1');
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

/** Waits until `check` holds, failing early with the child's stderr when it exits first. */
export async function waitFor(child: Child, what: string, check: () => Promise<boolean>, timeoutMs = 15_000): Promise<void> {
  let exit: number | string | undefined;
  void child.exited.then((code) => {
    exit = code;
  });
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (exit !== undefined) throw new Error(`${child.name} exited (${exit}) before ${what}:\n${child.stderr()}`);
    if (await check().catch(() => false)) return;
    if (Date.now() > deadline) throw new Error(`${child.name}: no ${what} after ${timeoutMs / 1000} s:\n${child.stderr()}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

/** A port that was free on 127.0.0.1 a moment ago. */
export async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

export function waitForPort(child: Child, port: number): Promise<void> {
  return waitFor(child, `listener on 127.0.0.1:${port}`, () => portOpen(port));
}

/** Resident set size of a process in bytes (VmRSS in /proc/<pid>/status). */
export function rssBytes(pid: number): number {
  const match = /^VmRSS:\s+(\d+) kB$/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  if (match === null) throw new Error(`no VmRSS for pid ${pid}`);
  return Number(match[1]) * 1024;
}

/** The process groups of the bench: its own (npm and the runner) and each child's (children run detached). */
export function benchProcessGroups(): Set<number> {
  const own = readFileSync('/proc/self/stat', 'utf8');
  return new Set([Number(own.slice(own.lastIndexOf(')') + 2).split(' ')[2]), ...live.keys()]);
}

/** Stops every child still running (on the normal way out). */
export async function stopAll(): Promise<void> {
  await Promise.all([...live.keys()].map(async (pid) => {
    killGroup(pid, 'SIGTERM');
    await new Promise((resolve) => setTimeout(resolve, 200));
    killGroup(pid, 'SIGKILL');
  }));
}

function killAllNow(): void {
  for (const pid of live.keys()) killGroup(pid, 'SIGKILL');
}

process.once('exit', killAllNow);
for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
  process.once(signal, () => {
    process.stderr.write(`\nbench: ${signal}, stopping ${live.size} child process(es)\n`);
    killAllNow();
    process.exit(130);
  });
}
