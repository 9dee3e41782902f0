// Unit tests of claims → roles/scopes (src/identity/roles.ts), allow/deny rules (src/policy/rules.ts) and Dash callback outputs (src/policy/dash.ts).
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { JWTPayload } from 'jose';
import { parseConfig } from '../src/config/load.js';
import { ruleSchema, type IssuerConfig, type RuleInput } from '../src/config/schema.js';
import type { Identity } from '../src/identity/identity.js';
import { readClaim, readScopes, rolesReader } from '../src/identity/roles.js';
import { AppPolicy } from '../src/policy/app-policy.js';
import { compileOutputPattern, parseDashOutputs } from '../src/policy/dash.js';
import { compileRule } from '../src/policy/rules.js';

/** An issuer entry as the real schema produces it, defaults included. */
function issuer(fields: Record<string, unknown>): IssuerConfig {
  const config = parseConfig({
    public_url: 'http://127.0.0.1:4180',
    issuers: [{ issuer: 'http://127.0.0.1:4000', audiences: ['http://127.0.0.1:4180'], ...fields }],
    apps: [{ name: 'sales', prefix: '/sales/', upstream: 'http://127.0.0.1:8050', allow: { authenticated: true } }],
  });
  const [first] = config.issuers;
  assert.ok(first);
  return first;
}

interface Who {
  sub?: string;
  email?: string;
  emailVerified?: boolean;
  roles?: string[];
  scopes?: string[];
  claims?: JWTPayload;
}

function identity({ sub = 'user-1', email, emailVerified, roles = [], scopes = [], claims = {} }: Who = {}): Identity {
  return {
    issuer: 'http://127.0.0.1:4000',
    subject: sub,
    email,
    emailVerified,
    roles: new Set(roles),
    scopes: new Set(scopes),
    claims: { sub, ...claims },
    expiresAt: Math.floor(Date.now() / 1000) + 300,
  };
}

describe('roles from claims: presets and roles_claim', () => {
  const cases: Array<{ name: string; config: Record<string, unknown>; claims: JWTPayload; roles: string[] }> = [
    {
      name: 'generic reads "roles"',
      config: {},
      claims: { roles: ['analyst', 'admin'], groups: ['ignored'] },
      roles: ['analyst', 'admin'],
    },
    {
      name: 'auth0 reads the namespaced https://…/roles claim',
      config: { preset: 'auth0' },
      claims: { 'https://example.com/roles': ['admin'], permissions: ['read:reports'] },
      roles: ['admin'],
    },
    {
      name: 'keycloak reads realm roles and the configured client\'s roles only',
      config: { preset: 'keycloak', keycloak_client: 'sales-app' },
      claims: {
        realm_access: { roles: ['offline_access', 'analyst'] },
        resource_access: { 'sales-app': { roles: ['payroll'] }, 'other-app': { roles: ['admin'] } },
      },
      roles: ['offline_access', 'analyst', 'payroll'],
    },
    {
      name: 'keycloak without keycloak_client reads realm roles only',
      config: { preset: 'keycloak' },
      claims: { realm_access: { roles: ['analyst'] }, resource_access: { 'sales-app': { roles: ['admin'] } } },
      roles: ['analyst'],
    },
    { name: 'entra reads "roles"', config: { preset: 'entra' }, claims: { roles: ['Reports.Read'], groups: ['g-1'] }, roles: ['Reports.Read'] },
    { name: 'okta reads "groups"', config: { preset: 'okta' }, claims: { groups: ['Everyone', 'analyst'], roles: ['ignored'] }, roles: ['Everyone', 'analyst'] },
    { name: 'cognito reads "cognito:groups"', config: { preset: 'cognito' }, claims: { 'cognito:groups': ['admin'], roles: ['ignored'] }, roles: ['admin'] },
    {
      name: 'roles_claim as an exact name containing dots',
      config: { roles_claim: 'https://example.com/roles' },
      claims: { 'https://example.com/roles': ['admin'], roles: ['ignored'] },
      roles: ['admin'],
    },
    {
      name: 'roles_claim as a dot path',
      config: { roles_claim: 'app.access.roles' },
      claims: { app: { access: { roles: ['analyst'] } }, roles: ['ignored'] },
      roles: ['analyst'],
    },
    {
      name: 'roles_claim overrides the preset',
      config: { preset: 'okta', roles_claim: 'dashboard_roles' },
      claims: { dashboard_roles: ['viewer'], groups: ['admin'] },
      roles: ['viewer'],
    },
    {
      name: 'a space- or comma-separated string is split',
      config: {},
      claims: { roles: 'analyst admin,auditor' },
      roles: ['analyst', 'admin', 'auditor'],
    },
    {
      name: 'non-string and empty entries are dropped',
      config: {},
      claims: { roles: ['analyst', 7, null, { admin: true }, '', true] },
      roles: ['analyst'],
    },
    { name: 'a missing claim gives no roles', config: { preset: 'keycloak', keycloak_client: 'sales-app' }, claims: {}, roles: [] },
    { name: 'an object where a list is expected gives no roles', config: {}, claims: { roles: { admin: true } }, roles: [] },
  ];
  for (const { name, config, claims, roles } of cases) {
    it(`83: ${name}`, () => {
      assert.deepEqual(rolesReader(issuer(config))(claims), roles);
    });
  }
});

describe('scopes and claim lookup', () => {
  it('reads scopes from a space-separated "scope" string', () => {
    assert.deepEqual(readScopes({ scope: 'openid reports:read  reports:write' }), ['openid', 'reports:read', 'reports:write']);
  });

  it('reads scopes from an "scp" array or string', () => {
    assert.deepEqual(readScopes({ scp: ['reports.read', 'reports.write'] }), ['reports.read', 'reports.write']);
    assert.deepEqual(readScopes({ scp: 'reports.read' }), ['reports.read']);
  });

  it('reads no scopes when neither claim is present', () => {
    assert.deepEqual(readScopes({ sub: 'x' }), []);
  });

  it('prefers an exact claim name over a dot path', () => {
    assert.equal(readClaim({ 'org.id': 'exact', org: { id: 'nested' } }, 'org.id'), 'exact');
    assert.equal(readClaim({ org: { id: 'nested' } }, 'org.id'), 'nested');
  });

  it('never reads inherited properties', () => {
    for (const name of ['constructor', '__proto__', 'toString', 'org.constructor', 'org.id.length']) {
      assert.equal(readClaim({ org: { id: 'x' }, roles: ['admin'] }, name), undefined, name);
    }
  });
});

describe('rules', () => {
  const cases: Array<{ name: string; rule: RuleInput; allowed: Who[]; refused: Who[] }> = [
    {
      name: 'roles: any of',
      rule: { roles: ['analyst', 'admin'] },
      allowed: [{ roles: ['admin'] }, { roles: ['viewer', 'analyst'] }],
      refused: [{ roles: [] }, { roles: ['viewer'] }, { roles: ['Admin'] }, { roles: ['administrator'] }],
    },
    {
      name: 'scopes: all of',
      rule: { scopes: ['reports:read', 'reports:write'] },
      allowed: [{ scopes: ['reports:read', 'reports:write', 'openid'] }],
      refused: [{ scopes: ['reports:read'] }, { scopes: [] }],
    },
    {
      name: 'users: by subject',
      rule: { users: ['user-1', 'user-2'] },
      allowed: [{ sub: 'user-2' }],
      refused: [{ sub: 'user-3' }, { sub: 'USER-1' }],
    },
    {
      name: 'emails: case-insensitive, verified or unstated',
      rule: { emails: ['Alice@Example.com'] },
      allowed: [{ email: 'alice@example.com' }, { email: 'ALICE@EXAMPLE.COM', emailVerified: true }],
      refused: [{ email: 'alice@example.com', emailVerified: false }, { email: 'bob@example.com' }, {}, { email: 'alice@example.com.evil.tld' }],
    },
    {
      name: '82: email_domains: exactly one "@" and an exact domain',
      rule: { email_domains: ['example.com'] },
      allowed: [{ email: 'alice@example.com' }, { email: 'ALICE@EXAMPLE.COM' }],
      refused: [
        { email: 'attacker@evil.com@example.com' },
        { email: 'EVIL@EXAMPLE.COM.evil.tld' },
        { email: 'alice@sub.example.com' },
        { email: 'alice@evilexample.com' },
        { email: '@example.com' },
        { email: 'example.com' },
        { email: 'alice@example.com', emailVerified: false },
        {},
      ],
    },
    {
      name: '82: email_domains: *.example.com means subdomains only',
      rule: { email_domains: ['*.example.com'] },
      allowed: [{ email: 'alice@eu.example.com' }, { email: 'alice@a.b.Example.COM' }],
      refused: [
        { email: 'alice@example.com' },
        { email: 'alice@evilexample.com' },
        { email: 'alice@example.com.evil.tld' },
        { email: 'attacker@evil.com@eu.example.com' },
        { email: 'alice@.example.com' },
      ],
    },
    {
      name: '82: email_verified: true requires the claim to be true',
      rule: { email_verified: true },
      allowed: [{ emailVerified: true }],
      refused: [{ emailVerified: false }, {}],
    },
    {
      name: 'claims: a scalar against scalar and array-valued claims',
      rule: { claims: { department: 'finance' } },
      allowed: [{ claims: { department: 'finance' } }, { claims: { department: ['hr', 'finance'] } }],
      refused: [{ claims: { department: 'Finance' } }, { claims: { department: ['hr'] } }, {}, { claims: { department: { finance: true } } }],
    },
    {
      name: 'claims: a list is any of, types compared strictly',
      rule: { claims: { tier: ['gold', 'platinum'], level: 3, 'org.active': true } },
      allowed: [{ claims: { tier: 'gold', level: 3, org: { active: true } } }, { claims: { tier: ['silver', 'platinum'], level: [1, 3], org: { active: true } } }],
      refused: [
        { claims: { tier: 'silver', level: 3, org: { active: true } } },
        { claims: { tier: 'gold', level: '3', org: { active: true } } },
        { claims: { tier: 'gold', level: 3, org: { active: 'true' } } },
        { claims: { tier: 'gold', level: 3 } },
      ],
    },
    {
      name: 'several criteria in one rule must all hold',
      rule: { roles: ['analyst'], email_domains: ['example.com'] },
      allowed: [{ roles: ['analyst'], email: 'a@example.com' }],
      refused: [{ roles: ['analyst'], email: 'a@other.com' }, { roles: ['viewer'], email: 'a@example.com' }],
    },
    {
      name: 'any / all / not nest',
      rule: {
        any: [
          { roles: ['admin'] },
          { all: [{ roles: ['analyst'] }, { scopes: ['payroll'] }, { not: { email_domains: ['contractor.example.com'] } }] },
        ],
      },
      allowed: [{ roles: ['admin'] }, { roles: ['analyst'], scopes: ['payroll'], email: 'a@example.com' }, { roles: ['analyst'], scopes: ['payroll'] }],
      refused: [{ roles: ['analyst'] }, { roles: ['analyst'], scopes: ['payroll'], email: 'a@contractor.example.com' }, {}],
    },
    {
      name: 'not inverts a rule',
      rule: { not: { users: ['intruder'] } },
      allowed: [{ sub: 'someone' }],
      refused: [{ sub: 'intruder' }],
    },
    {
      name: 'authenticated: true admits every identity',
      rule: { authenticated: true },
      allowed: [{}],
      refused: [],
    },
  ];
  for (const { name, rule, allowed, refused } of cases) {
    it(name, () => {
      const predicate = compileRule(rule);
      for (const who of allowed) assert.equal(predicate(identity(who)), true, `should allow ${JSON.stringify(who)}`);
      for (const who of refused) assert.equal(predicate(identity(who)), false, `should refuse ${JSON.stringify(who)}`);
    });
  }

  it('82: the schema refuses domain patterns that are not a domain or *.domain', () => {
    for (const domain of ['.example.com', 'example', '*example.com', 'a@example.com', '*.*.example.com', 'example.com/']) {
      assert.equal(ruleSchema.safeParse({ email_domains: [domain] }).success, false, domain);
    }
  });

  it('the schema refuses an empty rule and unknown criteria', () => {
    for (const rule of [{}, { role: ['admin'] }, { roles: [] }, { any: [] }, { not: {} }]) {
      assert.equal(ruleSchema.safeParse(rule).success, false, JSON.stringify(rule));
    }
  });
});

describe('routes', () => {
  /** An app whose routes are given as [paths, methods, role allowed]; the app itself allows everyone signed in. */
  function routed(routes: Array<[string[], string[] | undefined, string]>): AppPolicy {
    const config = parseConfig({
      public_url: 'http://127.0.0.1:4180',
      issuers: [{ issuer: 'http://127.0.0.1:4000', audiences: ['http://127.0.0.1:4180'] }],
      apps: [{
        name: 'sales', prefix: '/sales/', upstream: 'http://127.0.0.1:8050', allow: { authenticated: true },
        routes: routes.map(([paths, methods, role]) => ({ paths, ...(methods === undefined ? {} : { methods }), allow: { roles: [role] } })),
      }],
    });
    return new AppPolicy(config.apps[0] as (typeof config.apps)[number]);
  }
  const allowedRole = (policy: AppPolicy, path: string, method = 'GET'): string | undefined =>
    ['a', 'b', 'c', 'd'].find((role) => policy.authorize(identity({ roles: [role] }), path, method) === undefined);

  it('the first route in configuration order decides, whichever directory its globs start in', () => {
    const policy = routed([
      [['/sales/*/admin/**'], undefined, 'a'],
      [['/sales/reports/**'], undefined, 'b'],
      [['/sales/reports/admin/x', '/sales/**'], ['POST'], 'c'],
      [['/sales/**'], undefined, 'd'],
    ]);
    assert.equal(allowedRole(policy, '/sales/reports/admin/x'), 'a', 'an earlier wildcard route wins over a deeper literal one');
    assert.equal(allowedRole(policy, '/sales/reports/q1'), 'b');
    assert.equal(allowedRole(policy, '/sales/other', 'POST'), 'c', 'methods narrow a route');
    assert.equal(allowedRole(policy, '/sales/other'), 'd', 'a later route with the same glob');
  });

  it('with 1,000 routes each path still gets its own route', () => {
    const policy = routed(Array.from({ length: 1000 }, (_, i) => [[`/sales/area${i}/**`], undefined, ['a', 'b', 'c'][i % 3] as string]));
    assert.equal(allowedRole(policy, '/sales/area999/page'), 'a');
    assert.equal(allowedRole(policy, '/sales/area500/x/y'), 'c');
    assert.equal(allowedRole(policy, '/sales/area1000/x'), 'a', 'no route: the app rule alone');
  });
});

describe('Dash callback outputs', () => {
  const body = (value: unknown): Buffer => Buffer.from(typeof value === 'string' ? value : JSON.stringify(value));

  const parsed: Array<[string, unknown, string[]]> = [
    ['a single output', { output: 'payroll.children', outputs: { id: 'payroll', property: 'children' } }, ['payroll.children']],
    ['an output without "outputs" (older Dash)', { output: 'payroll.children' }, ['payroll.children']],
    [
      'a multi-output callback',
      { output: '..a.children...b.figure..', outputs: [{ id: 'a', property: 'children' }, { id: 'b', property: 'figure' }] },
      ['a.children', 'b.figure'],
    ],
    [
      'an "outputs" list naming more than "output"',
      { output: 'a.children', outputs: [{ id: 'payroll', property: 'data' }] },
      ['a.children', 'payroll.data'],
    ],
    [
      'dict ids with keys sorted like Dash',
      { output: '{"index":1,"type":"graph"}.figure', outputs: { id: { type: 'graph', index: 1 }, property: 'figure' } },
      ['{"index":1,"type":"graph"}.figure'],
    ],
    [
      'ALL wildcards (lists of lists)',
      {
        output: '{"index":["ALL"],"type":"row"}.children',
        outputs: [[{ id: { type: 'row', index: 0 }, property: 'children' }, { id: { type: 'row', index: 1 }, property: 'children' }]],
      },
      ['{"index":["ALL"],"type":"row"}.children', '{"index":0,"type":"row"}.children', '{"index":1,"type":"row"}.children'],
    ],
  ];
  for (const [name, value, outputs] of parsed) {
    it(`parses ${name}`, () => {
      assert.deepEqual(parseDashOutputs(body(value)), { ok: true, outputs });
    });
  }

  const malformed: Array<[string, unknown]> = [
    ['not JSON', '{"output": "a.children"'],
    ['empty', ''],
    ['a JSON array', [{ output: 'a.children' }]],
    ['JSON null', 'null'],
    ['a JSON string', '"a.children"'],
    ['no output', { outputs: { id: 'a', property: 'children' } }],
    ['an empty output', { output: '' }],
    ['a non-string output', { output: ['a.children'] }],
    ['an empty name in a multi-output', { output: '..a.children......b.figure..' }],
    ['an outputs entry without property', { output: 'a.children', outputs: { id: 'payroll' } }],
    ['an outputs entry with a numeric id', { output: 'a.children', outputs: [{ id: 7, property: 'children' }] }],
    ['an outputs entry that is a string', { output: 'a.children', outputs: ['payroll.children'] }],
    ['an outputs entry that is null', { output: 'a.children', outputs: [null] }],
  ];
  for (const [name, value] of malformed) {
    it(`refuses a body with ${name}`, () => {
      assert.equal(parseDashOutputs(body(value)).ok, false);
    });
  }

  const patterns: Array<[string, string[], string[]]> = [
    ['payroll.children', ['payroll.children'], ['payroll.data', 'payroll-summary.children', 'xpayroll.children', 'payroll.childrenX']],
    ['payroll', ['payroll.children', 'payroll.data'], ['payroll-summary.children', 'xpayroll.children', 'other.payroll', 'payrollchildren']],
    ['payroll.*', ['payroll.children', 'payroll.data'], ['payroll2.children', 'other.children']],
    ['report-*', ['report-1.figure', 'report-east.children'], ['reports.figure', 'my-report-1.figure']],
    ['*.figure', ['chart.figure', 'report-1.figure'], ['chart.data']],
    ['*', ['anything.children', '{"index":1,"type":"graph"}.figure'], []],
    ['a+b.children', ['a+b.children'], ['aab.children', 'ab.children']],
    ['{"index":1,"type":"graph"}.figure', ['{"index":1,"type":"graph"}.figure'], ['{"index":2,"type":"graph"}.figure']],
  ];
  for (const [pattern, matching, other] of patterns) {
    it(`output pattern ${pattern} matches ${matching.join(', ')}${other.length > 0 ? ` and not ${other.join(', ')}` : ''}`, () => {
      const matches = compileOutputPattern(pattern);
      for (const output of matching) assert.ok(matches(output), `${pattern} should match ${output}`);
      for (const output of other) assert.ok(!matches(output), `${pattern} should not match ${output}`);
    });
  }
});
