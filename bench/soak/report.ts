// The soak's printed table (one row per 30 s sample), its per-kind summary and the verdict.
import type { WindowFigures } from './recorder.js';
import type { PeakPhase, Sample, VerdictLine } from './samples.js';
import type { SessionCounts } from './sessions.js';
import type { GrantCounts } from './tokens.js';
import { KINDS, MIX } from './traffic.js';

/** RSS may grow this much from minute 1 to the last sample. */
export const RSS_GROWTH_LIMIT = 0.1;
/** Open file descriptors are flat when the last sample is at most this much above minute 1: +5 %, or +10 if more. */
const FD_SHARE = 0.05;
const FD_MIN_BAND = 10;

const MB = 2 ** 20;
const int = (n: number): string => Math.round(n).toLocaleString('en-US');
const ms = (n: number): string => (Number.isNaN(n) ? '—' : n.toFixed(2));
const pct = (n: number | undefined): string => (n === undefined ? '—' : n.toFixed(0));
const time = (t: number): string => `${Math.floor(t / 60)}:${String(Math.round(t % 60)).padStart(2, '0')}`;

const COLUMNS: Array<[string, number]> = [
  ['time', 5], ['req/s', 6], ['p50 ms', 6], ['p99 ms', 7], ['2xx', 7], ['401', 6], ['403', 6], ['5xx', 4], ['unexp', 5],
  ['skip', 5], ['ws open', 7], ['ws fail', 7], ['RSS MB', 7], ['heap MB', 7], ['FDs', 5], ['gw CPU%', 7], ['gen CPU%', 8], ['redis MB', 8], ['idx ids', 7], ['other%', 6],
];

export function tableHeader(): string {
  return COLUMNS.map(([name, width]) => name.padStart(width)).join(' ');
}

export function tableRow(sample: Sample): string {
  const { traffic: w, ws, gateway: g, redis: r, machine: m } = sample;
  const status = (prefix: string): string => (w === undefined ? '—' : int(Object.entries(w.statuses).filter(([s]) => s.startsWith(prefix)).reduce((sum, [, n]) => sum + n, 0)));
  const cells = [
    time(sample.t), w === undefined ? '—' : int(w.rps), w === undefined ? '—' : ms(w.p50), w === undefined ? '—' : ms(w.p99),
    status('2'), status('401'), status('403'), w === undefined ? '—' : int(w.fiveXx), w === undefined ? '—' : int(w.unexpected),
    w === undefined ? '—' : int(w.skipped), ws === undefined ? '—' : int(ws.opened), ws === undefined ? '—' : int(ws.failed),
    (g.rssBytes / MB).toFixed(1), (g.heapUsedBytes / MB).toFixed(1), int(g.openFds), g.cpuPercent.toFixed(0), m.soakCpuPercent.toFixed(0),
    (r.usedMemoryBytes / MB).toFixed(1), int(r.indexedIds), pct(m.otherCpuPercent),
  ];
  return cells.map((cell, i) => cell.padStart((COLUMNS[i] as [string, number])[1])).join(' ');
}

/** How far above minute 1 the open file descriptors may end. */
export const fdBandOf = (base: Sample): number => Math.max(FD_MIN_BAND, Math.round(base.gateway.openFds * FD_SHARE));

/** The sample that counts as minute 1: at 60 s, or the first one of a shorter run. */
export function baselineOf(samples: Sample[]): Sample {
  const loaded = samples.filter((s) => s.traffic !== undefined);
  return loaded.find((s) => s.t >= 59) ?? (loaded[0] as Sample);
}

const sum = (samples: Sample[], pick: (w: WindowFigures) => number): number =>
  samples.reduce((total, s) => total + (s.traffic === undefined ? 0 : pick(s.traffic)), 0);

export function verdict(samples: Sample[], peak: PeakPhase | undefined, tokens: GrantCounts, sessions: SessionCounts): VerdictLine[] {
  const base = baselineOf(samples);
  const last = samples.at(-1) as Sample;
  const peakFiveXx = peak?.traffic.fiveXx ?? 0;
  const fiveXx = sum(samples, (w) => w.fiveXx) + peakFiveXx;
  const unexpected4xx = sum(samples, (w) => w.unexpected4xx) + (peak?.traffic.unexpected4xx ?? 0);
  const growth = (last.gateway.rssBytes - base.gateway.rssBytes) / base.gateway.rssBytes;
  const fdBand = fdBandOf(base);
  const fdRise = last.gateway.openFds - base.gateway.openFds;
  const errors = sum(samples, (w) => w.errors) + (peak?.traffic.errors ?? 0);
  const otherUnexpected = sum(samples, (w) => w.unexpected - w.unexpected4xx - w.fiveXx - w.errors);
  const wsFailed = samples.reduce((total, s) => total + (s.ws?.failed ?? 0), 0);
  const controlFailed = tokens.failed + sessions.failed;
  const at = `minute 1 (${time(base.t)})`;
  return [
    { pass: fiveXx === 0, text: `no 5xx: ${int(fiveXx)}${peak === undefined ? '' : ` (${int(peakFiveXx)} of them in the peak phase)`}` },
    { pass: unexpected4xx === 0, text: `no unexpected 4xx: ${int(unexpected4xx)} (expected: ${int(sum(samples, (w) => w.statuses['401'] ?? 0))} × 401 for bad tokens, ${int(sum(samples, (w) => w.statuses['403'] ?? 0))} × 403 by the callback rule)` },
    {
      pass: growth < RSS_GROWTH_LIMIT,
      text: `RSS growth ${at} → last (${time(last.t)}) under ${RSS_GROWTH_LIMIT * 100} %: ${(base.gateway.rssBytes / MB).toFixed(1)} → ${(last.gateway.rssBytes / MB).toFixed(1)} MB (${growth >= 0 ? '+' : ''}${(growth * 100).toFixed(1)} %)`,
    },
    { pass: fdRise <= fdBand, text: `open FDs flat (last ≤ ${at} + ${fdBand}): ${int(base.gateway.openFds)} → ${int(last.gateway.openFds)}` },
    {
      pass: errors === 0 && otherUnexpected === 0 && wsFailed === 0 && controlFailed === 0,
      text: `no request errors, wrong answers, WebSocket failures or failed token/session renewals: ${int(errors)} errors, ${int(otherUnexpected)} wrong answers, ${int(wsFailed)} WebSocket failures, ${int(controlFailed)} failed renewals`,
    },
  ];
}

/** Per kind over the whole soak: requests, the highest window p99, and the statuses seen. */
export function kindLines(samples: Sample[]): string[] {
  const lines = [`${'kind'.padEnd(76)} ${'requests'.padStart(10)} ${'worst p99'.padStart(9)}  statuses`];
  for (const kind of KINDS) {
    let requests = 0;
    let worst = 0;
    const statuses: Record<string, number> = {};
    for (const s of samples) {
      const k = s.traffic?.kinds[kind];
      if (k === undefined) continue;
      requests += k.requests;
      if (!Number.isNaN(k.p99)) worst = Math.max(worst, k.p99);
      for (const [status, n] of Object.entries(k.statuses)) statuses[status] = (statuses[status] ?? 0) + n;
    }
    const seen = Object.entries(statuses).map(([status, n]) => `${status} × ${int(n)}`).join(', ');
    lines.push(`${`${kind} (${MIX[kind].weight} %): ${MIX[kind].label}`.padEnd(76)} ${int(requests).padStart(10)} ${ms(worst).padStart(9)}  ${seen} (expected ${MIX[kind].expect})`);
  }
  return lines;
}
