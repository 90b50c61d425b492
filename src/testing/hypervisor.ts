// The mock hypervisor: a world model, guest memory made only of hypercall buffers, copy-level
// fault injection and a call history. Its handlers (handlers/, one file per hypercall family)
// follow Xen 4.17's order of copy-in, check, act, copy-out. MockBackend connects a Xencall
// handle to it.

import type { Backend, BackendForeignMap, BackendPages } from '../backend.js';
import { ErrorCodes, ValidationError, XencallError, describeValue, errnoNumber, hypercallError, notIssued } from '../errors.js';
import { integerIn, optionBag, optionalIntegerIn, requiredBag } from '../input.js';
import { DOMID, XENMEM_RESOURCE, XENMEM_RESOURCE_GRANT_TABLE_ID, XEN_PAGE_SIZE, XEN_SYSCTL_PHYSCAP } from '../hypercalls/numbers.js';
import { CallHistory } from './history.js';
import { FaultPlan, type CopyDirection } from './faults.js';
import { MockConsole, MockDomain, MockHost, PageStore, type DomainSpec } from './world.js';
import { dispatch } from './handlers/index.js';
import { DEFAULT_PREEMPT, preemptChecker, type PreemptPolicy, type PreemptSite } from './log-dirty.js';
import { GuestScheduler } from './scheduler.js';

export interface MockHypervisorOptions {
  /** Throw a test-facing XEN_ERR_MOCK_STRICT error, naming the argument or op, where Xen would return EFAULT for a wild pointer or ENOSYS for an op the mock does not model. Default false. */
  strict?: boolean;
  /** Model /dev/xen/hypercall: buffersNeverFault() is true. Fault rules still apply if a test adds them. Default false. */
  buffersNeverFault?: boolean;
  /** Xen version the mock reports. Default 4.17, extraversion ".7". */
  version?: { major: number; minor: number; extraversion?: string; changeset?: string; capabilities?: string };
  /**
   * physinfo.capabilities (XEN_SYSCTL_PHYSCAP_*). Default: what Debian's Xen 4.17.7 reports under
   * the project's qemu: HVM with HAP, PV, grant tables v1 and v2, and no shadow paging.
   */
  capabilities?: number;
  /** Physical CPUs (physinfo.nr_cpus). Default 4. */
  nrCpus?: number;
  /** Host pages (physinfo.total_pages). Default 2^20 (4 GiB). */
  totalPages?: number;
  /** XENMEM_maximum_ram_page. Default 0x1_2345_6789 (above 2^31 on purpose: it must come back whole). */
  maxRamPage?: bigint;
  /** dom0's pages and vcpus. Default 262144 pages, 2 vcpus. */
  dom0?: Partial<DomainSpec>;
  /** Console ring size (a power of two). Default 16384. */
  consoleSize?: number;
  /** Text in the console ring at start. Default: a short Xen boot banner. */
  consoleText?: string;
  /**
   * What hypercall_preempt_check() answers where Xen's paging ops call it (after each node of
   * 512 log-dirty leaves, including the last, and after each l4 entry; the same for OFF's
   * freeing): 'never', 'always', a seeded `{ rate, seed }`, or a function of the site. A yes
   * makes the op continue through __HYPERVISOR_paging_domctl_cont (49), re-reading the struct.
   * Default: a seeded 20% (DEFAULT_PREEMPT), so continuations happen, the same way every run.
   */
  preempt?: PreemptPolicy;
  /**
   * Extents populate_physmap handles before its hypercall_preempt_check() says stop and the call
   * continues (re-reading its struct, which a fault rule can then hit). Default Infinity. Separate
   * from `preempt`, whose seeded answers the log-dirty ops consume in a fixed order.
   */
  memopExtentsPerSlice?: number;
  /**
   * Most events the call history keeps; past it the oldest go and `history.dropped` counts them.
   * Default Infinity: every event is kept. A soak of millions of calls sets a limit (or 0).
   */
  historyLimit?: number;
  /**
   * Iterations each running test guest (bootTestGuest's guest, see scheduler.ts) does before
   * every hypercall the mock handles. Default 1.
   */
  guestIterationsPerHypercall?: number;
  /**
   * Milliseconds between a running test guest's iterations on an unref'd timer, so a guest moves
   * while the caller waits; 0 turns the timer off. Default 2.
   */
  guestTickMs?: number;
}

const MOCK_BUFFER_BASE = 0x7f3a_0000_0000n;
/** Mappings up to this many pages are found through the page index; larger ones by a scan. */
const INDEXED_PAGES = 64;
/** Guest addresses are 64-bit; their page numbers (below 2^52) are exact as numbers. */
const ADDRESS_LIMIT = 1n << 64n;

function pageNumber(address: bigint): number {
  return Number(address / BigInt(XEN_PAGE_SIZE));
}

/** Whether [address, address+length) lies inside the mapping. */
function fits(m: Mapping, address: bigint, length: number): boolean {
  return address >= m.address && address + BigInt(length) <= m.address + BigInt(m.pages * XEN_PAGE_SIZE);
}

interface Mapping {
  readonly address: bigint;
  readonly pages: number;
  readonly bytes: Uint8Array;
  readonly owner: MockBackend;
}

export class MockHypervisor {
  readonly strict: boolean;
  readonly buffersNeverFaultMode: boolean;
  readonly domains = new Map<number, MockDomain>();
  readonly console: MockConsole;
  /** Scheduler id, per-cpu idle time and numa layout (sched_id, getcpuinfo, numainfo, cputopoinfo). */
  readonly host: MockHost;
  readonly faults = new FaultPlan();
  readonly history: CallHistory;
  readonly version: { major: number; minor: number; extraversion: string; changeset: string; capabilities: string };
  readonly nrCpus: number;
  readonly capabilities: number;
  readonly totalPages: number;
  readonly maxRamPage: bigint;
  /** @internal hypercall_preempt_check() at a paging op's preemption point (options.preempt). */
  readonly preemptCheck: (site: PreemptSite) => boolean;
  readonly memopExtentsPerSlice: number;
  /** @internal createdomain's domid rover (common/domctl.c). */
  rover = 0;
  /** Hypercalls handled. */
  calls = 0;
  /** Guest copies attempted. */
  copies = 0;
  /** @internal Mappings examined by address lookups (a test checks that a lookup does not scan). */
  lookupSteps = 0;

  /** Runs the domains' vcpus (the test guest's model) between hypercalls. */
  readonly guests: GuestScheduler;

  private readonly mappings = new Map<bigint, Mapping>();
  /**
   * Every page of each mapping of up to INDEXED_PAGES pages, by page number: a copy finds its
   * buffer in one lookup however many are live (10,000 calls in flight hold 20,000). Larger
   * mappings are few; they are kept apart and scanned.
   */
  private readonly byPage = new Map<number, Mapping>();
  private readonly large = new Set<Mapping>();
  private nextAddress = MOCK_BUFFER_BASE;

  constructor(options?: MockHypervisorOptions) {
    options = checkOptions(options);
    this.strict = options.strict ?? false;
    this.buffersNeverFaultMode = options.buffersNeverFault ?? false;
    this.version = {
      major: options.version?.major ?? 4,
      minor: options.version?.minor ?? 17,
      extraversion: options.version?.extraversion ?? '.7',
      changeset: options.version?.changeset ?? 'mock',
      capabilities: options.version?.capabilities ?? 'xen-3.0-x86_64 hvm-3.0-x86_32 hvm-3.0-x86_32p hvm-3.0-x86_64',
    };
    this.nrCpus = options.nrCpus ?? 4;
    const P = XEN_SYSCTL_PHYSCAP;
    this.capabilities = options.capabilities ?? P.hvm | P.pv | P.hap | P.gnttab_v1 | P.gnttab_v2;
    this.totalPages = options.totalPages ?? 1 << 20;
    this.maxRamPage = options.maxRamPage ?? 0x1_2345_6789n;
    this.preemptCheck = preemptChecker(options.preempt ?? DEFAULT_PREEMPT);
    this.memopExtentsPerSlice = options.memopExtentsPerSlice ?? Infinity;
    this.history = new CallHistory(options.historyLimit);
    this.guests = new GuestScheduler(this, options.guestIterationsPerHypercall ?? 1, options.guestTickMs ?? 2);
    this.console = new MockConsole(options.consoleSize);
    this.host = new MockHost(this.nrCpus);
    this.console.write(options.consoleText ?? `(XEN) Xen version ${this.version.major}.${this.version.minor}${this.version.extraversion} (mock)\n(XEN) Std. Loglevel: All\n`);
    const dom0 = new MockDomain({ domid: 0, totPages: 262144, maxVcpus: 2, onlineVcpus: 2, ...options.dom0 });
    dom0.vcpus.forEach((v) => {
      v.running = true;
      v.blocked = false;
    });
    this.domains.set(0, dom0);
  }

  /** A new Backend bound to this world (each Xencall handle gets its own). */
  backend(): MockBackend {
    return new MockBackend(this);
  }

  /** Adds a domain directly (test setup, no hypercall, no history). */
  addDomain(spec: DomainSpec): MockDomain {
    checkDomainSpec(spec);
    if (this.domains.has(spec.domid)) throw new ValidationError('domid', `domain ${spec.domid} already exists in the mock`);
    const d = new MockDomain(spec);
    this.domains.set(d.domid, d);
    return d;
  }

  domain(domid: number): MockDomain | undefined {
    return this.domains.get(domid);
  }

  /** Domains in domid order, as Xen keeps its domain list. */
  sortedDomains(): MockDomain[] {
    return [...this.domains.values()].sort((a, b) => a.domid - b.domid);
  }

  // ---- guest memory ------------------------------------------------------------------------

  /** @internal */
  map(owner: MockBackend, pages: number): BackendPages {
    const address = this.nextAddress;
    // Leave an unmapped page after each buffer so an overrun is an EFAULT, not a neighbour.
    this.nextAddress += BigInt((pages + 1) * XEN_PAGE_SIZE);
    const bytes = new Uint8Array(pages * XEN_PAGE_SIZE);
    const m: Mapping = { address, pages, bytes, owner };
    this.mappings.set(address, m);
    if (pages > INDEXED_PAGES) this.large.add(m);
    else for (let i = 0, first = pageNumber(address); i < pages; i++) this.byPage.set(first + i, m);
    return { address, pages, bytes };
  }

  /** @internal */
  unmap(address: bigint): boolean {
    const m = this.mappings.get(address);
    if (!m) return false;
    this.forget(m);
    return true;
  }

  /** @internal Frees every mapping of `owner`; their bytes read as zeros from then on. */
  unmapAll(owner: MockBackend): void {
    for (const m of [...this.mappings.values()]) {
      if (m.owner !== owner) continue;
      this.forget(m);
      m.bytes.fill(0);
    }
  }

  private forget(m: Mapping): void {
    this.mappings.delete(m.address);
    if (m.pages > INDEXED_PAGES) this.large.delete(m);
    else for (let i = 0, first = pageNumber(m.address); i < m.pages; i++) this.byPage.delete(first + i);
  }

  /** The mapping holding [address, address+length), if any. */
  private resolve(address: bigint, length: number): Mapping | undefined {
    this.lookupSteps++;
    const m = address >= 0n && address < ADDRESS_LIMIT ? this.byPage.get(pageNumber(address)) : undefined;
    if (m) return fits(m, address, length) ? m : undefined;
    for (const l of this.large) {
      this.lookupSteps++;
      if (fits(l, address, length)) return l;
    }
    return undefined;
  }

  // ---- copies --------------------------------------------------------------------------------

  /** @internal Reads guest memory without it counting as a copy (the mock's own bookkeeping: naming an op). */
  peekGuest(address: bigint, length: number): Uint8Array | null {
    const m = this.resolve(address, length);
    if (!m) return null;
    const off = Number(address - m.address);
    return m.bytes.slice(off, off + length);
  }

  /**
   * @internal The handlers' copy_from_guest: returns the bytes, or null for EFAULT (a wild pointer, or an injected
   * fault). In strict mode a wild pointer throws instead, naming `what`.
   */
  copyFromGuest(name: string, address: bigint, length: number, what: string): Uint8Array | null {
    const m = this.check(name, 'in', address, length, what);
    if (!m) return null;
    const off = Number(address - m.address);
    return m.bytes.slice(off, off + length);
  }

  /**
   * @internal The handlers' copy_to_guest: writes the bytes and returns true, or false for EFAULT. Like x86's
   * copy_to_user, a fault on a page leaves the bytes before that page written.
   */
  copyToGuest(name: string, address: bigint, data: Uint8Array, what: string): boolean {
    const m = this.check(name, 'out', address, data.length, what, (faultPage, mapping) => {
      // Partial write up to the faulting page, as the hardware copy would.
      const off = Number(address - mapping.address);
      const stop = Math.max(0, faultPage * XEN_PAGE_SIZE - off);
      mapping.bytes.set(data.subarray(0, Math.min(stop, data.length)), off);
    });
    if (!m) return false;
    m.bytes.set(data, Number(address - m.address));
    return true;
  }

  private check(
    name: string,
    direction: CopyDirection,
    address: bigint,
    length: number,
    what: string,
    onFault?: (page: number, m: Mapping) => void,
  ): Mapping | null {
    this.copies++;
    const m = length === 0 ? this.resolve(address, 1) : this.resolve(address, length);
    if (!m) {
      this.history.record({ kind: 'copy', name, direction, address, length, what, ok: false });
      if (this.strict) {
        throw new XencallError(
          ErrorCodes.MOCK_STRICT,
          `${name}: ${what} = 0x${address.toString(16)} (+${length} bytes) is not inside a hypercall buffer; allocate it with xc.allocBuffer() (Xen would return EFAULT)`,
        );
      }
      return null;
    }
    const firstPage = Math.floor(Number(address - m.address) / XEN_PAGE_SIZE);
    const lastPage = Math.floor((Number(address - m.address) + Math.max(length, 1) - 1) / XEN_PAGE_SIZE);
    const fault = this.faults.check({ direction, op: name, address, length, buffer: m.address, firstPage, lastPage, seq: this.copies });
    if (fault) {
      this.history.record({ kind: 'fault', name, direction, address, page: fault.page, rule: fault.rule });
      this.history.record({ kind: 'copy', name, direction, address, length, what, ok: false });
      onFault?.(fault.page, m);
      return null;
    }
    this.history.record({ kind: 'copy', name, direction, address, length, what, ok: true });
    return m;
  }

  // ---- foreign memory -----------------------------------------------------------------------

  /**
   * IOCTL_PRIVCMD_MMAPBATCH_V2 as the kernel and Xen answer it for dom0, over the mock's guest
   * memory: the map's pages alias the domain's (see PageStore). Per page, as Xen's
   * do_mmu_update/mod_l1_entry give it (xen/arch/x86/mm.c at RELEASE-4.17.7): -ESRCH for every
   * page when the domain does not exist or is the caller (get_pg_owner, common/page_alloc.c
   * lines 2665-2692; do_mmu_update line 4045), -EINVAL for a gfn without RAM (get_page_from_gfn
   * finds no page: mod_l1_entry lines 2166-2197, the -EINVAL at 2196-2197). Linux's xen_remap_pfn records the error of each
   * failing entry and goes on with the next, and privcmd hands the errors back per page (V2).
   * dom0's writes through a map are not guest writes: they are not logged as dirty.
   * @internal
   */
  mapForeign(owner: MockBackend, domid: number, gfns: BigUint64Array, writable: boolean): BackendForeignMap {
    const n = gfns.length;
    const errors = new Int32Array(n);
    const d = domid === 0 ? undefined : this.domain(domid);
    const bytes = new Uint8Array(n * XEN_PAGE_SIZE);
    const map = new MockForeignMap(owner, domid, n, writable, bytes, errors);
    const keys: number[] = [];
    const seen = new Set<number>();
    for (let i = 0; i < n; i++) {
      const gfn = Number(gfns[i]!);
      if (!d) errors[i] = -errnoNumber('ESRCH');
      else if (!d.isPopulated(gfn)) errors[i] = -errnoNumber('EINVAL');
      else {
        if (d.memoryPageBytes !== XEN_PAGE_SIZE && d.memory && gfn < d.specPages) {
          throw new XencallError(ErrorCodes.MOCK_STRICT, `domain ${domid} keeps ${d.memoryPageBytes} bytes a page (memoryPageBytes); a foreign map needs whole pages: create it with memoryPageBytes 4096 (the default)`);
        }
        const other = d.pages.homeOwner(gfn);
        if (seen.has(gfn) || other) {
          throw new XencallError(
            ErrorCodes.MOCK_STRICT,
            `gfn ${gfn} of domain ${domid} is already in ${seen.has(gfn) ? 'this list' : 'another live foreign map'}: Xen would map the same frame twice, but the mock cannot make two places of JavaScript memory one page. Unmap the other map first, or map each gfn once`,
          );
        }
        seen.add(gfn);
      }
      keys.push(gfn);
    }
    if (d) for (let i = 0; i < n; i++) if (errors[i] === 0) d.pages.home(keys[i]!, map.page(i), map);
    map.release = () => {
      if (d) for (let i = 0; i < n; i++) if (errors[i] === 0) d.pages.unhome(keys[i]!, map);
    };
    this.effect('privcmd.mmapbatch_v2', 'foreign.mapped', { domid, pages: n, writable, failed: errors.filter((e) => e !== 0).length });
    return map;
  }

  /**
   * IOCTL_PRIVCMD_MMAP_RESOURCE -> XENMEM_acquire_resource (xen/common/memory.c acquire_resource
   * lines 1245-1391, resource_max_frames lines 1143-1160; common/grant_table.c
   * gnttab_resource_max_frames and gnttab_acquire_resource lines 4160-4244). The mock has one
   * resource: the shared grant table frames, grown on demand up to max_grant_frames; a frame
   * range past that is -EINVAL, as are a v1 table's status frames and the resources a mock domain
   * has none of (ioreq servers, vmtrace buffers); unknown types are -EOPNOTSUPP.
   * @internal
   */
  mapResource(owner: MockBackend, domid: number, type: number, id: number, frame: bigint, nrFrames: number, writable: boolean): BackendForeignMap {
    const fail = (errno: string, why: string): never => {
      throw hypercallError({ errno: errnoNumber(errno), op: -1, name: 'privcmd.mmap_resource', message: `IOCTL_PRIVCMD_MMAP_RESOURCE of domain ${domid} failed: ${errno} (${why})` });
    };
    if (frame >> 32n !== 0n || (frame + BigInt(nrFrames)) >> 32n !== 0n) fail('EINVAL', 'frame range beyond 32 bits');
    // rcu_lock_remote_domain_by_id: -ESRCH for no such domain, -EPERM for the caller itself.
    if (domid === 0) fail('EPERM', 'the caller cannot acquire its own resources');
    const d = this.domain(domid) ?? fail('ESRCH', 'no such domain');
    if (type === XENMEM_RESOURCE.grant_table) {
      if (id !== XENMEM_RESOURCE_GRANT_TABLE_ID.shared) fail('EINVAL', id === XENMEM_RESOURCE_GRANT_TABLE_ID.status ? 'status frames exist only with grant table version 2' : 'no such grant table part');
      const last = Number(frame) + nrFrames - 1;
      if (last >= d.maxGrantFrames) fail('EINVAL', `frame ${last} is beyond max_grant_frames ${d.maxGrantFrames}`);
      d.nrGrantFrames = Math.max(d.nrGrantFrames, last + 1); // gnttab_grow_table
    } else if (type === XENMEM_RESOURCE.ioreq_server || type === XENMEM_RESOURCE.vmtrace_buf) {
      fail('EINVAL', 'the mock domain has no such resource');
    } else fail('EOPNOTSUPP', `resource type ${type} is not one Xen offers`);
    const map = new MockForeignMap(owner, domid, nrFrames, writable, new Uint8Array(nrFrames * XEN_PAGE_SIZE), new Int32Array(nrFrames));
    const store: PageStore = d.grantFrames;
    for (let i = 0; i < nrFrames; i++) {
      const key = Number(frame) + i;
      if (store.homeOwner(key)) throw new XencallError(ErrorCodes.MOCK_STRICT, `grant frame ${key} of domain ${domid} is already in another live map; the mock cannot alias it twice: unmap that one first`);
    }
    for (let i = 0; i < nrFrames; i++) store.home(Number(frame) + i, map.page(i), map);
    map.release = () => {
      for (let i = 0; i < nrFrames; i++) store.unhome(Number(frame) + i, map);
    };
    this.effect('privcmd.mmap_resource', 'foreign.mapped', { domid, type, id, frame, pages: nrFrames, writable });
    return map;
  }

  /** @internal Records a state change for assertions. */
  effect(name: string, effect: string, detail: Record<string, unknown> = {}): void {
    this.history.record({ kind: 'effect', name, effect, detail });
  }

  /** @internal An op the mock does not model: ENOSYS, or in strict mode a test-facing error. */
  unmodelled(name: string, detail: string): bigint {
    if (this.strict) {
      throw new XencallError(ErrorCodes.MOCK_STRICT, `the mock hypervisor does not model ${detail} (${name}); Xen 4.17 may, but tests cannot rely on it here`);
    }
    return -BigInt(errnoNumber('ENOSYS'));
  }

  /**
   * Runs `iterations` passes of every running test guest now (scheduler.ts); returns how many
   * guests ran. Tests that count iterations exactly turn the other triggers off
   * (guestIterationsPerHypercall: 0, guestTickMs: 0) and call this.
   */
  runGuests(iterations = 1): number {
    integerIn('iterations', iterations, 0, 1 << 20);
    const ran = this.guests.run(iterations);
    this.guests.update();
    return ran;
  }

  private continuation: { op: number; args: readonly bigint[] } | null = null;

  /**
   * @internal hypercall_create_continuation: when the current handler returns, the caller's vcpu
   * re-executes hypercall `op` with these arguments before the call returns to the kernel.
   */
  continueWith(op: number, ...args: bigint[]): void {
    this.continuation = { op, args: [...args, 0n, 0n, 0n, 0n, 0n].slice(0, 5) };
  }

  /** @internal Handles one hypercall, and the continuations Xen makes of it. */
  hypercall(op: number, args: readonly bigint[]): bigint {
    this.calls++;
    // The guests ran since the last hypercall; not between a call's continuations, which run
    // before the call returns to the kernel.
    this.guests.beforeHypercall();
    let result = dispatch(this, op, args, false);
    while (this.continuation) {
      const next = this.continuation;
      this.continuation = null;
      result = dispatch(this, next.op, next.args, true);
    }
    this.guests.update();
    return result;
  }
}

/** A foreign map on the mock: its own pages, which are the domain's pages while it lives. */
class MockForeignMap implements BackendForeignMap {
  /** Moves the pages back into the domain; set by the hypervisor. */
  release: () => void = () => undefined;
  constructor(
    readonly owner: MockBackend,
    readonly domid: number,
    readonly pages: number,
    readonly writable: boolean,
    readonly bytes: Uint8Array,
    readonly errors: Int32Array,
  ) {}

  page(i: number): Uint8Array {
    return this.bytes.subarray(i * XEN_PAGE_SIZE, (i + 1) * XEN_PAGE_SIZE);
  }
}

/** The constructor's options, each checked so a typo'd value fails here and not mid-test. */
function checkOptions(options: MockHypervisorOptions | undefined): MockHypervisorOptions {
  const o = optionBag('options', options);
  for (const k of ['strict', 'buffersNeverFault'] as const) {
    if (o[k] !== undefined && typeof o[k] !== 'boolean') throw new ValidationError(k, `must be a boolean, got ${describeValue(o[k])}`);
  }
  optionalIntegerIn('nrCpus', o.nrCpus, 1, 4095);
  optionalIntegerIn('capabilities', o.capabilities, 0, 0xffffffff);
  optionalIntegerIn('totalPages', o.totalPages, 1, Number.MAX_SAFE_INTEGER);
  optionalIntegerIn('consoleSize', o.consoleSize, 1, 1 << 30);
  if (o.consoleSize !== undefined && (o.consoleSize & (o.consoleSize - 1)) !== 0) throw new ValidationError('consoleSize', 'must be a power of two');
  if (o.maxRamPage !== undefined && (typeof o.maxRamPage !== 'bigint' || o.maxRamPage < 0n)) throw new ValidationError('maxRamPage', `must be a bigint >= 0, got ${describeValue(o.maxRamPage)}`);
  if (o.consoleText !== undefined && typeof o.consoleText !== 'string') throw new ValidationError('consoleText', `must be a string, got ${describeValue(o.consoleText)}`);
  if (Object.hasOwn(o, 'logDirtyChunksPerSlice')) {
    // It preempted between leaves, where Xen never does; the option is gone rather than kept wrong.
    throw new ValidationError('logDirtyChunksPerSlice', "is gone: Xen preempts log-dirty ops only after each node of 512 leaves; use preempt: 'always' | 'never' | { rate, seed }");
  }
  if (o.historyLimit !== undefined && o.historyLimit !== Infinity) integerIn('historyLimit', o.historyLimit, 0, Number.MAX_SAFE_INTEGER);
  optionalIntegerIn('guestIterationsPerHypercall', o.guestIterationsPerHypercall, 0, 1 << 20);
  // setInterval's limit: a longer delay would fire at once.
  optionalIntegerIn('guestTickMs', o.guestTickMs, 0, 0x7fffffff);
  if (o.memopExtentsPerSlice !== undefined && o.memopExtentsPerSlice !== Infinity) integerIn('memopExtentsPerSlice', o.memopExtentsPerSlice, 1, Number.MAX_SAFE_INTEGER);
  optionBag('version', o.version);
  if (o.dom0 !== undefined) checkDomainSpec({ domid: 0, ...optionBag('dom0', o.dom0) }, 'dom0.');
  return o;
}

/** A domain spec for addDomain() (or dom0's overrides): ids, counts and sizes in range. */
function checkDomainSpec(spec: DomainSpec, prefix = ''): void {
  const s = requiredBag('spec', spec);
  if (!prefix) integerIn('domid', s.domid, 1, DOMID.FIRST_RESERVED - 1);
  optionalIntegerIn(`${prefix}totPages`, s.totPages, 0, 1 << 30);
  optionalIntegerIn(`${prefix}maxPages`, s.maxPages, 0, Number.MAX_SAFE_INTEGER);
  const maxVcpus = optionalIntegerIn(`${prefix}maxVcpus`, s.maxVcpus, 0, 4096) ?? 1;
  optionalIntegerIn(`${prefix}onlineVcpus`, s.onlineVcpus, 0, maxVcpus);
  optionalIntegerIn(`${prefix}memoryPageBytes`, s.memoryPageBytes, 1, 4096);
  if (s.handle !== undefined && !(s.handle instanceof Uint8Array && s.handle.length === 16)) throw new ValidationError(`${prefix}handle`, 'must be 16 bytes (a Uint8Array)');
}

/** A Backend on the mock hypervisor. */
export class MockBackend implements Backend {
  readonly kind = 'mock';
  readonly fd = -1;
  private closed = false;
  /** hypercallAsync() calls whose completion has not arrived yet. */
  private asyncRunning = 0;
  private restrictedTo: number | null = null;

  constructor(readonly hypervisor: MockHypervisor) {}

  hypercall(op: number, args: readonly bigint[]): bigint {
    this.checkOpen();
    if (args.length !== 5) throw new XencallError(ErrorCodes.VALIDATION, `a hypercall takes exactly five arguments at the backend, got ${args.length}`);
    // privcmd_ioctl_hypercall refuses a restricted fd before Xen sees anything.
    if (this.restrictedTo !== null) return -BigInt(errnoNumber('EPERM'));
    return this.hypervisor.hypercall(op, args);
  }

  /** IOCTL_PRIVCMD_RESTRICT, as privcmd_ioctl_restrict does it. */
  restrict(domid: number): void {
    this.checkOpen();
    if (!Number.isInteger(domid) || domid < 0 || domid > 0xffff) throw new XencallError(ErrorCodes.VALIDATION, `domid must be an integer from 0 to 65535, got ${domid}`);
    if (this.restrictedTo !== null && this.restrictedTo !== domid) {
      throw hypercallError({ errno: errnoNumber('EINVAL'), op: -1, name: 'privcmd.restrict' });
    }
    this.restrictedTo = domid;
  }

  get restricted(): number | null {
    return this.restrictedTo;
  }

  /**
   * The mock's "worker thread": Xen runs the call at once and the completion arrives a turn
   * later, as a koffi callback would, so a close() can come in between. Until it arrives the
   * call's buffers stay as Xen left them (see close()).
   */
  async hypercallAsync(op: number, args: readonly bigint[], cancel?: AbortSignal): Promise<bigint> {
    if (cancel?.aborted) throw notIssued(cancel.reason);
    const r = this.hypercall(op, args);
    this.asyncRunning++;
    try {
      await undefined;
    } finally {
      if (--this.asyncRunning === 0 && this.closed) this.releaseAll();
    }
    return r;
  }

  allocPages(pages: number): BackendPages {
    this.checkOpen();
    if (!Number.isInteger(pages) || pages < 1) throw new XencallError(ErrorCodes.VALIDATION, `pages must be a positive integer, got ${pages}`);
    return this.hypervisor.map(this, pages);
  }

  freePages(mem: BackendPages): void {
    this.checkOpen();
    if (!this.hypervisor.unmap(mem.address)) {
      throw new XencallError(ErrorCodes.BUFFER_FREED, `pages at 0x${mem.address.toString(16)} were already freed`);
    }
    // As privcmd's freed pages do (backend.ts: "a stale view reads as empty"), so a test sees
    // what a use after free would see on the real backend.
    mem.bytes.fill(0);
  }

  buffersNeverFault(): boolean {
    this.checkOpen();
    return this.hypervisor.buffersNeverFaultMode;
  }

  touchPages(mem: BackendPages): void {
    // Mock pages never move; touching is observable only as a no-op.
    void mem;
  }

  mapForeign(domid: number, gfns: BigUint64Array, writable: boolean): BackendForeignMap {
    this.checkForeign(domid, gfns.length);
    const m = this.hypervisor.mapForeign(this, domid, gfns, writable);
    this.foreign.add(m as MockForeignMap);
    return m;
  }

  mapResource(domid: number, type: number, id: number, frame: bigint, nrFrames: number, writable: boolean): BackendForeignMap {
    this.checkForeign(domid, nrFrames);
    const m = this.hypervisor.mapResource(this, domid, type, id, frame, nrFrames, writable);
    this.foreign.add(m as MockForeignMap);
    return m;
  }

  unmapForeign(m: BackendForeignMap): void {
    this.checkOpen();
    this.unmapOne(m);
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    if (this.asyncRunning === 0) this.releaseAll();
  }

  private releaseAll(): void {
    for (const m of [...this.foreign]) this.unmapOne(m);
    this.hypervisor.unmapAll(this);
  }

  private readonly foreign = new Set<MockForeignMap>();

  private unmapOne(m: BackendForeignMap): void {
    if (!(m instanceof MockForeignMap) || !this.foreign.delete(m)) {
      throw new XencallError(ErrorCodes.UNMAPPED, `this foreign map of domain ${m.domid} was already unmapped (or is not this backend's)`);
    }
    m.release();
    // As privcmd puts zero pages where the frames were: a stale view reads zeros.
    m.bytes.fill(0);
    this.hypervisor.effect('privcmd.munmap', 'foreign.unmapped', { domid: m.domid, pages: m.pages });
  }

  /** What privcmd checks before Xen sees anything. */
  private checkForeign(domid: number, pages: number): void {
    this.checkOpen();
    if (!Number.isInteger(domid) || domid < 0 || domid > 0xffff) throw new XencallError(ErrorCodes.VALIDATION, `domid must be an integer from 0 to 65535, got ${domid}`);
    if (!Number.isInteger(pages) || pages < 1) throw new XencallError(ErrorCodes.VALIDATION, `a foreign map takes at least one page, got ${pages}`);
    // privcmd_ioctl_mmap_batch / _mmap_resource: a restricted fd maps only its own domain.
    if (this.restrictedTo !== null && this.restrictedTo !== domid) {
      throw hypercallError({ errno: errnoNumber('EPERM'), op: -1, name: 'privcmd.mmapbatch_v2', message: `the handle is restricted to domain ${this.restrictedTo}; mapping domain ${domid} failed: EPERM` });
    }
  }

  private checkOpen(): void {
    if (this.closed) throw new XencallError(ErrorCodes.CLOSED, 'the mock backend was closed');
  }
}
