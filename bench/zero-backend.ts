// A Backend that answers 0 to every hypercall without leaving JavaScript: what the host benchmark
// times xencall's own cost against (issue 13's "backend answering 0"). Its pages are plain memory
// at made-up page-aligned addresses; it maps foreign gfns to zero pages it makes up. Not a mock of
// Xen: it acts on nothing and writes nothing, so a typed call's result is whatever its encoder left
// in the buffers. Two exceptions: populate_physmap answers nr_extents (everything done), so the
// typed call's resume loop runs once, as it does on a healthy Xen; and XENVER_version answers
// 4.17, so a handle's typed calls pass its one Xen version check.

import type { Backend, BackendForeignMap, BackendPages } from '../src/index.js';

const PAGE = 4096;
const HYPERVISOR_memory_op = 12;
const XENMEM_populate_physmap = 6n;
const HYPERVISOR_xen_version = 17;
const XENVER_version = 0n;
const XEN_4_17 = (4n << 16n) | 17n;

export class ZeroBackend implements Backend {
  readonly kind = 'zero';
  readonly fd = -1;
  private next = 0x7f00_0000_0000n;
  private readonly pages = new Map<bigint, BackendPages>();

  constructor(private readonly neverFault = true) {}

  hypercall(op: number, args: readonly bigint[]): bigint {
    if (op === HYPERVISOR_memory_op && args[0] === XENMEM_populate_physmap) {
      // struct xen_memory_reservation: nr_extents at offset 8.
      const mem = this.pages.get(args[1]!);
      if (mem) return new DataView(mem.bytes.buffer, mem.bytes.byteOffset).getBigUint64(8, true);
    }
    if (op === HYPERVISOR_xen_version && args[0] === XENVER_version) return XEN_4_17;
    return 0n;
  }

  allocPages(pages: number): BackendPages {
    const address = this.next;
    this.next += BigInt((pages + 1) * PAGE);
    const mem = { address, pages, bytes: new Uint8Array(pages * PAGE) };
    this.pages.set(address, mem);
    return mem;
  }

  freePages(mem: BackendPages): void {
    this.pages.delete(mem.address);
  }

  buffersNeverFault(): boolean {
    return this.neverFault;
  }

  touchPages(): void {}

  /** Every foreign map reads the same zero pages: the benchmark times the gfn list, not memory. */
  private zeroPages = new Uint8Array(0);

  mapForeign(domid: number, gfns: BigUint64Array, writable: boolean): BackendForeignMap {
    if (this.zeroPages.length < gfns.length * PAGE) this.zeroPages = new Uint8Array(gfns.length * PAGE);
    return { domid, pages: gfns.length, writable, bytes: this.zeroPages.subarray(0, gfns.length * PAGE), errors: new Int32Array(gfns.length) };
  }

  unmapForeign(): void {}

  close(): void {}
}
