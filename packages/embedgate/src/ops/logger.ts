// JSON logs with pino; callers pass only safe fields (never headers, query strings, tokens or cookies). Lines go to
// stdout without blocking the event loop, in batches of up to 4 KB and at least once a second; whatever is pending
// is flushed when the process exits. A process of `embedgate serve --workers N` adds its pid.
import cluster from 'node:cluster';
import { pino, type DestinationStream, type Logger } from 'pino';

export function createLogger(level: string, destination?: DestinationStream): Logger {
  const base = cluster.isWorker ? { service: 'embedgate', pid: process.pid } : { service: 'embedgate' };
  return pino({ level, base, timestamp: isoTimeOncePerMillisecond() }, destination ?? stdoutDestination());
}

/** pino's ISO timestamp, formatted once per millisecond rather than once per line (every request logs a line). */
function isoTimeOncePerMillisecond(): () => string {
  let formattedAt = -1;
  let formatted = '';
  return () => {
    const now = Date.now();
    if (now !== formattedAt) {
      formattedAt = now;
      formatted = `,"time":"${new Date(now).toISOString()}"`;
    }
    return formatted;
  };
}

function stdoutDestination(): DestinationStream {
  const stream = pino.destination({ dest: 1, sync: false, minLength: 4096, periodicFlush: 1000 });
  process.once('exit', () => stream.flushSync());
  return stream;
}
