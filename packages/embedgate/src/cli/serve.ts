// `embedgate serve`: runs the gateway until SIGINT/SIGTERM, in one process or, with --workers, one per core.
import cluster from 'node:cluster';
import { availableParallelism } from 'node:os';
import { ConfigError, loadConfigFile } from '../config/load.js';
import { Gateway } from '../gateway/server.js';
import { keepHeapCompact } from '../ops/heap.js';
import { sessionStoreOf } from '../sessions/open.js';
import { parseConfigOption, usageError } from './args.js';
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

/** The number of worker processes --workers asks for, or undefined when the value is not one. */
function workerCount(value: string | undefined): number | undefined {
  const count = value === undefined ? 1 : value === 'auto' ? availableParallelism() : Number(value);
  return Number.isInteger(count) && count >= 1 && count <= MAX_WORKERS ? count : undefined;
}

export async function serveCommand(args: string[]): Promise<number> {
  const options = parseConfigOption(args, USAGE, { workers: 'w' });
  if (!options.ok) return options.exitCode;
  const workers = workerCount(options.values.workers);
  if (workers === undefined) return usageError(`--workers must be a whole number from 1 to ${MAX_WORKERS}, or auto`, USAGE).exitCode;
  try {
    const config = loadConfigFile(options.config);
    if (workers > 1 && cluster.isPrimary) {
      if (sessionStoreOf(config) === 'memory:') {
        return reportConfigError(options.config, new ConfigError(['sessions.store: memory: cannot be shared by --workers; use sqlite:PATH or redis://']));
      }
      return await runPrimary(config, workers, SHUTDOWN_DRAIN_MS);
    }
    keepHeapCompact();
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
