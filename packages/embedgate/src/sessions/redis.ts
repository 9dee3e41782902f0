// Session records in Redis, shared by every gateway instance: one key per session that Redis expires itself, and a
// set of session ids per user for logout everywhere. Commands fail at once while Redis is unreachable (no offline
// queue), as SessionStoreUnavailableError; the client reconnects by itself.
import { Redis } from 'ioredis';
import { SessionStoreUnavailableError } from './errors.js';
import type { SessionRecord, SessionStore } from './types.js';

const PREFIX = 'embedgate:';
/** How long a command waits for a connection that is being made (at start-up, or while reconnecting). */
const READY_WAIT_MS = 1000;
const sessionKey = (id: string): string => `${PREFIX}session:${id}`;
const subjectKey = (issuer: string, subject: string): string => `${PREFIX}subject:${Buffer.from(`${issuer}\n${subject}`).toString('base64url')}`;

export class RedisSessionStore implements SessionStore {
  private readonly redis: Redis;

  constructor(url: string) {
    this.redis = new Redis(url, {
      enableOfflineQueue: false,
      maxRetriesPerRequest: 1,
      connectTimeout: 2000,
      // Back off up to 2 s between reconnection attempts, forever: the gateway keeps serving bearer requests.
      retryStrategy: (attempt: number) => Math.min(attempt * 100, 2000),
    });
    // Connection errors surface as failed commands; without a listener ioredis would log them as unhandled.
    this.redis.on('error', () => undefined);
  }

  /** Resolves when the client is connected, or after `READY_WAIT_MS` (the command then fails at once). */
  private connected(): Promise<void> {
    if (this.redis.status === 'ready') return Promise.resolve();
    return new Promise((resolve) => {
      const done = (): void => {
        clearTimeout(timer);
        this.redis.off('ready', done);
        resolve();
      };
      const timer = setTimeout(done, READY_WAIT_MS);
      this.redis.once('ready', done);
    });
  }

  private async run<T>(command: () => Promise<T>): Promise<T> {
    try {
      await this.connected();
      return await command();
    } catch (error) {
      throw new SessionStoreUnavailableError(error);
    }
  }

  async get(id: string): Promise<SessionRecord | undefined> {
    const value = await this.run(() => this.redis.get(sessionKey(id)));
    if (value === null) return undefined;
    const record = JSON.parse(value) as SessionRecord;
    return record.expiresAt > Math.floor(Date.now() / 1000) ? record : undefined;
  }

  async put(record: SessionRecord): Promise<void> {
    const index = subjectKey(record.issuer, record.subject);
    await this.run(() => this.redis.multi()
      .set(sessionKey(record.id), JSON.stringify(record), 'EXAT', record.expiresAt)
      .sadd(index, record.id)
      // The index lives as long as the longest session in it (NX: a new key; GT: only ever later).
      .expireat(index, record.expiresAt, 'NX')
      .expireat(index, record.expiresAt, 'GT')
      .exec());
  }

  async delete(id: string): Promise<boolean> {
    const value = await this.run(() => this.redis.getdel(sessionKey(id)));
    if (value === null) return false;
    const record = JSON.parse(value) as SessionRecord;
    await this.run(() => this.redis.srem(subjectKey(record.issuer, record.subject), id));
    return true;
  }

  async deleteBySubject(issuer: string, subject: string): Promise<string[]> {
    const index = subjectKey(issuer, subject);
    const ids = await this.run(() => this.redis.smembers(index));
    if (ids.length === 0) return [];
    await this.run(() => this.redis.multi().del(...ids.map(sessionKey)).del(index).exec());
    return ids;
  }

  async list(subject?: string): Promise<SessionRecord[]> {
    const records: SessionRecord[] = [];
    let cursor = '0';
    do {
      const [next, keys] = await this.run(() => this.redis.scan(cursor, 'MATCH', `${PREFIX}session:*`, 'COUNT', 500));
      cursor = next;
      const values = keys.length === 0 ? [] : await this.run(() => this.redis.mget(...keys));
      for (const value of values) {
        if (value === null) continue;
        const record = JSON.parse(value) as SessionRecord;
        if (subject === undefined || record.subject === subject) records.push(record);
      }
    } while (cursor !== '0');
    const now = Math.floor(Date.now() / 1000);
    return records.filter((r) => r.expiresAt > now).sort((a, b) => a.subject.localeCompare(b.subject) || a.expiresAt - b.expiresAt);
  }

  /** Redis expires the records itself. */
  async sweep(): Promise<number> {
    return 0;
  }

  async close(): Promise<void> {
    this.redis.disconnect();
  }
}
