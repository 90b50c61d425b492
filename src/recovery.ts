// Recovery after the refused EFAULTs of docs/retry.md: the dangerous op took effect, the reply
// was lost, and these helpers find out what happened from Xen's state instead of re-issuing.
//
// Each works through the typed calls, so its own reads are retried where the table says they
// may be, and each runs on the mock as on Xen.

import { HypercallBuffer } from './buffers.js';
import { ErrorCodes, HypercallError, ValidationError, XencallError, describeValue } from './errors.js';
import { DOMID } from './hypercalls/numbers.js';
import { bytesToUuid, schemas } from './hypercalls/schemas.js';
import { integerIn, optionalIntegerIn, requiredBag } from './input.js';
import type { DomainInfo } from './ops/domctl.js';
import { Xencall } from './xencall.js';

/**
 * The domains whose handle is `handle` (a UUID string or 16 bytes), in domid order, found by
 * paging through every domain with sysctl.getdomaininfolist.
 *
 * For domctl.createdomain's refused EFAULT: the domain was created, but its id was lost with
 * the copy-back. Create with a handle of your own, and after the EFAULT look it up here; adopt
 * the one domain found or destroy it. More than one means the handle was not unique.
 */
export async function findDomainByHandle(xc: Xencall, handle: string | Uint8Array): Promise<DomainInfo[]> {
  checkHandle(xc);
  const parsed = schemas().domainHandle.safeParse(handle);
  if (!parsed.success) throw new ValidationError('handle', 'must be a UUID string or 16 bytes');
  const want = bytesToUuid(parsed.data);
  const all = await xc.sysctl.getdomaininfolist();
  return all.filter((d) => d.handle === want);
}

/** createdomain's arguments, as the typed call takes them; `handle` is required. */
export type CreateDomainArgs = Parameters<Xencall['domctl']['createdomain']>[0] & { handle: string | Uint8Array };

/**
 * createdomain with the table's recovery built in: after a refused EFAULT the domain is looked
 * up by its handle (which must be unique to this call: a fresh UUID) and adopted if the EFAULT
 * came after domain_create (the copy-back); if no domain carries the handle, the EFAULT came
 * before anything was created and the call is made again, as often as the handle's retry policy
 * allows attempts. Resolves with the domid.
 */
export async function createDomainAdopting(xc: Xencall, args: CreateDomainArgs, options: { signal?: AbortSignal } = {}): Promise<number> {
  for (let attempt = 1; ; attempt++) {
    try {
      return (await xc.domctl.createdomain(args, options)).domid;
    } catch (e) {
      if (!(e instanceof HypercallError && e.code === ErrorCodes.RETRY_REFUSED)) throw e;
      const found = await findDomainByHandle(xc, args.handle);
      if (found.length > 1) throw new XencallError(ErrorCodes.RETRY_REFUSED, `${e.message} (and ${found.length} domains carry its handle: the handle was not unique)`, { cause: e });
      if (found.length === 1) return found[0]!.domid;
      if (attempt >= xc.policy.maxAttempts) throw e;
    }
  }
}

export interface LeakedPortsOptions {
  /** The domain whose ports are scanned: the `dom` given to alloc_unbound. */
  dom: number;
  /** The remote domain the lost port was allocated for (a domid, not DOMID_SELF). */
  remote_dom: number;
  /** Ports you already hold: they are not reported. */
  known?: Iterable<number>;
  /** The highest port to look at. Default: scan until Xen says a port is not valid. */
  maxPort?: number;
}

/**
 * Unbound ports of `dom` to `remote_dom` that are not in `known`, in port order, found with
 * event_channel_op.status.
 *
 * For alloc_unbound's refused EFAULT: the port was allocated before the copy-back of its number
 * failed. The lowest unknown port is the leaked one when nobody else allocates ports to the same
 * remote domain meanwhile; use it, or close it. The scan stops at the first port Xen calls
 * invalid (-EINVAL): evtchn_status refuses ports past d->valid_evtchns, and ports are allocated
 * lowest-free first inside that prefix, so no port past it can be in use. Ports Xen itself
 * consumes (-EACCES) are skipped.
 */
export async function findLeakedPorts(xc: Xencall, options: LeakedPortsOptions): Promise<number[]> {
  checkHandle(xc);
  const o = requiredBag('options', options);
  const dom = integerIn('dom', o.dom, 0, DOMID.SELF);
  const remoteDom = integerIn('remote_dom', o.remote_dom, 0, DOMID.FIRST_RESERVED - 1);
  const max = optionalIntegerIn('maxPort', o.maxPort, 0, 0xffffffff) ?? Infinity;
  const known = knownPorts(o.known);
  const leaked: number[] = [];
  // Port 0 is reserved (ECS_RESERVED) and never handed out.
  for (let port = 1; port <= max; port++) {
    let s;
    try {
      s = await xc.event_channel_op.status({ dom, port });
    } catch (e) {
      if (e instanceof HypercallError && e.code === ErrorCodes.HYPERCALL && e.errnoName === 'EINVAL') break;
      if (e instanceof HypercallError && e.code === ErrorCodes.HYPERCALL && e.errnoName === 'EACCES') continue;
      throw e;
    }
    if (s.status === 'unbound' && s.remote_dom === remoteDom && !known.has(port)) leaked.push(port);
  }
  return leaked;
}

/** `known` as a set of port numbers; anything but an iterable of integers is refused. */
function knownPorts(known: unknown): Set<number> {
  if (known === undefined) return new Set();
  if (known === null || typeof (known as Iterable<unknown>)[Symbol.iterator] !== 'function' || typeof known === 'string') {
    throw new ValidationError('known', `must be an iterable of port numbers (an array or a Set), got ${describeValue(known)}`);
  }
  const out = new Set<number>();
  for (const p of known as Iterable<unknown>) out.add(integerIn('known', p, 0, 0xffffffff));
  return out;
}

function checkHandle(xc: unknown): void {
  if (!(xc instanceof Xencall)) throw new ValidationError('xc', `must be a handle from open(), got ${describeValue(xc)}`);
}

export interface ConsoleRecoveryOptions {
  /** The buffer the failed read used (sysctl.readconsole's `buffer` option). */
  buffer: HypercallBuffer;
  /**
   * Where the failed read began: the `index` you passed with `incremental: true`, or the ring's
   * consumer index before the call. With it the text is cut exactly; without it, at the first
   * NUL of the (zeroed) buffer.
   */
  index?: number;
}

export interface RecoveredConsole {
  /** The text the failed read consumed from Xen's ring, decoded as latin1. */
  text: string;
  bytes: Uint8Array;
  /** The ring's consumer index now: read on from it (incremental) for anything newer. */
  index: number;
  /**
   * True when `index` was given and bounded the text. False when it was cut at the first NUL:
   * if the EFAULT hit a chunk copy rather than the copy-back, that text is also still in the ring.
   */
  exact: boolean;
}

/**
 * The console text a `readconsole` with `clear` consumed before its reply was lost.
 *
 * read_console_ring copies the ring into the buffer chunk by chunk, clears (moves the consumer
 * index) and only then does do_sysctl copy back count and index; an EFAULT there leaves the
 * text in your buffer and nowhere else, and the call is refused (XEN_ERR_RETRY_REFUSED). So:
 * read with your own buffer (`xc.sysctl.readconsole({ clear: true, buffer })`, which zeroes it
 * and does not free it) and hand the error here. The consumer index, read back with a one-byte
 * non-clearing read, says how far the failed read got; the text from `index` to it is in the
 * buffer. If the EFAULT hit a chunk copy instead, nothing was cleared: the result is empty and
 * the text is still in the ring. Any other error is thrown again, unchanged.
 */
export async function recoverConsole(xc: Xencall, err: unknown, options: ConsoleRecoveryOptions): Promise<RecoveredConsole> {
  checkHandle(xc);
  const o = requiredBag('options', options);
  if (!(o.buffer instanceof HypercallBuffer)) throw new ValidationError('buffer', `must be the HypercallBuffer the failed read used, got ${describeValue(o.buffer)}`);
  const index = optionalIntegerIn('index', o.index, 0, 0xffffffff);
  if (!(err instanceof HypercallError) || err.opName !== 'sysctl.readconsole' || err.errnoName !== 'EFAULT') throw err;
  const { buffer } = o;
  if (buffer.freed) throw new ValidationError('buffer', 'the buffer of the failed read was freed: its text is gone');
  // A non-clearing one-byte read starts at the consumer index: index - count is where it is.
  const probe = await xc.sysctl.readconsole({ size: 1 });
  const cons = (probe.index - probe.count) >>> 0;
  const held = buffer.bytes;
  const nul = held.indexOf(0);
  const filled = nul === -1 ? held.length : nul;
  let length: number;
  let exact = false;
  if (index !== undefined) {
    // Ring indexes are free-running u32s: the signed distance says whether the ring moved past it.
    const moved = (cons - index) | 0;
    length = Math.max(0, Math.min(moved, filled));
    exact = true;
  } else {
    length = filled;
  }
  const bytes = held.slice(0, length);
  return { text: Buffer.from(bytes).toString('latin1'), bytes, index: cons, exact };
}
