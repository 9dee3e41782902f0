// Shared core of the Express and Fastify middleware: options → one-issuer TokenVerifier, request → identity or denial.
import type { IncomingMessage } from 'node:http';
import { pino, type Logger } from 'pino';
import type { z } from 'zod';
import { ConfigError, fieldName } from '../config/load.js';
import { configSchema, ruleSchema, type ROLE_PRESETS, type SIGNING_ALGORITHMS } from '../config/schema.js';
import { authenticateRequest, type AuthOutcome } from '../gateway/authenticate.js';
import { denialBody, denialHeaders, wwwAuthenticate, type Denial } from '../http/respond.js';
import { compileRule, type Predicate } from '../policy/rules.js';
import { TokenVerifier } from '../tokens/verifier.js';

export interface AuthOptions {
  /** Issuer identifier, compared exactly with the token's `iss`; its keys come from OIDC discovery. */
  issuer: string;
  /** The token's `aud` must contain this value (or one of these values). */
  audience: string | readonly string[];
  /** The caller needs at least one of these roles. */
  roles?: readonly string[];
  /** The token must carry every one of these scopes (`scope` or `scp`). */
  scopes?: readonly string[];
  /** Accepted signing algorithms; default RS256, PS256, ES256, EdDSA. */
  algorithms?: ReadonlyArray<(typeof SIGNING_ALGORITHMS)[number]>;
  /** Where roles live: an exact claim name or a dot path; overrides the preset. */
  rolesClaim?: string;
  /** Roles claim of a known IdP: generic (default, `roles`), auth0, keycloak, entra, okta, cognito. */
  preset?: (typeof ROLE_PRESETS)[number];
  /** Clock skew allowed on `exp`, `nbf` and `iat`; default 30, at most 300. */
  leewaySeconds?: number;
  /** pino logger for key loading; default silent. */
  logger?: Logger;
}


export interface DenialResponse {
  status: number;
  headers: Record<string, string>;
  body: string;
}

const OPTION_NAMES = ['issuer', 'audience', 'roles', 'scopes', 'algorithms', 'rolesClaim', 'preset', 'leewaySeconds', 'logger'];
/** Schema field → option name, so problems name what the caller wrote. */
const SCHEMA_TO_OPTION: Record<string, string> = { audiences: 'audience', roles_claim: 'rolesClaim', leeway_seconds: 'leewaySeconds' };
const issuerSchema = configSchema.shape.issuers.element;
const MAX_TOKEN_BYTES = configSchema.shape.max_token_bytes.parse(undefined);
const CACHE_SIZE = configSchema.shape.verified_token_cache_size.parse(undefined);

function problems(error: z.ZodError): string[] {
  return error.issues.map((issue) => {
    const [head, ...rest] = issue.path;
    const path = typeof head === 'string' ? [SCHEMA_TO_OPTION[head] ?? head, ...rest] : issue.path;
    return `${fieldName(path)}: ${issue.message}`;
  });
}

/** Refuses unknown option names: a typo such as `role:` must not silently admit every signed-in caller. */
function checkOptionNames(options: object): void {
  const unknown = Object.keys(options).filter((key) => !OPTION_NAMES.includes(key));
  if (unknown.length > 0) throw new ConfigError(unknown.map((key) => `${key}: unknown option`));
}

function issuerConfig(options: AuthOptions): z.output<typeof issuerSchema> {
  const result = issuerSchema.safeParse({
    issuer: options.issuer,
    audiences: typeof options.audience === 'string' ? [options.audience] : options.audience,
    algorithms: options.algorithms,
    preset: options.preset,
    roles_claim: options.rolesClaim,
    leeway_seconds: options.leewaySeconds,
  });
  if (!result.success) throw new ConfigError(problems(result.error));
  return result.data;
}

interface Requirement {
  holds: Predicate;
  denial: Denial;
}

/** The roles (any of) and scopes (all of) requirements, validated by the same schema as app rules. */
function requirements(options: AuthOptions): Requirement[] {
  if (options.roles === undefined && options.scopes === undefined) return [];
  const result = ruleSchema.safeParse({ roles: options.roles, scopes: options.scopes });
  if (!result.success) throw new ConfigError(problems(result.error));
  const { roles, scopes } = result.data;
  const list: Requirement[] = [];
  if (roles !== undefined) {
    list.push({ holds: compileRule({ roles }), denial: { status: 403, error: 'forbidden', message: 'You are signed in but do not have a role this resource requires.' } });
  }
  if (scopes !== undefined) {
    const message = `The access token needs every one of these scopes: ${scopes.join(' ')}.`;
    list.push({ holds: compileRule({ scopes }), denial: { status: 403, error: 'insufficient_scope', message, bearerError: 'insufficient_scope' } });
  }
  return list;
}

/**
 * Validates the options (throws ConfigError naming each bad option) and returns the request check.
 * The issuer's keys are loaded on the first request, not before.
 */
export function createAuthCheck(options: AuthOptions): (req: IncomingMessage) => Promise<AuthOutcome> {
  checkOptionNames(options);
  const config = issuerConfig(options);
  const required = requirements(options);
  const verifier = new TokenVerifier({
    issuers: [config],
    maxTokenBytes: MAX_TOKEN_BYTES,
    cacheSize: CACHE_SIZE,
    logger: options.logger ?? pino({ level: 'silent' }),
  });
  let started = false;
  return async (req) => {
    if (!started) {
      started = true;
      verifier.start();
    }
    const outcome = await authenticateRequest(verifier, req);
    if ('denial' in outcome) return outcome;
    const unmet = required.find((requirement) => !requirement.holds(outcome.identity));
    return unmet === undefined ? outcome : { denial: unmet.denial };
  };
}

/** The gateway's JSON error response; RFC 6750 also asks for the challenge on an insufficient_scope 403. */
export function denialResponse(denial: Denial): DenialResponse {
  const headers = denialHeaders(denial, false);
  if (denial.bearerError === 'insufficient_scope') headers['www-authenticate'] = wwwAuthenticate(denial);
  return { status: denial.status, headers, body: denialBody(denial, false, '') };
}
