// The request mix: what each kind of request is, how often it is sent, and which answers are expected of it.
import { REQUEST_PATH } from '../servers/payload.js';
import type { EmbedSession, SessionPool } from './sessions.js';
import { withBadSignature, type TokenSource } from './tokens.js';
import { ADMIN_OUTPUT, OPEN_OUTPUT } from './world.js';

export const KINDS = ['bearer', 'cookie', 'handle', 'callback', 'callback-denied', 'bad-token'] as const;
export type Kind = (typeof KINDS)[number];

/** Share of the requests (%), and the one status each kind must get. */
export const MIX: Record<Kind, { weight: number; expect: number; label: string }> = {
  bearer: { weight: 35, expect: 200, label: 'GET, bearer token' },
  cookie: { weight: 25, expect: 200, label: 'GET, embed session cookie' },
  handle: { weight: 5, expect: 200, label: 'GET, worker-mode session handle' },
  callback: { weight: 20, expect: 200, label: 'Dash callback POST, allowed by its rule' },
  'callback-denied': { weight: 5, expect: 403, label: 'Dash callback POST, admin-only output, analyst token' },
  'bad-token': { weight: 10, expect: 401, label: 'GET, bad token (expired, bad signature, garbage)' },
};

export interface SoakRequest {
  kind: Kind;
  method: 'GET' | 'POST';
  path: string;
  headers: Record<string, string>;
  body?: string;
  /** What a 200 answer's body must contain (the right upstream answer came back). */
  bodyHas?: string;
  /** The session it uses, released when the answer is in. */
  session?: EmbedSession;
}

export interface TrafficSources {
  gatewayUrl: string;
  analysts: TokenSource[];
  admin: TokenSource;
  sessions: SessionPool;
}

const CUMULATIVE = (() => {
  let sum = 0;
  return KINDS.map((kind) => ({ kind, upTo: (sum += MIX[kind].weight) }));
})();
const TOTAL_WEIGHT = CUMULATIVE.at(-1)?.upTo ?? 100;

export function pickKind(random = Math.random()): Kind {
  const at = random * TOTAL_WEIGHT;
  return (CUMULATIVE.find((entry) => at < entry.upTo) ?? CUMULATIVE[0])?.kind as Kind;
}

function callbackBody(output: string): string {
  const [id, property] = output.split('.') as [string, string];
  return JSON.stringify({
    output, outputs: { id, property },
    inputs: [{ id: 'region-dropdown', property: 'value', value: 'emea' }, { id: 'period-slider', property: 'value', value: [3, 9] }],
    changedPropIds: ['region-dropdown.value'],
    state: [{ id: id, property: 'page_current', value: 0 }],
  });
}

let turn = 0;
const bearer = (tokens: TokenSource): Record<string, string> => ({ authorization: `Bearer ${tokens.current().value}` });

function callback(output: string, headers: Record<string, string>, kind: Kind, session?: EmbedSession): SoakRequest {
  return {
    kind, method: 'POST', path: '/sales/_dash-update-component', headers: { ...headers, 'content-type': 'application/json' },
    body: callbackBody(output), bodyHas: `rows for ${output}`, ...(session === undefined ? {} : { session }),
  };
}

/** The next request of that kind, or undefined when it cannot be made now (no usable session). */
export function buildRequest(kind: Kind, sources: TrafficSources): SoakRequest | undefined {
  turn += 1;
  const analyst = sources.analysts[turn % sources.analysts.length] as TokenSource;
  const get = (headers: Record<string, string>, session?: EmbedSession): SoakRequest =>
    ({ kind, method: 'GET', path: REQUEST_PATH, headers, bodyHas: '"region":"emea"', ...(session === undefined ? {} : { session }) });
  switch (kind) {
    case 'bearer':
      return get(bearer(analyst));
    case 'cookie':
    case 'handle': {
      const session = sources.sessions.acquire(kind);
      return session === undefined ? undefined : get(session.headers(), session);
    }
    case 'callback': {
      // An analyst's token, an admin's on the admin-only output, or the session cookie from the app's own origin.
      const variant = turn % 4;
      if (variant === 0) return callback(ADMIN_OUTPUT, bearer(sources.admin), kind);
      if (variant === 1) {
        const session = sources.sessions.acquire('cookie');
        if (session !== undefined) return callback(OPEN_OUTPUT, { ...session.headers(), origin: sources.gatewayUrl }, kind, session);
      }
      return callback(OPEN_OUTPUT, bearer(analyst), kind);
    }
    case 'callback-denied':
      return { ...callback(ADMIN_OUTPUT, bearer(analyst), kind), bodyHas: 'callback_forbidden' };
    case 'bad-token': {
      const variant = turn % 3;
      const expired = analyst.expiredToken();
      // Until a token of the run has expired (about 70 s in), its share goes to bad signatures.
      if (variant === 0) return { ...get({ authorization: 'Bearer not-a-jwt' }), bodyHas: 'malformed_token' };
      if (variant === 1 && expired !== undefined) return { ...get({ authorization: `Bearer ${expired.value}` }), bodyHas: 'token_expired' };
      return { ...get({ authorization: `Bearer ${withBadSignature(analyst.current().value)}` }), bodyHas: 'invalid_signature' };
    }
  }
}
