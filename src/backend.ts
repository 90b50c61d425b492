// The Backend: the small OS layer everything else stands on, shaped like libxencall's
// osdep interface (open, close, hypercall, alloc pages, free pages) plus whether buffers can
// fault. Two implementations exist: PrivcmdBackend (Linux /dev/xen/privcmd, via koffi) and
// MockBackend (the simulated hypervisor in "xencall/testing"). Neither knows the other, and one
// contract suite (test/contract.ts) runs against both.
//
// Contract shared by every member:
// - Members never log and never print. Failures are returned or thrown, never reported aside.
// - After close(), every member except close() throws XencallError XEN_ERR_CLOSED.
// - Arguments are already validated by the layers above; a backend still refuses what would
//   crash the process (a freed buffer, a wrong argument count) with a typed error.

/** Memory a hypercall argument can point at: whole pages, page-aligned. */
export interface BackendPages {
  /** The guest-virtual address Xen sees, as a hypercall argument would carry it. */
  readonly address: bigint;
  readonly pages: number;
  /**
   * The pages' bytes. Valid until freePages(); the backend detaches or invalidates it then, so a
   * stale view reads as empty instead of touching unmapped memory.
   */
  readonly bytes: Uint8Array;
}

/**
 * Pages of another domain mapped into this process (libxenforeignmemory's job), from
 * mapForeign() or mapResource(). Valid until unmapForeign() or the backend's close().
 */
export interface BackendForeignMap {
  readonly domid: number;
  readonly pages: number;
  readonly writable: boolean;
  /**
   * pages*4096 bytes over all mapped pages, in the order asked for. A page whose `errors` entry is
   * non-zero reads as zeros (nothing of the domain is behind it). After unmapForeign() a stale
   * view must read as zeros (or throw a typed error) — never crash the process. Writing into a
   * read-only map is the caller's bug: privcmd maps such pages without write permission, so the
   * kernel kills the process (SIGSEGV) as it would a C program.
   */
  readonly bytes: Uint8Array;
  /** Per page: 0, or a negative errno (the per-page error the kernel/Xen gave). */
  readonly errors: Int32Array;
}

export interface Backend {
  /** "privcmd" or "mock": for diagnostics only; layers above never branch on it. */
  readonly kind: string;

  /**
   * The privcmd file descriptor (libxencall's xencall_fd), or -1 where the backend has none.
   * Owned by the backend: callers must not close it.
   */
  readonly fd: number;

  /**
   * Issues one hypercall: `op` is the __HYPERVISOR_* number, `args` exactly five unsigned 64-bit
   * values. Returns Xen's raw signed result unchanged, all 64 bits: zero or a positive value on
   * success, -errno on failure (Xen's errno.h values, which equal Linux's on x86). A kernel-side
   * failure of the ioctl itself (EPERM on a restricted fd, EFAULT on the ioctl struct) is
   * returned the same way, so the two cannot always be told apart, as with libxencall.
   * Never throws for a hypervisor error; throws only XEN_ERR_CLOSED.
   */
  hypercall(op: number, args: readonly bigint[]): bigint;

  /**
   * The same as hypercall(), run off the calling thread where the backend can (privcmd runs it on
   * a worker thread so a long hypercall does not block the event loop; errno is captured on that
   * thread). Optional: callers fall back to hypercall().
   *
   * Any number of calls may be in flight: where the backend can run only so many at once, the
   * rest wait in order and every one settles, with Xen's result or a XencallError, never another
   * error. A waiting call is not yet issued: when `cancel` fires first it rejects with the
   * signal's reason if that is a XencallError (else XEN_ERR_ABORTED) and never reaches Xen, and
   * close() rejects it with XEN_ERR_CLOSED. A call already issued always runs to its end.
   */
  hypercallAsync?(op: number, args: readonly bigint[], cancel?: AbortSignal): Promise<bigint>;

  /**
   * Allocates `pages` whole pages (>= 1) usable as hypercall buffers, zero-filled and touched.
   * Ownership passes to the caller until freePages(). Throws XencallError XEN_ERR_HYPERCALL with
   * errno ENOMEM (or the mmap errno) when memory cannot be had.
   */
  allocPages(pages: number): BackendPages;

  /** Returns pages from allocPages(). Each allocation is freed once; a second free throws XEN_ERR_BUFFER_FREED. */
  freePages(mem: BackendPages): void;

  /**
   * True when the kernel owns the buffers (/dev/xen/hypercall) so Xen's copies to and from them
   * cannot fault transiently; false for locked user memory, which page migration can make
   * briefly inaccessible. libxencall's xencall_buffers_never_fault().
   */
  buffersNeverFault(): boolean;

  /**
   * Re-touches every page of a buffer (a read and write of one byte per page) so it is resident
   * and writable before a re-issue. A no-op where pages cannot move.
   */
  touchPages(mem: BackendPages): void;

  /**
   * IOCTL_PRIVCMD_RESTRICT: limits the handle to one domain. Afterwards the kernel refuses raw
   * hypercalls on it with EPERM (returned as -1n by hypercall()); restricting again to another
   * domain throws (EINVAL). There is no way back. Optional: backends without it cannot restrict.
   */
  restrict?(domid: number): void;

  /** The domain the handle was restricted to, or null. */
  readonly restricted?: number | null;

  /**
   * IOCTL_PRIVCMD_MMAPBATCH_V2: maps frames `gfns` of domain `domid` (one page each, in order).
   * Arguments are validated above (non-empty, each gfn below 2^40, domid an ordinary domain).
   * `gfns` is read during the call only: the caller may change or reuse it once the call returns.
   * Per-page failures do not throw: they are in `errors` (-EINVAL for a gfn Xen has no RAM at,
   * -ESRCH for every page of a domain that does not exist or is the caller itself; -ENOENT for a
   * paged-out frame is retried first, as libxenforeignmemory does, and stays only if it persists).
   * Throws XEN_ERR_HYPERCALL (with the errno) when the mapping as a whole fails (mmap ENOMEM, EPERM
   * on a handle restricted to another domain). Optional: backends without it cannot map.
   */
  mapForeign?(domid: number, gfns: BigUint64Array, writable: boolean): BackendForeignMap;

  /**
   * IOCTL_PRIVCMD_MMAP_RESOURCE: maps frames frame..frame+nrFrames-1 of resource (type, id) of
   * domain `domid` (XENMEM_acquire_resource: a grant table, ioreq server pages, a vmtrace buffer).
   * All or nothing: a failure throws XEN_ERR_HYPERCALL with Xen's errno (-EOPNOTSUPP for a type
   * this Xen does not offer, -EINVAL for frames beyond the resource); `errors` is all zeros.
   */
  mapResource?(domid: number, type: number, id: number, frame: bigint, nrFrames: number, writable: boolean): BackendForeignMap;

  /**
   * Unmaps a map from mapForeign()/mapResource(). Views of it read zeros from then on. A second
   * unmap of the same map throws XEN_ERR_UNMAPPED.
   */
  unmapForeign?(m: BackendForeignMap): void;

  /**
   * Closes the handle. Idempotent. Buffers still allocated are freed, foreign maps unmapped and
   * the fds closed, but not under a hypercall already issued through hypercallAsync(): Xen may
   * still write into its buffers, so they and the fds are released when the last such call ends.
   * Calls still waiting to be issued reject with XEN_ERR_CLOSED.
   */
  close(): void;
}
