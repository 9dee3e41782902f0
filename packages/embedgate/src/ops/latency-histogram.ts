// A Prometheus histogram with one label, kept in plain numbers: an observation is a bucket search and three
// additions, where prom-client's Histogram validates and hashes its labels on every call (3 µs per request in the
// gateway's profile). prom-client's Registry formats it at scrape time like its own histograms.
import type { Histogram, Registry } from 'prom-client';

interface Series {
  /** Observations per bucket (not cumulative); the last slot holds those above the largest bound. */
  perBucket: Float64Array;
  sum: number;
  count: number;
}

type Sample = { labels: Record<string, string | number>; value: number; metricName: string };

export class LabelledHistogram {
  /** What prom-client's Registry reads from a metric it formats. */
  readonly type = 'histogram';
  readonly aggregator = 'sum';
  private readonly series = new Map<string, Series>();

  constructor(
    readonly name: string,
    readonly help: string,
    private readonly label: string,
    private readonly bounds: readonly number[],
    registry: Registry,
  ) {
    // The Registry takes any object with the fields and methods it reads; its type lists only its own classes.
    registry.registerMetric(this as unknown as Histogram);
  }

  observe(labelValue: string, value: number): void {
    let series = this.series.get(labelValue);
    if (series === undefined) {
      series = { perBucket: new Float64Array(this.bounds.length + 1), sum: 0, count: 0 };
      this.series.set(labelValue, series);
    }
    let bucket = 0;
    while (bucket < this.bounds.length && value > (this.bounds[bucket] as number)) bucket++;
    series.perBucket[bucket] = (series.perBucket[bucket] as number) + 1;
    series.sum += value;
    series.count++;
  }

  /** The samples in prom-client's shape: cumulative buckets with `le`, then `+Inf`, sum and count, per label value. */
  get(): Promise<{ name: string; help: string; type: string; aggregator: string; values: Sample[] }> {
    const values: Sample[] = [];
    for (const [labelValue, series] of this.series) {
      let cumulative = 0;
      this.bounds.forEach((bound, i) => {
        cumulative += series.perBucket[i] as number;
        values.push({ labels: { le: bound, [this.label]: labelValue }, value: cumulative, metricName: `${this.name}_bucket` });
      });
      values.push(
        { labels: { le: '+Inf', [this.label]: labelValue }, value: series.count, metricName: `${this.name}_bucket` },
        { labels: { [this.label]: labelValue }, value: series.sum, metricName: `${this.name}_sum` },
        { labels: { [this.label]: labelValue }, value: series.count, metricName: `${this.name}_count` },
      );
    }
    return Promise.resolve({ name: this.name, help: this.help, type: this.type, aggregator: this.aggregator, values });
  }

  reset(): void {
    this.series.clear();
  }
}
