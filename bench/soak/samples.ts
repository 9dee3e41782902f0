// The shape of one 30 s sample and of the whole soak's results (also what bench/results/soak-latest.json holds).
import type { Machine } from '../machine.js';
import type { LogSummary } from './log-filter.js';
import type { Surprise, WindowFigures } from './recorder.js';
import type { MachineSample, ProcessSample, RedisSample } from './sampler.js';
import type { SessionCounts } from './sessions.js';
import type { GrantCounts } from './tokens.js';
import type { WsWindow } from './websockets.js';

export interface Sample {
  /** Seconds since the soak's fixed-rate load started (0: just before). */
  t: number;
  /** Traffic of the 30 s before the sample; none for t = 0. */
  traffic: WindowFigures | undefined;
  ws: WsWindow | undefined;
  gateway: ProcessSample;
  redis: RedisSample;
  idpRssBytes: number;
  machine: MachineSample;
}

export interface PeakPhase {
  seconds: number;
  concurrency: number;
  rps: number;
  /** % of one CPU the gateway used during it. */
  gatewayCpuPercent: number;
  traffic: WindowFigures;
  machine: MachineSample;
}

export interface VerdictLine {
  pass: boolean;
  text: string;
}

export interface SoakResults {
  startedAt: string;
  minutes: number;
  rate: number;
  /** undefined when --rate was given. */
  peak: PeakPhase | undefined;
  machine: Machine;
  samples: Sample[];
  tokens: GrantCounts;
  sessions: SessionCounts;
  surprises: Surprise[];
  gatewayLog: LogSummary;
  verdict: VerdictLine[];
  pass: boolean;
}
