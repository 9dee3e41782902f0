// The performance targets and whether a run meets them (undefined: the section did not run).
import type { HttpRow, Results } from './results.js';
import type { HttpConfig } from './world.js';

export interface TargetCheck {
  name: string;
  target: string;
  measured: string;
  pass: boolean | undefined;
}

export const KB = 1024;
export const MB = 1024 * 1024;
const SCRIPT_BUDGET_BYTES = 3 * KB;
const WORKERS_SCALE = 1.3;
const WORKERS_CHECK = 'throughput, --workers 2 vs --workers 1';

const check = (name: string, target: string, value: number | undefined, format: (v: number) => string, pass: (v: number) => boolean): TargetCheck =>
  value === undefined || Number.isNaN(value)
    ? { name, target, measured: 'not measured', pass: undefined }
    : { name, target, measured: format(value), pass: pass(value) };

/** The p99 a row adds over the bare proxy at the latency rate: against its paired bare run, else the bare row's. */
export function p99Added(row: HttpRow | undefined, bare: HttpRow | undefined): number | undefined {
  const reference = row?.pairedBare ?? bare?.atRate;
  return row === undefined || reference === undefined ? undefined : row.atRate.p99 - reference.p99;
}

export function checkTargets(results: Results): TargetCheck[] {
  const row = (id: string) => results.http?.rows.find((r) => r.id === id);
  const ratio = (a: number | undefined, b: number | undefined): number | undefined => (a === undefined || b === undefined ? undefined : a / b);
  /** The paired ratio where the run measured one, else the ratio of the two rows' best peaks. */
  const peakRatio = (measured: HttpConfig['id'], against: HttpConfig['id']): number | undefined =>
    results.http?.ratios?.find((r) => r.measured === measured && r.against === against)?.ratio ?? ratio(row(measured)?.peak.rps, row(against)?.peak.rps);
  const bearer = row('bearer');
  const cookie = row('cookie');
  const bare = row('bare');
  const workers = results.workers?.supported === true ? results.workers : undefined;
  const scripts = results.embed?.scripts ?? [];
  return [
    check('bearer throughput vs bare Node proxy', '≥ 0.85×', peakRatio('bearer', 'bare'), (v) => `${v.toFixed(2)}×`, (v) => v >= 0.85),
    check('bearer throughput vs Express stack', '≥ 3×', peakRatio('bearer', 'express'), (v) => `${v.toFixed(2)}×`, (v) => v >= 3),
    check('p99 added over bare proxy (half its peak)', '≤ 1 ms', p99Added(bearer, bare), (v) => `${v.toFixed(2)} ms`, (v) => v <= 1),
    check('session cookie throughput vs bearer', '≥ 1×', peakRatio('cookie', 'bearer'), (v) => `${v.toFixed(2)}×`, (v) => v >= 1),
    check('session cookie p99 added over bare proxy (half its peak)', '≤ 1 ms', p99Added(cookie, bare), (v) => `${v.toFixed(2)} ms`, (v) => v <= 1),
    check('worker-mode handle throughput vs bearer', '≥ 1×', peakRatio('handle', 'bearer'), (v) => `${v.toFixed(2)}×`, (v) => v >= 1),
    check('Dash callback (callback rules) throughput vs bearer', '≥ 0.8×', peakRatio('dash', 'bearer'), (v) => `${v.toFixed(2)}×`, (v) => v >= 0.8),
    check('cached token verification', '≤ 10 µs', results.tokens?.cachedUs, (v) => `${v.toFixed(2)} µs`, (v) => v <= 10),
    check('uncached RS256 vs node:crypto.verify', '≤ 2×', ratio(results.tokens?.uncachedUs, results.tokens?.cryptoVerifyUs), (v) => `${v.toFixed(2)}×`, (v) => v <= 2),
    check('1,000 routes vs 1 route (throughput lost)', '≤ 5 %', results.routes && 100 * (1 - results.routes.thousandRoutesRps / results.routes.oneRouteRps),
      (v) => `${v.toFixed(1)} %`, (v) => v <= 5),
    check('gateway RSS at 1,000 connections', '≤ 150 MB', results.memory && results.memory.peakRssBytes / MB, (v) => `${v.toFixed(0)} MB`, (v) => v <= 150),
    check('memory per stored session (heap)', '≤ 1 KB', results.memory?.sessions.heapBytesPerSession, (v) => `${Math.round(v)} B`, (v) => v <= KB),
    results.workers?.supported === false
      ? { name: WORKERS_CHECK, target: `≥ ${WORKERS_SCALE}×`, measured: 'not supported yet', pass: undefined }
      : check(WORKERS_CHECK, `≥ ${WORKERS_SCALE}×`, workers && workers.twoRps / workers.oneRps, (v) => `${v.toFixed(2)}×`, (v) => v >= WORKERS_SCALE),
    check('embed handshake, bootstrap page (added to first request)', '≤ 50 ms', results.embed?.addedMs, (v) => `${v.toFixed(1)} ms`, (v) => v <= 50),
    check('embed handshake, attach({ src }) first', '≤ 20 ms', results.embed?.attachAddedMs, (v) => `${v.toFixed(1)} ms`, (v) => v <= 20),
    check('bridge adds, vs a click in the frame', '≤ 5 ms', results.bridge?.addedMs, (v) => `${v.toFixed(1)} ms`, (v) => v <= 5),
    check('bridge adds, vs set_props in the frame', '≤ 5 ms', results.bridge?.addedOverSetPropsMs, (v) => `${v.toFixed(1)} ms`, (v) => v <= 5),
    ...['host.min.js', 'host.module.min.js', 'frame.min.js', 'bootstrap.min.js', 'worker.min.js', 'worker-page.min.js', 'bridge.min.js', 'host-bridge.min.mjs'].map((name) => check(`${name} min+gzip`, '≤ 3 KB', scripts.find((s) => s.name === name)?.gzipBytes,
      (v) => `${v} B`, (v) => v <= SCRIPT_BUDGET_BYTES)),
  ];
}
