/**
 * A log-linear latency histogram (the HdrHistogram idea at fixed, small
 * size): constant memory and O(1) per record however many millions of
 * samples a workload records, percentiles within 1/32 (about 3 %) of the
 * true value, and the exact minimum, maximum and mean.
 *
 * ## Buckets
 *
 * Values are kept in nanoseconds. Bucket 0 holds values below 1 ns
 * (including negative ones, which two threads' clocks can produce for
 * near-zero latencies; they are also counted in `negative`). Above that,
 * each power of two `[2^e, 2^(e+1))` is split into {@linkcode SUB_BUCKETS}
 * equal parts: bucket `1 + e * 32 + sub`. `e` runs to 47 (2^48 ns is about
 * 78 hours); larger values land in the last bucket.
 *
 * @module
 */

/** Buckets per power of two: the relative precision is 1 / 32. */
export const SUB_BUCKETS = 32;
const OCTAVES = 48;
const BUCKETS = 1 + OCTAVES * SUB_BUCKETS;

/** Percentiles and extremes of a histogram, in ms. */
export interface LatencySummary {
  /** Samples recorded. */
  readonly count: number;
  /** Smallest sample. */
  readonly minMs: number;
  /** Mean of the samples. */
  readonly meanMs: number;
  /** 50th percentile (upper bound of its bucket, at most the maximum). */
  readonly p50Ms: number;
  /** 90th percentile. */
  readonly p90Ms: number;
  /** 99th percentile. */
  readonly p99Ms: number;
  /** Largest sample. */
  readonly maxMs: number;
  /** Samples below zero (clock skew between threads), counted as 0. */
  readonly negative: number;
}

/** One bar of a coarse histogram for charts and JSON. */
export interface LatencyBin {
  /** Lower bound, ms. */
  readonly fromMs: number;
  /** Upper bound, ms. */
  readonly toMs: number;
  /** Samples in `[fromMs, toMs)`. */
  readonly count: number;
}

/** Lower bound of bucket `i`, in ns. */
function bucketFloor(i: number): number {
  if (i === 0) return 0;
  const e = Math.floor((i - 1) / SUB_BUCKETS);
  const sub = (i - 1) % SUB_BUCKETS;
  return 2 ** e * (1 + sub / SUB_BUCKETS);
}

/** Records latencies; see the module docs. */
export class LatencyHistogram {
  readonly #counts = new Float64Array(BUCKETS);
  #count = 0;
  #sumNs = 0;
  #minNs = Infinity;
  #maxNs = -Infinity;
  #negative = 0;

  /** Samples recorded so far. */
  get count(): number {
    return this.#count;
  }

  /**
   * Records one sample.
   *
   * @param ms The latency in milliseconds; NaN is ignored.
   */
  record(ms: number): void {
    let ns = ms * 1e6;
    if (!(ns === ns)) return; // NaN
    if (ns < 0) {
      this.#negative++;
      ns = 0;
    }
    let i = 0;
    if (ns >= 1) {
      const e = Math.min(OCTAVES - 1, Math.floor(Math.log2(ns)));
      const sub = Math.min(
        SUB_BUCKETS - 1,
        Math.floor((ns / 2 ** e - 1) * SUB_BUCKETS),
      );
      i = 1 + e * SUB_BUCKETS + sub;
    }
    this.#counts[i]++;
    this.#count++;
    this.#sumNs += ns;
    if (ns < this.#minNs) this.#minNs = ns;
    if (ns > this.#maxNs) this.#maxNs = ns;
  }

  /**
   * The value below which a share `q` of the samples lie, as the upper
   * bound of the bucket holding it, capped at the maximum.
   *
   * @param q From 0 to 1.
   * @returns Milliseconds, or 0 without samples.
   */
  percentile(q: number): number {
    if (this.#count === 0) return 0;
    const rank = Math.max(1, Math.ceil(q * this.#count));
    let seen = 0;
    for (let i = 0; i < BUCKETS; i++) {
      seen += this.#counts[i];
      if (seen >= rank) {
        const upper = i + 1 < BUCKETS ? bucketFloor(i + 1) : Infinity;
        return Math.min(upper, this.#maxNs) / 1e6;
      }
    }
    return this.#maxNs / 1e6;
  }

  /** @returns Count, extremes, mean and percentiles in ms. */
  summary(): LatencySummary {
    const n = this.#count;
    return {
      count: n,
      minMs: n ? this.#minNs / 1e6 : 0,
      meanMs: n ? this.#sumNs / n / 1e6 : 0,
      p50Ms: this.percentile(0.5),
      p90Ms: this.percentile(0.9),
      p99Ms: this.percentile(0.99),
      maxMs: n ? this.#maxNs / 1e6 : 0,
      negative: this.#negative,
    };
  }

  /**
   * Merges the fine buckets into bins of a quarter power of two, from the
   * first non-empty one to the last, for charts.
   *
   * @returns Bins in ascending order; empty without samples.
   */
  bins(): LatencyBin[] {
    const step = SUB_BUCKETS / 4;
    const out: LatencyBin[] = [];
    let first = -1;
    for (let i = 0; i < BUCKETS; i += i === 0 ? 1 : step) {
      const end = i === 0 ? 1 : Math.min(BUCKETS, i + step);
      let c = 0;
      for (let k = i; k < end; k++) c += this.#counts[k];
      if (c > 0 && first < 0) first = out.length;
      out.push({
        fromMs: bucketFloor(i) / 1e6,
        toMs: (end < BUCKETS ? bucketFloor(end) : Infinity) / 1e6,
        count: c,
      });
    }
    if (first < 0) return [];
    let last = out.length - 1;
    while (out[last].count === 0) last--;
    return out.slice(first, last + 1);
  }
}
