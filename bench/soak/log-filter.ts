// Keeps the gateway's log small over a long soak: access lines of expected answers (2xx, 401, 403) are counted, not
// kept; each audit reason keeps its first lines; everything else (start-up, warnings, errors, 5xx) is written out.
import { createWriteStream, type WriteStream } from 'node:fs';
import type { Readable } from 'node:stream';

const KEPT_PER_REASON = 20;
const MAX_KEPT_BYTES = 20 * 2 ** 20;
const STATUS = /"status":(\d{3})/;
const REASON = /"reason":"([^"]+)"/;

export interface LogSummary {
  /** Access lines by status. */
  statuses: Record<string, number>;
  /** Audit (denial) lines by reason. */
  reasons: Record<string, number>;
  /** Lines at warn level or above that are not audit lines (level 40 warn, 50 error, 60 fatal). */
  problems: number;
  /** The first few of those, for the report. */
  firstProblems: string[];
}

export class LogFilter {
  readonly summary: LogSummary = { statuses: {}, reasons: {}, problems: 0, firstProblems: [] };
  private readonly out: WriteStream;
  private kept = 0;
  private partial = '';

  constructor(stream: Readable, file: string) {
    this.out = createWriteStream(file);
    stream.setEncoding('utf8');
    stream.on('data', (chunk: string) => {
      const lines = (this.partial + chunk).split('\n');
      this.partial = lines.pop() ?? '';
      for (const line of lines) this.line(line);
    });
  }

  private keep(line: string): void {
    if (this.kept > MAX_KEPT_BYTES) return;
    this.kept += line.length + 1;
    this.out.write(`${line}\n`);
  }

  private line(line: string): void {
    if (line === '') return;
    if (line.includes('"audit":"deny"')) {
      const reason = REASON.exec(line)?.[1] ?? '?';
      const seen = (this.summary.reasons[reason] ?? 0) + 1;
      this.summary.reasons[reason] = seen;
      if (seen <= KEPT_PER_REASON) this.keep(line);
      return;
    }
    if (line.includes('"msg":"request"')) {
      const status = STATUS.exec(line)?.[1] ?? '?';
      this.summary.statuses[status] = (this.summary.statuses[status] ?? 0) + 1;
      if (!/^(2\d\d|401|403)$/.test(status)) this.keep(line);
      return;
    }
    if (/"level":(4|5|6)0/.test(line)) {
      this.summary.problems += 1;
      if (this.summary.firstProblems.length < 10) this.summary.firstProblems.push(line.slice(0, 400));
    }
    this.keep(line);
  }

  /** Starts the counts again (after the set-up's own requests, e.g. /readyz polled until the issuer's keys load). */
  resetCounts(): void {
    this.summary.statuses = {};
    this.summary.reasons = {};
  }

  close(): Promise<void> {
    if (this.partial !== '') this.line(this.partial);
    return new Promise((resolve) => this.out.end(resolve));
  }
}
