// Verifies bearer JWTs from the configured issuers: algorithms from config, keys only from each issuer's JWKS.
import type { Algorithm } from 'fast-jwt';
import { errors as joseErrors, type CryptoKey, type JWTPayload, type JWTVerifyGetKey, type ProtectedHeaderParameters } from 'jose';
import type { Logger } from 'pino';
import { Gauge, type Registry } from 'prom-client';
import type { IssuerConfig } from '../config/schema.js';
import type { Identity } from '../identity/identity.js';
import { readScopes, rolesReader } from '../identity/roles.js';
import { IdpUnavailableError, TokenError, type TokenFailure } from './errors.js';
import { IssuerKeys } from './issuer-keys.js';
import { KeyVerifiers } from './key-verifiers.js';
import { VerifiedTokenCache } from './verified-cache.js';

export interface VerifierOptions {
  issuers: IssuerConfig[];
  maxTokenBytes: number;
  cacheSize: number;
  logger: Logger;
  /** Where to publish the verified-token cache's size (embedgate_verified_token_cache_entries), if anywhere. */
  registry?: Registry | undefined;
  onFetch?: (issuer: string, kind: 'discovery' | 'jwks', outcome: 'ok' | 'error') => void;
}

interface TrustedIssuer {
  config: IssuerConfig;
  keys: IssuerKeys;
  verifiers: KeyVerifiers;
  roles: (claims: JWTPayload) => string[];
}

/** Header parameters that point at keys outside the issuer's JWKS; a token carrying one is refused. */
const KEY_REFERENCE_HEADERS = ['jku', 'jwk', 'x5u', 'x5c'] as const;
/** JWT kinds that are never access tokens (logout tokens, security events, ID tokens typed as such). */
const NON_ACCESS_TYPES = new Set(['application/logout+jwt', 'application/secevent+jwt', 'application/id_token+jwt']);
const JWT_SEGMENT = /^[A-Za-z0-9_-]+$/;
/** RFC 7519 wants UTF-8; a lenient decode would let different bytes read as the same claims. A BOM stays, and fails. */
const UTF8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

/** Unpadded base64url: never one character past a multiple of 4, which a lenient decoder would silently drop. */
function isSegment(segment: string): boolean {
  return JWT_SEGMENT.test(segment) && segment.length % 4 !== 1;
}

function reject(reason: TokenFailure, message: string): never {
  throw new TokenError(reason, message);
}

function decodeSegment(segment: string, what: string): Record<string, unknown> {
  let value: unknown;
  try {
    value = JSON.parse(UTF8.decode(Buffer.from(segment, 'base64url')));
  } catch {
    return reject('malformed_token', `the token ${what} is not base64url JSON`);
  }
  if (value === null || typeof value !== 'object' || Array.isArray(value)) reject('malformed_token', `the token ${what} is not a JSON object`);
  return value as Record<string, unknown>;
}

function normalizedTyp(typ: string): string {
  const lower = typ.toLowerCase();
  return lower.includes('/') ? lower : `application/${lower}`;
}

function isNumericDate(value: unknown): boolean {
  return typeof value === 'number' && Number.isFinite(value) && value >= 0 && value < 1e11;
}

/** Booleans as sent; "true"/"false" strings as some IdPs (Cognito) send them; anything else counts as unverified. */
function readEmailVerified(value: unknown): boolean | undefined {
  if (value === undefined || typeof value === 'boolean') return value;
  return value === 'true';
}

/** Why jose found no key for the token in the issuer's JWKS; IdpUnavailableError (503) passes through. */
function keyLookupError(error: unknown): Error {
  if (error instanceof IdpUnavailableError) return error;
  if (error instanceof joseErrors.JWKSNoMatchingKey || error instanceof joseErrors.JWKSMultipleMatchingKeys) {
    return new TokenError('unknown_key', 'no signing key of the issuer matches the token');
  }
  if (error instanceof joseErrors.JOSENotSupported) return new TokenError('unsupported_header', 'the token uses an unsupported header or algorithm');
  return new TokenError('invalid_token', 'the token is invalid');
}

export class TokenVerifier {
  private readonly issuers = new Map<string, TrustedIssuer>();
  private readonly cache: VerifiedTokenCache;
  /** Verifications under way, by token: concurrent first requests with one token share one verification and identity. */
  private readonly inFlight = new Map<string, Promise<Identity>>();

  constructor(private readonly options: VerifierOptions) {
    this.cache = new VerifiedTokenCache(options.cacheSize);
    if (options.registry !== undefined) {
      const cache = this.cache;
      new Gauge({
        name: 'embedgate_verified_token_cache_entries',
        help: 'Bearer tokens whose verdict is cached now (at most verified_token_cache_size)',
        registers: [options.registry],
        collect() {
          this.set(cache.size);
        },
      });
    }
    for (const config of options.issuers) {
      const keys = new IssuerKeys({
        issuer: config.issuer,
        jwksUri: config.jwks_uri,
        timeoutMs: config.http_timeout_ms,
        cacheSeconds: config.jwks_cache_seconds,
        cooldownSeconds: config.jwks_refetch_cooldown_seconds,
        logger: options.logger,
        onFetch: (kind, outcome) => options.onFetch?.(config.issuer, kind, outcome),
        onKeysRemoved: () => this.cache.dropIssuer(config.issuer),
      });
      this.issuers.set(config.issuer, { config, keys, verifiers: new KeyVerifiers(config), roles: rolesReader(config) });
    }
  }

  start(): void {
    for (const issuer of this.issuers.values()) issuer.keys.start();
  }

  stop(): void {
    for (const issuer of this.issuers.values()) issuer.keys.stop();
  }

  /** Per-issuer readiness for /readyz. */
  readiness(): Array<{ issuer: string; ready: boolean; error?: string }> {
    return [...this.issuers.values()].map(({ config, keys }) => ({
      issuer: config.issuer,
      ready: keys.ready,
      ...(keys.ready || keys.lastError === undefined ? {} : { error: keys.lastError }),
    }));
  }

  /** The signing keys of a trusted issuer (its JWKS, refetched on rotation), for other JWTs it signs. */
  keysOf(issuer: string): JWTVerifyGetKey | undefined {
    return this.issuers.get(issuer)?.keys.getKey;
  }

  get ready(): boolean {
    return [...this.issuers.values()].every((issuer) => issuer.keys.ready);
  }

  /**
   * The cached verdict on a token, if any. A verdict is reused only while the keys it was made with are fresh; past
   * the JWKS TTL the token is verified again, which refreshes the keys and catches a withdrawn key.
   */
  known(token: string): Identity | undefined {
    const nowMs = Date.now();
    const cached = this.cache.get(token, Math.floor(nowMs / 1000));
    return cached === undefined || this.issuers.get(cached.issuer)?.keys.stale(nowMs) !== false ? undefined : cached;
  }

  /** Returns the caller's identity or throws TokenError (401) / IdpUnavailableError (503). */
  verify(token: string): Promise<Identity> {
    const known = this.known(token);
    if (known !== undefined) return Promise.resolve(known);
    let pending = this.inFlight.get(token);
    if (pending === undefined) {
      pending = this.verifyUncached(token).finally(() => this.inFlight.delete(token));
      this.inFlight.set(token, pending);
    }
    return pending;
  }

  private async verifyUncached(token: string): Promise<Identity> {
    const now = Math.floor(Date.now() / 1000);

    if (token.length > this.options.maxTokenBytes) reject('token_too_large', 'the token is too large');
    const segments = token.split('.');
    if (segments.length === 5) reject('unsupported_token_format', 'encrypted tokens (JWE) are not accepted');
    if (segments.length !== 3 || !segments.every(isSegment)) reject('malformed_token', 'the token is not a signed JWT');
    const [encodedHeader, encodedPayload, signature] = segments as [string, string, string];
    const header = decodeSegment(encodedHeader, 'header') as ProtectedHeaderParameters;
    const payload = decodeSegment(encodedPayload, 'payload');

    for (const name of KEY_REFERENCE_HEADERS) {
      if (header[name] !== undefined) reject('untrusted_key_reference', `the token header carries "${name}", which is never trusted`);
    }
    if (typeof header.kid === 'string' && (header.kid.length > 256 || !/^[\x20-\x7e]+$/.test(header.kid))) {
      reject('unknown_key', 'no signing key of the issuer matches the token');
    }
    if (header.kid !== undefined && typeof header.kid !== 'string') reject('malformed_token', 'the token "kid" is not a string');
    if (typeof header.typ === 'string' && NON_ACCESS_TYPES.has(normalizedTyp(header.typ))) {
      reject('invalid_token_type', 'the token is not an access token');
    }
    if (payload.events !== undefined) reject('invalid_token_type', 'the token is not an access token');

    const trusted = typeof payload.iss === 'string' ? this.issuers.get(payload.iss) : undefined;
    if (trusted === undefined) reject('unknown_issuer', 'the token issuer is not trusted');
    const { config } = trusted;
    if (typeof header.alg !== 'string' || !(config.algorithms as string[]).includes(header.alg)) {
      reject('algorithm_not_allowed', 'the token algorithm is not allowed');
    }
    for (const claim of ['exp', 'nbf', 'iat'] as const) {
      if (payload[claim] !== undefined && !isNumericDate(payload[claim])) reject('invalid_time_claim', `the token "${claim}" claim is not a valid date`);
    }
    if (typeof payload.iat === 'number' && payload.iat > now + config.leeway_seconds) {
      reject('invalid_time_claim', 'the token was issued in the future');
    }
    if (config.preset === 'keycloak' && typeof payload.typ === 'string' && payload.typ !== 'Bearer') {
      reject('invalid_token_type', 'the token is not an access token');
    }
    // Cognito says what a token is in token_use, and its access tokens carry no aud: the app client they were
    // issued to, in client_id, must then be one of the audiences (as AWS API Gateway's JWT authorizers check).
    if (config.preset === 'cognito' && payload.token_use !== 'access') reject('invalid_token_type', 'the token is not an access token');
    const audienceInClientId = config.preset === 'cognito' && payload.aud === undefined;

    // No JWS extension is understood, so a critical one is always refused: as unsupported when crit lists names.
    if (header.crit !== undefined) {
      const names = Array.isArray(header.crit) && header.crit.length > 0 && header.crit.every((name) => typeof name === 'string' && name !== '');
      if (names) reject('unsupported_header', 'the token uses an unsupported header or algorithm');
      reject('invalid_token', 'the token is invalid');
    }

    let key: CryptoKey;
    try {
      key = await trusted.keys.getKey(header, { protected: encodedHeader, payload: encodedPayload, signature });
    } catch (error) {
      throw keyLookupError(error);
    }
    const claims = trusted.verifiers.verify(token, key, header.alg as Algorithm);

    // `iss` chose the issuer by exact match; `aud` (one or a list) or Cognito's client_id must name one of its audiences.
    const presented: unknown[] = audienceInClientId ? [claims.client_id] : Array.isArray(claims.aud) ? claims.aud : [claims.aud];
    if (!presented.some((audience) => config.audiences.includes(audience as string))) {
      reject('invalid_audience', 'the token is not meant for this gateway');
    }

    const identity: Identity = {
      issuer: config.issuer,
      subject: typeof claims.sub === 'string' ? claims.sub : '',
      email: typeof claims.email === 'string' ? claims.email : undefined,
      emailVerified: readEmailVerified(claims.email_verified),
      roles: new Set(trusted.roles(claims)),
      scopes: new Set(readScopes(claims)),
      claims,
      expiresAt: claims.exp as number,
    };
    if (identity.subject === '') reject('missing_claim', 'the token has no "sub" claim');
    this.cache.set(token, identity);
    return identity;
  }
}
