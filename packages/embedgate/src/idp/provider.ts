// Builds the oidc-provider instance: clients, features, token formats, pages and storage for the embedded IdP.
import type Provider from 'oidc-provider';
import type { ClientMetadata, Configuration, KoaContextWithOIDC } from 'oidc-provider';
import type { JWK } from 'jose';
import type { Accounts } from './accounts.js';
import type { IdpClientConfig, IdpConfig } from './config.js';
import { loadOidcProvider } from './load-provider.js';
import type { IdpStore } from './store/types.js';
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

export function clientMetadata(client: IdpClientConfig): ClientMetadata {
  return {
    client_id: client.client_id,
    ...(client.public ? { token_endpoint_auth_method: 'none' } : { client_secret: client.client_secret }),
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
  const redirectOrigins = new Set(config.clients.flatMap((client) => client.redirect_uris.map((uri) => new URL(uri).origin)));

  const configuration: Configuration = {
    adapter: (model: string) => store.adapter(model),
    clients: config.clients.map(clientMetadata),
    findAccount: accounts.findAccount,
    jwks: { keys: deps.signingKeys },
    cookies: { keys: deps.cookieKeys },
    scopes: ['openid', 'offline_access', 'profile', 'email', 'roles'],
    claims: {
      openid: ['sub'],
      profile: ['name', 'preferred_username'],
      email: ['email', 'email_verified'],
      roles: [config.roles_claim],
    },
    responseTypes: ['code'],
    pkce: { required: () => true },
    rotateRefreshToken: true,
    conformIdTokenClaims: true,
    clientBasedCORS: (_ctx, origin) => redirectOrigins.has(origin),
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
      const roles = accountId === undefined ? clientRoles.get(token.clientId ?? '') ?? [] : await accounts.roles(accountId);
      return { [config.roles_claim]: roles };
    },
    interactions: { url: (_ctx, interaction) => `/interaction/${interaction.uid}` },
    renderError: (ctx, out) => {
      ctx.status = ctx.status >= 400 ? ctx.status : 400;
      render(ctx, errorPage('Sign-in problem', `${out.error}: ${out.error_description ?? 'the request could not be completed'}`));
    },
    features: {
      devInteractions: { enabled: false },
      clientCredentials: { enabled: true },
      introspection: { enabled: true },
      revocation: { enabled: true },
      userinfo: { enabled: true },
      backchannelLogout: { enabled: true },
      rpInitiatedLogout: {
        enabled: true,
        logoutSource: (ctx, form) => render(ctx, logoutPage(formParts(form))),
        postLogoutSuccessSource: (ctx) => render(ctx, signedOutPage()),
      },
      deviceFlow: {
        enabled: true,
        userCodeInputSource: (ctx, form, _out, err) => render(ctx, deviceInputPage({
          ...formParts(form),
          ...(err === undefined ? {} : { error: 'That code is not valid or has expired. Check it and try again.' }),
        })),
        userCodeConfirmSource: (ctx, form, _client, _deviceInfo, userCode) => render(ctx, deviceConfirmPage({
          ...formParts(form), userCode, clientName: clientName(ctx),
        })),
        successSource: (ctx) => render(ctx, deviceSuccessPage(clientName(ctx))),
      },
      resourceIndicators: {
        enabled: true,
        defaultResource: (_ctx, _client, oneOf) => oneOf ?? config.resource,
        useGrantedResource: () => false,
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
  return provider;
}

