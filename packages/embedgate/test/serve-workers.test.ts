// `embedgate serve --workers 2`, the real CLI: two processes answer on one port, a session made through one works
// through the other (the shared SQLite store), a worker that crashes is replaced, SIGTERM stops them all cleanly,
// and a store the workers cannot share (memory:) or a bad --workers value is a usage error (exit 2).
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { get } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { runCli, spawnCli } from './support/cli.js';
import { eventually } from './support/gateway.js';
import { startHostileOp, type HostileOp } from './support/hostile-op.js';
import { freePort } from './support/idp.js';
import { startUpstream, type Upstream } from './support/upstream.js';

const COOKIE = '__Host-embedgate';

let op: HostileOp;
let upstream: Upstream;
let dir: string;
let gatewayUrl: string;

function writeConfig(name: string, extra: Record<string, unknown> = {}): string {
  const file = join(dir, name);
  writeFileSync(file, JSON.stringify({
    listen: new URL(gatewayUrl).host,
    public_url: gatewayUrl,
    data_dir: join(dir, 'data'),
    log_level: 'info',
    issuers: [{ issuer: op.issuer, audiences: [op.audience] }],
    apps: [{ name: 'sales', prefix: '/sales/', upstream: upstream.url, allow: { roles: ['analyst'] } }],
    ...extra,
  }));
  return file;
}

before(async () => {
  op = await startHostileOp();
  upstream = await startUpstream();
  dir = mkdtempSync(join(tmpdir(), 'embedgate-workers-'));
  gatewayUrl = `http://127.0.0.1:${await freePort()}`;
});

after(async () => {
  await upstream?.close();
  await op?.close();
  rmSync(dir, { recursive: true, force: true });
});

/** GET over a new connection each time: the cluster hands out connections, not requests. */
function getOnNewConnection(url: string, cookie: string): Promise<number> {
  return new Promise((resolve) => {
    get(url, { agent: false, headers: { cookie } }, (res) => {
      res.resume();
      resolve(res.statusCode ?? 0);
    }).on('error', () => resolve(0));
  });
}

/** The pids that wrote access-log lines (pino puts the pid on every line). */
function servingPids(output: string): Set<number> {
  const pids = new Set<number>();
  for (const line of output.split('\n')) {
    if (!line.startsWith('{')) continue;
    const entry = JSON.parse(line) as { pid?: number; path?: string };
    if (entry.path === '/sales/' && typeof entry.pid === 'number') pids.add(entry.pid);
  }
  return pids;
}

describe('embedgate serve --workers', () => {
  it('two workers serve one port and share sessions; a crashed worker is replaced; SIGTERM stops all (exit 0)', async () => {
    const gateway = spawnCli(['serve', '--config', writeConfig('workers.json'), '--workers', '2']);
    try {
      await eventually(() => gateway.output().includes('2 workers serving'), 20_000);
      const token = await op.sign(op.claims({ sub: 'ana' }));
      await eventually(async () => (await fetch(`${gatewayUrl}/readyz`)).status === 200, 10_000);
      const made = await fetch(`${gatewayUrl}/_embedgate/session`, {
        method: 'POST', headers: { authorization: `Bearer ${token}`, origin: gatewayUrl, 'content-type': 'application/json' }, body: '{"path":"/sales/"}',
      });
      assert.equal(made.status, 200);
      const cookie = (made.headers.getSetCookie()[0] ?? '').split(';')[0] as string;
      assert.ok(cookie.startsWith(`${COOKIE}=`));
      const statuses = await Promise.all(Array.from({ length: 40 }, () => getOnNewConnection(`${gatewayUrl}/sales/`, cookie)));
      assert.deepEqual([...new Set(statuses)], [200], 'every worker knows the session');
      await eventually(() => servingPids(gateway.output()).size === 2, 5000);

      const [victim] = [...servingPids(gateway.output())];
      process.kill(victim as number, 'SIGKILL');
      await eventually(() => gateway.output().includes(`worker ${victim} stopped`), 5000);
      // The replacement serves too: a third pid answers, and every request is served again.
      await eventually(async () => {
        const answers = await Promise.all(Array.from({ length: 20 }, () => getOnNewConnection(`${gatewayUrl}/sales/`, cookie)));
        return answers.every((status) => status === 200) && servingPids(gateway.output()).size === 3;
      }, 15_000, 200);
    } finally {
      assert.equal(await gateway.stop(), 0, gateway.output());
    }
    await assert.rejects(fetch(`${gatewayUrl}/healthz`), 'nothing listens any more');
  });

  it('a memory: store cannot be shared by workers, and --workers must be a number from 1 to 64 or auto: exit 2', async () => {
    const memory = await runCli(['serve', '--config', writeConfig('memory.json', { sessions: { store: 'memory:' } }), '--workers', '2']);
    assert.equal(memory.code, 2);
    assert.match(memory.stderr, /sessions\.store/);
    for (const value of ['0', '65', 'two', '1.5']) {
      const bad = await runCli(['serve', '--config', writeConfig('bad.json'), '--workers', value]);
      assert.equal(bad.code, 2, value);
      assert.match(bad.stderr, /--workers must be/);
    }
  });
});
