// Session records in Redis, shared by every gateway instance: one hash per session that Redis expires itself, sets
// of session ids per user and per provider session (logout everywhere, back-channel logout), one-time claims, locks,
// and session-end events over pub/sub. Commands fail at once while Redis is unreachable (no offline queue), as
// SessionStoreUnavailableError; the clients reconnect by themselves.
import { randomUUID } from 'node:crypto';
import { Redis } from 'ioredis';
import { SessionStoreUnavailableError } from './errors.js';
import type { ReleaseLock, SessionEndEvent, SessionRecord, SessionStore } from './types.js';

const PREFIX = 'embedgate:';
const EVENTS_CHANNEL = `${PREFIX}session-events`;
/** How long a command waits for a connection that is being made (at start-up, or while reconnecting). */
const READY_WAIT_MS = 1000;
/** How long a command waits for its answer on a live connection (a Redis that hangs, e.g. stopped, or a lost peer). */
const COMMAND_TIMEOUT_MS = 1000;
const sessionKey = (id: string): string => `${PREFIX}sess:${id}`;
const indexKey = (kind: 'subject' | 'sid', issuer: string, value: string): string =>
  `${PREFIX}${kind}:${Buffer.from(`${issuer}\n${value}`).toString('base64url')}`;
const claimKey = (key: string): string => `${PREFIX}claim:${key}`;
const lockKey = (name: string): string => `${PREFIX}lock:${name}`;
const ticketKey = (key: string): string => `${PREFIX}ticket:${key}`;

/** Writes the last-seen time only into a session that still exists (a new key would have no expiry). */
const TOUCH_SCRIPT = "if redis.call('exists', KEYS[1]) == 1 then return redis.call('hset', KEYS[1], 'seen', ARGV[1]) end return 0";
/**
 * Adds a session id to an index set and, once the set holds more than ARGV[2] ids, drops the ids whose session is
 * gone (ended, replaced or expired: Redis expires the session itself, not its id in the index), so that a user who
 * keeps renewing does not grow the set for ever. ARGV[3] is the session key prefix.
 */
const INDEX_SCRIPT = `redis.call('sadd', KEYS[1], ARGV[1])
if redis.call('scard', KEYS[1]) > tonumber(ARGV[2]) then
  for _, id in ipairs(redis.call('smembers', KEYS[1])) do
    if redis.call('exists', ARGV[3] .. id) == 0 then redis.call('srem', KEYS[1], id) end
  end
end
return 1`;
/** An index set is pruned when it holds more ids than this. */
const INDEX_PRUNE_ABOVE = 32;

/** Releases a lock only for the holder that took it. */
const UNLOCK_SCRIPT = "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) end return 0";

interface EventMessage {
  origin: string;
  events: SessionEndEvent[];
}

function recordOf(value: string | null, seen: string | null): SessionRecord | undefined {
  if (value === null) return undefined;
  const record = JSON.parse(value) as SessionRecord;
  if (seen !== null) record.lastSeenAt = Number(seen);
  return record.expiresAt > Math.floor(Date.now() / 1000) ? record : undefined;
}

export class RedisSessionStore implements SessionStore {
  private readonly redis: Redis;
  private subscriber: Redis | undefined;
  private readonly origin = randomUUID();
  private readonly listeners = new Set<(event: SessionEndEvent) => void>();
  private readonly gapListeners = new Set<() => void>();

  constructor(private readonly url: string) {
    this.redis = new Redis(url, {
      enableOfflineQueue: false,
      maxRetriesPerRequest: 1,
      connectTimeout: 2000,
      commandTimeout: COMMAND_TIMEOUT_MS,
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
    const [value, seen] = await this.run(() => this.redis.hmget(sessionKey(id), 'record', 'seen'));
    return recordOf(value ?? null, seen ?? null);
  }

  async put(record: SessionRecord): Promise<void> {
    const { lastSeenAt, ...stored } = record;
    const indexes = [indexKey('subject', record.issuer, record.subject), ...(record.sid === undefined ? [] : [indexKey('sid', record.issuer, record.sid)])];
    const write = this.redis.multi().hset(sessionKey(record.id), 'record', JSON.stringify(stored));
    // The last use is the touches' to keep: a rewrite (a refresh) never moves it back.
    if (lastSeenAt !== undefined) write.hsetnx(sessionKey(record.id), 'seen', String(lastSeenAt));
    write.expireat(sessionKey(record.id), record.expiresAt);
    // An index lives as long as the longest session in it (NX: a new key; GT: only ever later).
    for (const index of indexes) {
      write.eval(INDEX_SCRIPT, 1, index, record.id, INDEX_PRUNE_ABOVE, sessionKey(''))
        .expireat(index, record.expiresAt, 'NX').expireat(index, record.expiresAt, 'GT');
    }
    await this.run(() => write.exec());
  }

  async touch(id: string, seenAt: number): Promise<void> {
    await this.run(() => this.redis.eval(TOUCH_SCRIPT, 1, sessionKey(id), String(seenAt)));
  }

  async delete(id: string): Promise<boolean> {
    return (await this.run(() => this.redis.del(sessionKey(id)))) === 1;
  }

  /** Deletes the sessions an index names (only embed sessions, if asked) and returns the ids that still existed. */
  private async deleteIndexed(index: string, only?: 'embed'): Promise<string[]> {
    let ids = await this.run(() => this.redis.smembers(index));
    if (only === 'embed' && ids.length > 0) {
      const records = await this.run(() => this.redis.pipeline(ids.map((id) => ['hget', sessionKey(id), 'record'])).exec()) ?? [];
      ids = ids.filter((_id, i) => {
        const text = records[i]?.[1];
        return typeof text === 'string' && (JSON.parse(text) as SessionRecord).kind === undefined;
      });
    }
    if (ids.length === 0) return [];
    const write = this.redis.multi();
    for (const id of ids) write.del(sessionKey(id));
    if (only === undefined) write.del(index);
    const results = (await this.run(() => write.exec())) ?? [];
    return ids.filter((_id, i) => results[i]?.[1] === 1);
  }

  deleteBySubject(issuer: string, subject: string, only?: 'embed'): Promise<string[]> {
    return this.deleteIndexed(indexKey('subject', issuer, subject), only);
  }

  deleteBySid(issuer: string, sid: string): Promise<string[]> {
    return this.deleteIndexed(indexKey('sid', issuer, sid));
  }

  async list(subject?: string): Promise<SessionRecord[]> {
    const records: SessionRecord[] = [];
    let cursor = '0';
    do {
      const [next, keys] = await this.run(() => this.redis.scan(cursor, 'MATCH', sessionKey('*'), 'COUNT', 500));
      cursor = next;
      const read = this.redis.pipeline();
      for (const key of keys) read.hmget(key, 'record', 'seen');
      const values = keys.length === 0 ? [] : (await this.run(() => read.exec())) ?? [];
      for (const [, value] of values) {
        const [text, seen] = (value ?? []) as Array<string | null>;
        const record = recordOf(text ?? null, seen ?? null);
        if (record !== undefined && (subject === undefined || record.subject === subject)) records.push(record);
      }
    } while (cursor !== '0');
    return records.sort((a, b) => a.subject.localeCompare(b.subject) || a.expiresAt - b.expiresAt);
  }

  async claimOnce(key: string, ttlSeconds: number): Promise<boolean> {
    return (await this.run(() => this.redis.set(claimKey(key), '1', 'EX', ttlSeconds, 'NX'))) === 'OK';
  }

  async putTicket(key: string, value: string, ttlSeconds: number): Promise<void> {
    await this.run(() => this.redis.set(ticketKey(key), value, 'EX', ttlSeconds));
  }

  async takeTicket(key: string): Promise<string | undefined> {
    return (await this.run(() => this.redis.getdel(ticketKey(key)))) ?? undefined;
  }

  async lock(name: string, ttlMs: number): Promise<ReleaseLock | undefined> {
    const owner = randomUUID();
    const taken = (await this.run(() => this.redis.set(lockKey(name), owner, 'PX', ttlMs, 'NX'))) === 'OK';
    if (!taken) return undefined;
    return async () => void await this.run(() => this.redis.eval(UNLOCK_SCRIPT, 1, lockKey(name), owner));
  }

  async announce(events: SessionEndEvent[]): Promise<void> {
    if (events.length === 0) return;
    this.deliver(events);
    const message: EventMessage = { origin: this.origin, events };
    await this.run(() => this.redis.publish(EVENTS_CHANNEL, JSON.stringify(message)));
  }

  onAnnounce(listener: (event: SessionEndEvent) => void): void {
    this.listeners.add(listener);
    if (this.subscriber !== undefined) return;
    // A connection of its own: a subscribed connection can do nothing else. It subscribes on every connection (the
    // first and each reconnection); events published while it had no live subscription never arrive, so once it has
    // one again, holders of sessions are told to check them in the store.
    const subscriber = new Redis(this.url, { autoResubscribe: false, retryStrategy: (attempt: number) => Math.min(attempt * 100, 2000) });
    this.subscriber = subscriber;
    subscriber.on('error', () => undefined);
    subscriber.on('ready', () => {
      subscriber.subscribe(EVENTS_CHANNEL).then(() => {
        for (const each of this.gapListeners) each();
      }, () => undefined); // the connection dropped again: the next one subscribes
    });
    this.subscriber.on('message', (_channel: string, text: string) => {
      try {
        const message = JSON.parse(text) as EventMessage;
        if (message.origin !== this.origin) this.deliver(message.events);
      } catch {
        // Not one of ours: ignored.
      }
    });
  }

  onEventGap(listener: () => void): void {
    this.gapListeners.add(listener);
  }

  private deliver(events: SessionEndEvent[]): void {
    for (const event of events) for (const listener of this.listeners) listener(event);
  }

  /** Redis expires the records itself. */
  async sweep(): Promise<number> {
    return 0;
  }

  async close(): Promise<void> {
    this.listeners.clear();
    this.gapListeners.clear();
    this.subscriber?.disconnect();
    this.redis.disconnect();
  }
}
