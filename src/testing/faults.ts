// Copy-level fault injection for the mock hypervisor. A rule makes a guest copy fail the way a
// page under migration does: the copy touches an inaccessible page and Xen's copy_from/to_guest
// reports it. Because the mock's handlers copy in the order Xen's code does, the resulting
// EFAULT lands before or after the side effect exactly where it would on real hardware.
//
// Besides copy faults, any op can be made to answer any errno as it is entered (undici's
// replyWithError): reply() rules.
//
// Rules are matched in the order they were added; every decision is deterministic for a seed.
// An op a rule names must exist: a row of the table, a family of per-mode rows, or a hypercall.

import type { ErrnoName } from '../errno-table.js';
import { ErrorCodes, ValidationError, XencallError, describeValue, errnoNameOf, errnoNumber, isErrnoName } from '../errors.js';
import { HYPERCALLS, type HypercallName } from '../hypercalls/hypercalls.js';
import { TABLE, type RowName } from '../hypercalls/table.js';
import { integerIn, optionalIntegerIn, requiredBag } from '../input.js';
import { xorshift32 } from './random.js';

/** "domctl.shadow_op" of "domctl.shadow_op.clean": the family a per-mode row belongs to. */
type RowFamily<N> = N extends `${infer H}.${infer S}.${string}` ? `${H}.${S}` : never;

/**
 * What a rule may name: a table row ("domctl.createdomain"), a family of per-mode rows
 * ("sysctl.cpupool_op"), or a hypercall ("domctl", every sub-op of it).
 */
export type FaultOpName = RowName | RowFamily<RowName> | HypercallName;

/** Every name a rule may use, for the check at the time the rule is added. */
let opNames: Set<string> | undefined;
function knownOps(): Set<string> {
  if (!opNames) {
    opNames = new Set<string>(Object.keys(HYPERCALLS));
    for (const r of TABLE) {
      opNames.add(r.name);
      const family = /^([^.]+\.[^.]+)\./.exec(r.name);
      if (family) opNames.add(family[1]!);
    }
  }
  return opNames;
}

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
  op?: FaultOpName;
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
  op?: FaultOpName;
  label?: string;
}

/** An op that answers an errno instead of running (FaultPlan.reply). */
export interface ErrnoReplySpec {
  /** The op: a row name ("domctl.createdomain"), a family of per-mode rows, or a hypercall ("domctl", any of its sub-ops). */
  op: FaultOpName;
  /** What it answers: an errno name from Xen's errno.h ("ENOMEM"), or its number. */
  errno: ErrnoName | number;
  /** Answer on the nth matching call (1-based). Default 1. */
  nth?: number;
  /** How many matching calls answer once the rule fires. Default 1; Infinity for "until cleared". */
  times?: number;
  /** A label shown in the history and in pending(). */
  label?: string;
}

/** A reply decision: the call answers -errno. */
export interface InjectedReply {
  readonly rule: string;
  readonly errno: number;
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
  checkOp(spec.op, false);
  if (spec.label !== undefined && typeof spec.label !== 'string') throw new ValidationError('fault.label', `must be a string, got ${describeValue(spec.label)}`);
}

/** An op name a rule gives: one that exists, or a rule that could never fire is refused now. */
function checkOp(op: unknown, required: boolean): void {
  if (op === undefined && !required) return;
  if (typeof op !== 'string') throw new ValidationError('fault.op', `must be a row or hypercall name, got ${describeValue(op)}`);
  if (!knownOps().has(op)) {
    throw new ValidationError('fault.op', `${describeValue(op)} is neither a row of the hypercall table nor a hypercall (e.g. "domctl.createdomain", "domctl"; \`xencall table\` lists them), so no call would ever match it`);
  }
}

function matchesOp(op: string | undefined, name: string): boolean {
  return !op || op === name || name.startsWith(`${op}.`);
}

function matches(spec: { direction?: CopyDirection | 'any'; op?: string }, c: CopyAttempt): boolean {
  if (spec.direction && spec.direction !== 'any' && spec.direction !== c.direction) return false;
  return matchesOp(spec.op, c.op);
}

/** A reply() rule: the nth matching call (and `times` after it) answers -errno without running. */
export class ErrnoReply {
  readonly label: string;
  readonly errno: number;
  /** Matching calls seen so far. */
  matched = 0;
  /** Calls this rule answered. */
  fired = 0;
  private readonly spec: ErrnoReplySpec;

  constructor(spec: ErrnoReplySpec, index: number) {
    checkOp(spec.op, true);
    const e = spec.errno;
    if (typeof e === 'string') {
      if (!isErrnoName(e)) throw new ValidationError('fault.errno', `${describeValue(e)} is not an errno name in Xen's errno.h`);
      this.errno = errnoNumber(e);
    } else this.errno = integerIn('fault.errno', e, 1, 4095);
    optionalIntegerIn('fault.nth', spec.nth, 1, Number.MAX_SAFE_INTEGER);
    if (spec.times !== undefined && spec.times !== Infinity) optionalIntegerIn('fault.times', spec.times, 1, Number.MAX_SAFE_INTEGER);
    if (spec.label !== undefined && typeof spec.label !== 'string') throw new ValidationError('fault.label', `must be a string, got ${describeValue(spec.label)}`);
    this.spec = spec;
    this.label = spec.label ?? `reply #${index + 1} ${spec.op} ${errnoNameOf(this.errno)} nth ${spec.nth ?? 1}${(spec.times ?? 1) !== 1 ? ` x${spec.times}` : ''}`;
  }

  get active(): boolean {
    return this.fired < (this.spec.times ?? 1);
  }

  /** @internal */
  check(name: string): InjectedReply | null {
    if (!this.active || !matchesOp(this.spec.op, name)) return null;
    this.matched++;
    if (this.matched < (this.spec.nth ?? 1)) return null;
    this.fired++;
    return { rule: this.label, errno: this.errno };
  }
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

/** The plan: ordered lists of rules, consulted on every guest copy and on every call's entry. */
export class FaultPlan {
  private rules: (FaultRule | RandomRule)[] = [];
  private replies: ErrnoReply[] = [];
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

  /**
   * Makes an op answer `errno` instead of running, as Xen does when a check at its entry fails:
   * nothing is copied and nothing changes (undici's replyWithError). The call is entered (the
   * history records it) and returns -errno; what the library makes of it is then the real
   * thing: an ordinary XEN_ERR_HYPERCALL, or for EFAULT the table's retry decision. Continuations
   * Xen makes of a call are not matched: they are the same call.
   */
  reply(spec: ErrnoReplySpec): ErrnoReply {
    const r = new ErrnoReply(requiredBag('fault', spec), this.added);
    this.added++;
    this.replies.push(r);
    return r;
  }

  /** Removes every rule. */
  clear(): void {
    this.rules = [];
    this.replies = [];
  }

  /** Deterministic rules that have not fired yet (undici's pendingInterceptors()). */
  pending(): (FaultRule | ErrnoReply)[] {
    return [...this.rules.filter((r): r is FaultRule => r instanceof FaultRule && r.fired === 0), ...this.replies.filter((r) => r.fired === 0)];
  }

  /** Throws when a deterministic rule never fired: the scenario did not do what the test meant. */
  assertAllFired(): void {
    const p = this.pending();
    if (p.length) throw new XencallError(ErrorCodes.MOCK_STRICT, `fault rules that never fired: ${p.map((r) => r.label).join('; ')}`);
  }

  /** @internal Consulted by the mock as each call is entered (not its continuations). */
  checkCall(name: string): InjectedReply | null {
    for (let i = 0; i < this.replies.length; i++) {
      const r = this.replies[i]!.check(name);
      if (r) return r;
    }
    return null;
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
