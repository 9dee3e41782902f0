// The architecture's contract config, run unchanged with the real CLI, protects a Dash-protocol app at /sales/.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { spawnCli, REPO_ROOT } from './support/cli.js';
import { eventually } from './support/gateway.js';
import { startTestOp, type TestOp } from './support/test-op.js';
import { startUpstream, type Upstream } from './support/upstream.js';

const GATEWAY = 'http://127.0.0.1:4180';

describe('contract config (examples/contract.yaml) with `embedgate serve`', () => {
  let op: TestOp;
  let upstream: Upstream;
  let gateway: ReturnType<typeof spawnCli>;
  let workDir: string;
  let analyst: string;
  let admin: string;

  before(async () => {
    op = await startTestOp({
      port: 4000,
      resource: GATEWAY,
      clients: [
        { client_id: 'analyst-client', client_secret: 'analyst-secret', claims: { roles: ['analyst'] } },
        { client_id: 'admin-client', client_secret: 'admin-secret', claims: { roles: ['admin'] } },
      ],
    });
    upstream = await startUpstream(8050);
    workDir = mkdtempSync(join(tmpdir(), 'embedgate-contract-'));
    gateway = spawnCli(['serve', '--config', join(REPO_ROOT, 'examples/contract.yaml')], { cwd: workDir });
    await eventually(async () => (await fetch(`${GATEWAY}/readyz`).catch(() => undefined))?.status === 200, 15000);
    analyst = await op.token('analyst-client');
    admin = await op.token('admin-client');
  });

  after(async () => {
    assert.equal(await gateway.stop(), 0, 'the gateway exits cleanly on SIGTERM');
    await upstream.close();
    await op.close();
    rmSync(workDir, { recursive: true, force: true });
  });

  const callback = (output: string): RequestInit => ({
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ output, outputs: { id: output.split('.')[0], property: output.split('.')[1] }, inputs: [], changedPropIds: [] }),
  });
  const call = (path: string, token?: string, init: RequestInit = {}): Promise<Response> => fetch(`${GATEWAY}${path}`, {
    ...init,
    headers: { ...(init.headers as Record<string, string>), ...(token === undefined ? {} : { authorization: `Bearer ${token}` }) },
  });

  it('answers 401 with no token on the page, the layout and the callback endpoint', async () => {
    for (const [path, init] of [['/sales/', {}], ['/sales/_dash-layout', {}], ['/sales/_dash-update-component', callback('sales-chart.figure')]] as const) {
      const response = await call(path, undefined, init);
      assert.equal(response.status, 401, path);
      assert.match(response.headers.get('www-authenticate') ?? '', /^Bearer realm="embedgate"/);
      assert.equal((await response.json() as { error: string }).error, 'missing_token');
    }
    assert.equal(upstream.requests.length, 0, 'nothing reached the app');
  });

  it('lets an analyst use the app but not the payroll callback', async () => {
    assert.equal((await call('/sales/', analyst)).status, 200);
    assert.equal((await call('/sales/_dash-layout', analyst)).status, 200);
    assert.equal((await call('/sales/_dash-update-component', analyst, callback('sales-chart.figure'))).status, 200);
    const payroll = await call('/sales/_dash-update-component', analyst, callback('payroll.children'));
    assert.equal(payroll.status, 403);
    assert.equal((await payroll.json() as { error: string }).error, 'callback_forbidden');
  });

  it('lets an admin run every callback, payroll included', async () => {
    assert.equal((await call('/sales/', admin)).status, 200);
    upstream.clear();
    const payroll = await call('/sales/_dash-update-component', admin, callback('payroll.children'));
    assert.equal(payroll.status, 200);
    assert.equal(upstream.last()?.headers['x-forwarded-groups'], 'admin');
  });

  it('serves the public assets without a token', async () => {
    assert.equal((await call('/sales/assets/style.css')).status, 200);
  });
});
