// Command-line options of `npm run bench`: which sections run, and how long each phase lasts.
import { parseArgs } from 'node:util';

export const SECTIONS = ['http', 'tokens', 'routes', 'memory', 'workers', 'embed', 'bridge', 'profile'] as const;
export type Section = (typeof SECTIONS)[number];

export interface Timing {
  /** Warm-up before each configuration's first measurement. */
  warmupSeconds: number;
  /** Length of one peak-throughput measurement, and how many interleaved rounds (the best counts). */
  peakSeconds: number;
  peakRounds: number;
  peakConnections: number;
  /** The paired throughput ratios: A B B A blocks of runs this long, and how many blocks (the median counts). */
  pairSeconds: number;
  pairBlocks: number;
  /** Length of one fixed-rate latency measurement, how many interleaved rounds (the lowest p99 counts), connections. */
  rateSeconds: number;
  rateRounds: number;
  rateConnections: number;
  /** Time given to each in-process micro-benchmark. */
  microMs: number;
  /** Visits per kind in the Chromium embed timing. */
  embedRuns: number;
  /** Measured runs per path in the bridge timing (after the warm-up). */
  bridgeRuns: number;
  /** Sessions put into the memory store. */
  sessions: number;
}

export interface Options {
  sections: Set<Section>;
  quick: boolean;
  timing: Timing;
}

export const USAGE = `Usage: npm run bench -- [--quick] [--only LIST] [--skip LIST] [--profile]

Sections (comma-separated LIST): ${SECTIONS.join(', ')}.
  http     the side-by-side table: upstream, bare Node proxy, nginx (when installed), embedgate (bearer, cookie,
           worker-mode handle, Dash callback), nginx → embedgate (auth_request, when installed), Express stack: peak
           throughput and latency at half the bare proxy's peak
  tokens   token verification per token, in process
  routes   policy with 1 and 1,000 routes: gateway throughput and in-process evaluation time
  memory   gateway RSS at 1,000 connections; memory per stored session (100,000 sessions)
  workers  embedgate serve --workers 1 vs 2 (SQLite sessions), when the CLI supports it
  embed    script sizes (min+gzip) and the embed handshake in headless Chromium, Firefox and WebKit
  bridge   host ↔ app bridge in headless Chromium: host setProps → the published output's event at the host,
           beside the same callback triggered by a click inside the frame
  profile  (only with --profile or --only profile) CPU profile of the gateway under bearer load: top self time
--quick    shorter phases (about a third of the time); figures are rougher
Writes bench/results/latest.json and docs/performance-chart.svg (when http ran).`;

const FULL: Timing = {
  warmupSeconds: 2, peakSeconds: 4, peakRounds: 3, peakConnections: 50, pairSeconds: 2, pairBlocks: 3, rateSeconds: 5, rateRounds: 2, rateConnections: 20,
  microMs: 1500, embedRuns: 20, bridgeRuns: 20, sessions: 100_000,
};
const QUICK: Timing = {
  warmupSeconds: 1, peakSeconds: 2, peakRounds: 1, peakConnections: 50, pairSeconds: 1, pairBlocks: 1, rateSeconds: 2, rateRounds: 1, rateConnections: 20,
  microMs: 400, embedRuns: 5, bridgeRuns: 10, sessions: 100_000,
};

function sectionList(value: string | undefined, flag: string): Section[] | undefined {
  if (value === undefined) return undefined;
  const names = value.split(',').map((name) => name.trim()).filter((name) => name !== '');
  const unknown = names.filter((name) => !(SECTIONS as readonly string[]).includes(name));
  if (unknown.length > 0) throw new Error(`${flag}: unknown section(s) ${unknown.join(', ')}; known: ${SECTIONS.join(', ')}`);
  return names as Section[];
}

/** Parses argv; throws with a message for bad usage, returns undefined after printing --help. */
export function parseOptions(argv: string[]): Options | undefined {
  const { values } = parseArgs({
    args: argv, strict: true,
    options: { quick: { type: 'boolean' }, only: { type: 'string' }, skip: { type: 'string' }, profile: { type: 'boolean' }, help: { type: 'boolean', short: 'h' } },
  });
  if (values.help === true) {
    console.log(USAGE);
    return undefined;
  }
  const only = sectionList(values.only, '--only');
  const skip = new Set(sectionList(values.skip, '--skip') ?? []);
  const chosen = new Set(only ?? SECTIONS.filter((section) => section !== 'profile'));
  if (values.profile === true) chosen.add('profile');
  for (const section of skip) chosen.delete(section);
  const quick = values.quick === true;
  return { sections: chosen, quick, timing: quick ? QUICK : FULL };
}
