// Signs a user in through the gateway's standalone login over plain HTTP: the gateway's redirect, the embedded IdP's
// real login (and consent) form, and the callback; returns the session cookie a browser would keep.
import assert from 'node:assert/strict';
import { BrowserSession } from './browser-session.js';
import { isConsentPage, isLoginPage, submitLogin } from './idp-rp.js';
import { rawRequest, type RawResponse } from './raw-http.js';

export const LOGIN_COOKIE = '__Host-embedgate-session';

/** A top-level navigation as a browser sends it (fetch() would rewrite the Sec-Fetch-* headers). */
export function navigate(gatewayUrl: string, target: string, cookie?: string): Promise<RawResponse> {
  return rawRequest(gatewayUrl, target, [
    'Sec-Fetch-Dest: document', 'Sec-Fetch-Mode: navigate', 'Sec-Fetch-Site: none', 'Accept: text/html',
    ...(cookie === undefined ? [] : [`Cookie: ${cookie}`]),
  ]);
}

/** The value of `name` in a response's Set-Cookie lines (undefined when it is not set). */
export function setCookieValue(setCookies: string[], name: string): string | undefined {
  for (const line of setCookies) {
    const [pair = ''] = line.split(';');
    if (pair.startsWith(`${name}=`)) return pair.slice(name.length + 1);
  }
  return undefined;
}

/**
 * Opens `path` on the gateway as a navigation, signs in at the IdP as `user` (reusing `idpBrowser`'s IdP session
 * when given) and follows the callback. Returns the session cookie value and where the callback sent the browser.
 */
export async function signInThroughGateway(
  gatewayUrl: string, issuer: string, user: { username: string; password: string }, path: string, idpBrowser = new BrowserSession(issuer),
): Promise<{ cookie: string; location: string; idpBrowser: BrowserSession }> {
  const start = await navigate(gatewayUrl, path);
  assert.equal(start.status, 302, 'the gateway sends the browser to the IdP');
  const transaction = start.setCookies.map((line) => line.split(';')[0] as string).filter((pair) => pair.startsWith('__Host-embedgate-tx-'));
  let page = await idpBrowser.get(start.headers.location as string);
  if (isLoginPage(page)) page = await submitLogin(idpBrowser, user);
  if (isConsentPage(page)) page = await idpBrowser.submit({}, { button: 'Allow' });
  assert.ok(page.left && page.url.startsWith(gatewayUrl), `the IdP sends the browser back to the gateway, not ${page.url}`);
  const back = new URL(page.url);
  const callback = await navigate(gatewayUrl, `${back.pathname}${back.search}`, transaction.join('; '));
  assert.equal(callback.status, 302, 'the callback signs the user in');
  const cookie = setCookieValue(callback.setCookies, LOGIN_COOKIE);
  assert.ok(cookie !== undefined && cookie !== '', 'the callback sets the session cookie');
  return { cookie, location: callback.headers.location as string, idpBrowser };
}
