// The identity the gateway forwards to its upstreams in the X-Forwarded-User and X-Forwarded-Groups headers.
import type { IncomingHttpHeaders } from 'node:http';

export interface Identity {
  /** Undefined when the request carries no user (the app was reached without the gateway, or anonymously). */
  user: string | undefined;
  groups: string[];
}

function header(headers: IncomingHttpHeaders, name: string): string {
  const value = headers[name];
  return (Array.isArray(value) ? value.join(',') : (value ?? '')).trim();
}

export function identityFrom(headers: IncomingHttpHeaders): Identity {
  const user = header(headers, 'x-forwarded-user');
  const groups = header(headers, 'x-forwarded-groups').split(',').map((group) => group.trim()).filter(Boolean);
  return { user: user === '' ? undefined : user, groups };
}

/** "Signed in as alice (groups: sales, admin)", or "Signed in as anonymous". */
export function signedInAs({ user, groups }: Identity): string {
  const who = `Signed in as ${user ?? 'anonymous'}`;
  return groups.length > 0 ? `${who} (groups: ${groups.join(', ')})` : who;
}
