// `embedgate users`: manages the identity provider's users in its store (add, list, set-roles, remove, hash-password).
import { parseArgs } from 'node:util';
import { ConfigError } from '../config/load.js';
import { loadIdpConfigFile } from '../idp/config.js';
import { hashPassword } from '../idp/passwords.js';
import { openIdpStore } from '../idp/store/open.js';
import type { IdpStore } from '../idp/store/types.js';
import { reportConfigError } from './check-config.js';
import { readSecret } from './secret-input.js';

const USAGE = `Usage:
  embedgate users list --config FILE
  embedgate users add USERNAME --config FILE [--email E] [--name N] [--roles a,b]
  embedgate users set-roles USERNAME --roles a,b --config FILE
  embedgate users remove USERNAME --config FILE
  embedgate users hash-password

The password for "add" and "hash-password" is read from EMBEDGATE_PASSWORD, else from stdin
(a hidden prompt on a terminal). It is stored only as an scrypt hash. "hash-password" prints a hash
for the password_hash field of a user in the config file.
Users listed in the config file are rewritten from it at every IdP start; manage the others here.`;

const OPTIONS = {
  config: { type: 'string', short: 'c' },
  email: { type: 'string' },
  name: { type: 'string' },
  roles: { type: 'string' },
  help: { type: 'boolean', short: 'h' },
} as const;

const USERNAME = /^[A-Za-z0-9._@-]{1,128}$/;

function usageError(message: string): number {
  process.stderr.write(`embedgate: ${message}\n\n${USAGE}\n`);
  return 2;
}

function parseRoles(value: string | undefined): string[] {
  return (value ?? '').split(',').map((role) => role.trim()).filter((role) => role !== '');
}

async function newPasswordHash(): Promise<string | undefined> {
  const password = await readSecret('EMBEDGATE_PASSWORD', 'Password: ');
  return password === '' ? undefined : hashPassword(password);
}

type Values = { email?: string | undefined; name?: string | undefined; roles?: string | undefined };

async function runAction(store: IdpStore, action: string, username: string | undefined, values: Values): Promise<number> {
  switch (action) {
    case 'list': {
      const users = await store.listUsers();
      for (const user of users) process.stdout.write(`${user.username}\t${user.email ?? '-'}\t${user.roles.join(',') || '-'}\n`);
      if (users.length === 0) process.stderr.write('no users\n');
      return 0;
    }
    case 'add': {
      if (await store.getUser(username as string) !== undefined) {
        process.stderr.write(`embedgate: user ${username} already exists (use set-roles, or remove it first)\n`);
        return 1;
      }
      const passwordHash = await newPasswordHash();
      if (passwordHash === undefined) return usageError('a password is required (EMBEDGATE_PASSWORD or stdin)');
      await store.putUser({ username: username as string, passwordHash, email: values.email, name: values.name, roles: parseRoles(values.roles) });
      process.stdout.write(`added ${username}\n`);
      return 0;
    }
    case 'set-roles':
      if (values.roles === undefined) return usageError('set-roles needs --roles a,b (or --roles "" for none)');
      if (!await store.setUserRoles(username as string, parseRoles(values.roles))) {
        process.stderr.write(`embedgate: no user ${username}\n`);
        return 1;
      }
      process.stdout.write(`roles of ${username}: ${parseRoles(values.roles).join(',') || '(none)'}\n`);
      return 0;
    default:
      if (!await store.removeUser(username as string)) {
        process.stderr.write(`embedgate: no user ${username}\n`);
        return 1;
      }
      process.stdout.write(`removed ${username}\n`);
      return 0;
  }
}

export async function usersCommand(args: string[]): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({ args, allowPositionals: true, options: OPTIONS });
  } catch (error) {
    return usageError((error as Error).message);
  }
  const { values, positionals } = parsed;
  if (values.help === true) {
    process.stdout.write(`${USAGE}\n`);
    return 0;
  }
  const [action, username, ...extra] = positionals;
  if (action === 'hash-password') {
    const hash = await newPasswordHash();
    if (hash === undefined) return usageError('a password is required (EMBEDGATE_PASSWORD or stdin)');
    process.stdout.write(`${hash}\n`);
    return 0;
  }
  if (action === undefined || !['list', 'add', 'set-roles', 'remove'].includes(action)) return usageError(`unknown action "${action ?? ''}"`);
  if (extra.length > 0) return usageError(`unexpected argument "${extra[0]}"`);
  if (action !== 'list' && (username === undefined || !USERNAME.test(username))) return usageError('a username (letters, digits and . _ @ -) is required');
  if (values.config === undefined) return usageError('--config FILE is required');
  let store: IdpStore;
  try {
    store = await openIdpStore(loadIdpConfigFile(values.config).store);
  } catch (error) {
    if (error instanceof ConfigError) return reportConfigError(values.config, error);
    process.stderr.write(`embedgate: ${(error as Error).message}\n`);
    return 1;
  }
  try {
    return await runAction(store, action, username, values);
  } finally {
    await store.close();
  }
}
