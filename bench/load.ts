// HTTP load with autocannon: throughput at a fixed connection count, or latency at a fixed overall rate.
import autocannon from 'autocannon';
import { cpuSnapshot, disturbanceBetween, groupCpuSeconds, waitUntilQuiet } from './machine.js';
import { quantile } from './stats.js';

export interface Target {
  url: string;
  method?: 'GET' | 'POST';
  headers?: Record<string, string>;
  body?: string;
}

export interface LoadRun {
  connections: number;
  seconds: number;
  /** Requests per second over all connections (autocannon overallRate); unset: as fast as the server answers. */
  rate?: number;
  /** Called every 250 ms while the load runs (e.g. to sample memory). */
  onTick?: () => void;
  /** Process groups of the server(s) under load, whose CPU time per request the figures give. */
  serverGroups?: number[];
}

export interface LoadFigures {
  /** Responses per second over the run. */
  rps: number;
  /** Latency percentiles in ms, from every response's own timing (autocannon's histogram keeps whole ms only). */
  p50: number;
  p99: number;
  responses: number;
  /** Socket errors and timeouts, and responses other than 2xx: either means the figure is not to be trusted. */
  errors: number;
  non2xx: number;
  /** The first status other than 2xx, if any (e.g. 401 for a token the server refused). */
  non2xxStatus: number | undefined;
  /** % of all CPU time during the run taken by the hypervisor, and used by processes not of the bench (undefined without /proc). */
  stealPercent: number | undefined;
  otherCpuPercent: number | undefined;
  /** CPU time the server's processes used per response, in µs (user + system), when LoadRun.serverGroups was given. */
  cpuMicrosPerRequest: number | undefined;
}

/**
 * autocannon's overallRate lets each connection send its quota for the second back to back, then wait for the next
 * second: one burst per second. A fixed rate is therefore split over this many autocannon instances started evenly
 * across the first second, so that the load comes in this many smaller bursts per second.
 */
export const RATE_INSTANCES = 10;

type OnResponse = (statusCode: number, responseTime: number) => void;

function autocannonRun(target: Target, connections: number, seconds: number, rate: number | undefined, onResponse: OnResponse): Promise<autocannon.Result> {
  return new Promise((resolve, reject) => {
    const instance = autocannon({
      url: target.url,
      method: target.method ?? 'GET',
      ...(target.headers === undefined ? {} : { headers: target.headers }),
      ...(target.body === undefined ? {} : { body: target.body }),
      connections,
      duration: seconds,
      timeout: 10,
      ...(rate === undefined ? {} : { overallRate: Math.max(1, Math.round(rate)) }),
    }, (error: unknown, result) => (error ? reject(error as Error) : resolve(result)));
    instance.on('response', (_client, statusCode, _bytes, responseTime) => onResponse(statusCode, responseTime));
  });
}

/** Throws when a run had errors or non-2xx answers: its figures would measure a failure path. */
export function assertClean(what: string, figures: LoadFigures): void {
  if (figures.responses === 0) throw new Error(`${what}: no answer at all during the run`);
  if (figures.non2xx > 0) throw new Error(`${what}: ${figures.non2xx} of ${figures.responses} answers were ${figures.non2xxStatus} (expected 200)`);
  if (figures.errors > 0) throw new Error(`${what}: ${figures.errors} socket errors or timeouts`);
}

export async function load(target: Target, run: LoadRun): Promise<LoadFigures> {
  const latencies: number[] = [];
  let non2xx = 0;
  let non2xxStatus: number | undefined;
  const onResponse: OnResponse = (statusCode, responseTime) => {
    if (statusCode >= 200 && statusCode < 300) latencies.push(responseTime);
    else {
      non2xx++;
      non2xxStatus ??= statusCode;
    }
  };
  const ticker = run.onTick === undefined ? undefined : setInterval(run.onTick, 250);
  const before = cpuSnapshot();
  const serverCpuBefore = run.serverGroups === undefined ? undefined : groupCpuSeconds(run.serverGroups);
  try {
    const { rate } = run;
    const results = rate === undefined
      ? [await autocannonRun(target, run.connections, run.seconds, undefined, onResponse)]
      : await Promise.all(Array.from({ length: RATE_INSTANCES }, async (_, i) => {
        await new Promise((resolve) => setTimeout(resolve, (i * 1000) / RATE_INSTANCES));
        return autocannonRun(target, Math.max(1, Math.round(run.connections / RATE_INSTANCES)), run.seconds, rate / RATE_INSTANCES, onResponse);
      }));
    const disturbance = disturbanceBetween(before, cpuSnapshot());
    const serverCpuAfter = run.serverGroups === undefined ? undefined : groupCpuSeconds(run.serverGroups);
    const responses = latencies.length + non2xx;
    latencies.sort((a, b) => a - b);
    return {
      rps: responses / run.seconds,
      p50: quantile(latencies, 0.5, true),
      p99: quantile(latencies, 0.99, true),
      responses,
      errors: results.reduce((sum, result) => sum + result.errors + result.timeouts, 0),
      non2xx,
      non2xxStatus,
      stealPercent: disturbance?.stealPercent,
      otherCpuPercent: disturbance?.otherCpuPercent,
      cpuMicrosPerRequest: serverCpuBefore === undefined || serverCpuAfter === undefined || responses === 0
        ? undefined : ((serverCpuAfter - serverCpuBefore) * 1e6) / responses,
    };
  } finally {
    clearInterval(ticker);
  }
}

/** A run during which the hypervisor took more than STEAL_PERCENT % of the CPU, or other processes more than OTHER_PERCENT %, is made once more. */
const STEAL_PERCENT = 20;
const OTHER_PERCENT = 10;
/** Before that second run, at most this long is spent waiting for a quiet second… */
const QUIET_WAIT_SECONDS = 10;
/** …and all second runs and their waits together take at most this long, so a busy machine cannot stretch the run. */
let retrySecondsLeft = 100;

export const disturbed = (figures: LoadFigures): boolean =>
  (figures.stealPercent ?? 0) > STEAL_PERCENT || (figures.otherCpuPercent ?? 0) > OTHER_PERCENT;

/**
 * load(), made once more when the run was disturbed (by other guests of the host or other processes), after waiting
 * for the machine to calm down; `better` picks the run that counts. Throws on errors and non-2xx answers.
 */
export async function steadyLoad(what: string, target: Target, run: LoadRun, better: (a: LoadFigures, b: LoadFigures) => boolean): Promise<LoadFigures> {
  let kept: LoadFigures | undefined;
  for (let attempt = 1; attempt <= 2; attempt++) {
    const started = performance.now();
    if (attempt === 2) await waitUntilQuiet(STEAL_PERCENT, OTHER_PERCENT, Math.min(QUIET_WAIT_SECONDS, retrySecondsLeft - run.seconds));
    const figures = await load(target, run);
    if (attempt === 2) retrySecondsLeft -= (performance.now() - started) / 1000;
    assertClean(what, figures);
    if (kept === undefined || better(figures, kept)) kept = figures;
    if (!disturbed(figures) || retrySecondsLeft < run.seconds) break;
  }
  return kept as LoadFigures;
}

export const morePerSecond = (a: LoadFigures, b: LoadFigures): boolean => a.rps > b.rps;
export const lowerP99 = (a: LoadFigures, b: LoadFigures): boolean => a.p99 < b.p99;
