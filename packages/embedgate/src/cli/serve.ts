// `embedgate serve`: runs the gateway until SIGINT/SIGTERM, in one process or, with --workers, one per core.
import cluster from 'node:cluster';
import { availableParallelism } from 'node:os';
import { parseArgs } from 'node:util';
import { ConfigError, loadConfigFile } from '../config/load.js';
import { Gateway } from '../gateway/server.js';
import { sessionStoreOf } from '../sessions/open.js';
import { reportConfigError } from './check-config.js';
import { runUntilSignal } from './run-service.js';
import { runPrimary } from './workers.js';

const USAGE = `Usage: embedgate serve --config FILE [--workers N|auto]

Runs the gateway described by FILE (YAML; \${ENV} references are expanded).
--workers N runs N gateway processes sharing the listening socket ("auto": one per core); their sessions must be
in a store they share (sessions.store sqlite:PATH, the default, or redis://).
Exit codes: 2 for an invalid configuration or usage, 1 when the gateway cannot start (e.g. the port is taken).`;

const SHUTDOWN_DRAIN_MS = 10_000;
const MAX_WORKERS = 64;

type Options = { ok: true; config: string; workers: number } | { ok: false; exitCode: number };

function usageError(message: string): Options {
  process.stderr.write(`embedgate: ${message}\n\n${USAGE}\n`);
  return { ok: false, exitCode: 2 };
}

function parseOptions(args: string[]): Options {
  let values: { config?: string | undefined; workers?: string | undefined; help?: boolean | undefined };
  try {
    ({ values } = parseArgs({ args, strict: true, options: {
      config: { type: 'string', short: 'c' }, workers: { type: 'string', short: 'w' }, help: { type: 'boolean', short: 'h' },
    } }));
  } catch (error) {
    return usageError((error as Error).message);
  }
  if (values.help === true) {
    process.stdout.write(`${USAGE}\n`);
    return { ok: false, exitCode: 0 };
  }
  if (values.config === undefined) return usageError('--config FILE is required');
  const workers = values.workers === undefined ? 1 : values.workers === 'auto' ? availableParallelism() : Number(values.workers);
  if (!Number.isInteger(workers) || workers < 1 || workers > MAX_WORKERS) return usageError(`--workers must be a whole number from 1 to ${MAX_WORKERS}, or auto`);
  return { ok: true, config: values.config, workers };
}

export async function serveCommand(args: string[]): Promise<number> {
  const options = parseOptions(args);
  if (!options.ok) return options.exitCode;
  try {
    const config = loadConfigFile(options.config);
    if (options.workers > 1 && cluster.isPrimary) {
      if (sessionStoreOf(config) === 'memory:') {
        return reportConfigError(options.config, new ConfigError(['sessions.store: memory: cannot be shared by --workers; use sqlite:PATH or redis://']));
      }
      return await runPrimary(config, options.workers, SHUTDOWN_DRAIN_MS);
    }
    const code = await runUntilSignal(await Gateway.create(config), SHUTDOWN_DRAIN_MS);
    // A worker's channel to its primary would keep it alive once the gateway has stopped.
    if (cluster.isWorker) process.disconnect();
    return code;
  } catch (error) {
    if (error instanceof ConfigError) return reportConfigError(options.config, error);
    process.stderr.write(`embedgate: cannot start: ${(error as Error).message}\n`);
    return 1;
  }
}
