// Sessions in process memory: fast, lost on restart; for tests and single throwaway instances.
import { randomUUID } from 'node:crypto';
import type { ReleaseLock, SessionEndEvent, SessionRecord, SessionStore } from './types.js';

/** Claims and tickets kept at most (each map): requests can create them, so memory stays bounded. */
const MAX_ENTRIES = 100_000;

export class MemorySessionStore implements SessionStore {
  private readonly records = new Map<string, SessionRecord>();
  /** One-time claims and locks: key → expiry in ms (locks also keep their owner). */
  private readonly claims = new Map<string, number>();
  private readonly locks = new Map<string, { owner: string; until: number }>();
  private readonly tickets = new Map<string, { value: string; until: number }>();
  private readonly listeners = new Set<(event: SessionEndEvent) => void>();
  /** When a full map was last scanned for expired entries (at most once a second, not on every request). */
  private lastScan = 0;
  /** Counts the changes to session records (see changeMark). */
  private changes = 0;

  changeMark(): string {
    return String(this.changes);
  }

  async get(id: string): Promise<SessionRecord | undefined> {
    const record = this.records.get(id);
    if (record !== undefined && record.expiresAt <= Date.now() / 1000) {
      this.records.delete(id);
      return undefined;
    }
    return record === undefined ? undefined : { ...record };
  }

  async put(record: SessionRecord): Promise<void> {
    this.changes += 1;
    // The last use is the touches' to keep: a rewrite (a refresh) never moves it back.
    const seen = Math.max(record.lastSeenAt ?? 0, this.records.get(record.id)?.lastSeenAt ?? 0);
    this.records.set(record.id, { ...record, ...(seen === 0 ? {} : { lastSeenAt: seen }) });
  }

  async touch(id: string, seenAt: number): Promise<void> {
    this.changes += 1;
    const record = this.records.get(id);
    if (record !== undefined) record.lastSeenAt = seenAt;
  }

  async delete(id: string): Promise<boolean> {
    this.changes += 1;
    return this.records.delete(id);
  }

  private deleteWhere(matches: (record: SessionRecord) => boolean): string[] {
    this.changes += 1;
    const removed: string[] = [];
    for (const record of this.records.values()) {
      if (!matches(record)) continue;
      this.records.delete(record.id);
      removed.push(record.id);
    }
    return removed;
  }

  async deleteBySubject(issuer: string, subject: string, only?: 'embed'): Promise<string[]> {
    return this.deleteWhere((r) => r.issuer === issuer && r.subject === subject && (only === undefined || r.kind === undefined));
  }

  async deleteBySid(issuer: string, sid: string): Promise<string[]> {
    return this.deleteWhere((r) => r.issuer === issuer && r.sid === sid);
  }

  async list(subject?: string): Promise<SessionRecord[]> {
    const now = Date.now() / 1000;
    return [...this.records.values()].filter((r) => r.expiresAt > now && (subject === undefined || r.subject === subject));
  }

  async claimOnce(key: string, ttlSeconds: number): Promise<boolean> {
    const now = Date.now();
    if ((this.claims.get(key) ?? 0) > now) return false;
    // Full of live claims (a flood of sign-in callbacks): refuse rather than forget one, so no replay slips through.
    if (this.claims.size >= MAX_ENTRIES && !this.dropExpired(this.claims, (until) => until, now)) return false;
    this.claims.set(key, now + ttlSeconds * 1000);
    return true;
  }

  async putTicket(key: string, value: string, ttlSeconds: number): Promise<void> {
    const now = Date.now();
    // Full of live tickets: the oldest goes (its WebSocket, not yet opened, asks for another).
    if (this.tickets.size >= MAX_ENTRIES && !this.dropExpired(this.tickets, (ticket) => ticket.until, now)) {
      this.tickets.delete(this.tickets.keys().next().value as string);
    }
    this.tickets.set(key, { value, until: now + ttlSeconds * 1000 });
  }

  /** Removes the map's expired entries (scanning at most once a second); true when any went. */
  private dropExpired<T>(map: Map<string, T>, until: (entry: T) => number, now: number): boolean {
    if (now - this.lastScan < 1000) return false;
    this.lastScan = now;
    const size = map.size;
    for (const [key, entry] of map) if (until(entry) <= now) map.delete(key);
    return map.size < size;
  }

  async takeTicket(key: string): Promise<string | undefined> {
    const ticket = this.tickets.get(key);
    this.tickets.delete(key);
    return ticket !== undefined && ticket.until > Date.now() ? ticket.value : undefined;
  }

  async lock(name: string, ttlMs: number): Promise<ReleaseLock | undefined> {
    const now = Date.now();
    if ((this.locks.get(name)?.until ?? 0) > now) return undefined;
    const owner = randomUUID();
    this.locks.set(name, { owner, until: now + ttlMs });
    return async () => {
      if (this.locks.get(name)?.owner === owner) this.locks.delete(name);
    };
  }

  async announce(events: SessionEndEvent[]): Promise<void> {
    for (const event of events) for (const listener of this.listeners) listener(event);
  }

  onAnnounce(listener: (event: SessionEndEvent) => void): void {
    this.listeners.add(listener);
  }

  async sweep(nowSeconds: number): Promise<number> {
    const removed = this.deleteWhere((r) => r.expiresAt <= nowSeconds).length;
    for (const [key, until] of this.claims) if (until <= nowSeconds * 1000) this.claims.delete(key);
    for (const [key, ticket] of this.tickets) if (ticket.until <= nowSeconds * 1000) this.tickets.delete(key);
    for (const [name, lock] of this.locks) if (lock.until <= nowSeconds * 1000) this.locks.delete(name);
    return removed;
  }

  async close(): Promise<void> {
    this.records.clear();
    this.listeners.clear();
  }
}
