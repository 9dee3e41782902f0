// Builds the header set an upstream receives: the caller's safe headers plus the gateway's identity headers.
import type { IncomingMessage } from 'node:http';
import { withoutSessionCookie } from '../embed/cookies.js';
import { forwardableRequestHeaders, type HeaderMap } from '../http/headers.js';
import type { Identity } from '../identity/identity.js';
import type { ClientAddress } from './client-address.js';

/** Header values must be visible ASCII; anything else is percent-encoded so it cannot split a header. */
function headerSafe(value: string): string {
  return /^[\x20-\x7e]*$/.test(value) ? value : encodeURIComponent(value);
}

/** The identity headers an app may get (apps[].identity_headers). */
export type IdentityHeader = 'user' | 'groups' | 'email' | 'assertion';
const ALL_IDENTITY_HEADERS: readonly IdentityHeader[] = ['user', 'groups', 'email', 'assertion'];
const USER_HEADER_NAMES = { user: 'x-forwarded-user', groups: 'x-forwarded-groups', email: 'x-forwarded-email' } as const;

export function upstreamHeaders(
  req: IncomingMessage,
  client: ClientAddress,
  requestId: string,
  forwardAuthorization: boolean,
  identity: Identity | undefined,
  assertion: string | undefined,
  include: readonly IdentityHeader[] = ALL_IDENTITY_HEADERS,
): HeaderMap {
  const headers = forwardableRequestHeaders(req.headers, forwardAuthorization);
  if (typeof headers.cookie === 'string') {
    const cookie = withoutSessionCookie(headers.cookie);
    if (cookie === undefined) delete headers.cookie;
    else headers.cookie = cookie;
  }
  headers['x-forwarded-for'] = client.forwardedFor;
  headers['x-forwarded-proto'] = client.proto;
  if (client.host !== '') headers['x-forwarded-host'] = client.host;
  headers['x-request-id'] = requestId;
  if (identity !== undefined) addIdentityHeaders(headers, identity, assertion, include);
  return headers;
}

/** User, groups and email headers per verified identity: an identity is reused for as long as its token is cached. */
const userHeadersOf = new WeakMap<Identity, Record<string, string>>();

function userHeaders(identity: Identity): Record<string, string> {
  let headers = userHeadersOf.get(identity);
  if (headers === undefined) {
    headers = {
      'x-forwarded-user': headerSafe(identity.subject),
      'x-forwarded-groups': headerSafe([...identity.roles].join(',')),
    };
    if (identity.email !== undefined) headers['x-forwarded-email'] = headerSafe(identity.email);
    userHeadersOf.set(identity, headers);
  }
  return headers;
}

/** The identity headers the gateway sets: user, email, groups and the signed assertion, or those `include` names. */
export function identityHeaders(identity: Identity, assertion: string | undefined, include: readonly IdentityHeader[] = ALL_IDENTITY_HEADERS): Record<string, string> {
  const headers: Record<string, string> = {};
  addIdentityHeaders(headers, identity, assertion, include);
  return headers;
}

/** identityHeaders(), written into `headers`. */
function addIdentityHeaders(headers: HeaderMap, identity: Identity, assertion: string | undefined, include: readonly IdentityHeader[]): void {
  const user = userHeaders(identity);
  if (include.length === ALL_IDENTITY_HEADERS.length) Object.assign(headers, user);
  else {
    for (const name of include) {
      if (name === 'assertion') continue;
      const value = user[USER_HEADER_NAMES[name]];
      if (value !== undefined) headers[USER_HEADER_NAMES[name]] = value;
    }
  }
  if (assertion !== undefined && include.includes('assertion')) headers['x-embedgate-assertion'] = assertion;
}
