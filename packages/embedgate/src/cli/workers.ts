// `embedgate serve --workers N`: one gateway process per core behind one listening socket (node:cluster). The
// primary prepares what the workers share (assertion key, session store), starts them, restarts one that crashes
// while serving, and on SIGINT/SIGTERM lets every worker drain and stop.
// A worker that dies loses the requests it holds. With node:cluster's round-robin (the default on Linux, which spreads
// keep-alive connections evenly) it may also strand one more: a new connection the primary handed to it in the
// instant it died is never taken back and waits unanswered until the client gives up. NODE_CLUSTER_SCHED_POLICY=none
// avoids that (the workers accept from the shared socket) at the cost of an uneven spread.
import cluster, { type Worker } from 'node:cluster';
import type { GatewayConfig } from '../config/schema.js';
import { Gateway } from '../gateway/server.js';

/** More restarts than this within a minute means the workers cannot run: the primary gives up. */
const MAX_RESTARTS_PER_MINUTE = 5;

/**
 * Primary side. Creates the shared files once (a worker race on first start would make two assertion keys), forks
 * `count` workers, and returns the exit code: 0 after a clean shutdown, 1 when a worker cannot listen or keeps dying.
 */
export async function runPrimary(config: GatewayConfig, count: number, drainMs: number): Promise<number> {
  const prepared = await Gateway.create(config);
  await prepared.close();

  let stopping = false;
  let listening = 0;
  const restarts: number[] = [];
  let exitCode = 0;

  const fork = (): Worker => cluster.fork();
  const stopAll = (): void => {
    stopping = true;
    for (const worker of Object.values(cluster.workers ?? {})) worker?.process.kill('SIGTERM');
  };

  return new Promise<number>((resolve) => {
    cluster.on('listening', (worker) => {
      // Each worker's pid, when it starts serving (a replacement too): what an operator or a test signals.
      process.stdout.write(`embedgate: worker ${worker.process.pid} listening\n`);
      listening += 1;
      if (listening === count) process.stdout.write(`embedgate: ${count} workers serving on ${config.listen}\n`);
    });
    cluster.on('exit', (worker, code, signal) => {
      if (!stopping) {
        const now = Date.now();
        restarts.push(now);
        while (restarts.length > 0 && (restarts[0] as number) < now - 60_000) restarts.shift();
        const everListened = listening > 0;
        if (!everListened || restarts.length > MAX_RESTARTS_PER_MINUTE) {
          process.stderr.write(`embedgate: a worker stopped (${signal ?? `exit ${code}`}) ${everListened ? 'too often' : 'before serving'}; stopping\n`);
          exitCode = 1;
          stopAll();
        } else {
          process.stderr.write(`embedgate: worker ${worker.process.pid} stopped (${signal ?? `exit ${code}`}); starting another\n`);
          fork();
        }
      }
      if (Object.keys(cluster.workers ?? {}).length === 0 && stopping) resolve(exitCode);
    });
    const shutdown = (): void => {
      process.stdout.write(`embedgate: shutting down: workers finish requests in flight (at most ${drainMs / 1000} s)\n`);
      stopAll();
    };
    process.once('SIGINT', shutdown);
    process.once('SIGTERM', shutdown);
    for (let i = 0; i < count; i += 1) fork();
  });
}
