// The standalone login's cookies: the first-party session cookie (a random id, SameSite=Lax) and one short-lived
// transaction cookie per sign-in in progress, named after its state so that parallel sign-ins do not collide.
import { createHash } from 'node:crypto';
import { findSessionCookie } from '../embed/cookies.js';
import type { Sessions } from '../sessions/sessions.js';

export const LOGIN_SESSION_COOKIE = '__Host-embedgate-session';
const TRANSACTION_PREFIX = '__Host-embedgate-tx-';

export function loginSessionCookie(value: string, maxAgeSeconds: number): string {
  return `${LOGIN_SESSION_COOKIE}=${value}; Path=/; Max-Age=${Math.max(0, Math.floor(maxAgeSeconds))}; Secure; HttpOnly; SameSite=Lax`;
}

/** Ends the login session the browser's cookie names, if there is one (sign-out, a fresh sign-in). */
export async function endBrowserSession(sessions: Sessions, cookieHeader: string | undefined): Promise<void> {
  const cookie = findSessionCookie(cookieHeader, LOGIN_SESSION_COOKIE);
  const session = cookie.kind === 'one' ? await sessions.find(cookie.value) : undefined;
  if (session !== undefined) await sessions.end(session.id);
}

export function transactionCookieName(state: string): string {
  return TRANSACTION_PREFIX + createHash('sha256').update(state).digest('base64url').slice(0, 16);
}

export function transactionCookie(name: string, value: string, maxAgeSeconds: number): string {
  return `${name}=${value}; Path=/; Max-Age=${maxAgeSeconds}; Secure; HttpOnly; SameSite=Lax`;
}

/** The transaction cookies a request carries, name → value. */
export function transactionCookies(header: string | undefined): Map<string, string> {
  const found = new Map<string, string>();
  for (const part of (header ?? '').split(';')) {
    const eq = part.indexOf('=');
    const name = part.slice(0, eq).trim();
    if (eq !== -1 && name.startsWith(TRANSACTION_PREFIX)) found.set(name, part.slice(eq + 1).trim());
  }
  return found;
}
