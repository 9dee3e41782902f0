// Sessions in a SQLite file (the default): they survive a gateway restart, and gateway processes on one machine
// that share the file share sessions, one-time claims, locks and session-end events (polled ten times a second).
import { randomUUID } from 'node:crypto';
import { closeSync, mkdirSync, openSync } from 'node:fs';
import { dirname } from 'node:path';
import Database from 'better-sqlite3';
import type { ReleaseLock, SessionEndEvent, SessionRecord, SessionStore } from './types.js';

interface Row {
  id: string;
  issuer: string;
  subject: string;
  data: string;
  expires_at: number;
  last_seen_at: number | null;
}

type RecordData = Omit<SessionRecord, 'id' | 'issuer' | 'subject' | 'expiresAt'>;

/**
 * How often other processes' session-end events are read: an operator's revocation (another process) closes the
 * user's open WebSockets within this (plus the closing handshake). A read is one indexed query.
 */
const EVENT_POLL_MS = 100;
/** Events are kept this long: long enough for every process to have read them. */
const EVENT_KEEP_MS = 60_000;

function recordOf(row: Row): SessionRecord {
  const data = JSON.parse(row.data) as RecordData;
  return {
    ...data, id: row.id, issuer: row.issuer, subject: row.subject, expiresAt: row.expires_at,
    ...(row.last_seen_at === null ? {} : { lastSeenAt: row.last_seen_at }),
  };
}

export class SqliteSessionStore implements SessionStore {
  private readonly db: Database.Database;
  private readonly statements;
  /** Tells this process's events apart from other processes' in the shared table. */
  private readonly origin = randomUUID();
  private readonly listeners = new Set<(event: SessionEndEvent) => void>();
  private poller: NodeJS.Timeout | undefined;
  private lastEvent = 0;
  /** Counts this process's changes to session records; SQLite's data_version counts the other connections' commits. */
  private changes = 0;
  /** SQLite's data_version as read in this turn of the event loop (see changeMark). */
  private otherCommits: number | undefined;

  constructor(path: string) {
    if (path !== ':memory:') {
      mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
      try {
        closeSync(openSync(path, 'wx', 0o600));
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
      }
    }
    this.db = new Database(path);
    this.db.pragma('journal_mode = WAL');
    this.db.pragma('busy_timeout = 2000');
    this.db.exec(`CREATE TABLE IF NOT EXISTS sessions (
      id TEXT PRIMARY KEY, issuer TEXT NOT NULL, subject TEXT NOT NULL, data TEXT NOT NULL, expires_at INTEGER NOT NULL);
      CREATE INDEX IF NOT EXISTS sessions_subject ON sessions (issuer, subject);
      CREATE INDEX IF NOT EXISTS sessions_expiry ON sessions (expires_at);
      CREATE TABLE IF NOT EXISTS claims (key TEXT PRIMARY KEY, expires_at INTEGER NOT NULL);
      CREATE TABLE IF NOT EXISTS tickets (key TEXT PRIMARY KEY, value TEXT NOT NULL, expires_at INTEGER NOT NULL);
      CREATE TABLE IF NOT EXISTS locks (name TEXT PRIMARY KEY, owner TEXT NOT NULL, expires_at INTEGER NOT NULL);
      CREATE TABLE IF NOT EXISTS session_events (seq INTEGER PRIMARY KEY AUTOINCREMENT, origin TEXT NOT NULL, event TEXT NOT NULL, at INTEGER NOT NULL);`);
    const columns = new Set(this.db.prepare<[], { name: string }>('SELECT name FROM pragma_table_info(\'sessions\')').all().map((c) => c.name));
    if (!columns.has('sid')) this.db.exec('ALTER TABLE sessions ADD COLUMN sid TEXT');
    if (!columns.has('last_seen_at')) this.db.exec('ALTER TABLE sessions ADD COLUMN last_seen_at INTEGER');
    this.db.exec('CREATE INDEX IF NOT EXISTS sessions_sid ON sessions (issuer, sid)');
    this.statements = {
      get: this.db.prepare<[string, number], Row>('SELECT * FROM sessions WHERE id = ? AND expires_at > ?'),
      put: this.db.prepare<[string, string, string, string, number, string | null, number | null]>(
        `INSERT INTO sessions (id, issuer, subject, data, expires_at, sid, last_seen_at) VALUES (?, ?, ?, ?, ?, ?, ?)
         ON CONFLICT (id) DO UPDATE SET issuer = excluded.issuer, subject = excluded.subject, data = excluded.data,
           expires_at = excluded.expires_at, sid = excluded.sid,
           last_seen_at = MAX(COALESCE(excluded.last_seen_at, 0), COALESCE(sessions.last_seen_at, 0))`),
      touch: this.db.prepare<[number, string]>('UPDATE sessions SET last_seen_at = ? WHERE id = ?'),
      delete: this.db.prepare<[string]>('DELETE FROM sessions WHERE id = ?'),
      deleteBySubject: this.db.prepare<[string, string], { id: string }>('DELETE FROM sessions WHERE issuer = ? AND subject = ? RETURNING id'),
      deleteEmbedBySubject: this.db.prepare<[string, string], { id: string }>(
        "DELETE FROM sessions WHERE issuer = ? AND subject = ? AND json_extract(data, '$.kind') IS NULL RETURNING id"),
      deleteBySid: this.db.prepare<[string, string], { id: string }>('DELETE FROM sessions WHERE issuer = ? AND sid = ? RETURNING id'),
      sweep: this.db.prepare<[number]>('DELETE FROM sessions WHERE expires_at <= ?'),
      list: this.db.prepare<[number], Row>('SELECT * FROM sessions WHERE expires_at > ? ORDER BY subject, expires_at'),
      listBySubject: this.db.prepare<[number, string], Row>('SELECT * FROM sessions WHERE expires_at > ? AND subject = ? ORDER BY expires_at'),
      dropExpiredClaim: this.db.prepare<[string, number]>('DELETE FROM claims WHERE key = ? AND expires_at <= ?'),
      claim: this.db.prepare<[string, number]>('INSERT OR IGNORE INTO claims (key, expires_at) VALUES (?, ?)'),
      sweepClaims: this.db.prepare<[number]>('DELETE FROM claims WHERE expires_at <= ?'),
      putTicket: this.db.prepare<[string, string, number]>('INSERT OR REPLACE INTO tickets (key, value, expires_at) VALUES (?, ?, ?)'),
      takeTicket: this.db.prepare<[string, number], { value: string; live: number }>('DELETE FROM tickets WHERE key = ? RETURNING value, expires_at > ? AS live'),
      sweepTickets: this.db.prepare<[number]>('DELETE FROM tickets WHERE expires_at <= ?'),
      dropExpiredLock: this.db.prepare<[string, number]>('DELETE FROM locks WHERE name = ? AND expires_at <= ?'),
      lock: this.db.prepare<[string, string, number]>('INSERT OR IGNORE INTO locks (name, owner, expires_at) VALUES (?, ?, ?)'),
      unlock: this.db.prepare<[string, string]>('DELETE FROM locks WHERE name = ? AND owner = ?'),
      addEvent: this.db.prepare<[string, string, number]>('INSERT INTO session_events (origin, event, at) VALUES (?, ?, ?)'),
      lastEvent: this.db.prepare<[], { seq: number | null }>('SELECT MAX(seq) AS seq FROM session_events'),
      eventsAfter: this.db.prepare<[number], { seq: number; origin: string; event: string }>('SELECT seq, origin, event FROM session_events WHERE seq > ? ORDER BY seq'),
      dropEvents: this.db.prepare<[number]>('DELETE FROM session_events WHERE at < ?'),
      dataVersion: this.db.prepare<[], number>('PRAGMA data_version').pluck(),
    };
  }

  async get(id: string): Promise<SessionRecord | undefined> {
    const row = this.statements.get.get(id, Date.now() / 1000);
    return row === undefined ? undefined : recordOf(row);
  }

  async list(subject?: string): Promise<SessionRecord[]> {
    const now = Date.now() / 1000;
    const rows = subject === undefined ? this.statements.list.all(now) : this.statements.listBySubject.all(now, subject);
    return rows.map(recordOf);
  }

  /**
   * Changes with every write to the file: this process's at once (counted here), every other connection's
   * (data_version) from the next turn of the event loop. data_version is read once a turn, as it takes SQLite's WAL
   * read locks (several µs): the requests handled in a turn reached the gateway before the turn began, so a commit that
   * the turn's read misses came after them.
   */
  changeMark(): string {
    if (this.otherCommits === undefined) {
      this.otherCommits = this.statements.dataVersion.get() ?? 0;
      setImmediate(() => { this.otherCommits = undefined; }).unref();
    }
    return `${this.changes}:${this.otherCommits}`;
  }

  async put(record: SessionRecord): Promise<void> {
    this.changes += 1;
    const { id, issuer, subject, expiresAt, lastSeenAt, ...data } = record;
    this.statements.put.run(id, issuer, subject, JSON.stringify(data), expiresAt, record.sid ?? null, lastSeenAt ?? null);
  }

  async touch(id: string, seenAt: number): Promise<void> {
    this.changes += 1;
    this.statements.touch.run(seenAt, id);
  }

  async delete(id: string): Promise<boolean> {
    this.changes += 1;
    return this.statements.delete.run(id).changes > 0;
  }

  async deleteBySubject(issuer: string, subject: string, only?: 'embed'): Promise<string[]> {
    this.changes += 1;
    const statement = only === 'embed' ? this.statements.deleteEmbedBySubject : this.statements.deleteBySubject;
    return statement.all(issuer, subject).map((row) => row.id);
  }

  async deleteBySid(issuer: string, sid: string): Promise<string[]> {
    this.changes += 1;
    return this.statements.deleteBySid.all(issuer, sid).map((row) => row.id);
  }

  async claimOnce(key: string, ttlSeconds: number): Promise<boolean> {
    const now = Date.now();
    return this.db.transaction(() => {
      this.statements.dropExpiredClaim.run(key, now);
      return this.statements.claim.run(key, now + ttlSeconds * 1000).changes === 1;
    }).immediate();
  }

  async putTicket(key: string, value: string, ttlSeconds: number): Promise<void> {
    this.statements.putTicket.run(key, value, Date.now() + ttlSeconds * 1000);
  }

  async takeTicket(key: string): Promise<string | undefined> {
    const row = this.statements.takeTicket.get(key, Date.now());
    return row !== undefined && row.live === 1 ? row.value : undefined;
  }

  async lock(name: string, ttlMs: number): Promise<ReleaseLock | undefined> {
    const owner = randomUUID();
    const now = Date.now();
    const taken = this.db.transaction(() => {
      this.statements.dropExpiredLock.run(name, now);
      return this.statements.lock.run(name, owner, now + ttlMs).changes === 1;
    }).immediate();
    return taken ? async () => void this.statements.unlock.run(name, owner) : undefined;
  }

  async announce(events: SessionEndEvent[]): Promise<void> {
    if (events.length === 0) return;
    const now = Date.now();
    this.db.transaction(() => {
      this.statements.dropEvents.run(now - EVENT_KEEP_MS);
      for (const event of events) this.statements.addEvent.run(this.origin, JSON.stringify(event), now);
    })();
    this.deliver(events);
  }

  onAnnounce(listener: (event: SessionEndEvent) => void): void {
    this.listeners.add(listener);
    if (this.poller !== undefined) return;
    this.lastEvent = this.statements.lastEvent.get()?.seq ?? 0;
    this.poller = setInterval(() => this.readEvents(), EVENT_POLL_MS);
    this.poller.unref();
  }

  /** Delivers other processes' events written since the last poll. */
  private readEvents(): void {
    try {
      const foreign: SessionEndEvent[] = [];
      for (const row of this.statements.eventsAfter.all(this.lastEvent)) {
        this.lastEvent = row.seq;
        if (row.origin !== this.origin) foreign.push(JSON.parse(row.event) as SessionEndEvent);
      }
      this.deliver(foreign);
    } catch {
      // A busy database: the next poll reads what this one missed.
    }
  }

  private deliver(events: SessionEndEvent[]): void {
    for (const event of events) for (const listener of this.listeners) listener(event);
  }

  async sweep(nowSeconds: number): Promise<number> {
    this.changes += 1;
    this.statements.sweepClaims.run(nowSeconds * 1000);
    this.statements.sweepTickets.run(nowSeconds * 1000);
    return this.statements.sweep.run(nowSeconds).changes;
  }

  async close(): Promise<void> {
    clearInterval(this.poller);
    this.listeners.clear();
    this.db.close();
  }
}
