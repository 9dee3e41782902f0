// The lines printed after the table: the peak, what the soak did, whether the rate was held, each kind's answers,
// memory beside the gateway's (heap, Redis, the IdP), the gateway's log, anything unexpected, and the verdict.
import { MAX_IN_FLIGHT } from './generator.js';
import { PEAK_SHARE } from './options.js';
import { baselineOf, kindLines } from './report.js';
import type { Sample, SoakResults } from './samples.js';

const MB = 2 ** 20;
const int = (n: number): string => Math.round(n).toLocaleString('en-US');
const mb = (bytes: number, digits = 1): string => (bytes / MB).toFixed(digits);

/** Whether the fixed rate was held: answers per second over the soak, requests not sent, the scheduler's worst lag. */
function rateLine(samples: Sample[], rate: number): string {
  const windows = samples.flatMap((s) => (s.traffic === undefined ? [] : [s.traffic]));
  const requests = windows.reduce((sum, w) => sum + w.requests, 0);
  const seconds = windows.reduce((sum, w) => sum + w.seconds, 0);
  const skipped = windows.reduce((sum, w) => sum + w.skipped, 0);
  const lag = Math.max(0, ...windows.map((w) => w.maxLagMs));
  return `Rate held: ${int(requests / seconds)} answers/s over the soak for ${int(rate)} scheduled; ${int(skipped)} requests not sent `
    + `(${int(MAX_IN_FLIGHT)} already in flight, or no usable session); the scheduler's worst lag ${lag.toFixed(0)} ms.`;
}

function wsFailureLines(samples: Sample[]): string[] {
  const failures = samples.flatMap((s) => (s.ws?.failures ?? []).map((failure) => `  at ${Math.round(s.t)} s: ${failure}`));
  return failures.length === 0 ? [] : ['First WebSocket failures (per 30 s window):', ...failures.slice(0, 10)];
}

export function summaryLines(results: SoakResults): string[] {
  const { samples, peak, sessions, tokens, gatewayLog } = results;
  const base = baselineOf(samples);
  const last = samples.at(-1) as Sample;
  const ws = samples.reduce((t, s) => ({ opened: t.opened + (s.ws?.opened ?? 0), echoes: t.echoes + (s.ws?.echoes ?? 0), ended: t.ended + (s.ws?.endedWithSession ?? 0) }),
    { opened: 0, echoes: 0, ended: 0 });
  const peakLine = peak === undefined ? [] : [
    `Peak on the mix: ${int(peak.rps)} req/s (${peak.concurrency} in flight, ${peak.seconds} s, gateway at ${peak.gatewayCpuPercent.toFixed(0)} % of a CPU, `
    + `p99 ${peak.traffic.p99.toFixed(2)} ms, other processes ${peak.machine.otherCpuPercent?.toFixed(0) ?? '—'} % of all CPU time); soak rate ${PEAK_SHARE * 100} % of it.`,
  ];
  return [
    '',
    ...peakLine,
    `Soak: ${results.minutes} min at ${int(results.rate)} req/s; ${int(ws.opened)} WebSockets opened (${int(ws.echoes)} echoes checked, ${ws.ended} closed by the gateway `
    + `when their session was ended); tokens: ${tokens.ok} issued, ${tokens.failed} failed; embed sessions: ${sessions.created} created, ${sessions.renewed} renewed, `
    + `${sessions.ended} ended, ${sessions.failed} failed${sessions.lastError === undefined ? '' : ` (${sessions.lastError})`}.`,
    rateLine(samples, results.rate),
    ...kindLines(samples),
    `From minute 1 to the end: heap used ${mb(base.gateway.heapUsedBytes)} → ${mb(last.gateway.heapUsedBytes)} MB; Redis ${mb(base.redis.usedMemoryBytes)} → `
    + `${mb(last.redis.usedMemoryBytes)} MB, ${base.redis.keys} → ${last.redis.keys} keys, session ids in the per-user index sets ${int(base.redis.indexedIds)} → `
    + `${int(last.redis.indexedIds)}; IdP RSS ${mb(base.idpRssBytes, 0)} → ${mb(last.idpRssBytes, 0)} MB.`,
    `Gateway log: statuses ${JSON.stringify(gatewayLog.statuses)}, denials by reason ${JSON.stringify(gatewayLog.reasons)}, ${gatewayLog.problems} warning/error lines.`,
    ...gatewayLog.firstProblems.slice(0, 5).map((line) => `  ${line}`),
    ...wsFailureLines(samples),
    ...(results.surprises.length === 0 ? [] : ['First unexpected answers:', ...results.surprises.slice(0, 10).map((s) => `  ${s.at} ${s.kind}: ${s.what}`)]),
    '',
    'Verdict:',
    ...results.verdict.map((line) => `  ${line.pass ? 'PASS' : 'FAIL'}  ${line.text}`),
    `  ${results.pass ? 'PASS' : 'FAIL'}`,
  ];
}
