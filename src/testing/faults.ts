// Copy-level fault injection for the mock hypervisor. A rule makes a guest copy fail the way a
// page under migration does: the copy touches an inaccessible page and Xen's copy_from/to_guest
// reports it. Because the mock's handlers copy in the order Xen's code does, the resulting
// EFAULT lands before or after the side effect exactly where it would on real hardware.
//
// Rules are matched in the order they were added; every decision is deterministic for a seed.

import { ErrorCodes, ValidationError, XencallError, describeValue } from '../errors.js';
import { optionalIntegerIn, requiredBag } from '../input.js';
import { xorshift32 } from './random.js';

export type CopyDirection = 'in' | 'out';

/** What one guest copy looks like to the fault plan. */
export interface CopyAttempt {
  readonly direction: CopyDirection;
  /** The table-row-style name of the op being handled ("domctl.createdomain"). */
  readonly op: string;
  /** First address of the copy. */
  readonly address: bigint;
  readonly length: number;
  /** Start address of the hypercall buffer the copy falls in. */
  readonly buffer: bigint;
  /** Index within that buffer of the first and last page the copy touches. */
  readonly firstPage: number;
  readonly lastPage: number;
  /** 1-based count of copies since the hypervisor started (or the plan was cleared). */
  readonly seq: number;
}

export interface FaultRuleSpec {
  /** 'in' = copy_from_guest, 'out' = copy_to_guest. Default: both. */
  direction?: CopyDirection | 'any';
  /** Only copies made while handling this op: a row name ("domctl.shadow_op.clean") or a hypercall ("domctl"). */
  op?: string;
  /** Only copies touching this hypercall buffer (its address, or anything with an `address`). */
  buffer?: bigint | { readonly address: bigint };
  /** With `buffer`: only copies touching this page index of the buffer (0-based). */
  page?: number;
  /** Fire on the nth matching copy (1-based). Default 1. */
  nth?: number;
  /** How many matching copies fail once the rule fires. Default 1; Infinity for "until cleared". */
  times?: number;
  /** A label shown in the history and in pending(). */
  label?: string;
}

export interface RandomFaultSpec {
  /** Probability that a matching copy fails, 0..1. */
  rate: number;
  /** Seed of the rule's own generator: the same seed gives the same faults. */
  seed: number;
  direction?: CopyDirection | 'any';
  op?: string;
  label?: string;
}

/** A fault decision: which page of the copy is "under migration". */
export interface InjectedFault {
  readonly rule: string;
  /** Index of the inaccessible page within the copy's buffer. */
  readonly page: number;
}

export class FaultRule {
  readonly label: string;
  /** Matching copies seen so far. */
  matched = 0;
  /** Faults this rule injected. */
  fired = 0;
  private readonly spec: FaultRuleSpec;
  private readonly bufferAddress: bigint | undefined;

  constructor(spec: FaultRuleSpec, index: number) {
    checkMatchFields(spec);
    optionalIntegerIn('fault.nth', spec.nth, 1, Number.MAX_SAFE_INTEGER);
    if (spec.times !== undefined && spec.times !== Infinity) optionalIntegerIn('fault.times', spec.times, 1, Number.MAX_SAFE_INTEGER);
    optionalIntegerIn('fault.page', spec.page, 0, Number.MAX_SAFE_INTEGER);
    if (spec.page !== undefined && spec.buffer === undefined) throw new ValidationError('fault.page', 'a page is a page of a buffer: give `buffer` too');
    if (spec.buffer !== undefined && typeof spec.buffer !== 'bigint' && typeof (spec.buffer as { address?: unknown } | null)?.address !== 'bigint') {
      throw new ValidationError('fault.buffer', `must be a buffer address (bigint) or a buffer, got ${describeValue(spec.buffer)}`);
    }
    this.spec = spec;
    this.bufferAddress = spec.buffer === undefined ? undefined : typeof spec.buffer === 'bigint' ? spec.buffer : spec.buffer.address;
    this.label = spec.label ?? describe(spec, index);
  }

  /** True while the rule can still fire. */
  get active(): boolean {
    return this.fired < (this.spec.times ?? 1);
  }

  /** @internal */
  check(c: CopyAttempt): InjectedFault | null {
    if (!this.active || !matches(this.spec, c)) return null;
    if (this.bufferAddress !== undefined && c.buffer !== this.bufferAddress) return null;
    if (this.spec.page !== undefined && (this.spec.page < c.firstPage || this.spec.page > c.lastPage)) return null;
    this.matched++;
    if (this.matched < (this.spec.nth ?? 1)) return null;
    this.fired++;
    return { rule: this.label, page: this.spec.page ?? c.firstPage };
  }
}

class RandomRule {
  readonly label: string;
  fired = 0;
  private readonly next: () => number;
  constructor(private readonly spec: RandomFaultSpec) {
    checkMatchFields(spec);
    if (typeof spec.rate !== 'number' || !(spec.rate >= 0 && spec.rate <= 1)) throw new ValidationError('fault.rate', `must be a probability from 0 to 1, got ${describeValue(spec.rate)}`);
    // The generator is 32-bit: a larger seed would be cut and two seeds would give the same faults.
    if (typeof spec.seed !== 'number' || !Number.isInteger(spec.seed) || spec.seed < -(2 ** 31) || spec.seed > 0xffffffff) {
      throw new ValidationError('fault.seed', `must be a 32-bit integer, got ${describeValue(spec.seed)}`);
    }
    this.next = xorshift32(spec.seed);
    this.label = spec.label ?? `random(rate=${spec.rate}, seed=${spec.seed}${spec.op ? `, op=${spec.op}` : ''}${spec.direction && spec.direction !== 'any' ? `, ${spec.direction}` : ''})`;
  }
  check(c: CopyAttempt): InjectedFault | null {
    if (!matches(this.spec, c)) return null;
    if (this.next() >= this.spec.rate) return null;
    this.fired++;
    // Pick the page of the copy that is "migrating", also from the seeded stream.
    const span = c.lastPage - c.firstPage + 1;
    return { rule: this.label, page: c.firstPage + Math.floor(this.next() * span) };
  }
}

/** The fields every rule matches on: direction, op and label. */
function checkMatchFields(spec: { direction?: unknown; op?: unknown; label?: unknown }): void {
  if (spec.direction !== undefined && spec.direction !== 'in' && spec.direction !== 'out' && spec.direction !== 'any') {
    throw new ValidationError('fault.direction', `must be 'in', 'out' or 'any', got ${describeValue(spec.direction)}`);
  }
  if (spec.op !== undefined && typeof spec.op !== 'string') throw new ValidationError('fault.op', `must be a row or hypercall name, got ${describeValue(spec.op)}`);
  if (spec.label !== undefined && typeof spec.label !== 'string') throw new ValidationError('fault.label', `must be a string, got ${describeValue(spec.label)}`);
}

function matches(spec: { direction?: CopyDirection | 'any'; op?: string }, c: CopyAttempt): boolean {
  if (spec.direction && spec.direction !== 'any' && spec.direction !== c.direction) return false;
  if (spec.op && spec.op !== c.op && !c.op.startsWith(`${spec.op}.`)) return false;
  return true;
}

function describe(spec: FaultRuleSpec, index: number): string {
  const parts = [`#${index + 1}`];
  if (spec.op) parts.push(spec.op);
  if (spec.direction && spec.direction !== 'any') parts.push(spec.direction === 'in' ? 'copy-in' : 'copy-out');
  if (spec.buffer !== undefined) parts.push(`buffer@0x${(typeof spec.buffer === 'bigint' ? spec.buffer : spec.buffer.address).toString(16)}`);
  if (spec.page !== undefined) parts.push(`page ${spec.page}`);
  parts.push(`nth ${spec.nth ?? 1}`);
  if ((spec.times ?? 1) !== 1) parts.push(`x${spec.times}`);
  return `fault ${parts.join(' ')}`;
}

/** The plan: an ordered list of rules consulted on every guest copy. */
export class FaultPlan {
  private rules: (FaultRule | RandomRule)[] = [];
  private added = 0;

  /** Adds a deterministic rule; returns it so a test can read `fired`. */
  inject(spec: FaultRuleSpec = {}): FaultRule {
    const r = new FaultRule(requiredBag('fault', spec), this.added);
    this.added++;
    this.rules.push(r);
    return r;
  }

  /** Adds a seeded random rule: each matching copy fails with probability `rate`. */
  random(spec: RandomFaultSpec): { readonly label: string; readonly fired: number } {
    const r = new RandomRule(requiredBag('fault', spec));
    this.rules.push(r);
    return r;
  }

  /** Removes every rule. */
  clear(): void {
    this.rules = [];
  }

  /** Deterministic rules that have not fired yet (undici's pendingInterceptors()). */
  pending(): FaultRule[] {
    return this.rules.filter((r): r is FaultRule => r instanceof FaultRule && r.fired === 0);
  }

  /** Throws when a deterministic rule never fired: the scenario did not do what the test meant. */
  assertAllFired(): void {
    const p = this.pending();
    if (p.length) throw new XencallError(ErrorCodes.MOCK_STRICT, `fault rules that never fired: ${p.map((r) => r.label).join('; ')}`);
  }

  /** @internal Consulted by the mock on every copy. */
  check(c: CopyAttempt): InjectedFault | null {
    for (const r of this.rules) {
      const f = r.check(c);
      if (f) return f;
    }
    return null;
  }
}
