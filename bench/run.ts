// `npm run bench`: runs the chosen sections on loopback, prints the report, writes bench/results/latest.json and
// docs/performance-chart.svg.
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { measureBridge } from './bridge.js';
import { chartSvg } from './chart.js';
import { stopAll } from './children.js';
import { measureEmbed } from './embed.js';
import { cpuSnapshot, describeMachine } from './machine.js';
import { measureVerification } from './micro/verify.js';
import { parseOptions, USAGE, type Options } from './options.js';
import { reportLines } from './report.js';
import type { Results } from './results.js';
import { compareConfigs } from './sections/http.js';
import { measureMemory } from './sections/memory.js';
import { PROFILE_RATE, profileGateway } from './sections/profile.js';
import { compareRoutes } from './sections/routes.js';
import { compareWorkers } from './sections/workers.js';
import { buildIsStale } from './servers/embedgate-cli.js';
import { startIssuer } from './servers/issuer.js';
import { REQUEST_PATH } from './servers/payload.js';
import { checkTargets } from './targets.js';
import { startWorld } from './world.js';

const RESULTS_FILE = fileURLToPath(new URL('./results/latest.json', import.meta.url));
const CHART_FILE = fileURLToPath(new URL('../docs/performance-chart.svg', import.meta.url));
const NEEDS_WORLD = ['http', 'routes', 'memory', 'workers', 'profile'] as const;

const log = (line: string): void => console.log(`· ${line}`);

async function runSections(options: Options, results: Results, dir: string): Promise<void> {
  const { sections, timing } = options;
  if (sections.has('tokens')) {
    log('token verification, in process');
    const issuer = await startIssuer();
    try {
      results.tokens = await measureVerification(issuer, timing.microMs);
    } finally {
      await issuer.close();
    }
  }
  if (NEEDS_WORLD.some((section) => sections.has(section))) {
    log('starting the upstream, proxies and gateways');
    const world = await startWorld(dir, { comparison: sections.has('http') });
    if (world.upstreamKind === 'node' && sections.has('http')) log('nginx is not on PATH: the upstream is a Node server and the nginx row is skipped');
    try {
      const bearer = { url: `${world.gateway.url}${REQUEST_PATH}`, headers: { authorization: `Bearer ${world.token}` } };
      if (sections.has('http')) results.http = await compareConfigs(world.configs, world.upstreamKind, timing, log);
      if (sections.has('routes')) results.routes = await compareRoutes(world, timing, log);
      if (sections.has('memory')) {
        log('gateway RSS at 1,000 connections; memory per stored session');
        results.memory = await measureMemory(bearer, world.gateway, world.upstreamUrl, timing);
      }
      if (sections.has('workers')) results.workers = await compareWorkers(world, timing, log);
      if (sections.has('profile')) {
        log(`CPU profiles of the gateway (bearer) and the bare proxy at ${PROFILE_RATE} req/s, interleaved`);
        results.profile = await profileGateway(world, timing);
      }
    } finally {
      await world.close();
    }
  }
  if (sections.has('embed')) {
    log(`embed handshake in headless Chromium, then Firefox and WebKit where installed (${timing.embedRuns} visits of each kind)`);
    results.embed = await measureEmbed(timing.embedRuns, dir);
  }
  if (sections.has('bridge')) {
    log(`host ↔ app bridge in headless Chromium with the demo's Dash app (${timing.bridgeRuns} runs of each path)`);
    results.bridge = await measureBridge(timing.bridgeRuns);
  }
}

function writeOutputs(results: Results, lines: string[]): void {
  mkdirSync(join(RESULTS_FILE, '..'), { recursive: true });
  writeFileSync(RESULTS_FILE, `${JSON.stringify({ ...results, targets: checkTargets(results), report: lines }, null, 2)}\n`);
  if (results.http !== undefined) {
    const { machine } = results;
    writeFileSync(CHART_FILE, chartSvg(results.http, `${results.startedAt.slice(0, 10)}, ${machine.cpu}, ${machine.cores} cores, Node ${machine.node}, loopback`));
  }
}

async function main(): Promise<number> {
  let options: Options | undefined;
  try {
    options = parseOptions(process.argv.slice(2));
  } catch (error) {
    console.error(`bench: ${(error as Error).message}\n\n${USAGE}`);
    return 2;
  }
  if (options === undefined) return 0;
  const started = performance.now();
  const since = cpuSnapshot();
  const results: Results = {
    startedAt: new Date().toISOString(), seconds: 0, quick: options.quick, timing: options.timing, machine: describeMachine(since), staleBuild: buildIsStale(),
  };
  if (results.staleBuild) log('packages/embedgate/src changed after the last build: the CLI runs dist/ (npm run build to update it)');
  const dir = mkdtempSync(join(tmpdir(), 'embedgate-bench-'));
  // Also on Ctrl-C: the children are killed first (their exit listener was registered before this one).
  process.once('exit', () => rmSync(dir, { recursive: true, force: true, maxRetries: 5 }));
  try {
    await runSections(options, results, dir);
  } catch (error) {
    console.error(`bench: ${(error as Error).stack ?? String(error)}`);
    return 1;
  } finally {
    await stopAll();
  }
  results.seconds = (performance.now() - started) / 1000;
  const { stealPercent, otherCpuPercent } = describeMachine(since);
  results.machine = { ...results.machine, stealPercent, otherCpuPercent };
  const lines = reportLines(results, checkTargets(results));
  console.log(`\n${lines.join('\n')}`);
  writeOutputs(results, lines);
  console.log(`\nWrote ${RESULTS_FILE}${results.http === undefined ? '' : ` and ${CHART_FILE}`}.`);
  return 0;
}

process.exitCode = await main();
