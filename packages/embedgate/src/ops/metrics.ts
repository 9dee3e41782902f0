// Prometheus metrics for one gateway instance, on its own registry.
import { Counter, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

export class GatewayMetrics {
  readonly registry = new Registry();
  readonly requests = new Counter({
    name: 'embedgate_requests_total',
    help: 'Requests handled, by app and outcome (proxied, public, bootstrap, login, unauthenticated, forbidden, rejected, error)',
    labelNames: ['app', 'outcome'] as const,
    registers: [this.registry],
  });
  readonly authFailures = new Counter({
    name: 'embedgate_auth_failures_total',
    help: 'Authentication and authorization failures, by reason',
    labelNames: ['reason'] as const,
    registers: [this.registry],
  });
  readonly idpFetches = new Counter({
    name: 'embedgate_jwks_fetches_total',
    help: 'Discovery and JWKS fetches, by issuer, kind and result',
    labelNames: ['issuer', 'kind', 'result'] as const,
    registers: [this.registry],
  });
  readonly upstreamLatency = new Histogram({
    name: 'embedgate_upstream_duration_seconds',
    help: 'Time from sending a request upstream to receiving its response headers',
    labelNames: ['app'] as const,
    buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
    registers: [this.registry],
  });
  readonly websockets = new Counter({
    name: 'embedgate_websocket_sessions_total',
    help: 'Proxied WebSocket sessions, by app and how they ended',
    labelNames: ['app', 'end'] as const,
    registers: [this.registry],
  });

  /** Labelled children of the per-request metrics, looked up once per app and outcome rather than per request. */
  private readonly requestCounters = new Map<string, Map<string, Counter.Internal>>();
  private readonly upstreamTimers = new Map<string, Histogram.Internal<'app'>>();

  constructor() {
    collectDefaultMetrics({ register: this.registry, prefix: 'embedgate_' });
  }

  countRequest(app: string, outcome: string): void {
    let byOutcome = this.requestCounters.get(app);
    if (byOutcome === undefined) this.requestCounters.set(app, byOutcome = new Map());
    let counter = byOutcome.get(outcome);
    if (counter === undefined) byOutcome.set(outcome, counter = this.requests.labels({ app, outcome }));
    counter.inc();
  }

  observeUpstream(app: string, seconds: number): void {
    let timer = this.upstreamTimers.get(app);
    if (timer === undefined) this.upstreamTimers.set(app, timer = this.upstreamLatency.labels({ app }));
    timer.observe(seconds);
  }
}
