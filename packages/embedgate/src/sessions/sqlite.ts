// Sessions in a SQLite file (the default): they survive a gateway restart.
import { closeSync, mkdirSync, openSync } from 'node:fs';
import { dirname } from 'node:path';
import Database from 'better-sqlite3';
import type { SessionRecord, SessionStore } from './types.js';

interface Row {
  id: string;
  issuer: string;
  subject: string;
  data: string;
  expires_at: number;
}

type RecordData = Omit<SessionRecord, 'id' | 'issuer' | 'subject' | 'expiresAt'>;

function recordOf(row: Row): SessionRecord {
  const data = JSON.parse(row.data) as RecordData;
  return { ...data, id: row.id, issuer: row.issuer, subject: row.subject, expiresAt: row.expires_at };
}

export class SqliteSessionStore implements SessionStore {
  private readonly db: Database.Database;
  private readonly statements;

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
    this.db.exec(`CREATE TABLE IF NOT EXISTS sessions (
      id TEXT PRIMARY KEY, issuer TEXT NOT NULL, subject TEXT NOT NULL, data TEXT NOT NULL, expires_at INTEGER NOT NULL);
      CREATE INDEX IF NOT EXISTS sessions_subject ON sessions (issuer, subject);
      CREATE INDEX IF NOT EXISTS sessions_expiry ON sessions (expires_at);`);
    this.statements = {
      get: this.db.prepare<[string, number], Row>('SELECT * FROM sessions WHERE id = ? AND expires_at > ?'),
      put: this.db.prepare<[string, string, string, string, number]>('INSERT OR REPLACE INTO sessions (id, issuer, subject, data, expires_at) VALUES (?, ?, ?, ?, ?)'),
      delete: this.db.prepare<[string]>('DELETE FROM sessions WHERE id = ?'),
      bySubject: this.db.prepare<[string, string], { id: string }>('SELECT id FROM sessions WHERE issuer = ? AND subject = ?'),
      deleteBySubject: this.db.prepare<[string, string]>('DELETE FROM sessions WHERE issuer = ? AND subject = ?'),
      sweep: this.db.prepare<[number]>('DELETE FROM sessions WHERE expires_at <= ?'),
      list: this.db.prepare<[number], Row>('SELECT * FROM sessions WHERE expires_at > ? ORDER BY subject, expires_at'),
      listBySubject: this.db.prepare<[number, string], Row>('SELECT * FROM sessions WHERE expires_at > ? AND subject = ? ORDER BY expires_at'),
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

  async put(record: SessionRecord): Promise<void> {
    const { id, issuer, subject, expiresAt, ...data } = record;
    this.statements.put.run(id, issuer, subject, JSON.stringify(data), expiresAt);
  }

  async delete(id: string): Promise<boolean> {
    return this.statements.delete.run(id).changes > 0;
  }

  async deleteBySubject(issuer: string, subject: string): Promise<string[]> {
    return this.db.transaction(() => {
      const ids = this.statements.bySubject.all(issuer, subject).map((row) => row.id);
      this.statements.deleteBySubject.run(issuer, subject);
      return ids;
    })();
  }

  async sweep(nowSeconds: number): Promise<number> {
    return this.statements.sweep.run(nowSeconds).changes;
  }

  async close(): Promise<void> {
    this.db.close();
  }
}
