// The load: the request mix sent at a fixed rate on a schedule (open loop: a slow answer does not delay the next
// request), or as fast as the gateway answers with a fixed number of requests in flight (closed loop, for the peak).
import { Pool } from 'undici';
import type { Recorder } from './recorder.js';
import { buildRequest, MIX, pickKind, type Kind, type TrafficSources } from './traffic.js';

/** Connections to the gateway (kept alive); requests beyond them wait in undici's queue. */
const CONNECTIONS = 64;
/** More than this in flight and the next scheduled requests are skipped (and counted): the gateway is not keeping up. */
export const MAX_IN_FLIGHT = 2000;
const TICK_MS = 2;
const TIMEOUT_MS = 10_000;

export class Generator {
  private readonly pool: Pool;
  private inFlight = 0;
  private sequence = 0;
  private stopped = true;

  constructor(private readonly sources: TrafficSources, private readonly recorder: Recorder) {
    this.pool = new Pool(sources.gatewayUrl, { connections: CONNECTIONS, keepAliveTimeout: 30_000, headersTimeout: TIMEOUT_MS, bodyTimeout: TIMEOUT_MS });
  }

  /** Sends one request and records its answer; resolves when it is answered (false: none could be made now). */
  private async send(kind: Kind): Promise<boolean> {
    const request = buildRequest(kind, this.sources);
    if (request === undefined) {
      this.recorder.skip();
      return false;
    }
    this.inFlight += 1;
    const requestId = `soak-${kind}-${(this.sequence += 1)}`;
    const started = performance.now();
    try {
      const response = await this.pool.request({
        path: request.path, method: request.method, headers: { ...request.headers, 'x-request-id': requestId },
        ...(request.body === undefined ? {} : { body: request.body }),
      });
      const text = await response.body.text();
      const bodyOk = request.bodyHas === undefined || response.statusCode !== MIX[kind].expect || text.includes(request.bodyHas);
      this.recorder.record(kind, { status: response.statusCode, bodyOk }, performance.now() - started, `${requestId} ${text.slice(0, 160)}`);
    } catch (error) {
      this.recorder.record(kind, { error: (error as { code?: string }).code ?? (error as Error).message }, performance.now() - started, requestId);
    } finally {
      this.inFlight -= 1;
      request.session?.release();
    }
    return true;
  }

  private dispatch(): void {
    void this.send(pickKind());
  }

  /** Sends `rate` requests per second on a fixed schedule until stop(). */
  runAtRate(rate: number): void {
    this.stopped = false;
    const start = performance.now();
    let sent = 0;
    const tick = (): void => {
      if (this.stopped) return;
      const now = performance.now();
      const due = Math.floor(((now - start) * rate) / 1000);
      if (due > sent) this.recorder.lag(now - start - (sent * 1000) / rate);
      for (; sent < due; sent++) {
        if (this.inFlight >= MAX_IN_FLIGHT) this.recorder.skip();
        else this.dispatch();
      }
      setTimeout(tick, TICK_MS);
    };
    tick();
  }

  /** Closed loop: `concurrency` requests always in flight for `seconds`; returns answers per second. */
  async runClosed(concurrency: number, seconds: number): Promise<number> {
    this.stopped = false;
    const deadline = performance.now() + seconds * 1000;
    let answered = 0;
    await Promise.all(Array.from({ length: concurrency }, async () => {
      while (!this.stopped && performance.now() < deadline) {
        if (await this.send(pickKind())) answered += 1;
        else await new Promise((resolve) => setTimeout(resolve, 1));
      }
    }));
    return answered / seconds;
  }

  stop(): void {
    this.stopped = true;
  }

  /** Waits for the requests in flight (at most `ms`), then closes the connections. */
  async close(ms = 5000): Promise<void> {
    const deadline = performance.now() + ms;
    while (this.inFlight > 0 && performance.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 20));
    await this.pool.destroy();
  }
}
