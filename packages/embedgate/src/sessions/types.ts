// The session store contract: server-side records behind a random cookie, shared by embed and (later) login sessions.
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
  /** Seconds since the epoch; the record is dead afterwards. */
  expiresAt: number;
  createdAt: number;
  /** A login session's provider tokens (ID and refresh token), sealed with login.encryption_key. */
  secrets?: string;
}

export interface SessionStore {
  get(id: string): Promise<SessionRecord | undefined>;
  put(record: SessionRecord): Promise<void>;
  delete(id: string): Promise<boolean>;
  /** Ends every session of one user (logout everywhere, operator revocation); returns the ids removed. */
  deleteBySubject(issuer: string, subject: string): Promise<string[]>;
  /** The live sessions, of one user when `subject` is given (for operators: `embedgate sessions list`). */
  list(subject?: string): Promise<SessionRecord[]>;
  /** Removes expired records. */
  sweep(nowSeconds: number): Promise<number>;
  close(): Promise<void>;
}
