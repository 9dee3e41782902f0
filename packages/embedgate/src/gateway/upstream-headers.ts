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

export function upstreamHeaders(
  req: IncomingMessage,
  client: ClientAddress,
  requestId: string,
  forwardAuthorization: boolean,
  identity: Identity | undefined,
  assertion: string | undefined,
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
  if (identity !== undefined) Object.assign(headers, identityHeaders(identity, assertion));
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

/** The identity headers the gateway sets: user, email, groups and the signed assertion. */
export function identityHeaders(identity: Identity, assertion: string | undefined): Record<string, string> {
  const headers = { ...userHeaders(identity) };
  if (assertion !== undefined) headers['x-embedgate-assertion'] = assertion;
  return headers;
}
