// The "nginx in front" recipe of docs/operations.md, run as written there with a real nginx over HTTPS, the real
// gateway and a recording app: auth_request for an app without callback rules, proxy mode for a Dash app with them,
// WebSockets both ways, and the gateway's own routes. Only the addresses and the certificate paths are changed.
import assert from 'node:assert/strict';
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { accessSync, constants, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { request as httpRequest, type IncomingHttpHeaders } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { tmpdir, userInfo } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { createLocalJWKSet, jwtVerify } from 'jose';
import WebSocket from 'ws';
import { startGateway, type RunningGateway } from './support/gateway.js';
import { startHostileOp, type HostileOp } from './support/hostile-op.js';
import { freePort } from './support/idp.js';
import { APP_PAGE, startUpstream, type Upstream } from './support/upstream.js';

/** The same path, and override, as scripts/test-prerequisites.ts checks. */
const NGINX = process.env.EMBEDGATE_NGINX ?? '/usr/sbin/nginx';
const DOC = new URL('../../../docs/operations.md', import.meta.url);
const BEGIN = '<!-- nginx-front recipe: begin -->';
const END = '<!-- nginx-front recipe: end -->';

function installed(path: string): boolean {
  try {
    accessSync(path, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

// npm test installs nginx (scripts/test-prerequisites.ts); in CI a missing nginx is a failure, not a skip.
const skip = !installed(NGINX) && process.env.CI === undefined
  ? `nginx is not installed at ${NGINX} (apt-get install nginx, or set EMBEDGATE_NGINX; npm test installs it)`
  : false;

/** The nginx block between the recipe's markers in docs/operations.md, exactly as the docs show it. */
function recipeFromDocs(): string {
  const doc = readFileSync(DOC, 'utf8');
  const start = doc.indexOf(BEGIN);
  const end = doc.indexOf(END);
  assert.ok(start >= 0 && end > start, `docs/operations.md has the recipe between "${BEGIN}" and "${END}"`);
  const fenced = /^```nginx\n([\s\S]*?)^```$/m.exec(doc.slice(start + BEGIN.length, end));
  assert.ok(fenced !== null, 'the recipe is one ```nginx block');
  return fenced[1] as string;
}

/** Replaces `from` by `to`, which must occur exactly once: a change to the docs that the test does not follow fails. */
function replaceOnce(text: string, from: string, to: string): string {
  const parts = text.split(from);
  assert.equal(parts.length, 2, `the recipe has "${from}" exactly once`);
  return parts.join(to);
}

interface Ports { http: number; https: number; gateway: number; app: number }

/** The recipe with this test's addresses and certificate, inside the nginx.conf around it (temp files in `dir`). */
function nginxConf(dir: string, ports: Ports): string {
  let recipe = recipeFromDocs();
  recipe = replaceOnce(recipe, 'listen 80;', `listen 127.0.0.1:${ports.http};`);
  recipe = replaceOnce(recipe, 'listen 443 ssl http2;', `listen 127.0.0.1:${ports.https} ssl http2;`);
  recipe = replaceOnce(recipe, 'server 127.0.0.1:8080;', `server 127.0.0.1:${ports.gateway};`);
  recipe = replaceOnce(recipe, 'server 127.0.0.1:8050;', `server 127.0.0.1:${ports.app};`);
  recipe = replaceOnce(recipe, '/etc/nginx/tls/apps.example.com.crt', join(dir, 'tls.crt'));
  recipe = replaceOnce(recipe, '/etc/nginx/tls/apps.example.com.key', join(dir, 'tls.key'));
  const temp = ['client_body', 'proxy', 'fastcgi', 'uwsgi', 'scgi'].map((name) => `  ${name}_temp_path ${join(dir, name)};`).join('\n');
  // `user` matters only when the tests run as root: the workers then run as root too and can read the 0700 temp dir.
  return `user ${userInfo().username};
worker_processes 1;
pid ${join(dir, 'nginx.pid')};
events { worker_connections 256; }
http {
  access_log ${join(dir, 'access.log')};
${temp}
${recipe}
}
`;
}

function tlsCertificate(dir: string): string {
  execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', join(dir, 'tls.key'), '-out', join(dir, 'tls.crt'),
    '-subj', '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1', '-days', '1'], { stdio: 'ignore' });
  return readFileSync(join(dir, 'tls.crt'), 'utf8');
}

/** nginx writes its pid file once its sockets listen (or exits if it cannot bind them, or the config is wrong). */
async function started(child: ChildProcess, prefix: string, log: string): Promise<void> {
  let spawnError: Error | undefined;
  child.once('error', (error) => {
    spawnError = error;
  });
  const logText = (): string => (existsSync(log) ? readFileSync(log, 'utf8') : '');
  const deadline = Date.now() + 10_000;
  while (!existsSync(join(prefix, 'nginx.pid'))) {
    if (spawnError !== undefined) throw new Error(`nginx could not be started (${NGINX}): ${spawnError.message}`);
    if (child.exitCode !== null) throw new Error(`nginx exited with ${child.exitCode}: ${logText()}`);
    if (Date.now() > deadline) throw new Error(`nginx did not start: ${logText()}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

interface Answer { status: number; headers: IncomingHttpHeaders; body: string }
interface Ask { method?: string; headers?: Record<string, string>; body?: string; token?: string }

let op: HostileOp;
let upstream: Upstream;
let gw: RunningGateway;
let nginx: ChildProcess;
let dir: string;
let ports: Ports;
let ca: string;
let origin: string;
let analyst: string;
let admin: string;
/** The last test stops the gateway. */
let closed = false;

/** One request to nginx over HTTPS (a fresh connection each time), trusting the test certificate. */
function ask(path: string, { method = 'GET', headers = {}, body, token }: Ask = {}): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = httpsRequest({
      host: '127.0.0.1', port: ports.https, path, method, ca, agent: false,
      headers: { ...headers, ...(token === undefined ? {} : { authorization: `Bearer ${token}` }), ...(body === undefined ? {} : { 'content-length': String(Buffer.byteLength(body)) }) },
    }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (chunk: Buffer) => chunks.push(chunk));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString('utf8') }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end(body);
  });
}

const errorOf = (answer: Answer): string => (JSON.parse(answer.body) as { error: string }).error;

/** Every value the app received for a header, as sent (not merged). */
function received(rawHeaders: readonly string[], name: string): string[] {
  const values: string[] = [];
  for (let i = 0; i < rawHeaders.length; i += 2) if ((rawHeaders[i] as string).toLowerCase() === name) values.push(rawHeaders[i + 1] as string);
  return values;
}

/** A WebSocket through nginx over TLS: the socket, or the status of the refused handshake. */
function openSocket(path: string, headers: Record<string, string>): Promise<{ ws: WebSocket } | { status: number }> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(`wss://127.0.0.1:${ports.https}${path}`, { headers, ca });
    ws.once('open', () => resolve({ ws }));
    ws.once('unexpected-response', (req, res) => {
      resolve({ status: res.statusCode ?? 0 });
      req.destroy();
    });
    ws.once('error', reject);
  });
}

async function echoThrough(path: string, token: string): Promise<string> {
  const opened = await openSocket(path, { authorization: `Bearer ${token}` });
  assert.ok('ws' in opened, `the WebSocket to ${path} opened (${JSON.stringify(opened)})`);
  const { ws } = opened;
  ws.send(`hello ${path}`);
  const [data] = (await once(ws, 'message')) as [Buffer];
  ws.close();
  await once(ws, 'close');
  return data.toString();
}

/** A Dash callback request body naming one output. */
function callbackBody(output: string): string {
  const dot = output.lastIndexOf('.');
  return JSON.stringify({ output, outputs: { id: output.slice(0, dot), property: output.slice(dot + 1) }, inputs: [{ id: 'picker', property: 'value', value: 1 }], changedPropIds: ['picker.value'] });
}

describe('nginx in front (docs/operations.md recipe): TLS, auth_request, proxy mode', { skip }, () => {
  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'embedgate-nginx-'));
    const prefix = join(dir, 'nginx');
    mkdirSync(prefix);
    ca = tlsCertificate(prefix);
    op = await startHostileOp();
    upstream = await startUpstream();
    ports = { http: await freePort(), https: await freePort(), gateway: 0, app: upstream.port };
    origin = `https://127.0.0.1:${ports.https}`;
    const allow = { roles: ['analyst', 'admin'] };
    gw = await startGateway({
      public_url: origin,
      trusted_proxies: ['127.0.0.1'],
      issuers: [{ issuer: op.issuer, audiences: [op.audience] }],
      embed: { allowed_origins: ['https://host.example'] },
      apps: [
        {
          name: 'reports', prefix: '/reports/', upstream: upstream.url, allow, public: ['/reports/public/**'],
          routes: [
            { paths: ['/reports/admin/**'], allow: { roles: ['admin'] } },
            { paths: ['/reports/data/**'], methods: ['POST', 'DELETE'], allow: { roles: ['admin'] } },
          ],
        },
        { name: 'sales', prefix: '/sales/', upstream: upstream.url, allow, dash: { callbacks: [{ output: 'payroll.children', allow: { roles: ['admin'] } }] } },
      ],
    }, 'info');
    ports.gateway = Number(new URL(gw.url).port);
    writeFileSync(join(prefix, 'nginx.conf'), nginxConf(prefix, ports));
    const log = join(prefix, 'error.log');
    nginx = spawn(NGINX, ['-p', prefix, '-c', join(prefix, 'nginx.conf'), '-e', log, '-g', 'daemon off;'], { stdio: 'ignore' });
    await started(nginx, prefix, log);
    analyst = await op.sign(op.claims({ email: 'alice@example.com', email_verified: true }));
    admin = await op.sign(op.claims({ sub: 'user-2', roles: ['admin'] }));
  });

  after(async () => {
    if (nginx?.pid !== undefined && nginx.exitCode === null) {
      const exited = once(nginx, 'exit');
      nginx.kill('SIGTERM');
      await exited;
    }
    if (!closed) await gw?.close();
    await upstream?.close();
    await op?.close();
    if (dir !== undefined) rmSync(dir, { recursive: true, force: true });
  });

  describe('an app behind auth_request (no callback rules): nginx proxies it, the gateway decides', () => {
    it('a valid token: 200 from the app, with the identity headers of the check replacing forged ones, and no token', async () => {
      upstream.clear();
      const answer = await ask('/reports/page?q=1', {
        token: analyst,
        headers: { 'x-forwarded-user': 'admin', 'x-forwarded-groups': 'admin', 'x-embedgate-assertion': 'forged', 'x-request-id': 'caller-id' },
      });
      assert.equal(answer.status, 200);
      assert.equal(answer.body, APP_PAGE);
      assert.equal(upstream.requests.length, 1, 'one request reached the app');
      const seen = upstream.last();
      assert.equal(seen?.url, '/reports/page?q=1', 'nginx passes the path and query as sent');
      const raw = seen?.rawHeaders ?? [];
      assert.deepEqual(received(raw, 'x-forwarded-user'), ['user-1'], 'the checked user, once; the forged one is gone');
      assert.deepEqual(received(raw, 'x-forwarded-email'), ['alice@example.com']);
      assert.deepEqual(received(raw, 'x-forwarded-groups'), ['analyst']);
      assert.deepEqual(received(raw, 'authorization'), [], 'the token is not passed to the app');
      assert.deepEqual(received(raw, 'x-forwarded-proto'), ['https']);
      assert.deepEqual(received(raw, 'x-forwarded-for'), ['127.0.0.1']);
      assert.match(received(raw, 'x-request-id')[0] ?? '', /^[0-9a-f]{32}$/, "nginx's request id, not the caller's");
      const metrics = await (await gw.fetch('/metrics')).text();
      assert.doesNotMatch(metrics, /^embedgate_requests_total\{[^}]*app="reports"[^}]*outcome="proxied"/m, 'nginx proxied it, not the gateway');

      // The assertion verifies with the gateway's JWKS, itself fetched through nginx.
      const [assertion] = received(raw, 'x-embedgate-assertion');
      assert.ok(assertion !== undefined && assertion !== 'forged');
      const jwks = await ask('/_embedgate/jwks.json');
      assert.equal(jwks.status, 200);
      const { payload } = await jwtVerify(assertion, createLocalJWKSet(JSON.parse(jwks.body) as never), {
        issuer: origin, audience: 'reports', typ: 'embedgate-assertion+jwt',
      });
      assert.equal(payload.sub, 'user-1');
    });

    it('401 with the gateway\'s JSON (and WWW-Authenticate) without a token or with a bad one; nothing reaches the app', async () => {
      upstream.clear();
      const expired = await op.sign(op.claims({ exp: Math.floor(Date.now() / 1000) - 600, iat: Math.floor(Date.now() / 1000) - 900 }));
      const cases: Array<[what: string, ask: Ask, error: RegExp]> = [
        ['no token', {}, /^missing_token$/],
        ['an expired token', { token: expired }, /^token_expired$/],
        ['a token signed by no one', { token: op.unsigned({ alg: 'RS256', kid: op.keys.rsa.kid }, op.claims(), 'c2ln') }, /^(invalid_signature|unknown_key)$/],
        ['a POST with a body, no token', { method: 'POST', body: '{"x":1}', headers: { 'content-type': 'application/json' } }, /^missing_token$/],
      ];
      for (const [what, request, error] of cases) {
        const logged = gw.logs.length;
        const answer = await ask('/reports/page', request);
        assert.equal(answer.status, 401, what);
        // The check and then the gateway's answer each write an audit line, under nginx's one request id.
        const audits = gw.logs.slice(logged).map((line) => JSON.parse(line) as { audit?: string; reqId?: string; status?: number })
          .filter((line) => line.audit === 'deny');
        assert.equal(audits.length, 2, what);
        assert.match(audits[0]?.reqId ?? '', /^[0-9a-f]{32}$/, what);
        assert.equal(audits[1]?.reqId, audits[0]?.reqId, what);
        assert.equal(answer.headers['content-type'], 'application/json', what);
        assert.match(errorOf(answer), error, what);
        assert.match(answer.headers['www-authenticate'] ?? '', /^Bearer realm="embedgate"/, what);
      }
      const page = await ask('/reports/page', { headers: { accept: 'text/html', 'sec-fetch-mode': 'navigate', 'sec-fetch-dest': 'document' } });
      assert.equal(page.status, 401);
      assert.match(page.headers['content-type'] ?? '', /^text\/html/, 'a navigation gets the gateway\'s HTML page');
      assert.match(page.body, /Sign-in required/);
      assert.equal(upstream.requests.length, 0, 'nothing reached the app');
    });

    it('403 for a role the app or the route does not allow, and for a method a route keeps to admins', async () => {
      upstream.clear();
      const viewer = await op.sign(op.claims({ roles: ['viewer'] }));
      const cases: Array<[what: string, path: string, ask: Ask]> = [
        ['a role the app does not allow', '/reports/page', { token: viewer }],
        ['an admin-only route', '/reports/admin/users', { token: analyst }],
        ['POST on a route whose POST is admin-only', '/reports/data/1', { token: analyst, method: 'POST', body: '{}' }],
        ['DELETE there', '/reports/data/1', { token: analyst, method: 'DELETE' }],
      ];
      for (const [what, path, request] of cases) {
        const answer = await ask(path, request);
        assert.equal(answer.status, 403, what);
        assert.equal(errorOf(answer), 'forbidden', what);
      }
      assert.equal(upstream.requests.length, 0, 'nothing reached the app');
      assert.equal((await ask('/reports/data/1', { token: analyst })).status, 200, 'GET on that route is for analysts too');
      assert.equal((await ask('/reports/admin/users', { token: admin })).status, 200);
      const post = await ask('/reports/data/1', { token: admin, method: 'POST', body: '{"a":1}' });
      assert.equal(post.status, 200);
      assert.deepEqual(upstream.requests.map((r) => `${r.method} ${r.url} ${r.body.length}`), ['GET /reports/data/1 0', 'GET /reports/admin/users 0', 'POST /reports/data/1 7'],
        'the allowed requests, with their bodies');
    });

    it('a public path needs no token, and names nobody to the app even when the client says who it is', async () => {
      upstream.clear();
      const answer = await ask('/reports/public/logo', { headers: { 'x-forwarded-user': 'admin', 'x-forwarded-groups': 'admin' } });
      assert.equal(answer.status, 200);
      const raw = upstream.last()?.rawHeaders ?? [];
      assert.deepEqual([...received(raw, 'x-forwarded-user'), ...received(raw, 'x-forwarded-groups')], []);
    });

    it('an encoded path that nginx and the gateway could read differently: the gateway\'s 400, not nginx\'s 500', async () => {
      upstream.clear();
      for (const path of ['/reports/public/..%2fadmin/users', '/reports/public/%2e%2e/admin/users']) {
        const answer = await ask(path, { token: analyst });
        // The check answers 400, which auth_request turns into 500; error_page hands the request to the gateway.
        assert.equal(answer.status, 400, path);
        assert.equal(errorOf(answer), 'ambiguous_path', path);
      }
      assert.equal(upstream.requests.length, 0, 'nothing reached the app');
    });

    it('an embed session cookie works, but a request that changes data must come from the gateway\'s origin', async () => {
      const session = await ask('/_embedgate/session', {
        method: 'POST', token: analyst, body: JSON.stringify({ path: '/reports/' }), headers: { origin, 'content-type': 'application/json' },
      });
      assert.equal(session.status, 200, session.body);
      const cookie = (session.headers['set-cookie'] ?? []).map((c) => c.split(';')[0] as string).find((c) => c.startsWith('__Host-embedgate='));
      assert.ok(cookie !== undefined, 'the session cookie is set through nginx');
      upstream.clear();
      assert.equal((await ask('/reports/page', { headers: { cookie } })).status, 200);
      assert.deepEqual(received(upstream.last()?.rawHeaders ?? [], 'x-forwarded-user'), ['user-1']);
      const crossSite = await ask('/reports/page', { method: 'POST', body: '{}', headers: { cookie, origin: 'https://evil.example' } });
      assert.equal(crossSite.status, 403);
      assert.equal(errorOf(crossSite), 'cross_site_request', 'the check sees the real method (proxy_method $request_method)');
      assert.equal((await ask('/reports/page', { method: 'POST', body: '{}', headers: { cookie, origin } })).status, 200);
      assert.deepEqual(upstream.requests.map((r) => r.method), ['GET', 'POST']);
    });

    it('a WebSocket: the handshake is checked, then nginx relays the socket to the app', async () => {
      assert.equal(await echoThrough('/reports/ws', analyst), 'hello /reports/ws');
      const refused = await openSocket('/reports/ws', {});
      assert.deepEqual(refused, { status: 401 });
      const forbidden = await openSocket('/reports/ws', { authorization: `Bearer ${await op.sign(op.claims({ roles: ['viewer'] }))}` });
      assert.deepEqual(forbidden, { status: 403 });
    });
  });

  describe('a Dash app with callback rules in proxy mode: nginx → gateway → app', () => {
    it('the gateway enforces the callback rule: 403 for the admin-only output with an analyst token, 200 for an allowed one', async () => {
      upstream.clear();
      const post = (token: string, output: string): Promise<Answer> =>
        ask('/sales/_dash-update-component', { method: 'POST', token, body: callbackBody(output), headers: { 'content-type': 'application/json' } });
      const denied = await post(analyst, 'payroll.children');
      assert.equal(denied.status, 403);
      assert.equal(errorOf(denied), 'callback_forbidden');
      assert.equal(upstream.requests.length, 0, 'the forbidden callback never reached the app');
      assert.equal((await post(analyst, 'sales-table.children')).status, 200);
      assert.equal((await post(admin, 'payroll.children')).status, 200);
      assert.equal(upstream.requests.length, 2);
      const raw = upstream.last()?.rawHeaders ?? [];
      assert.deepEqual(received(raw, 'x-forwarded-user'), ['user-2']);
      assert.deepEqual(received(raw, 'x-forwarded-proto'), ['https'], 'the gateway believes nginx (trusted_proxies)');
      assert.deepEqual(received(raw, 'x-forwarded-for'), ['127.0.0.1, 127.0.0.1'], 'the client, then nginx');
      assert.equal((await ask('/sales/page')).status, 401);
    });

    it('a WebSocket through nginx and the gateway', async () => {
      assert.equal(await echoThrough('/sales/ws', analyst), 'hello /sales/ws');
      assert.deepEqual(await openSocket('/sales/ws', {}), { status: 401 });
    });
  });

  describe('the gateway\'s own routes and the rest', () => {
    it('the SDK script /_embedgate/host.js is served through nginx', async () => {
      const script = await ask('/_embedgate/host.js');
      assert.equal(script.status, 200);
      assert.match(script.headers['content-type'] ?? '', /javascript/);
      assert.equal(script.headers['access-control-allow-origin'], '*');
      assert.ok(script.body.length > 100);
    });

    it('the check is not reachable from outside, nor any path the recipe does not route', async () => {
      for (const path of ['/_embedgate/auth', '/_embedgate_auth', '/healthz', '/metrics', '/other/page']) {
        const answer = await ask(path, { token: analyst, headers: { 'x-forwarded-uri': '/reports/page' } });
        assert.equal(answer.status, 404, path);
        assert.equal(answer.headers['x-forwarded-user'], undefined, path);
      }
    });

    it('plain HTTP redirects to HTTPS', async () => {
      const answer = await new Promise<{ status: number; location: string | undefined }>((resolve, reject) => {
        httpRequest({ host: '127.0.0.1', port: ports.http, path: '/reports/page?q=1', agent: false }, (res) => {
          res.resume();
          resolve({ status: res.statusCode ?? 0, location: res.headers.location });
        }).on('error', reject).end();
      });
      assert.equal(answer.status, 308);
      assert.equal(answer.location, 'https://127.0.0.1/reports/page?q=1');
    });
  });

  describe('the gateway down', () => {
    it('fails closed: nginx answers 502 for both kinds of app, and nothing reaches the app', async () => {
      await gw.close();
      closed = true;
      upstream.clear();
      for (const path of ['/reports/page', '/sales/page']) {
        const answer = await ask(path, { token: analyst });
        assert.equal(answer.status, 502, path);
      }
      assert.equal(upstream.requests.length, 0);
    });
  });
});
