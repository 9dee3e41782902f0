// Standalone sign-in against the embedded IdP with no resource configured: it works out of the box, and when the
// provider still hands back an access token that is not a JWT for the gateway, the page and the log say what to set.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { BrowserSession } from './support/browser-session.js';
import { eventually, startGateway, type RunningGateway } from './support/gateway.js';
import { navigate, signInThroughGateway } from './support/gateway-sign-in.js';
import { isLoginPage, submitLogin } from './support/idp-rp.js';
import { freePort, GATEWAY_AUDIENCE, startIdp, type RunningIdp } from './support/idp.js';
import { startUpstream, type Upstream } from './support/upstream.js';

const PASSWORD = 'correct horse battery staple';
const SECRET = 'gateway-client-secret-0123456789';
const ANA = { username: 'ana', password: PASSWORD };

let idp: RunningIdp;
let upstream: Upstream;
const gateways: RunningGateway[] = [];

/** A gateway signing in with `clientId` of the IdP, with no login.resource or login.audience. */
async function gatewayFor(port: number, clientId: string, audiences = [GATEWAY_AUDIENCE]): Promise<RunningGateway> {
  const gw = await startGateway({
    listen: `127.0.0.1:${port}`,
    public_url: `http://127.0.0.1:${port}`,
    issuers: [{ issuer: idp.issuer, audiences }],
    login: { issuer: idp.issuer, client_id: clientId, client_secret: SECRET, encryption_key: randomBytes(32).toString('base64') },
    sessions: { store: 'memory:' },
    apps: [{ name: 'sales', prefix: '/sales/', upstream: upstream.url, allow: { roles: ['analyst'] } }],
  });
  gateways.push(gw);
  await eventually(async () => (await gw.fetch('/readyz')).status === 200);
  return gw;
}

describe('sign-in with no resource configured, against the embedded IdP', () => {
  let plainPort: number;
  let userinfoPort: number;

  before(async () => {
    plainPort = await freePort();
    userinfoPort = await freePort();
    upstream = await startUpstream();
    idp = await startIdp({
      users: [{ username: ANA.username, password: PASSWORD, email: 'ana@example.com', roles: ['analyst'] }],
      clients: [
        { client_id: 'gateway', client_secret: SECRET, redirect_uris: [`http://127.0.0.1:${plainPort}/_embedgate/callback`] },
        // A client the IdP gives opaque userinfo tokens: what every code-flow client got before resources defaulted.
        { client_id: 'userinfo-gateway', client_secret: SECRET, userinfo_tokens: true, redirect_uris: [`http://127.0.0.1:${userinfoPort}/_embedgate/callback`] },
      ],
    });
  });

  after(async () => {
    for (const gw of gateways) await gw.close();
    await upstream?.close();
    await idp?.close(true);
  });

  it('signs the user in: the gateway asks for its audience and the IdP issues a JWT for it', async () => {
    const gw = await gatewayFor(plainPort, 'gateway');
    assert.equal(gw.gateway.config.login?.resource, GATEWAY_AUDIENCE, 'login.resource defaulted to the trusted audience');
    const { cookie, location } = await signInThroughGateway(gw.url, idp.issuer, ANA, '/sales/');
    assert.equal(location, '/sales/');
    const page = await navigate(gw.url, '/sales/', `__Host-embedgate-session=${cookie}`);
    assert.equal(page.status, 200);
    assert.equal(upstream.requests.at(-1)?.headers['x-forwarded-user'], 'ana');
  });

  it('when the access token is still not a JWT for the gateway: 502 login_misconfigured, and page and log name login.resource', async () => {
    // Two trusted audiences: nothing to derive, so sign-in asks for none, and this client then gets an opaque token.
    const gw = await gatewayFor(userinfoPort, 'userinfo-gateway', [GATEWAY_AUDIENCE, 'https://other.example']);
    assert.equal(gw.gateway.config.login?.resource, undefined);
    assert.ok(gw.logs.some((entry) => entry.includes('"msg":"configuration warning"') && entry.includes('login.resource: not set')), 'the start-up log warned');
    const start = await navigate(gw.url, '/sales/');
    assert.equal(start.status, 302);
    const transaction = start.setCookies.map((line) => line.split(';')[0] as string).filter((pair) => pair.startsWith('__Host-embedgate-tx-'));
    const browser = new BrowserSession(idp.issuer);
    let page = await browser.get(start.headers.location as string);
    assert.ok(isLoginPage(page));
    page = await submitLogin(browser, ANA);
    assert.ok(page.left && page.url.startsWith(gw.url), page.url);
    const back = new URL(page.url);
    const callback = await navigate(gw.url, `${back.pathname}${back.search}`, transaction.join('; '));

    assert.equal(callback.status, 502);
    assert.match(callback.headers['content-type'] ?? '', /^text\/html/);
    assert.match(callback.body, /login_misconfigured/);
    assert.match(callback.body, /not a JWT for this gateway/);
    assert.match(callback.body, /login\.resource/);
    assert.equal(callback.setCookies.some((line) => line.startsWith('__Host-embedgate-session=') && !line.startsWith('__Host-embedgate-session=;')), false, 'no session');

    const line = gw.logs.find((entry) => entry.includes('"audit":"login_failed"'));
    assert.ok(line !== undefined, 'the failure is logged');
    const logged = JSON.parse(line) as { level: number; reason: string };
    assert.equal(logged.level, 40, 'as a warning: the operator has something to fix');
    assert.match(logged.reason, new RegExp(`the access token ${idp.issuer} issued at sign-in is not a JWT for this gateway`));
    assert.match(logged.reason, /sign-in asked for no audience \(login\.resource and login\.audience are unset\)/);
    assert.match(logged.reason, /Set login\.resource \(login\.audience for Auth0\)/);
    assert.ok(!gw.logs.some((entry) => entry.includes(back.searchParams.get('code') as string)), 'the code is never logged');
  });
});
