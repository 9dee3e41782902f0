// The session store contract: server-side records behind a random cookie (embed and login sessions), plus what
// several gateway instances sharing a store must agree on: one-time claims, short locks and session-end events.
import type { JWTPayload } from 'jose';

export interface SessionRecord {
  /** SHA-256 of the cookie value (base64url): a leaked store does not hand out usable cookies. */
  id: string;
  issuer: string;
  subject: string;
  email: string | undefined;
  emailVerified: boolean | undefined;
  roles: string[];
  scopes: string[];
  claims: JWTPayload;
  /** Seconds since the epoch; the record is dead afterwards (for a login session: the absolute timeout). */
  expiresAt: number;
  createdAt: number;
  /** A standalone sign-in's session (refreshed, with an idle timeout); embed sessions leave it out. */
  kind?: 'login';
  /**
   * The one app a worker-mode embed session serves (its handle travels in a header, never as a cookie, and is good
   * for that app alone); cookie sessions leave it out.
   */
  app?: string;
  /** The provider's session id (ID token or access token `sid`), for back-channel logout. */
  sid?: string;
  /** When the access token behind a login session expires; it is refreshed before then. */
  accessExpiresAt?: number;
  /** Last use of a login session, for the idle timeout (written at most about once a minute). */
  lastSeenAt?: number;
  /** A login session's refresh token, sealed with login.encryption_key. */
  secrets?: string;
  /**
   * Set on a renewed embed session's record, kept a few seconds as a pointer to the session that replaced it: the
   * replaced value authenticates as that session meanwhile, and a renewal that still names it continues the chain.
   */
  replacedBy?: string;
}

/** A session that ended, or was replaced by a successor (an embed session renewed with a fresh token). */
export interface SessionEndEvent {
  id: string;
  successor?: { id: string; expiresAt: number };
}

export type ReleaseLock = () => Promise<void>;

export interface SessionStore {
  get(id: string): Promise<SessionRecord | undefined>;
  put(record: SessionRecord): Promise<void>;
  /** Records a login session's last use without rewriting the record. */
  touch(id: string, seenAt: number): Promise<void>;
  delete(id: string): Promise<boolean>;
  /** Ends every session of one user (logout everywhere, operator revocation), or only their embed sessions; returns the ids removed. */
  deleteBySubject(issuer: string, subject: string, only?: 'embed'): Promise<string[]>;
  /** Ends every session made in one provider session (back-channel logout); returns the ids removed. */
  deleteBySid(issuer: string, sid: string): Promise<string[]>;
  /** The live sessions, of one user when `subject` is given (for operators: `embedgate sessions list`). */
  list(subject?: string): Promise<SessionRecord[]>;
  /** True only for the first claim of `key` within `ttlSeconds`, across every instance (replay protection). */
  claimOnce(key: string, ttlSeconds: number): Promise<boolean>;
  /** Keeps a short-lived single-use value under `key` (e.g. a WebSocket ticket), seen by every instance. */
  putTicket(key: string, value: string, ttlSeconds: number): Promise<void>;
  /** The value under `key` if it has not expired, removed in the same step so that only one caller ever gets it. */
  takeTicket(key: string): Promise<string | undefined>;
  /** A lock held for at most `ttlMs` across every instance; undefined while someone else holds it. */
  lock(name: string, ttlMs: number): Promise<ReleaseLock | undefined>;
  /** Tells every instance sharing the store, this one included, that sessions ended or were replaced. */
  announce(events: SessionEndEvent[]): Promise<void>;
  onAnnounce(listener: (event: SessionEndEvent) => void): void;
  /**
   * Told whenever this instance's channel of session-end events is (again) live after a time when events could have
   * been lost (Redis pub/sub delivers nothing to a connection that is down): holders of sessions check them again.
   * Stores whose events cannot be lost (memory, SQLite's event table) leave it out.
   */
  onEventGap?(listener: () => void): void;
  /**
   * A value that changes whenever a session record may have changed, in this process or another one sharing the
   * store; undefined when the store cannot tell. While it stays the same, a record read earlier is still what the
   * store holds (its expiry apart), so the gateway may use it again without reading the store.
   */
  changeMark?(): string | undefined;
  /** Removes expired records. */
  sweep(nowSeconds: number): Promise<number>;
  close(): Promise<void>;
}
