// The printed report: the side-by-side table with ratios, the other sections' figures, and the target checklist.
import type { ComparedEntry, ComparedProfiles } from './cpu-profile.js';
import type { ProfileLoad } from './sections/profile.js';
import type { BridgeFigures } from './bridge.js';
import type { EngineEmbedFigures } from './embed-engines.js';
import { RATE_INSTANCES } from './load.js';
import type { Results } from './results.js';
import { MB, p99Added, type TargetCheck } from './targets.js';

const int = (n: number): string => Math.round(n).toLocaleString('en-US');
const ms = (n: number): string => n.toFixed(2);
const pad = (text: string, width: number): string => text.padStart(width);
const duration = (ns: number): string => (ns < 10_000 ? `${int(ns)} ns` : `${(ns / 1000).toFixed(1)} µs`);

/** 1,000 routes' throughput against 1 route's, in words: "6.1 % less", or "5.2 % more" when noise made it faster. */
function routesDifference(ratio: number): string {
  const percent = (100 * Math.abs(1 - ratio)).toFixed(1);
  return ratio <= 1 ? `${percent} % less` : `${percent} % more`;
}

/** Above this, the bare proxy's fastest peak round against its slowest: the machine's speed moved too much to compare rows. */
const SPEED_SPREAD = 1.15;

/** How much the bare proxy, the same server all through the phase, moved between its runs: the machine's own drift. */
function speedLine(runs: NonNullable<NonNullable<Results['http']>['bareRuns']>): string {
  const range = (values: number[], format: (n: number) => string): string => `${format(Math.min(...values))}–${format(Math.max(...values))}`;
  const latency = `its ${runs.p99AtRate.length} latency runs a p99 of ${range(runs.p99AtRate, ms)} ms`;
  if (runs.peakRps.length < 2) return `Machine speed: the bare proxy had one peak round; ${latency}.`;
  const spread = Math.max(...runs.peakRps) / Math.min(...runs.peakRps);
  return `Machine speed: the bare proxy's ${runs.peakRps.length} peak rounds gave ${range(runs.peakRps, int)} req/s (${spread.toFixed(2)}× between `
    + `slowest and fastest), ${latency}`
    + (spread > SPEED_SPREAD ? `: the machine's speed moved by more than ${Math.round((SPEED_SPREAD - 1) * 100)} % during the run, more than `
      + 'most differences between rows; the table\'s rows, measured up to a minute apart, are not to be compared (the paired ratios less so).' : '.');
}

function httpLines(http: NonNullable<Results['http']>, timing: Results['timing']): string[] {
  const bare = http.rows.find((r) => r.id === 'bare');
  const express = http.rows.find((r) => r.id === 'express');
  const bearer = http.rows.find((r) => r.id === 'bearer');
  const paired = http.rows.some((r) => r.pairedBare !== undefined);
  const lines = [
    `HTTP on loopback, GET /sales/api/data.json (${http.upstream === 'nginx' ? 'nginx' : 'a Node server'} upstream, small JSON).`,
    `Peak: ${timing.peakConnections} connections, best of ${timing.peakRounds} interleaved ${timing.peakSeconds} s rounds. Latency: autocannon overallRate `
      + `${int(http.rate)} req/s (half the bare proxy's peak) over ${timing.rateConnections} connections in ${RATE_INSTANCES} staggered instances, `
      + `lowest p99 of ${timing.rateRounds} interleaved ${timing.rateSeconds} s rounds after a ${timing.warmupSeconds} s run of each at the rate`
      + `${paired ? ', each run next to a run of the bare proxy' : ''}.`,
    '',
    `${'configuration'.padEnd(38)} ${pad('peak req/s', 10)} ${pad('× bare', 7)} ${pad('× Expr.', 7)} ${pad('CPU µs', 7)} ${pad('p50 ms', 7)} ${pad('p99 ms', 7)} ${pad('p99 +bare', 9)} ${pad('at rate', 8)}`,
  ];
  for (const row of http.rows) {
    const flags = row.peak.errors + row.peak.non2xx + row.atRate.errors + row.atRate.non2xx > 0 ? '  errors!' : '';
    const saturated = row.atRate.rps < 0.95 * http.rate ? ' (sat.)' : '';
    const added = row.id === 'bare' ? undefined : p99Added(row, bare);
    lines.push([
      row.label.padEnd(38),
      pad(int(row.peak.rps), 10),
      pad(bare ? `${(row.peak.rps / bare.peak.rps).toFixed(2)}` : '—', 7),
      pad(express ? `${(row.peak.rps / express.peak.rps).toFixed(2)}` : '—', 7),
      pad(row.peak.cpuMicrosPerRequest === undefined ? '—' : row.peak.cpuMicrosPerRequest.toFixed(1), 7),
      pad(ms(row.atRate.p50), 7),
      pad(ms(row.atRate.p99), 7),
      pad(added === undefined ? '—' : `${added >= 0 ? '+' : ''}${ms(added)}`, 9),
      pad(int(row.atRate.rps), 8),
    ].join(' ') + saturated + flags);
  }
  lines.push(`CPU µs: CPU time (user + system) of the row's server processes per request, in its peak round; p99 +bare: p99 added over the bare proxy's${paired ? ' run next to it' : ''} at the same rate; at rate: req/s achieved; (sat.): under 95 % of the rate, the server was saturated.`);
  if (http.bareRuns !== undefined) lines.push(speedLine(http.bareRuns));
  if (http.ratios !== undefined && http.ratios.length > 0) {
    const label = (id: string): string => http.rows.find((r) => r.id === id)?.label ?? id;
    lines.push('', `Throughput ratios in pairs (what the targets read): the two rows in turns of ${timing.pairSeconds} s, A B B A, `
      + `${timing.pairBlocks} block${timing.pairBlocks === 1 ? '' : 's'}, the median block counts:`);
    for (const r of http.ratios) {
      lines.push(`  ${`${label(r.measured)} / ${label(r.against)}`.padEnd(72)} ${r.ratio.toFixed(2)}×   (blocks ${r.blocks.map((b) => b.toFixed(2)).join(', ')})`);
    }
  }
  if (bearer !== undefined) {
    const versus = http.rows.filter((r) => r.id !== 'bearer').map((r) => `${(bearer.peak.rps / r.peak.rps).toFixed(2)}× ${r.label}`);
    lines.push('', `embedgate bearer throughput = ${versus.join('; ')}`);
    const bearerCpu = bearer.peak.cpuMicrosPerRequest;
    if (bearerCpu !== undefined) {
      const costs = http.rows.filter((r) => r.id !== 'bearer' && r.peak.cpuMicrosPerRequest !== undefined)
        .map((r) => `${((r.peak.cpuMicrosPerRequest as number) / bearerCpu).toFixed(2)}× ${r.label}`);
      lines.push(`CPU per request at peak, against bearer's ${bearerCpu.toFixed(1)} µs: ${costs.join('; ')}`);
    }
  }
  const shaped = http.rows.find((r) => r.id === 'shaped');
  if (bearer !== undefined && shaped !== undefined && bare !== undefined) {
    lines.push(`Split of the gap: the gateway's HTTP work (its headers both ways, request id, timer, listeners) takes the bare proxy to `
      + `${(shaped.peak.rps / bare.peak.rps).toFixed(2)}×; its own work on top (authentication, policy, access log, metrics) is `
      + `${(bearer.peak.rps / shaped.peak.rps).toFixed(2)}× of that`);
  }
  const front = http.rows.find((r) => r.id === 'nginx-auth');
  const nginx = http.rows.find((r) => r.id === 'nginx');
  if (front !== undefined && bearer !== undefined && nginx !== undefined) {
    lines.push(`nginx in front (auth_request to the gateway for each request, then nginx proxies): ${int(front.peak.rps)} req/s = `
      + `${(front.peak.rps / bearer.peak.rps).toFixed(2)}× the gateway proxying alone (bearer), ${(front.peak.rps / nginx.peak.rps).toFixed(2)}× the nginx reverse proxy`);
  }
  return lines;
}

const LABEL_WIDTH = 46;

function visitLine(name: string, v: { medianMs: number; p90Ms: number }, width = LABEL_WIDTH): string {
  return `  ${name.padEnd(width)} median ${v.medianMs.toFixed(1).padStart(6)} ms   p90 ${v.p90Ms.toFixed(1).padStart(6)} ms`;
}

const CARRIER_NAMES = { cookie: 'cookie', worker: 'service worker', none: 'no session' } as const;

/** Firefox's or WebKit's figures, laid out as Chromium's, each gateway row followed by how the session travelled. */
function engineLines(e: EngineEmbedFigures): string[] {
  if (!e.measured) return [`Embed handshake in ${e.name}: not measured: ${e.reason}`];
  const width = Math.max(LABEL_WIDTH, ...e.rows.map((row) => row.label.length));
  const lines = [
    `Embed handshake in ${e.version}: iframe src set → the app's first request, ${e.runs} visits each, over HTTPS, ${e.cookies}:`,
    `  a driven browser (${e.launch}): the automation may add a little to every figure; not checked against the budget`,
  ];
  for (const row of e.rows) {
    const counts = Object.entries(row.carriers ?? {}).map(([carrier, n]) => `${CARRIER_NAMES[carrier as keyof typeof CARRIER_NAMES]} ${n}/${row.runs}`);
    const how = row.carriers === undefined ? '' : `   session by ${counts.join(', ') || 'nothing seen'}; bootstrap page ${row.bootstrapped}/${row.runs}`;
    lines.push(visitLine(row.label, row, width) + how);
  }
  const worker = (via: string): string => (e.rows.find((row) => row.via === via)?.carrier === 'worker' ? ' (auto → worker)' : '');
  // Firefox and WebKit give times rounded to the millisecond: equal medians may differ in a float's last bits ("-0.0").
  const added = (n: number): string => (Math.abs(n) < 0.05 ? 0 : n).toFixed(1);
  lines.push(`  added by the handshake: ${added(e.addedMs)} ms through the bootstrap page${worker('gateway')} (of which the second page load `
    + `${added(e.extraPageMs)} ms), ${added(e.attachAddedMs)} ms with attach({ src })${worker('attach')}, ${added(e.workerAddedMs)} ms in worker mode`);
  return lines;
}

/** The bridge's three paths, each timed on one clock (the host's, or the frame's), and what the bridge adds. */
function bridgeLines(b: BridgeFigures): string[] {
  const rows: Array<[string, { medianMs: number; p90Ms: number }]> = [
    [`through the bridge: host setProps → host 'props' event`, b.bridge],
    [`a click in the frame → the renderer's store`, b.click],
    [`set_props in the frame → the renderer's store`, b.setProps],
  ];
  const width = Math.max(...rows.map(([label]) => label.length));
  const signed = (n: number): string => `${n >= 0 ? '+' : ''}${n.toFixed(1)}`;
  return [
    `Host ↔ app bridge: ${b.input} set → the callback's ${b.output} (the demo's Dash app), ${b.runs} runs each, interleaved, headless ${b.browser}:`,
    ...rows.map(([label, stats]) => visitLine(label, stats, width)),
    `  added by the bridge: ${signed(b.addedMs)} ms vs the click (which also runs the dropdown's own handling), `
      + `${signed(b.addedOverSetPropsMs)} ms vs set_props in the frame (the bridge's messages and checks alone)`,
  ];
}

/** The two CPU profiles side by side, µs per request. */
function profileLines(p: ComparedProfiles & ProfileLoad): string[] {
  const us = (v: number): string => v.toFixed(1).padStart(7);
  const added = (e: ComparedEntry): string => `${e.us - e.baselineUs >= 0 ? '+' : ''}${(e.us - e.baselineUs).toFixed(1)}`.padStart(7);
  return [
    `CPU per request at the same load (${p.rate.toLocaleString('en-US')} req/s over ${p.connections} connections, ${p.requests.toLocaleString('en-US')} requests), self time, idle excluded:`,
    '(the bare proxy here relays as the gateway does: undici\'s dispatch, no body stream)',
    `  ${'area'.padEnd(62)} bare proxy  gateway   added`,
    ...p.areas.filter((e) => e.us >= 0.05 || e.baselineUs >= 0.05).map((e) => `  ${e.name.padEnd(62)} ${us(e.baselineUs)} µs ${us(e.us)} µs ${added(e)}`),
    `  ${'total'.padEnd(62)} ${us(p.baselineTotalUs)} µs ${us(p.totalUs)} µs ${added({ name: '', us: p.totalUs, baselineUs: p.baselineTotalUs })}`,
    '', 'Functions that add the most (gateway − bare proxy, µs per request):',
    ...p.added.map((e) => `  ${added(e)}  ${e.name} (gateway ${e.us.toFixed(2)})`),
  ];
}

export function reportLines(results: Results, targets: TargetCheck[]): string[] {
  const { machine } = results;
  const lines = [
    `embedgate benchmark, ${results.startedAt}${results.quick ? ' (quick)' : ''}: ${machine.cpu}, ${machine.cores} cores, ${machine.ramGiB} GiB, Node ${machine.node}, ${machine.os}`,
  ];
  const percent = (value: number | undefined): string => (value === undefined ? 'unknown' : `${value.toFixed(1)} %`);
  // The browsers of the embed and bridge sections are the bench's, but machine.ts cannot follow all of their processes.
  const browserCpuSeconds = [results.embed, ...(results.embed?.engines ?? []), results.bridge].reduce((sum, e) => sum + (e?.uncountedCpuSeconds ?? 0), 0);
  const browserPercent = results.seconds > 0 ? (100 * browserCpuSeconds) / (results.seconds * machine.cores) : 0;
  const other = machine.otherCpuPercent === undefined || browserPercent < 0.05 ? machine.otherCpuPercent : Math.max(0, machine.otherCpuPercent - browserPercent);
  lines.push(`Load average at start ${machine.loadAverage.toFixed(2)}; of all CPU time during the run, ${percent(machine.stealPercent)} went to other guests `
    + `of the host (steal) and ${percent(other)} to processes outside the bench`
    + `${other === machine.otherCpuPercent ? '' : ` (less the ${browserPercent.toFixed(1)} % of the embed and bridge sections' browsers)`}: high values mean disturbed figures.`);
  if (results.staleBuild) lines.push('WARNING: packages/embedgate/src is newer than dist/: the gateway ran the last build (npm run build)');
  if (results.http !== undefined) lines.push('', ...httpLines(results.http, results.timing));
  if (results.tokens !== undefined) {
    const t = results.tokens;
    lines.push('', `Token verification, per token, in process: node:crypto.verify RS256 ${t.cryptoVerifyUs.toFixed(1)} µs (median); TokenVerifier `
      + `uncached ${t.uncachedUs.toFixed(1)} µs median (${(t.uncachedUs / t.cryptoVerifyUs).toFixed(2)}×; mean ${t.uncachedMeanUs.toFixed(1)} µs), cached ${t.cachedUs.toFixed(2)} µs`);
  }
  if (results.routes !== undefined) {
    const r = results.routes;
    lines.push('', `Policy, request matching the last route: in process ${duration(r.inProcess.oneRouteNs)} (1 route), `
      + `${duration(r.inProcess.thousandRoutesNs)} (1,000 routes) per evaluation; gateway ${int(r.oneRouteRps)} req/s (1 route), `
      + `${int(r.thousandRoutesRps)} req/s (1,000 routes), ${routesDifference(r.thousandRoutesRps / r.oneRouteRps)}`);
  }
  if (results.memory !== undefined) {
    const m = results.memory;
    lines.push('', `Memory: gateway RSS ${(m.startRssBytes / MB).toFixed(0)} MB after start-up, ${(m.idleRssBytes / MB).toFixed(0)} MB after the load above, `
      + `${(m.peakRssBytes / MB).toFixed(0)} MB at most with `
      + `${int(m.connections)} connections (${int(m.rpsAtConnections)} req/s${m.errorsAtConnections > 0 ? `, ${m.errorsAtConnections} errors` : ''}); `
      + `${int(m.sessions.sessions)} sessions in MemorySessionStore: ${int(m.sessions.heapBytesPerSession)} B heap, ${int(m.sessions.rssBytesPerSession)} B RSS per session`);
    if (m.bare !== undefined) {
      const b = m.bare;
      lines.push(`  reference, bare Node proxy (undici, no auth; fresh, plain node): RSS ${(b.startRssBytes / MB).toFixed(0)} MB after start-up, `
        + `${(b.peakRssBytes / MB).toFixed(0)} MB at most with ${int(m.connections)} connections (${int(b.rpsAtConnections)} req/s`
        + `${b.errorsAtConnections > 0 ? `, ${b.errorsAtConnections} errors` : ''}); the gateway's peak is ${((m.peakRssBytes - b.peakRssBytes) / MB).toFixed(0)} MB above it`);
    }
  }
  if (results.workers !== undefined) {
    const w = results.workers;
    lines.push('', w.supported
      ? `Workers (SQLite sessions, cookie requests): --workers 1 ${int(w.oneRps)} req/s, --workers 2 ${int(w.twoRps)} req/s (${(w.twoRps / w.oneRps).toFixed(2)}×)`
      : 'Workers: embedgate serve --workers is not supported yet');
  }
  if (results.embed !== undefined) {
    const e = results.embed;
    const visit = visitLine;
    lines.push('', `Embed scripts, min+gzip: ${e.scripts.map((s) => `${s.name} ${int(s.gzipBytes)} B (${int(s.minBytes)} B min)`).join(', ')}`,
      `Embed handshake: iframe src set → the app's first request, ${e.runs} visits each, headless Chromium:`,
      visit('app framed directly (baseline)', e.direct),
      visit('app framed through one extra page load', e.hop),
      visit('through embedgate (bootstrap page, handshake)', e.gateway),
      visit('through embedgate, attach({ src }) first', e.attach),
      visit('through embedgate, worker mode (bootstrap)', e.worker),
      `  added by the handshake: ${e.addedMs.toFixed(1)} ms through the bootstrap page (of which the second page load ${e.extraPageMs.toFixed(1)} ms), `
        + `${e.attachAddedMs.toFixed(1)} ms with attach({ src }), ${e.workerAddedMs.toFixed(1)} ms in worker mode`);
    for (const engine of e.engines ?? []) lines.push('', ...engineLines(engine));
  }
  if (results.bridge !== undefined) lines.push('', ...bridgeLines(results.bridge));
  if (results.profile !== undefined) lines.push('', ...profileLines(results.profile));
  lines.push('', 'Targets:', ...targets.map((t) =>
    `  ${t.pass === undefined ? '  -  ' : t.pass ? 'PASS ' : 'MISS '} ${t.name.padEnd(44)} ${t.target.padEnd(10)} ${t.measured}`));
  lines.push('', `Run time ${Math.round(results.seconds)} s.`);
  return lines;
}
