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
   */
  hypercallAsync?(op: number, args: readonly bigint[]): Promise<bigint>;

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

  /** Closes the handle. Idempotent. Buffers still allocated are freed. */
  close(): void;
}
