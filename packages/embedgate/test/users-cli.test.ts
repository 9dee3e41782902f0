// `embedgate users` run as an operator runs it (bin → dist, so build first; `npm test` does) against a config file
// whose IdP store is a SQLite file in a temp dir; the embedded IdP then signs the managed users in on that store.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { BrowserSession } from './support/browser-session.js';
import { BIN, type CliResult } from './support/cli.js';
import { freePort, GATEWAY_AUDIENCE, startIdp, type RunningIdp } from './support/idp.js';
import { authorizationRequest, discover, isLoginPage, REDIRECT_URI, signIn, submitLogin, verifyAccessToken } from './support/idp-rp.js';

const ALICE_PASSWORD = 'alice-passphrase-7c1f92e0';
const BOB_PASSWORD = 'bob stdin passphrase 3d8a41';
const CAROL_PASSWORD = 'carol-hashed-passphrase-b6e07a';
const SECOND_PASSWORD = 'never-stored-passphrase-91fe3c';
const PASSWORDS = [ALICE_PASSWORD, BOB_PASSWORD, CAROL_PASSWORD, SECOND_PASSWORD];
const GENERIC_LOGIN_ERROR = 'Wrong username or password, or too many attempts. Try again later.';
const CLIENTS = [{ client_id: 'portal', public: true, redirect_uris: [REDIRECT_URI] }];

let dir: string;
let configFile: string;
let dbFile: string;
let port: number;
/** Everything any command printed, to check that no password ever appears in it. */
const outputs: string[] = [];

/** The test runner's environment without any EMBEDGATE_* variable, plus `extra`. */
function cleanEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const clean = Object.fromEntries(Object.entries(process.env).filter(([name]) => !name.startsWith('EMBEDGATE_')));
  return { ...clean, ...extra };
}

/**
 * Runs `embedgate users <args>` to completion. `password` goes in EMBEDGATE_PASSWORD; `stdin` is written to a pipe
 * that is then closed (no stdin option: an empty, closed pipe, so a command that wants a password cannot hang).
 */
function users(args: string[], options: { password?: string; stdin?: string } = {}): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    const env = cleanEnv(options.password === undefined ? {} : { EMBEDGATE_PASSWORD: options.password });
    const child = spawn(process.execPath, [BIN, 'users', ...args], { cwd: dir, env, stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => { stdout += d.toString(); });
    child.stderr.on('data', (d: Buffer) => { stderr += d.toString(); });
    child.stdin.on('error', () => {}); // EPIPE if the command exits without reading stdin
    child.stdin.end(options.stdin ?? '');
    child.on('error', reject);
    child.on('close', (code) => {
      outputs.push(stdout, stderr);
      resolve({ code, stdout, stderr });
    });
  });
}

const withConfig = (...args: string[]): string[] => [...args, '--config', configFile];

/** Signs `username` in through the IdP's login form and returns the roles in the gateway access token. */
async function rolesAfterSignIn(issuer: string, username: string, password: string): Promise<unknown> {
  const config = await discover(issuer, 'portal');
  const { tokens } = await signIn(config, new BrowserSession(issuer), { username, password }, {
    scope: 'openid', tokenParameters: { resource: GATEWAY_AUDIENCE },
  });
  const { payload } = await verifyAccessToken(config, tokens.access_token);
  assert.equal(payload.sub, username);
  return payload.roles;
}

/** Submits the login form with these credentials and returns the page the IdP answers with. */
async function failedSignIn(issuer: string, username: string, password: string): Promise<{ status: number; html: string }> {
  const config = await discover(issuer, 'portal');
  const browser = new BrowserSession(issuer);
  const pending = await authorizationRequest(config, { scope: 'openid' });
  assert.ok(isLoginPage(await browser.get(pending.url)), 'the login form is shown');
  const page = await submitLogin(browser, { username, password });
  assert.ok(!page.left, `the sign-in should have failed, but the IdP redirected to ${page.url}`);
  return page;
}

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'embedgate-users-cli-'));
  dbFile = join(dir, 'idp.db');
  port = await freePort();
  configFile = join(dir, 'idp.yaml');
  writeFileSync(configFile, [
    'idp:',
    `  issuer: http://127.0.0.1:${port}`,
    `  listen: 127.0.0.1:${port}`,
    `  resource: ${GATEWAY_AUDIENCE}`,
    `  store: sqlite:${dbFile}`,
    '',
  ].join('\n'));
});

after(() => {
  rmSync(dir, { recursive: true, force: true });
});

describe('embedgate users', () => {
  let idp: RunningIdp | undefined;

  after(async () => {
    await idp?.close(); // removes only startIdp's own (unused) temp dir; the store is in `dir`
  });

  it('lists no users on a new store, which it creates readable by its owner only', async () => {
    const result = await users(withConfig('list'));
    assert.equal(result.code, 0, result.stderr);
    assert.equal(result.stdout, '');
    assert.match(result.stderr, /no users/);
    assert.equal(statSync(dbFile).mode & 0o777, 0o600);
  });

  it('adds a user with the password from EMBEDGATE_PASSWORD', async () => {
    const result = await users(withConfig('add', 'alice', '--roles', 'viewer', '--email', 'alice@example.com', '--name', 'Alice Example'), { password: ALICE_PASSWORD });
    assert.equal(result.code, 0, result.stderr);
    assert.equal(result.stdout, 'added alice\n');
  });

  it('adds a user with the password piped on stdin (the trailing newline is not part of it)', async () => {
    const result = await users(withConfig('add', 'bob'), { stdin: `${BOB_PASSWORD}\n` });
    assert.equal(result.code, 0, result.stderr);
    assert.equal(result.stdout, 'added bob\n');
  });

  it('lists users as tab-separated lines: username, email, roles ("-" when empty), by username', async () => {
    const result = await users(withConfig('list'));
    assert.equal(result.code, 0, result.stderr);
    assert.equal(result.stdout, 'alice\talice@example.com\tviewer\nbob\t-\t-\n');
  });

  it('the IdP started on that store signs both users in, with the password each was given', async () => {
    idp = await startIdp({ store: `sqlite:${dbFile}`, clients: CLIENTS }, port);
    assert.deepEqual(await rolesAfterSignIn(idp.issuer, 'alice', ALICE_PASSWORD), ['viewer']);
    assert.deepEqual(await rolesAfterSignIn(idp.issuer, 'bob', BOB_PASSWORD), []);
  });

  it('set-roles changes the roles, and tokens issued afterwards carry them', async () => {
    assert.ok(idp !== undefined);
    const result = await users(withConfig('set-roles', 'alice', '--roles', 'analyst, admin'));
    assert.equal(result.code, 0, result.stderr);
    assert.equal(result.stdout, 'roles of alice: analyst,admin\n');
    assert.equal((await users(withConfig('list'))).stdout, 'alice\talice@example.com\tanalyst,admin\nbob\t-\t-\n');
    assert.deepEqual(await rolesAfterSignIn(idp.issuer, 'alice', ALICE_PASSWORD), ['analyst', 'admin']);

    const cleared = await users(withConfig('set-roles', 'bob', '--roles', ''));
    assert.equal(cleared.code, 0, cleared.stderr);
    assert.equal(cleared.stdout, 'roles of bob: (none)\n');
  });

  it('refuses to add an existing user (exit 1) and leaves its password alone', async () => {
    assert.ok(idp !== undefined);
    const result = await users(withConfig('add', 'alice', '--roles', 'admin'), { password: SECOND_PASSWORD });
    assert.equal(result.code, 1);
    assert.equal(result.stdout, '');
    assert.match(result.stderr, /user alice already exists/);
    assert.deepEqual(await rolesAfterSignIn(idp.issuer, 'alice', ALICE_PASSWORD), ['analyst', 'admin']);
  });

  it('remove deletes the user: signing in then fails with the same message as for a user who never existed', async () => {
    assert.ok(idp !== undefined);
    const result = await users(withConfig('remove', 'bob'));
    assert.equal(result.code, 0, result.stderr);
    assert.equal(result.stdout, 'removed bob\n');
    assert.equal((await users(withConfig('list'))).stdout, 'alice\talice@example.com\tanalyst,admin\n');

    const removed = await failedSignIn(idp.issuer, 'bob', BOB_PASSWORD);
    assert.equal(removed.status, 401);
    assert.ok(removed.html.includes(GENERIC_LOGIN_ERROR), removed.html);
    const unknown = await failedSignIn(idp.issuer, 'nobody', BOB_PASSWORD);
    assert.equal(unknown.status, 401);
    assert.ok(unknown.html.includes(GENERIC_LOGIN_ERROR), unknown.html);
  });

  it('set-roles and remove of an unknown user exit 1', async () => {
    for (const args of [['set-roles', 'ghost', '--roles', 'admin'], ['remove', 'ghost'], ['remove', 'bob']]) {
      const result = await users(withConfig(...args));
      assert.equal(result.code, 1, `${args.join(' ')}: ${result.stderr}`);
      assert.equal(result.stdout, '');
      assert.match(result.stderr, new RegExp(`no user ${args[1]}`));
    }
  });

  it('exits 2 for a bad username, a missing --config, an unknown action or a missing password', async () => {
    const cases: [string[], { password?: string }, RegExp][] = [
      [withConfig('add', 'bad user'), { password: SECOND_PASSWORD }, /a username \(letters, digits and \. _ @ -\) is required/],
      [withConfig('add', 'a/b'), { password: SECOND_PASSWORD }, /a username/],
      [withConfig('add', 'x'.repeat(129)), { password: SECOND_PASSWORD }, /a username/],
      [withConfig('remove'), {}, /a username/],
      [['list'], {}, /--config FILE is required/],
      [['add', 'dave'], { password: SECOND_PASSWORD }, /--config FILE is required/],
      [withConfig('rename', 'alice'), {}, /unknown action "rename"/],
      [withConfig(), {}, /unknown action ""/],
      [withConfig('list', '--colour'), {}, /Unknown option '--colour'/],
      [withConfig('set-roles', 'alice'), {}, /set-roles needs --roles/],
      [withConfig('add', 'dave'), {}, /a password is required/], // stdin empty and closed, no EMBEDGATE_PASSWORD
    ];
    for (const [args, options, message] of cases) {
      const result = await users(args, options);
      assert.equal(result.code, 2, `${args.join(' ')}: exit ${result.code}\n${result.stderr}`);
      assert.equal(result.stdout, '', args.join(' '));
      assert.match(result.stderr, message, args.join(' '));
      assert.match(result.stderr, /Usage:/, 'the usage follows the message');
    }
    assert.equal((await users(withConfig('list'))).stdout, 'alice\talice@example.com\tanalyst,admin\n', 'nothing was changed');
  });

  it('hash-password prints an scrypt hash (from EMBEDGATE_PASSWORD or stdin) that works as a config user\'s password_hash', async () => {
    const fromEnv = await users(['hash-password'], { password: CAROL_PASSWORD });
    assert.equal(fromEnv.code, 0, fromEnv.stderr);
    assert.match(fromEnv.stdout, /^scrypt\$[^\s]+\n$/);
    const fromStdin = await users(['hash-password'], { stdin: `${CAROL_PASSWORD}\n` });
    assert.equal(fromStdin.code, 0, fromStdin.stderr);
    assert.match(fromStdin.stdout, /^scrypt\$[^\s]+\n$/);
    assert.notEqual(fromStdin.stdout, fromEnv.stdout, 'a random salt each time');

    for (const hash of [fromEnv.stdout.trim(), fromStdin.stdout.trim()]) {
      const other = await startIdp({ clients: CLIENTS, users: [{ username: 'carol', password_hash: hash, roles: ['analyst'] }] });
      try {
        assert.deepEqual(await rolesAfterSignIn(other.issuer, 'carol', CAROL_PASSWORD), ['analyst']);
        assert.equal((await failedSignIn(other.issuer, 'carol', SECOND_PASSWORD)).status, 401, 'and only that password');
      } finally {
        await other.close();
      }
    }
  });

  it('never prints a password, and the store holds only hashes (database and WAL bytes searched)', () => {
    assert.ok(outputs.length > 0);
    for (const output of outputs) {
      for (const password of PASSWORDS) assert.ok(!output.includes(password), `a password was printed: ${output.slice(0, 200)}`);
    }
    const files = readdirSync(dir).filter((name) => name.startsWith('idp.db'));
    const bytes = Buffer.concat(files.map((name) => readFileSync(join(dir, name))));
    assert.ok(bytes.includes('scrypt$'), `the users' hashes are in the files read (${files.join(', ')})`);
    for (const password of PASSWORDS) {
      assert.ok(!bytes.includes(password), 'a clear-text password is in the SQLite files');
      assert.ok(!bytes.includes(Buffer.from(password, 'utf16le')), 'a clear-text password (UTF-16) is in the SQLite files');
    }
    for (const line of idp?.logs ?? []) {
      for (const password of PASSWORDS) assert.ok(!line.includes(password), `a password is in the IdP log: ${line.slice(0, 200)}`);
    }
  });
});
