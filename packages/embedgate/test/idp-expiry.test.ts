// Expiry of the embedded IdP's one-time codes: a device code that nobody approved in time is refused with
// expired_token (RFC 8628 §3.5), to openid-client and to the real `embedgate token --device` command.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { setTimeout as delay } from 'node:timers/promises';
import * as client from 'openid-client';
import { BrowserSession } from './support/browser-session.js';
import { runCli } from './support/cli.js';
import { GATEWAY_AUDIENCE, startIdp, type RunningIdp } from './support/idp.js';
import { ALICE, discover, oauthError } from './support/idp-rp.js';

const DEVICE_GRANT = 'urn:ietf:params:oauth:grant-type:device_code';
const DEVICE_TTL_SECONDS = 1;
/** How long past the code's lifetime to wait before using it: enough to be expired on any clock rounding. */
const PAST_EXPIRY_MS = 200;

/** The test runner's environment without any EMBEDGATE_* variable. */
function cleanEnv(): NodeJS.ProcessEnv {
  return Object.fromEntries(Object.entries(process.env).filter(([name]) => !name.startsWith('EMBEDGATE_')));
}

/** Waits until `expiresIn` seconds after `issuedAt` (ms) have passed, plus a margin. Time passing is what is tested. */
async function waitUntilExpired(issuedAt: number, expiresIn: number): Promise<void> {
  const remaining = issuedAt + expiresIn * 1000 + PAST_EXPIRY_MS - Date.now();
  if (remaining > 0) await delay(remaining);
}

describe('embedded IdP: an expired device code', () => {
  let op: RunningIdp;
  let config: client.Configuration;

  before(async () => {
    op = await startIdp({
      device_code_ttl_seconds: DEVICE_TTL_SECONDS,
      clients: [{ client_id: 'cli', public: true, name: 'Command line', grant_types: [DEVICE_GRANT] }],
      users: [ALICE],
    });
    config = await discover(op.issuer, 'cli');
  });

  after(async () => {
    await op.close();
  });

  it('announces the configured lifetime in the device authorization response', async () => {
    const device = await client.initiateDeviceAuthorization(config, { scope: 'openid' });
    assert.ok(device.expires_in > 0 && device.expires_in <= DEVICE_TTL_SECONDS, `expires_in ${device.expires_in}`);
  });

  it('answers a poll after the lifetime with expired_token (openid-client)', async () => {
    const issuedAt = Date.now();
    const device = await client.initiateDeviceAuthorization(config, { scope: 'openid' });
    // Before the lifetime is over the code is merely pending (so the refusal below is due to time alone).
    const pending = await fetch(config.serverMetadata().token_endpoint as string, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ grant_type: DEVICE_GRANT, device_code: device.device_code, client_id: 'cli' }),
    });
    assert.equal((await pending.json() as { error: string }).error, 'authorization_pending');

    await waitUntilExpired(issuedAt, device.expires_in);
    // interval 0: poll at once; an explicit signal, because openid-client's default one (expires_in) would give up
    // on its own before asking the server, and the server's answer is what is under test.
    const outcome = await oauthError(client.pollDeviceAuthorizationGrant(
      config, { ...device, interval: 0 }, { resource: GATEWAY_AUDIENCE }, { signal: AbortSignal.timeout(10_000) },
    ));
    assert.equal(outcome.error, 'expired_token', `RFC 8628 §3.5: an expired device_code gets expired_token, got ${outcome.error}`);
    assert.equal(outcome.status, 400);
  });

  it('no longer accepts the expired user code on the verification page', async () => {
    const issuedAt = Date.now();
    const device = await client.initiateDeviceAuthorization(config, { scope: 'openid' });
    await waitUntilExpired(issuedAt, device.expires_in);
    const browser = new BrowserSession(op.issuer);
    await browser.get(device.verification_uri);
    const page = await browser.submit({ user_code: device.user_code });
    assert.ok(page.status >= 200 && page.status < 500, `status ${page.status}`);
    assert.match(page.html, /not valid or has expired/);
    assert.doesNotMatch(page.html, /Confirm the device/);
  });

  it('`embedgate token --device` prints the address, then exits 1 saying the code expired (never approved)', async () => {
    const started = Date.now();
    const result = await runCli(['token', '--issuer', op.issuer, '--device', '--client-id', 'cli'], { env: cleanEnv() });
    assert.equal(result.code, 1, result.stderr);
    assert.equal(result.stdout, '', 'no token on stdout');
    const address = result.stderr.indexOf(`${op.issuer}/device`);
    const expired = result.stderr.search(/expired_token: the code expired before the sign-in was approved/);
    assert.ok(address >= 0, `the verification address is printed:\n${result.stderr}`);
    assert.match(result.stderr, /the code expires in 1 second\b/);
    assert.ok(expired > address, `then the expiry message:\n${result.stderr}`);
    assert.ok(Date.now() - started >= DEVICE_TTL_SECONDS * 1000, 'it waited for the code\'s lifetime');
  });
});
