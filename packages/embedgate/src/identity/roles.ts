// Maps verified claims to roles and scopes, with presets for the common identity providers.
import type { JWTPayload } from 'jose';
import type { IssuerConfig } from '../config/schema.js';

type ClaimReader = (claims: JWTPayload) => string[];

/** Reads a claim by exact name first (`https://example.com/roles`), else as a dot path (`realm_access.roles`). */
export function readClaim(claims: JWTPayload, name: string): unknown {
  if (Object.hasOwn(claims, name)) return claims[name];
  let value: unknown = claims;
  for (const part of name.split('.')) {
    if (value === null || typeof value !== 'object' || !Object.hasOwn(value, part)) return undefined;
    value = (value as Record<string, unknown>)[part];
  }
  return value;
}

/** Claim values as a list of strings: arrays are kept, a space- or comma-separated string is split. */
function asStrings(value: unknown): string[] {
  if (Array.isArray(value)) return value.filter((v): v is string => typeof v === 'string' && v !== '');
  if (typeof value === 'string') return value.split(/[\s,]+/).filter((v) => v !== '');
  return [];
}

const fromClaim = (name: string): ClaimReader => (claims) => asStrings(readClaim(claims, name));

/** Auth0 puts roles in a namespaced custom claim whose name ends in "/roles". */
const auth0Roles: ClaimReader = (claims) => Object.keys(claims)
  .filter((name) => /^https?:\/\/.+\/roles$/.test(name))
  .flatMap((name) => asStrings(claims[name]));

function keycloakRoles(client: string | undefined): ClaimReader {
  return (claims) => [
    ...asStrings(readClaim(claims, 'realm_access.roles')),
    ...(client === undefined ? [] : asStrings((claims.resource_access as Record<string, { roles?: unknown }> | undefined)?.[client]?.roles)),
  ];
}

function presetReader(issuer: IssuerConfig): ClaimReader {
  switch (issuer.preset) {
    case 'auth0': return auth0Roles;
    case 'keycloak': return keycloakRoles(issuer.keycloak_client);
    case 'entra': return fromClaim('roles');
    case 'okta': return fromClaim('groups');
    case 'cognito': return fromClaim('cognito:groups');
    case 'generic': return fromClaim('roles');
  }
}

/** Builds the roles reader for an issuer: `roles_claim` when set, else the preset's claim. */
export function rolesReader(issuer: IssuerConfig): ClaimReader {
  return issuer.roles_claim === undefined ? presetReader(issuer) : fromClaim(issuer.roles_claim);
}

/** Scopes from `scope` (space-separated, RFC 9068) or `scp` (Entra, Okta: a list or a string). */
export function readScopes(claims: JWTPayload): string[] {
  return [...asStrings(claims.scope), ...asStrings(claims.scp)];
}
