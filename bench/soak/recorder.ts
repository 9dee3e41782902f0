// Counts every answer of the soak in 30 s windows: latencies and statuses per kind, and what was not expected.
import { quantile } from '../stats.js';
import { KINDS, MIX, type Kind } from './traffic.js';

export type Outcome = { status: number; bodyOk: boolean } | { error: string };

export interface KindFigures {
  requests: number;
  p50: number;
  p99: number;
  statuses: Record<string, number>;
  unexpected: number;
}

export interface WindowFigures {
  seconds: number;
  requests: number;
  rps: number;
  p50: number;
  p99: number;
  /** Answers by status over all kinds; network errors and timeouts under "error". */
  statuses: Record<string, number>;
  fiveXx: number;
  /** 4xx answers a kind does not expect (a 401 for a bad token is expected, one for a bearer token is not). */
  unexpected4xx: number;
  /** Every answer not expected, 2xx with a wrong body and errors included. */
  unexpected: number;
  errors: number;
  /** Requests not sent: no usable session at that moment, or too many in flight. */
  skipped: number;
  /** The scheduler's largest lag behind the fixed schedule (ms). */
  maxLagMs: number;
  kinds: Record<Kind, KindFigures>;
}

export interface Surprise {
  at: string;
  kind: Kind;
  what: string;
}

class KindWindow {
  latencies: number[] = [];
  statuses: Record<string, number> = {};
  unexpected = 0;
}

export class Recorder {
  private kinds = new Map<Kind, KindWindow>();
  private skipped = 0;
  private maxLagMs = 0;
  private started = performance.now();
  /** The first unexpected answers of the whole run, for the report. */
  readonly surprises: Surprise[] = [];

  constructor() {
    this.reset();
  }

  private reset(): void {
    this.kinds = new Map(KINDS.map((kind) => [kind, new KindWindow()]));
    this.skipped = 0;
    this.maxLagMs = 0;
    this.started = performance.now();
  }

  record(kind: Kind, outcome: Outcome, ms: number, detail = ''): void {
    const window = this.kinds.get(kind) as KindWindow;
    const key = 'error' in outcome ? 'error' : String(outcome.status);
    window.statuses[key] = (window.statuses[key] ?? 0) + 1;
    if ('error' in outcome) {
      window.unexpected += 1;
      this.surprise(kind, `${outcome.error} ${detail}`);
      return;
    }
    window.latencies.push(ms);
    if (outcome.status !== MIX[kind].expect || !outcome.bodyOk) {
      window.unexpected += 1;
      this.surprise(kind, `${outcome.status}${outcome.bodyOk ? '' : ' (unexpected body)'} ${detail}`);
    }
  }

  private surprise(kind: Kind, what: string): void {
    if (this.surprises.length < 50) this.surprises.push({ at: new Date().toISOString(), kind, what: what.slice(0, 300) });
  }

  skip(): void {
    this.skipped += 1;
  }

  lag(ms: number): void {
    this.maxLagMs = Math.max(this.maxLagMs, ms);
  }

  /** The figures of the window since the last call, and a new window. */
  take(): WindowFigures {
    const seconds = (performance.now() - this.started) / 1000;
    const all: number[] = [];
    const statuses: Record<string, number> = {};
    const kinds = {} as Record<Kind, KindFigures>;
    let unexpected = 0;
    let unexpected4xx = 0;
    for (const [kind, window] of this.kinds) {
      window.latencies.sort((a, b) => a - b);
      all.push(...window.latencies);
      let requests = 0;
      for (const [status, count] of Object.entries(window.statuses)) {
        statuses[status] = (statuses[status] ?? 0) + count;
        requests += count;
        if (/^4\d\d$/.test(status) && Number(status) !== MIX[kind].expect) unexpected4xx += count;
      }
      unexpected += window.unexpected;
      kinds[kind] = {
        requests, p50: quantile(window.latencies, 0.5, true), p99: quantile(window.latencies, 0.99, true),
        statuses: window.statuses, unexpected: window.unexpected,
      };
    }
    all.sort((a, b) => a - b);
    const requests = Object.values(statuses).reduce((sum, n) => sum + n, 0);
    const figures: WindowFigures = {
      seconds, requests, rps: requests / seconds, p50: quantile(all, 0.5, true), p99: quantile(all, 0.99, true), statuses,
      fiveXx: Object.entries(statuses).filter(([status]) => status.startsWith('5')).reduce((sum, [, n]) => sum + n, 0),
      unexpected4xx, unexpected, errors: statuses.error ?? 0, skipped: this.skipped, maxLagMs: this.maxLagMs, kinds,
    };
    this.reset();
    return figures;
  }
}
