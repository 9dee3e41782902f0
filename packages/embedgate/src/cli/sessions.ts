// `embedgate sessions`: for operators, the live sessions in the gateway's store (list), and ending all of one
// user's sessions at once (revoke). Prints no secrets: ids are already hashes of the cookies.
import { parseArgs } from 'node:util';
import { ConfigError, loadConfigFile } from '../config/load.js';
import { openSessionStore, sessionStoreOf } from '../sessions/open.js';
import type { SessionRecord, SessionStore } from '../sessions/types.js';
import { usageError } from './args.js';
import { reportConfigError } from './check-config.js';

const USAGE = `Usage:
  embedgate sessions list --config FILE [--user SUB]
  embedgate sessions revoke --user SUB --config FILE [--issuer ISSUER]

Reads the session store of the gateway configured in FILE (sessions.store, or sqlite:<data_dir>/sessions.db;
a memory: store belongs to its running gateway and cannot be reached). "list" prints one line per live session:
kind (login or embed), user (sub), issuer, roles, created and expires (UTC), and the first characters of its id.
"revoke" ends every session of that user (of every issuer unless --issuer is given); the user's next request
is refused, and their browser signs in again.`;

const time = (seconds: number): string => new Date(seconds * 1000).toISOString().replace(/\.\d{3}Z$/, 'Z');

function line(record: SessionRecord): string {
  const kind = record.kind ?? 'embed';
  return [kind, record.subject, record.issuer, record.roles.join(',') || '-', time(record.createdAt), time(record.expiresAt), record.id.slice(0, 12)].join('\t');
}

/** Not the pointer a renewed embed session leaves for a few seconds. */
const isLive = (record: SessionRecord): boolean => record.replacedBy === undefined;

async function revoke(store: SessionStore, subject: string, issuer: string | undefined): Promise<number> {
  const records = await store.list(subject);
  const issuers = issuer !== undefined ? [issuer] : [...new Set(records.map((record) => record.issuer))];
  // A renewed session's short-lived pointer record goes too, but is not counted as a session.
  const live = new Set(records.filter(isLive).map((record) => record.id));
  let ended = 0;
  for (const each of issuers) {
    const ids = await store.deleteBySubject(each, subject);
    // Running gateways sharing the store close the user's open WebSockets.
    await store.announce(ids.map((id) => ({ id })));
    ended += ids.filter((id) => live.has(id)).length;
  }
  process.stdout.write(`ended ${ended} session(s) of ${subject}\n`);
  return 0;
}

export async function sessionsCommand(args: string[]): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({ args, allowPositionals: true, strict: true, options: {
      config: { type: 'string', short: 'c' }, user: { type: 'string' }, issuer: { type: 'string' }, help: { type: 'boolean', short: 'h' },
    } });
  } catch (error) {
    return usageError((error as Error).message, USAGE).exitCode;
  }
  const { values, positionals } = parsed;
  if (values.help === true) {
    process.stdout.write(`${USAGE}\n`);
    return 0;
  }
  const [action] = positionals;
  const problem = positionals.length !== 1 || (action !== 'list' && action !== 'revoke') ? 'say list or revoke'
    : values.config === undefined ? '--config FILE is required'
      : action === 'revoke' && values.user === undefined ? 'revoke needs --user SUB' : undefined;
  if (problem !== undefined) {
    return usageError(problem, USAGE).exitCode;
  }
  const file = values.config as string;
  let storeName: string;
  try {
    storeName = sessionStoreOf(loadConfigFile(file));
  } catch (error) {
    if (error instanceof ConfigError) return reportConfigError(file, error);
    throw error;
  }
  if (storeName === 'memory:') {
    process.stderr.write('embedgate: sessions.store is memory:, which only the running gateway can see\n');
    return 2;
  }
  const store = await openSessionStore(storeName);
  try {
    if (action === 'revoke') return await revoke(store, values.user as string, values.issuer);
    const records = (await store.list(values.user)).filter(isLive);
    for (const record of records) process.stdout.write(`${line(record)}\n`);
    if (records.length === 0) process.stderr.write('no live sessions\n');
    return 0;
  } catch (error) {
    process.stderr.write(`embedgate: ${(error as Error).message}\n`);
    return 1;
  } finally {
    await store.close();
  }
}
