// Pure decisions shared by the host and frame halves: origins, message shapes, renewal timing.
// Nothing here touches the DOM, so it is unit-tested in Node.
import type { FrameMessage, HostMessage } from './protocol.js';

/** Longest delay setTimeout honours; longer ones fire at once. */
export const MAX_TIMER_MS = 2 ** 31 - 1;

/** True for a serialized http(s) origin such as `https://host.example:8443` (no path, no slash, never `*`). */
export function isOrigin(value: unknown): value is string {
  if (typeof value !== 'string' || !/^https?:\/\//.test(value)) return false;
  try {
    return new URL(value).origin === value;
  } catch {
    return false;
  }
}

/** The allowlist from `data-embedgate-origins` (a JSON array); anything that is not an exact origin is dropped. */
export function parseOrigins(json: string | null | undefined): string[] {
  try {
    const list: unknown = JSON.parse(json ?? '');
    return Array.isArray(list) ? list.filter(isOrigin) : [];
  } catch {
    return [];
  }
}

/** The origin of a URL (e.g. document.referrer), or undefined when it has none. */
export function originOf(url: string | null | undefined): string | undefined {
  try {
    const origin = new URL(url ?? '').origin;
    return origin === 'null' ? undefined : origin;
  } catch {
    return undefined;
  }
}

export interface ParentInfo {
  /** location.ancestorOrigins, or undefined where the browser lacks it (Firefox). */
  ancestorOrigins?: ArrayLike<string> | null;
  /** document.referrer */
  referrer: string;
  /** location.origin of the frame itself */
  self: string;
  /** the allowlist */
  allowed: readonly string[];
}

/**
 * The exact origins the frame may post its hello to. The parent origin is location.ancestorOrigins[0] when the
 * browser provides it, else the origin of document.referrer; it must equal an allowlist entry exactly, or the
 * answer is [] (send nothing). Only when the parent cannot be known — no ancestorOrigins and a referrer that is
 * empty or the frame's own origin (after in-app navigation, or a no-referrer policy) — is the answer the whole
 * allowlist: the browser then delivers each hello only if the parent really has that origin (targetOrigin).
 */
export function targetOrigins(info: ParentInfo): string[] {
  const ancestor = info.ancestorOrigins ? info.ancestorOrigins[0] ?? '' : undefined;
  let parent: string | undefined;
  if (ancestor !== undefined && ancestor !== 'null') parent = ancestor;
  else {
    const referrer = originOf(info.referrer);
    if (referrer !== undefined && referrer !== info.self) parent = referrer;
  }
  if (parent === undefined) return info.allowed.filter(isOrigin);
  return isOrigin(parent) && info.allowed.includes(parent) ? [parent] : [];
}

/** Same-origin test for a request URL, resolved like fetch/XHR resolve it (against the document's base URL). */
export function isSameOrigin(url: string | URL, base: string, origin: string): boolean {
  try {
    return new URL(url, base).origin === origin;
  } catch {
    return false;
  }
}

const isObject = (data: unknown): data is Record<string, unknown> => typeof data === 'object' && data !== null;
const optionalString = (value: unknown): boolean => value === undefined || typeof value === 'string';

/** A bearer token that can go in a header: visible ASCII only, bounded. */
export function isTokenString(value: unknown): value is string {
  return typeof value === 'string' && value.length > 0 && value.length <= 16384 && /^[!-~]+$/.test(value);
}

/** Validates a message the frame receives on its port. */
export function isHostMessage(data: unknown): data is HostMessage {
  if (!isObject(data)) return false;
  switch (data.type) {
    case 'token': return isTokenString(data.token);
    case 'no-token': return (data.reason === 'signed-out' || data.reason === 'error') && optionalString(data.message);
    case 'sign-out': return true;
    default: return false;
  }
}

/** Validates a message the host receives on its port. */
export function isFrameMessage(data: unknown): data is FrameMessage {
  if (!isObject(data)) return false;
  switch (data.type) {
    case 'token-request': case 'ready': case 'signed-out': return true;
    case 'forbidden': return optionalString(data.message);
    case 'error': return typeof data.message === 'string';
    default: return false;
  }
}

/** `expires_at` (epoch seconds, a number) from a SessionResponse body, or the `data-embedgate-expires` string. */
export function parseExpiry(value: unknown): number | undefined {
  const n = isObject(value) ? value.expires_at : typeof value === 'string' && value.trim() !== '' ? Number(value) : value;
  return typeof n === 'number' && Number.isFinite(n) && n > 0 ? n : undefined;
}

/** Renewal starts at least this long before the session ends, however short it is (a slow host, a busy machine). */
const RENEW_MARGIN_MS = 5000;

/**
 * Milliseconds until the session should be renewed: 70% of the remaining life, but at least 5 s before the end;
 * 0 when it is (nearly) over, undefined when the expiry is unknown. Capped so that setTimeout does not overflow.
 */
export function renewDelay(expiresAt: number | undefined, now: number): number | undefined {
  if (expiresAt === undefined || !Number.isFinite(expiresAt)) return undefined;
  const remaining = expiresAt * 1000 - now;
  return Math.min(MAX_TIMER_MS, Math.max(0, Math.round(Math.min(0.7 * remaining, remaining - RENEW_MARGIN_MS))));
}
