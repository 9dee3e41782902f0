// `embedgate token` run as a user runs it (bin → dist, so build first; `npm test` does) against a real oidc-provider.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { createRemoteJWKSet, jwtVerify } from 'jose';
import { runCli, type CliResult } from './support/cli.js';
import { startTestOp, type TestOp } from './support/test-op.js';

const RESOURCE = 'http://127.0.0.1:4180';
const CLIENT_ID = 'reporting-job';
const SECRET = 'cli-test-secret-5f2b9c1e7d';
const JWT_LINE = /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\n$/;

let op: TestOp;

before(async () => {
  op = await startTestOp({ resource: RESOURCE, clients: [{ client_id: CLIENT_ID, client_secret: SECRET, claims: { roles: ['analyst'] } }] });
});

after(async () => {
  await op.close();
});

/** The test runner's environment without any EMBEDGATE_* variable, plus `extra`. */
function env(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const clean = Object.fromEntries(Object.entries(process.env).filter(([name]) => !name.startsWith('EMBEDGATE_')));
  return { ...clean, ...extra };
}

function token(args: string[], extra: Record<string, string> = {}): Promise<CliResult> {
  return runCli(['token', ...args], { env: env(extra) });
}

const clientCredentials = (): string[] => ['--issuer', op.issuer, '--client-credentials', '--client-id', CLIENT_ID];

async function assertIssuedByOp(jwt: string): Promise<void> {
  const { payload } = await jwtVerify(jwt, createRemoteJWKSet(new URL(`${op.issuer}/jwks`)), { issuer: op.issuer, audience: RESOURCE });
  assert.equal(payload.client_id, CLIENT_ID);
  assert.deepEqual(payload.roles, ['analyst']);
}

describe('embedgate token --client-credentials', () => {
  it('prints exactly the access token, a JWT for the resource, and nothing else on stdout', async () => {
    const result = await token([...clientCredentials(), '--client-secret', SECRET, '--scope', 'read write', '--resource', RESOURCE]);
    assert.equal(result.code, 0, result.stderr);
    assert.match(result.stdout, JWT_LINE);
    await assertIssuedByOp(result.stdout.trim());
    assert.match(result.stderr, /--client-secret is visible to other local users in `ps`/);
    assert.ok(!result.stderr.includes(SECRET), 'the secret is never printed');
  });

  it('prints the whole token response as one JSON line with --json', async () => {
    const result = await token([...clientCredentials(), '--scope', 'read', '--resource', RESOURCE, '--json'], { EMBEDGATE_CLIENT_SECRET: SECRET });
    assert.equal(result.code, 0, result.stderr);
    assert.match(result.stdout, /^\{.*\}\n$/);
    const response = JSON.parse(result.stdout) as Record<string, unknown>;
    assert.equal(String(response.token_type).toLowerCase(), 'bearer');
    assert.equal(response.scope, 'read');
    assert.equal(typeof response.expires_in, 'number');
    assert.match(`${String(response.access_token)}\n`, JWT_LINE);
  });

  it('takes the issuer, client id and secret from EMBEDGATE_* variables, printing no warning', async () => {
    const result = await token(['--client-credentials', '--resource', RESOURCE], {
      EMBEDGATE_ISSUER: op.issuer, EMBEDGATE_CLIENT_ID: CLIENT_ID, EMBEDGATE_CLIENT_SECRET: SECRET,
    });
    assert.equal(result.code, 0, result.stderr);
    assert.match(result.stdout, JWT_LINE);
    await assertIssuedByOp(result.stdout.trim());
    assert.equal(result.stderr, '');
  });

  it('exits 1 with invalid_client on stderr, and never the secret, when the secret is wrong', async () => {
    const wrong = 'wrong-secret-a81c0f';
    const result = await token([...clientCredentials(), '--client-secret', wrong, '--resource', RESOURCE]);
    assert.equal(result.code, 1);
    assert.equal(result.stdout, '');
    assert.match(result.stderr, /invalid_client/);
    assert.ok(!result.stderr.includes(wrong), result.stderr);
  });

  it('exits 1 with the OAuth error when the provider refuses the resource', async () => {
    const result = await token([...clientCredentials(), '--resource', 'https://not-registered.example'], { EMBEDGATE_CLIENT_SECRET: SECRET });
    assert.equal(result.code, 1);
    assert.equal(result.stdout, '');
    assert.match(result.stderr, /invalid_target/);
  });

  it('exits 1 with a clear message when the issuer cannot be reached', async () => {
    const down = await startTestOp({ resource: RESOURCE, clients: [] });
    await down.close();
    const result = await token(['--issuer', down.issuer, '--client-credentials', '--client-id', CLIENT_ID], { EMBEDGATE_CLIENT_SECRET: SECRET });
    assert.equal(result.code, 1);
    assert.equal(result.stdout, '');
    assert.match(result.stderr, new RegExp(`discovery of ${down.issuer}/ failed: .*ECONNREFUSED`));
  });
});

describe('embedgate token usage', () => {
  it('exits 2 when --client-id is missing', async () => {
    const result = await token(['--issuer', op.issuer, '--client-credentials'], { EMBEDGATE_CLIENT_SECRET: SECRET });
    assert.equal(result.code, 2);
    assert.equal(result.stdout, '');
    assert.match(result.stderr, /--client-id ID \(or EMBEDGATE_CLIENT_ID\) is required/);
  });

  it('refuses a plain-http issuer that is not on this machine, before any request', async () => {
    const issuers = ['http://idp.example.com', 'http://192.168.1.10:4000', 'http://127.0.0.1.example.com'];
    const results = await Promise.all(issuers.map((issuer) => token(['--issuer', issuer, '--client-credentials', '--client-id', CLIENT_ID], { EMBEDGATE_CLIENT_SECRET: SECRET })));
    results.forEach((result, i) => {
      assert.equal(result.code, 2, issuers[i]);
      assert.equal(result.stdout, '');
      assert.match(result.stderr, /refusing the plain-http issuer .*use https/i, issuers[i]);
    });
  });

  it('exits 2 for every other usage mistake', async () => {
    const cases: Array<[string[], RegExp]> = [
      [['--issuer', 'https://idp.example.com', '--client-id', CLIENT_ID], /choose a flow/],
      [['--issuer', 'https://idp.example.com', '--client-id', CLIENT_ID, '--client-credentials', '--device'], /choose one of/],
      [['--issuer', 'https://idp.example.com', '--client-id', CLIENT_ID, '--client-credentials'], /needs the client secret/],
      [['--client-id', CLIENT_ID, '--device'], /--issuer URL \(or EMBEDGATE_ISSUER\) is required/],
      [['--issuer', 'ftp://idp.example.com', '--client-id', CLIENT_ID, '--device'], /must be an https URL/],
      [['--issuer', 'https://idp.example.com', '--client-id', CLIENT_ID, '--device', '--auth-method', 'jwt'], /--auth-method must be basic or post/],
      [['--issuer', 'https://idp.example.com', '--client-id', CLIENT_ID, '--device', '--colour'], /Unknown option '--colour'/],
    ];
    const results = await Promise.all(cases.map(([args]) => token(args)));
    results.forEach((result, i) => {
      const [args, message] = cases[i] as [string[], RegExp];
      assert.equal(result.code, 2, args.join(' '));
      assert.equal(result.stdout, '');
      assert.match(result.stderr, message, args.join(' '));
    });
  });

  it('prints its help on stdout with --help, and is listed in the top-level help', async () => {
    const help = await token(['--help']);
    assert.equal(help.code, 0);
    assert.match(help.stdout, /^Usage:\n {2}embedgate token --issuer URL --client-credentials/);
    assert.match(help.stdout, /EMBEDGATE_CLIENT_SECRET/);
    const top = await runCli(['--help'], { env: env() });
    assert.match(top.stdout, /\n {2}token --issuer URL/);
  });

  it('exits 1 with a clear message when the provider does not offer the device flow', async () => {
    const result = await token(['--issuer', op.issuer, '--device', '--client-id', 'cli']);
    assert.equal(result.code, 1);
    assert.equal(result.stdout, '');
    assert.match(result.stderr, /the provider does not offer the device flow/);
  });
});
