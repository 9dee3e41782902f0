// A login session from one request to the next: it ends after the idle timeout, and its access token is refreshed
// before it expires — once, even when several requests (on several instances) find it due at the same moment. A
// refresh the provider refuses, or one that names another user, ends the session; the absolute timeout never moves.
import * as client from 'openid-client';
import type { Logger } from 'pino';
import type { LoginConfig } from '../config/schema.js';
import type { FoundSession, Sessions } from '../sessions/sessions.js';
import type { TokenVerifier } from '../tokens/verifier.js';
import { IdpUnavailableError } from '../tokens/errors.js';
import { failureReason, type LoginProvider } from './provider.js';
import type { Sealer } from './sealed.js';

/** How long one instance may hold a session's refresh before another may try. */
const REFRESH_LOCK_MS = 10_000;
/** How long a request waits for another instance's refresh of an access token that has already expired. */
const WAIT_FOR_OTHERS_MS = 5_000;
const POLL_MS = 100;
/** Last use is written at most this often (and at least ten times per idle timeout). */
const TOUCH_EVERY_SECONDS = 60;

export interface LifecycleDeps {
  login: LoginConfig;
  provider: LoginProvider;
  verifier: TokenVerifier;
  sessions: Sessions;
  /** Seals the refresh token kept with a session. */
  tokenSealer: Sealer;
  extraParameters: Record<string, string>;
  logger: Logger;
}

const nowSeconds = (): number => Math.floor(Date.now() / 1000);

/**
 * True when a refresh failed because the provider could not answer (network, timeout, a 5xx); anything else — an
 * OAuth error, or tokens that fail validation (a refreshed ID token naming another issuer, a bad signature) — is the
 * provider's or the tokens' verdict, and ends the session.
 */
function isOutage(error: unknown): boolean {
  if (error instanceof client.ResponseBodyError) return error.status >= 500;
  if (error instanceof TypeError) return true;
  const name = (error as Error).name;
  if (name === 'AbortError' || name === 'TimeoutError') return true;
  const status = ((error as Error).cause as Response | undefined)?.status;
  return typeof status === 'number' && status >= 500;
}

export class SessionLifecycle {
  /** Refreshes under way in this process, by session id. */
  private readonly refreshing = new Map<string, Promise<FoundSession | undefined>>();
  private readonly touchEvery: number;

  constructor(private readonly deps: LifecycleDeps) {
    this.touchEvery = Math.min(TOUCH_EVERY_SECONDS, Math.floor(deps.login.idle_timeout_seconds / 10));
  }

  /** The session as it stands now, or undefined when it has ended (idle, or a failed refresh). */
  async current(found: FoundSession): Promise<FoundSession | undefined> {
    const { record } = found;
    const now = nowSeconds();
    if ((record.lastSeenAt ?? record.createdAt) + this.deps.login.idle_timeout_seconds <= now) {
      return this.end(found, 'idle timeout');
    }
    const current = this.due(found) ? await this.refreshOnce(found) : found;
    if (current === undefined) return undefined;
    if (now - (current.record.lastSeenAt ?? 0) >= this.touchEvery) await this.deps.sessions.store.touch(current.id, now);
    return current;
  }

  private refreshOnce(found: FoundSession): Promise<FoundSession | undefined> {
    let pending = this.refreshing.get(found.id);
    if (pending === undefined) {
      pending = this.refresh(found).finally(() => this.refreshing.delete(found.id));
      this.refreshing.set(found.id, pending);
    }
    return pending;
  }

  private async refresh(found: FoundSession): Promise<FoundSession | undefined> {
    const release = await this.deps.sessions.store.lock(`refresh:${found.id}`, REFRESH_LOCK_MS);
    if (release === undefined) return this.refreshedElsewhere(found);
    try {
      const latest = await this.deps.sessions.findById(found.id);
      if (latest === undefined) return undefined;
      if (!this.due(latest)) return latest;
      const secrets = latest.record.secrets === undefined ? undefined : await this.deps.tokenSealer.open(latest.record.secrets);
      const refreshToken = typeof secrets?.refresh_token === 'string' ? secrets.refresh_token : undefined;
      if (refreshToken === undefined) return this.stillValid(latest) ? latest : this.end(latest, 'access token expired, no refresh token');
      return await this.redeem(latest, refreshToken);
    } finally {
      await release().catch(() => undefined);
    }
  }

  /** Trades the refresh token for new tokens; the session ends when the provider refuses or the user changed. */
  private async redeem(found: FoundSession, refreshToken: string): Promise<FoundSession | undefined> {
    let tokens: Awaited<ReturnType<typeof client.refreshTokenGrant>>;
    try {
      tokens = await client.refreshTokenGrant(await this.deps.provider.configuration(), refreshToken, this.deps.extraParameters);
    } catch (error) {
      if (!isOutage(error)) {
        const reason = error instanceof client.ResponseBodyError ? `refresh refused: ${error.error}` : `refreshed tokens refused: ${failureReason(error)}`;
        return this.end(found, reason);
      }
      this.deps.logger.warn({ err: (error as Error).message, sub: found.record.subject }, 'token refresh failed; will try again');
      if (this.stillValid(found)) return found;
      throw new IdpUnavailableError(found.record.issuer, `the token refresh failed: ${(error as Error).message}`);
    }
    let identity;
    try {
      const verified = await this.deps.verifier.verify(tokens.access_token);
      // Userinfo's email (read at sign-in) stays when the access token carries none.
      identity = { ...verified, email: verified.email ?? found.record.email, emailVerified: verified.emailVerified ?? found.record.emailVerified };
    } catch (error) {
      // The issuer's keys cannot be loaded: an outage, not a verdict on the tokens.
      if (error instanceof IdpUnavailableError) throw error;
      return this.end(found, `refreshed access token refused: ${(error as Error).message}`);
    }
    const idToken = tokens.claims();
    const { subject, issuer } = found.record;
    if (identity.subject !== subject || identity.issuer !== issuer || (idToken !== undefined && (idToken.sub !== subject || idToken.iss !== issuer))) {
      return this.end(found, 'the refreshed tokens name another user');
    }
    const ttl = Math.max(1, found.record.expiresAt - nowSeconds());
    const secrets = await this.deps.tokenSealer.seal({ refresh_token: tokens.refresh_token ?? refreshToken }, ttl);
    const updated = await this.deps.sessions.update(found.record, identity, secrets);
    this.deps.logger.info({ audit: 'session_refreshed', sub: subject, iss: issuer }, 'session tokens refreshed');
    return updated;
  }

  /** Another instance holds the refresh: go on with a still-valid token, else wait for its result. */
  private async refreshedElsewhere(found: FoundSession): Promise<FoundSession | undefined> {
    if (this.stillValid(found)) return found;
    const deadline = Date.now() + WAIT_FOR_OTHERS_MS;
    while (Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, POLL_MS));
      const latest = await this.deps.sessions.findById(found.id);
      if (latest === undefined || this.stillValid(latest)) return latest;
    }
    throw new IdpUnavailableError(found.record.issuer, 'another instance is still refreshing this session');
  }

  private due(found: FoundSession): boolean {
    return (found.record.accessExpiresAt ?? found.record.expiresAt) - this.deps.login.refresh_before_seconds <= nowSeconds();
  }

  private stillValid(found: FoundSession): boolean {
    return (found.record.accessExpiresAt ?? found.record.expiresAt) > nowSeconds();
  }

  private async end(found: FoundSession, reason: string): Promise<undefined> {
    await this.deps.sessions.end(found.id);
    this.deps.logger.info({ audit: 'session_ended', reason, sub: found.record.subject, iss: found.record.issuer }, 'session ended');
    return undefined;
  }
}
