// The real backend: Linux privcmd through koffi. This is the only module that loads koffi, and
// it does so lazily, when a privcmd backend is opened, so importing xencall never fails on a
// machine without Xen (or without koffi's prebuilt binary).
//
// Facts it relies on (Linux drivers/xen/privcmd.c, privcmd-buf.c; Xen tools/libs/call/linux.c):
// - IOCTL_PRIVCMD_HYPERCALL = _IOC(_IOC_NONE, 'P', 0, 48) = 0x00305000 on x86_64; the kernel
//   returns Xen's `long` result unchanged.
// - glibc's ioctl() is declared to return int, which would cut results of 2^31 and above
//   (XENMEM_maximum_ram_page); syscall(SYS_ioctl, ...) returns the whole long, and koffi hands
//   a `long` back as a number up to 2^53 and as a bigint beyond, so no bit is lost.
// - /dev/xen/hypercall hands out kernel pages (VM_IO) that page migration never touches; without
//   it, buffers are anonymous MAP_LOCKED memory with MADV_DONTFORK, each page touched.
// - koffi 3 pointers are plain bigints: mmap() returns one (MAP_FAILED is 2^64-1, NULL is null)
//   and a bigint is accepted wherever a `void *` goes, so no pointer casts are needed.
// - Foreign memory (Linux drivers/xen/privcmd.c privcmd_ioctl_mmap_batch, privcmd_fault; Xen
//   tools/libs/foreignmemory/linux.c osdep_xenforeignmemory_map and retry_paged at RELEASE-4.17.7,
//   lines 161-280 and 116-159): mmap the privcmd fd (MAP_SHARED), then IOCTL_PRIVCMD_MMAPBATCH_V2
//   over the whole VMA. The kernel copies the gfn list into its own pages first (gather_array), so
//   this path has none of the hypercall buffers' EFAULT problem. Per-page errors land in `err`;
//   the ioctl returns -ENOENT when any page was paged out, after writing every page's error. A
//   paged-out page is retried by re-issuing the ioctl for runs of -ENOENT pages only (a VMA already
//   in use accepts a range only where nothing is mapped yet), after usleep(100), as
//   libxenforeignmemory does. A page that stayed unmapped faults with SIGBUS (privcmd_fault),
//   and privcmd refuses to split its VMA (munmap or MAP_FIXED over part of it: EINVAL, ENOMEM,
//   measured on the Debian 6.1 dom0), so failed pages become zero pages by rebuilding the map
//   (mapRun). No chunking: the kernel takes any num, copying the list into its own pages and
//   issuing mmu_update in batches of 16 (arch/x86/xen/mmu_pv.c xen_remap_pfn) itself.

import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import type { Backend, BackendPages } from '../backend.js';
import type { BackendForeignMap } from '../backend.js';
import { ErrorCodes, XencallError, errnoNameOf, hypercallError, notIssued, type HypercallError } from '../errors.js';
import { XEN_PAGE_SIZE } from '../hypercalls/numbers.js';
import { encode } from '../layout.js';
import { privcmd_mmap_resource, privcmd_mmapbatch_v2 } from '../hypercalls/structs.js';
import { sleepSync } from '../retry/runner.js';

export const IOCTL_PRIVCMD_HYPERCALL = 0x00305000;
export const IOCTL_PRIVCMD_MMAPBATCH_V2 = 0x00205004;
export const IOCTL_PRIVCMD_RESTRICT = 0x00025006;
export const IOCTL_PRIVCMD_MMAP_RESOURCE = 0x00205007;
export const PRIVCMD_PATHS = ['/dev/xen/privcmd', '/proc/xen/privcmd'] as const;
export const HYPERCALL_BUF_PATH = '/dev/xen/hypercall';

// Linux x86_64 ABI values (asm-generic/fcntl.h, mman-common.h, unistd_64.h, errno-base.h).
const O_RDWR = 0o2;
const O_CLOEXEC = 0o2000000;
const PROT_READ = 0x1;
const PROT_WRITE = 0x2;
const MAP_SHARED = 0x01;
const MAP_PRIVATE = 0x02;
const MAP_FIXED = 0x10;
const MAP_ANONYMOUS = 0x20;
const MAP_NORESERVE = 0x4000;
const MAP_LOCKED = 0x2000;
const MADV_DONTFORK = 10;
const SYS_ioctl = 16;
const ENOENT = 2;
const ENXIO = 6;
const ENOMEM = 12;
const ENODEV = 19;
const EAGAIN = 11;
const ENOTTY = 25;
const EOPNOTSUPP = 95;

/**
 * Rounds of re-mapping paged-out (-ENOENT) pages before they are reported as such.
 * libxenforeignmemory retries without bound; a bound keeps a frame that never comes back (a
 * pager that died) from hanging the caller: ~0.1 ms apart, this waits about a second.
 */
export const PAGED_RETRY_ROUNDS = 10_000;
/** libxenforeignmemory's usleep(100) between rounds. */
const PAGED_RETRY_DELAY_MS = 0.1;
const MAP_FAILED = 0xffffffffffffffffn;

type Koffi = typeof import('koffi');
type Pointer = bigint | null;
/** A `long` from koffi: a number when it fits in 53 bits, else a bigint. */
type Long = number | bigint;

interface Libc {
  koffi: Koffi;
  open: (path: string, flags: number, mode: number) => number;
  close: (fd: number) => number;
  syscall: ((nr: number, fd: number, req: number, arg: Buffer) => Long) & {
    async: (nr: number, fd: number, req: number, arg: Buffer, cb: (err: unknown, res: Long) => void) => void;
  };
  mmap: (addr: Pointer, len: number, prot: number, flags: number, fd: number, off: number) => Pointer;
  munmap: (addr: bigint, len: number) => number;
  madvise: (addr: bigint, len: number, advice: number) => number;
}

let libc: Libc | undefined;

/** Loads koffi and the libc functions once. Throws XEN_ERR_BACKEND_UNAVAILABLE where it cannot. */
function loadLibc(): Libc {
  if (libc) return libc;
  let koffi: Koffi;
  let lib: ReturnType<Koffi['load']>;
  try {
    const require = createRequire(import.meta.url);
    koffi = require('koffi') as Koffi;
    lib = koffi.load('libc.so.6');
  } catch (e) {
    throw new XencallError(
      ErrorCodes.BACKEND_UNAVAILABLE,
      `koffi or glibc's libc.so.6 could not be loaded (${(e as Error).message}); the privcmd backend needs both (Linux x86_64, glibc)`,
      { cause: e },
    );
  }
  libc = {
    koffi,
    // open() is variadic in C; a fixed mode argument is read as the third one.
    open: lib.func('int open(const char *path, int flags, uint32_t mode)') as unknown as Libc['open'],
    close: lib.func('int close(int fd)') as unknown as Libc['close'],
    // syscall(2) is variadic but reads its arguments from registers as longs; a fixed
    // prototype is both correct on x86_64 and much faster than a variadic koffi call, and koffi
    // cannot run variadic functions asynchronously at all.
    syscall: lib.func('long syscall(long nr, long fd, unsigned long req, void *arg)') as unknown as Libc['syscall'],
    mmap: lib.func('void *mmap(void *addr, size_t len, int prot, int flags, int fd, long off)') as unknown as Libc['mmap'],
    munmap: lib.func('int munmap(void *addr, size_t len)') as unknown as Libc['munmap'],
    madvise: lib.func('int madvise(void *addr, size_t len, int advice)') as unknown as Libc['madvise'],
  };
  return libc;
}

/**
 * Freed buffers stay mapped (with plain anonymous memory) for as long as any JavaScript view of
 * them can exist: koffi's views are external ArrayBuffers that Node 20 cannot detach, so a stale
 * Uint8Array would segfault on unmapped memory. Once the ArrayBuffer itself is collected no view
 * can reach the range, and it is unmapped for good; until then the range is never handed out
 * again, so a stale view cannot alias a newer buffer either.
 */
let placeholders: FinalizationRegistry<{ address: bigint; len: number }> | undefined;
function releaseWhenUnreachable(bytes: Uint8Array, address: bigint, len: number): void {
  placeholders ??= new FinalizationRegistry(({ address: a, len: l }) => {
    loadLibc().munmap(a, l);
  });
  placeholders.register(bytes.buffer, { address, len });
}

/**
 * Puts zero-fill anonymous memory over [address, address+len) in one step (MAP_FIXED), dropping
 * whatever was mapped there (locked pages, privcmd-buf's kernel pages, foreign frames) while the
 * address range stays valid for any view of it. Returns false if the kernel refused (ENOMEM):
 * the old pages then stay, which is still better than a crash.
 */
function replaceWithZeroPages(c: Libc, address: bigint, len: number, prot = PROT_READ | PROT_WRITE): boolean {
  const r = c.mmap(address, len, prot, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED | MAP_NORESERVE, -1, 0);
  return r === address;
}

/**
 * Retires memory a JavaScript view was made over: zero pages take its place now, and the range is
 * unmapped for good once `bytes`' ArrayBuffer is collected. Freed buffers and unmapped foreign
 * maps both go this way.
 */
function retire(c: Libc, bytes: Uint8Array, address: bigint, len: number): void {
  // The new VMA carries neither VM_LOCKED nor VM_DONTFORK, so no MADV_DOFORK is needed first.
  replaceWithZeroPages(c, address, len);
  releaseWhenUnreachable(bytes, address, len);
}

/**
 * koffi runs async calls on a fixed number of slots per process (koffi.config().max_async_calls,
 * 256 by default; it can only be changed before the first library is loaded, which another
 * koffi user may already have done). A call past the limit makes koffi throw at once. So every
 * privcmd backend in the process shares one queue: at most that many hypercalls are handed to
 * koffi, the rest wait in order, and each settles when its turn has come and gone.
 */
interface AsyncJob {
  readonly owner: PrivcmdBackend;
  /** The struct privcmd_hypercall; the job keeps it alive while a worker thread uses it. */
  readonly struct: Buffer;
  readonly resolve: (r: bigint) => void;
  readonly reject: (e: unknown) => void;
  readonly cancel: AbortSignal | undefined;
  onCancel: (() => void) | undefined;
  state: 'waiting' | 'running' | 'done';
}

const asyncQueue: AsyncJob[] = [];
let asyncQueueHead = 0;
let asyncRunning = 0;
let asyncLimit = 0;
/** Set while koffi's slots are held by someone else and a retry is scheduled. */
let asyncRetryTimer: ReturnType<typeof setTimeout> | undefined;

function enqueueAsync(job: AsyncJob): void {
  asyncQueue.push(job);
  pumpAsync();
}

/** Hands waiting jobs to koffi while slots are free. */
function pumpAsync(): void {
  while (asyncQueueHead < asyncQueue.length && asyncRunning < asyncLimit) {
    const job = asyncQueue[asyncQueueHead]!;
    if (job.state !== 'waiting') {
      asyncQueueHead++;
      continue;
    }
    if (!job.owner.startAsync(job)) {
      // koffi's slots are taken by another koffi user in this process: wait for one of ours to
      // end, or, with none running, try again shortly.
      if (asyncRunning === 0 && !asyncRetryTimer) {
        asyncRetryTimer = setTimeout(() => {
          asyncRetryTimer = undefined;
          pumpAsync();
        }, 1);
      }
      break;
    }
    asyncQueueHead++;
  }
  // Drop the consumed head now and then rather than shifting on every call.
  if (asyncQueueHead > 1024 && asyncQueueHead * 2 > asyncQueue.length) {
    asyncQueue.splice(0, asyncQueueHead);
    asyncQueueHead = 0;
  }
}

/** What this machine says about Xen, for the advice when no privcmd node opens. */
export interface XenHostFacts {
  /** /sys/hypervisor/type, trimmed, or null where it does not exist. */
  readonly hypervisorType: string | null;
  /** Whether /proc/xen exists (the kernel's Xen support creates it). */
  readonly procXen: boolean;
  readonly uid: number | null;
}

export function readXenHostFacts(): XenHostFacts {
  let hypervisorType: string | null = null;
  try {
    hypervisorType = readFileSync('/sys/hypervisor/type', 'utf8').trim();
  } catch {
    // Absent off Xen (and on kernels without CONFIG_XEN_SYS_HYPERVISOR).
  }
  return { hypervisorType, procXen: existsSync('/proc/xen'), uid: typeof process.getuid === 'function' ? process.getuid() : null };
}

/** What to check, for this machine: advice that cannot apply (modprobe off Xen, root as root) is left out. */
export function privcmdAdvice(f: XenHostFacts): string {
  if (f.hypervisorType !== 'xen' && !f.procXen) {
    const hv = f.hypervisorType ? `the hypervisor is ${f.hypervisorType}` : 'there is no /sys/hypervisor/type';
    return `This machine is not running on Xen (${hv} and no /proc/xen): the privcmd backend needs a Xen dom0. To run without Xen, open a MockHypervisor's backend (xencall/testing).`;
  }
  const checks = ['that this is a Xen dom0'];
  if (f.uid !== null && f.uid !== 0) checks.push(`that the process runs as root (it runs as uid ${f.uid})`);
  checks.push('that the xen-privcmd module is loaded (modprobe xen-privcmd)');
  return `Check ${checks.join(', ')} and, for the legacy node, that xenfs is mounted on /proc/xen (mount -t xenfs xenfs /proc/xen).`;
}

export interface PrivcmdOptions {
  /** Paths to try, in order (tests point these elsewhere). Default /dev/xen/privcmd, /proc/xen/privcmd. */
  privcmdPaths?: readonly string[];
  /** The buffer device. Default /dev/xen/hypercall; null to never use it. */
  hypercallBufPath?: string | null;
}

interface Mapping extends BackendPages {
  readonly fromBufDev: boolean;
}

/** One foreign map being made: where, and the gfn list and error array the ioctls read and write. */
interface MapJob {
  readonly domid: number;
  readonly base: bigint;
  readonly prot: number;
  /** Addresses of the gfn list and the error array (our own memory, for the kernel). */
  readonly arr: bigint;
  readonly errAddr: bigint;
  /** A view of the error array. */
  readonly err: Int32Array;
}

/** Maximal runs [i, j) within [from, to) of entries for which `match` holds. */
function runs(a: Int32Array, from: number, to: number, match: (v: number) => boolean): [number, number][] {
  const out: [number, number][] = [];
  for (let i = from; i < to; ) {
    if (!match(a[i]!)) {
      i++;
      continue;
    }
    let j = i + 1;
    while (j < to && match(a[j]!)) j++;
    out.push([i, j]);
    i = j;
  }
  return out;
}

/** A foreign map as privcmd made it; the address stays private to the backend. */
class PrivcmdForeignMap implements BackendForeignMap {
  constructor(
    readonly domid: number,
    readonly pages: number,
    readonly writable: boolean,
    readonly bytes: Uint8Array,
    readonly errors: Int32Array,
    /** @internal */ readonly address: bigint,
  ) {}
}

/** Opens privcmd the way libxencall's osdep_xencall_open does. */
export function openPrivcmd(options: PrivcmdOptions = {}): PrivcmdBackend {
  return new PrivcmdBackend(options);
}

function osError(name: string, errno: number, message: string): HypercallError {
  return hypercallError({ errno, op: -1, name, message });
}

export class PrivcmdBackend implements Backend {
  readonly kind = 'privcmd';
  readonly fd: number;
  /** Which privcmd node was opened. */
  readonly privcmdPath: string;
  /** The buffer device's fd, or -1 where there is none. */
  readonly bufFd: number;
  private readonly c: Libc;
  /** The 48-byte struct privcmd_hypercall, reused for every synchronous call. */
  private readonly callStruct = Buffer.alloc(48);
  private readonly callWords = callWords(this.callStruct);
  private readonly live = new Map<bigint, Mapping>();
  private readonly foreign = new Set<PrivcmdForeignMap>();
  private restrictedTo: number | null = null;
  private closed = false;
  /**
   * This backend's hypercalls handed to koffi and not yet completed. Xen may still write into
   * their buffers and the kernel holds the fd, so close() releases both only after the last.
   */
  private asyncRunning = 0;
  private released = false;

  constructor(options: PrivcmdOptions = {}) {
    this.c = loadLibc();
    asyncLimit ||= this.c.koffi.config().max_async_calls ?? 256;
    const paths = options.privcmdPaths ?? PRIVCMD_PATHS;
    let fd = -1;
    let used = '';
    const tried: string[] = [];
    for (const [i, p] of paths.entries()) {
      fd = this.c.open(p, O_RDWR | O_CLOEXEC, 0);
      if (fd >= 0) {
        used = p;
        break;
      }
      const errno = this.c.koffi.errno();
      tried.push(`${p}: ${errnoNameOf(errno)}`);
      // libxencall falls back only when the node is missing or its driver absent; anything else
      // (EACCES, EPERM) is an answer about the right node and trying the next would hide it.
      if (errno !== ENOENT && errno !== ENXIO && errno !== ENODEV) {
        for (const q of paths.slice(i + 1)) tried.push(`${q}: not tried (libxencall falls back only on ENOENT, ENXIO or ENODEV)`);
        break;
      }
    }
    if (fd < 0) {
      throw new XencallError(ErrorCodes.BACKEND_UNAVAILABLE, `no privcmd device could be opened (${tried.join('; ')}). ${privcmdAdvice(readXenHostFacts())}`);
    }
    this.fd = fd;
    this.privcmdPath = used;
    let bufFd = -1;
    const bufPath = options.hypercallBufPath === undefined ? HYPERCALL_BUF_PATH : options.hypercallBufPath;
    if (bufPath) {
      bufFd = this.c.open(bufPath, O_RDWR | O_CLOEXEC, 0);
      if (bufFd < 0) {
        const errno = this.c.koffi.errno();
        // Only a missing device is tolerated (kernels before 4.18); anything else is a real
        // error, as in libxencall, rather than a silent downgrade to buffers that can fault.
        if (errno !== ENOENT) {
          this.c.close(fd);
          throw new XencallError(ErrorCodes.BACKEND_UNAVAILABLE, `${bufPath} exists but could not be opened: ${errnoNameOf(errno)}`);
        }
      }
    }
    this.bufFd = bufFd;
  }

  hypercall(op: number, args: readonly bigint[]): bigint {
    this.checkOpen();
    writeStruct(this.callWords, op, args);
    const r = this.c.syscall(SYS_ioctl, this.fd, IOCTL_PRIVCMD_HYPERCALL, this.callStruct);
    // errno is read at once, before anything else can call into libc. glibc's syscall() turns
    // the kernel's -4095..-1 into -1 and errno; every other value is Xen's result, untouched.
    if (typeof r === 'number') {
      if (r === -1) return -BigInt(this.c.koffi.errno());
      return this.resultOf(r);
    }
    return r === -1n ? -BigInt(this.c.koffi.errno()) : r;
  }

  /** The last result and its bigint: a call answers as the one before it more often than not. */
  private lastResult = 0;
  private lastResultBig = 0n;

  /**
   * A result koffi gave as a number, as a bigint. Making a bigint is a runtime call (in emulated
   * dom0 it cost 7% of a whole hypercall), and a result is mostly 0 or what the last call gave.
   */
  private resultOf(r: number): bigint {
    if (r === 0) return 0n;
    if (r !== this.lastResult) {
      this.lastResult = r;
      this.lastResultBig = BigInt(r);
    }
    return this.lastResultBig;
  }

  hypercallAsync(op: number, args: readonly bigint[], cancel?: AbortSignal): Promise<bigint> {
    this.checkOpen();
    if (cancel?.aborted) return Promise.reject(notIssued(cancel.reason));
    // Each async call gets its own struct: calls may overlap on worker threads.
    const struct = Buffer.alloc(48);
    writeStruct(callWords(struct), op, args);
    return new Promise((resolve, reject) => {
      const job: AsyncJob = { owner: this, struct, resolve, reject, cancel, onCancel: undefined, state: 'waiting' };
      if (cancel) {
        job.onCancel = () => this.dropWaiting(job, notIssued(cancel.reason));
        cancel.addEventListener('abort', job.onCancel, { once: true });
      }
      enqueueAsync(job);
    });
  }

  /**
   * @internal Hands a waiting job to koffi. Returns false, leaving the job waiting, when koffi
   * has no slot free (another koffi user holds them).
   */
  startAsync(job: AsyncJob): boolean {
    try {
      this.c.syscall.async(SYS_ioctl, this.fd, IOCTL_PRIVCMD_HYPERCALL, job.struct, (err, r) => {
        // koffi (>= 3.2) restores the worker thread's errno around this callback, so it must be
        // read here, first, before anything else runs.
        const errno = this.c.koffi.errno();
        this.endAsync(job);
        if (err) job.reject(new XencallError(ErrorCodes.BACKEND_UNAVAILABLE, `koffi could not run the hypercall: ${describeError(err)}`, { cause: err }));
        else job.resolve(r === -1 || r === -1n ? -BigInt(errno) : BigInt(r));
      });
    } catch (e) {
      if (e instanceof Error && /too many asynchronous calls/i.test(e.message)) return false;
      this.settleWaiting(job);
      job.reject(new XencallError(ErrorCodes.BACKEND_UNAVAILABLE, `koffi could not start the hypercall: ${describeError(e)}`, { cause: e }));
      return true;
    }
    this.settleWaiting(job);
    job.state = 'running';
    this.asyncRunning++;
    asyncRunning++;
    return true;
  }

  /** A job leaves the queue: it no longer listens for its cancel signal. */
  private settleWaiting(job: AsyncJob): void {
    job.state = 'done';
    if (job.onCancel) job.cancel!.removeEventListener('abort', job.onCancel);
  }

  /** A waiting job that will never be issued (cancelled, or its backend closed). */
  private dropWaiting(job: AsyncJob, why: XencallError): void {
    if (job.state !== 'waiting') return;
    this.settleWaiting(job);
    job.reject(why);
  }

  private endAsync(job: AsyncJob): void {
    job.state = 'done';
    this.asyncRunning--;
    asyncRunning--;
    if (this.closed && this.asyncRunning === 0) this.releaseAll();
    pumpAsync();
  }

  /**
   * IOCTL_PRIVCMD_RESTRICT: from now on this fd may only act on `domid`, and the kernel refuses
   * raw hypercalls on it with EPERM. There is no way back; restricting again to another domain
   * fails with EINVAL. Other handles (other fds) are unaffected.
   */
  restrict(domid: number): void {
    this.checkOpen();
    if (!Number.isInteger(domid) || domid < 0 || domid > 0xffff) throw new XencallError(ErrorCodes.VALIDATION, `domid must be an integer from 0 to 65535, got ${domid}`);
    const arg = Buffer.alloc(2);
    arg.writeUInt16LE(domid);
    const r = this.c.syscall(SYS_ioctl, this.fd, IOCTL_PRIVCMD_RESTRICT, arg);
    if (r === -1 || r === -1n) {
      const errno = this.c.koffi.errno();
      throw osError('privcmd.restrict', errno, `IOCTL_PRIVCMD_RESTRICT to domain ${domid} failed: ${errnoNameOf(errno)}`);
    }
    this.restrictedTo = domid;
  }

  get restricted(): number | null {
    return this.restrictedTo;
  }

  allocPages(pages: number): BackendPages {
    this.checkOpen();
    if (!Number.isInteger(pages) || pages < 1) throw new XencallError(ErrorCodes.VALIDATION, `pages must be a positive integer, got ${pages}`);
    const len = pages * XEN_PAGE_SIZE;
    const fromBufDev = this.bufFd >= 0;
    const ptr = fromBufDev
      ? // privcmd-buf insists on MAP_SHARED; each mmap is a fresh, zeroed, kernel-owned allocation.
        this.c.mmap(null, len, PROT_READ | PROT_WRITE, MAP_SHARED, this.bufFd, 0)
      : // MAP_LOCKED, not a later mlock(): the pages are locked from the start (libxencall does the same).
        this.c.mmap(null, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_LOCKED, -1, 0);
    if (ptr === null || ptr === MAP_FAILED) {
      const errno = this.c.koffi.errno();
      const hint = !fromBufDev && (errno === EAGAIN || errno === ENOMEM) ? ' (locked memory: check RLIMIT_MEMLOCK, ulimit -l)' : '';
      throw osError('privcmd.alloc_pages', errno, `mmap of ${pages} hypercall buffer page(s) failed: ${errnoNameOf(errno)}${hint}`);
    }
    const address = ptr;
    if (!fromBufDev) {
      // Keep the pages out of a forked child (child_process.spawn forks), so copy-on-write can
      // never make the parent's locked pages read-only or swap them for copies while Xen writes
      // into them from a hypercall running on a worker thread (libxencall does the same).
      if (this.c.madvise(address, len, MADV_DONTFORK) !== 0) {
        const errno = this.c.koffi.errno();
        this.c.munmap(address, len);
        throw osError('privcmd.alloc_pages', errno, `madvise(MADV_DONTFORK) failed: ${errnoNameOf(errno)}`);
      }
    }
    const bytes = new Uint8Array(this.c.koffi.view(address, len));
    // Writes every byte, so every page is touched after MADV_DONTFORK: a fork that raced the
    // mmap cannot leave a copy-on-write page behind (libxencall touches one byte per page).
    bytes.fill(0);
    const m: Mapping = { address, pages, bytes, fromBufDev };
    this.live.set(address, m);
    return m;
  }

  freePages(mem: BackendPages): void {
    this.checkOpen();
    this.release(mem);
  }

  buffersNeverFault(): boolean {
    this.checkOpen();
    return this.bufFd >= 0;
  }

  touchPages(mem: BackendPages): void {
    this.checkOpen();
    if (this.live.get(mem.address) !== mem) throw new XencallError(ErrorCodes.BUFFER_FREED, `pages at 0x${mem.address.toString(16)} were freed`);
    // A read and a write per page faults it back in and breaks any copy-on-write.
    const b = mem.bytes;
    for (let off = 0; off < b.length; off += XEN_PAGE_SIZE) b[off] = b[off]!;
  }

  /**
   * mmap of the privcmd fd + IOCTL_PRIVCMD_MMAPBATCH_V2, with paged-out pages retried (see the
   * top of this file). Runs on the calling thread: the kernel maps the pages in one ioctl, and a
   * retry of paged-out pages blocks for up to about a second.
   */
  mapForeign(domid: number, gfns: BigUint64Array, writable: boolean): BackendForeignMap {
    this.checkOpen();
    const num = gfns.length;
    checkDomid(domid);
    if (!Number.isInteger(num) || num < 1 || num > MAX_MAP_PAGES) throw new XencallError(ErrorCodes.VALIDATION, `a foreign map takes 1 to ${MAX_MAP_PAGES} gfns, got ${num}`);
    const len = num * XEN_PAGE_SIZE;
    const prot = PROT_READ | (writable ? PROT_WRITE : 0);
    const addr = this.mmapPrivcmd(len, prot, 'privcmd.mmapbatch_v2');
    // The gfn list and the error array live in memory of our own for the ioctl: V8 may move a
    // small typed array's contents, and the kernel reads and writes these by address.
    const scratchLen = Math.ceil((num * 12) / XEN_PAGE_SIZE) * XEN_PAGE_SIZE;
    const scratch = this.c.mmap(null, scratchLen, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (scratch === null || scratch === MAP_FAILED) {
      const errno = this.c.koffi.errno();
      this.c.munmap(addr, len);
      throw osError('privcmd.mmapbatch_v2', errno, `mmap of ${scratchLen} bytes for the gfn list failed: ${errnoNameOf(errno)}`);
    }
    try {
      const scratchBytes = new Uint8Array(this.c.koffi.view(scratch, scratchLen));
      new BigUint64Array(scratchBytes.buffer, 0, num).set(gfns);
      const err = new Int32Array(scratchBytes.buffer, num * 8, num);
      try {
        this.mapRun({ domid, base: addr, prot, arr: scratch, err, errAddr: scratch + BigInt(num * 8) }, 0, num);
      } catch (e) {
        this.c.munmap(addr, len);
        throw e;
      }
      const errors = Int32Array.from(err);
      const m = new PrivcmdForeignMap(domid, num, writable, new Uint8Array(this.c.koffi.view(addr, len)), errors, addr);
      this.foreign.add(m);
      return m;
    } finally {
      this.c.munmap(scratch, scratchLen);
    }
  }

  /**
   * mmap of the privcmd fd + IOCTL_PRIVCMD_MMAP_RESOURCE (libxenforeignmemory's
   * osdep_xenforeignmemory_map_resource, linux.c lines 300-345): all or nothing.
   */
  mapResource(domid: number, type: number, id: number, frame: bigint, nrFrames: number, writable: boolean): BackendForeignMap {
    this.checkOpen();
    checkDomid(domid);
    if (!Number.isInteger(nrFrames) || nrFrames < 1 || nrFrames > MAX_MAP_PAGES) throw new XencallError(ErrorCodes.VALIDATION, `nrFrames must be 1 to ${MAX_MAP_PAGES}, got ${nrFrames}`);
    // The ioctl's idx is a __u32 (and Xen rejects frame >> 32 anyway).
    if (frame < 0n || frame > 0xffffffffn) throw new XencallError(ErrorCodes.VALIDATION, `frame must fit 32 bits, got ${frame}`);
    if (!Number.isInteger(type) || type < 0 || type > 0xffffffff || !Number.isInteger(id) || id < 0 || id > 0xffffffff) {
      throw new XencallError(ErrorCodes.VALIDATION, `type and id must be 32-bit unsigned integers, got ${type} and ${id}`);
    }
    const len = nrFrames * XEN_PAGE_SIZE;
    const prot = PROT_READ | (writable ? PROT_WRITE : 0);
    const addr = this.mmapPrivcmd(len, prot, 'privcmd.mmap_resource');
    const arg = Buffer.alloc(privcmd_mmap_resource.size);
    encode(privcmd_mmap_resource, new DataView(arg.buffer, arg.byteOffset, arg.length), 0, { dom: domid, type, id, idx: Number(frame), num: BigInt(nrFrames), addr });
    const r = this.c.syscall(SYS_ioctl, this.fd, IOCTL_PRIVCMD_MMAP_RESOURCE, arg);
    if (r === -1 || r === -1n) {
      let errno = this.c.koffi.errno();
      this.c.munmap(addr, len);
      // A kernel without the ioctl answers ENOTTY; libxenforeignmemory reports that as EOPNOTSUPP.
      if (errno === ENOTTY) errno = EOPNOTSUPP;
      throw osError('privcmd.mmap_resource', errno, `IOCTL_PRIVCMD_MMAP_RESOURCE of ${nrFrames} frame(s) of resource ${type}/${id} of domain ${domid} failed: ${errnoNameOf(errno)}`);
    }
    const m = new PrivcmdForeignMap(domid, nrFrames, writable, new Uint8Array(this.c.koffi.view(addr, len)), new Int32Array(nrFrames), addr);
    this.foreign.add(m);
    return m;
  }

  unmapForeign(m: BackendForeignMap): void {
    this.checkOpen();
    this.unmapOne(m);
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    // Calls still waiting were never issued: they end here.
    const closedError = new XencallError(ErrorCodes.CLOSED, 'the privcmd backend was closed before the hypercall was issued');
    for (let i = asyncQueueHead; i < asyncQueue.length; i++) {
      const job = asyncQueue[i]!;
      if (job.owner === this) this.dropWaiting(job, closedError);
    }
    // A hypercall already in the kernel may still write into this backend's buffers, and it
    // holds the fd number, which a later open() could otherwise reuse under it: the last one to
    // complete releases both (endAsync).
    if (this.asyncRunning === 0) this.releaseAll();
  }

  private releaseAll(): void {
    if (this.released) return;
    this.released = true;
    for (const m of [...this.live.values()]) this.release(m);
    for (const m of [...this.foreign]) this.unmapOne(m);
    this.c.close(this.fd);
    if (this.bufFd >= 0) this.c.close(this.bufFd);
  }

  private release(mem: BackendPages): void {
    const m = this.live.get(mem.address);
    if (!m || m !== mem) throw new XencallError(ErrorCodes.BUFFER_FREED, `pages at 0x${mem.address.toString(16)} were already freed`);
    this.live.delete(mem.address);
    // Not munmap: a stale Uint8Array must keep pointing at mapped memory (it reads zeros).
    retire(this.c, m.bytes, m.address, m.pages * XEN_PAGE_SIZE);
  }

  private unmapOne(m: BackendForeignMap): void {
    if (!(m instanceof PrivcmdForeignMap) || !this.foreign.delete(m)) {
      throw new XencallError(ErrorCodes.UNMAPPED, `this foreign map of domain ${m.domid} was already unmapped (or is not this backend's)`);
    }
    // Zero pages over the range drop the foreign frames (the kernel unmaps the privcmd VMA) and
    // leave stale views readable.
    retire(this.c, m.bytes, m.address, m.pages * XEN_PAGE_SIZE);
  }

  /**
   * Maps gfns [from, to) of a foreign map at base + from pages, where a privcmd VMA of exactly
   * that range is waiting, and leaves zero pages wherever a page failed. privcmd will not split
   * its VMA (a munmap or MAP_FIXED of part of it is refused: EINVAL, ENOMEM), and a page left
   * unmapped in it would SIGBUS when read (privcmd_fault). So when some pages fail, the whole run
   * becomes zero pages and each good sub-run is mapped again in a privcmd VMA of its own (a page
   * that fails on that pass keeps the newer error). Throws for a failure of the ioctl itself.
   */
  private mapRun(job: MapJob, from: number, to: number): void {
    const { domid, base, prot, arr, err, errAddr } = job;
    const at = (i: number) => base + BigInt(i * XEN_PAGE_SIZE);
    const batch = (i: number, j: number) => this.mmapBatch(domid, at(i), j - i, arr + BigInt(i * 8), errAddr + BigInt(i * 4));
    let errno = batch(from, to);
    // Any paged-out page makes the ioctl answer -ENOENT after writing every page's error; the
    // -ENOENT pages alone are asked for again (privcmd accepts a range of a used VMA only where
    // nothing is mapped yet), as libxenforeignmemory's retry_paged does.
    for (let round = 0; errno === ENOENT && round < PAGED_RETRY_ROUNDS; round++) {
      sleepSync(PAGED_RETRY_DELAY_MS);
      errno = 0;
      for (const [i, j] of runs(err, from, to, (e) => e === -ENOENT)) {
        const e = batch(i, j);
        if (e !== 0 && e !== ENOENT) {
          errno = e;
          break;
        }
        if (e === ENOENT) errno = ENOENT;
      }
    }
    if (errno !== 0 && errno !== ENOENT) {
      throw osError('privcmd.mmapbatch_v2', errno, `IOCTL_PRIVCMD_MMAPBATCH_V2 of ${to - from} page(s) of domain ${domid} failed: ${errnoNameOf(errno)}`);
    }
    if (runs(err, from, to, (e) => e !== 0).length === 0) return;
    if (!replaceWithZeroPages(this.c, at(from), (to - from) * XEN_PAGE_SIZE, prot)) {
      const e = this.c.koffi.errno();
      throw osError('privcmd.mmapbatch_v2', e, `could not put zero pages over a foreign map with failed pages: ${errnoNameOf(e)}`);
    }
    for (const [i, j] of runs(err, from, to, (e) => e === 0)) {
      const got = this.c.mmap(at(i), (j - i) * XEN_PAGE_SIZE, prot, MAP_SHARED | MAP_FIXED, this.fd, 0);
      if (got !== at(i)) {
        const e = this.c.koffi.errno();
        throw osError('privcmd.mmapbatch_v2', e, `mmap of the privcmd device over ${j - i} page(s) failed: ${errnoNameOf(e)}`);
      }
      this.mapRun(job, i, j);
    }
  }

  /** mmap of the privcmd fd itself: the VMA a foreign map is made in. */
  private mmapPrivcmd(len: number, prot: number, name: string): bigint {
    const addr = this.c.mmap(null, len, prot, MAP_SHARED, this.fd, 0);
    if (addr === null || addr === MAP_FAILED) {
      const errno = this.c.koffi.errno();
      throw osError(name, errno, `mmap of ${len / XEN_PAGE_SIZE} page(s) of the privcmd device failed: ${errnoNameOf(errno)}`);
    }
    return addr;
  }

  /** One IOCTL_PRIVCMD_MMAPBATCH_V2; returns 0 or the errno, read at once. */
  private mmapBatch(domid: number, addr: bigint, num: number, arr: bigint, err: bigint): number {
    const arg = Buffer.alloc(privcmd_mmapbatch_v2.size);
    encode(privcmd_mmapbatch_v2, new DataView(arg.buffer, arg.byteOffset, arg.length), 0, { num, dom: domid, addr, arr, err });
    const r = this.c.syscall(SYS_ioctl, this.fd, IOCTL_PRIVCMD_MMAPBATCH_V2, arg);
    return r === -1 || r === -1n ? this.c.koffi.errno() : 0;
  }

  private checkOpen(): void {
    if (this.closed) throw new XencallError(ErrorCodes.CLOSED, 'the privcmd backend was closed');
  }
}

/** The largest foreign map: the ioctl's num is an unsigned int, and mmap lengths stay below 2^53 bytes. */
const MAX_MAP_PAGES = 0x7fffffff;

function checkDomid(domid: number): void {
  if (!Number.isInteger(domid) || domid < 0 || domid > 0xffff) throw new XencallError(ErrorCodes.VALIDATION, `domid must be an integer from 0 to 65535, got ${domid}`);
}

function describeError(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

/** struct privcmd_hypercall as 64-bit words (op, arg[5]), and its op's low and high halves. */
interface CallWords {
  readonly u64: BigUint64Array;
  readonly u32: Uint32Array;
}

/** Buffer.alloc() gives a backing store of its own (byteOffset 0, never a pool slice), so 64-bit views fit. */
function callWords(struct: Buffer): CallWords {
  return { u64: new BigUint64Array(struct.buffer, struct.byteOffset, 6), u32: new Uint32Array(struct.buffer, struct.byteOffset, 12) };
}

function writeStruct(w: CallWords, op: number, args: readonly bigint[]): void {
  if (args.length !== 5) throw new XencallError(ErrorCodes.VALIDATION, `a hypercall takes exactly five arguments at the backend, got ${args.length}`);
  // The op as two 32-bit halves where it fits (it always does for real hypercall numbers): no
  // BigInt is made per call. Typed-array stores of the registers cost a fraction of
  // DataView.setBigUint64 calls (x86-64 is little-endian, as the kernel reads them).
  if (op >>> 0 === op) {
    w.u32[0] = op;
    w.u32[1] = 0;
  } else w.u64[0] = BigInt(op);
  const u64 = w.u64;
  u64[1] = args[0]!;
  u64[2] = args[1]!;
  u64[3] = args[2]!;
  u64[4] = args[3]!;
  u64[5] = args[4]!;
}
