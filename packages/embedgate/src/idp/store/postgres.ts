// The identity provider's store in PostgreSQL, for several IdP instances sharing one database.
import pg from 'pg';
import type { IdpStore, OidcModelAdapter, OidcPayload, SigningKeyRecord, UserRecord } from './types.js';
import { expiresAtFor, indexValue } from './columns.js';

/** pg_advisory_xact_lock key that serializes schema creation across processes (ASCII "embgid"). */
const SCHEMA_LOCK = 0x656d62676964;

const SCHEMA = `
CREATE TABLE IF NOT EXISTS oidc_models (
  model       text NOT NULL,
  id          text NOT NULL,
  payload     jsonb NOT NULL,
  grant_id    text,
  user_code   text,
  uid         text,
  expires_at  bigint,
  consumed_at bigint,
  PRIMARY KEY (model, id)
);
CREATE INDEX IF NOT EXISTS oidc_models_grant_id ON oidc_models (grant_id) WHERE grant_id IS NOT NULL;
CREATE INDEX IF NOT EXISTS oidc_models_user_code ON oidc_models (model, user_code) WHERE user_code IS NOT NULL;
CREATE INDEX IF NOT EXISTS oidc_models_uid ON oidc_models (model, uid) WHERE uid IS NOT NULL;
CREATE INDEX IF NOT EXISTS oidc_models_expires_at ON oidc_models (expires_at) WHERE expires_at IS NOT NULL;
CREATE TABLE IF NOT EXISTS users (
  username      text PRIMARY KEY,
  password_hash text NOT NULL,
  email         text,
  name          text,
  roles         jsonb NOT NULL
);
CREATE TABLE IF NOT EXISTS signing_keys (
  seq         bigint GENERATED ALWAYS AS IDENTITY,
  kid         text PRIMARY KEY,
  private_jwk jsonb NOT NULL,
  created_at  bigint NOT NULL,
  retired_at  bigint
);
CREATE TABLE IF NOT EXISTS secrets (
  name  text PRIMARY KEY,
  value text NOT NULL
);
`;

interface ModelRow {
  payload: OidcPayload;
  /** bigint columns arrive as strings. */
  consumed_at: string | null;
}

interface UserRow {
  username: string;
  password_hash: string;
  email: string | null;
  name: string | null;
  roles: string[];
}

interface SigningKeyRow {
  kid: string;
  private_jwk: SigningKeyRecord['privateJwk'];
  created_at: string;
  retired_at: string | null;
}

function payloadFrom(row: ModelRow | undefined): OidcPayload | undefined {
  if (!row) return undefined;
  const payload = row.payload;
  if (row.consumed_at !== null) payload.consumed = Math.floor(Number(row.consumed_at) / 1000);
  return payload;
}

function userFrom(row: UserRow): UserRecord {
  return {
    username: row.username,
    passwordHash: row.password_hash,
    email: row.email ?? undefined,
    name: row.name ?? undefined,
    roles: row.roles,
  };
}

function signingKeyFrom(row: SigningKeyRow): SigningKeyRecord {
  return {
    kid: row.kid,
    privateJwk: row.private_jwk,
    createdAt: Number(row.created_at),
    retiredAt: row.retired_at === null ? undefined : Number(row.retired_at),
  };
}

const MODEL_COLUMNS = 'payload, consumed_at';
const LIVE = '(expires_at IS NULL OR expires_at > $3)';

export class PostgresIdpStore implements IdpStore {
  readonly #pool: pg.Pool;
  readonly #adapters = new Map<string, OidcModelAdapter>();
  #closed = false;

  /** Connects lazily: nothing happens until init() or the first query. */
  constructor(url: string) {
    this.#pool = new pg.Pool({ connectionString: url, max: 10 });
    // An idle connection that breaks (server restart, network) is dropped by the pool and the next query opens a
    // new one; without a listener the 'error' event would crash the process.
    this.#pool.on('error', () => {});
  }

  async init(): Promise<void> {
    await this.#transaction(async (client) => {
      // Concurrent CREATE TABLE IF NOT EXISTS can still collide in the catalog; the lock makes a second caller wait.
      await client.query('SELECT pg_advisory_xact_lock($1::bigint)', [SCHEMA_LOCK]);
      await client.query(SCHEMA);
    });
  }

  async #transaction<T>(work: (client: pg.PoolClient) => Promise<T>): Promise<T> {
    const client = await this.#pool.connect();
    let broken: unknown;
    try {
      await client.query('BEGIN');
      const result = await work(client);
      await client.query('COMMIT');
      return result;
    } catch (error) {
      try {
        await client.query('ROLLBACK');
      } catch (rollbackError) {
        broken = rollbackError;
      }
      throw error;
    } finally {
      // A connection whose rollback failed is in an unknown state: destroy it instead of reusing it.
      client.release(broken instanceof Error ? broken : undefined);
    }
  }

  async #rows<R extends pg.QueryResultRow>(text: string, values: unknown[]): Promise<R[]> {
    return (await this.#pool.query<R>(text, values)).rows;
  }

  async #count(text: string, values: unknown[]): Promise<number> {
    return (await this.#pool.query(text, values)).rowCount ?? 0;
  }

  adapter(model: string): OidcModelAdapter {
    let adapter = this.#adapters.get(model);
    if (!adapter) {
      adapter = this.#createAdapter(model);
      this.#adapters.set(model, adapter);
    }
    return adapter;
  }

  #createAdapter(model: string): OidcModelAdapter {
    const findOne = async (column: 'id' | 'user_code' | 'uid', value: string) => {
      const [row] = await this.#rows<ModelRow>(
        `SELECT ${MODEL_COLUMNS} FROM oidc_models WHERE model = $1 AND ${column} = $2 AND ${LIVE} LIMIT 1`,
        [model, value, Date.now()],
      );
      return payloadFrom(row);
    };
    return {
      upsert: async (id, payload, expiresIn) => {
        await this.#pool.query(
          `INSERT INTO oidc_models (model, id, payload, grant_id, user_code, uid, expires_at)
           VALUES ($1, $2, $3::jsonb, $4, $5, $6, $7)
           ON CONFLICT (model, id) DO UPDATE SET
             payload = excluded.payload, grant_id = excluded.grant_id, user_code = excluded.user_code,
             uid = excluded.uid, expires_at = excluded.expires_at`,
          [
            model,
            id,
            JSON.stringify(payload),
            indexValue(payload.grantId),
            indexValue(payload.userCode),
            indexValue(payload.uid),
            expiresAtFor(expiresIn, Date.now()),
          ],
        );
      },
      find: (id) => findOne('id', id),
      findByUserCode: (userCode) => findOne('user_code', userCode),
      findByUid: (uid) => findOne('uid', uid),
      consume: async (id) => {
        await this.#pool.query(
          'UPDATE oidc_models SET consumed_at = coalesce(consumed_at, $1) WHERE model = $2 AND id = $3',
          [Date.now(), model, id],
        );
      },
      destroy: async (id) => {
        await this.#pool.query('DELETE FROM oidc_models WHERE model = $1 AND id = $2', [model, id]);
      },
      revokeByGrantId: async (grantId) => {
        await this.#pool.query('DELETE FROM oidc_models WHERE grant_id = $1', [grantId]);
      },
    };
  }

  async getUser(username: string): Promise<UserRecord | undefined> {
    const [row] = await this.#rows<UserRow>('SELECT * FROM users WHERE username = $1', [username]);
    return row && userFrom(row);
  }

  async listUsers(): Promise<UserRecord[]> {
    return (await this.#rows<UserRow>('SELECT * FROM users ORDER BY username COLLATE "C"', [])).map(userFrom);
  }

  async putUser(user: UserRecord): Promise<void> {
    await this.#pool.query(
      `INSERT INTO users (username, password_hash, email, name, roles) VALUES ($1, $2, $3, $4, $5::jsonb)
       ON CONFLICT (username) DO UPDATE SET
         password_hash = excluded.password_hash, email = excluded.email, name = excluded.name, roles = excluded.roles`,
      [user.username, user.passwordHash, user.email ?? null, user.name ?? null, JSON.stringify(user.roles)],
    );
  }

  async setUserRoles(username: string, roles: string[]): Promise<boolean> {
    return (
      (await this.#count('UPDATE users SET roles = $1::jsonb WHERE username = $2', [JSON.stringify(roles), username])) >
      0
    );
  }

  async removeUser(username: string): Promise<boolean> {
    return (await this.#count('DELETE FROM users WHERE username = $1', [username])) > 0;
  }

  async listSigningKeys(): Promise<SigningKeyRecord[]> {
    const rows = await this.#rows<SigningKeyRow>(
      'SELECT kid, private_jwk, created_at, retired_at FROM signing_keys ORDER BY created_at DESC, seq DESC',
      [],
    );
    return rows.map(signingKeyFrom);
  }

  async addSigningKey(key: SigningKeyRecord): Promise<void> {
    const now = Date.now();
    await this.#transaction(async (client) => {
      await client.query('UPDATE signing_keys SET retired_at = $1 WHERE retired_at IS NULL', [now]);
      await client.query(
        'INSERT INTO signing_keys (kid, private_jwk, created_at, retired_at) VALUES ($1, $2::jsonb, $3, $4)',
        [key.kid, JSON.stringify(key.privateJwk), key.createdAt, key.retiredAt ?? null],
      );
    });
  }

  async pruneSigningKeys(before: number): Promise<number> {
    return this.#count('DELETE FROM signing_keys WHERE retired_at IS NOT NULL AND retired_at < $1', [before]);
  }

  async secret(name: string, create: () => string): Promise<string> {
    const select = 'SELECT value FROM secrets WHERE name = $1';
    const [existing] = await this.#rows<{ value: string }>(select, [name]);
    if (existing) return existing.value;
    // Two processes may both get here: the first insert wins and both return the stored value.
    await this.#pool.query('INSERT INTO secrets (name, value) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING', [
      name,
      create(),
    ]);
    const [stored] = await this.#rows<{ value: string }>(select, [name]);
    if (!stored) throw new Error(`secret ${JSON.stringify(name)} vanished right after it was stored`);
    return stored.value;
  }

  async sweepExpired(): Promise<number> {
    return this.#count('DELETE FROM oidc_models WHERE expires_at IS NOT NULL AND expires_at <= $1', [Date.now()]);
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await this.#pool.end();
  }
}
