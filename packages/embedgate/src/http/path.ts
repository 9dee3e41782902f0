// The one path normalization: its output is both what policies match and what the upstream receives.

export type NormalizedTarget =
  | { ok: true; path: string; query: string }
  | { ok: false; reason: 'invalid_path' | 'ambiguous_path' | 'uri_too_long'; detail: string };

const MAX_TARGET_LENGTH = 8192;
const UNRESERVED = /[A-Za-z0-9\-._~]/;
// Characters allowed raw in a path (RFC 3986 pchar and "/"), minus ";" which some servers treat as a
// parameter separator (`/admin;x=y` is `/admin` to Tomcat or Jetty but not to us).
const RAW_PATH_CHAR = /^[A-Za-z0-9\-._~!$&'()*+,=:@/%]*$/;
/** Decoded, these end a path or split it: "/" and "\\" separate segments, ";" starts parameters, "#" and "?" end it. */
const AMBIGUOUS_WHEN_DECODED = new Set(['/', '\\', ';', '#', '?']);
/** A path that is already normal: allowed raw characters, no escapes, no empty, "." or ".." segments. */
const NORMAL_PATH = /^(?:\/(?!\.\.?(?:\/|$))[A-Za-z0-9\-._~!$&'()*+,=:@]+)*\/?$/;

function fail(reason: 'invalid_path' | 'ambiguous_path' | 'uri_too_long', detail: string): NormalizedTarget {
  return { ok: false, reason, detail };
}

/**
 * Normalizes a request target (origin-form). Unreserved characters are decoded, other escapes are kept
 * in upper case, repeated slashes collapse; anything a server could read two ways (encoded "/", "\", "#",
 * "?" or ";", double encoding, NUL, dot segments, a raw "#", ";" or "\") is refused rather than guessed.
 */
export function normalizeTarget(target: string): NormalizedTarget {
  if (target.length > MAX_TARGET_LENGTH) return fail('uri_too_long', 'the request target is too long');
  if (!target.startsWith('/')) return fail('invalid_path', 'the request target must be an absolute path');
  const q = target.indexOf('?');
  const rawPath = q === -1 ? target : target.slice(0, q);
  const query = q === -1 ? '' : target.slice(q);
  // Most requests: nothing to decode or collapse.
  if (NORMAL_PATH.test(rawPath)) return { ok: true, path: rawPath, query };
  if (!RAW_PATH_CHAR.test(rawPath)) {
    return fail(rawPath.includes(';') ? 'ambiguous_path' : 'invalid_path', 'the path contains a character that is not allowed');
  }

  let decoded = rawPath;
  if (rawPath.includes('%')) {
    let out = '';
    for (let i = 0; i < rawPath.length; i++) {
      const ch = rawPath[i] as string;
      if (ch !== '%') {
        out += ch;
        continue;
      }
      const hex = rawPath.slice(i + 1, i + 3);
      if (!/^[0-9A-Fa-f]{2}$/.test(hex)) return fail('invalid_path', 'the path has a malformed percent-escape');
      const code = parseInt(hex, 16);
      const char = String.fromCharCode(code);
      if (code < 0x20 || code === 0x7f || AMBIGUOUS_WHEN_DECODED.has(char)) {
        return fail('ambiguous_path', 'the path has an encoded character that servers read differently');
      }
      if (char === '%' && /^[0-9A-Fa-f]{2}$/.test(rawPath.slice(i + 3, i + 5))) {
        return fail('ambiguous_path', 'the path is percent-encoded twice');
      }
      out += UNRESERVED.test(char) ? char : `%${hex.toUpperCase()}`;
      i += 2;
    }
    decoded = out;
  }

  const segments = decoded.split('/');
  const kept: string[] = [];
  for (const segment of segments) {
    if (segment === '') continue;
    if (segment === '.' || segment === '..') return fail('ambiguous_path', 'the path has a dot segment');
    kept.push(segment);
  }
  const trailing = decoded.endsWith('/') && kept.length > 0 ? '/' : '';
  return { ok: true, path: `/${kept.join('/')}${trailing}`, query };
}
