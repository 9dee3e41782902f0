// JSON logs with pino; callers pass only safe fields (never headers, query strings, tokens or cookies). Lines go to
// stdout without blocking the event loop (lines written while a write is in flight go out together with the next one);
// whatever is pending is flushed when the process exits. A process of `embedgate serve --workers N` adds its pid.
import cluster from 'node:cluster';
import { pino, type DestinationStream, type Logger } from 'pino';

export function createLogger(level: string, destination?: DestinationStream): Logger {
  const base = cluster.isWorker ? { service: 'embedgate', pid: process.pid } : { service: 'embedgate' };
  return pino({ level, base, timestamp: pino.stdTimeFunctions.isoTime }, destination ?? stdoutDestination());
}

function stdoutDestination(): DestinationStream {
  const stream = pino.destination({ dest: 1, sync: false });
  process.once('exit', () => stream.flushSync());
  return stream;
}
