// Opens the session store named by `sessions.store`: memory:, sqlite:PATH or redis://… (rediss:// for TLS).
import { resolve } from 'node:path';
import type { SessionStore } from './types.js';

export async function openSessionStore(store: string): Promise<SessionStore> {
  if (store === 'memory:') {
    const { MemorySessionStore } = await import('./memory.js');
    return new MemorySessionStore();
  }
  if (store.startsWith('sqlite:') && store.length > 'sqlite:'.length) {
    const { SqliteSessionStore } = await import('./sqlite.js');
    return new SqliteSessionStore(resolve(store.slice('sqlite:'.length)));
  }
  if (store.startsWith('redis://') || store.startsWith('rediss://')) {
    const { RedisSessionStore } = await import('./redis.js');
    return new RedisSessionStore(store);
  }
  throw new Error('sessions.store must be memory:, sqlite:PATH or redis://host:port');
}
