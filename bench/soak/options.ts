// Command-line options of `npm run soak`: how long the run lasts, and optionally a fixed rate instead of 60 % of peak.
import { parseArgs } from 'node:util';

export const MIN_MINUTES = 1;
export const MAX_MINUTES = 240;
export const DEFAULT_MINUTES = 10;
/** Share of the measured peak the soak runs at. */
export const PEAK_SHARE = 0.6;

export interface SoakOptions {
  minutes: number;
  /** Requests per second; undefined: PEAK_SHARE of the gateway's peak on the mix, measured first. */
  rate: number | undefined;
}

export const USAGE = `Usage: npm run soak -- [--minutes N] [--rate R]

Runs the gateway (embedgate serve, Redis sessions, the embedded IdP) under mixed traffic at a fixed rate for N
minutes (${MIN_MINUTES}..${MAX_MINUTES}, default ${DEFAULT_MINUTES}) on 127.0.0.1, samples it every 30 s and ends with a verdict (exit 0 PASS, 1 FAIL).
  --minutes N   length of the soak, after a ~15 s set-up and peak measurement
  --rate R      requests per second (default: ${PEAK_SHARE * 100} % of the gateway's peak on the same mix, measured for 10 s)`;

/** Parsed options, or undefined after --help. Throws on bad usage. */
export function parseSoakOptions(args: string[]): SoakOptions | undefined {
  const { values } = parseArgs({
    args,
    options: { minutes: { type: 'string' }, rate: { type: 'string' }, help: { type: 'boolean', short: 'h' } },
  });
  if (values.help === true) {
    console.log(USAGE);
    return undefined;
  }
  const minutes = values.minutes === undefined ? DEFAULT_MINUTES : Number(values.minutes);
  if (!Number.isInteger(minutes) || minutes < MIN_MINUTES || minutes > MAX_MINUTES) {
    throw new Error(`--minutes must be a whole number from ${MIN_MINUTES} to ${MAX_MINUTES}`);
  }
  const rate = values.rate === undefined ? undefined : Number(values.rate);
  if (rate !== undefined && (!Number.isFinite(rate) || rate < 1 || rate > 100_000)) throw new Error('--rate must be a number from 1 to 100000');
  return { minutes, rate };
}
