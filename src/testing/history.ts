// The mock's call history: every hypercall, guest copy, injected fault, state change and
// return, in order, for assertions (undici's MockCallHistory, at the level of copies). It keeps
// everything unless the hypervisor was given a historyLimit.

import type { CopyDirection } from './faults.js';

export type HistoryEvent =
  | {
      readonly kind: 'call';
      readonly seq: number;
      readonly op: number;
      readonly args: readonly bigint[];
      readonly name: string;
      /** A re-execution Xen made of an earlier entry (hypercall_create_continuation), not a new call. */
      readonly continuation?: true;
    }
  | {
      readonly kind: 'copy';
      readonly seq: number;
      readonly name: string;
      readonly direction: CopyDirection;
      readonly address: bigint;
      readonly length: number;
      readonly what: string;
      readonly ok: boolean;
    }
  | { readonly kind: 'fault'; readonly seq: number; readonly name: string; readonly direction: CopyDirection; readonly address: bigint; readonly page: number; readonly rule: string }
  /** A call a reply() rule answered with -errno before its handler ran. */
  | { readonly kind: 'reply'; readonly seq: number; readonly name: string; readonly errno: number; readonly rule: string }
  | { readonly kind: 'effect'; readonly seq: number; readonly name: string; readonly effect: string; readonly detail: Readonly<Record<string, unknown>> }
  | { readonly kind: 'return'; readonly seq: number; readonly name: string; readonly result: bigint };

type WithoutSeq<T> = T extends unknown ? Omit<T, 'seq'> : never;

export class CallHistory {
  private readonly list: HistoryEvent[] = [];
  private seq = 0;
  /** Events let go because of the limit; 0 unless one was set. The kept ones are the newest. */
  dropped = 0;
  /**
   * @param limit Most events kept (MockHypervisorOptions.historyLimit). Default Infinity: every
   * event is kept, so queries see everything. With a limit (a soak must not grow without
   * bound) the oldest go and `dropped` says how many.
   */
  constructor(private readonly limit = Infinity) {}

  /** Events recorded since the start or the last clear(), kept or dropped. */
  get recorded(): number {
    return this.list.length + this.dropped;
  }

  /** @internal */
  record(e: WithoutSeq<HistoryEvent>): void {
    // The event object is the caller's fresh literal: stamp it rather than copy it.
    (e as { seq?: number }).seq = ++this.seq;
    this.list.push(e as unknown as HistoryEvent);
    if (this.list.length > this.limit) {
      // Drop the oldest tenth at once: trimming one event per record would copy the whole list
      // on every call once it is full.
      const n = this.list.length - Math.floor(this.limit * 0.9);
      this.list.splice(0, n);
      this.dropped += n;
    }
  }

  all(): readonly HistoryEvent[] {
    return this.list;
  }
  calls(name?: string): Extract<HistoryEvent, { kind: 'call' }>[] {
    return this.list.filter((e): e is Extract<HistoryEvent, { kind: 'call' }> => e.kind === 'call' && (!name || e.name === name));
  }
  copies(): Extract<HistoryEvent, { kind: 'copy' }>[] {
    return this.list.filter((e): e is Extract<HistoryEvent, { kind: 'copy' }> => e.kind === 'copy');
  }
  faults(): Extract<HistoryEvent, { kind: 'fault' }>[] {
    return this.list.filter((e): e is Extract<HistoryEvent, { kind: 'fault' }> => e.kind === 'fault');
  }
  /** Calls reply() rules answered. */
  replies(): Extract<HistoryEvent, { kind: 'reply' }>[] {
    return this.list.filter((e): e is Extract<HistoryEvent, { kind: 'reply' }> => e.kind === 'reply');
  }
  effects(effect?: string): Extract<HistoryEvent, { kind: 'effect' }>[] {
    return this.list.filter((e): e is Extract<HistoryEvent, { kind: 'effect' }> => e.kind === 'effect' && (!effect || e.effect === effect));
  }
  clear(): void {
    this.list.length = 0;
    this.dropped = 0;
  }
}
