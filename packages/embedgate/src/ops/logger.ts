// JSON logs with pino; callers pass only safe fields (never headers, query strings, tokens or cookies). A process of
// `embedgate serve --workers N` adds its pid, so that lines can be told apart.
import cluster from 'node:cluster';
import { pino, type DestinationStream, type Logger } from 'pino';

export function createLogger(level: string, destination?: DestinationStream): Logger {
  const base = cluster.isWorker ? { service: 'embedgate', pid: process.pid } : { service: 'embedgate' };
  return pino({ level, base, timestamp: pino.stdTimeFunctions.isoTime }, destination);
}
