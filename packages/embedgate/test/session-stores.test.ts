// What gateway instances sharing one session store agree on, for each store that can be shared — a SQLite file (two
// processes on one machine) and a real Redis — and for memory: a one-time claim succeeds once, a lock has one holder
// at a time, a session-end event reaches the other instance, back-channel deletes by sid and by user (embed only),
// and the last-use time is shared without bringing back a deleted session.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { MemorySessionStore } from '../src/sessions/memory.js';
import { RedisSessionStore } from '../src/sessions/redis.js';
import { SqliteSessionStore } from '../src/sessions/sqlite.js';
import type { SessionEndEvent, SessionRecord, SessionStore } from '../src/sessions/types.js';
import { Sessions, SUCCESSOR_POINTER_SECONDS } from '../src/sessions/sessions.js';
import type { Identity } from '../src/identity/identity.js';
import { eventually } from './support/gateway.js';
import { startRedis, type RunningRedis } from './support/redis.js';

const ISSUER = 'https://op.example';
let redis: RunningRedis;
let dataDir: string;

before(async () => {
  redis = await startRedis();
  dataDir = mkdtempSync(join(tmpdir(), 'embedgate-stores-'));
});

after(async () => {
  await redis?.close();
  rmSync(dataDir, { recursive: true, force: true });
});

function record(id: string, subject: string, extra: Partial<SessionRecord> = {}): SessionRecord {
  const now = Math.floor(Date.now() / 1000);
  return {
    id, issuer: ISSUER, subject, email: undefined, emailVerified: undefined, roles: ['analyst'], scopes: [], claims: { sub: subject },
    expiresAt: now + 300, createdAt: now, ...extra,
  };
}

/** Two handles on one store, as two gateway instances have. */
interface Pair {
  name: string;
  open(): [SessionStore, SessionStore];
}

const pairs: Pair[] = [
  { name: 'SQLite file shared by two processes', open: () => {
    const file = join(dataDir, `sessions-${Math.random().toString(36).slice(2)}.db`);
    return [new SqliteSessionStore(file), new SqliteSessionStore(file)];
  } },
  { name: 'Redis shared by two instances', open: () => [new RedisSessionStore(redis.url), new RedisSessionStore(redis.url)] },
];

for (const pair of pairs) {
  describe(pair.name, () => {
    let a: SessionStore;
    let b: SessionStore;

    before(() => {
      [a, b] = pair.open();
    });

    after(async () => {
      await a?.close();
      await b?.close();
    });

    it('103: a one-time claim (a logout token\'s jti) succeeds on one instance only', async () => {
      const key = `jti-${Math.random()}`;
      const results = await Promise.all([a.claimOnce(key, 60), b.claimOnce(key, 60), a.claimOnce(key, 60)]);
      assert.deepEqual(results.filter(Boolean).length, 1);
      assert.equal(await b.claimOnce(`${key}-other`, 60), true, 'another key is its own claim');
    });

    it('a WebSocket ticket is taken once across instances, and never after its time-to-live', async () => {
      const key = `ws:${Math.random()}`;
      await a.putTicket(key, '{"sessionId":"s","app":"sales"}', 30);
      const taken = await Promise.all([a.takeTicket(key), b.takeTicket(key), b.takeTicket(key)]);
      assert.deepEqual(taken.filter((value) => value !== undefined), ['{"sessionId":"s","app":"sales"}'], 'exactly one taker');
      const short = `ws:${Math.random()}`;
      await b.putTicket(short, 'v', 1);
      // The property under test is time passing: wait (really) past the one second.
      await new Promise((resolve) => setTimeout(resolve, 1100));
      assert.equal(await a.takeTicket(short), undefined, 'expired');
    });

    it('a refresh lock has one holder at a time across instances, and is free again once released', async () => {
      const name = `refresh:${Math.random()}`;
      const held = await a.lock(name, 10_000);
      assert.ok(held !== undefined);
      assert.equal(await b.lock(name, 10_000), undefined, 'the other instance cannot take it');
      assert.equal(await a.lock(name, 10_000), undefined, 'nor a second request on the same instance');
      await held();
      const next = await b.lock(name, 10_000);
      assert.ok(next !== undefined, 'released: the other instance takes it');
      await next();
    });

    it('a lock whose holder died is free after its time-to-live', async () => {
      const name = `refresh:${Math.random()}`;
      assert.ok(await a.lock(name, 300) !== undefined);
      await eventually(async () => (await b.lock(name, 300)) !== undefined, 3000, 50);
    });

    it('a session-end event announced on one instance reaches the other (and the announcer)', async () => {
      const heardByB: SessionEndEvent[] = [];
      const heardByA: SessionEndEvent[] = [];
      b.onAnnounce((event) => heardByB.push(event));
      a.onAnnounce((event) => heardByA.push(event));
      const id = `ended-${Math.random()}`;
      // Redis delivers to subscribers only once their subscription is live: announce until it is.
      await eventually(async () => {
        await a.announce([{ id, successor: { id: `${id}-next`, expiresAt: 123 } }]);
        return heardByB.some((event) => event.id === id);
      }, 5000, 100);
      assert.deepEqual(heardByB.find((event) => event.id === id), { id, successor: { id: `${id}-next`, expiresAt: 123 } });
      assert.ok(heardByA.some((event) => event.id === id), 'the announcing instance hears it at once');
    });

    it('deletes by provider session (sid), and by user keeping their login sessions when asked for embed only', async () => {
      await a.put(record('s1', 'ana', { kind: 'login', sid: 'op-session-1' }));
      await a.put(record('s2', 'ana', { sid: 'op-session-1' }));
      await a.put(record('s3', 'ana', { kind: 'login', sid: 'op-session-2' }));
      await a.put(record('s4', 'ana'));
      await a.put(record('s5', 'bo', { sid: 'op-session-1-of-another-issuer', issuer: 'https://other.example' }));
      assert.deepEqual((await b.deleteBySid(ISSUER, 'op-session-1')).sort(), ['s1', 's2']);
      assert.deepEqual(await b.deleteBySubject(ISSUER, 'ana', 'embed'), ['s4']);
      assert.equal((await a.get('s3'))?.kind, 'login', 'the login session of another provider session stays');
      assert.equal((await a.get('s5'))?.subject, 'bo');
      assert.deepEqual(await b.deleteBySubject(ISSUER, 'ana'), ['s3']);
    });

    it('the last use written by one instance is read by the other; touching a deleted session does not bring it back', async () => {
      await a.put(record('t1', 'cy', { kind: 'login', lastSeenAt: 100 }));
      await b.touch('t1', 200);
      assert.equal((await a.get('t1'))?.lastSeenAt, 200);
      await a.put({ ...(await a.get('t1')) as SessionRecord, accessExpiresAt: 999, lastSeenAt: undefined });
      assert.equal((await b.get('t1'))?.lastSeenAt, 200, 'a refresh does not reset the last use');
      assert.equal(await a.delete('t1'), true);
      await b.touch('t1', 300);
      assert.equal(await a.get('t1'), undefined);
      assert.equal((await a.list('cy')).length, 0);
    });
  });
}

describe('memory store', () => {
  it('claims, locks and events work within the one instance', async () => {
    const store = new MemorySessionStore();
    assert.equal(await store.claimOnce('jti', 60), true);
    assert.equal(await store.claimOnce('jti', 60), false);
    const release = await store.lock('refresh:x', 10_000);
    assert.ok(release !== undefined);
    assert.equal(await store.lock('refresh:x', 10_000), undefined);
    await release();
    assert.ok(await store.lock('refresh:x', 10_000) !== undefined);
    const heard: string[] = [];
    store.onAnnounce((event) => heard.push(event.id));
    await store.announce([{ id: 'gone' }]);
    assert.deepEqual(heard, ['gone']);
    await store.close();
  });

  it('keeps at most 100,000 claims and tickets: a flood of live claims is refused (fail closed, no replay let through) until they expire; the oldest ticket makes room', async () => {
    const store = new MemorySessionStore();
    for (let i = 0; i < 100_000; i += 1) assert.equal(await store.claimOnce(`flood-${i}`, 1), true);
    assert.equal(await store.claimOnce('one-more', 600), false, 'full of live claims: refused');
    assert.equal(await store.claimOnce('flood-0', 600), false, 'a claimed key is still refused');
    // The claims live 1 s: the property under test is time passing.
    await new Promise((resolve) => setTimeout(resolve, 1100));
    assert.equal(await store.claimOnce('one-more', 600), true, 'expired claims made room');
    assert.equal(await store.claimOnce('one-more', 600), false);

    for (let i = 0; i < 100_000; i += 1) await store.putTicket(`ticket-${i}`, `value-${i}`, 30);
    await store.putTicket('newest', 'value-new', 30);
    assert.equal(await store.takeTicket('ticket-0'), undefined, 'the oldest ticket made room');
    assert.equal(await store.takeTicket('ticket-1'), 'value-1');
    assert.equal(await store.takeTicket('newest'), 'value-new');
    await store.close();
  });
});

describe('sessions read again only when the store changed', () => {
  const identity = (subject: string): Identity => ({
    issuer: ISSUER, subject, email: undefined, emailVerified: undefined, roles: new Set(['analyst']), scopes: new Set(),
    claims: { sub: subject }, expiresAt: Math.floor(Date.now() / 1000) + 300,
  });

  it('SQLite: a session found once is served again from memory, and another process\'s revocation (a second connection to the file) is seen by the next request', async () => {
    const file = join(dataDir, 'cache.db');
    const gateway = new SqliteSessionStore(file);
    const operator = new SqliteSessionStore(file);
    const sessions = new Sessions(gateway, 300);
    try {
      const made = await sessions.create(identity('ana'));
      const other = await sessions.create(identity('bo'));
      const first = await sessions.find(made.cookieValue);
      assert.equal(first?.identity.subject, 'ana');
      assert.equal(await sessions.find(made.cookieValue), first, 'the same object: no store read');
      // Another connection deletes it, as `embedgate sessions revoke` does from its own process.
      assert.deepEqual(await operator.deleteBySubject(ISSUER, 'ana'), [made.id]);
      // The next request reaches the gateway in a later turn of its event loop, where the store reads data_version again.
      await new Promise(setImmediate);
      assert.equal(await sessions.find(made.cookieValue), undefined, 'refused at once');
      assert.equal((await sessions.find(other.cookieValue))?.identity.subject, 'bo', 'other sessions stay');
      // A change made through this process is seen at once too.
      await sessions.end(other.id);
      assert.equal(await sessions.find(other.cookieValue), undefined);
    } finally {
      await gateway.close();
      await operator.close();
    }
  });

  it('memory: a session found once is served again; a replaced one leads to its successor until its pointer ends, an ended one is not, an expired one never', async () => {
    const store = new MemorySessionStore();
    const sessions = new Sessions(store, 300);
    const made = await sessions.create(identity('ana'));
    const found = await sessions.find(made.cookieValue);
    assert.equal(await sessions.find(made.cookieValue), found);
    const renewed = await sessions.renew(made.id, { ...identity('ana'), expiresAt: Math.floor(Date.now() / 1000) + 600 });
    assert.equal((await sessions.find(made.cookieValue))?.id, renewed.id, 'the replaced value stands for the renewed session');
    assert.equal((await sessions.find(renewed.cookieValue))?.identity.subject, 'ana');
    const pointer = await store.get(made.id);
    assert.equal(pointer?.replacedBy, renewed.id);
    assert.ok((pointer?.expiresAt ?? Infinity) <= Math.floor(Date.now() / 1000) + SUCCESSOR_POINTER_SECONDS, 'the pointer lives 30 s at most');
    // Its 30 s gone by (the pointer's end moved to now): the replaced value is no session, the renewed one still is.
    await store.put({ ...(pointer as SessionRecord), expiresAt: Math.floor(Date.now() / 1000) });
    assert.equal(await sessions.find(made.cookieValue), undefined, 'the replaced value, once its pointer has ended');
    assert.equal((await sessions.find(renewed.cookieValue))?.id, renewed.id);
    // Ending the chain ends every value of it at once.
    const again = await sessions.renew(renewed.id, { ...identity('ana'), expiresAt: Math.floor(Date.now() / 1000) + 700 });
    assert.equal((await sessions.find(renewed.cookieValue))?.id, again.id);
    await sessions.end(again.id);
    assert.equal(await sessions.find(renewed.cookieValue), undefined, 'the replaced value, once the chain has ended');
    assert.equal(await sessions.find(again.cookieValue), undefined);
    const short = await sessions.create({ ...identity('cy'), expiresAt: Math.floor(Date.now() / 1000) + 1 });
    assert.ok(await sessions.find(short.cookieValue) !== undefined);
    // The property under test is time passing: the session's exp goes by, with no change in the store.
    await new Promise((resolve) => setTimeout(resolve, short.expiresAt * 1000 - Date.now() + 50));
    assert.equal(await sessions.find(short.cookieValue), undefined, 'expired');
    await store.close();
  });
});
