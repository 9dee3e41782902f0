// `embedgate sessions` against a running gateway's SQLite store: list shows the live sessions (no secrets), revoke
// ends every session of one user at once, the gateway refuses their cookies from the next request on, and closes
// their open WebSockets.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { runCli } from './support/cli.js';
import { eventually, startGateway, type RunningGateway } from './support/gateway.js';
import { startHostileOp, type HostileOp } from './support/hostile-op.js';
import { freePort } from './support/idp.js';
import { startUpstream, type Upstream } from './support/upstream.js';
import { openWebSocket } from './support/ws-client.js';

const COOKIE = '__Host-embedgate';

let op: HostileOp;
let upstream: Upstream;
let gw: RunningGateway;
let dir: string;
let configFile: string;

before(async () => {
  op = await startHostileOp();
  upstream = await startUpstream();
  dir = mkdtempSync(join(tmpdir(), 'embedgate-sessions-cli-'));
  const port = await freePort();
  const config = {
    listen: `127.0.0.1:${port}`,
    public_url: `http://127.0.0.1:${port}`,
    data_dir: dir,
    issuers: [{ issuer: op.issuer, audiences: [op.audience] }],
    embed: { allowed_origins: ['http://host.example'] },
    apps: [{ name: 'sales', prefix: '/sales/', upstream: upstream.url, allow: { roles: ['analyst'] } }],
  };
  configFile = join(dir, 'embedgate.json');
  writeFileSync(configFile, JSON.stringify(config));
  gw = await startGateway(config);
  await eventually(async () => (await gw.fetch('/readyz')).status === 200);
});

after(async () => {
  await gw?.close();
  await upstream?.close();
  await op?.close();
  rmSync(dir, { recursive: true, force: true });
});

async function newSession(sub: string): Promise<string> {
  const response = await gw.fetch('/_embedgate/session', {
    method: 'POST', token: await op.sign(op.claims({ sub })),
    headers: { origin: gw.url, 'content-type': 'application/json' }, body: '{"path":"/sales/"}',
  });
  assert.equal(response.status, 200);
  const cookie = response.headers.getSetCookie().find((line) => line.startsWith(`${COOKIE}=`)) ?? '';
  return cookie.slice(COOKIE.length + 1, cookie.indexOf(';'));
}

const statusWith = async (cookie: string): Promise<number> => (await gw.fetch('/sales/', { headers: { cookie: `${COOKIE}=${cookie}` } })).status;

describe('embedgate sessions', () => {
  it('lists the live sessions, all or one user\'s, and revoke ends all of one user\'s sessions', async () => {
    const ana = [await newSession('ana'), await newSession('ana')];
    const bo = await newSession('bo');
    const all = await runCli(['sessions', 'list', '--config', configFile]);
    assert.equal(all.code, 0, all.stderr);
    const lines = all.stdout.trim().split('\n').map((line) => line.split('\t'));
    assert.deepEqual(lines.map(([kind, sub, issuer, roles]) => [kind, sub, issuer, roles]), [
      ['embed', 'ana', op.issuer, 'analyst'], ['embed', 'ana', op.issuer, 'analyst'], ['embed', 'bo', op.issuer, 'analyst'],
    ]);
    for (const cookie of [...ana, bo]) assert.ok(!all.stdout.includes(cookie), 'no cookie value is printed');
    const one = await runCli(['sessions', 'list', '--user', 'bo', '--config', configFile]);
    assert.equal(one.stdout.trim().split('\n').length, 1);

    const revoked = await runCli(['sessions', 'revoke', '--user', 'ana', '--config', configFile]);
    assert.equal(revoked.code, 0, revoked.stderr);
    assert.equal(revoked.stdout.trim(), 'ended 2 session(s) of ana');
    for (const cookie of ana) assert.equal(await statusWith(cookie), 401, 'the running gateway refuses a revoked session');
    assert.equal(await statusWith(bo), 200, 'another user keeps theirs');
  });

  it('revoke closes the user\'s open WebSockets on the running gateway (1008), not other users\'', async () => {
    const cy = await newSession('cy');
    const dee = await newSession('dee');
    const open = async (cookie: string) => {
      const opened = await openWebSocket(`${gw.url.replace('http', 'ws')}/sales/ws`, { cookie: `${COOKIE}=${cookie}`, origin: gw.url });
      assert.ok('ws' in opened);
      return opened.ws;
    };
    const [cySocket, deeSocket] = [await open(cy), await open(dee)];
    const closed = new Promise<number>((resolve) => cySocket.once('close', (code) => resolve(code)));
    const revoked = await runCli(['sessions', 'revoke', '--user', 'cy', '--config', configFile]);
    assert.equal(revoked.code, 0, revoked.stderr);
    assert.equal(await closed, 1008);
    assert.equal(deeSocket.readyState, deeSocket.OPEN, 'another user\'s socket stays open');
    deeSocket.close();
  });

  it('bad usage exits 2 and names the problem; a memory: store cannot be reached', async () => {
    const noUser = await runCli(['sessions', 'revoke', '--config', configFile]);
    assert.equal(noUser.code, 2);
    assert.match(noUser.stderr, /revoke needs --user SUB/);
    const noAction = await runCli(['sessions', '--config', configFile]);
    assert.equal(noAction.code, 2);
    const memoryConfig = join(dir, 'memory.json');
    writeFileSync(memoryConfig, JSON.stringify({
      public_url: 'http://127.0.0.1:4180', issuers: [{ issuer: op.issuer, audiences: [op.audience] }], sessions: { store: 'memory:' },
      apps: [{ name: 'sales', prefix: '/sales/', upstream: upstream.url, allow: { roles: ['analyst'] } }],
    }));
    const memory = await runCli(['sessions', 'list', '--config', memoryConfig]);
    assert.equal(memory.code, 2);
    assert.match(memory.stderr, /memory:/);
  });
});
