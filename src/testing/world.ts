// The mock hypervisor's world: domains with their pause counts, memory, log-dirty bitmaps and
// event channels, and Xen's console ring. Tests read and change it directly to set up scenes
// and to check what a sequence of hypercalls did.

import { XEN_DOMCTL_PFINFO } from '../hypercalls/numbers.js';

/** Xen refuses a controller pause count above this (domain.c, -EOVERFLOW). */
export const MAX_CONTROLLER_PAUSE_COUNT = 255;
/** One log-dirty leaf: PAGE_SIZE bytes of bitmap = 32768 pages (paging_log_dirty_op's chunk). */
export const LOG_DIRTY_CHUNK_BYTES = 4096;

export interface MockVcpu {
  online: boolean;
  blocked: boolean;
  running: boolean;
  cpu: number;
  cpu_time: bigint;
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
  readonly logDirty = { enabled: false, bitmap: new Uint8Array(0), faultCount: 0, dirtyCount: 0 };
  /** A preempted CLEAN/PEEK waiting for __HYPERVISOR_paging_domctl_cont (d->arch.paging.preempt). */
  pagingPreempt: { op: number; done: bigint } | null = null;
  /** Paused by Xen itself for a log-dirty op in progress (domain_pause, not the controller's count). */
  pagingPaused = false;
  readonly evtchns = new Map<number, MockEvtchn>();
  maxEvtchnPort = 1023;
  /** Guest memory (memoryPageBytes a page) when the domain was created with it. */
  memory: Uint8Array | null;
  readonly memoryPageBytes: number;

  constructor(spec: DomainSpec) {
    this.domid = spec.domid;
    this.handle = spec.handle ? new Uint8Array(spec.handle) : new Uint8Array(16);
    this.totPages = spec.totPages ?? 0;
    this.maxPages = BigInt(spec.maxPages ?? spec.totPages ?? 0);
    this.maxVcpus = spec.maxVcpus ?? 1;
    const online = spec.onlineVcpus ?? 0;
    this.vcpus = Array.from({ length: this.maxVcpus }, (_, i) => ({ online: i < online, blocked: i < online, running: false, cpu: i, cpu_time: 0n }));
    this.controllerPauseCount = spec.paused ? 1 : 0;
    this.hvm = spec.hvm ?? false;
    this.memoryPageBytes = spec.memoryPageBytes ?? 4096;
    this.memory = spec.withMemory ? new Uint8Array(this.totPages * this.memoryPageBytes) : null;
  }

  get paused(): boolean {
    return this.controllerPauseCount > 0 || this.pagingPaused;
  }

  /** Page type as getpageframeinfo3 reports it: a few page-table pages, the rest plain. */
  pageType(gfn: bigint): number {
    if (gfn >= BigInt(this.totPages)) return XEN_DOMCTL_PFINFO.XTAB;
    // A PV guest's page tables sit among its pages; a fixed pattern keeps results checkable.
    const g = Number(gfn % 4096n);
    if (g === 1) return XEN_DOMCTL_PFINFO.L4TAB | XEN_DOMCTL_PFINFO.LPINTAB;
    if (g === 2) return XEN_DOMCTL_PFINFO.L3TAB;
    if (g === 3) return XEN_DOMCTL_PFINFO.L2TAB;
    if (g >= 4 && g < 8) return XEN_DOMCTL_PFINFO.L1TAB;
    return XEN_DOMCTL_PFINFO.NOTAB;
  }

  /** A guest write: marks the page dirty when log-dirty mode is on, and changes its bytes. */
  writePage(gfn: number, fill?: (page: Uint8Array) => void): void {
    if (gfn < 0 || gfn >= this.totPages) throw new RangeError(`gfn ${gfn} is outside domain ${this.domid}'s ${this.totPages} pages`);
    if (this.memory && fill) fill(this.page(gfn));
    if (this.logDirty.enabled) {
      const byte = gfn >> 3;
      const bit = 1 << (gfn & 7);
      if (!(this.logDirty.bitmap[byte]! & bit)) this.logDirty.dirtyCount++;
      this.logDirty.bitmap[byte]! |= bit;
      this.logDirty.faultCount++;
    }
  }

  /** A page's contents (a view into the guest's memory). */
  page(gfn: number): Uint8Array {
    if (!this.memory) throw new Error(`domain ${this.domid} was created without memory contents (withMemory)`);
    return this.memory.subarray(gfn * this.memoryPageBytes, (gfn + 1) * this.memoryPageBytes);
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
