// JSON logs with pino; callers pass only safe fields (never headers, query strings, tokens or cookies).
import { pino, type DestinationStream, type Logger } from 'pino';

export function createLogger(level: string, destination?: DestinationStream): Logger {
  return pino({ level, base: { service: 'embedgate' }, timestamp: pino.stdTimeFunctions.isoTime }, destination);
}
