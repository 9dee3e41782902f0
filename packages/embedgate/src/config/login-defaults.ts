// What standalone sign-in asks the provider for when `login:` does not say: an access token for the gateway's one
// trusted audience, as RFC 8707 `resource` (no preset) or Auth0's `audience` (preset auth0).
import type { GatewayConfig, IssuerConfig } from './schema.js';

/**
 * The parameter sign-in asks with by default for this issuer's presets. Keycloak (audience mapper), Okta (the
 * authorization server's audience), Entra ID (the API's scope) and Cognito (the client id) choose the audience
 * themselves, and Entra ID refuses a `resource` parameter: nothing is sent for them.
 */
export function audienceParameter(issuer: IssuerConfig): 'resource' | 'audience' | undefined {
  if (issuer.preset === 'generic') return 'resource';
  if (issuer.preset === 'auth0') return 'audience';
  return undefined;
}

/** `config` with login.resource or login.audience filled in when the login issuer trusts exactly one audience. */
export function withLoginDefaults(config: GatewayConfig): GatewayConfig {
  const login = config.login;
  if (login === undefined || login.resource !== undefined || login.audience !== undefined) return config;
  const issuer = config.issuers.find((candidate) => candidate.issuer === login.issuer);
  const audience = issuer?.audiences.length === 1 ? issuer.audiences[0] : undefined;
  const parameter = issuer === undefined ? undefined : audienceParameter(issuer);
  if (audience === undefined || parameter === undefined) return config;
  if (parameter === 'resource' && !URL.canParse(audience)) return config;   // RFC 8707 wants an absolute URI
  return { ...config, login: { ...login, [parameter]: audience } };
}
