// Bearer JWT validation at the resource-server role (security cases 42–72): forged, mistyped, misaddressed and
// misplaced tokens never reach the app, while valid tokens from a forging OP and from a real oidc-provider do.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createPrivateKey, KeyObject, randomBytes, X509Certificate, type webcrypto } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { deflateRawSync } from 'node:zlib';
import { CompactEncrypt, CompactSign, createRemoteJWKSet, exportJWK, FlattenedSign, generateKeyPair, jwtVerify, type CryptoKey } from 'jose';
import { ConfigError, parseConfig } from '../src/config/load.js';
import { eventually, startGateway, type RunningGateway } from './support/gateway.js';
import { startHostileOp, type HostileOp } from './support/hostile-op.js';
import { rawRequest } from './support/raw-http.js';
import { startTestOp, type TestOp } from './support/test-op.js';
import { startUpstream, type RecordedRequest, type Upstream } from './support/upstream.js';

const LEEWAY = 5;

let op: HostileOp;
let upstream: Upstream;
/** Trusts `op` with the default algorithm allowlist, no require_typ and a 5 s leeway. */
let gw: RunningGateway;
let attacker: { publicKey: CryptoKey; privateKey: CryptoKey };

const nowSeconds = (): number => Math.floor(Date.now() / 1000);
const b64json = (value: unknown): string => Buffer.from(JSON.stringify(value)).toString('base64url');
const asKeyObject = (key: CryptoKey | KeyObject): KeyObject => (key instanceof KeyObject ? key : KeyObject.from(key as webcrypto.CryptoKey));

function trust(idp: HostileOp, extra: Record<string, unknown> = {}): Record<string, unknown> {
  return { issuer: idp.issuer, audiences: [idp.audience], leeway_seconds: LEEWAY, jwks_refetch_cooldown_seconds: 30, ...extra };
}

/** Starts a gateway for the sales app trusting `issuers` and waits until their keys are loaded. */
async function startReady(...issuers: Array<Record<string, unknown>>): Promise<RunningGateway> {
  const gateway = await startGateway({
    issuers,
    apps: [{ name: 'sales', prefix: '/sales/', upstream: upstream.url, allow: { roles: ['analyst', 'admin'] } }],
  });
  await eventually(async () => (await gateway.fetch('/readyz')).status === 200);
  return gateway;
}

/** A config object as a user would write it, for schema checks that need no running servers. */
function configWithIssuer(extra: Record<string, unknown>): Record<string, unknown> {
  return {
    public_url: 'http://127.0.0.1:4180',
    issuers: [{ issuer: 'http://127.0.0.1:4000', audiences: ['http://127.0.0.1:4180'], ...extra }],
    apps: [{ name: 'sales', prefix: '/sales/', upstream: 'http://127.0.0.1:8050', allow: { roles: ['analyst'] } }],
  };
}

function assertConfigRefused(raw: Record<string, unknown>, field: string): void {
  assert.throws(() => parseConfig(raw), (error: unknown) => {
    assert.ok(error instanceof ConfigError, String(error));
    assert.ok(error.problems.some((problem) => problem.startsWith(`${field}:`)), `expected a problem naming ${field}: ${error.message}`);
    return true;
  });
}

/** Sends `token` to /sales/ and asserts 401 invalid_token (with `reason` when given) and that the app saw nothing. */
async function assertRefused(gateway: RunningGateway, token: string, label: string, reason?: string): Promise<void> {
  const seen = upstream.requests.length;
  const response = await gateway.fetch('/sales/', { token });
  const body = await response.json() as { error?: string };
  assert.equal(response.status, 401, `${label}: got ${response.status} ${body.error}`);
  assert.match(response.headers.get('www-authenticate') ?? '', /error="invalid_token"/, label);
  if (reason !== undefined) assert.equal(body.error, reason, label);
  assert.equal(upstream.requests.length, seen, `${label}: nothing reaches the app`);
}

/** Sends `token` to /sales/, asserts 200 and returns the request the app received. */
async function assertAccepted(gateway: RunningGateway, token: string, label: string): Promise<RecordedRequest> {
  const seen = upstream.requests.length;
  const response = await gateway.fetch('/sales/', { token });
  assert.equal(response.status, 200, `${label}: got ${response.status} ${await response.text()}`);
  assert.equal(upstream.requests.length, seen + 1, label);
  return upstream.last() as RecordedRequest;
}

/** Case 11's corruption: every signature byte XORed with 0x5A. */
function corruptSignature(token: string): string {
  const [header, payload, signature = ''] = token.split('.');
  return `${header}.${payload}.${Buffer.from(Buffer.from(signature, 'base64url').map((byte) => byte ^ 0x5a)).toString('base64url')}`;
}

/** A self-signed attacker certificate (for x5c) and its private key. */
function attackerCertificate(): { key: KeyObject; x5c: string } {
  const pem = execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', '-', '-subj', '/CN=attacker.example', '-days', '1'], {
    encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'],
  });
  return { key: createPrivateKey(pem), x5c: new X509Certificate(pem).raw.toString('base64') };
}

before(async () => {
  [op, upstream, attacker] = await Promise.all([startHostileOp(), startUpstream(), generateKeyPair('RS256', { extractable: true })]);
  gw = await startReady(trust(op));
});

after(async () => {
  await gw.close();
  await upstream.close();
  await op.close();
});

describe('valid tokens and what the app receives', () => {
  it('RS256, PS256, ES256 and EdDSA tokens reach the app as their subject, with a verifiable assertion', async () => {
    const gatewayKeys = createRemoteJWKSet(new URL(`${gw.url}/_embedgate/jwks.json`));
    for (const alg of ['RS256', 'PS256', 'ES256', 'EdDSA']) {
      const sub = `user-${alg}`;
      const received = await assertAccepted(gw, await op.sign(op.claims({ sub, roles: ['analyst'] }), { alg }), alg);
      assert.equal(received.headers['x-forwarded-user'], sub);
      assert.equal(received.headers['x-forwarded-groups'], 'analyst');
      assert.equal(received.headers.authorization, undefined, 'the bearer token itself is not forwarded');
      const { payload } = await jwtVerify(String(received.headers['x-embedgate-assertion']), gatewayKeys, {
        issuer: gw.gateway.config.public_url,
        audience: 'sales',
      });
      assert.equal(payload.sub, sub);
      assert.deepEqual(payload.roles, ['analyst']);
    }
  });

  it('a repeated token is served from the verified cache, which vouches for that exact token only', async () => {
    const token = await op.sign(op.claims({ sub: 'cached-user' }));
    const first = await assertAccepted(gw, token, 'first use');
    const second = await assertAccepted(gw, token, 'repeated use');
    assert.equal(second.headers['x-forwarded-user'], 'cached-user');
    assert.equal(second.headers['x-embedgate-assertion'], first.headers['x-embedgate-assertion'], 'the cached identity (and its assertion) is reused');
    await assertRefused(gw, corruptSignature(token), 'the cached claims under a corrupted signature', 'invalid_signature');
    const [header, payload, signature] = token.split('.');
    await assertRefused(gw, `${header}.${payload}.`, 'the cached claims without a signature');
    // The cache finds entries by the token's last characters: the cached signature under other claims is not a hit.
    const [, adminPayload] = (await op.sign(op.claims({ sub: 'cached-user', roles: ['admin'] }))).split('.');
    await assertRefused(gw, `${header}.${adminPayload}.${signature}`, 'the cached signature under an admin\'s claims', 'invalid_signature');
    await assertRefused(gw, `x${header}.${payload}.${signature}`, 'the cached token with one character more in front');
    const again = await assertAccepted(gw, token, 'the cached token after the look-alikes');
    assert.equal(again.headers['x-embedgate-assertion'], first.headers['x-embedgate-assertion'], 'its verdict is still the cached one');
  });
});

describe('42–53: forged signatures, algorithm confusion and key-reference headers', () => {
  let rs256Only: RunningGateway;
  before(async () => {
    rs256Only = await startReady(trust(op, { algorithms: ['RS256'] }));
  });
  after(() => rs256Only.close());

  it('42: alg none in any spelling → 401', async () => {
    for (const alg of ['none', 'None', 'NONE', 'nOnE']) {
      await assertRefused(gw, op.unsigned({ alg, typ: 'JWT' }, op.claims()), `alg ${alg}, empty signature`);
      await assertRefused(gw, op.unsigned({ alg, kid: op.keys.rsa.kid }, op.claims(), 'c2ln'), `alg ${alg}, junk signature`, 'algorithm_not_allowed');
    }
  });

  it('43, 44: HS256 MACed with the IdP public key in any encoding → 401', async () => {
    const jwk = op.keys.rsa.publicJwk;
    const secrets: Array<[string, string | Uint8Array]> = [
      ['SPKI PEM', op.publicPem],
      ['SPKI PEM without the trailing newline', op.publicPem.trimEnd()],
      ['PKCS#1 PEM', op.publicPkcs1Pem],
      ['PEM with leading whitespace', ` \n\t${op.publicPem}`],
      ['PEM with a non-whitespace prefix', `x${op.publicPem}`],
      ['SPKI DER', op.publicDer],
      ['the JWK as JSON', JSON.stringify(jwk)],
      ['the JWK without alg as JSON', JSON.stringify({ ...jwk, alg: undefined })],
      ['the JWKS as JSON', JSON.stringify({ keys: [jwk] })],
    ];
    for (const [label, secret] of secrets) {
      await assertRefused(gw, op.hmac({ kid: op.keys.rsa.kid }, op.claims(), secret), `${label}, real kid`, 'algorithm_not_allowed');
      await assertRefused(gw, op.hmac({ typ: 'JWT' }, op.claims(), secret), `${label}, no kid`, 'algorithm_not_allowed');
    }
  });

  it('45: RS384, RS512 and PS256 from the real RSA key, and ES256, → 401 where only RS256 is allowed', async () => {
    const rsa = asKeyObject(op.keys.rsa.privateKey);
    const genuinePs256 = await op.sign(op.claims(), { alg: 'PS256' });
    await assertAccepted(gw, genuinePs256, 'PS256 where it is allowed');
    const tokens: Array<[string, string]> = [
      ['RS384', await op.sign(op.claims(), { alg: 'RS384', key: rsa, kid: op.keys.rsa.kid })],
      ['RS512', await op.sign(op.claims(), { alg: 'RS512', key: rsa, kid: op.keys.rsa.kid })],
      ['PS256 with the RS256 key', await op.sign(op.claims(), { alg: 'PS256', key: rsa, kid: op.keys.rsa.kid })],
      ['PS256 with the PS256 key', genuinePs256],
      ['ES256', await op.sign(op.claims(), { alg: 'ES256' })],
    ];
    for (const [label, token] of tokens) await assertRefused(rs256Only, token, label, 'algorithm_not_allowed');
  });

  it('47: empty, missing or corrupted signature → 401', async () => {
    const token = await op.sign(op.claims());
    const [header, payload, signature = ''] = token.split('.');
    const forged: Array<[string, string, string]> = [
      ['empty third segment', `${header}.${payload}.`, 'malformed_token'],
      ['two segments', `${header}.${payload}`, 'malformed_token'],
      ['signature bytes XOR 0x5A', corruptSignature(token), 'invalid_signature'],
      ['signature characters sorted', `${header}.${payload}.${[...signature].sort().join('')}`, 'invalid_signature'],
      ['signed by an unpublished key under a published kid', await op.sign(op.claims(), { key: 'rsa2', kid: op.keys.rsa.kid }), 'invalid_signature'],
      // A lenient base64 decoder drops such a last character: the token would be a second spelling of a valid one.
      ['a signature one character past a multiple of 4', `${token}AAA`, 'malformed_token'],
    ];
    for (const [label, value, reason] of forged) await assertRefused(gw, value, label, reason);
  });

  it('claims that are not UTF-8, even signed with the real key → 401', async () => {
    const payload = Buffer.concat([Buffer.from(JSON.stringify(op.claims()).replace(/}$/, ',"name":"')), Buffer.from([0xff, 0xfe]), Buffer.from('"}')]);
    const token = await new CompactSign(payload).setProtectedHeader({ alg: 'RS256', kid: op.keys.rsa.kid }).sign(op.keys.rsa.privateKey);
    await assertRefused(gw, token, 'payload with invalid UTF-8', 'malformed_token');
  });

  it('48: a compact JWE where a JWS is expected → 401', async () => {
    const claims = new TextEncoder().encode(JSON.stringify(op.claims()));
    const jwes: Array<[string, string]> = [
      ['dir + A256GCM', await new CompactEncrypt(claims).setProtectedHeader({ alg: 'dir', enc: 'A256GCM' }).encrypt(randomBytes(32))],
      ['RSA-OAEP-256 to the IdP public key', await new CompactEncrypt(claims)
        .setProtectedHeader({ alg: 'RSA-OAEP-256', enc: 'A128CBC-HS256', kid: op.keys.rsa.kid })
        .encrypt(asKeyObject(op.keys.rsa.publicKey))],
    ];
    for (const [label, jwe] of jwes) await assertRefused(gw, jwe, label, 'unsupported_token_format');
  });

  it('49: signed by the attacker with its public key embedded as "jwk" → 401', async () => {
    const jwk = await exportJWK(attacker.publicKey);
    for (const kid of [undefined, op.keys.rsa.kid]) {
      const token = await op.sign(op.claims(), { key: attacker.privateKey, kid, header: { jwk } });
      await assertRefused(gw, token, `embedded jwk, kid ${kid}`, 'untrusted_key_reference');
    }
  });

  it('50, 51: jku, x5u and x5c headers → 401, and nothing is fetched from them', async () => {
    const certificate = attackerCertificate();
    const cases: Array<[string, Record<string, unknown>, CryptoKey | KeyObject]> = [
      ['jku', { jku: `${op.url}/attacker/jwks.json` }, attacker.privateKey],
      ['jku with the real kid', { jku: `${op.url}/attacker/jwks.json`, kid: op.keys.rsa.kid }, attacker.privateKey],
      ['x5u', { x5u: `${op.url}/attacker/cert.pem` }, attacker.privateKey],
      ['x5c with a self-signed chain', { x5c: [certificate.x5c] }, certificate.key],
    ];
    for (const [label, header, key] of cases) {
      await assertRefused(gw, await op.sign(op.claims(), { key, header }), label, 'untrusted_key_reference');
    }
    assert.deepEqual(op.requests.filter((request) => request.path.startsWith('/attacker/')), [], 'no request to the jku/x5u URLs');
  });

  it('52: kid injection values → 401, with no lookup by the raw value and no log injection', async () => {
    const forgedLogLine = '{"level":50,"msg":"forged-by-kid"}';
    const kids: unknown[] = [
      '../../../../dev/null', '/dev/null', "' OR '1'='1", '*)(uid=*', { $ne: null }, 'k'.repeat(1024), 'k'.repeat(10 * 1024),
      `x\r\n${forgedLogLine}`, `x\n${forgedLogLine}`,
    ];
    for (const kid of kids) {
      const label = `kid ${JSON.stringify(kid).slice(0, 40)}`;
      await assertRefused(gw, op.hmac({ kid }, op.claims(), ''), `${label}, HS256 with an empty secret`);
      await assertRefused(gw, await op.sign(op.claims(), { header: { kid } }), `${label}, RS256 with the real key`);
    }
    assert.ok(gw.logs.every((line) => !line.includes('forged-by-kid') && !line.includes('\r')), 'no kid value reaches the logs');
    assert.doesNotThrow(() => gw.logs.forEach((line) => JSON.parse(line)), 'every log line is still one JSON record');
    const fetched = new Set(op.requests.map((request) => request.path));
    assert.deepEqual([...fetched].sort(), ['/.well-known/openid-configuration', '/jwks'], 'the IdP only ever saw discovery and JWKS requests');
  });

  it('53: HS256 with an unknown kid MACed with an empty secret → 401', async () => {
    await assertRefused(gw, op.hmac({ kid: 'unknown-key' }, op.claims(), ''), 'HS256, kid unknown-key', 'algorithm_not_allowed');
  });
});

describe('54–56: only access tokens are accepted', () => {
  let typed: RunningGateway;
  before(async () => {
    typed = await startReady(trust(op, { require_typ: 'at+jwt' }));
  });
  after(() => typed.close());

  it('54: with require_typ at+jwt, typ absent, JWT or JOSE → 401; at+jwt in any spelling → 200', async () => {
    for (const typ of [undefined, 'JWT', 'JOSE', 'application/jwt']) {
      await assertRefused(typed, await op.sign(op.claims(), { typ }), `typ ${typ}`, 'invalid_token_type');
    }
    for (const typ of ['at+jwt', 'application/at+jwt', 'AT+JWT']) await assertAccepted(typed, await op.sign(op.claims(), { typ }), `typ ${typ}`);
  });

  it('54: without require_typ, typ JWT or no typ is accepted', async () => {
    for (const typ of ['JWT', undefined]) await assertAccepted(gw, await op.sign(op.claims(), { typ }), `typ ${typ}`);
  });

  it('55: an ID token (aud = a client id, nonce, typ JWT) used as a bearer token → 401', async () => {
    const idToken = await op.sign(op.claims({ aud: 'portal', azp: 'portal', nonce: 'n-0S6_WzA2Mj', auth_time: nowSeconds() }), { typ: 'JWT' });
    await assertRefused(gw, idToken, 'ID token', 'invalid_audience');
    await assertRefused(typed, idToken, 'ID token where at+jwt is required');
  });

  it('56: logout tokens and other JWT kinds → 401', async () => {
    const events = { 'http://schemas.openid.net/event/backchannel-logout': {} };
    const kinds: Array<[string, Record<string, unknown>, string | undefined]> = [
      ['logout token', { events, sid: 'sid-1', jti: 'jti-1' }, 'logout+jwt'],
      ['events claim without typ', { events }, undefined],
      ['typ logout+jwt without events', {}, 'logout+jwt'],
      ['typ application/logout+jwt', {}, 'application/logout+jwt'],
      ['security event token', { events: { 'https://schemas.example.com/event': {} } }, 'secevent+jwt'],
      ['typ id_token+jwt', { nonce: 'n-1' }, 'id_token+jwt'],
    ];
    for (const [label, claims, typ] of kinds) {
      await assertRefused(gw, await op.sign(op.claims(claims), { typ }), label, 'invalid_token_type');
    }
  });
});

describe('57, 59, 60, 62: audience and issuer binding', () => {
  const REPORTS = 'https://reports.example.com';
  let opB: HostileOp;
  let reports: RunningGateway;
  let slashIssuer: RunningGateway;
  let multi: RunningGateway;
  before(async () => {
    opB = await startHostileOp();
    [reports, slashIssuer, multi] = await Promise.all([
      startReady(trust(op, { audiences: [REPORTS] })),
      startReady({ issuer: `${op.issuer}/`, jwks_uri: `${op.url}/jwks`, audiences: [op.audience] }),
      startReady(trust(op), trust(opB)),
    ]);
  });
  after(async () => {
    await Promise.all([reports.close(), slashIssuer.close(), multi.close()]);
    await opB.close();
  });

  it('57: aud missing or wrong → 401', async () => {
    for (const aud of [undefined, '', `${op.audience}/`, 'http://127.0.0.1:41800', 'https://example.com/', REPORTS]) {
      await assertRefused(gw, await op.sign(op.claims({ aud })), `aud ${JSON.stringify(aud)}`, 'invalid_audience');
    }
  });

  it('59: an aud array containing the gateway → 200 here, and 401 at a gateway with another audience', async () => {
    const token = await op.sign(op.claims({ aud: [op.audience, 'https://other.example.com'] }));
    await assertAccepted(gw, token, 'aud array naming this gateway');
    await assertRefused(reports, token, 'the same token at another resource server', 'invalid_audience');
    await assertAccepted(reports, await op.sign(op.claims({ aud: [REPORTS, 'https://other.example.com'] })), 'a token meant for the other server');
  });

  it('59: CVE-2020-26160 — the array form of aud is checked too', async () => {
    for (const aud of [['https://other.example.com', REPORTS], [], [[op.audience]], [` ${op.audience}`], [`${op.audience}/`], [null]]) {
      await assertRefused(gw, await op.sign(op.claims({ aud })), `aud ${JSON.stringify(aud)}`, 'invalid_audience');
    }
  });

  it('60: iss lookalikes → 401', async () => {
    const rest = op.issuer.slice('http://'.length);
    const lookalikes = [
      `${op.issuer}/`, `${op.issuer}1`, `HTTP://${rest}`, `https://${rest}`, op.issuer.replace('127.0.0.1', 'localhost'),
      ` ${op.issuer}`, `${op.issuer}/.`, undefined,
    ];
    for (const iss of lookalikes) await assertRefused(gw, await op.sign(op.claims({ iss })), `iss ${JSON.stringify(iss)}`, 'unknown_issuer');
  });

  it('60: an issuer configured with a trailing slash accepts that exact iss only', async () => {
    await assertAccepted(slashIssuer, await op.sign(op.claims({ iss: `${op.issuer}/` })), 'iss with the trailing slash');
    await assertRefused(slashIssuer, await op.sign(op.claims()), 'iss without the trailing slash', 'unknown_issuer');
  });

  it("62: a token signed with IdP A's key but naming IdP B as iss → 401", async () => {
    await assertAccepted(multi, await op.sign(op.claims()), 'A signs as A');
    await assertAccepted(multi, await opB.sign(opB.claims()), 'B signs as B');
    // Both IdPs publish kids named rsa-1 and ec-1, so only binding keys to issuers tells the tokens apart.
    const crossed: Array<[string, string]> = [
      ["A's RSA key and kid, iss B", await op.sign(opB.claims())],
      ["A's RSA key without kid, iss B", await op.sign(opB.claims(), { kid: null })],
      ["B's EC key, iss A", await opB.sign(op.claims(), { alg: 'ES256' })],
    ];
    for (const [label, token] of crossed) await assertRefused(multi, token, label, 'invalid_signature');
  });
});

describe('63: time claims', () => {
  let noLeeway: RunningGateway;
  before(async () => {
    noLeeway = await startReady(trust(op, { leeway_seconds: 0 }));
  });
  after(() => noLeeway.close());

  it('63: expired, missing, non-numeric or out-of-range time claims → 401', async () => {
    const now = nowSeconds();
    const cases: Array<[string, Record<string, unknown>, string]> = [
      ['exp = now − (leeway + 1 s)', { exp: now - LEEWAY - 1 }, 'token_expired'],
      ['exp missing', { exp: undefined }, 'missing_claim'],
      ['exp as a string', { exp: '9999999999' }, 'invalid_time_claim'],
      ['exp = -1', { exp: -1 }, 'invalid_time_claim'],
      ['exp = null', { exp: null }, 'invalid_time_claim'],
      ['exp in milliseconds', { exp: (now + 300) * 1000 }, 'invalid_time_claim'],
      ['nbf = now + 10 min', { nbf: now + 600 }, 'token_not_yet_valid'],
      ['nbf as a string', { nbf: String(now) }, 'invalid_time_claim'],
      ['iat = now + 1 day', { iat: now + 86400 }, 'invalid_time_claim'],
    ];
    for (const [label, claims, reason] of cases) await assertRefused(gw, await op.sign(op.claims(claims)), label, reason);

    // JSON.stringify cannot write 1e309, so this payload is written by hand and signed with the real key.
    const payload = JSON.stringify(op.claims({ exp: undefined })).replace(/}$/, ',"exp":1e309}');
    const infinite = await new CompactSign(new TextEncoder().encode(payload))
      .setProtectedHeader({ alg: 'RS256', kid: op.keys.rsa.kid }).sign(op.keys.rsa.privateKey);
    await assertRefused(gw, infinite, 'exp = 1e309', 'invalid_time_claim');
  });

  it('63: within the leeway, a just-passed exp and a just-future nbf or iat → 200', async () => {
    const now = nowSeconds();
    for (const [label, claims] of [['exp', { exp: now - LEEWAY + 2 }], ['nbf', { nbf: now + LEEWAY - 2 }], ['iat', { iat: now + LEEWAY - 2 }]] as const) {
      await assertAccepted(gw, await op.sign(op.claims(claims)), `${label} off by leeway − 2 s`);
    }
  });

  it('63: a cached token stops working at its exp', async () => {
    const token = await op.sign(op.claims({ exp: nowSeconds() + 1 }));
    await assertAccepted(noLeeway, token, 'before exp');
    await eventually(async () => (await noLeeway.fetch('/sales/', { token })).status === 401, 3000);
    await assertRefused(noLeeway, token, 'after exp', 'token_expired');
  });

  it('63: a leeway above 300 s is refused by the config schema', () => {
    assertConfigRefused(configWithIssuer({ leeway_seconds: 301 }), 'issuers[0].leeway_seconds');
  });
});

describe('66, 69: crit and JWE denial of service', () => {
  it('66: crit naming exp, b64 with b64:false, or an unknown extension → 401', async () => {
    // RFC 7797 over the base64url claims: the signing input equals an ordinary JWS's, so only b64 handling differs.
    const encodedClaims = b64json(op.claims());
    const unencoded = await new FlattenedSign(new TextEncoder().encode(encodedClaims))
      .setProtectedHeader({ alg: 'RS256', kid: op.keys.rsa.kid, b64: false, crit: ['b64'] }).sign(op.keys.rsa.privateKey);
    const tokens: Array<[string, string]> = [
      ['crit ["exp"]', await op.sign(op.claims(), { header: { crit: ['exp'], exp: nowSeconds() + 300 } })],
      ['crit ["b64"] with b64 false', `${unencoded.protected}.${encodedClaims}.${unencoded.signature}`],
      ['crit naming an unknown extension', await op.sign(op.claims(), { header: { crit: ['x-unknown'], 'x-unknown': true } })],
    ];
    for (const [label, token] of tokens) await assertRefused(gw, token, label);
  });

  it('69: PBES2 with p2c 2^31−1 and zip:"DEF" bombs are refused at once', async () => {
    const junk = (bytes: number): string => randomBytes(bytes).toString('base64url');
    const bomb = (megabytes: number): string => [
      b64json({ alg: 'dir', enc: 'A128GCM', zip: 'DEF' }), '', junk(12),
      deflateRawSync(Buffer.alloc(megabytes * 1024 * 1024)).toString('base64url'), junk(16),
    ].join('.');
    const pbes2Header = { alg: 'PBES2-HS256+A128KW', enc: 'A128GCM', p2c: 2147483647, p2s: junk(16) };
    const tokens: Array<[string, string]> = [
      ['PBES2 JWE', [b64json(pbes2Header), junk(24), junk(12), junk(64), junk(16)].join('.')],
      ['PBES2 alg on a JWS', `${b64json(pbes2Header)}.${b64json(op.claims())}.${junk(32)}`],
      ['zip bomb under the size cap', bomb(4)],
      ['zip bomb over the size cap', bomb(8)],
    ];
    for (const [label, token] of tokens) {
      const started = performance.now();
      await assertRefused(gw, token, label);
      assert.ok(performance.now() - started < 1000, `${label} is refused without key derivation or inflation`);
    }
  });
});

describe('70, 71: where the token is read from', () => {
  it('70: a valid token in the query string or a form body is not accepted, and never logged', async () => {
    const token = await op.sign(op.claims({ sub: 'placement-user' }));
    const signature = token.split('.')[2] as string;
    const seen = upstream.requests.length;
    const form = { 'content-type': 'application/x-www-form-urlencoded' };
    const query = await gw.fetch(`/sales/?access_token=${token}`);
    const post = await gw.fetch('/sales/', { method: 'POST', headers: form, body: `access_token=${token}` });
    const getWithBody = await rawRequest(gw.url, '/sales/', ['Content-Type: application/x-www-form-urlencoded'], 'GET', `access_token=${token}`);
    const outcomes: Array<[string, number, string]> = [
      ['query string', query.status, await query.text()],
      ['POST form field', post.status, await post.text()],
      ['GET form field', getWithBody.status, getWithBody.body],
    ];
    for (const [label, status, body] of outcomes) {
      assert.equal(status, 401, label);
      assert.equal((JSON.parse(body) as { error: string }).error, 'missing_token', label);
      assert.ok(!body.includes(signature), `${label}: the error body does not echo the token`);
    }
    assert.equal(upstream.requests.length, seen, 'nothing reaches the app');
    await assertAccepted(gw, token, 'the same token in the Authorization header');
    assert.ok(!gw.logs.some((line) => line.includes(signature)), 'the token is never logged');
  });

  it('71: the Bearer scheme is case-insensitive', async () => {
    const token = await op.sign(op.claims());
    for (const scheme of ['bearer', 'BEARER', 'bEaReR']) {
      const response = await gw.fetch('/sales/', { headers: { authorization: `${scheme} ${token}` } });
      assert.equal(response.status, 200, scheme);
    }
  });

  it('71: two Authorization headers, two tokens in one, or an empty token → 400, every time', async () => {
    const [one, two] = await Promise.all([op.sign(op.claims()), op.sign(op.claims({ sub: 'user-2' }))]);
    const cases: Array<[string, string[], string]> = [
      ['two Authorization headers', [`Authorization: Bearer ${one}`, `Authorization: Bearer ${two}`], 'duplicate_header'],
      ['the same header twice', [`Authorization: Bearer ${one}`, `authorization: Bearer ${one}`], 'duplicate_header'],
      ['"Bearer a,Bearer b"', [`Authorization: Bearer ${one},Bearer ${two}`], 'invalid_request'],
      ['"Bearer a, b"', [`Authorization: Bearer ${one}, ${two}`], 'invalid_request'],
      ['"Bearer " with an empty token', ['Authorization: Bearer '], 'invalid_request'],
      ['"Bearer" alone', ['Authorization: Bearer'], 'invalid_request'],
    ];
    const seen = upstream.requests.length;
    for (const [label, headers, reason] of cases) {
      for (let attempt = 0; attempt < 3; attempt += 1) {
        const response = await rawRequest(gw.url, '/sales/', headers);
        assert.equal(response.status, 400, label);
        assert.equal((JSON.parse(response.body) as { error: string }).error, reason, label);
      }
    }
    assert.equal(upstream.requests.length, seen, 'nothing reaches the app');
  });
});

describe('72: verification keys cannot be misconfigured', () => {
  it('72: HMAC or "none" in an issuer allowlist is refused by the config schema, naming the field', () => {
    const cases: Array<[string[], string]> = [
      [['HS256'], 'issuers[0].algorithms[0]'],
      [['RS256', 'HS512'], 'issuers[0].algorithms[1]'],
      [['none'], 'issuers[0].algorithms[0]'],
    ];
    for (const [algorithms, field] of cases) assertConfigRefused(configWithIssuer({ algorithms }), field);
  });
});

describe('tokens from a real OpenID provider (oidc-provider, client credentials)', () => {
  const RESOURCE = 'https://sales-api.example.com';
  let idp: TestOp;
  let real: RunningGateway;
  let otherResource: RunningGateway;
  before(async () => {
    idp = await startTestOp({
      resource: RESOURCE,
      clients: [
        { client_id: 'reporting-job', client_secret: 'reporting-secret', claims: { roles: ['analyst'] } },
        { client_id: 'viewer-job', client_secret: 'viewer-secret', claims: { roles: ['viewer'] } },
      ],
    });
    [real, otherResource] = await Promise.all([
      startReady({ issuer: idp.issuer, audiences: [RESOURCE], require_typ: 'at+jwt' }),
      startReady({ issuer: idp.issuer, audiences: ['https://hr-api.example.com'] }),
    ]);
  });
  after(async () => {
    await Promise.all([real.close(), otherResource.close()]);
    await idp.close();
  });

  it('an analyst client-credentials token → 200, as that client', async () => {
    const received = await assertAccepted(real, await idp.token('reporting-job'), 'analyst token');
    assert.equal(received.headers['x-forwarded-user'], 'reporting-job');
    assert.equal(received.headers['x-forwarded-groups'], 'analyst');
  });

  it('a token without an allowed role → 403', async () => {
    const seen = upstream.requests.length;
    const response = await real.fetch('/sales/', { token: await idp.token('viewer-job') });
    assert.equal(response.status, 403);
    assert.equal(upstream.requests.length, seen);
  });

  it('a token issued for another resource → 401', async () => {
    await assertRefused(otherResource, await idp.token('reporting-job'), 'token for the sales API at the HR gateway', 'invalid_audience');
  });
});
