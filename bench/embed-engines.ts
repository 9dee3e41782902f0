// The embed handshake timing of embed.ts in Firefox and WebKit. Neither can be started with a page to open and no
// automation the way Chromium is (Firefox needs its WebDriver BiDi agent for the test certificate and the cookie prefs,
// WebKit's MiniBrowser runs under WebKitWebDriver), so each is launched through the engine test harness
// (packages/embedgate/test/support/engines/) with third-party cookies blocked as in the engine tests, and driven only
// to open the host site and send it to the plan's first page: from there the pages go from visit to visit by
// themselves, as in Chromium, and report their own Performance API timings. Everything is over HTTPS (Secure and
// Partitioned cookies and service workers need it): the host and app sites with the test certificate, each gateway
// behind the TLS proxy, where the app page's request shows how the session travelled (cookie or worker handle).
// A browser that is missing, does not start or stops reporting is "not measured", with the reason, and is killed.
// Firefox rounds performance.now() and timeOrigin to 1 ms (privacy.reduceTimerPrecision, left as shipped), so its
// times come in whole milliseconds.
import { existsSync } from 'node:fs';
import type { Engine, LaunchOptions, TestTls } from '../packages/embedgate/test/support/engines/index.js';
import { BrowserProcesses } from './browser-processes.js';
import type { VisitStats } from './embed.js';
import { PLAN_MS, STALL_MS, startTimingSite, type Carrier, type TimingSite, type Via, type Visit, type VisitTiming } from './embed-timing-site.js';
import { median, quantile } from './stats.js';

/** Starting the browser (Firefox's own launch timeout is 30 s; WebKit starts Xvfb, a driver and a probe session). */
const LAUNCH_MS = 60_000;
/** Opening a tab, loading the first page, one script. */
const STEP_MS = 20_000;
const CLOSE_MS = 15_000;

export type EngineId = 'firefox' | 'webkit';

export interface EngineVisitRow extends VisitStats {
  via: Via;
  label: string;
  runs: number;
  /** Visits whose app page came after the bootstrap page (performance navigation type 'reload'). */
  bootstrapped: number;
  /** Visits through a gateway: how the app page's request carried the session, as seen at the TLS proxy. */
  carriers?: Partial<Record<Carrier, number>>;
  /** The most frequent of them. */
  carrier?: Carrier;
}

interface EngineRun {
  /**
   * CPU seconds of the browser's processes that the run's "processes outside the bench" (machine.otherCpuPercent)
   * counted as outside: the report takes them out there.
   */
  uncountedCpuSeconds?: number;
}

export interface EngineMeasured extends EngineRun {
  engine: EngineId;
  /** "Firefox", "WebKit". */
  name: string;
  measured: true;
  /** The browser's own name and version, as the harness reports it. */
  version: string;
  /** How the browser was started and driven. */
  launch: string;
  /** Its third-party cookie policy. */
  cookies: string;
  runs: number;
  /** direct, hop, gateway (auto mode, bootstrap page), attach (auto mode, attach({ src })), worker (worker mode). */
  rows: EngineVisitRow[];
  addedMs: number;
  attachAddedMs: number;
  workerAddedMs: number;
  extraPageMs: number;
}

export interface EngineNotMeasured extends EngineRun {
  engine: EngineId;
  name: string;
  measured: false;
  reason: string;
}

export type EngineEmbedFigures = EngineMeasured | EngineNotMeasured;

// Loaded only when the embed section runs (they load puppeteer-core, selenium-webdriver and playwright-core).
const harnessModule = () => import('../packages/embedgate/test/support/engines/index.js');
const firefoxModule = () => import('../packages/embedgate/test/support/engines/firefox.js');
const webkitModule = () => import('../packages/embedgate/test/support/engines/webkit.js');
type Harness = Awaited<ReturnType<typeof harnessModule>>;

interface EngineSpec {
  engine: EngineId;
  name: string;
  cookies: string;
  launch: Omit<LaunchOptions, 'tls'>;
  /** Why the browser cannot run here (not installed), or undefined. */
  missing(): Promise<string | undefined>;
  /** How it is started and driven, for the report. */
  describe(): Promise<string>;
}

const SPECS: EngineSpec[] = [
  {
    engine: 'firefox',
    name: 'Firefox',
    cookies: 'only partitioned third-party cookies (cookieBehavior 5 + optInPartitioning)',
    // FIREFOX_COOKIE_MODES.partitionedOnly, as browser-engines-embed.test.ts runs it.
    launch: { firefox: { cookieBehavior: 5, prefs: { 'network.cookie.cookieBehavior.optInPartitioning': true } } },
    missing: async () => {
      const { FIREFOX_PATH } = await firefoxModule();
      return existsSync(FIREFOX_PATH) ? undefined : `${FIREFOX_PATH} is not installed (EMBEDGATE_FIREFOX names another)`;
    },
    describe: async () => `headless ${(await firefoxModule()).FIREFOX_PATH}, fresh profile, driven by puppeteer-core over WebDriver BiDi`,
  },
  {
    engine: 'webkit',
    name: 'WebKit',
    cookies: 'third-party cookies blocked (--cookies-policy=no-third-party: no cookie in a cross-site frame)',
    launch: {},
    missing: async () => {
      const { findMiniBrowser, WEBKIT_DRIVER_PATH, XVFB_PATH } = await webkitModule();
      const miniBrowser = findMiniBrowser();
      const absent = [
        ...(miniBrowser === undefined ? ['MiniBrowser (libwebkit2gtk)'] : []),
        ...[miniBrowser ?? '', WEBKIT_DRIVER_PATH, XVFB_PATH].filter((path) => path !== '' && !existsSync(path)),
      ];
      return absent.length === 0 ? undefined : `not installed: ${absent.join(', ')}`;
    },
    describe: async () => `${(await webkitModule()).findMiniBrowser() ?? 'MiniBrowser'} --automation on an Xvfb display, ephemeral session, `
      + 'driven by selenium-webdriver through WebKitWebDriver',
  },
];

const log = (line: string): void => console.log(`· ${line}`);

function reason(error: unknown): string {
  const text = error instanceof Error ? error.message : String(error);
  const line = text.split('\n').map((part) => part.trim()).find((part) => part !== '') ?? 'unknown error';
  return line.length > 240 ? `${line.slice(0, 240)}…` : line;
}

/** `promise`, or a rejection after `ms`; what it resolves to later is handed to `late` (to close a late browser). */
function bounded<T>(promise: Promise<T>, ms: number, what: string, late?: (value: T) => void): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  let timedOut = false;
  return Promise.race([
    promise.then((value) => {
      if (timedOut) late?.(value);
      return value;
    }, (error: unknown) => {
      throw new Error(`could not ${what}: ${reason(error)}`);
    }),
    new Promise<never>((_, reject) => {
      timer = setTimeout(() => {
        timedOut = true;
        reject(new Error(`could not ${what} in ${ms / 1000} s`));
      }, ms);
    }),
  ]).finally(() => clearTimeout(timer));
}

function carrierCounts(timings: VisitTiming[]): Partial<Record<Carrier, number>> {
  const counts: Partial<Record<Carrier, number>> = {};
  for (const t of timings) if (t.carrier !== undefined) counts[t.carrier] = (counts[t.carrier] ?? 0) + 1;
  return counts;
}

function label(via: Via, carrier: Carrier | undefined): string {
  const autoToWorker = carrier === 'worker';
  switch (via) {
    case 'direct': return 'app framed directly (baseline)';
    case 'hop': return 'app framed through one extra page load';
    case 'gateway': return autoToWorker ? 'through embedgate, auto mode → worker (bootstrap)' : 'through embedgate (bootstrap page, handshake)';
    case 'attach': return autoToWorker ? 'through embedgate, attach({ src }), auto → worker' : 'through embedgate, attach({ src }) first';
    case 'worker': return 'through embedgate, worker mode (bootstrap)';
  }
}

function figures(spec: EngineSpec, version: string, launch: string, runs: number, all: VisitTiming[]): EngineMeasured {
  const timings = all.filter((t) => !t.id.endsWith('-0'));
  const rows = (['direct', 'hop', 'gateway', 'attach', 'worker'] as const).map((via): EngineVisitRow => {
    const mine = timings.filter((t) => t.via === via);
    const times = mine.map((t) => t.ms);
    const row: EngineVisitRow = {
      via, label: '', runs: mine.length, medianMs: median(times), p90Ms: quantile(times, 0.9),
      bootstrapped: mine.filter((t) => t.navigation === 'reload').length,
    };
    if (via !== 'direct' && via !== 'hop') {
      row.carriers = carrierCounts(mine);
      row.carrier = (Object.entries(row.carriers) as Array<[Carrier, number]>).sort((a, b) => b[1] - a[1])[0]?.[0];
    }
    row.label = label(via, row.carrier);
    return row;
  });
  const medianOf = (via: Via): number => rows.find((row) => row.via === via)?.medianMs ?? Number.NaN;
  const direct = medianOf('direct');
  return {
    engine: spec.engine, name: spec.name, measured: true, version, launch, cookies: spec.cookies, runs, rows,
    addedMs: medianOf('gateway') - direct,
    attachAddedMs: medianOf('attach') - direct,
    workerAddedMs: medianOf('worker') - direct,
    extraPageMs: medianOf('hop') - direct,
  };
}

async function measureEngine(spec: EngineSpec, harness: Harness, tls: TestTls, plan: Visit[], runs: number): Promise<EngineEmbedFigures> {
  const missing = await spec.missing().catch((error: unknown) => reason(error));
  if (missing !== undefined) return { engine: spec.engine, name: spec.name, measured: false, reason: missing };
  let site: TimingSite | undefined;
  let engine: Engine | undefined;
  let processes: BrowserProcesses | undefined;
  let result: EngineEmbedFigures;
  try {
    site = await startTimingSite({ tls });
    processes = new BrowserProcesses({ sampleEveryMs: 1000 });
    engine = await bounded(harness.launchEngine(spec.engine, { tls, ...spec.launch }), LAUNCH_MS, `start ${spec.name}`,
      (late) => void late.close().catch(() => undefined));
    const tab = await bounded(engine.newTab(), STEP_MS, 'open a tab');
    await bounded(tab.goto(site.blankPage), STEP_MS, 'load the host site');
    // The only scripted step: from the first visit on, the pages go on by themselves.
    const first = site.start(plan);
    await bounded(tab.evalTop(`(setTimeout(function () { location.href = ${JSON.stringify(first)}; }, 0), true)`), STEP_MS, 'start the plan');
    const timings = await site.finished(STALL_MS, PLAN_MS);
    result = figures(spec, engine.version, await spec.describe(), runs, timings);
  } catch (error) {
    result = { engine: spec.engine, name: spec.name, measured: false, reason: reason(error) };
  }
  // Every error was taken above: the browser is closed (or killed) whatever happened.
  processes?.note();
  if (engine !== undefined) await bounded(engine.close(), CLOSE_MS, `close ${spec.name}`).catch(() => undefined);
  const uncounted = await processes?.end();
  await site?.close().catch(() => undefined);
  return uncounted === undefined ? result : { ...result, uncountedCpuSeconds: uncounted };
}

/** The plan of embed.ts (one warm-up round, then `runs` interleaved rounds) in Firefox, then in WebKit. */
export async function measureEngines(plan: Visit[], runs: number): Promise<EngineEmbedFigures[]> {
  let harness: Harness;
  let tls: TestTls;
  try {
    harness = await harnessModule();
    tls = harness.makeTestTls();
  } catch (error) {
    const why = `the engine harness could not start: ${reason(error)}`;
    return SPECS.map((spec) => ({ engine: spec.engine, name: spec.name, measured: false, reason: why }));
  }
  try {
    const results: EngineEmbedFigures[] = [];
    for (const spec of SPECS) {
      log(`embed handshake in ${spec.name}, driven, over HTTPS (${runs} visits of each kind)`);
      const result = await measureEngine(spec, harness, tls, plan, runs);
      if (!result.measured) log(`${spec.name}: not measured: ${result.reason}`);
      results.push(result);
    }
    return results;
  } finally {
    tls.cleanup();
  }
}
