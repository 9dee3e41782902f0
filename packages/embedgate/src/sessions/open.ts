// Opens the session store named by `sessions.store`: memory:, sqlite:PATH or redis://… (rediss:// for TLS).
import { resolve } from 'node:path';
import type { GatewayConfig } from '../config/schema.js';
import type { SessionStore } from './types.js';

/** The store a gateway config names: sessions.store, else sqlite:<data_dir>/sessions.db. */
export function sessionStoreOf(config: GatewayConfig): string {
  return config.sessions.store ?? `sqlite:${resolve(config.data_dir, 'sessions.db')}`;
}

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
