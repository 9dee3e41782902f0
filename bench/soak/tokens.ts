// Access tokens from the embedded IdP by client credentials, renewed at half their life like a well-behaved client;
// tokens that have really expired are kept to be sent as bad ones.
import { CLIENT_SECRET, LEEWAY_SECONDS, TOKEN_SECONDS } from './world.js';

/** A token counts as renewable (and is replaced) once it has less than this left. */
const RENEW_BELOW_SECONDS = TOKEN_SECONDS / 2;
/** An old token is sent as an expired one from this long past exp + the gateway's leeway on. */
const EXPIRED_MARGIN_SECONDS = 2;

export interface Token {
  value: string;
  /** exp, in seconds since the epoch. */
  exp: number;
}

export interface GrantCounts {
  ok: number;
  failed: number;
  lastError: string | undefined;
}

export const nowSeconds = (): number => Date.now() / 1000;

function expOf(jwt: string): number {
  const payload = JSON.parse(Buffer.from(jwt.split('.')[1] ?? '', 'base64url').toString('utf8')) as { exp?: unknown };
  if (typeof payload.exp !== 'number') throw new Error('the access token has no exp');
  return payload.exp;
}

/** The same token with one character of its signature changed: same kid, so no JWKS fetch, a bad signature. */
export function withBadSignature(jwt: string): string {
  const at = jwt.lastIndexOf('.') + 20;
  const char = jwt[at] === 'A' ? 'B' : 'A';
  return `${jwt.slice(0, at)}${char}${jwt.slice(at + 1)}`;
}

export async function tokenEndpointOf(issuer: string): Promise<string> {
  const discovery = await (await fetch(`${issuer}/.well-known/openid-configuration`)).json() as { token_endpoint?: string };
  if (discovery.token_endpoint === undefined) throw new Error('the IdP names no token endpoint');
  return discovery.token_endpoint;
}

export class TokenSource {
  private token: Token | undefined;
  private expired: Token | undefined;
  private readonly retired: Token[] = [];
  private renewing: Promise<void> | undefined;

  constructor(readonly clientId: string, readonly role: string, private readonly endpoint: string, private readonly resource: string, private readonly counts: GrantCounts) {}

  private async fetchToken(): Promise<Token> {
    const response = await fetch(this.endpoint, {
      method: 'POST',
      headers: {
        'content-type': 'application/x-www-form-urlencoded',
        authorization: `Basic ${Buffer.from(`${this.clientId}:${CLIENT_SECRET}`).toString('base64')}`,
      },
      body: new URLSearchParams({ grant_type: 'client_credentials', resource: this.resource }),
    });
    const body = await response.json() as { access_token?: string; error?: string };
    if (!response.ok || body.access_token === undefined) throw new Error(`token endpoint answered ${response.status} ${body.error ?? ''}`);
    return { value: body.access_token, exp: expOf(body.access_token) };
  }

  /** Gets a new token when the current one is past half its life (or none yet); other callers share the request. */
  refresh(): Promise<void> {
    if (this.token !== undefined && this.token.exp - nowSeconds() > RENEW_BELOW_SECONDS) return Promise.resolve();
    this.renewing ??= this.fetchToken().then((token) => {
      this.counts.ok += 1;
      if (this.token !== undefined) this.retired.push(this.token);
      this.token = token;
    }, (error: unknown) => {
      this.counts.failed += 1;
      this.counts.lastError = (error as Error).message;
    }).finally(() => {
      this.renewing = undefined;
    });
    return this.renewing;
  }

  /** The current token (the one that has most life left). */
  current(): Token {
    if (this.token === undefined) throw new Error(`${this.clientId}: no token yet`);
    return this.token;
  }

  /** The latest token of this client that the gateway must refuse as expired, once one exists. */
  expiredToken(): Token | undefined {
    const line = nowSeconds() - LEEWAY_SECONDS - EXPIRED_MARGIN_SECONDS;
    while (this.retired.length > 0 && (this.retired[0] as Token).exp < line) this.expired = this.retired.shift();
    return this.expired;
  }
}
