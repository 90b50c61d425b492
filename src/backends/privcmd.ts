// The real backend: Linux privcmd through koffi. This is the only module that loads koffi, and
// it does so lazily, when a privcmd backend is opened, so importing xencall never fails on a
// machine without Xen (or without koffi's prebuilt binary).
//
// Facts it relies on (Linux drivers/xen/privcmd.c, privcmd-buf.c; Xen tools/libs/call/linux.c):
// - IOCTL_PRIVCMD_HYPERCALL = _IOC(_IOC_NONE, 'P', 0, 48) = 0x00305000 on x86_64; the kernel
//   returns Xen's `long` result unchanged.
// - glibc's ioctl() is declared to return int, which would cut results of 2^31 and above
//   (XENMEM_maximum_ram_page); syscall(SYS_ioctl, ...) returns the whole long.
// - /dev/xen/hypercall hands out kernel pages (VM_IO) that page migration never touches; without
//   it, buffers are anonymous MAP_LOCKED memory with MADV_DONTFORK, each page touched.

import { createRequire } from 'node:module';
import type { Backend, BackendPages } from '../backend.js';
import { ErrorCodes, HypercallError, XencallError, errnoNameOf } from '../errors.js';
import { XEN_PAGE_SIZE } from '../hypercalls/numbers.js';

export const IOCTL_PRIVCMD_HYPERCALL = 0x00305000;
export const IOCTL_PRIVCMD_RESTRICT = 0x00025006;
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
const MADV_DOFORK = 11;
const SYS_ioctl = 16;
const ENOENT = 2;
const ENXIO = 6;
const ENODEV = 19;
const MAP_FAILED = 0xffffffffffffffffn;

type Koffi = typeof import('koffi');

interface Libc {
  koffi: Koffi;
  open: (path: string, flags: number, mode: number) => number;
  close: (fd: number) => number;
  syscall: ((nr: number, fd: number, req: number, arg: unknown) => number | bigint) & {
    async: (nr: number, fd: number, req: number, arg: unknown, cb: (err: unknown, res: number | bigint) => void) => void;
  };
  mmap: (addr: unknown, len: number, prot: number, flags: number, fd: number, off: number) => unknown;
  munmap: (addr: unknown, len: number) => number;
  madvise: (addr: unknown, len: number, advice: number) => number;
}

let libc: Libc | undefined;

/** Loads koffi and the libc functions once. Throws XEN_ERR_BACKEND_UNAVAILABLE where it cannot. */
function loadLibc(): Libc {
  if (libc) return libc;
  let koffi: Koffi;
  try {
    const require = createRequire(import.meta.url);
    koffi = require('koffi') as Koffi;
  } catch (e) {
    throw new XencallError(ErrorCodes.BACKEND_UNAVAILABLE, `koffi could not be loaded (${(e as Error).message}); the privcmd backend needs it`, { cause: e });
  }
  const lib = koffi.load('libc.so.6');
  libc = {
    koffi,
    // open() is variadic in C; a fixed mode argument is read as the third one.
    open: lib.func('int open(const char *path, int flags, uint32_t mode)') as Libc['open'],
    close: lib.func('int close(int fd)') as Libc['close'],
    // syscall(2) is variadic but reads its arguments from registers as longs; a fixed
    // prototype is both correct on x86_64 and much faster than a variadic koffi call.
    syscall: lib.func('long syscall(long nr, long fd, unsigned long req, void *arg)') as Libc['syscall'],
    mmap: lib.func('void *mmap(void *addr, size_t len, int prot, int flags, int fd, long off)') as Libc['mmap'],
    munmap: lib.func('int munmap(void *addr, size_t len)') as Libc['munmap'],
    madvise: lib.func('int madvise(void *addr, size_t len, int advice)') as Libc['madvise'],
  };
  return libc;
}

export interface PrivcmdOptions {
  /** Paths to try, in order (tests point these elsewhere). Default /dev/xen/privcmd, /proc/xen/privcmd. */
  privcmdPaths?: readonly string[];
  /** The buffer device. Default /dev/xen/hypercall; null to never use it. */
  hypercallBufPath?: string | null;
}

interface Mapping extends BackendPages {
  readonly ptr: unknown;
  readonly fromBufDev: boolean;
}

/** Opens privcmd the way libxencall's osdep_xencall_open does. */
export function openPrivcmd(options: PrivcmdOptions = {}): PrivcmdBackend {
  return new PrivcmdBackend(options);
}

export class PrivcmdBackend implements Backend {
  readonly kind = 'privcmd';
  readonly fd: number;
  /** Which privcmd node was opened. */
  readonly privcmdPath: string;
  /** The buffer device's fd, or -1 where there is none. */
  readonly bufFd: number;
  private readonly c: Libc;
  /** The 48-byte struct privcmd_hypercall, reused for every call (one call at a time per handle). */
  private readonly callStruct = Buffer.alloc(48);
  private readonly callView = new DataView(this.callStruct.buffer, this.callStruct.byteOffset, 48);
  private readonly live = new Map<bigint, Mapping>();
  /**
   * Address ranges of freed buffers, kept mapped with harmless anonymous memory so a stale view
   * reads zeros instead of crashing the process; reused for later allocations of the same size.
   */
  private readonly graveyard = new Map<number, bigint[]>();
  private restrictedTo: number | null = null;
  private closed = false;

  constructor(options: PrivcmdOptions = {}) {
    this.c = loadLibc();
    const paths = options.privcmdPaths ?? PRIVCMD_PATHS;
    let fd = -1;
    let used = '';
    const errors: string[] = [];
    for (const p of paths) {
      fd = this.c.open(p, O_RDWR | O_CLOEXEC, 0);
      if (fd >= 0) {
        used = p;
        break;
      }
      const errno = this.c.koffi.errno();
      errors.push(`${p}: ${errnoNameOf(errno)}`);
      // libxencall falls back only when the node is missing or its driver absent.
      if (errno !== ENOENT && errno !== ENXIO && errno !== ENODEV) break;
    }
    if (fd < 0) {
      throw new XencallError(
        ErrorCodes.BACKEND_UNAVAILABLE,
        `no privcmd device could be opened (${errors.join('; ')}). Run in a Xen dom0 as root with the xen-privcmd module loaded (and xenfs mounted on /proc/xen for the legacy node).`,
      );
    }
    this.fd = fd;
    this.privcmdPath = used;
    let bufFd = -1;
    const bufPath = options.hypercallBufPath === undefined ? HYPERCALL_BUF_PATH : options.hypercallBufPath;
    if (bufPath) {
      bufFd = this.c.open(bufPath, O_RDWR | O_CLOEXEC, 0);
      if (bufFd < 0) {
        const errno = this.c.koffi.errno();
        // Only a missing device is tolerated (kernels before 4.18); anything else is a real error.
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
    this.fillStruct(op, args);
    const r = this.c.syscall(SYS_ioctl, this.fd, IOCTL_PRIVCMD_HYPERCALL, this.callStruct);
    // errno is read at once, before anything else can call into libc.
    if (r === -1 || r === -1n) return -BigInt(this.c.koffi.errno());
    return BigInt(r);
  }

  hypercallAsync(op: number, args: readonly bigint[]): Promise<bigint> {
    this.checkOpen();
    // Each async call gets its own struct: calls may overlap on worker threads.
    const struct = Buffer.alloc(48);
    writeStruct(new DataView(struct.buffer, struct.byteOffset, 48), op, args);
    return new Promise((resolve, reject) => {
      this.c.syscall.async(SYS_ioctl, this.fd, IOCTL_PRIVCMD_HYPERCALL, struct, (err, r) => {
        if (err) reject(err);
        // koffi carries the worker thread's errno back with an async call's completion.
        else resolve(r === -1 || r === -1n ? -BigInt(this.c.koffi.errno()) : BigInt(r));
      });
    });
  }

  /** IOCTL_PRIVCMD_RESTRICT: afterwards the kernel refuses raw hypercalls with EPERM. */
  restrict(domid: number): void {
    this.checkOpen();
    const arg = Buffer.alloc(2);
    arg.writeUInt16LE(domid);
    const r = this.c.syscall(SYS_ioctl, this.fd, IOCTL_PRIVCMD_RESTRICT, arg);
    if (r === -1 || r === -1n) {
      const errno = this.c.koffi.errno();
      throw new HypercallError(ErrorCodes.HYPERCALL, { errno, op: -1, subop: null, name: 'privcmd.restrict', attempts: 1, verdict: null, reason: null, recovery: null, retry: 'none' });
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
    const reuse = this.graveyard.get(pages)?.pop();
    const hint = reuse === undefined ? null : this.c.koffi.as(this.pointerFrom(reuse), 'void *');
    const fixed = reuse === undefined ? 0 : MAP_FIXED;
    let ptr: unknown;
    let fromBufDev = false;
    if (this.bufFd >= 0) {
      ptr = this.c.mmap(hint, len, PROT_READ | PROT_WRITE, MAP_SHARED | fixed, this.bufFd, 0);
      fromBufDev = true;
    } else {
      ptr = this.c.mmap(hint, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_LOCKED | fixed, -1, 0);
    }
    const address = ptr === null ? MAP_FAILED : this.c.koffi.address(ptr);
    if (address === MAP_FAILED || address === 0n) {
      const errno = this.c.koffi.errno();
      if (reuse !== undefined) this.graveyard.get(pages)!.push(reuse);
      throw new HypercallError(ErrorCodes.HYPERCALL, { errno, op: -1, subop: null, name: 'privcmd.alloc_pages', attempts: 1, verdict: null, reason: null, recovery: null, retry: 'none' }, `mmap of ${pages} hypercall buffer page(s) failed: ${errnoNameOf(errno)}`);
    }
    if (!fromBufDev) {
      // Keep the pages out of a forked child, so a child's copy-on-write cannot swap the
      // parent's locked pages for copies behind Xen's back (libxencall does the same).
      if (this.c.madvise(ptr, len, MADV_DONTFORK) !== 0) {
        const errno = this.c.koffi.errno();
        this.c.munmap(ptr, len);
        throw new HypercallError(ErrorCodes.HYPERCALL, { errno, op: -1, subop: null, name: 'privcmd.alloc_pages', attempts: 1, verdict: null, reason: null, recovery: null, retry: 'none' }, `madvise(MADV_DONTFORK) failed: ${errnoNameOf(errno)}`);
      }
    }
    const bytes = new Uint8Array(this.c.koffi.view(ptr, len));
    bytes.fill(0); // touches every page, and a reused range starts clean
    const m: Mapping = { address, pages, bytes, ptr, fromBufDev };
    this.live.set(address, m);
    return m;
  }

  freePages(mem: BackendPages): void {
    this.checkOpen();
    const m = this.live.get(mem.address);
    if (!m) throw new XencallError(ErrorCodes.BUFFER_FREED, `pages at 0x${mem.address.toString(16)} were already freed`);
    this.live.delete(mem.address);
    const len = m.pages * XEN_PAGE_SIZE;
    if (!m.fromBufDev) this.c.madvise(m.ptr, len, MADV_DOFORK);
    // Replace the pages with plain anonymous memory instead of unmapping: the buffer's memory
    // goes back (locked or kernel pages), but a stale Uint8Array still points at mapped memory.
    const r = this.c.mmap(m.ptr, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED | MAP_NORESERVE, -1, 0);
    if (r === null || this.c.koffi.address(r) === MAP_FAILED) {
      this.c.munmap(m.ptr, len);
      return;
    }
    const list = this.graveyard.get(m.pages) ?? [];
    list.push(m.address);
    this.graveyard.set(m.pages, list);
  }

  buffersNeverFault(): boolean {
    this.checkOpen();
    return this.bufFd >= 0;
  }

  touchPages(mem: BackendPages): void {
    // A read and a write per page faults it back in and breaks any copy-on-write.
    const b = mem.bytes;
    for (let off = 0; off < b.length; off += XEN_PAGE_SIZE) b[off] = b[off]!;
  }

  close(): void {
    if (this.closed) return;
    for (const m of [...this.live.values()]) this.freePages(m);
    this.closed = true;
    this.c.close(this.fd);
    if (this.bufFd >= 0) this.c.close(this.bufFd);
  }

  private fillStruct(op: number, args: readonly bigint[]): void {
    writeStruct(this.callView, op, args);
  }

  private pointerFrom(address: bigint): unknown {
    // koffi turns an integer into a pointer through a cast of a uintptr_t value.
    return this.c.koffi.as(address as never, 'void *');
  }

  private checkOpen(): void {
    if (this.closed) throw new XencallError(ErrorCodes.CLOSED, 'the privcmd backend was closed');
  }
}

function writeStruct(v: DataView, op: number, args: readonly bigint[]): void {
  if (args.length !== 5) throw new XencallError(ErrorCodes.VALIDATION, `a hypercall takes exactly five arguments at the backend, got ${args.length}`);
  v.setBigUint64(0, BigInt(op), true);
  v.setBigUint64(8, args[0]!, true);
  v.setBigUint64(16, args[1]!, true);
  v.setBigUint64(24, args[2]!, true);
  v.setBigUint64(32, args[3]!, true);
  v.setBigUint64(40, args[4]!, true);
}
