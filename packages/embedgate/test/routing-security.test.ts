// Security cases 73-83 and 110-112 against a real gateway: path matching, forward-auth and proxy trust,
// identity-header smuggling, duplicate headers, authorization constraints and token exposure.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { ConfigError, parseConfig } from '../src/config/load.js';
import { eventually, startGateway, type RunningGateway } from './support/gateway.js';
import { startHostileOp, type HostileOp } from './support/hostile-op.js';
import { rawRequest } from './support/raw-http.js';
import { freePort } from './support/idp.js';
import { startUpstream, type Upstream } from './support/upstream.js';

let op: HostileOp;
let upstream: Upstream;
/** Default configuration: no trusted proxies. */
let gw: RunningGateway;
/** The same apps behind `trusted_proxies: ['127.0.0.1']`, as when nginx or Traefik runs next to the gateway. */
let proxied: RunningGateway;

const ALICE = { email: 'alice@example.com', email_verified: true };
/** Identity headers in their canonical spelling (lower case, "-" for "_" and "."). */
const IDENTITY_HEADERS = ['x-forwarded-user', 'x-forwarded-email', 'x-forwarded-groups', 'x-embedgate-assertion'];

function appsFor(upstreamUrl: string): Record<string, unknown>[] {
  const app = (name: string, settings: Record<string, unknown>): Record<string, unknown> => ({ name, prefix: `/${name}/`, upstream: upstreamUrl, ...settings });
  return [
    app('app', { allow: { roles: ['analyst', 'admin'] }, public: ['/app/api/*/status', '/app/foo/*/bar', '/app/public/**'] }),
    app('fwd', { allow: { roles: ['analyst'] }, forward_authorization: true }),
    app('mail', { allow: { email_domains: ['example.com'] } }),
    app('wild', { allow: { email_domains: ['*.example.com'] } }),
    app('roles', { allow: { roles: ['admin'] } }),
    app('scopes', { allow: { scopes: ['read', 'write'] } }),
    app('users', { allow: { users: ['alice'] } }),
    app('claims', { allow: { claims: { tenant: 'acme', 'org.tier': ['gold', 'platinum'] } } }),
    app('combo', { allow: { any: [{ roles: ['admin'] }, { all: [{ roles: ['analyst'] }, { claims: { dept: 'sales' } }, { not: { claims: { contractor: true } } }] }] } }),
    app('denied', { allow: { roles: ['analyst'] }, deny: { claims: { suspended: true } } }),
    app('routes', {
      allow: { roles: ['analyst', 'admin'] },
      routes: [
        { paths: ['/routes/admin/**'], allow: { roles: ['admin'] } },
        { paths: ['/routes/data/**'], methods: ['POST', 'DELETE'], allow: { roles: ['admin'] } },
        { paths: ['/routes/reports/*'], deny: { claims: { contractor: true } } },
      ],
    }),
  ];
}

/** A minimal valid config for parseConfig, with `extra` merged over it. */
function configWith(extra: Record<string, unknown>): Record<string, unknown> {
  return {
    public_url: 'http://127.0.0.1:4180',
    issuers: [{ issuer: 'http://127.0.0.1:4000', audiences: ['http://127.0.0.1:4180'] }],
    apps: [{ name: 'app', prefix: '/app/', upstream: 'http://127.0.0.1:8050', allow: { roles: ['analyst'] } }],
    ...extra,
  };
}

function configProblems(raw: Record<string, unknown>): string {
  try {
    parseConfig(raw);
  } catch (error) {
    if (error instanceof ConfigError) return error.message;
    throw error;
  }
  return '';
}

const tokenFor = (claims: Record<string, unknown> = {}): Promise<string> => op.sign(op.claims(claims));
const bearer = (token: string): string => `Authorization: Bearer ${token}`;

async function errorOf(response: Response): Promise<string> {
  return ((await response.json()) as { error: string }).error;
}

/** Every value of a header in a raw header list, matching names the way the gateway folds them. */
function occurrences(rawHeaders: readonly string[], canonicalName: string): string[] {
  const values: string[] = [];
  for (let i = 0; i < rawHeaders.length; i += 2) {
    if ((rawHeaders[i] as string).toLowerCase().replace(/[_.]/g, '-') === canonicalName) values.push(rawHeaders[i + 1] as string);
  }
  return values;
}

before(async () => {
  op = await startHostileOp();
  upstream = await startUpstream();
  const config = { issuers: [{ issuer: op.issuer, audiences: [op.audience] }], apps: appsFor(upstream.url) };
  gw = await startGateway(config);
  proxied = await startGateway({ ...config, trusted_proxies: ['127.0.0.1'] });
  for (const gateway of [gw, proxied]) await eventually(async () => (await gateway.fetch('/readyz')).status === 200);
});

after(async () => {
  await gw.close();
  await proxied.close();
  await upstream.close();
  await op.close();
});

describe('public-path matching and path normalization', () => {
  it('73: the query string never makes a protected path public', async () => {
    assert.equal((await gw.fetch('/app/api/v1/status')).status, 200, 'the public glob itself works');
    upstream.clear();
    for (const path of ['/app/api/private/sensitive?path=/status', '/app/api/private/sensitive?/app/api/v1/status', '/app/api/a/b/status']) {
      const response = await gw.fetch(path);
      assert.equal(response.status, 401, path);
      assert.equal(await errorOf(response), 'missing_token', path);
    }
    assert.equal(upstream.requests.length, 0, 'nothing reached the app unauthenticated');
  });

  it('74: an encoded "#" inside a segment does not make a protected path public', async () => {
    assert.equal((await gw.fetch('/app/foo/x/bar')).status, 200, 'the public glob itself works');
    upstream.clear();
    const response = await rawRequest(gw.url, '/app/foo/secret%23/bar');
    assert.ok([400, 401].includes(response.status), `got ${response.status}, expected 400 or 401`);
    assert.equal(upstream.requests.length, 0, 'nothing reached the app unauthenticated');
  });

  it('75: path-normalization variants of a protected path are refused or need a token', async () => {
    assert.equal((await gw.fetch('/app/public/page')).status, 200, 'the public glob itself works');
    upstream.clear();
    const variants = [
      '/app/public/../admin', '/app/public/%2e%2e/admin', '/app/public/.%2E/admin', '/app/public%2F..%2Fadmin',
      '/app/public/..%5Cadmin', '/app/public/..\\admin', '/app/public/..;/admin', '//app/admin', '/app//admin',
      '/app/admin;x=y', '/app/ADMIN', '/app/admin%20', '/app/admin/.', '/app/admin#foo', '/app/public#/../admin',
      '/app/%61dmin', '/app/public/%00/../admin',
    ];
    for (const target of variants) {
      const response = await rawRequest(gw.url, target);
      assert.ok([400, 401].includes(response.status), `${target}: got ${response.status}, expected 400 or 401`);
    }
    assert.deepEqual(upstream.requests.map((r) => r.url), [], 'no variant reached the app unauthenticated');
  });

  it('76: a gateway-internal path inside the query or under an app gets the app policy', async () => {
    for (const path of ['/app/admin?x=/_embedgate/', '/app/admin/_embedgate/', '/app/admin/_embedgate/auth', '/app/_embedgate/jwks.json', '/app/admin?x=/healthz']) {
      const response = await gw.fetch(path);
      assert.equal(response.status, 401, path);
      assert.equal(await errorOf(response), 'missing_token', path);
    }
  });
});

describe('forward-auth and proxy trust', () => {
  const forwardAuth = (gateway: RunningGateway, uri: string, token?: string, extra: Record<string, string> = {}): Promise<Response> =>
    gateway.fetch('/_embedgate/auth', { ...(token === undefined ? {} : { token }), headers: { 'x-forwarded-uri': uri, ...extra } });

  it('77: X-Forwarded-Uri from an untrusted peer is ignored and the check fails closed', async () => {
    const anonymous = await forwardAuth(gw, '/app/public/x');
    assert.equal(anonymous.status, 401);
    assert.equal(await errorOf(anonymous), 'missing_token');
    const signedIn = await forwardAuth(gw, '/app/public/x', await tokenFor());
    assert.equal(signedIn.status, 403, 'a token does not make an unnamed target allowed');
    assert.equal(await errorOf(signedIn), 'no_target');
  });

  it('77: X-Forwarded-Uri from a trusted proxy is evaluated for that URI', async () => {
    const analyst = await tokenFor(ALICE);
    const guest = await tokenFor({ roles: ['guest'] });
    const cases: Array<[uri: string, token: string | undefined, status: number, error?: string]> = [
      ['/app/public/x', undefined, 200],
      ['/app/admin', undefined, 401, 'missing_token'],
      ['/app/admin?x=/app/public/', undefined, 401, 'missing_token'],
      ['/app/admin', 'not-a-jwt', 401, 'malformed_token'],
      ['/app/admin', guest, 403, 'forbidden'],
      ['/app/public/../admin', analyst, 400, 'ambiguous_path'],
      ['/nowhere/x', analyst, 403, 'no_target'],
      ['/app/admin', analyst, 200],
    ];
    for (const [uri, token, status, error] of cases) {
      const response = await forwardAuth(proxied, uri, token);
      assert.equal(response.status, status, `${uri} with ${token === undefined ? 'no token' : 'a token'}`);
      if (error !== undefined) assert.equal(await errorOf(response), error, uri);
    }
    const allowed = await forwardAuth(proxied, '/app/admin', analyst);
    assert.equal(allowed.headers.get('x-forwarded-user'), 'user-1');
    assert.equal(allowed.headers.get('x-forwarded-email'), 'alice@example.com');
    assert.equal(allowed.headers.get('x-forwarded-groups'), 'analyst');
    assert.match(allowed.headers.get('x-embedgate-assertion') ?? '', /^[\w-]+\.[\w-]+\.[\w-]+$/);
    assert.equal((await forwardAuth(proxied, '/app/public/x')).headers.get('x-forwarded-user'), null, 'a public answer names nobody');
  });

  it('forward-auth applies the session cookie\'s same-origin rule to the checked request\'s method (X-Forwarded-Method), not the check\'s own GET', async () => {
    const port = await freePort();
    const origin = `http://127.0.0.1:${port}`;
    const embedded = await startGateway({
      listen: `127.0.0.1:${port}`, public_url: origin, trusted_proxies: ['127.0.0.1'],
      issuers: [{ issuer: op.issuer, audiences: [op.audience] }], embed: { allowed_origins: ['http://host.example'] },
      sessions: { store: 'memory:' }, apps: appsFor(upstream.url),
    });
    try {
      await eventually(async () => (await embedded.fetch('/readyz')).status === 200);
      const made = await embedded.fetch('/_embedgate/session', {
        method: 'POST', token: await tokenFor(ALICE), headers: { origin, 'content-type': 'application/json' }, body: JSON.stringify({ path: '/app/admin' }),
      });
      assert.equal(made.status, 200);
      const cookie = (made.headers.getSetCookie()[0] ?? '').split(';')[0] as string;
      const check = (method: string, from: string): Promise<Response> =>
        forwardAuth(embedded, '/app/admin', undefined, { cookie, origin: from, 'x-forwarded-method': method });
      const crossSitePost = await check('POST', 'https://evil.example');
      assert.equal(crossSitePost.status, 403, 'another site cannot ride on the cookie through the proxy');
      assert.equal(await errorOf(crossSitePost), 'cross_site_request');
      assert.equal((await check('DELETE', 'https://evil.example')).status, 403);
      assert.equal((await check('POST', origin)).status, 200, 'the framed app itself may');
      assert.equal((await check('GET', 'https://evil.example')).status, 200, 'a GET needs no same-origin proof');
    } finally {
      await embedded.close();
    }
  });

  it('78: by default no proxy is trusted, so forged X-Forwarded-* never reach the app', async () => {
    upstream.clear();
    const forged = { 'x-forwarded-for': '1.2.3.4', 'x-forwarded-host': 'evil.example', 'x-forwarded-proto': 'https', 'x-real-ip': '1.2.3.4' };
    assert.equal((await gw.fetch('/app/page', { token: await tokenFor(), headers: forged })).status, 200);
    const seen = upstream.last()?.rawHeaders ?? [];
    assert.deepEqual(occurrences(seen, 'x-forwarded-for'), ['127.0.0.1']);
    assert.deepEqual(occurrences(seen, 'x-forwarded-host'), [new URL(gw.url).host]);
    assert.deepEqual(occurrences(seen, 'x-forwarded-proto'), ['http']);
    assert.deepEqual(occurrences(seen, 'x-real-ip'), []);

    assert.equal((await proxied.fetch('/app/page', { token: await tokenFor(), headers: forged })).status, 200);
    assert.deepEqual(occurrences(upstream.last()?.rawHeaders ?? [], 'x-forwarded-for'), ['1.2.3.4, 127.0.0.1'], 'a configured proxy is believed');
  });

  it('78: a config that trusts every address is refused, naming the field', () => {
    for (const everyone of ['0.0.0.0/0', '::/0']) {
      assert.match(configProblems(configWith({ trusted_proxies: ['10.0.0.0/8', everyone] })), /^trusted_proxies\[1\]: /m, everyone);
      assert.match(configProblems(configWith({ trusted_proxies: [everyone] })), /^trusted_proxies\[0\]: /m, everyone);
    }
  });

  it('79: a health-check User-Agent gets no free pass', async () => {
    for (const agent of ['GoogleHC/1.0', 'kube-probe/1.29', 'ELB-HealthChecker/2.0']) {
      const headers = { 'user-agent': agent };
      assert.equal((await gw.fetch('/app/admin', { headers })).status, 401, `${agent} on an app path`);
      assert.equal((await gw.fetch('/_embedgate/auth', { headers })).status, 401, `${agent} on forward-auth`);
      assert.equal((await forwardAuth(proxied, '/app/admin', undefined, headers)).status, 401, `${agent} on forward-auth via a proxy`);
    }
  });
});

describe('header hygiene', () => {
  const SMUGGLED = [
    'X-Auth-Request-User', 'X-Auth_Request_User', 'x-forwarded-email', 'X_Forwarded_User', 'X-Forwarded-Groups',
    'X-Auth-Request-Access-Token', 'X-Embedgate-Assertion', 'x.forwarded.user',
  ];
  const smuggledLines = SMUGGLED.map((name, i) => `${name}: smuggled-${i}`);
  const smuggledValues = (rawHeaders: readonly string[]): string[] => rawHeaders.filter((value, i) => i % 2 === 1 && value.includes('smuggled'));

  it('80: identity headers sent to a public path never reach the app', async () => {
    upstream.clear();
    assert.equal((await rawRequest(gw.url, '/app/public/page', smuggledLines)).status, 200);
    const seen = upstream.last()?.rawHeaders ?? [];
    assert.deepEqual(smuggledValues(seen), []);
    for (const name of [...IDENTITY_HEADERS, 'x-auth-request-user', 'x-auth-request-access-token']) {
      assert.deepEqual(occurrences(seen, name), [], name);
    }
  });

  it('80: an authenticated request carries exactly one gateway-set value per identity header', async () => {
    upstream.clear();
    assert.equal((await rawRequest(gw.url, '/app/page', [...smuggledLines, bearer(await tokenFor(ALICE))])).status, 200);
    const seen = upstream.last()?.rawHeaders ?? [];
    assert.deepEqual(smuggledValues(seen), []);
    assert.deepEqual(occurrences(seen, 'x-forwarded-user'), ['user-1']);
    assert.deepEqual(occurrences(seen, 'x-forwarded-email'), ['alice@example.com']);
    assert.deepEqual(occurrences(seen, 'x-forwarded-groups'), ['analyst']);
    assert.equal(occurrences(seen, 'x-embedgate-assertion').length, 1);
    assert.deepEqual(occurrences(seen, 'x-auth-request-user'), []);
    assert.deepEqual(occurrences(seen, 'x-auth-request-access-token'), []);
  });

  it('81: duplicated Host, X-Forwarded-Host, X-Forwarded-Uri or Authorization → 400, never proxied', async () => {
    const token = bearer(await tokenFor());
    const host = `Host: ${new URL(gw.url).host}`;
    upstream.clear();
    const cases: Array<[gateway: RunningGateway, target: string, lines: string[]]> = [
      [gw, '/app/page', [host, host, token]],
      [gw, '/app/page', [host, 'Host: evil.example', token]],
      [gw, '/app/page', ['X-Forwarded-Host: a.example', 'X-Forwarded-Host: b.example', token]],
      [gw, '/app/page', [token, token]],
      [gw, '/app/public/page', [token, bearer('other')]],
      [proxied, '/_embedgate/auth', ['X-Forwarded-Uri: /app/public/x', 'X-Forwarded-Uri: /app/admin']],
    ];
    for (const [gateway, target, lines] of cases) {
      const response = await rawRequest(gateway.url, target, lines);
      assert.equal(response.status, 400, `${target} with ${lines.map((l) => l.split(':')[0]).join(', ')}`);
    }
    assert.equal(upstream.requests.length, 0);
  });

  async function refusedHeaderValues(values: string[]): Promise<void> {
    const token = bearer(await tokenFor());
    upstream.clear();
    for (const value of values) {
      const response = await rawRequest(gw.url, '/app/page', [`X-Note: ${value}`, token]);
      assert.equal(response.status, 400, JSON.stringify(value));
    }
    assert.deepEqual(upstream.requests.map((r) => r.headers['x-note']), []);
  }

  it('81: CR, LF or NUL in a header value → 400, never proxied', async () => {
    await refusedHeaderValues(['a\rX-Forwarded-User: admin', 'a\nX-Forwarded-User: admin', 'a\0b']);
  });

  it('81: obs-text in a header value → 400, never proxied', async () => {
    await refusedHeaderValues(['caf\u00e9', '\u00ff\u00fe']);
  });

  it('112: the upstream gets no Authorization header unless the app opts in, and then exactly the caller\'s', async () => {
    const token = await tokenFor();
    upstream.clear();
    assert.equal((await gw.fetch('/app/page', { token })).status, 200);
    assert.equal((await gw.fetch('/app/public/page', { token })).status, 200);
    for (const request of upstream.requests) assert.deepEqual(occurrences(request.rawHeaders, 'authorization'), [], request.url);

    assert.equal((await gw.fetch('/fwd/page', { token })).status, 200);
    assert.deepEqual(occurrences(upstream.last()?.rawHeaders ?? [], 'authorization'), [`Bearer ${token}`]);
  });
});

describe('authorization constraints', () => {
  type Case = [what: string, path: string, claims: Record<string, unknown>, status: number, error?: string];

  async function check(cases: Case[], method = 'GET'): Promise<void> {
    for (const [what, path, claims, status, error] of cases) {
      upstream.clear();
      const response = await gw.fetch(path, { method, token: await tokenFor(claims) });
      assert.equal(response.status, status, what);
      if (status === 200) {
        assert.equal(upstream.requests.length, 1, `${what}: proxied`);
        continue;
      }
      const body = (await response.json()) as { error: string; message: string };
      assert.equal(body.error, error, what);
      assert.ok(body.message.length > 0, `${what}: the denial explains itself`);
      assert.equal(upstream.requests.length, 0, `${what}: not proxied`);
    }
  }

  it('82: email domains compare the whole domain of a single-@ address, and only verified addresses', async () => {
    await check([
      ['alice@example.com', '/mail/x', ALICE, 200],
      ['upper-case address', '/mail/x', { email: 'ALICE@EXAMPLE.COM' }, 200],
      ['two @ signs', '/mail/x', { email: 'attacker@evil.com@example.com', email_verified: true }, 403, 'forbidden'],
      ['lookalike suffix', '/mail/x', { email: 'EVIL@EXAMPLE.COM.evil.tld', email_verified: true }, 403, 'forbidden'],
      ['subdomain of an exact domain', '/mail/x', { email: 'bob@sub.example.com', email_verified: true }, 403, 'forbidden'],
      ['email_verified false', '/mail/x', { email: 'alice@example.com', email_verified: false }, 403, 'forbidden'],
      ['no email', '/mail/x', {}, 403, 'forbidden'],
      ['*.example.com allows a subdomain', '/wild/x', { email: 'a@a.example.com', email_verified: true }, 200],
      ['*.example.com does not allow the apex', '/wild/x', ALICE, 403, 'forbidden'],
      ['*.example.com vs a lookalike', '/wild/x', { email: 'a@evilexample.com', email_verified: true }, 403, 'forbidden'],
    ]);
  });

  it('82: email_verified "false" as a string is not taken as verified', async () => {
    await check([['email_verified "false"', '/mail/x', { email: 'alice@example.com', email_verified: 'false' }, 403, 'forbidden']]);
  });

  it('82: a leading-dot domain is refused at start-up, naming the field', () => {
    const apps = [{ name: 'app', prefix: '/app/', upstream: 'http://127.0.0.1:8050', allow: { email_domains: ['.example.com'] } }];
    assert.match(configProblems(configWith({ apps })), /^apps\[0\]\.allow\.email_domains\[0\]: /m);
  });

  it('83: roles, scopes, users and claims are each enforced', async () => {
    await check([
      ['roles: analyst is not admin', '/roles/x', { roles: ['analyst'] }, 403, 'forbidden'],
      ['roles: admin', '/roles/x', { roles: ['admin'] }, 200],
      ['scopes: one of the two required', '/scopes/x', { scope: 'read' }, 403, 'forbidden'],
      ['scopes: both, as "scope"', '/scopes/x', { scope: 'read write' }, 200],
      ['scopes: both, as "scp"', '/scopes/x', { scp: ['write', 'read'] }, 200],
      ['users: bob', '/users/x', { sub: 'bob' }, 403, 'forbidden'],
      ['users: alice', '/users/x', { sub: 'alice' }, 200],
      ['claims: other tenant', '/claims/x', { tenant: 'globex', org: { tier: 'gold' } }, 403, 'forbidden'],
      ['claims: tier not listed', '/claims/x', { tenant: 'acme', org: { tier: 'silver' } }, 403, 'forbidden'],
      ['claims: tenant missing', '/claims/x', { org: { tier: 'gold' } }, 403, 'forbidden'],
      ['claims: tenant "acme " is not "acme"', '/claims/x', { tenant: 'acme ', org: { tier: 'gold' } }, 403, 'forbidden'],
      ['claims: values match', '/claims/x', { tenant: 'acme', org: { tier: 'gold' } }, 200],
      ['claims: array claim containing a listed value', '/claims/x', { tenant: ['globex', 'acme'], org: { tier: ['platinum'] } }, 200],
    ]);
  });

  it('83: any / all / not combinations and an app-wide deny are enforced', async () => {
    await check([
      ['any: admin', '/combo/x', { roles: ['admin'] }, 200],
      ['all: analyst in sales', '/combo/x', { roles: ['analyst'], dept: 'sales' }, 200],
      ['all: analyst in hr', '/combo/x', { roles: ['analyst'], dept: 'hr' }, 403, 'forbidden'],
      ['not: contractor analyst in sales', '/combo/x', { roles: ['analyst'], dept: 'sales', contractor: true }, 403, 'forbidden'],
      ['neither branch', '/combo/x', { roles: ['guest'], dept: 'sales' }, 403, 'forbidden'],
      ['app deny: suspended analyst', '/denied/x', { roles: ['analyst'], suspended: true }, 403, 'denied_by_policy'],
      ['app deny: analyst', '/denied/x', { roles: ['analyst'] }, 200],
    ]);
  });

  it('83: route allow and deny rules apply to their paths and methods', async () => {
    await check([
      ['admin route: analyst', '/routes/admin/users', { roles: ['analyst'] }, 403, 'forbidden'],
      ['admin route: admin', '/routes/admin/users', { roles: ['admin'] }, 200],
      ['admin route is not a prefix match', '/routes/administration', { roles: ['analyst'] }, 200],
      ['GET on a POST/DELETE route: analyst', '/routes/data/rows', { roles: ['analyst'] }, 200],
      ['deny route: contractor', '/routes/reports/q1', { roles: ['analyst'], contractor: true }, 403, 'denied_by_policy'],
      ['deny route: employee', '/routes/reports/q1', { roles: ['analyst'] }, 200],
      ['app rule still applies on a route', '/routes/reports/q1', { roles: ['guest'] }, 403, 'forbidden'],
    ]);
    await check([
      ['POST route: analyst', '/routes/data/rows', { roles: ['analyst'] }, 403, 'forbidden'],
      ['POST route: admin', '/routes/data/rows', { roles: ['admin'] }, 200],
    ], 'POST');
    await check([['DELETE route: analyst', '/routes/data/rows', { roles: ['analyst'] }, 403, 'forbidden']], 'DELETE');
  });
});

describe('token exposure', () => {
  it('110: the gateway\'s own endpoints and error pages never contain a token sent to them', async () => {
    const token = await tokenFor(ALICE);
    const forbidden = await tokenFor({ roles: ['guest'] });
    const [, , signature] = token.split('.') as [string, string, string];
    const tamperedToken = `${token.slice(0, -4)}AAAA`;
    const answers: Array<[what: string, body: Promise<string>, sent: string]> = [];
    const visit = (what: string, path: string, sent: string): void => {
      answers.push([what, gw.fetch(path, { token: sent }).then((r) => r.text()), sent]);
    };
    for (const path of ['/healthz', '/readyz', '/metrics', '/_embedgate/jwks.json', '/_embedgate/nope', '/nowhere/', '/app/admin?access_token=x']) {
      visit(path, path, token);
    }
    visit('401 invalid signature', '/app/admin', tamperedToken);
    visit('403', '/roles/x', forbidden);
    for (const [what, body, sent] of answers) {
      const text = await body;
      assert.ok(!text.includes(sent), `${what} echoes the token`);
      assert.ok(!text.includes(sent.split('.')[1] as string), `${what} echoes the token payload`);
    }
    const navigation = await rawRequest(gw.url, '/app/admin', [bearer(tamperedToken), 'Sec-Fetch-Mode: navigate']);
    assert.equal(navigation.status, 401);
    assert.ok(!navigation.body.includes(tamperedToken) && !navigation.body.includes(signature), 'the HTML error page echoes the token');
    const ambiguous = await rawRequest(gw.url, `/app/${token}/../x`, [bearer(token)]);
    assert.equal(ambiguous.status, 400);
    assert.ok(!ambiguous.body.includes(token), 'a 400 for the path echoes it');
  });

  it('110: /_embedgate/jwks.json publishes only public key material', async () => {
    const jwks = (await (await gw.fetch('/_embedgate/jwks.json')).json()) as { keys: Array<Record<string, unknown>> };
    assert.ok(jwks.keys.length > 0);
    for (const key of jwks.keys) {
      for (const member of ['d', 'p', 'q', 'dp', 'dq', 'qi', 'k']) assert.equal(key[member], undefined, `a published key has "${member}"`);
    }
  });

  it('111: tokens, cookies and query strings never reach the logs or error bodies', async () => {
    const valid = await tokenFor(ALICE);
    const invalid = `${valid.slice(0, -4)}AAAA`;
    const foreign = await op.sign(op.claims({ iss: 'https://evil.example' }));
    const cookie = 'session-cookie-value-4f9c1e';
    const secrets = [valid, invalid, foreign, cookie, 'client-secret-value-77', 'auth-code-value-31', 'state-value-58'];
    const query = `client_secret=${secrets[4]}&code=${secrets[5]}&state=${secrets[6]}`;
    const requests: Array<[path: string, token?: string]> = [
      [`/app/admin?${query}`, valid],
      [`/app/admin?${query}`, invalid],
      [`/app/admin?${query}`, foreign],
      [`/app/admin?access_token=${valid}&${query}`],
      [`/app/admin?access_token=${invalid}`],
      [`/app/public/page?access_token=${valid}&${query}`],
      [`/roles/x?${query}`, valid],
      [`/_embedgate/auth?${query}`, invalid],
      [`/nowhere/?access_token=${valid}`],
    ];
    for (const [path, token] of requests) {
      const response = await gw.fetch(path, { ...(token === undefined ? {} : { token }), headers: { cookie: `__Host-embedgate=${cookie}; other=${cookie}` } });
      const body = await response.text();
      for (const secret of secrets) assert.ok(!body.includes(secret), `${path}: the body echoes a secret`);
    }
    await eventually(() => gw.logs.some((line) => line.includes('"path":"/nowhere/"')));
    const logs = gw.logs.join('\n');
    for (const secret of secrets) assert.ok(!logs.includes(secret), `the logs contain ${secret.slice(0, 12)}…`);
    assert.ok(!logs.includes('eyJ'), 'the logs contain something JWT-shaped');
    for (const fragment of ['access_token', 'client_secret', 'code=', 'state=', '?']) assert.ok(!logs.includes(fragment), `the logs contain "${fragment}"`);
  });
});
