// The identity provider's store in one SQLite file (WAL mode, owner-only permissions): the default for one instance.
import { closeSync, mkdirSync, openSync } from 'node:fs';
import { dirname } from 'node:path';
import Database from 'better-sqlite3';
import type { IdpStore, OidcModelAdapter, OidcPayload, SigningKeyRecord, UserRecord } from './types.js';
import { expiresAtFor, indexValue } from './columns.js';

const SCHEMA = `
CREATE TABLE IF NOT EXISTS oidc_models (
  model       TEXT NOT NULL,
  id          TEXT NOT NULL,
  payload     TEXT NOT NULL,
  grant_id    TEXT,
  user_code   TEXT,
  uid         TEXT,
  expires_at  INTEGER,
  consumed_at INTEGER,
  PRIMARY KEY (model, id)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS oidc_models_grant_id ON oidc_models (grant_id) WHERE grant_id IS NOT NULL;
CREATE INDEX IF NOT EXISTS oidc_models_user_code ON oidc_models (model, user_code) WHERE user_code IS NOT NULL;
CREATE INDEX IF NOT EXISTS oidc_models_uid ON oidc_models (model, uid) WHERE uid IS NOT NULL;
CREATE INDEX IF NOT EXISTS oidc_models_expires_at ON oidc_models (expires_at) WHERE expires_at IS NOT NULL;
CREATE TABLE IF NOT EXISTS users (
  username      TEXT PRIMARY KEY,
  password_hash TEXT NOT NULL,
  email         TEXT,
  name          TEXT,
  roles         TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS signing_keys (
  kid         TEXT PRIMARY KEY,
  private_jwk TEXT NOT NULL,
  created_at  INTEGER NOT NULL,
  retired_at  INTEGER
);
CREATE TABLE IF NOT EXISTS secrets (
  name  TEXT PRIMARY KEY,
  value TEXT NOT NULL
);
`;

interface ModelRow {
  payload: string;
  consumed_at: number | null;
}

interface UserRow {
  username: string;
  password_hash: string;
  email: string | null;
  name: string | null;
  roles: string;
}

interface SigningKeyRow {
  kid: string;
  private_jwk: string;
  created_at: number;
  retired_at: number | null;
}

function payloadFrom(row: ModelRow | undefined): OidcPayload | undefined {
  if (!row) return undefined;
  const payload = JSON.parse(row.payload) as OidcPayload;
  if (row.consumed_at !== null) payload.consumed = Math.floor(row.consumed_at / 1000);
  return payload;
}

function userFrom(row: UserRow | undefined): UserRecord | undefined {
  if (!row) return undefined;
  return {
    username: row.username,
    passwordHash: row.password_hash,
    email: row.email ?? undefined,
    name: row.name ?? undefined,
    roles: JSON.parse(row.roles) as string[],
  };
}

function signingKeyFrom(row: SigningKeyRow): SigningKeyRecord {
  return {
    kid: row.kid,
    privateJwk: JSON.parse(row.private_jwk) as SigningKeyRecord['privateJwk'],
    createdAt: row.created_at,
    retiredAt: row.retired_at ?? undefined,
  };
}

/** Creates a new database file readable by its owner only; an existing file keeps its mode. */
function prepareFile(path: string): void {
  if (path === ':memory:' || path === '') return;
  mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
  try {
    closeSync(openSync(path, 'wx', 0o600));
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
  }
}

function prepareStatements(db: Database.Database) {
  return {
    upsert: db.prepare<[string, string, string, string | null, string | null, string | null, number | null]>(`
      INSERT INTO oidc_models (model, id, payload, grant_id, user_code, uid, expires_at)
      VALUES (?, ?, ?, ?, ?, ?, ?)
      ON CONFLICT (model, id) DO UPDATE SET
        payload = excluded.payload, grant_id = excluded.grant_id, user_code = excluded.user_code,
        uid = excluded.uid, expires_at = excluded.expires_at`),
    find: db.prepare<[string, string, number], ModelRow>(`
      SELECT payload, consumed_at FROM oidc_models
      WHERE model = ? AND id = ? AND (expires_at IS NULL OR expires_at > ?)`),
    findByUserCode: db.prepare<[string, string, number], ModelRow>(`
      SELECT payload, consumed_at FROM oidc_models
      WHERE model = ? AND user_code = ? AND (expires_at IS NULL OR expires_at > ?) LIMIT 1`),
    findByUid: db.prepare<[string, string, number], ModelRow>(`
      SELECT payload, consumed_at FROM oidc_models
      WHERE model = ? AND uid = ? AND (expires_at IS NULL OR expires_at > ?) LIMIT 1`),
    consume: db.prepare<[number, string, string]>(`
      UPDATE oidc_models SET consumed_at = coalesce(consumed_at, ?) WHERE model = ? AND id = ?`),
    destroy: db.prepare<[string, string]>('DELETE FROM oidc_models WHERE model = ? AND id = ?'),
    revokeByGrantId: db.prepare<[string]>('DELETE FROM oidc_models WHERE grant_id = ?'),
    sweepExpired: db.prepare<[number]>('DELETE FROM oidc_models WHERE expires_at IS NOT NULL AND expires_at <= ?'),

    getUser: db.prepare<[string], UserRow>('SELECT * FROM users WHERE username = ?'),
    listUsers: db.prepare<[], UserRow>('SELECT * FROM users ORDER BY username'),
    putUser: db.prepare<[string, string, string | null, string | null, string]>(`
      INSERT INTO users (username, password_hash, email, name, roles) VALUES (?, ?, ?, ?, ?)
      ON CONFLICT (username) DO UPDATE SET
        password_hash = excluded.password_hash, email = excluded.email, name = excluded.name, roles = excluded.roles`),
    setUserRoles: db.prepare<[string, string]>('UPDATE users SET roles = ? WHERE username = ?'),
    removeUser: db.prepare<[string]>('DELETE FROM users WHERE username = ?'),

    listSigningKeys: db.prepare<[], SigningKeyRow>(
      'SELECT kid, private_jwk, created_at, retired_at FROM signing_keys ORDER BY created_at DESC, rowid DESC',
    ),
    retireSigningKeys: db.prepare<[number]>('UPDATE signing_keys SET retired_at = ? WHERE retired_at IS NULL'),
    insertSigningKey: db.prepare<[string, string, number, number | null]>(
      'INSERT INTO signing_keys (kid, private_jwk, created_at, retired_at) VALUES (?, ?, ?, ?)',
    ),
    pruneSigningKeys: db.prepare<[number]>(
      'DELETE FROM signing_keys WHERE retired_at IS NOT NULL AND retired_at < ?',
    ),

    getSecret: db.prepare<[string], { value: string }>('SELECT value FROM secrets WHERE name = ?'),
    insertSecret: db.prepare<[string, string]>(
      'INSERT INTO secrets (name, value) VALUES (?, ?) ON CONFLICT (name) DO NOTHING',
    ),
  };
}

type Statements = ReturnType<typeof prepareStatements>;

export class SqliteIdpStore implements IdpStore {
  readonly #db: Database.Database;
  readonly #adapters = new Map<string, OidcModelAdapter>();
  readonly #statements: Statements;
  readonly #addSigningKey: (key: SigningKeyRecord, now: number) => void;
  readonly #secret: (name: string, create: () => string) => string;

  /** Opens (creating if needed) the database at `path`; ':memory:' gives a private in-memory database. */
  constructor(path: string) {
    prepareFile(path);
    this.#db = new Database(path);
    try {
      this.#db.pragma('journal_mode = WAL');
      this.#db.exec(SCHEMA);
    } catch (error) {
      this.#db.close();
      throw error;
    }
    const s = (this.#statements = prepareStatements(this.#db));
    const db = this.#db;
    this.#addSigningKey = db.transaction((key: SigningKeyRecord, now: number) => {
      s.retireSigningKeys.run(now);
      s.insertSigningKey.run(key.kid, JSON.stringify(key.privateJwk), key.createdAt, key.retiredAt ?? null);
    });
    // IMMEDIATE: take the write lock before reading, so two processes cannot both create the secret.
    this.#secret = db.transaction((name: string, create: () => string) => {
      const existing = s.getSecret.get(name);
      if (existing) return existing.value;
      s.insertSecret.run(name, create());
      return s.getSecret.get(name)!.value;
    }).immediate;
  }

  /** The schema is created by the constructor; nothing left to do. */
  async init(): Promise<void> {}

  adapter(model: string): OidcModelAdapter {
    let adapter = this.#adapters.get(model);
    if (!adapter) {
      adapter = this.#createAdapter(model);
      this.#adapters.set(model, adapter);
    }
    return adapter;
  }

  #createAdapter(model: string): OidcModelAdapter {
    const s = this.#statements;
    return {
      async upsert(id, payload, expiresIn) {
        const now = Date.now();
        s.upsert.run(
          model,
          id,
          JSON.stringify(payload),
          indexValue(payload.grantId),
          indexValue(payload.userCode),
          indexValue(payload.uid),
          expiresAtFor(expiresIn, now),
        );
      },
      async find(id) {
        return payloadFrom(s.find.get(model, id, Date.now()));
      },
      async findByUserCode(userCode) {
        return payloadFrom(s.findByUserCode.get(model, userCode, Date.now()));
      },
      async findByUid(uid) {
        return payloadFrom(s.findByUid.get(model, uid, Date.now()));
      },
      async consume(id) {
        s.consume.run(Date.now(), model, id);
      },
      async destroy(id) {
        s.destroy.run(model, id);
      },
      async revokeByGrantId(grantId) {
        s.revokeByGrantId.run(grantId);
      },
    };
  }

  async getUser(username: string): Promise<UserRecord | undefined> {
    return userFrom(this.#statements.getUser.get(username));
  }

  async listUsers(): Promise<UserRecord[]> {
    return this.#statements.listUsers.all().map((row) => userFrom(row)!);
  }

  async putUser(user: UserRecord): Promise<void> {
    this.#statements.putUser.run(
      user.username,
      user.passwordHash,
      user.email ?? null,
      user.name ?? null,
      JSON.stringify(user.roles),
    );
  }

  async setUserRoles(username: string, roles: string[]): Promise<boolean> {
    return this.#statements.setUserRoles.run(JSON.stringify(roles), username).changes > 0;
  }

  async removeUser(username: string): Promise<boolean> {
    return this.#statements.removeUser.run(username).changes > 0;
  }

  async listSigningKeys(): Promise<SigningKeyRecord[]> {
    return this.#statements.listSigningKeys.all().map(signingKeyFrom);
  }

  async addSigningKey(key: SigningKeyRecord): Promise<void> {
    this.#addSigningKey(key, Date.now());
  }

  async pruneSigningKeys(before: number): Promise<number> {
    return this.#statements.pruneSigningKeys.run(before).changes;
  }

  async secret(name: string, create: () => string): Promise<string> {
    const existing = this.#statements.getSecret.get(name);
    return existing ? existing.value : this.#secret(name, create);
  }

  async sweepExpired(): Promise<number> {
    return this.#statements.sweepExpired.run(Date.now()).changes;
  }

  async close(): Promise<void> {
    if (this.#db.open) this.#db.close();
  }
}
