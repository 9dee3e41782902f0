// The shape of one run's results, as written to bench/results/latest.json and read by the report and the chart.
import type { LoadFigures } from './load.js';
import type { Machine } from './machine.js';
import type { VerificationFigures } from './micro/verify.js';
import type { PolicyFigures } from './micro/policy.js';
import type { BridgeFigures } from './bridge.js';
import type { EmbedFigures } from './embed.js';
import type { ComparedProfiles } from './cpu-profile.js';
import type { ProfileLoad } from './sections/profile.js';
import type { Timing } from './options.js';
import type { HttpConfig } from './world.js';

export interface HttpRow {
  id: HttpConfig['id'];
  label: string;
  /** Best of the peak rounds (fixed connection count, as fast as the server answers). */
  peak: LoadFigures;
  /** At the fixed rate (half the bare proxy's peak). */
  atRate: LoadFigures;
  /**
   * The bare proxy's run next to `atRate` (just before or after it), which the p99 added is read against. Absent for
   * the bare proxy's own row, and in results written before the latency runs were paired.
   */
  pairedBare?: LoadFigures;
}

/** A throughput ratio from A B B A blocks of short peak runs (sections/paired-ratios.ts). */
export interface PairedRatio {
  measured: HttpConfig['id'];
  against: HttpConfig['id'];
  /** The median block's ratio. */
  ratio: number;
  blocks: number[];
}

export interface HttpResults {
  upstream: 'node' | 'nginx';
  /** The fixed rate of the latency phase, req/s. */
  rate: number;
  rows: HttpRow[];
  /**
   * Every run of the bare proxy (its peak rounds, its latency runs): the same server throughout, so their spread is how
   * much the machine's speed moved during the phase. Absent in results written before it was kept.
   */
  bareRuns?: { peakRps: number[]; p99AtRate: number[] };
  /** The ratios the targets read, measured in pairs; absent in results written before they were. */
  ratios?: PairedRatio[];
}

export interface RoutesResults {
  inProcess: PolicyFigures;
  /** Gateway throughput (best of interleaved rounds), req/s. */
  oneRouteRps: number;
  thousandRoutesRps: number;
}

export interface MemoryResults {
  /** Gateway VmRSS right after start-up, and just before the 1,000 connections (after the earlier sections' load). */
  startRssBytes: number;
  idleRssBytes: number;
  /** Highest VmRSS sampled while 1,000 connections were open. */
  peakRssBytes: number;
  connections: number;
  rpsAtConnections: number;
  errorsAtConnections: number;
  /**
   * Reference: the same load on the bare Node proxy (undici Pool + node:http, no auth), a fresh process run by plain
   * node: what Node itself costs at `connections`. Absent in results written before it was measured.
   */
  bare?: { startRssBytes: number; peakRssBytes: number; rpsAtConnections: number; errorsAtConnections: number };
  sessions: { sessions: number; heapBytesPerSession: number; rssBytesPerSession: number };
}

export type WorkersResults = { supported: false } | { supported: true; oneRps: number; twoRps: number };

export interface Results {
  startedAt: string;
  seconds: number;
  quick: boolean;
  timing: Timing;
  machine: Machine;
  /** True when packages/embedgate/src changed after dist/ was built: the CLI ran older code. */
  staleBuild: boolean;
  http?: HttpResults;
  tokens?: VerificationFigures;
  routes?: RoutesResults;
  memory?: MemoryResults;
  workers?: WorkersResults;
  /** Chromium's figures (checked against the targets), then Firefox's and WebKit's in embed.engines (printed only). */
  embed?: EmbedFigures;
  /** The host ↔ app bridge in Chromium. */
  bridge?: BridgeFigures;
  /** The gateway's and the bare proxy's CPU profiles under the same load. */
  profile?: ComparedProfiles & ProfileLoad;
}
