// The config file and the CLI around it: check-config/serve/--help exit codes, errors that name the field, ${ENV} expansion.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type AddressInfo, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { promisify } from 'node:util';
import { ConfigError, parseConfig, parseConfigText } from '../src/config/load.js';
import { REPO_ROOT, runCli, type CliResult } from './support/cli.js';

const BASE = `listen: 127.0.0.1:4180
public_url: http://127.0.0.1:4180
issuers:
  - issuer: http://127.0.0.1:4000
    audiences: [http://127.0.0.1:4180]
    algorithms: [RS256]
apps:
  - name: sales
    prefix: /sales/
    upstream: http://127.0.0.1:8050
    allow: { roles: [analyst, admin] }
    public: [/sales/assets/**]
`;

/** BASE with `from` replaced; fails loudly if BASE no longer contains `from`. */
function edit(from: string, to: string): string {
  assert.ok(BASE.includes(from), `BASE contains ${from}`);
  return BASE.replace(from, to);
}

const UNSET = 'EMBEDGATE_TEST_UNSET_UPSTREAM';
const envWithout = (name: string): NodeJS.ProcessEnv => Object.fromEntries(Object.entries(process.env).filter(([key]) => key !== name));

function assertNoStack(result: CliResult): void {
  assert.doesNotMatch(result.stderr, /\n\s+at /, 'no stack trace');
}

let dir: string;
/** Writes `text` to a fresh file in the temp dir and returns its path. */
function writeConfig(name: string, text: string): string {
  const file = join(dir, `${name}.yaml`);
  writeFileSync(file, text);
  return file;
}

before(() => {
  dir = mkdtempSync(join(tmpdir(), 'embedgate-config-'));
});

after(() => {
  rmSync(dir, { recursive: true, force: true });
});

describe('embedgate check-config', () => {
  it('accepts examples/contract.yaml with exit 0 and a summary', async () => {
    const result = await runCli(['check-config', '--config', 'examples/contract.yaml']);
    assert.equal(result.code, 0, result.stderr);
    assert.match(result.stdout, /^examples\/contract\.yaml: valid \(1 issuer\(s\), 1 app\(s\): sales at \/sales\/\)$/m);
    assert.equal(result.stderr, '');
  });

  // [file name, config text, what stderr must say]
  const broken: Array<[string, string, RegExp]> = [
    ['missing-issuer', edit('  - issuer: http://127.0.0.1:4000\n    audiences', '  - audiences'), /issuers\[0\]\.issuer: is required/],
    ['bad-url', edit('upstream: http://127.0.0.1:8050', 'upstream: nope'), /apps\[0\]\.upstream: must be an http\(s\) URL/],
    ['unknown-key', edit('    prefix: /sales/\n', '    prefix: /sales/\n    colour: blue\n'), /apps\[0\]: unknown key "colour"/],
    ['hs256', edit('algorithms: [RS256]', 'algorithms: [RS256, HS256]'), /issuers\[0\]\.algorithms\[1\]: must be one of RS256.*HMAC/],
    ['none-alg', edit('algorithms: [RS256]', 'algorithms: [none]'), /issuers\[0\]\.algorithms\[0\]: must be one of/],
    ['empty-allow', edit('allow: { roles: [analyst, admin] }', 'allow: {}'), /apps\[0\]\.allow: a rule needs at least one criterion/],
    ['empty-roles', edit('allow: { roles: [analyst, admin] }', 'allow: { roles: [] }'), /apps\[0\]\.allow\.roles: /],
    ['prefix-no-slash', edit('prefix: /sales/', 'prefix: /sales'), /apps\[0\]\.prefix: must start and end with "\/"/],
    ['duplicate-prefix', `${BASE}  - name: other\n    prefix: /sales/\n    upstream: http://127.0.0.1:8051\n    allow: { roles: [admin] }\n`,
      /apps\[1\]\.prefix: duplicates the prefix of apps\[0\]/],
    ['public-outside-prefix', edit('public: [/sales/assets/**]', 'public: [/admin/**]'), /apps\[0\]\.public\[0\]: must lie under the app's prefix \/sales\//],
    ['unset-env', edit('upstream: http://127.0.0.1:8050', `upstream: \${${UNSET}}`), new RegExp(`apps\\[0\\]\\.upstream: environment variable ${UNSET} is not set`)],
    ['trust-everyone', `${BASE}trusted_proxies: [0.0.0.0/0]\n`, /trusted_proxies\[0\]: trusting every address/],
    ['not-a-mapping', '- just\n- a list\n', /the file must hold a YAML mapping/],
    ['bridge-prop-without-component', `${BASE}    embed: { bridge: { host_may_set: [value] } }\n`, /apps\[0\]\.embed\.bridge\.host_may_set\[0\]: must be component_id\.prop/],
    ['bridge-prop-bad-name', `${BASE}    embed: { bridge: { publish: [chart.figure, "chart.on-click"] } }\n`, /apps\[0\]\.embed\.bridge\.publish\[1\]: must be component_id\.prop/],
    ['bridge-unknown-key', `${BASE}    embed: { bridge: { host_may_write: [region.value] } }\n`, /apps\[0\]\.embed\.bridge: unknown key "host_may_write"/],
  ];
  for (const [name, text, expected] of broken) {
    it(`refuses ${name} with exit 2, naming the field`, async () => {
      const file = writeConfig(name, text);
      const result = await runCli(['check-config', '--config', file], { env: envWithout(UNSET) });
      assert.equal(result.code, 2, result.stdout);
      assert.match(result.stderr, new RegExp(`invalid configuration in ${file.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}`));
      assert.match(result.stderr, expected);
      assertNoStack(result);
    });
  }

  it('refuses bad YAML (an unclosed bracket) naming the file and the line', async () => {
    // The bracket opens on line 6; the parser reports where it expected the "]" (line 6 or the next one).
    const file = writeConfig('bad-yaml', edit('algorithms: [RS256]', 'algorithms: [RS256'));
    const result = await runCli(['check-config', '--config', file]);
    assert.equal(result.code, 2);
    assert.ok(result.stderr.includes(`${file}:`), result.stderr);
    assert.match(result.stderr, /bad-yaml\.yaml:[67]:\d+: invalid YAML/);
    assertNoStack(result);
  });

  it('refuses a duplicated key in YAML', async () => {
    const file = writeConfig('duplicate-key', `${BASE}listen: 0.0.0.0:80\n`);
    const result = await runCli(['check-config', '--config', file]);
    assert.equal(result.code, 2);
    assert.match(result.stderr, /duplicate-key\.yaml:\d+:\d+: invalid YAML/);
  });

  it('refuses a missing file with exit 2, naming it', async () => {
    const file = join(dir, 'missing.yaml');
    const result = await runCli(['check-config', '--config', file]);
    assert.equal(result.code, 2);
    assert.ok(result.stderr.includes(`${file}: cannot read the file (ENOENT)`), result.stderr);
    assertNoStack(result);
  });

  it('reports every problem at once', async () => {
    const file = writeConfig('two-problems', edit('algorithms: [RS256]', 'algorithms: [HS256]').replace('upstream: http://127.0.0.1:8050', 'upstream: nope'));
    const result = await runCli(['check-config', '--config', file]);
    assert.equal(result.code, 2);
    assert.match(result.stderr, /issuers\[0\]\.algorithms\[0\]/);
    assert.match(result.stderr, /apps\[0\]\.upstream/);
  });

  it('expands ${VAR} and ${VAR:-default} from the environment', async () => {
    const fromEnv = writeConfig('env-upstream', edit('upstream: http://127.0.0.1:8050', 'upstream: ${EMBEDGATE_TEST_UPSTREAM}'));
    const set = await runCli(['check-config', '--config', fromEnv], { env: { ...process.env, EMBEDGATE_TEST_UPSTREAM: 'http://127.0.0.1:9050' } });
    assert.equal(set.code, 0, set.stderr);

    const withDefault = writeConfig('env-default', edit('upstream: http://127.0.0.1:8050', `upstream: \${${UNSET}:-http://127.0.0.1:8050}`));
    const unset = await runCli(['check-config', '--config', withDefault], { env: envWithout(UNSET) });
    assert.equal(unset.code, 0, unset.stderr);
  });
});

describe('${ENV} expansion (parseConfigText / parseConfig)', () => {
  const expand = (text: string, env: NodeJS.ProcessEnv): unknown => parseConfigText(text, env, 'test.yaml');

  it('takes the upstream from the environment', () => {
    const config = parseConfig(expand(edit('upstream: http://127.0.0.1:8050', 'upstream: ${UPSTREAM}'), { UPSTREAM: 'https://dash.internal:8443' }));
    assert.equal(config.apps[0]?.upstream, 'https://dash.internal:8443');
  });

  const cases: Array<[string, string, NodeJS.ProcessEnv, unknown]> = [
    ['${VAR}', 'v: ${VAR}', { VAR: 'x' }, { v: 'x' }],
    ['${VAR} inside text', 'v: a-${VAR}-b', { VAR: 'x' }, { v: 'a-x-b' }],
    ['${VAR:-default} when unset', 'v: ${VAR:-http://127.0.0.1:1}', {}, { v: 'http://127.0.0.1:1' }],
    ['${VAR:-default} when empty', 'v: ${VAR:-fallback}', { VAR: '' }, { v: 'fallback' }],
    ['${VAR:-default} when set', 'v: ${VAR:-fallback}', { VAR: 'x' }, { v: 'x' }],
    ['${VAR:-} (empty default)', 'v: "${VAR:-}"', {}, { v: '' }],
    ['$$ as a literal $', 'v: pa$$word', {}, { v: 'pa$word' }],
    ['$${VAR} as the literal text ${VAR}', 'v: $${VAR}', { VAR: 'x' }, { v: '${VAR}' }],
    ['a lone $ left alone', 'v: a$b', {}, { v: 'a$b' }],
    ['values in nested lists and maps', 'a: [{ b: ["${VAR}"] }]', { VAR: 'x' }, { a: [{ b: ['x'] }] }],
    ['an env value is not expanded again', 'v: ${VAR}', { VAR: '${OTHER}', OTHER: 'no' }, { v: '${OTHER}' }],
    ['an env value is not parsed as YAML', 'roles: ["${VAR}"]', { VAR: 'admin, analyst]\nx: [1' }, { roles: ['admin, analyst]\nx: [1'] }],
    ['keys and non-strings untouched', '${KEY}: 5\nn: true', { KEY: 'k' }, { '${KEY}': 5, n: true }],
  ];
  for (const [name, text, env, expected] of cases) {
    it(`expands ${name}`, () => {
      assert.deepEqual(expand(text, env), expected);
    });
  }

  it('names the field and the variable when a reference is unset', () => {
    assert.throws(() => expand('issuers:\n  - audiences: [a, "${AUDIENCE}"]\n', {}), (error: unknown) => {
      assert.ok(error instanceof ConfigError);
      assert.deepEqual(error.problems, ['issuers[0].audiences[1]: environment variable AUDIENCE is not set']);
      return true;
    });
  });

  it('treats an empty variable without a default as unset', () => {
    assert.throws(() => expand('public_url: ${URL}', { URL: '' }), /public_url: environment variable URL is not set/);
  });
});

describe('embedgate serve and usage', () => {
  it('serve refuses a broken config with exit 2, naming the field', async () => {
    const file = writeConfig('serve-broken', edit('upstream: http://127.0.0.1:8050', 'upstream: nope'));
    const result = await runCli(['serve', '--config', file], { cwd: dir });
    assert.equal(result.code, 2);
    assert.match(result.stderr, /apps\[0\]\.upstream: must be an http\(s\) URL/);
    assertNoStack(result);
  });

  it('serve without --config exits 2 with usage', async () => {
    const result = await runCli(['serve'], { cwd: dir });
    assert.equal(result.code, 2);
    assert.match(result.stderr, /--config FILE is required/);
    assert.match(result.stderr, /Usage: embedgate serve --config FILE/);
  });

  const help: Array<[string[], RegExp]> = [
    [['--help'], /Usage: embedgate <command>[\s\S]*serve --config FILE[\s\S]*check-config --config FILE/],
    [['-h'], /Usage: embedgate <command>/],
    [['serve', '--help'], /Usage: embedgate serve --config FILE/],
    [['check-config', '--help'], /Usage: embedgate check-config --config FILE/],
  ];
  for (const [args, usage] of help) {
    it(`embedgate ${args.join(' ')} exits 0 with usage`, async () => {
      const result = await runCli(args);
      assert.equal(result.code, 0, result.stderr);
      assert.match(result.stdout, usage);
    });
  }

  const misuse: Array<[string[], RegExp]> = [
    [['frobnicate'], /unknown command "frobnicate"[\s\S]*Usage: embedgate <command>/],
    [['check-config', '--config', 'examples/contract.yaml', '--verbose'], /Unknown option '--verbose'[\s\S]*Usage: embedgate check-config/],
    [['check-config', 'examples/contract.yaml'], /Usage: embedgate check-config/],
  ];
  for (const [args, message] of misuse) {
    it(`embedgate ${args.join(' ')} exits 2 with usage`, async () => {
      const result = await runCli(args);
      assert.equal(result.code, 2);
      assert.match(result.stderr, message);
      assertNoStack(result);
    });
  }

  it('embedgate with no command exits 2 with usage', async () => {
    const result = await runCli([]);
    assert.equal(result.code, 2);
    assert.match(result.stdout + result.stderr, /Usage: embedgate <command>/);
  });

  it('`npx embedgate --help` works from the repository root, as the README says', async () => {
    const { stdout } = await promisify(execFile)('npx', ['embedgate', '--help'], { cwd: REPO_ROOT });
    assert.match(stdout, /Usage: embedgate <command>/);
  });

  describe('when the port is taken', () => {
    let blocker: Server;
    let port: number;

    before(async () => {
      blocker = createServer();
      await new Promise<void>((resolve) => blocker.listen(0, '127.0.0.1', resolve));
      port = (blocker.address() as AddressInfo).port;
    });

    after(async () => {
      await new Promise<void>((resolve) => blocker.close(() => resolve()));
    });

    it('serve exits 1 saying the address is in use', async () => {
      const file = writeConfig('port-taken', edit('listen: 127.0.0.1:4180', `listen: 127.0.0.1:${port}\ndata_dir: ${join(dir, 'data')}`)
        .replace('issuer: http://127.0.0.1:4000', 'issuer: http://127.0.0.1:9'));
      const result = await runCli(['serve', '--config', file], { cwd: dir });
      assert.equal(result.code, 1, result.stderr);
      assert.match(result.stderr, new RegExp(`cannot listen on 127\\.0\\.0\\.1:${port}: the address is already in use`));
      assertNoStack(result);
    });
  });
});

describe('login: the audience sign-in asks for', () => {
  const KEY = Buffer.alloc(32, 7).toString('base64');
  const LOGIN = `login:\n  issuer: http://127.0.0.1:4000\n  client_id: gateway\n  client_secret: s3cret-s3cret\n  encryption_key: ${KEY}\n`;
  const withLogin = (text: string, extra = ''): unknown => parseConfigText(`${text}${LOGIN}${extra}`);

  it('defaults login.resource to the issuer\'s one trusted audience (RFC 8707), and sends nothing else', () => {
    const config = parseConfig(withLogin(BASE));
    assert.equal(config.login?.resource, 'http://127.0.0.1:4180');
    assert.equal(config.login?.audience, undefined);
  });

  it('defaults login.audience instead with preset auth0; sends nothing with presets whose provider picks the audience', () => {
    const auth0 = parseConfig(withLogin(edit('algorithms: [RS256]', 'algorithms: [RS256]\n    preset: auth0')));
    assert.deepEqual([auth0.login?.audience, auth0.login?.resource], ['http://127.0.0.1:4180', undefined]);
    for (const preset of ['keycloak', 'okta', 'entra', 'cognito']) {
      const config = parseConfig(withLogin(edit('algorithms: [RS256]', `algorithms: [RS256]\n    preset: ${preset}`)));
      assert.deepEqual([config.login?.audience, config.login?.resource], [undefined, undefined], preset);
    }
  });

  it('keeps what the operator set', () => {
    const config = parseConfig(withLogin(edit('audiences: [http://127.0.0.1:4180]', 'audiences: [http://127.0.0.1:4180, https://other.example]'), '  resource: https://other.example\n'));
    assert.equal(config.login?.resource, 'https://other.example');
  });

  it('refuses a login.resource or login.audience the gateway does not trust for that issuer, naming the field', () => {
    for (const key of ['resource', 'audience']) {
      assert.throws(() => parseConfig(withLogin(BASE, `  ${key}: https://elsewhere.example\n`)), (error: unknown) => {
        assert.ok(error instanceof ConfigError);
        assert.match(error.message, new RegExp(`^login\\.${key}: must be one of the audiences trusted for http://127\\.0\\.0\\.1:4000`, 'm'));
        return true;
      });
    }
  });

  it('check-config warns (exit 0) when no audience is asked for and none can be derived', async () => {
    const file = writeConfig('login-two-audiences', `${edit('audiences: [http://127.0.0.1:4180]', 'audiences: [http://127.0.0.1:4180, https://other.example]')}${LOGIN}`);
    const result = await runCli(['check-config', '--config', file]);
    assert.equal(result.code, 0, result.stderr);
    assert.match(result.stderr, /login\.resource: not set, and none is derived from issuers\[0\] \(it trusts 2 audiences\)/);
  });

  it('check-config warns when the embedded IdP in the same file issues tokens for an audience the gateway does not trust', async () => {
    const idp = 'idp:\n  issuer: http://127.0.0.1:4000\n  resource: http://127.0.0.1:9999\n';
    const file = writeConfig('idp-resource', `${BASE}${idp}`);
    const result = await runCli(['check-config', '--config', file]);
    assert.equal(result.code, 0, result.stderr);
    assert.match(result.stderr, /issuers\[0\]\.audiences: does not contain idp\.resource \(http:\/\/127\.0\.0\.1:9999\)/);
    const fine = await runCli(['check-config', '--config', writeConfig('idp-resource-ok', `${BASE}${idp.replace('9999', '4180')}${LOGIN}`)]);
    assert.equal(fine.code, 0, fine.stderr);
    assert.equal(fine.stderr, '', 'nothing to warn about');
  });
});
