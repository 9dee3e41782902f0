// The identity provider's persistence contract: oidc-provider models, users, signing keys and secrets.
import type { JWK } from 'jose';

/** What oidc-provider stores per model instance (it treats the payload as opaque JSON). */
export interface OidcPayload {
  [key: string]: unknown;
  grantId?: string;
  userCode?: string;
  uid?: string;
  consumed?: number;
}

/** oidc-provider's Adapter interface for one model name (Session, Grant, AccessToken, RefreshToken, …). */
export interface OidcModelAdapter {
  upsert(id: string, payload: OidcPayload, expiresIn: number): Promise<void>;
  find(id: string): Promise<OidcPayload | undefined>;
  findByUserCode(userCode: string): Promise<OidcPayload | undefined>;
  findByUid(uid: string): Promise<OidcPayload | undefined>;
  consume(id: string): Promise<void>;
  destroy(id: string): Promise<void>;
  revokeByGrantId(grantId: string): Promise<void>;
}

export interface UserRecord {
  username: string;
  /** `scrypt$…` (see passwords.ts); never a clear-text password. */
  passwordHash: string;
  email: string | undefined;
  name: string | undefined;
  roles: string[];
}

export interface SigningKeyRecord {
  kid: string;
  /** The private JWK, with kid and alg set. */
  privateJwk: JWK;
  createdAt: number;
  /** When a newer key took over signing (ms since epoch); the key stays published for a while after. */
  retiredAt: number | undefined;
}

export interface IdpStore {
  /** Creates tables if needed. */
  init(): Promise<void>;
  adapter(model: string): OidcModelAdapter;

  getUser(username: string): Promise<UserRecord | undefined>;
  listUsers(): Promise<UserRecord[]>;
  /** Inserts or replaces the whole record. */
  putUser(user: UserRecord): Promise<void>;
  /** Returns false when there is no such user. */
  setUserRoles(username: string, roles: string[]): Promise<boolean>;
  removeUser(username: string): Promise<boolean>;

  /** Newest first. */
  listSigningKeys(): Promise<SigningKeyRecord[]>;
  /** Adds a key and marks every older unretired key retired at `now`, in one transaction. */
  addSigningKey(key: SigningKeyRecord): Promise<void>;
  /** Deletes keys retired before `before` (ms since epoch). */
  pruneSigningKeys(before: number): Promise<number>;

  /** A named random secret (e.g. cookie signing keys), created with `create()` on first use and kept. */
  secret(name: string, create: () => string): Promise<string>;

  /** Deletes expired oidc-provider rows. */
  sweepExpired(): Promise<number>;
  close(): Promise<void>;
}
