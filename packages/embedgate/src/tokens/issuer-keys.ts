// One issuer's signing keys: OIDC discovery, a cached JWKS, bounded refetch on unknown `kid`, readiness.
import { createLocalJWKSet, errors as joseErrors, type CryptoKey, type FlattenedJWSInput, type JWK, type JWSHeaderParameters, type LocalJWKSet } from 'jose';
import type { Logger } from 'pino';
import { fetchJson } from './fetch-json.js';
import { IdpUnavailableError } from './errors.js';

export interface IssuerKeysOptions {
  issuer: string;
  /** Skips discovery when set. */
  jwksUri?: string | undefined;
  timeoutMs: number;
  cacheSeconds: number;
  cooldownSeconds: number;
  logger: Logger;
  onFetch?: (kind: 'discovery' | 'jwks', outcome: 'ok' | 'error') => void;
  /** Called when a refresh drops keys that were published before, so cached verdicts can be forgotten. */
  onKeysRemoved?: () => void;
}

const SIGNING_KEY_TYPES = new Set(['RSA', 'EC', 'OKP']);
const MAX_RETRY_DELAY_MS = 30_000;
/** While no keys are known, a request may trigger a fetch at most this often… */
const NOT_READY_RETRY_MS = 1000;
/** …and waits at most this long for it before answering 503. */
const NOT_READY_WAIT_MS = 1000;

/** Keeps the members a signature could be checked with; unparseable or foreign entries are ignored. */
function usableKeys(document: Record<string, unknown>): JWK[] {
  if (!Array.isArray(document.keys)) throw new Error('JWKS has no "keys" array');
  return document.keys.filter((key): key is JWK => key !== null && typeof key === 'object' && !Array.isArray(key)
    && typeof (key as JWK).kty === 'string' && SIGNING_KEY_TYPES.has((key as JWK).kty as string)
    && ((key as JWK).use === undefined || (key as JWK).use === 'sig')
    && (key as { d?: unknown }).d === undefined);
}

export class IssuerKeys {
  private keySet: LocalJWKSet | undefined;
  private kids = new Set<string>();
  private fetchedAt = 0;
  private lastAttempt = 0;
  private inflight: Promise<void> | undefined;
  private retryTimer: NodeJS.Timeout | undefined;
  private retryDelay = 1000;
  private stopped = false;
  private jwksUri: string | undefined;
  lastError: string | undefined;

  constructor(private readonly options: IssuerKeysOptions) {
    this.jwksUri = options.jwksUri;
  }

  get ready(): boolean {
    return this.keySet !== undefined;
  }

  /** True once the keys are older than `jwks_cache_seconds`: verdicts made with them must be re-checked. */
  stale(nowMs: number): boolean {
    return nowMs - this.fetchedAt > this.options.cacheSeconds * 1000;
  }

  /** Starts loading keys in the background and keeps retrying, with backoff, until it succeeds. */
  start(): void {
    void this.backgroundLoad();
  }

  stop(): void {
    this.stopped = true;
    if (this.retryTimer) clearTimeout(this.retryTimer);
  }

  private async backgroundLoad(): Promise<void> {
    if (this.stopped || this.ready) return;
    await this.refresh().catch(() => undefined);
    if (this.stopped || this.ready) return;
    this.retryTimer = setTimeout(() => void this.backgroundLoad(), this.retryDelay);
    this.retryTimer.unref();
    this.retryDelay = Math.min(this.retryDelay * 2, MAX_RETRY_DELAY_MS);
  }

  /** Fetches discovery (if needed) and the JWKS once; concurrent callers share one fetch. */
  refresh(): Promise<void> {
    this.inflight ??= this.load().finally(() => {
      this.inflight = undefined;
    });
    return this.inflight;
  }

  private async load(): Promise<void> {
    const { issuer, timeoutMs, logger, onFetch } = this.options;
    this.lastAttempt = Date.now();
    try {
      if (this.options.jwksUri === undefined) this.jwksUri = await this.discover();
      const document = await fetchJson(this.jwksUri as string, timeoutMs).catch((error: Error) => {
        onFetch?.('jwks', 'error');
        throw new Error(`JWKS fetch failed: ${error.message}`);
      });
      const keys = usableKeys(document);
      if (keys.length === 0) {
        onFetch?.('jwks', 'error');
        throw new Error('JWKS has no usable signing keys');
      }
      onFetch?.('jwks', 'ok');
      const kids = new Set(keys.map((k) => k.kid).filter((kid): kid is string => typeof kid === 'string'));
      const removed = [...this.kids].some((kid) => !kids.has(kid));
      this.keySet = createLocalJWKSet({ keys });
      this.kids = kids;
      this.fetchedAt = Date.now();
      this.lastError = undefined;
      this.retryDelay = 1000;
      if (removed) this.options.onKeysRemoved?.();
      logger.info({ issuer, keys: keys.length }, 'loaded issuer signing keys');
    } catch (error) {
      this.lastError = (error as Error).message;
      logger.warn({ issuer, err: this.lastError }, 'cannot load issuer signing keys');
      throw error;
    }
  }

  private async discover(): Promise<string> {
    const { issuer, timeoutMs, onFetch } = this.options;
    const url = `${issuer.replace(/\/$/, '')}/.well-known/openid-configuration`;
    let document: Record<string, unknown>;
    try {
      document = await fetchJson(url, timeoutMs);
    } catch (error) {
      onFetch?.('discovery', 'error');
      throw new Error(`discovery failed: ${(error as Error).message}`);
    }
    if (document.issuer !== issuer) {
      onFetch?.('discovery', 'error');
      throw new Error(`discovery document names issuer ${JSON.stringify(String(document.issuer)).slice(0, 200)}, not the configured ${issuer}`);
    }
    const jwksUri = document.jwks_uri;
    if (typeof jwksUri !== 'string' || !/^https?:\/\//.test(jwksUri)) {
      onFetch?.('discovery', 'error');
      throw new Error('discovery document has no http(s) jwks_uri');
    }
    onFetch?.('discovery', 'ok');
    return jwksUri;
  }

  /** Refreshes unless one was tried within `minGapMs`; never throws (the old keys stay in use). */
  private async tryRefresh(minGapMs: number): Promise<void> {
    if (Date.now() - this.lastAttempt < minGapMs && this.inflight === undefined) return;
    await this.refresh().catch(() => undefined);
  }

  /** The key for a token (also a key resolver for jose's jwtVerify): only from this issuer's JWKS, never from its headers. */
  readonly getKey = async (header: JWSHeaderParameters, token: FlattenedJWSInput): Promise<CryptoKey> => {
    if (this.keySet === undefined) {
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([
        this.tryRefresh(NOT_READY_RETRY_MS),
        new Promise((resolve) => { timer = setTimeout(resolve, NOT_READY_WAIT_MS); }),
      ]);
      clearTimeout(timer);
      if (this.keySet === undefined) {
        throw new IdpUnavailableError(this.options.issuer, `signing keys of ${this.options.issuer} are not available`);
      }
    }
    if (this.stale(Date.now())) {
      await this.tryRefresh(Math.min(this.options.cacheSeconds, this.options.cooldownSeconds) * 1000);
    }
    try {
      return await (this.keySet as LocalJWKSet)(header, token);
    } catch (error) {
      if (!(error instanceof joseErrors.JWKSNoMatchingKey)) throw error;
      await this.tryRefresh(this.options.cooldownSeconds * 1000);
      try {
        return await (this.keySet as LocalJWKSet)(header, token);
      } catch (retryError) {
        // The issuer did not answer the last fetch: the key may be one it published since, so "unknown" is not known.
        if (retryError instanceof joseErrors.JWKSNoMatchingKey && this.lastError !== undefined) {
          throw new IdpUnavailableError(this.options.issuer, `signing keys of ${this.options.issuer} cannot be refreshed: ${this.lastError}`);
        }
        throw retryError;
      }
    }
  };
}
