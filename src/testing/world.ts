// The mock hypervisor's world: domains with their pause counts, memory, log-dirty bitmaps and
// event channels, and Xen's console ring. Tests read and change it directly to set up scenes
// and to check what a sequence of hypercalls did.

import { xorshift32 } from './random.js';
import { XEN_DOMCTL_CDF, XEN_DOMCTL_PFINFO } from '../hypercalls/numbers.js';
import { HVM_NR_PARAMS, XEN_SCHEDULER, XEN_X86_EMU } from '../hypercalls/values.js';
import { cpu_user_regs, vcpu_guest_context } from '../hypercalls/structs.js';
import { encode, type Decoded } from '../layout.js';
import { MockLogDirty, type PagingPreempt } from './log-dirty.js';
import { MockHvmState } from './hvm-state.js';
import type { GuestProgram } from './scheduler.js';

export { LOG_DIRTY_CHUNK_BYTES } from './log-dirty.js';

/** Xen refuses a controller pause count above this (domain.c, -EOVERFLOW). */
export const MAX_CONTROLLER_PAUSE_COUNT = 255;
/** cpumask_all: a new vcpu's hard and soft affinity (Xen reports it clipped to nr_cpu_ids). */
export const ALL_CPUS = -1n;

export interface MockVcpu {
  online: boolean;
  blocked: boolean;
  running: boolean;
  cpu: number;
  cpu_time: bigint;
  /** Bit n = physical cpu n; ALL_CPUS until a setvcpuaffinity. */
  hardAffinity: bigint;
  softAffinity: bigint;
  /** v->is_initialised: a context was loaded (online vcpus of a test domain are). */
  initialised: boolean;
  /** The vcpu_guest_context getvcpucontext copies out; null: one is made up from the ids. */
  context: Uint8Array | null;
}

export type EvtchnState =
  | { readonly state: 'unbound'; readonly remoteDom: number }
  | { readonly state: 'interdomain'; readonly remoteDom: number; readonly remotePort: number }
  | { readonly state: 'virq' | 'ipi' | 'pirq' };

export interface MockEvtchn {
  state: EvtchnState;
  vcpu: number;
  /** Times the port was signalled with send. */
  pending: number;
}

/**
 * Page storage with foreign-map aliasing. A page lives in one place at a time: its own 4096 bytes
 * (or a slice of a domain's legacy `memory` block), or, while a foreign map has it, that map's
 * page. Mapping moves the page's home into the map (its bytes copied in) and unmapping moves it
 * back (copied out), so the mock world (MockDomain.page(), writePage) and the map's Uint8Array
 * always see one copy. One gfn can be homed in one live map only: JavaScript cannot alias one
 * page at two places of two Uint8Arrays, so the mock refuses that (see MockHypervisor.mapForeign).
 */
export class PageStore {
  /** Pages kept outside the base block, by key (a gfn, a grant frame number). */
  private readonly own = new Map<number, Uint8Array>();
  private readonly homes = new Map<number, { readonly view: Uint8Array; readonly owner: object }>();

  /** `base` gives pages that live in a block of the owner's (MockDomain.memory). */
  constructor(private readonly base: (key: number) => Uint8Array | null = () => null) {}

  /** The page's current bytes, or null where nothing was ever stored (it reads as zeros). */
  view(key: number): Uint8Array | null {
    return this.homes.get(key)?.view ?? this.base(key) ?? this.own.get(key) ?? null;
  }

  /** The page's bytes, made real (zeros) if they were not. */
  materialize(key: number): Uint8Array {
    const v = this.view(key);
    if (v) return v;
    const page = new Uint8Array(PAGE_BYTES);
    this.own.set(key, page);
    return page;
  }

  /** A fresh zero page at `key` (Xen put a new page there); a map that had the old one keeps it, detached. */
  reset(key: number): void {
    this.homes.delete(key);
    this.own.delete(key);
    this.base(key)?.fill(0);
  }

  /** Which map holds the page now, if any. */
  homeOwner(key: number): object | undefined {
    return this.homes.get(key)?.owner;
  }

  /** Moves the page into `view` (a map's page): its bytes are copied in and it lives there until unhome(). */
  home(key: number, view: Uint8Array, owner: object): void {
    const cur = this.view(key);
    if (cur) view.set(cur.subarray(0, view.length));
    else view.fill(0);
    this.homes.set(key, { view, owner });
  }

  /** Moves the page back out of `owner`'s map (unless Xen replaced it meanwhile). */
  unhome(key: number, owner: object): void {
    const h = this.homes.get(key);
    if (!h || h.owner !== owner) return;
    this.homes.delete(key);
    const base = this.base(key);
    if (base) base.set(h.view.subarray(0, base.length));
    else if (this.own.has(key) || h.view.some((b) => b !== 0)) this.own.set(key, h.view.slice());
  }
}

/** Xen's page size: a populated page and a foreign map's page hold this many bytes. */
const PAGE_BYTES = 4096;

/** The grant frames a domain may have when createdomain says -1 (grant_table.c opt_max_grant_frames). */
export const DEFAULT_MAX_GRANT_FRAMES = 64;

export interface DomainSpec {
  domid: number;
  handle?: Uint8Array;
  /** Pages the domain has (tot_pages); they are gfns 0..tot_pages-1. */
  totPages?: number;
  maxPages?: number;
  maxVcpus?: number;
  onlineVcpus?: number;
  paused?: boolean;
  hvm?: boolean;
  /** Guest memory contents, for save/restore scenarios. Default: none (only counts and types). */
  withMemory?: boolean;
  /** False for a domain as XEN_DOMCTL_createdomain leaves it: no vcpus until max_vcpus. Default true. */
  vcpusCreated?: boolean;
  /**
   * Bytes of content kept per page when withMemory is set. Default 4096. A test migrating tens
   * of thousands of pages may keep a few bytes each: hypercalls never read page contents.
   */
  memoryPageBytes?: number;
}

export class MockDomain {
  readonly domid: number;
  handle: Uint8Array;
  ssidref = 0;
  createFlags = 0;
  /** xen_arch_domainconfig.emulation_flags given to createdomain (XEN_X86_EMU_*). */
  emulationFlags = 0;
  maxVcpus: number;
  vcpus: MockVcpu[];
  totPages: number;
  maxPages: bigint;
  /** XEN_DOMCTL_pausedomain's count (the toolstack's pauses). */
  controllerPauseCount = 0;
  dying = false;
  shutdownReason: number | null = null;
  hvm: boolean;
  cpupool = 0;
  /** Paging pool size for shadow_op GET/SET_ALLOCATION, in MiB. */
  shadowMb = 0;
  /** Log-dirty mode, its bitmap and counters, and the p2m types it arms (log-dirty.ts). */
  readonly logDirty = new MockLogDirty();
  /** A preempted CLEAN/PEEK/OFF waiting for __HYPERVISOR_paging_domctl_cont (d->arch.paging.preempt). */
  pagingPreempt: PagingPreempt | null = null;
  /** Paused by Xen itself for a log-dirty op in progress (domain_pause, not the controller's count). */
  pagingPaused = false;
  readonly evtchns = new Map<number, MockEvtchn>();
  maxEvtchnPort = 1023;
  /** Guest memory (memoryPageBytes a page) for gfns 0..totPages-1 of the spec, when created with it. */
  memory: Uint8Array | null;
  readonly memoryPageBytes: number;
  /**
   * The p2m: gfns below this were populated by the spec (gfns 0..totPages-1, as before there was a
   * p2m); others only by populate_physmap (or populate()).
   */
  readonly specPages: number;
  /** Gfns populated since (populate_physmap, populate()). */
  private readonly populatedGfns = new Set<number>();
  /** Page contents by gfn, aliased by foreign maps while mapped. */
  readonly pages: PageStore;
  /** The shared grant table's frames (XENMEM_resource_grant_table_id_shared), grown on demand. */
  readonly grantFrames: PageStore = new PageStore();
  /** nr_grant_frames: how many shared frames exist. */
  nrGrantFrames = 1;
  /** max_grant_frames from createdomain (-1 there means the host default, 64). */
  maxGrantFrames = DEFAULT_MAX_GRANT_FRAMES;
  /** settimeoffset's d->time_offset.seconds. */
  timeOffsetSeconds = 0n;
  /** HVM domains' saved-state records (what gethvmcontext saves and sethvmcontext loads). */
  readonly hvmState: MockHvmState | null;
  /**
   * What vcpu 0 runs: the test guest's model, 'idle' for code the mock does not know, or
   * undefined until it is first scheduled after a CPU record was loaded (testing/scheduler.ts).
   */
  guestProgram: GuestProgram | undefined = undefined;
  /** d->arch.hvm.params, indexed by HVM_PARAM_* (HVM domains only). */
  readonly hvmParams: bigint[] = new Array<bigint>(HVM_NR_PARAMS).fill(0n);

  constructor(spec: DomainSpec) {
    this.domid = spec.domid;
    this.handle = spec.handle ? new Uint8Array(spec.handle) : new Uint8Array(16);
    this.totPages = spec.totPages ?? 0;
    this.maxPages = BigInt(spec.maxPages ?? spec.totPages ?? 0);
    this.maxVcpus = spec.maxVcpus ?? 1;
    const online = spec.onlineVcpus ?? 0;
    // XEN_DOMCTL_createdomain only records max_vcpus; XEN_DOMCTL_max_vcpus creates the vcpus.
    this.vcpus = spec.vcpusCreated === false ? [] : Array.from({ length: this.maxVcpus }, (_, i) => this.newVcpu(i, i < online));
    this.controllerPauseCount = spec.paused ? 1 : 0;
    this.hvm = spec.hvm ?? false;
    // A test's HVM domain runs on HAP, as every HVM guest on the Xen these tests model does.
    if (this.hvm) this.createFlags = XEN_DOMCTL_CDF.hvm | XEN_DOMCTL_CDF.hap;
    // ...and is a PVH guest, whose only emulated device is the local APIC: a configuration
    // createdomain accepts (emulation_flags_ok), so a domain built from this one's can be created.
    if (this.hvm) this.emulationFlags = XEN_X86_EMU.LAPIC;
    this.memoryPageBytes = spec.memoryPageBytes ?? 4096;
    this.memory = spec.withMemory ? new Uint8Array(this.totPages * this.memoryPageBytes) : null;
    this.specPages = this.totPages;
    this.pages = new PageStore((gfn) => (this.memory && gfn < this.specPages ? this.memory.subarray(gfn * this.memoryPageBytes, (gfn + 1) * this.memoryPageBytes) : null));
    this.hvmState = this.hvm ? new MockHvmState(this) : null;
  }

  /** The HVM context gethvmcontext would copy out now (hvm_save), or null for a PV domain. */
  get hvmContext(): Uint8Array | null {
    return this.hvmState?.save() ?? null;
  }

  /** vcpu_create(): a new vcpu is down (VPF_down) until a context is loaded, unless `online`. */
  newVcpu(id: number, online: boolean): MockVcpu {
    return {
      online,
      blocked: online,
      running: false,
      cpu: id,
      cpu_time: 0n,
      hardAffinity: ALL_CPUS,
      softAffinity: ALL_CPUS,
      initialised: online,
      context: null,
    };
  }

  get paused(): boolean {
    return this.controllerPauseCount > 0 || this.pagingPaused;
  }

  /** Page type as getpageframeinfo3 reports it: a few page-table pages, the rest plain. */
  pageType(gfn: bigint): number {
    // arch_do_domctl's getpageframeinfo3 (xen/arch/x86/domctl.c, RELEASE-4.17.7 lines 277-308):
    // a gfn with no page behind it is XTAB; an HVM guest's pages are never typed as page tables
    // (no PGT_l*_page_table, not PGT_validated), so they read NOTAB.
    if (gfn > BigInt(Number.MAX_SAFE_INTEGER) || !this.isPopulated(Number(gfn))) return XEN_DOMCTL_PFINFO.XTAB;
    if (this.hvm) return XEN_DOMCTL_PFINFO.NOTAB;
    // A PV guest's page tables sit among its pages; a fixed pattern keeps results checkable.
    const g = Number(gfn % 4096n);
    if (g === 1) return XEN_DOMCTL_PFINFO.L4TAB | XEN_DOMCTL_PFINFO.LPINTAB;
    if (g === 2) return XEN_DOMCTL_PFINFO.L3TAB;
    if (g === 3) return XEN_DOMCTL_PFINFO.L2TAB;
    if (g >= 4 && g < 8) return XEN_DOMCTL_PFINFO.L1TAB;
    return XEN_DOMCTL_PFINFO.NOTAB;
  }

  /** Whether the p2m has RAM at `gfn`. */
  isPopulated(gfn: number): boolean {
    return (gfn >= 0 && gfn < this.specPages) || this.populatedGfns.has(gfn);
  }

  /**
   * Puts fresh zero pages at gfns first..first+count-1, counted in tot_pages, as populate_physmap
   * does (for test setup; the hypercall checks max_pages first). A gfn that had a page gets a new
   * one: the old one stays counted, as Xen leaves it allocated to the domain.
   */
  populate(first: number, count = 1): void {
    for (let g = first; g < first + count; g++) {
      this.pages.reset(g);
      if (g >= this.specPages) this.populatedGfns.add(g);
    }
    this.totPages += count;
  }

  /** The highest populated gfn, or -1 (XENMEM_maximum_gpfn's view of the p2m). */
  maxGpfn(): number {
    let max = this.specPages - 1;
    for (const g of this.populatedGfns) if (g > max) max = g;
    return max;
  }

  /**
   * The guest's own write: changes the page's bytes and, as Xen's p2m does, is logged only if
   * log-dirty tracking has the page read-only (the first write after ENABLE or a completed
   * CLEAN; see MockLogDirty.guestWrite). dom0's writes through a foreign mapping do not come
   * through here and are never logged.
   */
  writePage(gfn: number, fill?: (page: Uint8Array) => void): void {
    if (!this.isPopulated(gfn)) throw new RangeError(`gfn ${gfn} is not populated in domain ${this.domid} (it has ${this.totPages} pages)`);
    // The write faults first (and is logged); the retried write then lands.
    this.logDirty.guestWrite(gfn);
    // The storage lookup: a page kept by the domain, or the foreign map that holds it now.
    if (fill) {
      const page = this.memory || this.populatedGfns.has(gfn) ? this.pages.materialize(gfn) : this.pages.view(gfn);
      if (page) fill(page);
    }
  }

  /** A page's contents (a view into the guest's memory, or into the foreign map that holds it now). */
  page(gfn: number): Uint8Array {
    if (!this.isPopulated(gfn)) throw new RangeError(`gfn ${gfn} is not populated in domain ${this.domid}`);
    const v = this.memory || this.populatedGfns.has(gfn) ? this.pages.materialize(gfn) : this.pages.view(gfn);
    if (!v) throw new Error(`domain ${this.domid} was created without memory contents (withMemory)`);
    return v;
  }

  /** Lowest free port (port 0 is never handed out), or -1 when none is left. */
  freePort(): number {
    for (let p = 1; p <= this.maxEvtchnPort; p++) if (!this.evtchns.has(p)) return p;
    return -1;
  }
}

/**
 * Xen's console ring (drivers/char/console.c): a power-of-two byte ring with a producer
 * (conringp) and a consumer (conringc) that only moves when a reader clears.
 */
export class MockConsole {
  readonly size: number;
  readonly ring: Uint8Array;
  /** Producer index: bytes ever written. */
  prod = 0;
  /** Consumer index: readconsole with clear moves it up to what it read. */
  cons = 0;

  constructor(size = 16384) {
    if ((size & (size - 1)) !== 0) throw new RangeError('console ring size must be a power of two');
    this.size = size;
    this.ring = new Uint8Array(size);
  }

  write(text: string | Uint8Array): void {
    const bytes = typeof text === 'string' ? Buffer.from(text, 'latin1') : text;
    for (const b of bytes) {
      this.ring[this.prod & (this.size - 1)] = b;
      this.prod = (this.prod + 1) >>> 0;
    }
    // The ring keeps only the newest `size` bytes.
    if (this.prod - this.cons > this.size) this.cons = (this.prod - this.size) >>> 0;
  }

  /** Everything between the consumer and the producer, as text. */
  unread(): string {
    const out: number[] = [];
    for (let i = this.cons; i !== this.prod; i = (i + 1) >>> 0) out.push(this.ring[i & (this.size - 1)]!);
    return Buffer.from(out).toString('latin1');
  }
}

/**
 * The host beyond physinfo's counts: the scheduler, per-cpu idle time and the numa layout (one
 * node holding every cpu and all memory, one socket with a core per cpu).
 */
export class MockHost {
  /** XEN_SCHEDULER_* of the default cpupool. */
  schedulerId: number = XEN_SCHEDULER.CREDIT2;
  /** Nanoseconds each cpu has idled (get_cpu_idle_time). */
  readonly cpuIdleTime: bigint[];

  constructor(readonly nrCpus: number) {
    this.cpuIdleTime = Array.from({ length: nrCpus }, (_, i) => BigInt(i + 1) * 1_000_000_000n);
  }
}

/**
 * A record stream shaped as hvm_save writes it for an HVM domain of `vcpus` vcpus, all up:
 * HEADER, each vcpu's CPU record (a made-up 64-bit context that differs with `seed`), the other
 * PVH records, END. sethvmcontext loads it into a domain with at least that many vcpus.
 */
export function hvmContextBlob(vcpus: number, seed: number): Uint8Array {
  const d = new MockDomain({ domid: seed, hvm: true, maxVcpus: vcpus, onlineVcpus: vcpus });
  return d.hvmContext!;
}

/** VGCF_online | VGCF_in_kernel (arch-x86/xen.h): an initialised 64-bit PV vcpu in its kernel. */
const VGCF_ONLINE_IN_KERNEL = (1 << 5) | (1 << 2);

/** A made-up but consistent vcpu_guest_context for vcpu `vcpu` of domain `domid`. */
export function vcpuContextFor(domid: number, vcpu: number): Uint8Array {
  const b = new Uint8Array(vcpu_guest_context.size);
  const base = 0xffffffff80000000n + BigInt(domid) * 0x1000000n;
  encode(vcpu_guest_context, new DataView(b.buffer), 0, {
    flags: BigInt(VGCF_ONLINE_IN_KERNEL),
    user_regs: { rip: base + 0x1000n + BigInt(vcpu) * 0x10n, rsp: base + 0x200000n - BigInt(vcpu) * 0x1000n, rflags: 0x246n, cs: 0xe033, ss: 0xe02b } as Decoded<typeof cpu_user_regs.fields>, // the rest stays 0
    ctrlreg: [0x80050033n, 0n, 0n, BigInt(0x100000 + domid) << 12n, 0x2660n, 0n, 0n, 0n],
    kernel_ss: 0xe02bn,
    kernel_sp: base + 0x200000n - BigInt(vcpu) * 0x1000n,
  });
  return b;
}

/**
 * A running guest, for save/restore scenarios: each step writes a few random pages (a fresh
 * stamp in each, so every write changes the page), through writePage so log-dirty mode sees
 * them. A paused domain does not run, so steps while it is paused write nothing. With
 * `hotPages` it writes only those, over and over: once tracking made a page writable, its later
 * writes are not logged until a completed CLEAN re-arms it, which is what a save loop must survive.
 */
export class MockGuestWorkload {
  private readonly rand: () => number;
  private stamp = 1;
  /** Pages written so far. */
  writes = 0;

  constructor(
    private readonly dom: MockDomain,
    seed: number,
    private readonly hotPages?: readonly number[],
  ) {
    this.rand = xorshift32(seed);
    if (hotPages && hotPages.length === 0) throw new RangeError('hotPages must name at least one page');
  }

  step(pages: number): void {
    if (this.dom.paused) return;
    for (let i = 0; i < pages; i++) {
      const gfn = this.hotPages ? this.hotPages[Math.floor(this.rand() * this.hotPages.length)]! : Math.floor(this.rand() * this.dom.totPages);
      const v = this.stamp++;
      this.dom.writePage(gfn, (p) => new DataView(p.buffer, p.byteOffset, p.length).setFloat64(0, v));
      this.writes++;
    }
  }
}
