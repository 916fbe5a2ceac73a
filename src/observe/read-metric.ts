// A metric family whose samples are read when the registry is scraped, from plain numbers the
// owning layers keep (counters, gauges, BucketHistograms): prom-client's registry calls get() and
// formats what it returns, so nothing is copied into prom-client between scrapes and nothing on
// the message path allocates for metrics.

import type { Registry } from 'prom-client';
import type { BucketHistogram } from '../lib/histogram.js';

export type Labels = Readonly<Record<string, string | number>>;

export interface Sample {
  readonly value: number;
  readonly labels?: Labels;
  /** For histograms: name_bucket, name_sum, name_count. */
  readonly metricName?: string;
}

export type MetricType = 'counter' | 'gauge' | 'histogram';

export interface ReadMetricSpec {
  readonly name: string;
  readonly help: string;
  readonly type: MetricType;
  /** The samples now; may be async (a statfs). */
  readonly read: () => Sample[] | Promise<Sample[]>;
}

/** The shape prom-client's Registry expects of a registered metric (get() + its identity). */
export class ReadMetric {
  readonly name: string;
  readonly help: string;
  readonly type: MetricType;
  readonly aggregator = 'sum';

  constructor(private readonly spec: ReadMetricSpec) {
    this.name = spec.name;
    this.help = spec.help;
    this.type = spec.type;
  }

  async get(): Promise<{ name: string; help: string; type: MetricType; values: Sample[]; aggregator: string }> {
    return { name: this.name, help: this.help, type: this.type, values: await this.spec.read(), aggregator: this.aggregator };
  }

  reset(): void {
    // Values live in the layers that own them; nothing to reset here.
  }
}

/** Registers each spec in every registry given. */
export function registerAll(registries: readonly Registry[], specs: readonly ReadMetricSpec[]): void {
  for (const spec of specs) {
    const m = new ReadMetric(spec);
    for (const r of registries) r.registerMetric(m as never);
  }
}

/** A BucketHistogram as Prometheus histogram samples (cumulative buckets, +Inf, sum, count). */
export function histogramSamples(name: string, h: BucketHistogram, labels: Labels = {}, out: Sample[] = []): Sample[] {
  let cumulative = 0;
  for (let i = 0; i < h.bounds.length; i++) {
    cumulative += h.counts[i]!;
    out.push({ metricName: `${name}_bucket`, labels: { ...labels, le: h.bounds[i]! }, value: cumulative });
  }
  cumulative += h.counts[h.bounds.length]!;
  out.push({ metricName: `${name}_bucket`, labels: { ...labels, le: '+Inf' }, value: cumulative });
  out.push({ metricName: `${name}_sum`, labels, value: h.sum });
  out.push({ metricName: `${name}_count`, labels, value: h.count });
  return out;
}

/** One unlabelled sample. */
export function one(value: number, labels?: Labels): Sample[] {
  return [labels === undefined ? { value } : { value, labels }];
}
