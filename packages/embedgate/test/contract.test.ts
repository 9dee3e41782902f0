// The architecture's contract files, run unchanged with the real CLI: `embedgate idp` (examples/idp.yaml) issues
// the tokens, `embedgate serve` (examples/contract.yaml) protects a Dash-protocol app at /sales/, and
// `embedgate token` fetches tokens the way a script or a terminal user would.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { decodeJwt } from 'jose';
import { BrowserSession } from './support/browser-session.js';
import { runCli, spawnCli, REPO_ROOT } from './support/cli.js';
import { eventually } from './support/gateway.js';
import { startUpstream, type Upstream } from './support/upstream.js';

const IDP = 'http://127.0.0.1:4000';
const GATEWAY = 'http://127.0.0.1:4180';
const env = { ...process.env, REPORTING_SECRET: 'reporting-secret-for-the-contract-test', ALICE_PASSWORD: 'alice-contract-password' };

describe('contract configs with `embedgate idp`, `embedgate serve` and `embedgate token`', () => {
  let upstream: Upstream;
  let idp: ReturnType<typeof spawnCli>;
  let gateway: ReturnType<typeof spawnCli>;
  let workDir: string;
  let analyst: string;
  let admin: string;

  /** alice signs a terminal in with the device flow: the CLI prints the address, she approves it in a browser. */
  async function deviceToken(): Promise<string> {
    const cli = spawnCli(['token', '--issuer', IDP, '--device', '--client-id', 'cli'], { env });
    let stdout = '';
    cli.child.stdout?.on('data', (chunk: Buffer) => { stdout += chunk.toString(); });
    await eventually(() => /http:\/\/\S+\/device\S*/.test(cli.output()), 10000);
    const address = /(http:\/\/\S+\/device\S*)/.exec(cli.output())?.[1] as string;
    const browser = new BrowserSession(IDP);
    let page = await browser.get(address);
    // The verification address carries the code; oidc-provider posts it on (a self-submitting form).
    if (!page.html.includes('name="confirm"')) page = await browser.submit();
    assert.match(page.html, /Confirm the device/);
    page = await browser.submit({}, { button: /Yes/ });
    page = await browser.submit({ username: 'alice', password: env.ALICE_PASSWORD });
    assert.match(page.html, /signed in/i, 'the device success page');
    assert.equal(await cli.exited, 0, cli.output());
    return stdout.trim();
  }

  before(async () => {
    upstream = await startUpstream(8050);
    workDir = mkdtempSync(join(tmpdir(), 'embedgate-contract-'));
    idp = spawnCli(['idp', '--config', join(REPO_ROOT, 'examples/idp.yaml')], { cwd: workDir, env });
    gateway = spawnCli(['serve', '--config', join(REPO_ROOT, 'examples/contract.yaml')], { cwd: workDir, env });
    await eventually(async () => (await fetch(`${GATEWAY}/readyz`).catch(() => undefined))?.status === 200, 20000);
    const machine = await runCli(['token', '--issuer', IDP, '--client-credentials', '--client-id', 'reporting-job'], {
      env: { ...env, EMBEDGATE_CLIENT_SECRET: env.REPORTING_SECRET },
    });
    assert.equal(machine.code, 0, machine.stderr);
    analyst = machine.stdout.trim();
    admin = await deviceToken();
  });

  after(async () => {
    assert.equal(await gateway.stop(), 0, 'the gateway exits cleanly on SIGTERM');
    assert.equal(await idp.stop(), 0, 'the IdP exits cleanly on SIGTERM');
    await upstream.close();
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

  it('the machine client\'s tokens carry its configured roles, the device-flow user\'s carry hers', () => {
    assert.deepEqual(decodeJwt(analyst).roles, ['analyst']);
    assert.equal(decodeJwt(analyst).aud, GATEWAY);
    assert.deepEqual(decodeJwt(admin).roles, ['admin']);
    assert.equal(decodeJwt(admin).sub, 'alice');
  });

  it('answers 401 with no token on the page, the layout and the callback endpoint', async () => {
    upstream.clear();
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
    assert.equal(upstream.last()?.headers['x-forwarded-user'], 'alice');
    assert.equal(upstream.last()?.headers['x-forwarded-groups'], 'admin');
  });

  it('serves the public assets without a token', async () => {
    assert.equal((await call('/sales/assets/style.css')).status, 200);
  });
});
