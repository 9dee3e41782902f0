// Embedding budgets: the min+gzip size of the host and frame scripts, and the time the embed handshake adds before
// an app's first request on loopback. One headless Chromium (third-party cookies blocked, no automation attached)
// goes through a chain of host pages; each frames the app, and the pages report their own timings. Every visit
// through the gateway starts with no session (the previous one signed out), so each one runs the bootstrap and the
// handshake. Baselines: the same app framed directly, and framed through a page that only loads it in its place
// (what the bootstrap's extra page load costs the browser by itself).
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { CHROMIUM_PATH } from '../packages/embedgate/test/support/chromium.js';
import { startTimingSite, type Via, type Visit, type VisitTiming } from './embed-timing-site.js';

const SCRIPT_BUDGET_BYTES = 3072;
const HANDSHAKE_BUDGET_MS = 50;
const RUNS = Number(process.env.RUNS ?? 20);
const TIMEOUT_MS = 10 * 60_000;

function scriptSizes(): void {
  console.log('script            min bytes   min+gzip   budget');
  for (const name of ['host', 'frame']) {
    const body = readFileSync(new URL(`../packages/embed/dist/${name}.min.js`, import.meta.url));
    const gzip = gzipSync(body, { level: 9 }).length;
    console.log(`${`${name}.min.js`.padEnd(16)}  ${String(body.length).padStart(9)}   ${String(gzip).padStart(8)}   ${gzip <= SCRIPT_BUDGET_BYTES ? 'ok' : 'OVER'} (≤ ${SCRIPT_BUDGET_BYTES})`);
  }
}

/** Runs the plan in one fresh headless Chromium profile. */
async function visitAll(plan: Visit[]): Promise<VisitTiming[]> {
  const site = await startTimingSite();
  const profile = mkdtempSync(join(tmpdir(), 'embedgate-bench-'));
  mkdirSync(join(profile, 'Default'));
  // cookie_controls_mode 1: block third-party cookies, as the browser tests do through CDP.
  writeFileSync(join(profile, 'Default', 'Preferences'), JSON.stringify({ profile: { cookie_controls_mode: 1 } }));
  const browser = spawn(CHROMIUM_PATH, [
    '--headless', '--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking',
    '--disable-component-update', '--disable-sync', `--user-data-dir=${profile}`, site.start(plan),
  ], { stdio: 'ignore', detached: true });
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([site.finished(), new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`the browser did not finish the plan in ${TIMEOUT_MS / 1000} s`)), TIMEOUT_MS);
    })]);
  } finally {
    clearTimeout(timer);
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

const quantile = (values: number[], q: number): number => {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] as number;
};
const median = (values: number[]): number => quantile(values, 0.5);

scriptSizes();
const vias: Via[] = ['direct', 'hop', 'gateway'];
// Round 0 warms the browser up and is not counted; the rounds interleave the three kinds of visit.
const plan = Array.from({ length: RUNS + 1 }, (_, round) => vias.map((via) => ({ id: `${via}-${round}`, via }))).flat();
const timings = (await visitAll(plan)).filter((t) => !t.id.endsWith('-0'));
const notBootstrapped = timings.filter((t) => t.via === 'gateway' && t.navigation !== 'reload');
if (notBootstrapped.length > 0) throw new Error(`${notBootstrapped.length} gateway visits skipped the bootstrap: the session outlived the sign-out`);
const times = (via: Via): number[] => timings.filter((t) => t.via === via).map((t) => t.ms);
const row = (name: string, values: number[]): string =>
  `  ${name.padEnd(46)} median ${median(values).toFixed(1).padStart(6)} ms   p90 ${quantile(values, 0.9).toFixed(1).padStart(6)} ms`;
console.log(`\niframe src set → the app's first request (/_dash-layout), ${RUNS} visits each, headless Chromium on loopback:`);
console.log(row('app framed directly (baseline)', times('direct')));
console.log(row('app framed through one extra page load', times('hop')));
console.log(row('through embedgate (bootstrap page, handshake)', times('gateway')));
const added = median(times('gateway')) - median(times('direct'));
const extraPage = median(times('hop')) - median(times('direct'));
console.log(`  added by the handshake: ${added.toFixed(1)} ms (difference of medians) — budget ${HANDSHAKE_BUDGET_MS} ms: ${added <= HANDSHAKE_BUDGET_MS ? 'ok' : 'OVER'}`);
console.log(`    of which the browser's second page load: ${extraPage.toFixed(1)} ms; token handshake and session: ${(added - extraPage).toFixed(1)} ms`);
