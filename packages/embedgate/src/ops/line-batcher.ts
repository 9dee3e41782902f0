// Log lines written during one turn of the event loop, handed to the destination as one string when the turn ends
// (or once they reach a batch's length): sonic-boom measures its pending text again on every write, so under load a
// write per line costs in proportion to what is already pending.
import type { DestinationStream } from 'pino';

/** What the logger's stdout destination (a sonic-boom) offers beyond `write`. */
export interface FlushableDestination extends DestinationStream {
  flushSync(): void;
  flush(callback?: (error?: Error) => void): void;
}

export class LineBatcher implements FlushableDestination {
  private pending: string[] = [];
  private pendingLength = 0;
  private scheduled = false;

  /** `batchLength`: lines are handed over at once when they reach this many characters (the destination's batch). */
  constructor(private readonly destination: FlushableDestination, private readonly batchLength: number) {}

  write(line: string): void {
    this.pending.push(line);
    this.pendingLength += line.length;
    if (this.pendingLength >= this.batchLength) this.handOver();
    else if (!this.scheduled) {
      this.scheduled = true;
      setImmediate(this.endOfTurn);
    }
  }

  flushSync(): void {
    this.handOver();
    this.destination.flushSync();
  }

  flush(callback?: (error?: Error) => void): void {
    this.handOver();
    this.destination.flush(callback);
  }

  private readonly endOfTurn = (): void => {
    this.scheduled = false;
    this.handOver();
  };

  private handOver(): void {
    if (this.pending.length === 0) return;
    const text = this.pending.length === 1 ? this.pending[0] as string : this.pending.join('');
    this.pending = [];
    this.pendingLength = 0;
    this.destination.write(text);
  }
}
