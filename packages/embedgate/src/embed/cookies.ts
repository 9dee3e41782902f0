// The embed session cookie: a random id in a __Host- cookie that works in cross-site frames (SameSite=None; Partitioned).
export const SESSION_COOKIE = '__Host-embedgate';

export type CookieLookup = { kind: 'none' } | { kind: 'one'; value: string } | { kind: 'duplicate' };

/** Finds the session cookie in a Cookie header; two copies (cookie tossing) are reported, never guessed between. */
export function findSessionCookie(header: string | undefined): CookieLookup {
  if (header === undefined || !header.includes(SESSION_COOKIE)) return { kind: 'none' };
  let found: string | undefined;
  for (const part of header.split(';')) {
    const eq = part.indexOf('=');
    if (eq === -1 || part.slice(0, eq).trim() !== SESSION_COOKIE) continue;
    if (found !== undefined) return { kind: 'duplicate' };
    found = part.slice(eq + 1).trim();
  }
  return found === undefined || found === '' ? { kind: 'none' } : { kind: 'one', value: found };
}

export function sessionCookie(value: string, maxAgeSeconds: number): string {
  return `${SESSION_COOKIE}=${value}; Path=/; Max-Age=${Math.max(0, Math.floor(maxAgeSeconds))}; Secure; HttpOnly; SameSite=None; Partitioned`;
}

export function clearedSessionCookie(): string {
  return sessionCookie('', 0);
}

/** The Cookie header without the gateway's session cookie: apps never see it (or could replay it at other apps). */
export function withoutSessionCookie(header: string): string | undefined {
  if (!header.includes(SESSION_COOKIE)) return header;
  const kept = header.split(';').map((part) => part.trim()).filter((part) => part !== '' && part.split('=')[0]?.trim() !== SESSION_COOKIE);
  return kept.length === 0 ? undefined : kept.join('; ');
}

/** True for a Set-Cookie that would write the gateway's own cookie; an app may never set or clear it. */
export function setsSessionCookie(setCookie: string): boolean {
  return setCookie.trimStart().toLowerCase().startsWith(`${SESSION_COOKIE.toLowerCase()}=`);
}
