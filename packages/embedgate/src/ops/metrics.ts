// Prometheus metrics for one gateway instance, on its own registry.
import { Counter, Registry, collectDefaultMetrics } from 'prom-client';
import { LabelledHistogram } from './latency-histogram.js';

/**
 * Requests by app and outcome, counted in plain numbers: prom-client's labelled inc() validates and hashes its labels
 * on every call, which the busiest path of the gateway need not pay. The counter reads the totals when scraped.
 */
class RequestCounts {
  private readonly byApp = new Map<string, Map<string, number>>();

  inc(labels: { app: string; outcome: string }): void {
    let byOutcome = this.byApp.get(labels.app);
    if (byOutcome === undefined) {
      byOutcome = new Map();
      this.byApp.set(labels.app, byOutcome);
    }
    byOutcome.set(labels.outcome, (byOutcome.get(labels.outcome) ?? 0) + 1);
  }

  *totals(): Generator<{ app: string; outcome: string; count: number }> {
    for (const [app, byOutcome] of this.byApp) {
      for (const [outcome, count] of byOutcome) yield { app, outcome, count };
    }
  }
}

export class GatewayMetrics {
  readonly registry = new Registry();
  readonly requests = new RequestCounts();
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
  /** Observed with the app's name. */
  readonly upstreamLatency = new LabelledHistogram(
    'embedgate_upstream_duration_seconds',
    'Time from sending a request upstream to receiving its response headers',
    'app',
    [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
    this.registry,
  );
  readonly websockets = new Counter({
    name: 'embedgate_websocket_sessions_total',
    help: 'Proxied WebSocket sessions, by app and how they ended',
    labelNames: ['app', 'end'] as const,
    registers: [this.registry],
  });

  constructor() {
    const requests = this.requests;
    new Counter({
      name: 'embedgate_requests_total',
      help: 'Requests handled, by app and outcome (proxied, public, bootstrap, login, unauthenticated, forbidden, rejected)',
      labelNames: ['app', 'outcome'] as const,
      registers: [this.registry],
      collect() {
        this.reset();
        for (const { app, outcome, count } of requests.totals()) this.inc({ app, outcome }, count);
      },
    });
    collectDefaultMetrics({ register: this.registry, prefix: 'embedgate_' });
  }
}
