// Opens the identity provider's store named by the `idp.store` setting: sqlite:PATH, memory: or postgres://….
import { resolve } from 'node:path';
import type { IdpStore } from './types.js';

const EXPECTED = 'expected sqlite:PATH, memory: or postgres://…';

/**
 * Opens and initializes the store. Relative sqlite paths are resolved against `baseDir` (default: the working
 * directory), e.g. the directory of the config file. Drivers are loaded on demand, so SQLite users never load pg.
 */
export async function openIdpStore(store: string, baseDir: string = process.cwd()): Promise<IdpStore> {
  let opened: IdpStore;
  if (store === 'memory:') {
    const { SqliteIdpStore } = await import('./sqlite.js');
    opened = new SqliteIdpStore(':memory:');
  } else if (store.startsWith('sqlite:')) {
    const path = store.slice('sqlite:'.length);
    if (path === '') throw new Error(`idp store "sqlite:" needs a file path (sqlite:./data/idp.db)`);
    const { SqliteIdpStore } = await import('./sqlite.js');
    opened = new SqliteIdpStore(path === ':memory:' ? path : resolve(baseDir, path));
  } else if (/^postgres(ql)?:\/\//i.test(store)) {
    const { PostgresIdpStore } = await import('./postgres.js');
    opened = new PostgresIdpStore(store);
  } else {
    // Only the scheme is echoed: the rest of an unrecognized URL may hold a password.
    const scheme = /^[a-z][a-z0-9+.-]*:/i.exec(store)?.[0];
    throw new Error(
      scheme ? `unsupported idp store scheme "${scheme}" (${EXPECTED})` : `unsupported idp store (${EXPECTED})`,
    );
  }
  try {
    await opened.init();
  } catch (error) {
    await opened.close().catch(() => {});
    throw error;
  }
  return opened;
}
