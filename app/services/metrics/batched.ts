import type { Counter, Histogram } from "prom-client";

/** A counter and a duration histogram fed by the same events: requests, invocations. */
export interface TimedEvents<Labels extends Record<string, string>> {
  /** One event with these labels that took `seconds`. */
  record(labels: Labels, seconds: number): void;
}

/** Observations kept per series before they are handed to prom-client. */
const batchSize = 512;

class PendingSeries<Labels> {
  length = 0;
  readonly seconds = new Float64Array(batchSize);
  constructor(readonly labels: Labels) {}
}

/**
 * Records events into plain per-series arrays and hands them to prom-client in batches: when a
 * series' batch is full, and before every scrape (`collect`), so /metrics is always exact.
 * Measured on the invocation path, prom-client's own `inc` + `observe` per event cost about as
 * much CPU as the rest of Picasso's work on a small invocation; the batch makes that a tight loop
 * that runs once per `batchSize` events.
 */
export class BatchedTimedEvents<Labels extends Record<string, string>> implements TimedEvents<Labels> {
  private readonly series = new Map<string, PendingSeries<Labels>>();

  constructor(
    private readonly counter: Counter<Extract<keyof Labels, string>>,
    private readonly histogram: Histogram<Extract<keyof Labels, string>>,
    private readonly labelNames: readonly (keyof Labels)[],
  ) {}

  record(labels: Labels, seconds: number): void {
    let key = "";
    for (const name of this.labelNames) key += `${labels[name]}\u0000`;
    let pending = this.series.get(key);
    if (!pending) {
      pending = new PendingSeries({ ...labels });
      this.series.set(key, pending);
    }
    if (pending.length === batchSize) this.flushSeries(pending);
    pending.seconds[pending.length++] = seconds;
  }

  /** Hands every pending event to prom-client; called by both metrics' `collect` before a scrape. */
  flush(): void {
    for (const pending of this.series.values()) if (pending.length > 0) this.flushSeries(pending);
  }

  private flushSeries(pending: PendingSeries<Labels>): void {
    const { labels, seconds, length } = pending;
    pending.length = 0;
    this.counter.inc(labels, length);
    for (let index = 0; index < length; index++) this.histogram.observe(labels, seconds[index] as number);
  }
}

/**
 * A counter for events on the request path (token cache hits): counted in a number per label set
 * and added to prom-client's counter before every scrape, for the same reason as above.
 */
export class BatchedCounter<Labels extends Record<string, string>> {
  private readonly pending = new Map<string, { labels: Labels; count: number }>();

  constructor(
    private readonly counter: Counter<Extract<keyof Labels, string>>,
    private readonly labelNames: readonly (keyof Labels)[],
  ) {}

  inc(labels: Labels, value = 1): void {
    let key = "";
    for (const name of this.labelNames) key += `${labels[name]}\u0000`;
    const entry = this.pending.get(key);
    if (entry) entry.count += value;
    else this.pending.set(key, { labels: { ...labels }, count: value });
  }

  flush(): void {
    for (const entry of this.pending.values()) {
      if (entry.count === 0) continue;
      this.counter.inc(entry.labels, entry.count);
      entry.count = 0;
    }
  }
}
