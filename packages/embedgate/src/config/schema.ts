// The gateway's configuration contract: a zod schema that validates the YAML file and fills in defaults.
import { isIP } from 'node:net';
import { z } from 'zod';

export const SIGNING_ALGORITHMS = [
  'RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512', 'ES256', 'ES384', 'ES512', 'EdDSA',
] as const;
export const ROLE_PRESETS = ['generic', 'auth0', 'keycloak', 'entra', 'okta', 'cognito'] as const;

const httpUrl = z.url({
  protocol: /^https?$/,
  error: (issue) => (issue.input === undefined ? 'is required' : 'must be an http(s) URL'),
});

const origin = z.string().refine((value) => {
  try {
    const url = new URL(value);
    return (url.protocol === 'http:' || url.protocol === 'https:') && url.origin === value;
  } catch {
    return false;
  }
}, 'must be an origin such as https://app.example.com (scheme, host and optional port; no path or trailing slash)');

const hostPort = z.string().regex(/^(\[[0-9a-fA-F:]+\]|[A-Za-z0-9.-]+):\d{1,5}$/, 'must be host:port, e.g. 127.0.0.1:4180')
  .refine((value) => {
    const port = Number(value.slice(value.lastIndexOf(':') + 1));
    return port >= 0 && port <= 65535;
  }, 'port must be between 0 and 65535');

const cidr = z.string().refine((value) => {
  const [address, bits, extra] = value.split('/');
  if (extra !== undefined || !address || !isIP(address)) return false;
  if (bits === undefined) return true;
  const max = isIP(address) === 4 ? 32 : 128;
  return /^\d{1,3}$/.test(bits) && Number(bits) <= max;
}, 'must be an IP address or CIDR range such as 10.0.0.0/8')
  .refine((value) => !/\/0$/.test(value), 'trusting every address (/0) would let any client forge X-Forwarded-* headers');

/** A path glob: `*` is one segment, `**` any depth. */
const pathGlob = z.string().regex(/^\/[^?#\s]*$/, 'must be an absolute path glob starting with "/" (no query or fragment)');

const nonEmpty = z.array(z.string().min(1)).min(1);

export interface RuleInput {
  authenticated?: boolean | undefined;
  roles?: string[] | undefined;
  scopes?: string[] | undefined;
  users?: string[] | undefined;
  emails?: string[] | undefined;
  email_domains?: string[] | undefined;
  email_verified?: boolean | undefined;
  claims?: Record<string, string | number | boolean | Array<string | number | boolean>> | undefined;
  any?: RuleInput[] | undefined;
  all?: RuleInput[] | undefined;
  not?: RuleInput | undefined;
}

const claimValue = z.union([z.string(), z.number(), z.boolean()]);
const emailDomain = z.string().regex(/^(\*\.)?[a-z0-9-]+(\.[a-z0-9-]+)+$/i, 'must be a domain such as example.com, or *.example.com for its subdomains');

export const ruleSchema: z.ZodType<RuleInput> = z.lazy(() => z.strictObject({
  authenticated: z.literal(true).optional(),
  roles: nonEmpty.optional(),
  scopes: nonEmpty.optional(),
  users: nonEmpty.optional(),
  emails: nonEmpty.optional(),
  email_domains: z.array(emailDomain).min(1).optional(),
  email_verified: z.boolean().optional(),
  claims: z.record(z.string().min(1), z.union([claimValue, z.array(claimValue).min(1)])).optional(),
  any: z.array(ruleSchema).min(1).optional(),
  all: z.array(ruleSchema).min(1).optional(),
  not: ruleSchema.optional(),
}).refine((rule) => Object.values(rule).some((v) => v !== undefined), 'a rule needs at least one criterion (roles, scopes, users, emails, email_domains, email_verified, claims, authenticated, any, all or not)'));

const issuerSchema = z.strictObject({
  issuer: httpUrl,
  audiences: nonEmpty,
  algorithms: z.array(z.enum(SIGNING_ALGORITHMS, {
    error: `must be one of ${SIGNING_ALGORITHMS.join(', ')} (HMAC and "none" are never accepted)`,
  })).min(1).default(['RS256', 'PS256', 'ES256', 'EdDSA']),
  preset: z.enum(ROLE_PRESETS).default('generic'),
  roles_claim: z.string().min(1).optional(),
  keycloak_client: z.string().min(1).optional(),
  require_typ: z.string().min(1).optional(),
  jwks_uri: httpUrl.optional(),
  leeway_seconds: z.number().int().min(0).max(300).default(30),
  jwks_cache_seconds: z.number().int().min(1).max(86400).default(600),
  jwks_refetch_cooldown_seconds: z.number().min(0).max(3600).default(30),
  http_timeout_ms: z.number().int().min(100).max(60000).default(5000),
});

const dashSchema = z.strictObject({
  callbacks: z.array(z.strictObject({
    output: z.string().min(1),
    allow: ruleSchema.optional(),
    deny: ruleSchema.optional(),
  }).refine((cb) => cb.allow !== undefined || cb.deny !== undefined, 'a callback rule needs allow or deny')).default([]),
  max_body_bytes: z.number().int().min(1024).max(64 * 1024 * 1024).default(1024 * 1024),
});

const routeSchema = z.strictObject({
  paths: z.array(pathGlob).min(1),
  methods: z.array(z.string().regex(/^[A-Z]+$/, 'must be an upper-case HTTP method')).min(1).optional(),
  allow: ruleSchema.optional(),
  deny: ruleSchema.optional(),
}).refine((route) => route.allow !== undefined || route.deny !== undefined, 'a route needs allow or deny');

/** A Dash prop as `component_id.prop` (Dash ids have no dots). */
const propRef = z.string().regex(/^[^.\s]{1,200}\.[A-Za-z_][A-Za-z0-9_]{0,99}$/, 'must be component_id.prop, e.g. region.value');

/** The host ↔ app bridge (docs/bridge.md): off for an app unless set. */
const bridgeSchema = z.strictObject({
  /** Props the host page may set with setProps() (the app's callbacks then run as if the user changed them). */
  host_may_set: z.array(propRef).default([]),
  /** Props whose values reach the host page as 'props' events when the app's callbacks or the user change them. */
  publish: z.array(propRef).default([]),
  /** Whether the app may send named events with window.embedgate.emit(name, data). */
  events: z.boolean().default(false),
});

const appSchema = z.strictObject({
  name: z.string().regex(/^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$/, 'must be 1-64 letters, digits, "-" or "_"'),
  prefix: z.string().regex(/^\/([A-Za-z0-9._~-]+\/)*$/, 'must start and end with "/", e.g. /sales/'),
  upstream: httpUrl,
  strip_prefix: z.boolean().default(false),
  allow: ruleSchema,
  deny: ruleSchema.optional(),
  public: z.array(pathGlob).default([]),
  routes: z.array(routeSchema).default([]),
  dash: dashSchema.optional(),
  forward_authorization: z.boolean().default(false),
  websockets: z.boolean().default(true),
  connect_timeout_ms: z.number().int().min(100).max(120000).default(5000),
  response_timeout_ms: z.number().int().min(100).max(3600000).default(60000),
  embed: z.strictObject({ bridge: bridgeSchema.optional() }).optional(),
  /**
   * The identity headers the app gets: X-Forwarded-User, -Groups, -Email and the signed X-Embedgate-Assertion. All by
   * default; leaving out what the app does not read saves work on every request (the assertion is signed per user).
   */
  identity_headers: z.array(z.enum(['user', 'groups', 'email', 'assertion'])).default(['user', 'groups', 'email', 'assertion']),
});

/** 32 or more random bytes, base64 or base64url (e.g. `openssl rand -base64 32`). */
const secretKey = z.string().refine((value) => Buffer.from(value, 'base64').length >= 32, 'must be at least 32 random bytes, base64 (openssl rand -base64 32)');

const loginSchema = z.strictObject({
  /** The OpenID Provider users sign in with; it must also be in issuers[] (its access tokens are checked the same way). */
  issuer: httpUrl,
  client_id: z.string().min(1),
  client_secret: z.string().min(1).optional(),
  /** How the gateway authenticates at the token endpoint; default client_secret_basic with a secret, else none. */
  client_auth: z.enum(['client_secret_basic', 'client_secret_post', 'private_key_jwt', 'none']).optional(),
  /** For private_key_jwt: a PKCS#8 PEM or a private JWK file, and the algorithm it signs with. */
  private_key: z.strictObject({
    file: z.string().min(1),
    alg: z.enum(['RS256', 'PS256', 'ES256', 'EdDSA']).default('RS256'),
    kid: z.string().min(1).optional(),
  }).optional(),
  /** The one algorithm ID tokens must be signed with (OpenID Connect's default is RS256). */
  id_token_signing_alg: z.enum(['RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512', 'ES256', 'ES384', 'ES512', 'EdDSA']).default('RS256'),
  scopes: z.array(z.string().regex(/^[\x21\x23-\x5b\x5d-\x7e]+$/, 'must be a scope token')).default(['openid', 'profile', 'email', 'offline_access'])
    .refine((scopes) => scopes.includes('openid'), 'must include openid'),
  /**
   * Sent as `prompt`. Providers that follow OpenID Connect strictly (oidc-provider, Google) grant offline_access — a
   * refresh token — only with prompt=consent; first-party clients usually skip the consent page.
   */
  prompt: z.enum(['none', 'login', 'consent', 'select_account']).optional(),
  /**
   * RFC 8707 resource for the access token (the gateway's audience). Default: the issuer's one trusted audience, for
   * providers with no preset (see login-defaults.ts).
   */
  resource: httpUrl.optional(),
  /** Auth0's way of asking for an access token for an API; default: the one trusted audience with preset auth0. */
  audience: z.string().min(1).optional(),
  /** Where the provider sends the browser after sign-out (register it with the provider); else its own page. */
  post_logout_redirect_uri: httpUrl.optional(),
  /** Seals the login transaction cookies and the refresh and ID tokens kept with sessions. */
  encryption_key: secretKey,
  /** The longest a session lives, however often its tokens are refreshed. */
  session_max_seconds: z.number().int().min(10).max(30 * 86400).default(43200),
  /** A session not used for this long ends. */
  idle_timeout_seconds: z.number().int().min(10).max(30 * 86400).default(1800),
  /** Refresh the access token this long before it expires (when the provider gave a refresh token). */
  refresh_before_seconds: z.number().int().min(5).max(3600).default(60),
  /** Sign-ins in progress one browser may have at once (each in its own short-lived cookie). */
  max_parallel_logins: z.number().int().min(1).max(20).default(5),
});

export type LoginConfig = z.infer<typeof loginSchema>;

export const configSchema = z.strictObject({
  listen: hostPort.default('127.0.0.1:4180'),
  public_url: httpUrl,
  data_dir: z.string().min(1).default('./data'),
  log_level: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
  access_log: z.boolean().default(true),
  trusted_proxies: z.array(cidr).default([]),
  max_token_bytes: z.number().int().min(1024).max(65536).default(8192),
  verified_token_cache_size: z.number().int().min(0).max(1_000_000).default(10000),
  issuers: z.array(issuerSchema).min(1),
  embed: z.strictObject({
    allowed_origins: z.array(origin).default([]),
    /** Upper bound of an embed session; it never outlives the token it was made from either. */
    session_ttl_seconds: z.number().int().min(30).max(86400).default(3600),
    /** The frame script also sends `Authorization: Bearer` on the app's same-origin fetch/XHR. */
    header_mode: z.boolean().default(true),
    /**
     * How a framed app carries its session: `cookie` (partitioned), `worker` (a service worker adds a session handle
     * to the frame's requests; for browsers that refuse cookies in cross-site frames), or `auto`: the cookie where it
     * sticks, else the worker.
     */
    mode: z.enum(['auto', 'cookie', 'worker']).default('auto'),
  }).default({ allowed_origins: [], session_ttl_seconds: 3600, header_mode: true, mode: 'auto' }),
  sessions: z.strictObject({
    /** memory: (lost on restart), sqlite:PATH or redis://host:port (shared by instances); default sqlite:<data_dir>/sessions.db. */
    store: z.string().regex(/^(memory:|sqlite:.+|rediss?:\/\/.+)$/, 'must be memory:, sqlite:PATH or redis://host:port').optional(),
  }).default({}),
  assertion: z.strictObject({
    key_file: z.string().min(1).optional(),
    ttl_seconds: z.number().int().min(5).max(3600).default(60),
  }).default({ ttl_seconds: 60 }),
  apps: z.array(appSchema).min(1),
  /** Standalone browser sign-in (authorization code + PKCE) for apps opened outside a frame. */
  login: loginSchema.optional(),
  // Read by `embedgate idp`; the gateway leaves it alone so both can share one file.
  idp: z.unknown().optional(),
}).superRefine((config, ctx) => {
  if (config.login !== undefined && !config.issuers.some((issuer) => issuer.issuer === config.login?.issuer)) {
    ctx.addIssue({ code: 'custom', path: ['login', 'issuer'], message: 'must also be listed in issuers[] (its access tokens are verified like any other)' });
  }
  const auth = config.login?.client_auth;
  if ((auth === 'client_secret_basic' || auth === 'client_secret_post') && config.login?.client_secret === undefined) {
    ctx.addIssue({ code: 'custom', path: ['login', 'client_secret'], message: `is required with client_auth ${auth}` });
  }
  if (auth === 'private_key_jwt' && config.login?.private_key === undefined) {
    ctx.addIssue({ code: 'custom', path: ['login', 'private_key'], message: 'is required with client_auth private_key_jwt' });
  }
  const loginIssuer = config.issuers.find((issuer) => issuer.issuer === config.login?.issuer);
  for (const key of ['resource', 'audience'] as const) {
    const asked = config.login?.[key];
    if (asked !== undefined && loginIssuer !== undefined && !loginIssuer.audiences.includes(asked)) {
      ctx.addIssue({ code: 'custom', path: ['login', key], message: `must be one of the audiences trusted for ${loginIssuer.issuer} (issuers[].audiences): access tokens asked for ${asked} would all be refused` });
    }
  }
  if (config.login !== undefined && config.login.idle_timeout_seconds > config.login.session_max_seconds) {
    ctx.addIssue({ code: 'custom', path: ['login', 'idle_timeout_seconds'], message: 'must not be longer than session_max_seconds' });
  }
  const prefixes = new Map<string, number>();
  const names = new Map<string, number>();
  config.apps.forEach((app, i) => {
    if (prefixes.has(app.prefix)) ctx.addIssue({ code: 'custom', path: ['apps', i, 'prefix'], message: `duplicates the prefix of apps[${prefixes.get(app.prefix)}]` });
    if (names.has(app.name)) ctx.addIssue({ code: 'custom', path: ['apps', i, 'name'], message: `duplicates the name of apps[${names.get(app.name)}]` });
    if (app.prefix.startsWith('/_embedgate/') || app.prefix === '/_embedgate/') ctx.addIssue({ code: 'custom', path: ['apps', i, 'prefix'], message: '/_embedgate/ is reserved for the gateway' });
    prefixes.set(app.prefix, i);
    names.set(app.name, i);
    app.public.forEach((glob, j) => {
      if (!glob.startsWith(app.prefix)) ctx.addIssue({ code: 'custom', path: ['apps', i, 'public', j], message: `must lie under the app's prefix ${app.prefix}` });
    });
    app.routes.forEach((route, j) => route.paths.forEach((glob, k) => {
      if (!glob.startsWith(app.prefix)) ctx.addIssue({ code: 'custom', path: ['apps', i, 'routes', j, 'paths', k], message: `must lie under the app's prefix ${app.prefix}` });
    }));
  });
  const issuers = new Set<string>();
  config.issuers.forEach((issuer, i) => {
    if (issuers.has(issuer.issuer)) ctx.addIssue({ code: 'custom', path: ['issuers', i, 'issuer'], message: 'is configured twice' });
    issuers.add(issuer.issuer);
  });
  if (new URL(config.public_url).pathname !== '/') ctx.addIssue({ code: 'custom', path: ['public_url'], message: 'must be an origin with no path, e.g. https://gw.example.com' });
});

export type GatewayConfig = z.output<typeof configSchema>;
export type IssuerConfig = GatewayConfig['issuers'][number];
export type AppConfig = GatewayConfig['apps'][number];
