// Introspection (RFC 7662) and revocation (RFC 7009) of the JWT access tokens this IdP issues. oidc-provider keeps
// no record of a JWT it issues, and at both endpoints it authenticates the client, then refuses any JWT
// (unsupported_token_type). So each JWT gets a record when it is issued, and this middleware answers those requests
// instead: the JWT must verify against the IdP's own keys; its record (gone once revoked or its grant is) and its
// grant decide whether it is active; the same policies as for opaque tokens decide who may see or revoke it.
import { createLocalJWKSet, jwtVerify, type JWK, type JWTPayload } from 'jose';
import type Provider from 'oidc-provider';
import type { AccessToken, AdapterPayload, ClientCredentials, JWTStructured, KoaContextWithOIDC } from 'oidc-provider';
import type { IdpStore } from './store/types.js';

/** Who may act on a token: the client it was issued to, or (introspection only) any confidential client. */
export interface TokenPolicies {
  mayIntrospect(client: { clientId: string; clientAuthMethod?: string | undefined }, tokenClientId: string | undefined): boolean;
  /** 'refuse' is an invalid_request error, 'ignore' a silent 200 that changes nothing (RFC 7009 §2.2). */
  mayRevoke(client: { clientId: string; clientAuthMethod?: string | undefined }, tokenClientId: string | undefined): 'revoke' | 'ignore' | 'refuse';
}

interface StructuredToken {
  claims: JWTPayload;
  model: 'AccessToken' | 'ClientCredentials';
  record: AdapterPayload;
}

const PRIVATE_MEMBERS = new Set(['d', 'p', 'q', 'dp', 'dq', 'qi', 'k']);

function publicJwk(jwk: JWK): JWK {
  return Object.fromEntries(Object.entries(jwk).filter(([member]) => !PRIVATE_MEMBERS.has(member))) as JWK;
}

/**
 * Keeps a record of a JWT access token as it is issued (oidc-provider awaits this before answering the client), under
 * the token's own model with its grant, so that revoking the grant removes it as it does opaque tokens. oidc-provider
 * never takes such a record for an opaque token: it refuses stored tokens whose format is not opaque.
 */
export async function rememberStructuredToken(store: IdpStore, token: AccessToken | ClientCredentials, { payload }: JWTStructured): Promise<void> {
  const { jti, exp, iat } = payload;
  if (typeof jti !== 'string' || typeof exp !== 'number') throw new Error('a JWT access token without jti or exp');
  const user = token.kind === 'AccessToken' ? { accountId: token.accountId, grantId: token.grantId } : {};
  const record = { format: 'jwt', kind: token.kind, jti, iat, exp, clientId: token.clientId, ...user };
  await store.adapter(token.kind).upsert(jti, record, Math.max(1, exp - Math.floor(Date.now() / 1000)));
}

function refusedStructuredToken(ctx: KoaContextWithOIDC): boolean {
  const route = ctx.oidc?.route;
  return (route === 'introspection' || route === 'revocation') && ctx.status === 400
    && (ctx.body as { error?: unknown } | undefined)?.error === 'unsupported_token_type' && ctx.oidc.client !== undefined;
}

export function structuredTokenEndpoints(provider: Provider, signingKeys: JWK[], policies: TokenPolicies) {
  const keys = createLocalJWKSet({ keys: signingKeys.map(publicJwk) });

  /** The token when it is one of ours, unexpired, still stored and its grant still stands; else undefined. */
  async function find(token: string): Promise<StructuredToken | undefined> {
    let claims: JWTPayload;
    try {
      ({ payload: claims } = await jwtVerify(token, keys, { issuer: provider.issuer, typ: 'at+jwt', algorithms: ['RS256'] }));
    } catch {
      return undefined;
    }
    if (typeof claims.jti !== 'string') return undefined;
    for (const model of ['AccessToken', 'ClientCredentials'] as const) {
      const record = await provider[model].adapter.find(claims.jti);
      if (record === undefined || record.format !== 'jwt' || record.clientId !== claims.client_id) continue;
      if (typeof record.exp !== 'number' || record.exp * 1000 <= Date.now()) return undefined;
      if (record.grantId !== undefined && !(await grantStands(record))) return undefined;
      return { claims, model, record };
    }
    return undefined;
  }

  /** oidc-provider's own checks of an opaque token's grant. */
  async function grantStands(record: AdapterPayload): Promise<boolean> {
    const grant = await provider.Grant.find(record.grantId as string, { ignoreExpiration: true });
    return grant !== undefined && !grant.isExpired && grant.clientId === record.clientId && grant.accountId === record.accountId;
  }

  /** Revoking an access token revokes its grant's tokens too, as oidc-provider does for opaque ones. */
  async function revoke({ claims, model, record }: StructuredToken): Promise<void> {
    await provider[model].adapter.destroy(claims.jti as string);
    if (typeof record.grantId === 'string') {
      await Promise.all([provider.AccessToken.revokeByGrantId(record.grantId), provider.RefreshToken.revokeByGrantId(record.grantId)]);
    }
  }

  return async (ctx: KoaContextWithOIDC, next: () => Promise<unknown>): Promise<void> => {
    await next();
    if (!refusedStructuredToken(ctx)) return;
    const client = ctx.oidc.client as NonNullable<KoaContextWithOIDC['oidc']['client']>;
    const token = ctx.oidc.params?.token;
    const found = typeof token === 'string' ? await find(token) : undefined;
    const tokenClientId = found?.record.clientId;
    if (ctx.oidc.route === 'introspection') {
      ctx.status = 200;
      ctx.body = found !== undefined && policies.mayIntrospect(client, tokenClientId)
        ? { ...found.claims, active: true, token_type: 'Bearer' }
        : { active: false };
      return;
    }
    const verdict = found === undefined ? 'ignore' : policies.mayRevoke(client, tokenClientId);
    if (verdict === 'refuse') {
      ctx.body = { error: 'invalid_request', error_description: 'client is not authorized to revoke the presented token' };
      return;
    }
    if (verdict === 'revoke') await revoke(found as StructuredToken);
    ctx.status = 200;
    ctx.body = '';
  };
}
