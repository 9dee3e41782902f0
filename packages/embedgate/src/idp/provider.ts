// Builds the oidc-provider instance: clients, features, token formats, pages and storage for the embedded IdP.
import type Provider from 'oidc-provider';
import type { ClientMetadata, Configuration, KoaContextWithOIDC } from 'oidc-provider';
import type { JWK } from 'jose';
import type { Accounts } from './accounts.js';
import { DEVICE_GRANT, type IdpClientConfig, type IdpConfig } from './config.js';
import { loadOidcProvider } from './load-provider.js';
import type { IdpStore, OidcModelAdapter } from './store/types.js';
import { rememberStructuredToken, type TokenPolicies } from './structured-tokens.js';
import {
  deviceConfirmPage, deviceInputPage, deviceSuccessPage, errorPage, logoutPage, PAGE_HEADERS, signedOutPage,
} from './views.js';

export interface ProviderDeps {
  config: IdpConfig;
  store: IdpStore;
  accounts: Accounts;
  signingKeys: JWK[];
  cookieKeys: string[];
}

/** oidc-provider hands its pages a ready-made <form>; we keep its action and anti-CSRF token and render our own. */
function formParts(form: string): { action: string; xsrf: string } {
  const action = /action="([^"]*)"/.exec(form)?.[1] ?? '';
  const xsrf = /name="xsrf" value="([^"]*)"/.exec(form)?.[1] ?? '';
  return { action, xsrf };
}

function render(ctx: KoaContextWithOIDC, html: string): void {
  ctx.set(PAGE_HEADERS);
  ctx.body = html;
}

function clientName(ctx: KoaContextWithOIDC): string {
  const client = ctx.oidc.client;
  return client?.clientName ?? client?.clientId ?? 'this application';
}

/** The message on the code entry page after a failed step; a cancelled request is not the user's typo. */
function deviceInputError(err: Error): string {
  if (err.name === 'AbortedError') return 'The request was cancelled and the device was not signed in. To sign it in, start again on the device.';
  if (['NotFoundError', 'ExpiredError', 'AlreadyUsedError', 'NoCodeError'].includes(err.name)) return 'That code is not valid or has expired. Check it and try again.';
  return 'This page has expired. Enter the code again.';
}

/** oidc-provider's session cookie options (its defaults, spelled out so the session can be saved the same way). */
const SESSION_COOKIE = { httpOnly: true, sameSite: 'lax' } as const;

/**
 * When a code entry fails before oidc-provider saved the browser's session (no session cookie, or one for a session
 * that is gone), oidc-provider re-renders the form with a new anti-CSRF secret in that unsaved session and then fails
 * to persist it: a 500, and a form that could never be submitted. Save the session and send its cookie, as a
 * successful request would have.
 */
async function keepNewSession(ctx: KoaContextWithOIDC, ttlSeconds: number): Promise<void> {
  const session = ctx.oidc.session;
  if (session === undefined || typeof session.exp === 'number') return;
  ctx.oidc.cookies.set(ctx.oidc.provider.cookieName('session'), session.jti, SESSION_COOKIE); // its id is the jti
  await session.save(ttlSeconds);
}

/** How long an expired device code stays findable, so a late poll gets expired_token rather than invalid_grant. */
const DEVICE_CODE_GRACE_SECONDS = 600;

/**
 * Keeps rows past their expiry: oidc-provider checks `exp` itself and answers RFC 8628's expired_token only when it
 * still finds the expired code (the store hides rows once their time is up).
 */
function keptPastExpiry(adapter: OidcModelAdapter): OidcModelAdapter {
  return {
    upsert: (id, payload, expiresIn) => adapter.upsert(id, payload, expiresIn + DEVICE_CODE_GRACE_SECONDS),
    find: (id) => adapter.find(id),
    findByUserCode: (userCode) => adapter.findByUserCode(userCode),
    findByUid: (uid) => adapter.findByUid(uid),
    consume: (id) => adapter.consume(id),
    destroy: (id) => adapter.destroy(id),
    revokeByGrantId: (grantId) => adapter.revokeByGrantId(grantId),
  };
}

/**
 * Who may introspect or revoke a token, for opaque and JWT tokens alike: a public client only its own tokens; a
 * confidential one (e.g. a resource server) may introspect any, and is told it may not revoke another client's.
 * (oidc-provider's defaults, spelled out: they print a console notice each time they run.)
 */
export const TOKEN_POLICIES: TokenPolicies = {
  mayIntrospect: (client, tokenClientId) => client.clientAuthMethod !== 'none' || tokenClientId === client.clientId,
  mayRevoke: (client, tokenClientId) => {
    if (tokenClientId === client.clientId) return 'revoke';
    return client.clientAuthMethod === 'none' ? 'ignore' : 'refuse';
  },
};

export function clientMetadata(client: IdpClientConfig): ClientMetadata {
  return {
    client_id: client.client_id,
    ...(client.public
      ? { token_endpoint_auth_method: 'none' }
      : { client_secret: client.client_secret, token_endpoint_auth_method: client.token_endpoint_auth_method }),
    ...(client.name === undefined ? {} : { client_name: client.name }),
    grant_types: client.grant_types,
    response_types: client.grant_types.includes('authorization_code') ? ['code'] : [],
    redirect_uris: client.redirect_uris,
    post_logout_redirect_uris: client.post_logout_redirect_uris,
    ...(client.backchannel_logout_uri === undefined ? {} : {
      backchannel_logout_uri: client.backchannel_logout_uri,
      backchannel_logout_session_required: true,
    }),
  };
}

export async function createProvider(deps: ProviderDeps): Promise<Provider> {
  const { config, store, accounts } = deps;
  const { default: OidcProvider, errors } = await loadOidcProvider();
  const clientRoles = new Map(config.clients.map((client) => [client.client_id, client.roles]));
  const userinfoClients = new Set(config.clients.filter((client) => client.userinfo_tokens).map((client) => client.client_id));
  const redirectOrigins = new Set(config.clients.flatMap((client) => client.redirect_uris.map((uri) => new URL(uri).origin)));
  // Back-channel logout URIs come from the operator's config, and typically point at loopback or private addresses
  // (the gateway, apps on the same network) that oidc-provider's anti-SSRF dispatcher refuses to connect to.
  const backchannelUris = new Set(config.clients.flatMap((client) => (client.backchannel_logout_uri === undefined ? [] : [new URL(client.backchannel_logout_uri).href])));

  const configuration: Configuration = {
    adapter: (model: string) => (model === 'DeviceCode' ? keptPastExpiry(store.adapter(model)) : store.adapter(model)),
    clients: config.clients.map(clientMetadata),
    findAccount: accounts.findAccount,
    jwks: { keys: deps.signingKeys },
    cookies: { keys: deps.cookieKeys, long: { ...SESSION_COOKIE } },
    scopes: ['openid', 'offline_access', 'profile', 'email', 'roles'],
    claims: {
      openid: ['sub'],
      profile: ['name', 'preferred_username'],
      email: ['email', 'email_verified'],
      roles: [config.roles_claim],
    },
    formats: { customizers: { jwt: (_ctx, token, parts) => rememberStructuredToken(store, token, parts) } },
    responseTypes: ['code'],
    pkce: { required: () => true },
    rotateRefreshToken: true,
    conformIdTokenClaims: true,
    clientBasedCORS: (_ctx, origin) => redirectOrigins.has(origin),
    fetch: (input, init) => {
      const url = input instanceof Request ? input.url : String(input);
      // Only the configured back-channel logout URIs skip the anti-SSRF dispatcher; anything else keeps it.
      if (backchannelUris.has(url) && init !== undefined) {
        const { dispatcher: _dispatcher, ...rest } = init as RequestInit & { dispatcher?: unknown };
        return fetch(input, rest);
      }
      return fetch(input, init);
    },
    ttl: {
      AccessToken: config.access_token_ttl_seconds,
      ClientCredentials: config.access_token_ttl_seconds,
      IdToken: config.id_token_ttl_seconds,
      RefreshToken: config.refresh_token_ttl_seconds,
      Session: config.session_ttl_seconds,
      Grant: config.refresh_token_ttl_seconds,
      DeviceCode: config.device_code_ttl_seconds,
      AuthorizationCode: 60,
      Interaction: 600,
    },
    extraTokenClaims: async (_ctx, token) => {
      const accountId = 'accountId' in token ? token.accountId : undefined;
      if (accountId === undefined) return { [config.roles_claim]: clientRoles.get(token.clientId ?? '') ?? [] };
      return accounts.accessTokenClaims(accountId);
    },
    interactions: { url: (_ctx, interaction) => `/interaction/${interaction.uid}` },
    renderError: (ctx, out) => {
      ctx.status = ctx.status >= 400 ? ctx.status : 400;
      render(ctx, errorPage('Sign-in problem', `${out.error}: ${out.error_description ?? 'the request could not be completed'}`));
    },
    features: {
      devInteractions: { enabled: false },
      clientCredentials: { enabled: true },
      introspection: {
        enabled: true,
        allowedPolicy: (_ctx, client, token) => TOKEN_POLICIES.mayIntrospect(client, token.clientId),
      },
      revocation: {
        enabled: true,
        allowedPolicy: (_ctx, client, token) => {
          const verdict = TOKEN_POLICIES.mayRevoke(client, token.clientId);
          if (verdict === 'refuse') throw new errors.InvalidRequest('client is not authorized to revoke the presented token');
          return verdict === 'revoke';
        },
      },
      userinfo: { enabled: true },
      backchannelLogout: { enabled: true },
      rpInitiatedLogout: {
        enabled: true,
        logoutSource: (ctx, form) => render(ctx, logoutPage(formParts(form))),
        postLogoutSuccessSource: (ctx) => render(ctx, signedOutPage()),
      },
      deviceFlow: {
        enabled: true,
        userCodeInputSource: async (ctx, form, _out, err) => {
          if (err !== undefined) await keepNewSession(ctx, config.session_ttl_seconds);
          render(ctx, deviceInputPage({ ...formParts(form), ...(err === undefined ? {} : { error: deviceInputError(err) }) }));
        },
        userCodeConfirmSource: (ctx, form, _client, _deviceInfo, userCode) => render(ctx, deviceConfirmPage({
          ...formParts(form), userCode, clientName: clientName(ctx),
        })),
        successSource: (ctx) => render(ctx, deviceSuccessPage(clientName(ctx))),
      },
      resourceIndicators: {
        enabled: true,
        // A client that asks for no resource gets a JWT for the gateway, the one resource this IdP serves; with openid
        // that takes the granted resource, unless the client wants userinfo tokens (oidc-provider's own rule).
        defaultResource: (_ctx, _client, oneOf) => oneOf ?? config.resource,
        useGrantedResource: (ctx) => ctx.oidc.params?.grant_type === DEVICE_GRANT || !userinfoClients.has(ctx.oidc.client?.clientId ?? ''),
        getResourceServerInfo: (_ctx, indicator) => {
          if (indicator !== config.resource) throw new errors.InvalidTarget();
          return {
            audience: config.resource,
            scope: config.resource_scopes.join(' '),
            accessTokenFormat: 'jwt',
            accessTokenTTL: config.access_token_ttl_seconds,
            jwt: { sign: { alg: 'RS256' } },
          };
        },
      },
    },
  };
  const provider = new OidcProvider(config.issuer, configuration);
  provider.proxy = config.behind_proxy;
  // Behind the proxy, ctx.ip (the token endpoint's rate-limit key) is the address the proxy appended to
  // X-Forwarded-For, not the leftmost entry, which any client can write.
  if (config.behind_proxy) provider.maxIpsCount = 1;
  return provider;
}

