// `embedgate serve`: runs the gateway until SIGINT/SIGTERM.
import { ConfigError, loadConfigFile } from '../config/load.js';
import { Gateway } from '../gateway/server.js';
import { parseConfigOption } from './args.js';
import { reportConfigError } from './check-config.js';
import { runUntilSignal } from './run-service.js';

const USAGE = `Usage: embedgate serve --config FILE

Runs the gateway described by FILE (YAML; \${ENV} references are expanded).
Exit codes: 2 for an invalid configuration, 1 when the gateway cannot start (e.g. the port is taken).`;

const SHUTDOWN_DRAIN_MS = 10_000;

export async function serveCommand(args: string[]): Promise<number> {
  const options = parseConfigOption(args, USAGE);
  if (!options.ok) return options.exitCode;
  let gateway: Gateway;
  try {
    gateway = await Gateway.create(loadConfigFile(options.config));
  } catch (error) {
    if (error instanceof ConfigError) return reportConfigError(options.config, error);
    process.stderr.write(`embedgate: cannot start: ${(error as Error).message}\n`);
    return 1;
  }
  return runUntilSignal(gateway, SHUTDOWN_DRAIN_MS);
}
