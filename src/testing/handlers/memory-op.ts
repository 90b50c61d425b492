// The mock's memory_op: xen/common/memory.c do_memory_op.

import { decode } from '../../layout.js';
import { DOMID, MEMOP_CMD_MASK, MEMOP_EXTENT_SHIFT, XENMEM } from '../../hypercalls/numbers.js';
import { xen_memory_reservation } from '../../hypercalls/structs.js';
import type { MockHypervisor } from '../hypervisor.js';
import { E, nameOf, dv, type Begin } from './common.js';

export function memoryOp(hv: MockHypervisor, args: readonly bigint[], begin: Begin): bigint {
  const cmd = Number(args[0]! & BigInt(MEMOP_CMD_MASK));
  const name = `memory_op.${nameOf(XENMEM, cmd) ?? cmd}`;
  begin(name);
  switch (cmd) {
    case XENMEM.populate_physmap: {
      // The guest kernel re-executes a continuation at once (privcmd never sees it), so a
      // preempted call goes round here with the progress in cmd, as Xen's re-entry would.
      let cmdArg = args[0]!;
      for (;;) {
        const r = populatePhysmapOp(hv, name, cmdArg, args[1]!);
        if (r.continueAt === null) return r.ret;
        hv.effect(name, 'memory_op.continuation', { start_extent: r.continueAt });
        cmdArg = BigInt(XENMEM.populate_physmap) | (BigInt(r.continueAt) << BigInt(MEMOP_EXTENT_SHIFT));
      }
    }
    case XENMEM.maximum_ram_page:
      return hv.maxRamPage;
    case XENMEM.current_reservation:
    case XENMEM.maximum_reservation:
    case XENMEM.maximum_gpfn: {
      // do_memory_op (xen/common/memory.c, RELEASE-4.17.7 lines 1491-1531): the domid is copied
      // in, the answer is the result. maximum_gpfn is domain_get_maximum_gpfn (xen/arch/x86/mm.c
      // 482-491): an HVM guest's p2m max_mapped_pfn; for PV, nr_pfns - 1.
      const b = hv.copyFromGuest(name, args[1]!, 2, 'arg1 (domid_t)');
      if (!b) return E('EFAULT');
      let domid = dv(b).getUint16(0, true);
      if (domid === DOMID.SELF) domid = 0;
      const d = hv.domain(domid);
      if (!d) return E('ESRCH');
      if (cmd === XENMEM.maximum_gpfn) return d.hvm ? BigInt(Math.max(d.maxGpfn(), 0)) : BigInt(Math.max(d.totPages, 1) - 1);
      return cmd === XENMEM.current_reservation ? BigInt(d.totPages) : d.maxPages;
    }
    default:
      return hv.unmodelled(name, `memory_op cmd ${cmd}`);
  }
}

/** XENMEMF_* bits of xen_memory_reservation.mem_flags (public/memory.h). */
const XENMEMF_POPULATE_ON_DEMAND = 1 << 16;
const XENMEMF_VNODE = 1 << 18;
/** max_order() for dom0 (control and hardware domain): CONFIG_CTLDOM_MAX_ORDER = 2 * PAGETABLE_ORDER, capped at MAX_ORDER (x86 asm/config.h, xen/mm.h). */
const DOM0_MAX_ORDER = 18;
/** MAX_NUMNODES on x86 (CONFIG_NR_NUMA_NODES' default). */
const MAX_NUMNODES = 64;
/** A made-up MFN base for PV targets' write-back (the mock has no machine frames). */
const MOCK_MFN_BASE = 0x100000n;

/**
 * XENMEM_populate_physmap, one entry (xen/common/memory.c at RELEASE-4.17.7: do_memory_op lines
 * 1404-1475, construct_memop_from_reservation lines 1020-1066, populate_physmap lines 157-311).
 * Every failure returns the extents done so far, never an errno. A preempted call (the mock
 * preempts after `hv.memopExtentsPerSlice` extents) asks for a continuation at that count.
 */
function populatePhysmapOp(hv: MockHypervisor, name: string, cmdArg: bigint, arg: bigint): { ret: bigint; continueAt: number | null } {
  const startExtent = Number(cmdArg >> BigInt(MEMOP_EXTENT_SHIFT));
  const done = (n: number) => ({ ret: BigInt(n), continueAt: null });
  // 1. copy_from_guest(&reservation, arg, 1): on a continuation too.
  const rb = hv.copyFromGuest(name, arg, xen_memory_reservation.size, 'arg1 (struct xen_memory_reservation)');
  if (!rb) return done(startExtent);
  const r = decode(xen_memory_reservation, dv(rb));
  // 2. "Is size too large for us to encode a continuation?"
  if (r.nr_extents > BigInt(0xffffffff >>> MEMOP_EXTENT_SHIFT)) return done(startExtent);
  const nrExtents = Number(r.nr_extents);
  if (startExtent >= nrExtents) return done(startExtent);
  // 3. rcu_lock_domain_by_any_id: DOMID_SELF is the caller, dom0.
  const d = hv.domain(r.domid === DOMID.SELF ? 0 : r.domid);
  if (!d) return done(startExtent);
  // 4. construct_memop_from_reservation: address bits of 12 or fewer (when they matter), an
  //    unknown vnode or node, fail the whole call.
  const addressBits = r.mem_flags & 0xff;
  if (addressBits !== 0 && addressBits <= 12) return done(startExtent);
  const node = ((r.mem_flags >>> 8) - 1) & 0xff;
  if ((r.mem_flags & XENMEMF_VNODE) === 0 && node !== 0xff && node >= MAX_NUMNODES) return done(startExtent);
  if (r.mem_flags & XENMEMF_POPULATE_ON_DEMAND) {
    hv.unmodelled(name, 'populate-on-demand (XENMEMF_populate_on_demand)');
    return done(startExtent);
  }
  // 5. populate_physmap: the order limit for the caller, then extent by extent.
  if (r.extent_order > DOM0_MAX_ORDER) return done(startExtent);
  const pagesPerExtent = 2 ** r.extent_order;
  for (let i = startExtent; i < nrExtents; i++) {
    if (i !== startExtent && i - startExtent >= hv.memopExtentsPerSlice) return { ret: BigInt(i), continueAt: i };
    const gb = hv.copyFromGuest(name, r.extent_start + BigInt(i) * 8n, 8, `extent_start[${i}]`);
    if (!gb) return done(i);
    const gpfn = dv(gb).getBigUint64(0, true);
    // alloc_domheap_pages -> assign_pages (common/page_alloc.c lines 2322-2400): a dying domain,
    // or tot_pages + 2^order above max_pages, gets nothing; nor does a host out of pages.
    const hostFree = hv.totalPages - [...hv.domains.values()].reduce((s, x) => s + x.totPages, 0);
    if (d.dying || BigInt(d.totPages) > d.maxPages || BigInt(pagesPerExtent) > d.maxPages - BigInt(d.totPages) || pagesPerExtent > hostFree) return done(i);
    // guest_physmap_add_page: the new pages replace whatever the gfns held (the old pages stay
    // allocated to the domain, as p2m_add_page leaves them).
    d.populate(Number(gpfn), pagesPerExtent);
    hv.effect(name, 'memory.populated', { domid: d.domid, gfn: gpfn, pages: pagesPerExtent });
    // A PV target learns the new frame's MFN through the list, after the allocation.
    if (!d.hvm) {
      const mb = new Uint8Array(8);
      dv(mb).setBigUint64(0, MOCK_MFN_BASE + gpfn, true);
      if (!hv.copyToGuest(name, r.extent_start + BigInt(i) * 8n, mb, `extent_start[${i}]`)) return done(i);
    }
  }
  return done(nrExtents);
}
