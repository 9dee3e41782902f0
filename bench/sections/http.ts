// The side-by-side table: each configuration's peak throughput (best of interleaved rounds), then its latency at a
// fixed rate of half the bare proxy's peak (the round with the lowest p99 of interleaved rounds).
import { assertClean, disturbed, load, lowerP99, morePerSecond, steadyLoad, type LoadFigures, type LoadRun } from '../load.js';
import type { Timing } from '../options.js';
import type { HttpResults } from '../results.js';
import type { HttpConfig } from '../world.js';

const fmt = (n: number): string => Math.round(n).toLocaleString('en-US');

/** Runs every configuration `rounds` times in turn; keeps, per configuration, the run that `better` prefers. */
async function interleaved(configs: HttpConfig[], rounds: number, run: LoadRun, better: (a: LoadFigures, b: LoadFigures) => boolean,
  describe: (figures: LoadFigures) => string, log: (line: string) => void): Promise<Map<HttpConfig['id'], LoadFigures>> {
  const kept = new Map<HttpConfig['id'], LoadFigures>();
  for (let round = 1; round <= rounds; round++) {
    for (const config of configs) {
      const figures = await steadyLoad(config.label, config.target, { ...run, serverGroups: config.serverGroups }, better);
      log(`round ${round}: ${config.label}: ${describe(figures)}${disturbed(figures)
        ? ` (disturbed: steal ${figures.stealPercent?.toFixed(0)} %, other processes ${figures.otherCpuPercent?.toFixed(0)} %)` : ''}`);
      const previous = kept.get(config.id);
      if (previous === undefined || better(figures, previous)) kept.set(config.id, figures);
    }
  }
  return kept;
}

export async function compareConfigs(configs: HttpConfig[], upstream: HttpResults['upstream'], timing: Timing, log: (line: string) => void): Promise<HttpResults> {
  for (const config of configs) assertClean(config.label, await load(config.target, { connections: timing.peakConnections, seconds: timing.warmupSeconds }));
  const peaks = await interleaved(configs, timing.peakRounds, { connections: timing.peakConnections, seconds: timing.peakSeconds },
    morePerSecond, (f) => `peak ${fmt(f.rps)} req/s, ${f.cpuMicrosPerRequest?.toFixed(1) ?? '—'} µs CPU per request`, log);
  const bare = peaks.get('bare');
  if (bare === undefined) throw new Error('the comparison needs the bare proxy');
  const rate = bare.rps / 2;
  const atRate = await interleaved(configs, timing.rateRounds, { connections: timing.rateConnections, seconds: timing.rateSeconds, rate },
    lowerP99, (f) => `at ${fmt(rate)} req/s: p50 ${f.p50.toFixed(2)} ms, p99 ${f.p99.toFixed(2)} ms (${fmt(f.rps)} req/s)`, log);
  return {
    upstream, rate,
    rows: configs.map((config) => ({ id: config.id, label: config.label, peak: peaks.get(config.id) as LoadFigures, atRate: atRate.get(config.id) as LoadFigures })),
  };
}
