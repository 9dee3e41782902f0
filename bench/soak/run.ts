// `npm run soak`: the gateway with Redis sessions and the embedded IdP under mixed traffic at a fixed rate for N
// minutes; a table every 30 s, then a verdict (exit 0 PASS, 1 FAIL), bench/results/soak-latest.json and
// docs/soak-chart.svg.
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { stopAll } from '../children.js';
import { cpuSnapshot, describeMachine, waitUntilQuiet } from '../machine.js';
import { buildIsStale } from '../servers/embedgate-cli.js';
import { soakChartSvg } from './chart.js';
import { Generator } from './generator.js';
import { parseSoakOptions, PEAK_SHARE, USAGE, type SoakOptions } from './options.js';
import { Recorder } from './recorder.js';
import { baselineOf, fdBandOf, RSS_GROWTH_LIMIT, tableHeader, tableRow, verdict } from './report.js';
import { Sampler } from './sampler.js';
import type { PeakPhase, Sample, SoakResults } from './samples.js';
import { SessionPool } from './sessions.js';
import { summaryLines } from './summary.js';
import { TokenSource, tokenEndpointOf, type GrantCounts } from './tokens.js';
import type { TrafficSources } from './traffic.js';
import { WebSocketPool } from './websockets.js';
import { CLIENTS, startSoakWorld, type SoakWorld } from './world.js';

const RESULTS_FILE = fileURLToPath(new URL('../results/soak-latest.json', import.meta.url));
const CHART_FILE = fileURLToPath(new URL('../../docs/soak-chart.svg', import.meta.url));
const SAMPLE_SECONDS = 30;
const COOKIE_SESSIONS = 20;
const HANDLE_SESSIONS = 5;
const WEBSOCKETS = 50;
const PEAK_WARMUP_SECONDS = 3;
const PEAK_SECONDS = 10;
const PEAK_CONCURRENCY = 64;
/** The peak is measured once steal and other processes' CPU are under these shares (%) for a second, or after the wait. */
const QUIET_STEAL_PERCENT = 20;
const QUIET_OTHER_PERCENT = 10;
const QUIET_WAIT_SECONDS = 30;

const log = (line: string): void => console.log(`· ${line}`);
const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, Math.max(0, ms)));

interface Running {
  world: SoakWorld;
  sources: TrafficSources;
  tokens: TokenSource[];
  grants: GrantCounts;
  recorder: Recorder;
  generator: Generator;
  sampler: Sampler;
}

async function setUp(dir: string): Promise<Running> {
  log('starting redis-server, the upstream, embedgate idp and embedgate serve (sessions in Redis)');
  const world = await startSoakWorld(dir);
  const endpoint = await tokenEndpointOf(world.issuer);
  const grants: GrantCounts = { ok: 0, failed: 0, lastError: undefined };
  const tokens = CLIENTS.map((client) => new TokenSource(client.id, client.role, endpoint, world.gatewayUrl, grants));
  await Promise.all(tokens.map((source) => source.refresh()));
  if (grants.failed > 0) throw new Error(`the IdP gave no token: ${grants.lastError}`);
  const analysts = tokens.filter((source) => source.role === 'analyst');
  const admin = tokens.find((source) => source.role === 'admin') as TokenSource;
  const sessions = new SessionPool(world.gatewayUrl);
  for (let i = 0; i < COOKIE_SESSIONS; i++) await sessions.add('cookie', analysts[i % analysts.length] as TokenSource);
  for (let i = 0; i < HANDLE_SESSIONS; i++) await sessions.add('handle', analysts[i % analysts.length] as TokenSource);
  const sources: TrafficSources = { gatewayUrl: world.gatewayUrl, analysts, admin, sessions };
  const recorder = new Recorder();
  return { world, sources, tokens, grants, recorder, generator: new Generator(sources, recorder), sampler: new Sampler(world.gatewayUrl, world.gatewayPid, world.redisUrl) };
}

async function measurePeak(run: Running): Promise<PeakPhase> {
  log(`peak on the mix: ${PEAK_CONCURRENCY} requests in flight, ${PEAK_WARMUP_SECONDS} s warm-up, then ${PEAK_SECONDS} s (after waiting up to ${QUIET_WAIT_SECONDS} s for a quiet machine)`);
  await run.generator.runClosed(PEAK_CONCURRENCY, PEAK_WARMUP_SECONDS);
  await waitUntilQuiet(QUIET_STEAL_PERCENT, QUIET_OTHER_PERCENT, QUIET_WAIT_SECONDS);
  run.recorder.take();
  await run.sampler.gateway();
  run.sampler.machine();
  const rps = await run.generator.runClosed(PEAK_CONCURRENCY, PEAK_SECONDS);
  const gateway = await run.sampler.gateway();
  return {
    seconds: PEAK_SECONDS, concurrency: PEAK_CONCURRENCY, rps, gatewayCpuPercent: gateway.cpuPercent, traffic: run.recorder.take(), machine: run.sampler.machine(),
  };
}

async function sample(run: Running, t: number, ws: WebSocketPool | undefined): Promise<Sample> {
  const traffic = t === 0 ? undefined : run.recorder.take();
  const wsWindow = ws?.take();
  const [gateway, redis] = await Promise.all([run.sampler.gateway(), run.sampler.redisFigures()]);
  return { t, traffic, ws: wsWindow, gateway, redis, idpRssBytes: Sampler.rss(run.world.idpPid), machine: run.sampler.machine() };
}

async function soak(run: Running, options: SoakOptions, rate: number): Promise<Sample[]> {
  const ws = new WebSocketPool(run.world.gatewayUrl, run.sources.analysts, run.sources.sessions);
  const samples = [await sample(run, 0, undefined)];
  console.log(`\n${tableHeader()}\n${tableRow(samples[0] as Sample)}`);
  const started = performance.now();
  run.generator.runAtRate(rate);
  ws.start(WEBSOCKETS);
  for (let k = 1; k <= (options.minutes * 60) / SAMPLE_SECONDS; k++) {
    await sleep(started + k * SAMPLE_SECONDS * 1000 - performance.now());
    const next = await sample(run, k * SAMPLE_SECONDS, ws);
    samples.push(next);
    console.log(tableRow(next));
  }
  run.generator.stop();
  await ws.stop();
  await run.generator.close();
  return samples;
}

async function main(): Promise<number> {
  let options: SoakOptions | undefined;
  try {
    options = parseSoakOptions(process.argv.slice(2));
  } catch (error) {
    console.error(`soak: ${(error as Error).message}\n\n${USAGE}`);
    return 2;
  }
  if (options === undefined) return 0;
  const since = cpuSnapshot();
  const startedAt = new Date().toISOString();
  if (buildIsStale()) log('packages/embedgate/src changed after the last build: the CLI runs dist/ (npm run build to update it)');
  const dir = mkdtempSync(join(tmpdir(), 'embedgate-soak-'));
  let keepDir = false;
  // Also on Ctrl-C: the children are killed first (their exit listener was registered before this one).
  process.once('exit', () => {
    if (!keepDir) rmSync(dir, { recursive: true, force: true, maxRetries: 5 });
  });
  let run: Running | undefined;
  let tokenTimer: NodeJS.Timeout | undefined;
  try {
    run = await setUp(dir);
    const { tokens } = run;
    tokenTimer = setInterval(() => tokens.forEach((source) => void source.refresh()), 1000);
    run.sources.sessions.start();
    run.world.gatewayLog.resetCounts();
    const peak = options.rate === undefined ? await measurePeak(run) : undefined;
    const rate = options.rate ?? PEAK_SHARE * (peak as PeakPhase).rps;
    log(`soak: ${options.minutes} min at ${Math.round(rate).toLocaleString('en-US')} req/s, ${WEBSOCKETS} WebSockets, a sample every ${SAMPLE_SECONDS} s`);
    const samples = await soak(run, options, rate);
    const lines = verdict(samples, peak, run.grants, run.sources.sessions.counts);
    const machine = describeMachine(since);
    const results: SoakResults = {
      startedAt, minutes: options.minutes, rate, peak, machine, samples, tokens: run.grants, sessions: run.sources.sessions.counts,
      surprises: run.recorder.surprises, gatewayLog: run.world.gatewayLog.summary, verdict: lines, pass: lines.every((line) => line.pass),
    };
    const report = summaryLines(results);
    console.log(report.join('\n'));
    console.log(`Machine: ${machine.cpu}, ${machine.cores} vCPUs, ${machine.ramGiB} GiB, Node ${machine.node}; over the run ${machine.stealPercent?.toFixed(1) ?? '—'} % steal, ${machine.otherCpuPercent?.toFixed(1) ?? '—'} % of all CPU time used by processes outside the soak; load average now ${machine.loadAverage.toFixed(2)}.`);
    mkdirSync(join(RESULTS_FILE, '..'), { recursive: true });
    writeFileSync(RESULTS_FILE, `${JSON.stringify({ ...results, report }, null, 2)}\n`);
    const base = baselineOf(samples);
    writeFileSync(CHART_FILE, soakChartSvg(samples, base, fdBandOf(base), RSS_GROWTH_LIMIT,
      `${startedAt.slice(0, 10)}, ${options.minutes} min at ${Math.round(rate).toLocaleString('en-US')} req/s (mixed), ${machine.cpu}, ${machine.cores} vCPUs, Node ${machine.node}, loopback; verdict ${results.pass ? 'PASS' : 'FAIL'}`));
    console.log(`\nWrote ${RESULTS_FILE} and ${CHART_FILE}.`);
    if (!results.pass) {
      keepDir = true;
      console.log(`Kept the run's directory (gateway log with the unexpected lines, IdP and Redis logs): ${dir}`);
    }
    return results.pass ? 0 : 1;
  } catch (error) {
    console.error(`soak: ${(error as Error).stack ?? String(error)}`);
    return 1;
  } finally {
    clearInterval(tokenTimer);
    run?.sources.sessions.stop();
    run?.sampler.close();
    await run?.world.close();
    await stopAll();
  }
}

process.exitCode = await main();
