// JSON logs with pino; callers pass only safe fields (never headers, query strings, tokens or cookies). Lines go to
// stdout without blocking the event loop: those of one turn of the event loop handed over together, written in
// batches of 4 KB and at least once a second; whatever is pending is flushed when the process exits. A process of
// `embedgate serve --workers N` adds its pid.
import cluster from 'node:cluster';
import { pino, type DestinationStream, type Logger } from 'pino';
import { LineBatcher } from './line-batcher.js';

export function createLogger(level: string, destination?: DestinationStream): Logger {
  const base = cluster.isWorker ? { service: 'embedgate', pid: process.pid } : { service: 'embedgate' };
  return pino({ level, base, timestamp: isoTimeOncePerSecond() }, destination ?? stdoutDestination());
}

/**
 * pino's ISO timestamp (`"time":"2026-11-22T13:55:01.042Z"`), with the part up to the second formatted once per second
 * rather than once per line: every request logs a line, and a full ISO formatting costs more than the rest of it.
 */
export function isoTimeOncePerSecond(clock: () => number = Date.now): () => string {
  let second = -1;
  let prefix = '';
  return () => {
    const now = clock();
    const ms = now % 1000;
    if (now - ms !== second) {
      second = now - ms;
      prefix = `,"time":"${new Date(second).toISOString().slice(0, 20)}`;
    }
    return `${prefix}${ms < 10 ? '00' : ms < 100 ? '0' : ''}${ms}Z"`;
  };
}

/** Bytes of lines sonic-boom gathers before it writes (and characters the batcher gathers before it hands over). */
const BATCH = 4096;

function stdoutDestination(): DestinationStream {
  const stream = new LineBatcher(pino.destination({ dest: 1, sync: false, minLength: BATCH, periodicFlush: 1000 }), BATCH);
  process.once('exit', () => stream.flushSync());
  return stream;
}
