// Per-op counters of what the retry layer saw and did. A caller reads them with
// xc.stats(); they are plain numbers, cheap enough to keep on every call.

export interface OpCounters {
  /** Calls made (one per raw or typed call, however many attempts it took). */
  calls: number;
  /** Hypercalls issued, re-issues included. */
  attempts: number;
  /** Attempts that returned -EFAULT. */
  efaults: number;
  /** Re-issues made. */
  retries: number;
  /** Calls that succeeded after at least one re-issue. */
  recovered: number;
  /** Failures the table refused to re-issue (XEN_ERR_RETRY_REFUSED). */
  refused: number;
  /** Failures that ran out of attempts (XEN_ERR_RETRY_EXHAUSTED). */
  exhausted: number;
  /** Other failures, passed through as XEN_ERR_HYPERCALL. */
  failed: number;
}

export class RetryStats {
  private readonly byOp = new Map<string, OpCounters>();

  counters(op: string): OpCounters {
    let c = this.byOp.get(op);
    if (!c) {
      c = { calls: 0, attempts: 0, efaults: 0, retries: 0, recovered: 0, refused: 0, exhausted: 0, failed: 0 };
      this.byOp.set(op, c);
    }
    return c;
  }

  /** A copy of every op's counters, keyed by table row name (or "hypercall N/M"). */
  snapshot(): Record<string, OpCounters> {
    return Object.fromEntries([...this.byOp].map(([k, v]) => [k, { ...v }]));
  }

  /** Sums over every op. */
  total(): OpCounters {
    const t: OpCounters = { calls: 0, attempts: 0, efaults: 0, retries: 0, recovered: 0, refused: 0, exhausted: 0, failed: 0 };
    for (const c of this.byOp.values()) for (const k of Object.keys(t) as (keyof OpCounters)[]) t[k] += c[k];
    return t;
  }

  reset(): void {
    this.byOp.clear();
  }
}
