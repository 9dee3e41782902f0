// The gateway's own histogram must read, on /metrics, exactly as prom-client's Histogram would for the same
// observations: dashboards and alerts built on embedgate_upstream_duration_seconds depend on it.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Histogram, Registry } from 'prom-client';
import { LabelledHistogram } from '../src/ops/latency-histogram.js';

const BOUNDS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];
/** Below, on and above bounds, above the largest, zero; with label values that need escaping. */
const OBSERVATIONS: Array<[string, number]> = [
  ['sales', 0.0004], ['sales', 0.001], ['sales', 0.0011], ['sales', 0.3], ['sales', 10], ['sales', 12.5], ['sales', 0],
  ['live', 0.02], ['live', 0.02], ['odd "app"\\name', 2.5],
];

async function exposition(fill: (registry: Registry) => void): Promise<string> {
  const registry = new Registry();
  fill(registry);
  return registry.metrics();
}

describe('LabelledHistogram', () => {
  it('is exposed line for line as prom-client\'s Histogram with the same observations', async () => {
    const ours = await exposition((registry) => {
      const histogram = new LabelledHistogram('latency_seconds', 'Latency', 'app', BOUNDS, registry);
      for (const [app, value] of OBSERVATIONS) histogram.observe(app, value);
    });
    const theirs = await exposition((registry) => {
      const histogram = new Histogram({ name: 'latency_seconds', help: 'Latency', labelNames: ['app'], buckets: BOUNDS, registers: [registry] });
      for (const [app, value] of OBSERVATIONS) histogram.observe({ app }, value);
    });
    // prom-client prints `le` before the other labels; Prometheus reads labels in any order.
    const sorted = (text: string): string[] => text.split('\n').map((line) => line.replace(/\{(.*)\}/, (_all, labels: string) => `{${labels.split(/,(?=[a-z_]+=")/).sort().join(',')}}`)).sort();
    assert.deepEqual(sorted(ours), sorted(theirs));
    assert.match(ours, /^latency_seconds_bucket\{le="0\.001",app="sales"\} 3$/m, 'a value on a bound counts in that bucket');
    assert.match(ours, /^latency_seconds_count\{app="odd \\"app\\"\\\\name"\} 1$/m, 'label values are escaped');
  });

  it('exposes nothing before the first observation, and nothing after a reset', async () => {
    const registry = new Registry();
    const histogram = new LabelledHistogram('latency_seconds', 'Latency', 'app', BOUNDS, registry);
    assert.doesNotMatch(await registry.metrics(), /latency_seconds_(bucket|sum|count)/);
    histogram.observe('sales', 0.2);
    assert.match(await registry.metrics(), /^latency_seconds_count\{app="sales"\} 1$/m);
    registry.resetMetrics();
    assert.doesNotMatch(await registry.metrics(), /latency_seconds_(bucket|sum|count)/);
  });
});
