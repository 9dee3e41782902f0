// A throwaway PostgreSQL cluster for tests: initdb into a temp dir, listen on a free 127.0.0.1 port, remove on stop.
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import {
  accessSync,
  chownSync,
  constants,
  existsSync,
  mkdtempSync,
  readFileSync,
  readdirSync,
  realpathSync,
  rmSync,
} from 'node:fs';
import { createServer, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { delimiter, dirname, join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import pg from 'pg';

export interface RunningPostgres {
  /** postgres://postgres@127.0.0.1:PORT/postgres (trust auth, no password). */
  url: string;
  stop(): Promise<void>;
}

const READY_TIMEOUT_MS = 30_000;
const STOP_TIMEOUT_MS = 10_000;
const LOG_LIMIT = 8192;

const INSTALL_HINT =
  'PostgreSQL server binaries (initdb, postgres) were not found on PATH or under /usr/lib/postgresql/*/bin; ' +
  'install them with: apt-get install -y --no-install-recommends postgresql';

function isExecutable(path: string): boolean {
  try {
    accessSync(path, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

/** Numeric-aware descending order, so /usr/lib/postgresql/17 comes before 9.6. */
function newestFirst(names: string[]): string[] {
  return [...names].sort((a, b) => b.localeCompare(a, 'en', { numeric: true }));
}

/** The directory holding initdb and postgres: from PATH (following symlinks) or the newest Debian-style install. */
export function findPostgresBinDir(): string | undefined {
  const candidates = (process.env.PATH ?? '').split(delimiter).filter(Boolean);
  const debianRoot = '/usr/lib/postgresql';
  if (existsSync(debianRoot)) {
    for (const version of newestFirst(readdirSync(debianRoot))) candidates.push(join(debianRoot, version, 'bin'));
  }
  for (const dir of candidates) {
    const initdb = join(dir, 'initdb');
    if (!isExecutable(initdb)) continue;
    const binDir = dirname(realpathSync(initdb));
    if (isExecutable(join(binDir, 'postgres'))) return binDir;
  }
  return undefined;
}

interface Account {
  uid: number;
  gid: number;
}

/** When running as root, the unprivileged account PostgreSQL runs as (it refuses to run as root). */
function serverAccount(): Account | undefined {
  if (process.getuid?.() !== 0) return undefined;
  const lines = readFileSync('/etc/passwd', 'utf8').split('\n');
  for (const name of ['postgres', 'nobody']) {
    const fields = lines.find((line) => line.startsWith(`${name}:`))?.split(':');
    if (fields && fields.length >= 4) return { uid: Number(fields[2]), gid: Number(fields[3]) };
  }
  throw new Error('running as root, but neither a "postgres" nor a "nobody" user exists to run PostgreSQL as');
}

async function freePort(): Promise<number> {
  const server = createServer();
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as AddressInfo;
  server.close();
  await once(server, 'close');
  return port;
}

/** Keeps the tail of a child's output for error messages. */
function captureOutput(child: ChildProcess): () => string {
  let log = '';
  const append = (chunk: Buffer) => {
    log = (log + chunk.toString('utf8')).slice(-LOG_LIMIT);
  };
  child.stdout?.on('data', append);
  child.stderr?.on('data', append);
  return () => log;
}

function childEnv(): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  // PG* variables of the caller (PGDATA, PGPORT, PGHOST…) must not leak into the throwaway cluster.
  for (const [key, value] of Object.entries(process.env)) if (!key.startsWith('PG')) env[key] = value;
  return { ...env, LC_ALL: 'C', LANG: 'C' };
}

async function run(command: string, args: string[], options: { cwd: string; account: Account | undefined }) {
  const child = spawn(command, args, {
    cwd: options.cwd,
    env: childEnv(),
    stdio: ['ignore', 'pipe', 'pipe'],
    ...options.account,
  });
  const output = captureOutput(child);
  const [code, signal] = (await once(child, 'exit')) as [number | null, NodeJS.Signals | null];
  if (code !== 0) throw new Error(`${command} failed (${signal ?? `exit ${code}`}):\n${output()}`);
}

function exited(child: ChildProcess): boolean {
  return child.exitCode !== null || child.signalCode !== null;
}

async function waitForExit(child: ChildProcess, timeoutMs: number): Promise<boolean> {
  if (exited(child)) return true;
  const timeout = delay(timeoutMs, false, { ref: false });
  return Promise.race([once(child, 'exit').then(() => true), timeout]);
}

async function acceptsConnections(url: string): Promise<boolean> {
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 1000 });
  client.on('error', () => {});
  try {
    await client.connect();
    await client.query('SELECT 1');
    return true;
  } catch {
    return false;
  } finally {
    await client.end().catch(() => {});
  }
}

/** Starts a PostgreSQL server on a data directory that initdb already created; resolves once it takes queries. */
async function startServer(binDir: string, root: string, dataDir: string, account: Account | undefined) {
  const port = await freePort();
  const url = `postgres://postgres@127.0.0.1:${port}/postgres`;
  const args = ['-D', dataDir, '-h', '127.0.0.1', '-p', String(port), '-k', root];
  // Durability is pointless for a throwaway cluster; these make schema creation and commits fast.
  for (const setting of ['fsync=off', 'synchronous_commit=off', 'full_page_writes=off', 'max_connections=50']) {
    args.push('-c', setting);
  }
  const child = spawn(join(binDir, 'postgres'), args, {
    cwd: root,
    env: childEnv(),
    stdio: ['ignore', 'pipe', 'pipe'],
    ...account,
  });
  const output = captureOutput(child);
  const deadline = Date.now() + READY_TIMEOUT_MS;
  while (!(await acceptsConnections(url))) {
    if (exited(child)) throw new Error(`postgres exited before accepting connections:\n${output()}`);
    if (Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error(`postgres did not accept connections within ${READY_TIMEOUT_MS} ms:\n${output()}`);
    }
    await delay(50);
  }
  return { child, url, output };
}

export async function startPostgres(): Promise<RunningPostgres> {
  const binDir = findPostgresBinDir();
  if (!binDir) throw new Error(INSTALL_HINT);
  const account = serverAccount();
  const root = mkdtempSync(join(tmpdir(), 'embedgate-pg-'));
  const dataDir = join(root, 'data');
  let server: Awaited<ReturnType<typeof startServer>> | undefined;
  // If the test process exits without calling stop(), do not leave a server running.
  const onExit = () => {
    server?.child.kill('SIGQUIT');
  };
  try {
    if (account) chownSync(root, account.uid, account.gid);
    await run(
      join(binDir, 'initdb'),
      ['-D', dataDir, '-U', 'postgres', '--auth=trust', '--encoding=UTF8', '--no-locale', '--no-sync'],
      { cwd: root, account },
    );
    // Another process may take the free port between the probe and postgres binding it: try again a few times.
    for (let attempt = 1; ; attempt++) {
      try {
        server = await startServer(binDir, root, dataDir, account);
        break;
      } catch (error) {
        if (attempt >= 3) throw error;
      }
    }
    process.once('exit', onExit);
  } catch (error) {
    rmSync(root, { recursive: true, force: true });
    throw error;
  }

  const running = server;
  let stopping: Promise<void> | undefined;
  return {
    url: running.url,
    stop() {
      stopping ??= (async () => {
        process.removeListener('exit', onExit);
        // SIGINT is PostgreSQL's "fast" shutdown (what pg_ctl stop -m fast sends).
        if (!exited(running.child)) running.child.kill('SIGINT');
        if (!(await waitForExit(running.child, STOP_TIMEOUT_MS))) {
          running.child.kill('SIGKILL');
          await waitForExit(running.child, STOP_TIMEOUT_MS);
        }
        rmSync(root, { recursive: true, force: true });
      })();
      return stopping;
    },
  };
}
