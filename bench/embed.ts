// Embedding budgets: the min+gzip size of the host and frame scripts, and the time the embed handshake adds before
// an app's first request on loopback. One headless Chromium (third-party cookies blocked, no automation attached)
// goes through a chain of host pages; each frames the app, and the pages report their own timings. Every visit
// through the gateway starts with no session (the previous one signed out), so each one runs the bootstrap and the
// handshake — through the bootstrap page, with the session made by attach({ src }) before the iframe navigates, and
// through the service worker of a gateway in worker mode. Baselines: the same app framed directly, and framed
// through a page that only loads it in its place (what the bootstrap's extra page load costs the browser by itself).
// Then the same visits in Firefox and WebKit (embed-engines.ts), driven by their automation, over HTTPS; their figures
// are printed and recorded, not checked against the budget.
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { CHROMIUM_PATH } from '../packages/embedgate/test/support/chromium.js';
import { BrowserProcesses } from './browser-processes.js';
import { track } from './children.js';
import { measureEngines, type EngineEmbedFigures } from './embed-engines.js';
import { PLAN_MS, STALL_MS, startTimingSite, type Via, type Visit, type VisitTiming } from './embed-timing-site.js';
import { median, quantile } from './stats.js';

export interface ScriptSize {
  name: string;
  minBytes: number;
  gzipBytes: number;
}

export interface VisitStats {
  medianMs: number;
  p90Ms: number;
}

export interface EmbedFigures {
  runs: number;
  scripts: ScriptSize[];
  direct: VisitStats;
  hop: VisitStats;
  gateway: VisitStats;
  /** attach({ src }): the session made before the iframe navigates. */
  attach: VisitStats;
  /** A gateway in worker mode: the bootstrap registers the service worker. */
  worker: VisitStats;
  /** What the handshake adds through the bootstrap page: gateway median minus direct median. */
  addedMs: number;
  /** What it adds when attach() makes the session first: attach median minus direct median. */
  attachAddedMs: number;
  /** What it adds in worker mode: worker median minus direct median. */
  workerAddedMs: number;
  /** Of which the browser's second page load: hop median minus direct median. */
  extraPageMs: number;
  /** CPU seconds of Chromium's processes that the run's "processes outside the bench" counted (the report takes them out). */
  uncountedCpuSeconds?: number;
  /** The same visits in Firefox and WebKit (driven browsers, over HTTPS); absent in results from before they were measured. */
  engines?: EngineEmbedFigures[];
}

function scriptSizes(): ScriptSize[] {
  return ['host.min.js', 'host.module.min.js', 'frame.min.js', 'bootstrap.min.js', 'worker.min.js', 'worker-page.min.js', 'bridge.min.js', 'host-bridge.min.mjs'].map((name) => {
    const body = readFileSync(new URL(`../packages/embed/dist/${name}`, import.meta.url));
    return { name, minBytes: body.length, gzipBytes: gzipSync(body, { level: 9 }).length };
  });
}

/** Runs the plan in one fresh headless Chromium profile (a new directory under `dir`); `processes` are Chromium's. */
async function visitAll(plan: Visit[], dir: string, processes: BrowserProcesses): Promise<VisitTiming[]> {
  const site = await startTimingSite();
  const profile = mkdtempSync(join(dir, 'chromium-'));
  mkdirSync(join(profile, 'Default'));
  // cookie_controls_mode 1: block third-party cookies, as the browser tests do through CDP.
  writeFileSync(join(profile, 'Default', 'Preferences'), JSON.stringify({ profile: { cookie_controls_mode: 1 } }));
  const browser = spawn(CHROMIUM_PATH, [
    '--headless', '--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking',
    '--disable-component-update', '--disable-sync', `--user-data-dir=${profile}`, site.start(plan),
  ], { stdio: 'ignore', detached: true });
  track(browser);
  try {
    return await site.finished(STALL_MS, PLAN_MS).catch((error: Error) => {
      throw new Error(`Chromium did not finish the plan: ${error.message}`);
    });
  } finally {
    // Their CPU time so far, which the renderers killed below take with them.
    processes.note();
    // The whole process group: renderers outliving the browser process would keep writing to the profile.
    if (browser.exitCode === null && browser.pid !== undefined) {
      const exited = once(browser, 'exit');
      process.kill(-browser.pid, 'SIGKILL');
      await exited;
    }
    rmSync(profile, { recursive: true, force: true, maxRetries: 5 });
    await site.close();
  }
}

export const VIAS: Via[] = ['direct', 'hop', 'gateway', 'attach', 'worker'];

/** One warm-up round (ids ending in -0), then `runs` rounds of every kind of visit, interleaved. */
export function visitPlan(runs: number): Visit[] {
  return Array.from({ length: runs + 1 }, (_, round) => VIAS.map((via) => ({ id: `${via}-${round}`, via }))).flat();
}

/**
 * Script sizes, then `runs` visits of each kind (after one warm-up round), interleaved, in Chromium (its profile goes
 * under `dir`), then in Firefox and WebKit.
 */
export async function measureEmbed(runs: number, dir: string): Promise<EmbedFigures> {
  // Sampled only before Chromium starts and after the plan: nothing runs beside it during the measurement.
  const processes = new BrowserProcesses();
  let all: VisitTiming[];
  let uncountedCpuSeconds = 0;
  try {
    all = await visitAll(visitPlan(runs), dir, processes);
  } finally {
    uncountedCpuSeconds = await processes.end();
  }
  const timings = all.filter((t) => !t.id.endsWith('-0'));
  const notBootstrapped = timings.filter((t) => (t.via === 'gateway' || t.via === 'worker') && t.navigation !== 'reload');
  if (notBootstrapped.length > 0) throw new Error(`${notBootstrapped.length} gateway visits skipped the bootstrap: the session outlived the sign-out`);
  const bootstrapped = timings.filter((t) => t.via === 'attach' && t.navigation === 'reload');
  if (bootstrapped.length > 0) throw new Error(`${bootstrapped.length} attach({ src }) visits went through the bootstrap page`);
  const stats = (via: Via): VisitStats => {
    const times = timings.filter((t) => t.via === via).map((t) => t.ms);
    return { medianMs: median(times), p90Ms: quantile(times, 0.9) };
  };
  const [direct, hop, gateway, attach, worker] = [stats('direct'), stats('hop'), stats('gateway'), stats('attach'), stats('worker')];
  const chromium = {
    runs, scripts: scriptSizes(), direct, hop, gateway, attach, worker, uncountedCpuSeconds,
    addedMs: gateway.medianMs - direct.medianMs,
    attachAddedMs: attach.medianMs - direct.medianMs,
    workerAddedMs: worker.medianMs - direct.medianMs,
    extraPageMs: hop.medianMs - direct.medianMs,
  };
  return { ...chromium, engines: await measureEngines(visitPlan(runs), runs) };
}
