// `embedgate idp`: runs the embedded identity provider; `embedgate idp rotate-keys` adds a new signing key.
import { parseArgs } from 'node:util';
import { ConfigError } from '../config/load.js';
import { loadIdpConfigFile } from '../idp/config.js';
import { IdentityProvider } from '../idp/server.js';
import { rotateSigningKey } from '../idp/signing-keys.js';
import { openIdpStore } from '../idp/store/open.js';
import { usageError } from './args.js';
import { reportConfigError } from './check-config.js';
import { runUntilSignal } from './run-service.js';

const USAGE = `Usage: embedgate idp --config FILE
       embedgate idp rotate-keys --config FILE

Runs the embedded OpenID Provider described by the "idp:" section of FILE.
rotate-keys adds a new signing key to the store: a running IdP starts signing with it within
idp.key_check_seconds, and keeps publishing the previous key until the tokens it signed have expired.
Exit codes: 2 for an invalid configuration, 1 when the IdP cannot start.`;

const SHUTDOWN_DRAIN_MS = 5000;

function parse(args: string[]): { ok: true; config: string; rotate: boolean } | { ok: false; exitCode: number } {
  let parsed;
  try {
    parsed = parseArgs({ args, allowPositionals: true, options: { config: { type: 'string', short: 'c' }, help: { type: 'boolean', short: 'h' } } });
  } catch (error) {
    return usageError((error as Error).message, USAGE);
  }
  const { values, positionals } = parsed;
  if (values.help === true) {
    process.stdout.write(`${USAGE}\n`);
    return { ok: false, exitCode: 0 };
  }
  const rotate = positionals[0] === 'rotate-keys';
  if (positionals.length > (rotate ? 1 : 0) || values.config === undefined) {
    return usageError(values.config === undefined ? '--config FILE is required' : `unexpected argument "${positionals.at(-1)}"`, USAGE);
  }
  return { ok: true, config: values.config, rotate };
}

async function rotateKeys(configFile: string): Promise<number> {
  const config = loadIdpConfigFile(configFile);
  const store = await openIdpStore(config.store);
  try {
    const kid = await rotateSigningKey(store);
    process.stdout.write(`new signing key ${kid}; a running IdP picks it up within ${config.key_check_seconds} s\n`);
    return 0;
  } finally {
    await store.close();
  }
}

async function run(configFile: string): Promise<number> {
  return runUntilSignal(await IdentityProvider.create(loadIdpConfigFile(configFile)), SHUTDOWN_DRAIN_MS);
}

export async function idpCommand(args: string[]): Promise<number> {
  const options = parse(args);
  if (!options.ok) return options.exitCode;
  try {
    return await (options.rotate ? rotateKeys(options.config) : run(options.config));
  } catch (error) {
    if (error instanceof ConfigError) return reportConfigError(options.config, error);
    process.stderr.write(`embedgate: ${(error as Error).message}\n`);
    return 1;
  }
}
