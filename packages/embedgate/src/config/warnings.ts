// Settings that are valid but will not work as the operator probably expects: printed by check-config and logged at
// start-up, without stopping either.
import { audienceParameter } from './login-defaults.js';
import type { GatewayConfig } from './schema.js';

/** The embedded IdP's section when it shares the file: only the two fields compared here. */
function embeddedIdp(config: GatewayConfig): { issuer: string; resource: string } | undefined {
  const idp = config.idp as { issuer?: unknown; resource?: unknown } | undefined;
  return typeof idp?.issuer === 'string' && typeof idp.resource === 'string' ? { issuer: idp.issuer, resource: idp.resource } : undefined;
}

export function configWarnings(config: GatewayConfig): string[] {
  const warnings: string[] = [];
  const idp = embeddedIdp(config);
  config.issuers.forEach((issuer, i) => {
    if (idp !== undefined && idp.issuer === issuer.issuer && !issuer.audiences.includes(idp.resource)) {
      warnings.push(`issuers[${i}].audiences: does not contain idp.resource (${idp.resource}), the audience of every access token the embedded IdP issues: all of them would be refused`);
    }
  });
  const login = config.login;
  const loginIssuer = config.issuers.findIndex((issuer) => issuer.issuer === login?.issuer);
  const issuer = config.issuers[loginIssuer];
  if (login !== undefined && issuer !== undefined && login.resource === undefined && login.audience === undefined) {
    const parameter = audienceParameter(issuer);
    if (parameter !== undefined) {
      const why = issuer.audiences.length === 1 ? 'its one audience is not an absolute URI' : `it trusts ${issuer.audiences.length} audiences`;
      warnings.push(`login.${parameter}: not set, and none is derived from issuers[${loginIssuer}] (${why}), so sign-in asks for no audience: unless the provider issues JWT access tokens for the gateway by default, every sign-in fails; set it to the audience sign-in should get tokens for`);
    }
  }
  return warnings;
}
