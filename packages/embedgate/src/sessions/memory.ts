// Sessions in process memory: fast, lost on restart; for tests and single throwaway instances.
import type { SessionRecord, SessionStore } from './types.js';

export class MemorySessionStore implements SessionStore {
  private readonly records = new Map<string, SessionRecord>();

  async get(id: string): Promise<SessionRecord | undefined> {
    const record = this.records.get(id);
    if (record !== undefined && record.expiresAt <= Date.now() / 1000) {
      this.records.delete(id);
      return undefined;
    }
    return record;
  }

  async put(record: SessionRecord): Promise<void> {
    this.records.set(record.id, record);
  }

  async delete(id: string): Promise<boolean> {
    return this.records.delete(id);
  }

  async deleteBySubject(issuer: string, subject: string): Promise<string[]> {
    const removed: string[] = [];
    for (const record of this.records.values()) {
      if (record.issuer === issuer && record.subject === subject) {
        this.records.delete(record.id);
        removed.push(record.id);
      }
    }
    return removed;
  }

  async list(subject?: string): Promise<SessionRecord[]> {
    const now = Date.now() / 1000;
    return [...this.records.values()].filter((r) => r.expiresAt > now && (subject === undefined || r.subject === subject));
  }

  async sweep(nowSeconds: number): Promise<number> {
    let removed = 0;
    for (const record of this.records.values()) {
      if (record.expiresAt <= nowSeconds) {
        this.records.delete(record.id);
        removed += 1;
      }
    }
    return removed;
  }

  async close(): Promise<void> {
    this.records.clear();
  }
}
