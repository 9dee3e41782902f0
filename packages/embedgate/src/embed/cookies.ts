// The gateway's cookies: the embed session cookie, a random id in a __Host- cookie that works in cross-site frames
// (SameSite=None; Partitioned), and the rule that every cookie named __Host-embedgate… is the gateway's alone.
export const SESSION_COOKIE = '__Host-embedgate';
/** Every cookie of the gateway starts with this; apps never see them, and may never set them. */
const GATEWAY_COOKIE_PREFIX = '__Host-embedgate';
const EQUALS = 0x3d;

export type CookieLookup = { kind: 'none' } | { kind: 'one'; value: string } | { kind: 'duplicate' };

const NO_COOKIE: CookieLookup = { kind: 'none' };

/** Finds a cookie (the embed session's by default); two copies (cookie tossing) are reported, never guessed between. */
export function findSessionCookie(header: string | undefined, name = SESSION_COOKIE): CookieLookup {
  if (header === undefined || !header.includes(name)) return NO_COOKIE;
  // The usual header in a frame: that cookie alone.
  if (header.startsWith(name) && header.charCodeAt(name.length) === EQUALS && !header.includes(';')) {
    const value = header.slice(name.length + 1).trim();
    return value === '' ? NO_COOKIE : { kind: 'one', value };
  }
  let found: string | undefined;
  for (const part of header.split(';')) {
    const eq = part.indexOf('=');
    if (eq === -1 || part.slice(0, eq).trim() !== name) continue;
    if (found !== undefined) return { kind: 'duplicate' };
    found = part.slice(eq + 1).trim();
  }
  return found === undefined || found === '' ? NO_COOKIE : { kind: 'one', value: found };
}

export function sessionCookie(value: string, maxAgeSeconds: number): string {
  return `${SESSION_COOKIE}=${value}; Path=/; Max-Age=${Math.max(0, Math.floor(maxAgeSeconds))}; Secure; HttpOnly; SameSite=None; Partitioned`;
}

export function clearedSessionCookie(): string {
  return sessionCookie('', 0);
}

/** The Cookie header without the gateway's cookies: apps never see them (or could replay them at other apps). */
export function withoutSessionCookie(header: string): string | undefined {
  if (!header.includes(GATEWAY_COOKIE_PREFIX)) return header;
  // One of the gateway's cookies alone (the usual header in a frame): nothing is left for the app.
  if (header.startsWith(GATEWAY_COOKIE_PREFIX) && !header.includes(';')) return undefined;
  const kept = header.split(';').map((part) => part.trim())
    .filter((part) => part !== '' && !(part.split('=')[0]?.trim() ?? '').startsWith(GATEWAY_COOKIE_PREFIX));
  return kept.length === 0 ? undefined : kept.join('; ');
}

/** True for a Set-Cookie that would write one of the gateway's cookies; an app may never set or clear them. */
export function setsSessionCookie(setCookie: string): boolean {
  return setCookie.trimStart().toLowerCase().startsWith(GATEWAY_COOKIE_PREFIX.toLowerCase());
}
