// The IdP store contract, run against SQLite (a temp file) and a real throwaway PostgreSQL: oidc-provider adapter
// semantics, users, signing keys, secrets, expiry sweeping and persistence across reopen; plus store URL parsing.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it, type TestContext } from 'node:test';
import { setTimeout as delay } from 'node:timers/promises';
import Database from 'better-sqlite3';
import pg from 'pg';
import { openIdpStore } from '../src/idp/store/open.js';
import { SqliteIdpStore } from '../src/idp/store/sqlite.js';
import type { IdpStore, OidcPayload, SigningKeyRecord, UserRecord } from '../src/idp/store/types.js';
import { startPostgres, type RunningPostgres } from './support/postgres.js';

/** How each backend provides empty locations and opens a store on one. */
interface Backend {
  setup(): Promise<void>;
  teardown(): Promise<void>;
  /** A new, empty place to keep a store: a `sqlite:` file or a PostgreSQL database URL. */
  fresh(): Promise<string>;
}

function signingKey(kid: string, createdAt: number): SigningKeyRecord {
  return {
    kid,
    privateJwk: { kty: 'OKP', crv: 'Ed25519', x: randomBytes(32).toString('base64url'), d: 'd', kid, alg: 'EdDSA' },
    createdAt,
    retiredAt: undefined,
  };
}

function user(username: string, extra: Partial<UserRecord> = {}): UserRecord {
  const passwordHash = `scrypt$32768$8$1$salt$${username}`;
  return { username, passwordHash, email: undefined, name: undefined, roles: [], ...extra };
}

function storeContract(name: string, backend: Backend): void {
  describe(`${name} IdP store`, () => {
    before(() => backend.setup());
    after(() => backend.teardown());

    /** Opens a store on `location` (a fresh one by default) that is closed when the test ends. */
    async function open(t: TestContext, location?: string): Promise<IdpStore> {
      const store = await openIdpStore(location ?? (await backend.fresh()));
      t.after(() => store.close());
      return store;
    }

    it('upsert then find returns the payload, per model, and undefined for unknown ids', async (t) => {
      const store = await open(t);
      const payload: OidcPayload = {
        jti: 'tok-1',
        kind: 'AccessToken',
        accountId: 'alice',
        scope: 'openid email',
        claims: { nested: { list: [1, 'two', null, true] } },
        note: 'unicode ✓ "quotes" \\ backslash',
      };
      await store.adapter('AccessToken').upsert('tok-1', payload, 3600);
      assert.deepEqual(await store.adapter('AccessToken').find('tok-1'), payload);
      assert.equal(await store.adapter('AccessToken').find('tok-2'), undefined);
      assert.equal(await store.adapter('RefreshToken').find('tok-1'), undefined, 'ids are scoped to their model');
    });

    it('upsert replaces the payload and its uid / userCode / grantId indexes', async (t) => {
      const store = await open(t);
      const sessions = store.adapter('Session');
      await sessions.upsert('s1', { uid: 'uid-old', accountId: 'alice' }, 600);
      await sessions.upsert('s1', { uid: 'uid-new', accountId: 'bob' }, 600);
      assert.deepEqual(await sessions.find('s1'), { uid: 'uid-new', accountId: 'bob' });
      assert.equal(await sessions.findByUid('uid-old'), undefined);
      assert.deepEqual(await sessions.findByUid('uid-new'), { uid: 'uid-new', accountId: 'bob' });

      const codes = store.adapter('DeviceCode');
      await codes.upsert('d1', { userCode: 'OLD-CODE', grantId: 'g-old' }, 600);
      await codes.upsert('d1', { userCode: 'NEW-CODE', grantId: 'g-new' }, 600);
      assert.equal(await codes.findByUserCode('OLD-CODE'), undefined);
      assert.deepEqual(await codes.findByUserCode('NEW-CODE'), { userCode: 'NEW-CODE', grantId: 'g-new' });
      await codes.revokeByGrantId('g-old');
      assert.ok(await codes.find('d1'), 'the old grant id no longer refers to the row');
      await codes.revokeByGrantId('g-new');
      assert.equal(await codes.find('d1'), undefined);
    });

    it('an undefined expiresIn never expires; an expiresIn of zero or less is already expired', async (t) => {
      const store = await open(t);
      const sessions = store.adapter('Session');
      await sessions.upsert('forever', { uid: 'u-forever' }, undefined as unknown as number);
      await sessions.upsert('zero', { uid: 'u-zero' }, 0);
      await sessions.upsert('past', { uid: 'u-past' }, -60);
      assert.deepEqual(await sessions.find('forever'), { uid: 'u-forever' });
      assert.deepEqual(await sessions.findByUid('u-forever'), { uid: 'u-forever' });
      for (const id of ['zero', 'past']) {
        assert.equal(await sessions.find(id), undefined, id);
        assert.equal(await sessions.findByUid(`u-${id}`), undefined, id);
      }
      const codes = store.adapter('DeviceCode');
      await codes.upsert('expired', { userCode: 'EXPI-RED0' }, -1);
      assert.equal(await codes.findByUserCode('EXPI-RED0'), undefined);
    });

    it('a row stops being found once expiresIn seconds have passed', async (t) => {
      const store = await open(t);
      const codes = store.adapter('DeviceCode');
      await codes.upsert('d1', { userCode: 'WDJB-MJHT', uid: 'x' }, 1);
      assert.ok(await codes.find('d1'));
      assert.ok(await codes.findByUserCode('WDJB-MJHT'));
      await delay(1100);
      assert.equal(await codes.find('d1'), undefined);
      assert.equal(await codes.findByUserCode('WDJB-MJHT'), undefined);
      assert.equal(await codes.findByUid('x'), undefined);
    });

    it('consume marks the row consumed (epoch seconds), and a later upsert does not un-consume it', async (t) => {
      const store = await open(t);
      const codes = store.adapter('AuthorizationCode');
      await codes.upsert('c1', { grantId: 'g1', accountId: 'alice' }, 60);
      assert.equal((await codes.find('c1'))?.consumed, undefined);
      const before = Math.floor(Date.now() / 1000);
      await codes.consume('c1');
      const after = Math.ceil(Date.now() / 1000);
      const consumed = (await codes.find('c1'))?.consumed;
      assert.equal(typeof consumed, 'number');
      assert.ok(consumed! >= before && consumed! <= after, `consumed=${consumed} within [${before}, ${after}]`);
      assert.deepEqual(await codes.find('c1'), { grantId: 'g1', accountId: 'alice', consumed });

      await codes.upsert('c1', { grantId: 'g1', accountId: 'alice' }, 60);
      assert.equal((await codes.find('c1'))?.consumed, consumed);
      await codes.consume('c1');
      assert.equal((await codes.find('c1'))?.consumed, consumed, 'the first consumption time is kept');
      await codes.consume('no-such-code');
      assert.equal(await codes.find('no-such-code'), undefined);
      assert.equal((await store.adapter('RefreshToken').find('c1'))?.consumed, undefined);
    });

    it('findByUid and findByUserCode look within their own model only', async (t) => {
      const store = await open(t);
      await store.adapter('Session').upsert('s1', { uid: 'shared', accountId: 'alice' }, 600);
      await store.adapter('DeviceCode').upsert('d1', { userCode: 'ABCD-EFGH', uid: 'other' }, 600);
      assert.deepEqual(await store.adapter('Session').findByUid('shared'), { uid: 'shared', accountId: 'alice' });
      assert.equal(await store.adapter('Interaction').findByUid('shared'), undefined);
      assert.equal(await store.adapter('Session').findByUid('missing'), undefined);
      assert.deepEqual(await store.adapter('DeviceCode').findByUserCode('ABCD-EFGH'), {
        userCode: 'ABCD-EFGH',
        uid: 'other',
      });
      assert.equal(await store.adapter('DeviceCode').findByUserCode('abcd-efgh'), undefined, 'exact match');
      assert.equal(await store.adapter('AccessToken').findByUserCode('ABCD-EFGH'), undefined);
    });

    it('destroy deletes one row of one model', async (t) => {
      const store = await open(t);
      await store.adapter('AccessToken').upsert('same-id', { a: 1 }, 60);
      await store.adapter('RefreshToken').upsert('same-id', { r: 1 }, 60);
      await store.adapter('AccessToken').upsert('other', { a: 2 }, 60);
      await store.adapter('AccessToken').destroy('same-id');
      await store.adapter('AccessToken').destroy('never-existed');
      assert.equal(await store.adapter('AccessToken').find('same-id'), undefined);
      assert.deepEqual(await store.adapter('RefreshToken').find('same-id'), { r: 1 });
      assert.deepEqual(await store.adapter('AccessToken').find('other'), { a: 2 });
    });

    it('revokeByGrantId deletes every row of that grant, across all models', async (t) => {
      const store = await open(t);
      const models = ['AccessToken', 'RefreshToken', 'AuthorizationCode', 'DeviceCode'];
      models.push('BackchannelAuthenticationRequest', 'PreAuthorizedCode');
      for (const model of models) {
        await store.adapter(model).upsert(`${model}-1`, { grantId: 'g1' }, 600);
        await store.adapter(model).upsert(`${model}-2`, { grantId: 'g2' }, 600);
      }
      await store.adapter('Session').upsert('s1', { uid: 'u1', authorizations: { portal: { grantId: 'g1' } } }, 600);
      await store.adapter('Grant').upsert('g1', { accountId: 'alice', clientId: 'portal' }, 600);

      await store.adapter('AccessToken').revokeByGrantId('g1');
      for (const model of models) {
        assert.equal(await store.adapter(model).find(`${model}-1`), undefined, model);
        assert.deepEqual(await store.adapter(model).find(`${model}-2`), { grantId: 'g2' }, model);
      }
      assert.ok(await store.adapter('Session').find('s1'), 'a nested grantId is not the row grant id');
      assert.ok(await store.adapter('Grant').find('g1'), 'the Grant itself is destroyed by id, not by grant id');
      await store.adapter('AccessToken').revokeByGrantId('no-such-grant');
    });

    it('sweepExpired deletes expired rows only and reports how many', async (t) => {
      const store = await open(t);
      await store.adapter('AccessToken').upsert('expired-1', { grantId: 'g' }, -1);
      await store.adapter('Session').upsert('expired-2', { uid: 'u' }, 0);
      await store.adapter('AccessToken').upsert('live', { grantId: 'g' }, 600);
      await store.adapter('Grant').upsert('forever', {}, undefined as unknown as number);
      assert.equal(await store.sweepExpired(), 2);
      assert.equal(await store.sweepExpired(), 0);
      assert.ok(await store.adapter('AccessToken').find('live'));
      assert.ok(await store.adapter('Grant').find('forever'));
    });

    it('users: put, get, replace, list, set roles, remove', async (t) => {
      const store = await open(t);
      assert.equal(await store.getUser('alice'), undefined);
      assert.deepEqual(await store.listUsers(), []);

      const alice = user('alice', { email: 'alice@example.com', name: 'Alice Ä', roles: ['admin', 'analyst'] });
      await store.putUser(alice);
      await store.putUser(user('bob'));
      await store.putUser(user('Carol', { roles: ['viewer'] }));
      assert.deepEqual(await store.getUser('alice'), alice);
      assert.deepEqual(await store.getUser('bob'), user('bob'), 'undefined email and name come back undefined');
      assert.equal(await store.getUser('ALICE'), undefined, 'usernames are case-sensitive');
      assert.deepEqual((await store.listUsers()).map((u) => u.username), ['Carol', 'alice', 'bob']);

      const replaced = user('alice', { passwordHash: 'scrypt$new', roles: ['viewer'] });
      await store.putUser(replaced);
      assert.deepEqual(await store.getUser('alice'), replaced, 'putUser replaces the whole record');

      assert.equal(await store.setUserRoles('bob', ['analyst', 'admin']), true);
      assert.deepEqual((await store.getUser('bob'))?.roles, ['analyst', 'admin']);
      assert.equal(await store.setUserRoles('nobody', ['admin']), false);
      assert.equal(await store.getUser('nobody'), undefined, 'setUserRoles does not create users');

      assert.equal(await store.removeUser('bob'), true);
      assert.equal(await store.removeUser('bob'), false);
      assert.equal(await store.getUser('bob'), undefined);
      assert.deepEqual((await store.listUsers()).map((u) => u.username), ['Carol', 'alice']);
    });

    it('signing keys: adding retires the older keys, newest first, prune removes long-retired keys', async (t) => {
      const store = await open(t);
      assert.deepEqual(await store.listSigningKeys(), []);
      const t0 = Date.now() - 10_000;
      const k1 = signingKey('k1', t0);
      const k2 = signingKey('k2', t0 + 1000);
      const k3 = signingKey('k3', t0 + 2000);

      await store.addSigningKey(k1);
      assert.deepEqual(await store.listSigningKeys(), [k1]);

      const beforeK2 = Date.now();
      await store.addSigningKey(k2);
      const afterK2 = Date.now();
      const [listed2, listed1] = await store.listSigningKeys();
      assert.deepEqual(listed2, k2);
      assert.deepEqual({ ...listed1, retiredAt: undefined }, k1);
      assert.ok(listed1!.retiredAt! >= beforeK2 && listed1!.retiredAt! <= afterK2, 'k1 retired when k2 was added');

      await store.addSigningKey(k3);
      const keys = await store.listSigningKeys();
      assert.deepEqual(keys.map((k) => k.kid), ['k3', 'k2', 'k1']);
      assert.equal(keys[0]!.retiredAt, undefined);
      assert.equal(typeof keys[1]!.retiredAt, 'number');
      assert.equal(keys[2]!.retiredAt, listed1!.retiredAt, 'an already retired key keeps its retirement time');

      assert.ok(keys[1]!.retiredAt! >= keys[2]!.retiredAt!);

      assert.equal(await store.pruneSigningKeys(keys[2]!.retiredAt!), 0, 'only keys retired strictly before');
      assert.equal(await store.pruneSigningKeys(keys[1]!.retiredAt! + 1), 2);
      assert.deepEqual(await store.listSigningKeys(), [k3]);
      assert.equal(await store.pruneSigningKeys(Date.now() + 60_000), 0, 'the active key is never pruned');
      assert.deepEqual(await store.listSigningKeys(), [k3]);
    });

    it('addSigningKey is one transaction: a duplicate kid fails and retires nothing', async (t) => {
      const store = await open(t);
      const k1 = signingKey('k1', Date.now());
      await store.addSigningKey(k1);
      await assert.rejects(store.addSigningKey(signingKey('k1', Date.now() + 1)));
      assert.deepEqual(await store.listSigningKeys(), [k1]);
    });

    it('secret() creates a value once and returns it ever after', async (t) => {
      const store = await open(t);
      let calls = 0;
      const create = () => {
        calls += 1;
        return randomBytes(32).toString('base64url');
      };
      const first = await store.secret('cookie-keys', create);
      assert.equal(calls, 1);
      assert.equal(await store.secret('cookie-keys', () => assert.fail('create must not be called again')), first);
      const other = await store.secret('another', create);
      assert.notEqual(other, first);
      assert.equal(calls, 2);
    });

    it('init() is idempotent and two stores can open the same empty location at once', async (t) => {
      const location = await backend.fresh();
      const [a, b] = await Promise.all([open(t, location), open(t, location)]);
      await a.init();
      await b.init();
      const [sa, sb] = await Promise.all([a.secret('shared', () => 'from-a'), b.secret('shared', () => 'from-b')]);
      assert.equal(sa, sb, 'both stores agree on the secret');
      await a.putUser(user('alice'));
      assert.deepEqual(await b.getUser('alice'), user('alice'));
    });

    it('everything survives closing and reopening the store', async (t) => {
      const location = await backend.fresh();
      const store = await openIdpStore(location);
      await store.adapter('Session').upsert('s1', { uid: 'u1', accountId: 'alice' }, 600);
      await store.adapter('AuthorizationCode').upsert('c1', { grantId: 'g1' }, 600);
      await store.adapter('AuthorizationCode').consume('c1');
      const consumed = (await store.adapter('AuthorizationCode').find('c1'))?.consumed;
      await store.adapter('DeviceCode').upsert('d1', { userCode: 'WXYZ-1234' }, 600);
      const alice = user('alice', { email: 'a@example.com', roles: ['admin'] });
      await store.putUser(alice);
      const k1 = signingKey('k1', Date.now() - 1000);
      const k2 = signingKey('k2', Date.now());
      await store.addSigningKey(k1);
      await store.addSigningKey(k2);
      const keys = await store.listSigningKeys();
      const secret = await store.secret('cookies', () => 'kept');
      await store.close();
      await store.close(); // closing twice is harmless

      const reopened = await open(t, location);
      assert.deepEqual(await reopened.adapter('Session').findByUid('u1'), { uid: 'u1', accountId: 'alice' });
      assert.deepEqual(await reopened.adapter('AuthorizationCode').find('c1'), { grantId: 'g1', consumed });
      assert.deepEqual(await reopened.adapter('DeviceCode').findByUserCode('WXYZ-1234'), { userCode: 'WXYZ-1234' });
      assert.deepEqual(await reopened.getUser('alice'), alice);
      assert.deepEqual(await reopened.listSigningKeys(), keys);
      assert.equal(await reopened.secret('cookies', () => 'new'), secret);
    });
  });
}

// ---------------------------------------------------------------------------------------------------------------

const sqliteRoot = mkdtempSync(join(tmpdir(), 'embedgate-idp-store-'));
let sqliteFiles = 0;

storeContract('SQLite', {
  async setup() {},
  async teardown() {
    rmSync(sqliteRoot, { recursive: true, force: true });
  },
  async fresh() {
    sqliteFiles += 1;
    return `sqlite:${join(sqliteRoot, `store-${sqliteFiles}`, 'idp.db')}`;
  },
});

let postgres: RunningPostgres | undefined;
let postgresDatabases = 0;

storeContract('PostgreSQL', {
  async setup() {
    postgres = await startPostgres();
  },
  async teardown() {
    await postgres?.stop();
  },
  async fresh() {
    postgresDatabases += 1;
    const database = `idp_${postgresDatabases}`;
    const admin = new pg.Client({ connectionString: postgres!.url });
    await admin.connect();
    try {
      await admin.query(`CREATE DATABASE ${database}`);
    } finally {
      await admin.end();
    }
    const url = new URL(postgres!.url);
    url.pathname = `/${database}`;
    // Alternate the two accepted schemes.
    if (postgresDatabases % 2 === 0) url.protocol = 'postgresql:';
    return url.href;
  },
});

describe('SQLite IdP store specifics', () => {
  const root = mkdtempSync(join(tmpdir(), 'embedgate-idp-sqlite-'));
  after(() => rmSync(root, { recursive: true, force: true }));

  it('creates missing parent directories and a new database file readable by its owner only', async () => {
    const file = join(root, 'a', 'b', 'idp.db');
    const store = new SqliteIdpStore(file);
    await store.init();
    await store.putUser(user('alice'));
    await store.close();
    assert.equal(statSync(file).mode & 0o777, 0o600);
    assert.equal(statSync(join(root, 'a', 'b')).isDirectory(), true);
  });

  it('puts the database in WAL mode', async () => {
    const file = join(root, 'wal.db');
    const store = new SqliteIdpStore(file);
    await store.init();
    await store.close();
    const db = new Database(file, { readonly: true });
    try {
      assert.equal(db.pragma('journal_mode', { simple: true }), 'wal');
    } finally {
      db.close();
    }
  });

  it('":memory:" stores are private and work without a file', async () => {
    const a = new SqliteIdpStore(':memory:');
    const b = new SqliteIdpStore(':memory:');
    await a.putUser(user('alice'));
    assert.deepEqual(await a.getUser('alice'), user('alice'));
    assert.equal(await b.getUser('alice'), undefined);
    await a.close();
    await b.close();
    assert.equal(existsSync(':memory:'), false);
  });
});

describe('openIdpStore', () => {
  const root = mkdtempSync(join(tmpdir(), 'embedgate-idp-open-'));
  after(() => rmSync(root, { recursive: true, force: true }));

  it('resolves a relative sqlite path against baseDir', async () => {
    const store = await openIdpStore('sqlite:./data/idp.db', root);
    await store.putUser(user('alice'));
    await store.close();
    assert.equal(existsSync(join(root, 'data', 'idp.db')), true);
    const absolute = await openIdpStore(`sqlite:${join(root, 'data', 'idp.db')}`, '/nonexistent');
    assert.deepEqual(await absolute.getUser('alice'), user('alice'));
    await absolute.close();
  });

  it('opens memory: as a fresh in-memory store', async () => {
    const store = await openIdpStore('memory:');
    assert.deepEqual(await store.listUsers(), []);
    await store.putUser(user('alice'));
    assert.equal((await store.listUsers()).length, 1);
    await store.close();
  });

  it('rejects unsupported stores with a clear message that does not echo credentials', async () => {
    for (const [store, message] of [
      ['redis://user:hunter2@localhost:6379', /unsupported idp store scheme "redis:".*sqlite:PATH/],
      ['mysql://root:hunter2@db/idp', /"mysql:"/],
      ['./idp.db', /unsupported idp store \(expected sqlite:PATH/],
      ['', /unsupported idp store/],
      ['sqlite:', /needs a file path/],
      ['memory:extra', /unsupported idp store scheme "memory:"/],
    ] as const) {
      await assert.rejects(openIdpStore(store, root), (error: Error) => {
        assert.match(error.message, message, store);
        assert.doesNotMatch(error.message, /hunter2/);
        return true;
      });
    }
  });

  it('rejects a PostgreSQL URL it cannot connect to', async () => {
    // Port 1 on loopback: nothing listens there, so the connection is refused at once.
    await assert.rejects(openIdpStore('postgres://postgres@127.0.0.1:1/idp'), /ECONNREFUSED/);
  });
});
