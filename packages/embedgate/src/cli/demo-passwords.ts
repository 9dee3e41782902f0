// The demo users' passwords: DEMO_<USER>_PASSWORD from the environment, else the ones the demo made on its first
// run (kept in the data directory, readable by the owner only), else new random ones.
import { randomBytes } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

export const DEMO_USERS = ['admin', 'analyst', 'guest'] as const;

export const passwordVariable = (user: string): string => `DEMO_${user.toUpperCase()}_PASSWORD`;

/** Fills DEMO_<USER>_PASSWORD in `env` for each demo user and returns the passwords, by user. */
export function demoPasswords(dataDir: string, env: NodeJS.ProcessEnv): Record<string, string> {
  const file = join(dataDir, 'demo-passwords.json');
  let kept: Record<string, unknown> = {};
  try {
    kept = JSON.parse(readFileSync(file, 'utf8')) as Record<string, unknown>;
  } catch {
    // first run, or an unreadable file: new passwords
  }
  const passwords: Record<string, string> = {};
  for (const user of DEMO_USERS) {
    const fromEnv = env[passwordVariable(user)];
    const stored = kept[user];
    passwords[user] = fromEnv !== undefined && fromEnv !== '' ? fromEnv
      : typeof stored === 'string' && stored !== '' ? stored
        : randomBytes(12).toString('base64url');
    env[passwordVariable(user)] = passwords[user];
  }
  writeFileSync(file, `${JSON.stringify(passwords, null, 2)}\n`, { mode: 0o600 });
  return passwords;
}
