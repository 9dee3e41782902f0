// Header hygiene: which request headers never reach an upstream, and which ones may appear only once.

/** Hop-by-hop headers (RFC 9110 §7.6.1) plus proxy-only ones; never forwarded in either direction. */
const HOP_BY_HOP = new Set([
  'connection', 'keep-alive', 'proxy-connection', 'transfer-encoding', 'te', 'trailer', 'upgrade',
  'proxy-authorization', 'proxy-authenticate', 'http2-settings',
]);

/**
 * Header names (canonical spelling) that carry identity or routing facts only the gateway may set.
 * Incoming copies are removed whatever their case and whether they use "-", "_" or ".".
 */
const GATEWAY_OWNED_PREFIXES = ['x-forwarded-', 'x-embedgate-', 'x-auth-request-', 'x-original-', 'x-remote-'];
const GATEWAY_OWNED = new Set([
  'forwarded', 'x-real-ip', 'remote-user', 'x-user', 'x-email', 'x-groups', 'x-rewrite-url', 'x-request-id',
]);

/** Lower case, with "_" and "." read as "-": the spelling every proxy and framework may fold a name to. */
export function canonicalHeaderName(name: string): string {
  return name.toLowerCase().replace(/[_.]/g, '-');
}

/** Every gateway-owned name starts with one of these letters, so most names are ruled out without folding them. */
const OWNED_INITIALS = new Set([...GATEWAY_OWNED, ...GATEWAY_OWNED_PREFIXES].map((name) => name[0] as string));

export function isGatewayOwnedHeader(name: string): boolean {
  if (!OWNED_INITIALS.has(name.charAt(0).toLowerCase())) return false;
  const canonical = canonicalHeaderName(name);
  if (GATEWAY_OWNED.has(canonical)) return true;
  return GATEWAY_OWNED_PREFIXES.some((prefix) => canonical.startsWith(prefix));
}

const NO_TOKENS: ReadonlySet<string> = new Set();

/** Names listed in a Connection header, which are hop-by-hop for this message. */
function connectionTokens(value: string | string[] | undefined): ReadonlySet<string> {
  if (value === undefined || value === 'keep-alive' || value === 'close') return NO_TOKENS;
  const tokens = new Set<string>();
  for (const part of typeof value === 'string' ? [value] : value) {
    for (const token of part.split(',')) {
      const trimmed = token.trim().toLowerCase();
      if (trimmed !== '') tokens.add(trimmed);
    }
  }
  return tokens;
}

export type HeaderMap = Record<string, string | string[]>;

/**
 * Copies the request headers an upstream may see: no hop-by-hop headers, nothing the gateway owns,
 * no Authorization unless the app opts in, no Host (the proxy sets its own).
 */
export function forwardableRequestHeaders(
  headers: Record<string, string | string[] | undefined>,
  forwardAuthorization: boolean,
): HeaderMap {
  const listed = connectionTokens(headers.connection);
  const out: HeaderMap = {};
  for (const name in headers) {
    const value = headers[name];
    if (value === undefined) continue;
    if (HOP_BY_HOP.has(name) || listed.has(name) || name === 'host') continue;
    if (name === 'authorization' && !forwardAuthorization) continue;
    if (isGatewayOwnedHeader(name)) continue;
    out[name] = value;
  }
  return out;
}

/** Copies upstream response headers minus hop-by-hop ones. */
export function forwardableResponseHeaders(headers: Record<string, string | string[] | undefined>): HeaderMap {
  const listed = connectionTokens(headers.connection);
  const out: HeaderMap = {};
  for (const name in headers) {
    const value = headers[name];
    if (value === undefined || HOP_BY_HOP.has(name) || listed.has(name)) continue;
    out[name] = value;
  }
  return out;
}

/** Headers that must appear at most once; a second copy makes the request ambiguous (400). Each has its own bit. */
const SINGLETON_BITS = new Map(['host', 'authorization', 'content-length', 'x-forwarded-host', 'x-forwarded-uri', 'x-forwarded-proto']
  .map((name, i) => [name, 1 << i]));

const VISIBLE_ASCII = /^[\t\x20-\x7e]*$/;

/**
 * Finds what makes a raw header list ambiguous: a singleton header sent twice, or a value with bytes
 * outside visible ASCII (obs-text), which proxies and apps decode differently.
 */
export function rawHeaderProblem(rawHeaders: string[]): { error: 'duplicate_header' | 'invalid_header'; message: string } | undefined {
  let seen = 0;
  for (let i = 0; i < rawHeaders.length; i += 2) {
    const name = (rawHeaders[i] as string).toLowerCase();
    if (!VISIBLE_ASCII.test(rawHeaders[i + 1] as string)) return { error: 'invalid_header', message: `The ${name} header has characters outside visible ASCII.` };
    const bit = SINGLETON_BITS.get(name);
    if (bit === undefined) continue;
    if ((seen & bit) !== 0) return { error: 'duplicate_header', message: `The ${name} header may appear only once.` };
    seen |= bit;
  }
  return undefined;
}
