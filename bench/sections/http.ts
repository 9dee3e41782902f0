// The side-by-side table: each configuration's peak throughput (best of interleaved rounds), the throughput ratios the
// targets read (measured in pairs), then each configuration's latency at a fixed rate of half the bare proxy's peak,
// each run paired with a bare-proxy run next to it (the pair with the configuration's lowest p99 counts).
import { assertClean, disturbed, load, lowerP99, morePerSecond, steadyLoad, type LoadFigures, type LoadRun } from '../load.js';
import type { Timing } from '../options.js';
import type { HttpResults } from '../results.js';
import type { HttpConfig } from '../world.js';
import { pairedRatios } from './paired-ratios.js';

const fmt = (n: number): string => Math.round(n).toLocaleString('en-US');

type Log = (line: string) => void;
type Describe = (figures: LoadFigures) => string;

/** One run of a configuration (made again if disturbed), logged with its round. */
async function measure(config: HttpConfig, round: number, run: LoadRun, better: Better, describe: Describe, log: Log): Promise<LoadFigures> {
  const figures = await steadyLoad(config.label, config.target, { ...run, serverGroups: config.serverGroups }, better);
  log(`round ${round}: ${config.label}: ${describe(figures)}${disturbed(figures)
    ? ` (disturbed: steal ${figures.stealPercent?.toFixed(0)} %, other processes ${figures.otherCpuPercent?.toFixed(0)} %)` : ''}`);
  return figures;
}

type Better = (a: LoadFigures, b: LoadFigures) => boolean;

const bestOf = (runs: LoadFigures[], better: Better): LoadFigures => runs.reduce((kept, figures) => (better(figures, kept) ? figures : kept));

/** Runs every configuration `rounds` times in turn; every run's figures per configuration. */
async function interleaved(configs: HttpConfig[], rounds: number, run: LoadRun, better: Better, describe: Describe,
  log: Log): Promise<Map<HttpConfig['id'], LoadFigures[]>> {
  const runs = new Map<HttpConfig['id'], LoadFigures[]>(configs.map((config) => [config.id, []]));
  for (let round = 1; round <= rounds; round++) {
    for (const config of configs) runs.get(config.id)?.push(await measure(config, round, run, better, describe, log));
  }
  return runs;
}

interface Pair {
  figures: LoadFigures;
  bare: LoadFigures;
}

/**
 * The latency rounds. The VM's speed drifts over a minute more than a path's cost moves a p99, so each configuration's
 * run is paired with a bare-proxy run right next to it (before it in odd rounds, after it in even ones), and the p99 it
 * adds is read against that run. Per configuration the pair with its lowest p99 counts; the bare proxy's own row keeps
 * its lowest p99 of all its runs.
 */
async function pairedWithBare(configs: HttpConfig[], bare: HttpConfig, rounds: number, run: LoadRun, describe: Describe,
  log: Log): Promise<{ bareRuns: LoadFigures[]; pairs: Map<HttpConfig['id'], Pair> }> {
  const pairs = new Map<HttpConfig['id'], Pair>();
  const bareRuns: LoadFigures[] = [];
  const measureBare = async (round: number): Promise<LoadFigures> => {
    const figures = await measure(bare, round, run, lowerP99, describe, log);
    bareRuns.push(figures);
    return figures;
  };
  for (let round = 1; round <= rounds; round++) {
    for (const config of configs.filter((c) => c.id !== bare.id)) {
      const bareFirst = round % 2 === 1;
      const bareBefore = bareFirst ? await measureBare(round) : undefined;
      const figures = await measure(config, round, run, lowerP99, describe, log);
      const pair = { figures, bare: bareBefore ?? await measureBare(round) };
      const previous = pairs.get(config.id);
      if (previous === undefined || lowerP99(pair.figures, previous.figures)) pairs.set(config.id, pair);
    }
  }
  return { bareRuns, pairs };
}

export async function compareConfigs(configs: HttpConfig[], upstream: HttpResults['upstream'], timing: Timing, log: Log): Promise<HttpResults> {
  for (const config of configs) assertClean(config.label, await load(config.target, { connections: timing.peakConnections, seconds: timing.warmupSeconds }));
  const bareConfig = configs.find((config) => config.id === 'bare');
  if (bareConfig === undefined || configs.length < 2) throw new Error('the comparison needs the bare proxy and a configuration beside it');
  const peakRuns = await interleaved(configs, timing.peakRounds, { connections: timing.peakConnections, seconds: timing.peakSeconds },
    morePerSecond, (f) => `peak ${fmt(f.rps)} req/s, ${f.cpuMicrosPerRequest?.toFixed(1) ?? '—'} µs CPU per request`, log);
  const ratios = await pairedRatios(configs, timing, log);
  const bareRuns = peakRuns.get('bare') as LoadFigures[];
  const rate = bestOf(bareRuns, morePerSecond).rps / 2;
  // A run at the rate first, not counted: in the run of 2026-12-07 22:01 each process's first run at the rate after
  // the peak phases had its highest p99 (the bare proxy 7.78 ms, then 0.95-1.75; bearer 8.59, then 1.71). It settles
  // the bare proxy's, which every latency run is paired with; not the gateway's (22:56), which the lowest p99 leaves out.
  for (const config of configs) await load(config.target, { connections: timing.rateConnections, seconds: timing.warmupSeconds, rate });
  const atRate = await pairedWithBare(configs, bareConfig, timing.rateRounds, { connections: timing.rateConnections, seconds: timing.rateSeconds, rate },
    (f) => `at ${fmt(rate)} req/s: p50 ${f.p50.toFixed(2)} ms, p99 ${f.p99.toFixed(2)} ms (${fmt(f.rps)} req/s)`, log);
  return {
    upstream, rate, ratios,
    bareRuns: { peakRps: bareRuns.map((f) => f.rps), p99AtRate: atRate.bareRuns.map((f) => f.p99) },
    rows: configs.map((config) => {
      const pair = atRate.pairs.get(config.id);
      const peak = bestOf(peakRuns.get(config.id) as LoadFigures[], morePerSecond);
      return pair === undefined
        ? { id: config.id, label: config.label, peak, atRate: bestOf(atRate.bareRuns, lowerP99) }
        : { id: config.id, label: config.label, peak, atRate: pair.figures, pairedBare: pair.bare };
    }),
  };
}
