// Embedded apps in cross-site frames: the bootstrap page, response rewriting (framing headers, CSP, the injected
// frame script in plain and compressed HTML), the SDK scripts, and gateway pages that must never be framed (105).
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { once } from 'node:events';
import { createServer, type IncomingMessage, type OutgoingHttpHeaders, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { dirname, join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { brotliCompressSync, deflateSync, gzipSync } from 'node:zlib';
import { frameScriptTag } from '../src/embed/html.js';
import { eventually, startGateway, type RunningGateway } from './support/gateway.js';
import { startHostileOp, type HostileOp } from './support/hostile-op.js';
import { freePort } from './support/idp.js';
import { rawRequest } from './support/raw-http.js';

const COOKIE = '__Host-embedgate';
const HOST_ORIGINS = ['http://host.example', 'https://portal.example.com:8443'];
const FRAME_SCRIPT = '/_embedgate/frame.js';
const SDK_DIST = join(dirname(fileURLToPath(import.meta.url)), '../../embed/dist');
const SECRET = 'secret app data 7f3a';

/** Headers a browser sends when it loads a URL into an <iframe> of another site. */
const IFRAME_NAVIGATION = ['Sec-Fetch-Dest: iframe', 'Sec-Fetch-Mode: navigate', 'Sec-Fetch-Site: cross-site', 'Accept: text/html,application/xhtml+xml'];
/** Headers of a top-level navigation (address bar). */
const DOCUMENT_NAVIGATION = ['Sec-Fetch-Dest: document', 'Sec-Fetch-Mode: navigate', 'Sec-Fetch-Site: none', 'Accept: text/html,application/xhtml+xml'];

let op: HostileOp;
let app: TinyUpstream;
let gw: RunningGateway;
let gwOrigin: string;
let analyst: string;
let analystExp: number;

// ---------------------------------------------------------------------------------------------------------------
// A tiny upstream whose pages set the headers under test.

const page = (title: string): string =>
  `<!DOCTYPE html>\n<html lang="en"><head data-x="1">\n<meta charset="utf-8"><title>${title}</title>`
  + `<script nonce="abc">window.app = 1;</script></head><body><h1>${SECRET}</h1></body></html>`;

type RouteHeaders = Record<string, string | string[] | number>;

interface Route {
  headers: RouteHeaders;
  body: Buffer;
}

function html(title: string, headers: RouteHeaders = {}, encode?: (input: Buffer) => Buffer, encoding?: string): Route {
  const raw = Buffer.from(page(title));
  const body = encode === undefined ? raw : encode(raw);
  return {
    headers: { 'content-type': 'text/html; charset=utf-8', 'content-length': body.length, 'x-frame-options': 'DENY', ...(encoding === undefined ? {} : { 'content-encoding': encoding }), ...headers },
    body,
  };
}

const JSON_BODY = Buffer.from(JSON.stringify({ secret: SECRET, html: '<head></head>' }));

const ROUTES: Record<string, Route> = {
  '/site/plain': html('plain'),
  '/site/gzip': html('gzip', {}, gzipSync, 'gzip'),
  '/site/br': html('br', {}, brotliCompressSync, 'br'),
  '/site/deflate': html('deflate', {}, deflateSync, 'deflate'),
  '/site/fa-none': html('fa-none', { 'content-security-policy': "frame-ancestors 'none'; img-src 'self'" }),
  '/site/unsafe-inline': html('unsafe-inline', { 'content-security-policy': "script-src 'self' 'unsafe-inline'" }),
  '/site/nonce': html('nonce', { 'content-security-policy': "script-src 'nonce-abc' 'strict-dynamic'; object-src 'none'; frame-ancestors 'self'" }),
  '/site/default-none': html('default-none', { 'content-security-policy': "default-src 'none'" }),
  '/site/csp-list': html('csp-list', { 'content-security-policy': "script-src 'self', frame-ancestors 'none'" }),
  '/site/csp-two': html('csp-two', { 'content-security-policy': ["script-src 'self'", "frame-ancestors 'none'"] }),
  '/bridged/unsafe-inline': html('bridged-unsafe-inline', { 'content-security-policy': "script-src 'self' 'unsafe-inline'" }),
  '/bridged/nonce': html('bridged-nonce', { 'content-security-policy': "script-src 'nonce-abc' 'strict-dynamic'" }),
  '/site/latin1': {
    headers: { 'content-type': 'text/html; charset=iso-8859-1', 'x-frame-options': 'DENY' },
    body: Buffer.from(`<html><head><title>Caf\u00e9</title></head><body>Men\u00fc: cr\u00e8me br\u00fbl\u00e9e ${SECRET}</body></html>`, 'latin1'),
  },
  '/site/sets-cookies': {
    headers: {
      'content-type': 'text/html; charset=utf-8',
      'set-cookie': [
        `${COOKIE}=${'F'.repeat(43)}; Path=/; Max-Age=600; Secure; HttpOnly; SameSite=None; Partitioned`,
        `${COOKIE}=; Path=/; Max-Age=0; Secure; HttpOnly; SameSite=None; Partitioned`,
        'app_pref=compact; Path=/site/; HttpOnly',
      ],
    },
    body: Buffer.from(page('sets-cookies')),
  },
  '/site/data.json': {
    headers: {
      'content-type': 'application/json', 'content-length': JSON_BODY.length, etag: '"v1"', 'x-frame-options': 'SAMEORIGIN',
      'content-security-policy': "default-src 'none'; frame-ancestors 'none'",
    },
    body: JSON_BODY,
  },
};

interface TinyUpstream {
  url: string;
  /** Request paths received, in order. */
  requests: string[];
  close(): Promise<void>;
}

async function startTinyUpstream(): Promise<TinyUpstream> {
  const requests: string[] = [];
  const server: Server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const path = (req.url ?? '').split('?')[0] ?? '';
    requests.push(path);
    const route = ROUTES[path] ?? html(path);
    res.writeHead(200, route.headers as OutgoingHttpHeaders);
    res.end(req.method === 'HEAD' ? undefined : route.body);
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    requests,
    close: async () => {
      const closed = new Promise((resolve) => server.close(resolve));
      server.closeAllConnections();
      await closed;
    },
  };
}

// ---------------------------------------------------------------------------------------------------------------
// Helpers.

const nowSeconds = (): number => Math.floor(Date.now() / 1000);
const bearer = (token: string): string => `Authorization: Bearer ${token}`;

/** The directives of every Content-Security-Policy in a response, one map per policy. */
function policies(header: string | null | undefined): Array<Map<string, string[]>> {
  if (header === null || header === undefined) return [];
  return header.split(',').map((policy) => new Map(policy.split(';').map((d) => d.trim()).filter((d) => d !== '').map((d) => {
    const [name = '', ...sources] = d.split(/\s+/);
    return [name.toLowerCase(), sources] as [string, string[]];
  })));
}

/** Every frame-ancestors directive across the response's policies. */
function frameAncestors(header: string | null | undefined): string[][] {
  return policies(header).flatMap((policy) => (policy.has('frame-ancestors') ? [policy.get('frame-ancestors') as string[]] : []));
}

/** The sources that govern <script src> in one policy (script-src-elem, else script-src, else default-src). */
function scriptSources(policy: Map<string, string[]>): string[] | undefined {
  return policy.get('script-src-elem') ?? policy.get('script-src') ?? policy.get('default-src');
}

/** The frame script element and its attributes: <script src="/_embedgate/frame.js?v=…" …></script> or the bootstrap's inline one. */
function frameTag(body: string): { tag: string; attributes: Map<string, string> } | undefined {
  const match = /(<script\s[^>]*\bdata-embedgate-mode="[^"]*"[^>]*>)[\s\S]*?<\/script>/.exec(body);
  if (match === null) return undefined;
  const attributes = new Map<string, string>();
  for (const [, name = '', value = ''] of (match[1] ?? '').matchAll(/([a-z-]+)="([^"]*)"/g)) attributes.set(name, value);
  return { tag: match[0], attributes };
}

const unescapeHtml = (text: string): string => text.replace(/&#(\d+);/g, (_m, code: string) => String.fromCharCode(Number(code)));

function assertFrameableBy(header: string | null | undefined, what: string): void {
  assert.deepEqual(frameAncestors(header), [HOST_ORIGINS], `${what}: exactly one frame-ancestors, listing the allowed origins (got ${header})`);
}

async function sessionCookie(token: string): Promise<{ value: string; expiresAt: number }> {
  const response = await gw.fetch('/_embedgate/session', { method: 'POST', token, headers: { origin: gwOrigin, 'content-type': 'application/json' }, body: '{"path":"/site/"}' });
  assert.equal(response.status, 200);
  const { expires_at: expiresAt } = (await response.json()) as { expires_at: number };
  const cookie = response.headers.getSetCookie().find((line) => line.startsWith(`${COOKIE}=`)) ?? '';
  return { value: cookie.slice(COOKIE.length + 1, cookie.indexOf(';')), expiresAt };
}

interface Page {
  status: number;
  /** Lower-case names; repeated headers (several Content-Security-Policy) joined with ", " as fetch does. */
  headers: Record<string, string>;
  body: string;
  bodyBytes: number;
}

/** GET an app page with a bearer, as the framed app's fetches in header mode do (fetch keeps repeated headers). */
async function getPage(path: string, headers: Record<string, string> = {}): Promise<Page> {
  const response = await gw.fetch(path, { token: analyst, headers });
  const body = Buffer.from(await response.arrayBuffer());
  return { status: response.status, headers: Object.fromEntries(response.headers), body: body.toString('utf8'), bodyBytes: body.length };
}

before(async () => {
  const built = ['frame.min.js', 'host.min.js'].map((file) => join(SDK_DIST, file));
  await eventually(() => built.every((file) => { try { return readFileSync(file).length > 0; } catch { return false; } }), 10_000)
    .catch(() => assert.fail(`the embed SDK is not built (${built.join(', ')}): run npm run build`));
  op = await startHostileOp();
  app = await startTinyUpstream();
  const port = await freePort();
  gwOrigin = `http://127.0.0.1:${port}`;
  gw = await startGateway({
    listen: `127.0.0.1:${port}`,
    public_url: gwOrigin,
    issuers: [{ issuer: op.issuer, audiences: [op.audience] }],
    embed: { allowed_origins: HOST_ORIGINS },
    sessions: { store: 'memory:' },
    apps: [
      { name: 'site', prefix: '/site/', upstream: app.url, allow: { roles: ['analyst'] } },
      { name: 'payroll', prefix: '/payroll/', upstream: app.url, allow: { roles: ['admin'] } },
      { name: 'reader', prefix: '/reader/', upstream: app.url, forward_authorization: true, allow: { roles: ['analyst'] } },
      {
        name: 'bridged', prefix: '/bridged/', upstream: app.url, allow: { roles: ['analyst'] },
        embed: { bridge: { host_may_set: ['region.value'], publish: ['selection.data'], events: true } },
      },
    ],
  });
  await eventually(async () => (await gw.fetch('/readyz')).status === 200);
  assert.ok(!gw.logs.some((line) => line.includes('not built')), 'the gateway found the SDK build');
  analystExp = nowSeconds() + 300;
  analyst = await op.sign(op.claims({ roles: ['analyst'], exp: analystExp }));
});

after(async () => {
  await gw?.close();
  await app?.close();
  await op?.close();
});

// ---------------------------------------------------------------------------------------------------------------

describe('bootstrap', () => {
  it('an iframe navigation without credentials gets the bootstrap page: 401, no-store, frame-ancestors = allowed origins, no app data', async () => {
    app.requests.length = 0;
    const response = await rawRequest(gw.url, '/site/plain', IFRAME_NAVIGATION);
    assert.equal(response.status, 401);
    assert.match(response.headers['content-type'] ?? '', /^text\/html/);
    assert.equal(response.headers['cache-control'], 'no-store');
    assertFrameableBy(response.headers['content-security-policy'], 'bootstrap');
    const tag = frameTag(response.body);
    assert.ok(tag !== undefined, `no frame script tag in ${response.body.slice(0, 300)}`);
    assert.equal(tag.attributes.get('data-embedgate-mode'), 'bootstrap');
    assert.deepEqual(JSON.parse(unescapeHtml(tag.attributes.get('data-embedgate-origins') ?? 'null')), HOST_ORIGINS);
    assert.ok(!response.body.includes(SECRET), 'no app data');
    assert.equal(response.headers['content-length'], String(Buffer.byteLength(response.body, 'latin1')));
    assert.deepEqual(app.requests, [], 'the upstream got no request');
  });

  it('the bootstrap page runs only its own inline bootstrap script (a fresh nonce) and prefetches the versioned frame script', async () => {
    const response = await rawRequest(gw.url, '/site/', IFRAME_NAVIGATION);
    const [policy] = policies(response.headers['content-security-policy']);
    assert.ok(policy !== undefined);
    const nonce = /^'nonce-([A-Za-z0-9+/=]{24})'$/.exec(policy.get('script-src')?.join(' ') ?? '')?.[1];
    assert.ok(nonce !== undefined, `script-src is one nonce: ${policy.get('script-src')?.join(' ')}`);
    const scripts = [...response.body.matchAll(/<script\b([^>]*)>([\s\S]*?)<\/script>/g)];
    assert.equal(scripts.length, 1, 'one script');
    assert.match(scripts[0]?.[1] ?? '', new RegExp(`\\bnonce="${nonce.replace(/[+/=]/g, '\\$&')}"`));
    assert.doesNotMatch(scripts[0]?.[1] ?? '', /\bsrc=/);
    assert.ok(scripts[0]?.[2] === readFileSync(join(SDK_DIST, 'bootstrap.min.js'), 'utf8'), 'the inline script is the bootstrap script');
    assert.match(response.body, /<link rel="prefetch" href="\/_embedgate\/frame\.js\?v=[\w-]+">/);
    const again = await rawRequest(gw.url, '/site/', IFRAME_NAVIGATION);
    assert.notEqual(policies(again.headers['content-security-policy'])[0]?.get('script-src')?.join(' '), `'nonce-${nonce}'`, 'a new nonce each time');
    const head = await rawRequest(gw.url, '/site/', IFRAME_NAVIGATION, 'HEAD');
    assert.equal(head.status, 401);
    assert.equal(head.body, '', 'HEAD has no body');
  });

  it('an inline frame script cannot end its element early, whatever its source holds', () => {
    const tag = frameScriptTag({ src: '/x.js', inline: 'var a = "</script><script>alert(1)</SCRIPT>";', origins: [], mode: 'bootstrap', headerMode: false, embedMode: 'cookie', nonce: 'n' });
    assert.equal(tag.match(/<\/script/gi)?.length, 1, tag);
    assert.ok(tag.endsWith('var a = "<\\/script><script>alert(1)<\\/SCRIPT>";</script>'), tag);
  });

  it('the same GET without Sec-Fetch-Dest (curl) gets 401 JSON', async () => {
    const response = await rawRequest(gw.url, '/site/plain', ['Accept: */*', 'User-Agent: curl/8.5.0']);
    assert.equal(response.status, 401);
    assert.equal(response.headers['content-type'], 'application/json');
    assert.equal((JSON.parse(response.body) as { error: string }).error, 'missing_token');
    assert.match(response.headers['www-authenticate'] ?? '', /^Bearer realm="embedgate"/);
    assert.ok(frameTag(response.body) === undefined);
  });

  it('a top-level navigation (Sec-Fetch-Dest: document) gets the 401 HTML error page, not the bootstrap', async () => {
    const response = await rawRequest(gw.url, '/site/plain', DOCUMENT_NAVIGATION);
    assert.equal(response.status, 401);
    assert.match(response.headers['content-type'] ?? '', /^text\/html/);
    assert.ok(frameTag(response.body) === undefined, 'not the bootstrap');
    assert.deepEqual(frameAncestors(response.headers['content-security-policy']), [["'none'"]]);
  });

  it('90: an iframe navigation with a dead session cookie gets the bootstrap again, and the stale cookie is cleared', async () => {
    const dead = 'A'.repeat(43);
    const response = await rawRequest(gw.url, '/site/plain', [...IFRAME_NAVIGATION, `Cookie: ${COOKIE}=${dead}`]);
    assert.equal(response.status, 401);
    assert.equal(frameTag(response.body)?.attributes.get('data-embedgate-mode'), 'bootstrap',
      `an iframe whose session ended (revoked, store lost) is stuck on: ${response.body.slice(0, 300)}`);
    assert.match(response.headers['set-cookie'] ?? '', new RegExp(`^${COOKIE}=; Path=/; Max-Age=0;`), 'the stale cookie is cleared');
  });

  it('an iframe navigation with a valid bearer or cookie gets the app, not the bootstrap', async () => {
    const { value } = await sessionCookie(analyst);
    for (const credential of [bearer(analyst), `Cookie: ${COOKIE}=${value}`]) {
      const response = await rawRequest(gw.url, '/site/plain', [...IFRAME_NAVIGATION, credential]);
      assert.equal(response.status, 200, credential.slice(0, 6));
      assert.ok(response.body.includes(SECRET));
      assert.equal(frameTag(response.body)?.attributes.get('data-embedgate-mode'), 'app');
    }
  });
});

describe('app responses', () => {
  it('X-Frame-Options from the upstream is gone and frame-ancestors lists the allowed origins', async () => {
    for (const path of ['/site/plain', '/site/data.json', '/site/gzip']) {
      const response = await getPage(path);
      assert.equal(response.status, 200, path);
      assert.equal(response.headers['x-frame-options'], undefined, path);
      assertFrameableBy(response.headers['content-security-policy'], path);
    }
  });

  it('an upstream CSP frame-ancestors \'none\' (or \'self\') is replaced; the app\'s other directives stay', async () => {
    const none = await getPage('/site/fa-none');
    assertFrameableBy(none.headers['content-security-policy'], 'fa-none');
    assert.ok(policies(none.headers['content-security-policy']).some((p) => p.get('img-src')?.join(' ') === "'self'"), 'img-src kept');
    const self = await getPage('/site/nonce');
    assertFrameableBy(self.headers['content-security-policy'], 'nonce page with frame-ancestors \'self\'');
    assert.ok(policies(self.headers['content-security-policy']).some((p) => p.get('object-src')?.join(' ') === "'none'"), 'object-src kept');
  });

  it('HTML pages get the frame script first thing in <head> (mode app, expires = token exp for a bearer)', async () => {
    const response = await getPage('/site/plain');
    const at = response.body.indexOf('<head data-x="1">') + '<head data-x="1">'.length;
    assert.ok(response.body.slice(at).startsWith(`<script src="${FRAME_SCRIPT}?v=`), `the tag is not first in <head>: ${response.body.slice(0, 200)}`);
    const tag = frameTag(response.body);
    assert.equal(tag?.attributes.get('data-embedgate-mode'), 'app');
    assert.equal(tag?.attributes.get('data-embedgate-header-mode'), 'true');
    assert.equal(tag?.attributes.get('data-embedgate-wait-for-token'), undefined, 'requests go with the cookie until the token is there');
    assert.equal(tag?.attributes.get('data-embedgate-expires'), String(analystExp));
    assert.deepEqual(JSON.parse(unescapeHtml(tag?.attributes.get('data-embedgate-origins') ?? 'null')), HOST_ORIGINS);
    assert.equal(response.body.match(/_embedgate\/frame\.js/g)?.length, 1, 'injected once');
    assert.ok(response.body.endsWith(`<h1>${SECRET}</h1></body></html>`), 'the rest of the page is intact');
    assert.equal(response.headers['content-length'], String(response.bodyBytes));
  });

  it('with a session cookie, data-embedgate-expires is the session\'s expires_at', async () => {
    const token = await op.sign(op.claims({ roles: ['analyst'], exp: nowSeconds() + 120 }));
    const { value, expiresAt } = await sessionCookie(token);
    const response = await rawRequest(gw.url, '/site/plain', [`Cookie: ${COOKIE}=${value}`]);
    assert.equal(response.status, 200);
    assert.equal(frameTag(response.body)?.attributes.get('data-embedgate-expires'), String(expiresAt));
  });

  it('the injection changes nothing but the inserted tag, whatever the page\'s charset', async () => {
    for (const path of ['/site/plain', '/site/latin1']) {
      const original = ROUTES[path]?.body as Buffer;
      const response = await gw.fetch(path, { token: analyst });
      assert.equal(response.status, 200, path);
      const served = Buffer.from(await response.arrayBuffer());
      const tag = frameTag(served.toString('latin1'))?.tag ?? '';
      assert.notEqual(tag, '', `${path}: no frame script`);
      const at = served.indexOf(tag);
      const without = Buffer.concat([served.subarray(0, at), served.subarray(at + Buffer.byteLength(tag))]);
      assert.ok(without.equals(original), `${path}: the page's bytes changed: ${JSON.stringify(without.toString('latin1').slice(0, 160))}`);
      assert.equal(response.headers.get('content-type'), ROUTES[path]?.headers['content-type'], `${path}: content-type kept`);
    }
  });

  for (const encoding of ['gzip', 'br', 'deflate']) {
    it(`${encoding}-encoded HTML is decoded, injected and served without Content-Encoding and with a correct Content-Length`, async () => {
      const response = await rawRequest(gw.url, `/site/${encoding}`, [bearer(analyst), `Accept-Encoding: ${encoding}`]);
      assert.equal(response.status, 200);
      assert.equal(response.headers['content-encoding'], undefined);
      assert.equal(response.headers['transfer-encoding'], undefined);
      assert.equal(response.headers['content-length'], String(Buffer.byteLength(response.body, 'latin1')));
      assert.ok(response.body.startsWith('<!DOCTYPE html>'), 'plain text, not compressed bytes');
      assert.equal(frameTag(response.body)?.attributes.get('data-embedgate-mode'), 'app');
      assert.ok(response.body.includes(`<h1>${SECRET}</h1>`));
    });
  }

  it("an app CSP script-src 'self' 'unsafe-inline' gets the exact script URL added and no nonce", async () => {
    const response = await getPage('/site/unsafe-inline');
    const withScripts = policies(response.headers['content-security-policy']).filter((p) => p.has('script-src'));
    assert.equal(withScripts.length, 1);
    const sources = withScripts[0]?.get('script-src') ?? [];
    assert.ok(sources.includes(`${gwOrigin}${FRAME_SCRIPT}`), `script-src ${sources.join(' ')}`);
    assert.ok(sources.includes("'unsafe-inline'") && sources.includes("'self'"), 'the app\'s sources stay');
    assert.ok(!sources.some((s) => s.startsWith("'nonce-") || s.startsWith("'sha")), 'a nonce or hash would switch unsafe-inline off');
    assertFrameableBy(response.headers['content-security-policy'], 'unsafe-inline');
    assert.ok(frameTag(response.body) !== undefined);
  });

  it('an app with embed.bridge gets the bridge script after the frame script, with what its config allows, allowed by the app\'s CSP (URL or nonce); other apps get none', async () => {
    const byUrl = await getPage('/bridged/unsafe-inline');
    const tags = [...byUrl.body.matchAll(/<script [^>]*>/g)].map((m) => m[0]);
    const bridgeTag = tags.find((tag) => tag.includes('/_embedgate/bridge.js?v='));
    assert.ok(bridgeTag !== undefined, `a bridge script: ${tags.join(' ')}`);
    assert.ok(tags.indexOf(bridgeTag) > tags.findIndex((tag) => tag.includes('data-embedgate-mode="app"')), 'after the frame script');
    const capabilities = unescapeHtml(/data-embedgate-bridge="([^"]*)"/.exec(bridgeTag)?.[1] ?? '');
    assert.deepEqual(JSON.parse(capabilities), { set: ['region.value'], publish: ['selection.data'], events: true, prefix: '/bridged/' });
    assert.deepEqual(JSON.parse(unescapeHtml(/data-embedgate-origins="([^"]*)"/.exec(bridgeTag)?.[1] ?? 'null')), HOST_ORIGINS, 'the exact host origins');
    const sources = policies(byUrl.headers['content-security-policy']).find((p) => p.has('script-src'))?.get('script-src') ?? [];
    assert.ok(sources.includes(`${gwOrigin}/_embedgate/bridge.js`) && sources.includes(`${gwOrigin}${FRAME_SCRIPT}`), `script-src ${sources.join(' ')}`);

    const byNonce = await getPage('/bridged/nonce');
    const nonce = /nonce="([^"]+)"/.exec([...byNonce.body.matchAll(/<script [^>]*bridge\.js[^>]*>/g)][0]?.[0] ?? '')?.[1];
    assert.ok(nonce !== undefined, 'the bridge tag carries the nonce');
    const nonceSources = policies(byNonce.headers['content-security-policy']).find((p) => p.has('script-src'))?.get('script-src') ?? [];
    assert.ok(nonceSources.includes(`'nonce-${nonce}'`), `script-src ${nonceSources.join(' ')}`);

    const other = await getPage('/site/unsafe-inline');
    assert.doesNotMatch(other.body, /bridge\.js/, 'no bridge for an app without embed.bridge');
  });

  it("an app CSP script-src 'nonce-abc' 'strict-dynamic' gets the script's nonce added, and the tag carries it", async () => {
    const response = await getPage('/site/nonce');
    const nonce = frameTag(response.body)?.attributes.get('nonce');
    assert.ok(nonce !== undefined && nonce.length >= 16 && nonce !== 'abc', `the tag's nonce: ${nonce}`);
    const sources = policies(response.headers['content-security-policy']).find((p) => p.has('script-src'))?.get('script-src') ?? [];
    assert.ok(sources.includes(`'nonce-${nonce}'`), `script-src ${sources.join(' ')}`);
    assert.ok(sources.includes("'nonce-abc'") && sources.includes("'strict-dynamic'"), 'the app\'s sources stay');
    assert.ok(!sources.includes("'unsafe-inline'"));
    const again = await getPage('/site/nonce');
    assert.notEqual(frameTag(again.body)?.attributes.get('nonce'), nonce, 'a fresh nonce per response');
  });

  it("an app CSP default-src 'none' alone lets the frame script load by its URL and nothing else", async () => {
    const response = await getPage('/site/default-none');
    const all = policies(response.headers['content-security-policy']);
    const appPolicy = all.find((p) => p.has('default-src') || p.has('script-src'));
    assert.ok(appPolicy !== undefined, `the app's policy is gone: ${response.headers['content-security-policy']}`);
    assert.deepEqual(scriptSources(appPolicy), [`${gwOrigin}${FRAME_SCRIPT}`]);
    for (const policy of all) {
      for (const [name, sources] of policy) {
        if (name === 'frame-ancestors') continue;
        for (const loose of ['*', "'unsafe-inline'", "'unsafe-eval'", "'self'", 'http:', 'https:']) assert.ok(!sources.includes(loose), `${name} got ${loose}`);
      }
    }
    assertFrameableBy(response.headers['content-security-policy'], 'default-none');
  });

  it('an upstream frame-ancestors is replaced in two CSP headers and in one header holding two comma-separated policies', async () => {
    for (const path of ['/site/csp-two', '/site/csp-list']) {
      const response = await getPage(path);
      assertFrameableBy(response.headers['content-security-policy'], path);
      const scripts = policies(response.headers['content-security-policy']).flatMap((p) => p.get('script-src') ?? []);
      assert.ok(scripts.includes("'self'"), `${path}: the app's script-src stays (${response.headers['content-security-policy']})`);
    }
  });

  it('89: the app cannot set or clear the gateway\'s session cookie (its own cookies pass)', async () => {
    const response = await gw.fetch('/site/sets-cookies', { token: analyst });
    assert.equal(response.status, 200);
    await response.arrayBuffer();
    const cookies = response.headers.getSetCookie();
    assert.ok(!cookies.some((line) => line.trimStart().startsWith(`${COOKIE}=`)), `the app set the gateway's cookie: ${JSON.stringify(cookies)}`);
    assert.ok(cookies.some((line) => line.startsWith('app_pref=compact')), 'the app\'s own cookie passes');
  });

  it('non-HTML (JSON) responses are untouched apart from the framing headers', async () => {
    const response = await getPage('/site/data.json');
    assert.equal(response.status, 200);
    assert.equal(response.body, JSON_BODY.toString());
    assert.equal(response.headers['content-type'], 'application/json');
    assert.equal(response.headers['content-length'], String(JSON_BODY.length));
    assert.equal(response.headers.etag, '"v1"');
    assert.equal(response.headers['x-frame-options'], undefined);
    const all = policies(response.headers['content-security-policy']);
    assert.ok(all.some((p) => p.get('default-src')?.join(' ') === "'none'"), 'default-src \'none\' kept, no script URL added');
    assertFrameableBy(response.headers['content-security-policy'], 'json');
  });

  it('an app that gets the Authorization header (forward_authorization) has its first requests wait for the token', async () => {
    const response = await getPage('/reader/plain');
    assert.equal(response.status, 200);
    assert.equal(frameTag(response.body)?.attributes.get('data-embedgate-wait-for-token'), 'true');
  });

  it('the frame script pages load is versioned and cached for good; the bare URL and other versions revalidate', async () => {
    const src = frameTag((await getPage('/site/plain')).body)?.tag.match(/src="([^"]+)"/)?.[1] ?? '';
    const versioned = await gw.fetch(src);
    assert.equal(versioned.status, 200);
    assert.equal(versioned.headers.get('cache-control'), 'public, max-age=31536000, immutable');
    assert.ok(Buffer.from(await versioned.arrayBuffer()).equals(readFileSync(join(SDK_DIST, 'frame.min.js'))));
    for (const other of [FRAME_SCRIPT, `${FRAME_SCRIPT}?v=old`, `${FRAME_SCRIPT}?x=${src.split('=')[1]}`]) {
      const response = await gw.fetch(other);
      assert.equal(response.status, 200, other);
      assert.equal(response.headers.get('cache-control'), 'no-cache', other);
    }
  });

  it('/_embedgate/frame.js and /_embedgate/host.js are served as text/javascript, byte for byte from the SDK build', async () => {
    for (const [path, file] of [['/_embedgate/frame.js', 'frame.min.js'], ['/_embedgate/host.js', 'host.min.js']] as const) {
      const response = await gw.fetch(path);
      assert.equal(response.status, 200, path);
      assert.match(response.headers.get('content-type') ?? '', /^text\/javascript\b/, path);
      assert.equal(response.headers.get('x-content-type-options'), 'nosniff', path);
      const body = Buffer.from(await response.arrayBuffer());
      assert.ok(body.equals(readFileSync(join(SDK_DIST, file))), `${path} differs from ${file}`);
      const etag = response.headers.get('etag');
      assert.ok(etag !== null, path);
      assert.equal((await gw.fetch(path, { headers: { 'if-none-match': etag } })).status, 304, path);
    }
  });
});

describe('embedding off', () => {
  it('without allowed origins app pages get frame-ancestors \'none\' and no frame script; iframes get no bootstrap', async () => {
    const off = await startGateway({
      issuers: [{ issuer: op.issuer, audiences: [op.audience] }],
      sessions: { store: 'memory:' },
      apps: [{ name: 'site', prefix: '/site/', upstream: app.url, allow: { roles: ['analyst'] } }],
    });
    try {
      await eventually(async () => (await off.fetch('/readyz')).status === 200);
      const response = await rawRequest(off.url, '/site/plain', [bearer(analyst)]);
      assert.equal(response.status, 200);
      assert.equal(response.headers['x-frame-options'], undefined);
      assert.deepEqual(frameAncestors(response.headers['content-security-policy']), [["'none'"]]);
      assert.ok(frameTag(response.body) === undefined, 'no frame script');
      const iframe = await rawRequest(off.url, '/site/plain', IFRAME_NAVIGATION);
      assert.equal(iframe.status, 401);
      assert.ok(frameTag(iframe.body) === undefined, 'no bootstrap');
      assert.deepEqual(frameAncestors(iframe.headers['content-security-policy']), [["'none'"]]);
    } finally {
      await off.close();
    }
  });
});

describe('105 gateway pages cannot be framed', () => {
  it("105: /_embedgate/* error pages and the 401/403/404 HTML pages carry frame-ancestors 'none' as a real header", async () => {
    const guest = await op.sign(op.claims({ roles: ['guest'] }));
    const pages: Array<[what: string, path: string, extra: string[], status: number]> = [
      ['unknown gateway endpoint', '/_embedgate/nope', [], 404],
      ['GET on the session endpoint from elsewhere', '/_embedgate/session', [], 403],
      ['no app mounted', '/nowhere/', [], 404],
      ['401 at an app', '/site/plain', [], 401],
      ['401 for a dead cookie', '/site/plain', [`Cookie: ${COOKIE}=${'B'.repeat(43)}`], 401],
      ['403 at an app', '/site/plain', [bearer(guest)], 403],
      ['403 at another app', '/payroll/', [bearer(analyst)], 403],
      ['400 for a bad path', '/site/%2e%2e/payroll/', [], 400],
    ];
    for (const [what, path, extra, status] of pages) {
      // A credential-less iframe navigation to an app gets the bootstrap (framable by the hosts), tested above.
      const navigations = what.startsWith('401') ? [DOCUMENT_NAVIGATION] : [DOCUMENT_NAVIGATION, IFRAME_NAVIGATION];
      for (const navigation of navigations) {
        const label = `${what} (${navigation[0]})`;
        const response = await rawRequest(gw.url, path, [...navigation, ...extra]);
        assert.equal(response.status, status, label);
        assert.match(response.headers['content-type'] ?? '', /^text\/html/, label);
        assert.deepEqual(frameAncestors(response.headers['content-security-policy']), [["'none'"]], label);
        assert.ok(!/<meta[^>]+http-equiv/i.test(response.body), `${label}: a <meta> policy is not a header`);
        assert.ok(frameTag(response.body) === undefined, `${label}: no frame script on an error page`);
      }
    }
  });

  it('105: gateway error pages also send X-Frame-Options: DENY (for browsers without frame-ancestors)', async () => {
    for (const path of ['/_embedgate/nope', '/nowhere/', '/site/plain']) {
      const response = await rawRequest(gw.url, path, DOCUMENT_NAVIGATION);
      assert.ok(response.status >= 400, path);
      assert.equal(response.headers['x-frame-options'], 'DENY', path);
    }
  });
});
