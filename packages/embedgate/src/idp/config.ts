// The `idp:` section: the embedded OpenID Provider's issuer, storage, resource, clients and seed users.
import { z } from 'zod';
import { readFileSync } from 'node:fs';
import { ConfigError, describeIssues, parseConfigText } from '../config/load.js';

const DEVICE_GRANT = 'urn:ietf:params:oauth:grant-type:device_code';
const GRANT_TYPES = ['authorization_code', 'refresh_token', 'client_credentials', DEVICE_GRANT] as const;

const httpUrl = z.url({
  protocol: /^https?$/,
  error: (issue) => (issue.input === undefined ? 'is required' : 'must be an http(s) URL'),
});
const hostPort = z.string().regex(/^(\[[0-9a-fA-F:]+\]|[A-Za-z0-9.-]+):\d{1,5}$/, 'must be host:port, e.g. 127.0.0.1:4000');
const names = z.array(z.string().min(1).regex(/^[^\s,]+$/, 'must not contain spaces or commas'));

const clientSchema = z.strictObject({
  client_id: z.string().min(1).regex(/^[\x21-\x7e]+$/, 'must be printable ASCII without spaces'),
  client_secret: z.string().min(1).optional(),
  public: z.boolean().default(false),
  /** How a confidential client sends its secret to the token endpoint. */
  token_endpoint_auth_method: z.enum(['client_secret_basic', 'client_secret_post']).default('client_secret_basic'),
  name: z.string().min(1).optional(),
  redirect_uris: z.array(z.url()).default([]),
  post_logout_redirect_uris: z.array(z.url()).default([]),
  grant_types: z.array(z.enum(GRANT_TYPES)).min(1).default(['authorization_code', 'refresh_token']),
  backchannel_logout_uri: httpUrl.optional(),
  /** Roles put in client-credentials tokens of this client. */
  roles: names.default([]),
  /**
   * A code-flow client that asks for no resource gets a token for the userinfo endpoint (opaque) instead of a JWT for
   * the gateway: for relying parties that read the user from userinfo (the ID token carries the same claims).
   */
  userinfo_tokens: z.boolean().default(false),
  /** Ask the user to approve this client's access (third-party clients); first-party clients skip it. */
  consent: z.boolean().default(false),
}).superRefine((client, ctx) => {
  if (client.public && client.client_secret !== undefined) ctx.addIssue({ code: 'custom', path: ['client_secret'], message: 'a public client has no secret' });
  if (!client.public && client.client_secret === undefined) ctx.addIssue({ code: 'custom', path: ['client_secret'], message: 'is required unless the client is public: true' });
  if (client.public && client.grant_types.includes('client_credentials')) ctx.addIssue({ code: 'custom', path: ['grant_types'], message: 'client_credentials needs a confidential client (with a client_secret)' });
  if (client.grant_types.includes('authorization_code') && client.redirect_uris.length === 0) ctx.addIssue({ code: 'custom', path: ['redirect_uris'], message: 'authorization_code needs at least one redirect URI' });
});

const userSchema = z.strictObject({
  username: z.string().min(1).max(128).regex(/^[A-Za-z0-9._@-]+$/, 'may contain letters, digits and . _ @ -'),
  password: z.string().min(1).optional(),
  password_hash: z.string().startsWith('scrypt$', 'must be a hash made by `embedgate users hash-password`').optional(),
  email: z.email().optional(),
  name: z.string().min(1).optional(),
  roles: names.default([]),
}).refine((user) => (user.password === undefined) !== (user.password_hash === undefined), 'needs exactly one of password or password_hash');

export const idpSchema = z.strictObject({
  issuer: httpUrl,
  listen: hostPort.default('127.0.0.1:4000'),
  store: z.string().regex(/^(sqlite:.+|memory:|postgres(ql)?:\/\/.+)$/, 'must be sqlite:PATH, memory: or a postgres:// URL').default('sqlite:./data/idp.db'),
  resource: httpUrl,
  resource_scopes: names.default(['read', 'write']),
  roles_claim: z.string().min(1).default('roles'),
  access_token_ttl_seconds: z.number().int().min(30).max(3600).default(300),
  id_token_ttl_seconds: z.number().int().min(30).max(3600).default(300),
  refresh_token_ttl_seconds: z.number().int().min(60).max(90 * 86400).default(14 * 86400),
  session_ttl_seconds: z.number().int().min(60).max(30 * 86400).default(86400),
  device_code_ttl_seconds: z.number().int().min(1).max(3600).default(600),
  /** How often a running IdP looks for keys added by `embedgate idp rotate-keys`. */
  key_check_seconds: z.number().min(0.1).max(3600).default(5),
  /** Set when a TLS-terminating proxy sits in front, so X-Forwarded-Proto is believed. */
  behind_proxy: z.boolean().default(false),
  login_failures_before_lockout: z.number().int().min(1).max(100).default(5),
  lockout_seconds: z.number().int().min(1).max(86400).default(900),
  token_requests_per_minute: z.number().int().min(1).max(100000).default(600),
  log_level: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
  clients: z.array(clientSchema).default([]),
  users: z.array(userSchema).default([]),
}).superRefine((idp, ctx) => {
  const seen = new Set<string>();
  idp.clients.forEach((client, i) => {
    if (seen.has(client.client_id)) ctx.addIssue({ code: 'custom', path: ['clients', i, 'client_id'], message: 'is configured twice' });
    seen.add(client.client_id);
  });
  const users = new Set<string>();
  idp.users.forEach((user, i) => {
    if (users.has(user.username)) ctx.addIssue({ code: 'custom', path: ['users', i, 'username'], message: 'is configured twice' });
    users.add(user.username);
  });
  const issuer = new URL(idp.issuer);
  if (issuer.search !== '' || issuer.hash !== '' || idp.issuer.endsWith('/')) ctx.addIssue({ code: 'custom', path: ['issuer'], message: 'must have no query and no trailing slash' });
  // The IdP serves discovery, its endpoints and its pages at the root of its origin; an issuer with a path would
  // publish a discovery document at an address that does not answer.
  else if (issuer.pathname !== '/') ctx.addIssue({ code: 'custom', path: ['issuer'], message: 'must be an origin without a path, e.g. https://idp.example.com' });
});

export type IdpConfig = z.output<typeof idpSchema>;
export type IdpClientConfig = IdpConfig['clients'][number];
export { DEVICE_GRANT };

/** Reads the `idp:` section of a config file (other sections are the gateway's and are not checked here). */
export function loadIdpConfigFile(file: string, env: NodeJS.ProcessEnv = process.env): IdpConfig {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (error) {
    throw new ConfigError([`${file}: cannot read the file (${(error as NodeJS.ErrnoException).code ?? 'error'})`]);
  }
  const raw = parseConfigText(text, env, file) as Record<string, unknown>;
  if (raw.idp === undefined) throw new ConfigError(['idp: is required (the identity provider settings)']);
  return parseIdpConfig(raw.idp);
}

export function parseIdpConfig(raw: unknown): IdpConfig {
  const result = idpSchema.safeParse(raw);
  if (!result.success) throw new ConfigError(describeIssues(result.error, ['idp']));
  return result.data;
}
